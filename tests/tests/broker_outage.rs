//! The Kafka broker goes away for 30 s in the middle of a stream and comes back: every task resumes by
//! itself, nothing is lost, and `/health` tells the truth meanwhile. The broker is a tansu of the test's
//! own on durable S3 storage (SeaweedFS), so its restart keeps what it stored.

use connect_e2e::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = DurableBroker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    let total = 100_000;
    let topic = unique("e2e-outage");
    let mut setup = WorkerSetup::new(dir.path(), &[("bootstrap.servers", bootstrap.as_str()), ("auto.restart.backoff.max.ms", "5000")]);
    setup
        .connector("outage-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}))
        .connector("outage-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let mut file = std::fs::File::create(&input).unwrap();
    let chunk = 2_000;
    let mut written = 0;
    let mut append = |written: &mut usize| {
        file.write_all(numbered_lines(*written..*written + chunk, 64).as_bytes()).unwrap();
        *written += chunk;
    };
    let mut worker = setup.start();
    while written < total / 5 {
        append(&mut written);
    }
    wait_for("the sink to be consuming", Duration::from_secs(60), || (line_count(&output) >= 10_000).then_some(()));
    while written < total / 2 {
        append(&mut written);
        std::thread::sleep(Duration::from_millis(20));
    }

    broker.kill();
    let down_at = Instant::now();
    // The file keeps growing while the broker is away.
    while written < total {
        append(&mut written);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, health) = wait_for("/health to report the outage", Duration::from_secs(25), || {
        let (code, body) = worker.get("/health");
        (code == 500).then_some((code, body))
    });
    assert_eq!(health["status"], "unhealthy", "{code} {health}");
    assert!(health["message"].as_str().unwrap().contains("not reachable"), "{health}");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed()));
    broker.restart();

    wait_for("/health healthy again", Duration::from_secs(30), || (worker.get("/health").0 == 200).then_some(()));
    let distinct_lines = || read_lines(&output).into_iter().collect::<HashSet<String>>();
    // Every line the broker holds must reach the sink. tansu on S3 has been seen to lose records it had
    // acknowledged across its SIGKILL (95,929 of 100,000 in Kafka afterwards, while the source had an ack for
    // each): when the sink stalls, compare it with what Kafka holds, so that a broker's loss is told apart from ours.
    let deadline = Instant::now() + Duration::from_secs(420);
    let (mut last_count, mut last_change) = (0, Instant::now());
    let mut lost_by_broker = 0;
    loop {
        let in_sink = distinct_lines();
        if in_sink.len() >= total {
            break;
        }
        if in_sink.len() != last_count {
            (last_count, last_change) = (in_sink.len(), Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(30) {
            let in_kafka: HashSet<String> = read_topic_at(&bootstrap, &topic, total, Duration::from_secs(20))
                .into_iter()
                .filter_map(|(_, _, _, v)| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                .collect();
            if in_kafka.len() < total && in_kafka.is_subset(&in_sink) {
                lost_by_broker = total - in_kafka.len();
                break;
            }
            last_change = Instant::now();
        }
        if Instant::now() > deadline {
            let status = |name: &str| worker.get(&format!("/connectors/{name}/status")).1;
            let in_kafka = read_topic_at(&bootstrap, &topic, total * 3, Duration::from_secs(20)).len();
            panic!(
                "{} of {total} distinct lines in the sink; {in_kafka} records in Kafka\nsource: {}\nsink: {}\n\
                 worker log tail:\n{}\n\nbroker log tail:\n{}",
                in_sink.len(),
                status("outage-source"),
                status("outage-sink"),
                tail(&worker.log_text(), 60),
                tail(&broker.log_text(), 30)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // The source's part: the broker acknowledged every line.
    let (_, metrics) = worker.get("/connectors/outage-source/metrics");
    assert_eq!(metrics["tasks"][0]["records-written"], total, "the source did not get every line acknowledged: {metrics}");
    for name in ["outage-source", "outage-sink"] {
        let (_, s) = worker.get(&format!("/connectors/{name}/status"));
        assert_eq!(s["tasks"][0]["state"], "RUNNING", "{name} did not resume by itself: {s}");
        eprintln!("{name}: restart_count {}", s["tasks"][0]["restart_count"]);
    }
    assert_eq!(worker.stop(), Some(0), "log:\n{}", worker.log_text());

    let expected: Vec<String> = numbered_lines(0..total, 64).lines().map(str::to_string).collect();
    let lines = read_lines(&output);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in &lines {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    if lost_by_broker == 0 {
        for (i, l) in expected.iter().enumerate() {
            assert!(counts.contains_key(l.as_str()), "line {i} lost");
        }
    } else {
        eprintln!("WARNING: tansu lost {lost_by_broker} records it had acknowledged; the sink has every record Kafka holds");
    }
    assert_eq!(counts.len(), total - lost_by_broker, "unexpected lines in the sink file");
    let in_kafka = read_topic_at(&bootstrap, &topic, total * 3, Duration::from_secs(20)).len();
    eprintln!(
        "broker outage: {} lines written for {total} inputs ({} duplicates); {in_kafka} records in Kafka",
        lines.len(),
        lines.len() - total
    );
}
