//! FileStreamSource → Kafka (tansu) → FileStreamSink, end to end, through the real `connect` binary.

use connect_e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

fn source(file: &std::path::Path, topic: &str) -> serde_json::Value {
    json!({"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasks.max": 1, "file": file, "topic": topic})
}

fn sink(file: &std::path::Path, topic: &str) -> serde_json::Value {
    json!({"connector.class": "FileStreamSink", "tasks.max": "1", "file": file, "topics": topic})
}

/// Test 1: 100,000 lines in, the same bytes out.
#[test]
fn hundred_thousand_lines_arrive_byte_identical() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    let content = numbered_lines(0..100_000, 64);
    std::fs::write(&input, &content).unwrap();
    let topic = unique("e2e-roundtrip");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("rt-source", source(&input, &topic)).connector("rt-sink", sink(&output, &topic));
    let mut worker = setup.start();
    wait_for("100,000 lines in the sink file", Duration::from_secs(120), || (line_count(&output) >= 100_000).then_some(()));
    assert_eq!(worker.stop(), Some(0), "SIGTERM must stop the worker cleanly; log:\n{}", worker.log_text());
    let out = std::fs::read_to_string(&output).unwrap();
    assert_eq!(out.len(), content.len(), "output size differs");
    assert!(out == content, "output is not byte-identical to the input");
    assert_eq!(topic_count(&topic), 100_000);
}

/// Test 2: SIGKILL in the middle of a growing file, then restart: every line arrives, and the only
/// duplicates are records after the last committed offsets (what at-least-once allows).
#[test]
fn sigkill_mid_stream_loses_nothing_and_duplicates_stay_bounded() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    let total = 100_000;
    let topic = unique("e2e-kill");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("kill-source", source(&input, &topic)).connector("kill-sink", sink(&output, &topic));
    let mut file = std::fs::File::create(&input).unwrap();
    let mut worker = setup.start();

    // The file grows like a log while the worker runs. Once the sink is consuming, keep appending for a
    // few offset-commit intervals and kill the worker in the middle of it.
    let chunk = 2_000;
    let mut written = 0;
    let mut append = |written: &mut usize| {
        file.write_all(numbered_lines(*written..*written + chunk, 64).as_bytes()).unwrap();
        *written += chunk;
    };
    while written < total / 5 {
        append(&mut written);
    }
    wait_for("the sink to be consuming", Duration::from_secs(60), || (line_count(&output) >= 10_000).then_some(()));
    while written < total * 3 / 5 {
        append(&mut written);
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.kill_hard();

    // What was committed at the moment of the kill bounds the duplicates.
    let offsets: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("connect.offsets")).unwrap()).unwrap();
    let committed_position = offsets["kill-source"][0]["offset"]["position"].as_u64().expect("a stored source offset");
    let topic_at_kill = topic_count(&topic);
    let group_committed: i64 = committed_offsets("connect-kill-sink", &topic).iter().map(|(_, o)| *o).sum();
    let sink_lines_at_kill = line_count(&output);
    eprintln!("at kill: source position {committed_position}, {topic_at_kill} records in topic, sink committed {group_committed}, {sink_lines_at_kill} lines in sink file");
    assert!(committed_position > 0 && (committed_position as usize) < total * 65, "kill happened mid-file");
    assert!(group_committed > 0, "the sink committed offsets before the kill");

    while written < total {
        append(&mut written);
    }
    let mut worker = setup.start();
    let expected: Vec<String> = numbered_lines(0..total, 64).lines().map(str::to_string).collect();
    wait_for("every line in the sink file", Duration::from_secs(180), || {
        let lines = read_lines(&output);
        let distinct: std::collections::HashSet<&String> = lines.iter().collect();
        (distinct.len() >= total).then_some(())
    });
    assert_eq!(worker.stop(), Some(0));

    // Kafka: every line present; a line appears twice only if it lies after the committed source position.
    let records = read_topic(&topic, total + 200_000, Duration::from_secs(20));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, _, _, value) in &records {
        *seen.entry(String::from_utf8(value.clone().unwrap()).unwrap()).or_default() += 1;
    }
    let line_bytes = 65u64;
    let mut topic_dups = 0;
    for (i, line) in expected.iter().enumerate() {
        let n = seen.get(line).copied().unwrap_or(0);
        assert!(n >= 1, "line {i} never reached Kafka");
        if n > 1 {
            topic_dups += n - 1;
            let end = (i as u64 + 1) * line_bytes;
            assert!(end > committed_position, "line {i} (ends at byte {end}) was committed at {committed_position} but sent again");
        }
    }
    assert_eq!(seen.len(), total, "unexpected records in the topic");

    // Sink file: every line present; a line is written again only if its record was after the group's
    // committed offset at the kill, or the source re-sent it (a second Kafka record, delivered anew).
    let lines = read_lines(&output);
    let sink_dups = lines.len() - total;
    let allowed = (topic_at_kill - group_committed).max(0) as usize + topic_dups;
    eprintln!("duplicates: {topic_dups} in Kafka (source re-sent after its committed offset), {sink_dups} in the sink file (allowed up to {allowed})");
    assert!(
        sink_dups <= allowed,
        "{sink_dups} duplicate lines in the sink file, but only {allowed} records were uncommitted at the kill or re-sent"
    );
}

