//! es-bench: how fast the Elasticsearch sink indexes documents from Kafka, against two plain clients in the
//! same run, with the same batch size and requests in flight, against the same server: the limit, a plain
//! rdkafka consumer whose reqwest client posts `_bulk` bodies built from the records it reads (the sink's work:
//! read Kafka, build requests, post); and, for context, the same client posting ready-made bodies (no Kafka, no
//! work while timed). The server is noida-db (an Elasticsearch 8 API emulator).
//!
//! Usage: es-bench [N] (default 100,000 documents). Needs tansu on 127.0.0.1:9092 (`scripts/bench elasticsearch`
//! starts it) and noida-db (`CONNECT_TEST_NOIDA`, or found through `scripts/services noida-bin`).

use connect_e2e::elasticsearch::Elasticsearch;
use connect_e2e::*;
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};

const BATCH: usize = 2000;
const IN_FLIGHT: usize = 5;

fn document(i: usize) -> String {
    json!({"TRAIN_ID": format!("train-{i}"), "LOC_STANOX": format!("{:05}", i % 90_000), "TIMETABLE_VARIATION": i % 30, "ON_TIME": i.is_multiple_of(3), "EVENT_TYPE": "ARRIVAL"})
        .to_string()
}

/// A `_bulk` index action for a document with this id and external version, as the sink writes it.
fn action(index: &str, id: &str, version: i64) -> String {
    let id = serde_json::to_string(id).unwrap();
    format!("{{\"index\":{{\"_index\":\"{index}\",\"_id\":{id},\"version\":{version},\"version_type\":\"external\"}}}}\n")
}

/// The limit: the same documents in `_bulk` requests of `BATCH`, `IN_FLIGHT` at a time. Documents per second.
fn plain(es: &Elasticsearch, n: usize, index: &str) -> f64 {
    let bodies: Vec<String> = (0..n)
        .step_by(BATCH)
        .map(|start| {
            (start..(start + BATCH).min(n))
                .map(|i| format!("{}{}\n", action(index, &format!("train-{i}"), i as i64), document(i)))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let ok = post_all(es, stream::iter(bodies));
    assert_eq!(ok, n.div_ceil(BATCH), "every plain request indexed without errors");
    n as f64 / started.elapsed().as_secs_f64()
}

/// Post `_bulk` bodies with a plain reqwest client, `IN_FLIGHT` at a time; the number indexed without errors.
fn post_all<B: Into<reqwest::Body>>(es: &Elasticsearch, bodies: impl futures::Stream<Item = B>) -> usize {
    let url = format!("{}/_bulk", es.url());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        bodies
            .map(|b| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let answer = client.post(url).header("content-type", "application/x-ndjson").body(b).send().await.expect("post");
                    let body: serde_json::Value = answer.json().await.expect("a bulk answer");
                    body["errors"] == false
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await
    })
}

/// The limit that does the sink's work: a plain rdkafka consumer reads the topic (in a thread of its own) and
/// builds `_bulk` bodies of `BATCH` from what it reads (the key as `_id`, the offset as external version, the
/// value's bytes as the document), which a plain reqwest client posts `IN_FLIGHT` at a time. Timed from the
/// first record read to the last answer, as the sink is from its first document. Documents per second.
fn plain_from_kafka(es: &Elasticsearch, n: usize, topic: &str, index: &str) -> f64 {
    use futures::SinkExt;
    use rdkafka::Message;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Vec<u8>>(16);
    let (reader_topic, reader_index) = (topic.to_string(), index.to_string());
    let reader = std::thread::spawn(move || {
        let consumer = plain_consumer(&reader_topic);
        let (mut read, mut started, mut body) = (0, None, Vec::new());
        while read < n {
            let Some(message) = consumer.poll(Duration::from_secs(10)) else { continue };
            let message = message.expect("read the topic");
            started.get_or_insert_with(Instant::now);
            let id = std::str::from_utf8(message.key().unwrap_or_default()).expect("a text key");
            body.extend_from_slice(action(&reader_index, id, message.offset()).as_bytes());
            body.extend_from_slice(message.payload().unwrap_or_default());
            body.push(b'\n');
            read += 1;
            if (read % BATCH == 0 || read == n) && futures::executor::block_on(tx.send(std::mem::take(&mut body))).is_err() {
                break;
            }
        }
        started.expect("records read")
    });
    let ok = post_all(es, rx);
    let started = reader.join().unwrap();
    assert_eq!(ok, n.div_ceil(BATCH), "every request of the plain consumer + loader indexed without errors");
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let topic = unique("es_bench");
    let index = topic.to_lowercase();
    println!("es-bench: producing {n} JSON records to Kafka");
    produce(&topic, &(0..n).map(|i| (Some(format!("train-{i}").into_bytes()), Some(document(i).into_bytes()), vec![])).collect::<Vec<_>>());
    let consume = n as f64 / plain_consume_secs(&topic, n);

    let ready_made = plain(&es, n, &format!("{index}-plain"));
    assert_eq!(es.count(&format!("{index}-plain")), Some(n as u64));
    let limit = plain_from_kafka(&es, n, &topic, &format!("{index}-plain-kafka"));
    assert_eq!(es.count(&format!("{index}-plain-kafka")), Some(n as u64));

    // The worker's default commit interval, as in production (the tests use 500 ms).
    let mut setup = WorkerSetup::new(dir.path(), &[("offset.flush.interval.ms", "60000")]);
    let name = unique("bench-es");
    setup.connector(
        &name,
        json!({
            "connector.class": "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
            "topics": topic, "connection.url": es.url(), "key.ignore": "false", "schema.ignore": "true",
            "batch.size": BATCH.to_string(), "max.in.flight.requests": IN_FLIGHT.to_string(),
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        }),
    );
    let mut worker = setup.start();
    let written = || worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
    // From the first document written to the last: the consumer group join is not throughput.
    let first = wait_for("the first documents", Duration::from_secs(120), || (written() > 0).then(Instant::now));
    let first_count = written();
    wait_for("every document put", Duration::from_secs(1800), || (written() >= n).then_some(()));
    // Until the last document can be read (a GET by id is real time; a count would need a refresh, which costs the
    // server indexing time), as the loaders are timed to their last answer.
    let last = format!("/{index}/_doc/train-{}", n - 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while es.get(&last).is_none_or(|d| d["found"] != true) {
        assert!(Instant::now() < deadline, "the last document never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = first.elapsed().as_secs_f64() * n as f64 / (n - first_count.min(n - 1)) as f64;
    let rss = memory_kib(worker.pid()).map(|(rss, _)| rss).unwrap_or(0);
    worker.stop();
    assert_eq!(es.count(&index), Some(n as u64), "every document indexed");
    let sink = n as f64 / secs;
    println!("{:<60} {:>12}", "measure", "docs/s");
    println!("{:<72} {:>12.0}", format!("plain consumer + _bulk loader, {BATCH} per request, {IN_FLIGHT} in flight (the limit)"), limit);
    println!("{:<72} {:>12.0}", "plain _bulk loader of ready-made bodies, same batches (for context)", ready_made);
    println!("{:<72} {:>12.0}", "plain rdkafka consumer of the topic (for context)", consume);
    println!("{:<72} {:>12.0}", "Kafka -> ElasticsearchSinkConnector, same batch and in-flight", sink);
    println!(
        "ratio sink / plain consumer + loader: {:.2} (aim >= 0.8); sink / ready-made loader: {:.2}; worker RSS {rss} KiB",
        sink / limit,
        sink / ready_made
    );
}
