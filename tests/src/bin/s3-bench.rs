//! s3-bench: how fast the S3 sink archives records from Kafka, against a plain loop in the same run that
//! consumes the same records (rdkafka) and uploads the same number of objects of the same sizes (aws-sdk-s3, one
//! PUT each, one after another), to the same store. As JSON lines, as Avro and as Parquet (schemaless JSON values
//! with an inferred schema). Also the worker's peak RSS.
//!
//! Usage: s3-bench [N] (default 200,000 records). Needs tansu on 127.0.0.1:9092 and SeaweedFS on 127.0.0.1:8333
//! (`scripts/bench s3` starts both).

use connect_e2e::s3::{self, S3_URL};
use connect_e2e::*;
use rdkafka::Message;
use serde_json::json;
use std::time::{Duration, Instant};

const FLUSH: usize = 10_000;

fn event(i: usize) -> Vec<u8> {
    json!({"TRAIN_ID": format!("train-{i}"), "LOC_STANOX": format!("{:05}", i % 90_000), "TIMETABLE_VARIATION": i % 30, "EVENT_TYPE": "ARRIVAL"})
        .to_string()
        .into_bytes()
}

/// The limit: consume `n` records and PUT one object per `FLUSH` records, each of the size the sink's object had.
fn plain(topic: &str, n: usize, bucket: &str, sizes: &[u64]) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testkey", "testsecret", None, None, "bench"))
            .load()
            .await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .endpoint_url(S3_URL)
            .force_path_style(true)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    });
    let consumer = plain_consumer(topic);
    let started = Instant::now();
    let (mut read, mut file) = (0, Vec::new());
    while read < n {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        file.extend_from_slice(message.payload().unwrap_or_default());
        file.push(b'\n');
        read += 1;
        if read % FLUSH == 0 {
            let index = read / FLUSH - 1;
            file.resize(sizes[index] as usize, b' ');
            let body = std::mem::take(&mut file);
            let key = format!("plain/{topic}+0+{:010}", index * FLUSH);
            runtime.block_on(client.put_object().bucket(bucket).key(&key).body(body.into()).send()).expect("PUT");
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The sink's rate (from its first record read to its last object stored) and the worker's peak RSS in KiB.
fn sink(dir: &std::path::Path, topic: &str, n: usize, bucket: &str, format: &str) -> (f64, u64) {
    let mut setup = WorkerSetup::new(
        dir,
        &[("value.converter", "org.apache.kafka.connect.json.JsonConverter"), ("value.converter.schemas.enable", "false")],
    );
    let name = unique("bench-s3");
    setup.connector(
        &name,
        json!({
            "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": topic,
            "s3.bucket.name": bucket, "s3.region": "us-east-1", "store.url": S3_URL,
            "aws.access.key.id": "testkey", "aws.secret.access.key": "testsecret",
            "flush.size": FLUSH.to_string(), "format.class": format, "topics.dir": format!("sink-{}", format.rsplit('.').next().unwrap()),
        }),
    );
    let mut worker = setup.start();
    let read = || worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0]["records-read"].as_u64().unwrap_or(0);
    let first = wait_for("the first records", Duration::from_secs(120), || (read() > 0).then(Instant::now));
    let prefix = format!("sink-{}/", format.rsplit('.').next().unwrap());
    let mut peak = 0;
    wait_for("every object", Duration::from_secs(1800), || {
        peak = peak.max(memory_kib(worker.pid()).map(|(hwm, _)| hwm).unwrap_or(0));
        (s3::list(bucket, &prefix).len() >= n / FLUSH).then_some(())
    });
    let secs = first.elapsed().as_secs_f64();
    peak = peak.max(memory_kib(worker.pid()).map(|(hwm, _)| hwm).unwrap_or(0));
    worker.stop();
    (n as f64 / secs, peak)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let n = n / FLUSH * FLUSH;
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique("s3-bench").to_lowercase().replace('_', "-");
    create_s3_bucket(&bucket);
    let topic = unique("s3_bench");
    println!("s3-bench: producing {n} JSON records to Kafka");
    produce(&topic, &(0..n).map(|i| (None, Some(event(i)), vec![])).collect::<Vec<_>>());
    println!("{:<58} {:>12} {:>12} {:>7} {:>10}", "measure", "records/s", "limit", "ratio", "peak RSS");
    for (label, format) in [
        ("JSON lines", "io.confluent.connect.s3.format.json.JsonFormat"),
        ("Avro", "io.confluent.connect.s3.format.avro.AvroFormat"),
        ("Parquet", "io.confluent.connect.s3.format.parquet.ParquetFormat"),
    ] {
        let (rate, peak) = sink(dir.path(), &topic, n, &bucket, format);
        let prefix = format!("sink-{}/", format.rsplit('.').next().unwrap());
        let sizes: Vec<u64> = s3::list_sizes(&bucket, &prefix).into_iter().map(|(_, s)| s).collect();
        let limit = plain(&topic, n, &bucket, &sizes);
        println!(
            "{:<58} {:>12.0} {:>12.0} {:>7.2} {:>7} MiB",
            format!("Kafka -> S3SinkConnector, {label}, flush.size {FLUSH}"),
            rate,
            limit,
            rate / limit,
            peak / 1024
        );
    }
    println!("limit: a plain rdkafka consumer + aws-sdk-s3 PUTs of objects of the same sizes, in the same run");
}
