//! neo4j-bench: how fast the Neo4j sink writes records from Kafka into a graph, against a plain neo4rs loop
//! running the same `UNWIND $events AS event <cypher>` batches, one transaction each, on the same server in the
//! same run. The server is ArcadeDB with its Bolt plugin (a server of the bench's own).
//!
//! Usage: neo4j-bench [N] (default 50,000 records). Needs tansu on 127.0.0.1:9092 (`scripts/bench neo4j` starts it).

use connect_e2e::arcadedb::{ArcadeDb, PASSWORD};
use connect_e2e::*;
use neo4rs::{BoltList, BoltMap, BoltType};
use serde_json::json;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
/// The template, writing nodes of `label` (each run its own label, so no run finds another's nodes).
fn cypher(label: &str) -> String {
    format!("CREATE (:{label} {{id: event.TRAIN_ID, loc: event.LOC_STANOX, late: event.TIMETABLE_VARIATION}})")
}

fn event(i: usize) -> serde_json::Value {
    json!({"TRAIN_ID": format!("train-{i}"), "LOC_STANOX": format!("{:05}", i % 90_000), "TIMETABLE_VARIATION": i % 30, "EVENT_TYPE": "ARRIVAL"})
}

fn bolt(value: &serde_json::Value) -> BoltType {
    let mut map = BoltMap::new();
    for (k, v) in value.as_object().unwrap() {
        let v = match v {
            serde_json::Value::String(s) => BoltType::from(s.as_str()),
            serde_json::Value::Number(n) => BoltType::from(n.as_i64().unwrap()),
            other => panic!("not in the bench's events: {other}"),
        };
        map.put(k.as_str().into(), v);
    }
    BoltType::Map(map)
}

/// The limit: the same events in UNWIND batches of `BATCH`, a transaction each, one after another. Records/s.
fn plain(db: &ArcadeDb, n: usize, label: &str) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let config = neo4rs::ConfigBuilder::default().uri(db.uri()).user("root").password(PASSWORD).build().unwrap();
        let graph = neo4rs::Graph::connect(config).await.expect("connect");
        let started = Instant::now();
        // As the sink does: the record's JSON is parsed and made Bolt values, then sent.
        let statement = format!("UNWIND $events AS event {}", cypher(label));
        for start in (0..n).step_by(BATCH) {
            let mut events = BoltList::new();
            for i in start..(start + BATCH).min(n) {
                let text = event(i).to_string();
                events.push(bolt(&serde_json::from_str(&text).unwrap()));
            }
            let mut txn = graph.start_txn_on("neo4j").await.expect("begin");
            txn.run(neo4rs::query(&statement).param("events", BoltType::List(events))).await.expect("run");
            txn.commit().await.expect("commit");
        }
        n as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let topic = unique("neo4j_bench");
    println!("neo4j-bench: producing {n} JSON records to Kafka");
    produce(
        &topic,
        &(0..n).map(|i| (Some(format!("train-{i}").into_bytes()), Some(event(i).to_string().into_bytes()), vec![])).collect::<Vec<_>>(),
    );
    let consume = n as f64 / plain_consume_secs(&topic, n);

    // ArcadeDB's JVM is cold at first (the first run of a fresh server is ~2x slower): a warm-up run, not counted.
    // Then the server may still drift as its graph and heap grow: the limit is the mean of a plain run before the
    // sink's and one after, so neither side gets the better server.
    plain(&db, n, "WarmUp");
    let before = plain(&db, n, "PlainBefore");
    assert_eq!(db.nodes("PlainBefore"), n as i64);

    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("bench-neo4j");
    setup.connector(
        &name,
        json!({
            "connector.class": "streams.kafka.connect.sink.Neo4jSinkConnector",
            "topics": topic, "neo4j.server.uri": db.uri(),
            "neo4j.authentication.basic.username": "root", "neo4j.authentication.basic.password": PASSWORD,
            "neo4j.batch.size": BATCH.to_string(),
            format!("neo4j.topic.cypher.{topic}"): cypher("Sink"),
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        }),
    );
    let mut worker = setup.start();
    let written = || worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
    // From the first record written to the last: the consumer group join is not throughput.
    let first = wait_for("the first records", Duration::from_secs(120), || (written() > 0).then(Instant::now));
    let first_count = written();
    wait_for("every record", Duration::from_secs(1800), || (written() >= n).then_some(()));
    let secs = first.elapsed().as_secs_f64() * n as f64 / (n - first_count.min(n - 1)) as f64;
    let rss = memory_kib(worker.pid()).map(|(rss, _)| rss).unwrap_or(0);
    worker.stop();
    assert_eq!(db.nodes("Sink"), n as i64, "every record written");
    let after = plain(&db, n, "PlainAfter");
    assert_eq!(db.nodes("PlainAfter"), n as i64);
    let limit = (before + after) / 2.0;
    let sink = n as f64 / secs;
    println!("{:<64} {:>12}", "measure", "records/s");
    println!("{:<64} {:>12.0}", format!("plain neo4rs loop, UNWIND batches of {BATCH}, a transaction each, before"), before);
    println!("{:<64} {:>12.0}", "the same after the sink's run", after);
    println!("{:<64} {:>12.0}", "the limit: their mean", limit);
    println!("{:<64} {:>12.0}", "plain rdkafka consumer of the topic (for context)", consume);
    println!("{:<64} {:>12.0}", "Kafka -> Neo4jSinkConnector (legacy keys), same batches", sink);
    println!("ratio sink / plain neo4rs loop: {:.2} (aim >= 0.8); worker RSS {rss} KiB", sink / limit);
}