/// Test 3: a clean restart resumes from the stored offsets instead of re-reading the file.
#[test]
fn restart_resumes_from_stored_offsets() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, numbered_lines(0..1_000, 40)).unwrap();
    let topic = unique("e2e-resume");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("resume-source", source(&input, &topic));
    let mut worker = setup.start();
    wait_for("1,000 records", Duration::from_secs(60), || (topic_count(&topic) >= 1_000).then_some(()));
    assert_eq!(worker.stop(), Some(0));

    let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    f.write_all(numbered_lines(1_000..1_500, 40).as_bytes()).unwrap();
    let mut worker = setup.start();
    wait_for("1,500 records", Duration::from_secs(60), || (topic_count(&topic) >= 1_500).then_some(()));
    std::thread::sleep(Duration::from_secs(2)); // time for any wrongful re-read to show
    assert_eq!(worker.stop(), Some(0));
    let records = read_topic(&topic, 1_500, Duration::from_secs(20));
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.3.clone().unwrap()).unwrap()).collect();
    let expected: Vec<String> = numbered_lines(0..1_500, 40).lines().map(str::to_string).collect();
    assert_eq!(topic_count(&topic), 1_500, "the restart re-read lines it had already sent");
    assert_eq!(values, expected);
}

/// Test 4: a task that fails leaves the worker and the other connectors running.
#[test]
fn failing_task_leaves_worker_and_other_connector_running() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, numbered_lines(0..500, 40)).unwrap();
    let topic = unique("e2e-isolation");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup
        .connector("broken-sink", sink(&dir.path().join("no/such/dir/out.txt"), &topic))
        .connector("healthy-source", source(&input, &topic));
    let mut worker = setup.start();

    let status = wait_for("broken-sink task FAILED", Duration::from_secs(30), || {
        let (code, body) = worker.get("/connectors/broken-sink/status");
        (code == 200 && body["tasks"][0]["state"] == "FAILED").then_some(body)
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("Couldn't find or create file"), "trace names the cause: {trace}");
    assert!(trace.contains("no/such/dir/out.txt"), "trace names the file: {trace}");
    assert_eq!(status["type"], "sink");

    wait_for("the healthy source's 500 records", Duration::from_secs(60), || (topic_count(&topic) >= 500).then_some(()));
    let (_, healthy) = worker.get("/connectors/healthy-source/status");
    assert_eq!(healthy["connector"]["state"], "RUNNING");
    assert_eq!(healthy["tasks"][0]["state"], "RUNNING");
    assert!(healthy["tasks"][0].get("trace").is_none(), "no trace on a healthy task");
    let (_, names) = worker.get("/connectors");
    assert_eq!(names, json!(["broken-sink", "healthy-source"]));
    assert!(worker.is_running(), "the worker survived the failed task");
    assert_eq!(worker.stop(), Some(0));
}
