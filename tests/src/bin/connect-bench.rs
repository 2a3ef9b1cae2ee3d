//! connect-bench: the worker's throughput and memory against the limit measured in the same run.
//!
//! 1. a plain rdkafka producer writes N records (the limit for a source),
//! 2. a plain rdkafka consumer reads them back (the limit for a sink),
//! 3. `connect standalone` moves the same N lines file → Kafka → file,
//!
//! then prints records/s of each, the ratios, and the worker's peak and idle RSS.
//! Usage: connect-bench [N] [RECORD_BYTES]   (defaults 1000000 and 200)

use connect_e2e::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let width: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    require_broker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let content = numbered_lines(0..n, width);
    std::fs::write(&input, &content).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    println!("connect-bench: {n} records of {width} bytes, broker {}", bootstrap());

    // 1. The limit for a source: a plain producer with the worker's delivery guarantees.
    let raw_topic = unique("bench-raw");
    rt.block_on(create_topic(&raw_topic));
    let producer: ThreadedProducer<DefaultProducerContext> = plain_producer_config().create().unwrap();
    let cpu_before = cpu_secs(std::process::id()).unwrap_or(0.0);
    let start = Instant::now();
    for line in &lines {
        let mut record = BaseRecord::<(), str>::to(&raw_topic).payload(*line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let produce_secs = start.elapsed().as_secs_f64();
    let produce_cpu = cpu_secs(std::process::id()).unwrap_or(0.0) - cpu_before;

    // 2. The limit for a sink: a plain consumer reading them all.
    let consume_secs = plain_consume_secs(&raw_topic, n);

    // 3. The worker, one path at a time so each is compared with its own limit:
    //    a. file source -> Kafka alone, b. Kafka -> file sink alone (reading what a. wrote),
    //    c. both at once, as a pipeline.
    let file_size = content.len() as u64;
    let topic = unique("bench-worker");
    let (source_secs, source_total_secs, source_cpu, source_peak) = run_source(dir.path(), "a", &input, &topic, file_size);
    let (sink_secs, sink_peak) = run_sink(dir.path(), "b", &topic, &content);

    let e2e_dir = dir.path().join("c");
    std::fs::create_dir_all(&e2e_dir).unwrap();
    let output = e2e_dir.join("out.txt");
    let e2e_topic = unique("bench-e2e");
    let mut setup = WorkerSetup::new(&e2e_dir, &[("offset.flush.interval.ms", "200")]);
    setup
        .connector("bench-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": e2e_topic, "batch.size": 10000}))
        .connector("bench-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": e2e_topic}));
    let start = Instant::now();
    let mut worker = setup.start();
    let e2e_done =
        wait_for("every line through the pipeline", Duration::from_secs(600), || (file_len(&output) >= file_size).then(|| start.elapsed()));
    let (e2e_peak, _) = memory_kib(worker.pid()).unwrap_or((0, 0));
    std::thread::sleep(Duration::from_secs(3));
    let (_, after_kib) = memory_kib(worker.pid()).unwrap_or((0, 0));
    worker.stop();
    assert!(std::fs::read_to_string(&output).unwrap() == content, "pipeline output differs from input");

    // 4. An idle worker: no connectors.
    let idle_dir = tempfile::tempdir().unwrap();
    let mut idle = WorkerSetup::new(idle_dir.path(), &[]).start();
    std::thread::sleep(Duration::from_secs(2));
    let (_, idle_kib) = memory_kib(idle.pid()).unwrap_or((0, 0));
    let (idle_anon_kib, idle_file_kib) = memory_split_kib(idle.pid()).unwrap_or((0, 0));
    idle.stop();

    let rate = |secs: f64| n as f64 / secs;
    let (producer_rate, consumer_rate) = (rate(produce_secs), rate(consume_secs));
    let (source_rate, sink_rate, e2e_rate) = (rate(source_secs), rate(sink_secs), rate(e2e_done.as_secs_f64()));
    let source_total_rate = rate(source_total_secs);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!("{:<52} {:>12}", "measure", "records/s");
    println!("{:<52} {:>12.0}", "plain rdkafka producer (limit for a source)", producer_rate);
    println!("{:<52} {:>12.0}", "plain rdkafka consumer (limit for a sink)", consumer_rate);
    println!("{:<52} {:>12.0}", "worker: file source -> Kafka (alone, first record on)", source_rate);
    println!("{:<52} {:>12.0}", "worker: file source -> Kafka (alone, incl. start-up)", source_total_rate);
    println!("{:<52} {:>12.0}", "worker: Kafka -> file sink (alone, after group join)", sink_rate);
    println!("{:<52} {:>12.0}", "worker: file -> Kafka -> file (incl. group join)", e2e_rate);
    println!();
    println!(
        "ratio source / producer: {:.2} (aim >= 0.80); with the worker's start-up: {:.2}",
        source_rate / producer_rate,
        source_total_rate / producer_rate
    );
    println!("ratio sink / consumer:   {:.2}", sink_rate / consumer_rate);
    let micros = |secs: f64| secs * 1e6 / n as f64;
    println!(
        "CPU time per record (all threads): plain producer {:.2} µs, worker file source -> Kafka {:.2} µs (start-up included)",
        micros(produce_cpu),
        micros(source_cpu)
    );
    println!(
        "peak RSS: source {:.1} MiB, sink {:.1} MiB, pipeline {:.1} MiB; pipeline 3 s after: {:.1} MiB",
        mib(source_peak),
        mib(sink_peak),
        mib(e2e_peak),
        mib(after_kib)
    );
    println!(
        "idle worker RSS (no connectors): {:.1} MiB (aim < 20): {:.1} MiB anonymous (heap, stacks, relocated data), {:.1} MiB of the binary and libraries (clean pages, shared)",
        mib(idle_kib),
        mib(idle_anon_kib),
        mib(idle_file_kib)
    );
}

