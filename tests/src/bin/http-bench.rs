//! http-bench: how fast the HTTP sink posts records from Kafka to a local server, against two limits measured
//! in the same run with the same number of requests in flight: a plain async client (reqwest) posting the same
//! bodies, ready-made in memory; and the same client posting bodies made of the records a plain rdkafka consumer
//! reads from the same topic (the same work as the sink: read Kafka, make bodies, post). Batches of 1 (the
//! Telegram alert config) and of 100 (JSON arrays).
//!
//! Usage: http-bench [N] (records per run for batches of 1; ten times that for batches of 100; default 20,000).
//! Needs tansu on 127.0.0.1:9092 (`scripts/bench http` starts it).

use connect_e2e::http_target::{ok, HttpTarget};
use connect_e2e::*;
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};

struct Case {
    label: &'static str,
    records: usize,
    batch: usize,
    in_flight: usize,
}

fn value(i: usize) -> String {
    json!({"MESSAGE": format!("Train {i} is late by {} minutes at LEEDS", i % 60)}).to_string()
}

/// The body the sink sends for records `range` with this case's config.
fn body(case: &Case, range: std::ops::Range<usize>) -> String {
    if case.batch == 1 {
        let i = range.start;
        format!(r#"{{"chat_id":"-364377679","parse_mode": "markdown","text":"Train {i} is late by {} minutes at LEEDS"}}"#, i % 60)
    } else {
        format!("[{}]", range.map(value).collect::<Vec<_>>().join(","))
    }
}

/// Post `bodies` with a plain reqwest client, `in_flight` at a time; the number answered. Both limits use it.
fn post_all<B: Into<reqwest::Body>>(bodies: impl futures::Stream<Item = B>, url: &str, in_flight: usize) -> usize {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        bodies
            .map(|b| {
                let client = client.clone();
                async move {
                    let response = client.post(url).header("content-type", "application/json").body(b).send().await.expect("post");
                    response.bytes().await.is_ok()
                }
            })
            .buffered(in_flight)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await
    })
}

/// The limit: the same bodies posted by a plain reqwest client, `in_flight` at a time. Records per second.
fn plain(case: &Case, url: &str) -> f64 {
    let bodies: Vec<String> = (0..case.records).step_by(case.batch).map(|s| body(case, s..(s + case.batch).min(case.records))).collect();
    let started = Instant::now();
    let posted = post_all(stream::iter(bodies), url, case.in_flight);
    assert_eq!(posted, case.records.div_ceil(case.batch));
    case.records as f64 / started.elapsed().as_secs_f64()
}

/// The limit that does the sink's work: a plain rdkafka consumer reads the topic (in a thread of its own) and a
/// plain reqwest client posts bodies made of what it read: the records' own bytes for batches of 1 (what the
/// sink's template makes of them is not rebuilt here), a JSON array of them for batches. Timed from the first
/// record read to the last answer, as the sink is from its first request. Records per second.
fn plain_from_kafka(case: &Case, topic: &str, url: &str) -> f64 {
    use futures::SinkExt;
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    // A futures channel: its receiver is the stream of bodies to post.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Vec<u8>>(64);
    let (topic, records, batch) = (topic.to_string(), case.records, case.batch);
    let reader = std::thread::spawn(move || {
        let consumer = plain_consumer(&topic);
        let mut read = 0;
        let mut started = None;
        let mut body = Vec::new();
        while read < records {
            let Some(message) = consumer.poll(Duration::from_secs(10)) else { continue };
            let message = message.expect("read the topic");
            started.get_or_insert_with(Instant::now);
            let value = message.payload().unwrap_or_default();
            if batch == 1 {
                body.extend_from_slice(value);
            } else {
                body.push(if body.is_empty() { b'[' } else { b',' });
                body.extend_from_slice(value);
            }
            read += 1;
            if batch == 1 || read % batch == 0 || read == records {
                if batch > 1 {
                    body.push(b']');
                }
                if futures::executor::block_on(tx.send(std::mem::take(&mut body))).is_err() {
                    break;
                }
            }
        }
        consumer.unassign().ok();
        started.expect("records read")
    });
    let posted = post_all(rx, url, case.in_flight);
    let started = reader.join().unwrap();
    assert_eq!(posted, case.records.div_ceil(case.batch));
    case.records as f64 / started.elapsed().as_secs_f64()
}

