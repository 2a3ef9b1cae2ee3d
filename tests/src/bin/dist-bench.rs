//! `scripts/bench distributed`: how fast a `connect distributed` cluster recovers and rebalances. Three
//! workers and SOURCES file sources on a nisshi broker of their own; prints the time from SIGKILL of the busiest
//! worker to every connector RUNNING on the others, and from a worker's (re)start to the cluster balanced
//! with it, with the settings used. No limit to compare with: these are times, not rates.

use connect_e2e::cluster::*;
use connect_e2e::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn main() {
    let sources: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(12);
    let rounds: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestCluster::new("dist-bench", dir.path());
    let setups: Vec<WorkerSetup> = (0..3).map(|i| cluster.setup(dir.path(), i)).collect();
    let ids: BTreeSet<String> = setups.iter().map(worker_id).collect();
    let mut workers: Vec<Option<Worker>> = setups.iter().map(|s| Some(s.start_distributed())).collect();
    let port = |workers: &Vec<Option<Worker>>| workers.iter().flatten().next().unwrap().port;
    let names: BTreeSet<String> = (0..sources).map(|i| format!("src-{i}")).collect();
    for i in 0..sources {
        let input = dir.path().join(format!("in-{i}.txt"));
        append(&input, 0..10);
        create(port(&workers), &format!("src-{i}"), source(&input, &cluster.topic(&format!("out-{i}"))));
    }
    let balanced = |placement: &BTreeMap<String, String>, on: &BTreeSet<String>| {
        let mut load: BTreeMap<&String, usize> = BTreeMap::new();
        for w in placement.values() {
            *load.entry(w).or_default() += 1;
        }
        load.len() == on.len() && load.values().max().unwrap() - load.values().min().unwrap() <= 1
    };
    wait_for("the first balanced placement", Duration::from_secs(120), || {
        all_running_on(port(&workers), &names, &ids).filter(|p| balanced(p, &ids))
    });
    println!("settings: 3 workers, {sources} FileStreamSource connectors, session.timeout.ms=6000, heartbeat.interval.ms=1000, scheduled.rebalance.max.delay.ms=0 (the default), nisshi 0.8.1 broker");
    let (mut takeovers, mut rejoins) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let placement = all_running_on(port(&workers), &names, &ids).expect("balanced before the round");
        let mut load: BTreeMap<String, usize> = BTreeMap::new();
        for w in placement.values() {
            *load.entry(w.clone()).or_default() += 1;
        }
        let busiest = load.iter().max_by_key(|(_, n)| **n).map(|(w, _)| w.clone()).unwrap();
        let victim = setups.iter().position(|s| worker_id(s) == busiest).unwrap();
        let survivors: BTreeSet<String> = ids.iter().filter(|id| **id != busiest).cloned().collect();
        workers[victim].take().unwrap().kill_hard();
        let killed = Instant::now();
        wait_for("takeover", Duration::from_secs(120), || all_running_on(port(&workers), &names, &survivors));
        let takeover = killed.elapsed().as_secs_f64();
        let started = Instant::now();
        workers[victim] = Some(setups[victim].start_distributed());
        wait_for("balanced again", Duration::from_secs(120), || all_running_on(port(&workers), &names, &ids).filter(|p| balanced(p, &ids)));
        let rejoin = started.elapsed().as_secs_f64();
        println!("round {}: SIGKILL of a worker running {} connectors -> all RUNNING on the other two in {takeover:.1} s; its restart -> balanced in {rejoin:.1} s", round + 1, load[&busiest]);
        takeovers.push(takeover);
        rejoins.push(rejoin);
    }
    let range = |v: &[f64]| format!("{:.1}-{:.1} s", v.iter().cloned().fold(f64::MAX, f64::min), v.iter().cloned().fold(0.0, f64::max));
    println!("SIGKILL -> all tasks RUNNING again: {}; worker (re)start -> balanced: {}", range(&takeovers), range(&rejoins));
    for w in workers.iter_mut().flatten() {
        w.stop();
    }
}
