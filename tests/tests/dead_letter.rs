//! Error tolerance and dead-letter queues on every stage, sources included. Every test proves the count:
//! records in = records delivered + records in the DLQ.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

fn dlq_settings(dlq: &str) -> serde_json::Value {
    json!({
        "errors.tolerance": "all",
        "errors.log.enable": true,
        "errors.deadletterqueue.topic.name": dlq,
        "errors.deadletterqueue.topic.replication.factor": 1,
        "errors.deadletterqueue.context.headers.enable": true,
    })
}

fn metrics(worker: &Worker, name: &str) -> serde_json::Value {
    worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0].clone()
}

/// 10,000 records, 5% malformed JSON: the sink gets exactly the 9,500 good ones, the DLQ exactly the 500
/// bad ones with their original bytes, headers and timestamp plus Kafka Connect's context headers.
#[test]
fn malformed_json_goes_to_the_dlq_with_original_bytes_and_headers() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("e2e-dlq-json-in"), unique("e2e-dlq-json"));
    let bad = |i: usize| i % 20 == 7;
    let value = |i: usize| if bad(i) { format!("{{\"broken\": {i}") } else { format!("{{\"n\":{i}}}") };
    let records: Vec<TestRecord> = (0..10_000)
        .map(|i| {
            (
                Some(format!("k-{i}").into_bytes()),
                Some(value(i).into_bytes()),
                vec![("origin".to_string(), format!("test-{i}").into_bytes())],
            )
        })
        .collect();
    produce(&topic, &records);
    let originals = read_topic_full(&topic, 10_000, Duration::from_secs(30));
    assert_eq!(originals.len(), 10_000);

    let output = dir.path().join("out.jsonl");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let config = merge_json(
        json!({"connector.class": "FileStreamSink", "topics": topic, "file": output, "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": false}),
        dlq_settings(&dlq),
    );
    setup.connector("dlq-json", config);
    let mut worker = setup.start();
    wait_for("9,500 good records in the sink", Duration::from_secs(90), || (line_count(&output) >= 9_500).then_some(()));
    let dead = read_topic_full(&dlq, 500, Duration::from_secs(60));

    let expected: Vec<String> = (0..10_000).filter(|&i| !bad(i)).map(value).collect();
    assert_eq!(read_lines(&output), expected, "the sink got exactly the good records, in order");
    assert_eq!(dead.len(), 500, "exactly the bad records are in the DLQ");
    for record in &dead {
        let i: usize = record.header("__connect.errors.offset").expect("offset header").parse().unwrap();
        assert!(bad(i), "record {i} is not a bad one");
        let original = &originals[i];
        assert_eq!(record.value.as_deref(), Some(value(i).as_bytes()), "original value bytes");
        assert_eq!(record.key, original.key, "original key bytes");
        assert_eq!(record.timestamp, original.timestamp, "original timestamp");
        assert_eq!(record.header("origin"), Some(format!("test-{i}")), "original headers kept");
        assert_eq!(record.header("__connect.errors.topic").as_deref(), Some(topic.as_str()));
        assert_eq!(record.header("__connect.errors.partition").as_deref(), Some("0"));
        assert_eq!(record.header("__connect.errors.connector.name").as_deref(), Some("dlq-json"));
        assert_eq!(record.header("__connect.errors.task.id").as_deref(), Some("0"));
        assert_eq!(record.header("__connect.errors.stage").as_deref(), Some("VALUE_CONVERTER"));
        assert_eq!(record.header("__connect.errors.class.name").as_deref(), Some("org.apache.kafka.connect.json.JsonConverter"));
        assert_eq!(
            record.header("__connect.errors.exception.class.name").as_deref(),
            Some("org.apache.kafka.connect.errors.DataException")
        );
        assert!(record.header("__connect.errors.exception.message").unwrap().contains("serialization error"));
        assert!(record.header("__connect.errors.exception.stacktrace").unwrap().contains("Caused by:"));
    }
    let m = metrics(&worker, "dlq-json");
    assert_eq!(m["records-read"], 10_000, "{m}");
    assert_eq!(m["records-written"], 9_500, "{m}");
    assert_eq!(m["deadletterqueue-produce-requests"], 500, "{m}");
    assert_eq!(m["deadletterqueue-produce-failures"], 0, "{m}");
    assert_eq!(m["total-records-skipped"], 500, "{m}");
    assert_eq!(m["total-record-errors"], 500, "{m}");
    assert_eq!(worker.stop(), Some(0));
}