/// The source alone: (seconds from its first record in Kafka to its final offset stored, seconds from the
/// worker's start to that offset, peak RSS). The first is its throughput, as the plain producer's is timed
/// from its first send: process start, config and the producer's connection are start-up, not throughput
/// (the sink is timed from its first line for the same reason). Both ends are watched every 5 ms. Also the
/// worker's CPU time, start-up included.
fn run_source(base: &std::path::Path, name: &str, input: &std::path::Path, topic: &str, file_size: u64) -> (f64, f64, f64, u64) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut setup = WorkerSetup::new(&dir, &[("offset.flush.interval.ms", "100")]);
    setup.connector("bench-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": topic, "batch.size": 10000}));
    let offsets_file = dir.join("connect.offsets");
    let first_in_kafka = first_record_watch(topic);
    let start = Instant::now();
    let mut worker = setup.start();
    let done = wait_for_every("the source to store its final offset", Duration::from_millis(5), Duration::from_secs(600), || {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&offsets_file).ok()?).ok()?;
        (v["bench-source"][0]["offset"]["position"].as_u64()? >= file_size).then(Instant::now)
    });
    let cpu = cpu_secs(worker.pid()).unwrap_or(0.0);
    let first = first_in_kafka.join().expect("watermark watcher");
    let (peak, _) = memory_kib(worker.pid()).unwrap_or((0, 0));
    worker.stop();
    ((done - first).as_secs_f64(), (done - start).as_secs_f64(), cpu, peak)
}

/// A thread that returns when `topic` first holds a record (its high watermark above 0).
fn first_record_watch(topic: &str) -> std::thread::JoinHandle<Instant> {
    let topic = topic.to_string();
    std::thread::spawn(move || {
        let consumer: rdkafka::consumer::BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", bootstrap()).set("group.id", unique("bench-watch")).create().unwrap();
        wait_for_every("the source's first record in Kafka", Duration::from_millis(5), Duration::from_secs(120), || {
            // The time the question was asked: an answer that takes a while must not shorten the source's run.
            let asked = Instant::now();
            let (_, high) = consumer.fetch_watermarks(&topic, 0, Duration::from_millis(50)).ok()?;
            (high > 0).then_some(asked)
        })
    })
}

/// The sink alone: seconds from its first written line to the last (the group join is not throughput),
/// and peak RSS.
fn run_sink(base: &std::path::Path, name: &str, topic: &str, content: &str) -> (f64, u64) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("out.txt");
    let mut setup = WorkerSetup::new(&dir, &[]);
    setup.connector("bench-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let mut worker = setup.start();
    // File sizes, not line counts: reading a 200 MB file every 100 ms would compete with the worker.
    let size = content.len() as u64;
    let first = wait_for("the first sink line", Duration::from_secs(120), || (file_len(&output) > 0).then(Instant::now));
    wait_for("every sink line", Duration::from_secs(600), || (file_len(&output) >= size).then_some(()));
    let secs = first.elapsed().as_secs_f64();
    let (peak, _) = memory_kib(worker.pid()).unwrap_or((0, 0));
    worker.stop();
    assert!(std::fs::read_to_string(&output).unwrap() == content, "sink output differs from input");
    (secs, peak)
}

async fn create_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    admin.create_topics([&new], &AdminOptions::new()).await.unwrap();
}