/// The sink: records in a topic, the connector posting them. From the first delivery to the last (the consumer
/// group join is not throughput). Records per second.
fn sink(case: &Case, topic: &str, target: &HttpTarget, path: &str, dir: &std::path::Path) -> f64 {
    // For context: how fast a plain rdkafka consumer reads the same topic, doing nothing else.
    let consume = case.records as f64 / plain_consume_secs(topic, case.records);
    let mut config = json!({
        "connector.class": "io.confluent.connect.http.HttpSinkConnector",
        "http.api.url": target.url(path),
        "topics": topic,
        "headers": "Content-Type: application/json",
        "max.in.flight.requests": case.in_flight.to_string(),
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    });
    if case.batch == 1 {
        config = merge_json(
            config,
            json!({"batch.max.size": "1", "batch.prefix": "{\"chat_id\":\"-364377679\",\"parse_mode\": \"markdown\",", "batch.suffix": "}",
                   "regex.patterns": ".*\\{MESSAGE=(.*)\\}.*", "regex.replacements": "\"text\":\"$1\""}),
        );
    } else {
        config = merge_json(
            config,
            json!({"batch.max.size": case.batch.to_string(), "request.body.format": "json", "batch.json.as.array": "true"}),
        );
    }
    let work = dir.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(&work).unwrap();
    let mut setup = WorkerSetup::new(&work, &[]);
    let name = unique("bench-http");
    setup.connector(&name, config);
    let mut worker = setup.start();
    let calls_at = |p: &str| target.count(p);
    let requests = case.records.div_ceil(case.batch);
    let first = wait_for("the first request", Duration::from_secs(120), || (calls_at(path) > 0).then(Instant::now));
    let first_calls = calls_at(path);
    wait_for("every request", Duration::from_secs(1800), || (calls_at(path) >= requests).then_some(()));
    let secs = first.elapsed().as_secs_f64() * requests as f64 / (requests - first_calls.min(requests - 1)) as f64;
    let (_, metrics) = worker.get(&format!("/connectors/{name}/metrics"));
    let rss = memory_kib(worker.pid()).map(|(rss, _)| rss);
    worker.stop();
    let bodies_ok = target.calls().iter().filter(|c| c.path == path).all(|c| c.status == 200);
    assert!(bodies_ok);
    eprintln!(
        "  {}: plain rdkafka consumer of the topic {consume:.0} rec/s; worker RSS {} KiB; records written {}",
        case.label,
        rss.unwrap_or(0),
        metrics["tasks"][0]["records-written"]
    );
    case.records as f64 / secs
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::with_responder(|_, _| ok());
    let cases = [
        Case { label: "batch.max.size=1, 1 in flight", records: n, batch: 1, in_flight: 1 },
        Case { label: "batch.max.size=1, 8 in flight", records: n, batch: 1, in_flight: 8 },
        Case { label: "batch.max.size=100, 1 in flight", records: n * 10, batch: 100, in_flight: 1 },
    ];
    println!("{:<36} {:>14} {:>14} {:>14} {:>7} {:>7}", "case", "post-only", "read+post", "sink rec/s", "/post", "/read+post");
    // HTTP_BENCH_CASES: a comma-separated list of case numbers (0, 1, 2) to run only those.
    let only: Option<Vec<usize>> =
        std::env::var("HTTP_BENCH_CASES").ok().map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect());
    for (i, case) in cases.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(&i)) {
            continue;
        }
        let topic = unique("http_bench");
        let records: Vec<TestRecord> =
            (0..case.records).map(|i| (Some(format!("train-{i}").into_bytes()), Some(value(i).into_bytes()), vec![])).collect();
        produce(&topic, &records);
        drop(records);
        let post_only = plain(case, &target.url(&format!("/plain{i}")));
        let read_and_post = plain_from_kafka(case, &topic, &target.url(&format!("/plainkafka{i}")));
        let ours = sink(case, &topic, &target, &format!("/sink{i}"), dir.path());
        println!(
            "{:<36} {:>14.0} {:>14.0} {:>14.0} {:>7.2} {:>7.2}",
            case.label,
            post_only,
            read_and_post,
            ours,
            ours / post_only,
            ours / read_and_post
        );
    }
    println!("(aim: sink / post-only >= 0.8; read+post is a plain client that also reads the topic, as the sink must)");
}