/// A transform that throws on some records: those go to the DLQ with the TRANSFORMATION stage and the
/// transform's class; the rest arrive transformed.
#[test]
fn transform_failures_go_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("e2e-dlq-smt-in"), unique("e2e-dlq-smt"));
    let bad = |i: usize| i % 10 == 3;
    let records: Vec<TestRecord> = (0..1_000)
        .map(|i| (None, Some(if bad(i) { "42".to_string() } else { format!("{{\"name\":\"n-{i}\",\"i\":{i}}}") }.into_bytes()), vec![]))
        .collect();
    produce(&topic, &records);
    let output = dir.path().join("out.txt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let config = merge_json(
        json!({
            "connector.class": "FileStreamSink", "topics": topic, "file": output,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "transforms": "pick", "transforms.pick.type": "org.apache.kafka.connect.transforms.ExtractField$Value", "transforms.pick.field": "name",
        }),
        dlq_settings(&dlq),
    );
    setup.connector("dlq-smt", config);
    let mut worker = setup.start();
    wait_for("900 records in the sink", Duration::from_secs(60), || (line_count(&output) >= 900).then_some(()));
    let dead = read_topic_full(&dlq, 100, Duration::from_secs(30));
    let expected: Vec<String> = (0..1_000).filter(|&i| !bad(i)).map(|i| format!("n-{i}")).collect();
    assert_eq!(read_lines(&output), expected);
    assert_eq!(dead.len(), 100);
    for record in &dead {
        assert_eq!(record.value.as_deref(), Some(&b"42"[..]));
        assert_eq!(record.header("__connect.errors.stage").as_deref(), Some("TRANSFORMATION"));
        assert_eq!(record.header("__connect.errors.class.name").as_deref(), Some("org.apache.kafka.connect.transforms.ExtractField$Value"));
        assert!(record.header("__connect.errors.exception.message").unwrap().contains("Only Map objects supported"));
    }
    let m = metrics(&worker, "dlq-smt");
    assert_eq!(
        (m["records-read"].as_u64(), m["records-written"].as_u64(), m["deadletterqueue-produce-requests"].as_u64()),
        (Some(1_000), Some(900), Some(100)),
        "{m}"
    );
    assert_eq!(worker.stop(), Some(0));
}

