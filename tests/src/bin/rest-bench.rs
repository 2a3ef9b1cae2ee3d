//! rest-bench: how fast the control plane answers (issue #13).
//!
//! 1. Start-up: time from spawning `connect standalone` to the first `200` of `GET /connectors` (the REST
//!    listener serves before any Kafka connection is made), median of 5 starts.
//! 2. `GET /connectors?expand=status` latency over a fresh connection per request: idle, then while
//!    another thread keeps restarting, pausing, stopping and resuming connectors (tasks being stopped and
//!    started all the time). p50/p99/max of each, and the ratio of the p99s.
//!
//! Usage: rest-bench [REQUESTS]   (default 2000 per phase)

use connect_e2e::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// At least `requests` timed reads, and more until `enough()` says so.
fn measure(port: u16, requests: usize, enough: impl Fn() -> bool) -> Vec<Duration> {
    let mut times = Vec::with_capacity(requests);
    while times.len() < requests || !enough() {
        let start = Instant::now();
        let (code, _) = http("GET", port, "/connectors?expand=status", None);
        assert_eq!(code, 200);
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let requests: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    println!("rest-bench: {requests} requests per phase, broker {}", bootstrap());

    // 1. Start-up to the first answer.
    let mut startups = Vec::new();
    for i in 0..5 {
        let run = dir.path().join(format!("start-{i}"));
        std::fs::create_dir_all(&run).unwrap();
        let setup = WorkerSetup::new(&run, &[]);
        let started = Instant::now();
        let mut child = std::process::Command::new(connect_binary())
            .arg("standalone")
            .arg(&setup.worker_config)
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", setup.port)).is_ok() && http("GET", setup.port, "/connectors", None).0 == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no answer within 30 s");
            std::thread::sleep(Duration::from_micros(200));
        }
        startups.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    startups.sort();

    // 2. Status reads, idle and under churn.
    let worker = WorkerSetup::new(dir.path(), &[]).start();
    let names: Vec<String> = (0..4).map(|i| format!("churn-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let input = dir.path().join(format!("in-{i}.txt"));
        std::fs::write(&input, numbered_lines(0..1000, 50)).unwrap();
        let config = json!({"connector.class": "FileStreamSource", "file": input, "topic": unique("rest-bench")});
        assert_eq!(http("POST", worker.port, "/connectors", Some(&json!({"name": name, "config": config}))).0, 201);
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle = measure(worker.port, requests, || true);

    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicUsize::new(0));
    let churn = {
        let (stop, changes, port, names) = (stop.clone(), changes.clone(), worker.port, names.clone());
        std::thread::spawn(move || {
            let ops = ["/restart?includeTasks=true", "/pause", "/stop", "/resume", "/restart?includeTasks=true&onlyFailed=false"];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = &names[i % names.len()];
                let op = ops[(i / names.len()) % ops.len()];
                let method = if op.starts_with("/restart") { "POST" } else { "PUT" };
                let (code, body) = http(method, port, &format!("/connectors/{name}{op}"), None);
                assert!(code < 500, "{op}: {code} {body}");
                changes.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let started = Instant::now();
    // Long enough for every connector to go through every change a few times.
    let busy = measure(worker.port, requests, || changes.load(Ordering::Relaxed) >= 100);
    let busy_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();

    println!();
    println!("start-up to the first GET /connectors answer: median {} (min {}, max {})", ms(startups[2]), ms(startups[0]), ms(startups[4]));
    println!("GET /connectors?expand=status, a new connection per request:");
    println!(
        "  idle ({} requests):        p50 {}  p99 {}  max {}",
        idle.len(),
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        ms(idle[idle.len() - 1])
    );
    println!(
        "  while tasks stop/start ({} requests): p50 {}  p99 {}  max {}   ({} state changes in {busy_secs:.1} s)",
        busy.len(),
        ms(percentile(&busy, 0.5)),
        ms(percentile(&busy, 0.99)),
        ms(busy[busy.len() - 1]),
        changes.load(Ordering::Relaxed)
    );
    println!("ratio p99 busy / idle: {:.2}", percentile(&busy, 0.99).as_secs_f64() / percentile(&idle, 0.99).as_secs_f64());
}
