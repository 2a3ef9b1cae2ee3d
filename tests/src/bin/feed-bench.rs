//! feed-bench: the HTTP feed source streaming a gzip JSON-lines file (the rail schedule's shape) into
//! Kafka, against `curl | gunzip | lines-producer` moving the same lines from the same local server in the
//! same run. Two connector cases: `jsonl` with JsonConverter (each line parsed and written again, what the
//! rail pipeline runs) and `lines` with StringConverter (the same work as the plain pipeline). Each is timed
//! from process start to the last record Kafka acknowledged. Usage: feed-bench [MB of JSON] (default 200).

use connect_e2e::feed_server::{write_schedule, Content, FeedServer};
use connect_e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let megabytes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedule.jsonl.gz");
    let lines = write_schedule(&path, megabytes * 1024 * 1024);
    let server = FeedServer::start();
    server.set("/schedule.jsonl.gz", Content { file: Some(path.clone()), ..Default::default() });
    let url = server.url("/schedule.jsonl.gz");
    println!("feed-bench: {lines} lines, {megabytes} MB of JSON, {} MB gzipped", std::fs::metadata(&path).unwrap().len() / 1024 / 1024);

    let plain_topic = unique("bench-feed-plain");
    create_topic(&plain_topic);
    let producer = std::env::current_exe().unwrap().with_file_name("lines-producer");
    let start = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sS --fail '{url}' | gunzip | '{}' '{plain_topic}'", producer.display()))
        .status()
        .expect("sh");
    assert!(status.success(), "curl | gunzip | lines-producer failed");
    let plain_secs = start.elapsed().as_secs_f64();

    let mut results = Vec::new();
    for (case, format, converter) in [
        ("jsonl + JsonConverter", "jsonl", "org.apache.kafka.connect.json.JsonConverter"),
        ("lines + StringConverter", "lines", "org.apache.kafka.connect.storage.StringConverter"),
    ] {
        let topic = unique("bench-feed");
        create_topic(&topic);
        let case_dir = dir.path().join(format);
        std::fs::create_dir_all(&case_dir).unwrap();
        let mut setup = WorkerSetup::new(&case_dir, &[]);
        setup.connector(
            "bench-feed",
            json!({
                "connector.class": "HttpSource", "http.request.url": url, "http.response.format": format,
                "http.timer.interval.millis": 3_600_000, "kafka.topic": topic, "batch.size": 5000,
                "value.converter": converter, "value.converter.schemas.enable": "false",
            }),
        );
        let start = Instant::now();
        let worker = setup.start();
        let mut peak = 0;
        loop {
            if let Some((rss, _)) = memory_kib(worker.pid()) {
                peak = peak.max(rss);
            }
            let written = worker.get("/connectors/bench-feed/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
            if written >= lines {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(900), "only {written} of {lines} after 900 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        results.push((case, start.elapsed().as_secs_f64(), peak));
    }
    let plain_rate = lines as f64 / plain_secs;
    println!("{:<52} {:>12} {:>10}", "measure", "lines/s", "ratio");
    println!("{:<52} {:>12.0} {:>10}", "curl | gunzip | lines-producer (the limit)", plain_rate, "");
    for (case, secs, peak) in results {
        let rate = lines as f64 / secs;
        println!("{:<52} {:>12.0} {:>10.2}   peak RSS {} MiB", format!("HTTP source, {case}"), rate, rate / plain_rate, peak / 1024);
    }
    println!("(aim: ratio >= 0.8)");
}