/// A sink whose target rejects some records reports exactly those through the errant-record reporter;
/// they reach the DLQ (stage TASK_PUT) and the rest of each batch is written.
#[test]
fn records_the_target_rejects_go_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("e2e-dlq-put-in"), unique("e2e-dlq-put"));
    let value = |i: usize| if i.is_multiple_of(20) { format!("reject-{i}") } else { format!("v-{i}") };
    let records: Vec<TestRecord> = (0..1_000).map(|i| (Some(format!("k{i}").into_bytes()), Some(value(i).into_bytes()), vec![])).collect();
    produce(&topic, &records);
    let output = dir.path().join("out.txt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup
        .connector("dlq-put", merge_json(json!({"connector.class": "RejectingSink", "topics": topic, "file": output}), dlq_settings(&dlq)));
    let mut worker = setup.start();
    wait_for("950 accepted records", Duration::from_secs(60), || (line_count(&output) >= 950).then_some(()));
    let dead = read_topic_full(&dlq, 50, Duration::from_secs(30));
    let expected: Vec<String> = (0..1_000).filter(|i| i % 20 != 0).map(value).collect();
    assert_eq!(read_lines(&output), expected);
    assert_eq!(dead.len(), 50);
    for record in &dead {
        let i: usize = record.header("__connect.errors.offset").unwrap().parse().unwrap();
        assert_eq!(record.value.as_deref(), Some(value(i).as_bytes()));
        assert_eq!(record.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(record.header("__connect.errors.stage").as_deref(), Some("TASK_PUT"));
        assert!(record.header("__connect.errors.exception.message").unwrap().contains("target rejected"));
    }
    let m = metrics(&worker, "dlq-put");
    assert_eq!(
        (m["records-read"].as_u64(), m["records-written"].as_u64(), m["deadletterqueue-produce-requests"].as_u64()),
        (Some(1_000), Some(950), Some(50)),
        "{m}"
    );
    assert_eq!(worker.stop(), Some(0));
}

/// Beyond Kafka Connect: a source whose records are partly unconvertible fills its DLQ, with the source
/// partition and offset in the headers, keeps running, and stores its offset past them.
#[test]
fn a_source_with_unconvertible_records_fills_its_dlq_and_keeps_running() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("e2e-src-out"), unique("e2e-src-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let config = merge_json(
        json!({"connector.class": "FlakySource", "topic": topic, "records": 1000, "bad.every": 10, "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter"}),
        dlq_settings(&dlq),
    );
    setup.connector("dlq-source", config);
    let mut worker = setup.start();
    wait_for("900 good records", Duration::from_secs(60), || (topic_count(&topic) >= 900).then_some(()));
    let dead = read_topic_full(&dlq, 100, Duration::from_secs(30));
    assert_eq!(topic_count(&topic), 900);
    assert_eq!(dead.len(), 100);
    for record in &dead {
        let n: i64 = String::from_utf8(record.value.clone().unwrap()).unwrap().parse().expect("the unconvertible value, as JSON");
        assert_eq!((n + 1).rem_euclid(10), 0, "only every 10th record is unconvertible");
        assert_eq!(record.header("__connect.errors.stage").as_deref(), Some("VALUE_CONVERTER"));
        assert_eq!(record.header("__connect.errors.class.name").as_deref(), Some("org.apache.kafka.connect.converters.ByteArrayConverter"));
        assert_eq!(record.header("__connect.errors.source.partition").as_deref(), Some(r#"{"source":"flaky"}"#));
        assert_eq!(record.header("__connect.errors.source.offset"), Some(format!(r#"{{"next":{}}}"#, n + 1)));
    }
    let (_, status) = worker.get("/connectors/dlq-source/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    let m = metrics(&worker, "dlq-source");
    assert_eq!(
        (m["records-read"].as_u64(), m["records-written"].as_u64(), m["deadletterqueue-produce-requests"].as_u64()),
        (Some(1_000), Some(900), Some(100)),
        "{m}"
    );
    assert_eq!(worker.stop(), Some(0));
    let offsets: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("connect.offsets")).unwrap()).unwrap();
    assert_eq!(offsets["dlq-source"][0]["offset"]["next"], 1000, "the offset advanced past the dead-lettered records");
}

/// `errors.tolerance=none`: the first bad record fails the task with its coordinates in the trace,
/// nothing after it is committed, and a restart after fixing the cause resumes at that record.
#[test]
fn tolerance_none_fails_at_the_first_bad_record_and_resumes_there() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-none-in");
    let good = |i: usize| format!("{{\"n\":{i}}}");
    let records: Vec<TestRecord> = (0..100).map(|i| (None, Some(good(i).into_bytes()), vec![])).collect();
    produce(&topic, &records);
    let output = dir.path().join("out.jsonl");
    let base = json!({"connector.class": "FileStreamSink", "topics": topic, "file": output, "value.converter": "JsonConverter", "value.converter.schemas.enable": false});
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enable", "false")]);
    setup.connector("strict", base.clone());
    let mut worker = setup.start();
    wait_for("the first 100 records", Duration::from_secs(60), || (line_count(&output) >= 100).then_some(()));

    let mut more: Vec<TestRecord> = vec![(None, Some(b"{not json".to_vec()), vec![])];
    more.extend((101..200).map(|i| (None, Some(good(i).into_bytes()), vec![])));
    produce(&topic, &more);
    let status = wait_for("the task FAILED", Duration::from_secs(30), || {
        let (_, s) = worker.get("/connectors/strict/status");
        (s["tasks"][0]["state"] == "FAILED").then_some(s)
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("stage VALUE_CONVERTER"), "{trace}");
    assert!(trace.contains(&format!("topic {topic} partition 0 offset 100")), "{trace}");
    assert_eq!(line_count(&output), 100, "nothing after the bad record was written");
    let committed = committed_offsets("connect-strict", &topic);
    assert_eq!(committed, vec![(0, 100)], "the commit stops right before the bad record");
    assert_eq!(worker.stop(), Some(0));

    // Fix the cause (here: tolerate and skip the bad record) and restart: it resumes at that record.
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("strict", merge_json(base, json!({"errors.tolerance": "all"})));
    let mut worker = setup.start();
    wait_for("the rest of the records", Duration::from_secs(60), || (line_count(&output) >= 199).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    let expected: Vec<String> = (0..200).filter(|&i| i != 100).map(good).collect();
    assert_eq!(read_lines(&output), expected, "resumed at the bad record: no duplicates, nothing lost");
    assert_eq!(worker.stop(), Some(0));
}
