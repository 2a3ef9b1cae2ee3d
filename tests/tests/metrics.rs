//! `GET /metrics` after N records through a file source and a file sink, read with the Prometheus project's
//! own OpenMetrics parser (PyPI prometheus-client), not by string search: the counters equal N under Kafka
//! Connect's metric names (as Strimzi's JMX exporter rules give them), statuses and worker counts are there.

use connect_e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Parses OpenMetrics text with prometheus_client's parser: sample name + sorted labels → value.
fn parse(text: &str) -> HashMap<String, f64> {
    let python = service_tool("CONNECT_TEST_PROMETHEUS_PYTHON", "prometheus-parser-bin");
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        # JSON has no NaN (an empty window's average): sent as a string.
        out[f"{s.name}{{{labels}}}"] = s.value if s.value == s.value else "NaN"
print(json.dumps(out))
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the OpenMetrics parser refused the text: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let values: HashMap<String, serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    values.into_iter().map(|(k, v)| (k, v.as_f64().unwrap_or(f64::NAN))).collect()
}

fn scrape(port: u16) -> String {
    let out = Command::new("curl").args(["-sS", "-f", &format!("http://127.0.0.1:{port}/metrics")]).output().expect("curl");
    assert!(out.status.success(), "GET /metrics: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn counters_equal_the_records_through_a_file_pipeline() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, numbered_lines(0..n, 20)).unwrap();
    let topic = unique("metrics");
    let (source, sink) = (unique("metrics-source"), unique("metrics-sink"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(&source, json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}));
    setup.connector(&sink, json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let mut worker = setup.start();
    // The source's rate covers the last 30 s: read it as soon as its records are in Kafka (the sink may take a
    // while to join its group).
    wait_for("every line in Kafka", Duration::from_secs(60), || (worker.records_written(&source) >= n).then_some(()));
    let early = parse(&scrape(worker.port));
    let source_rate = early.get(&format!("kafka_connect_source_task_source_record_write_rate{{connector={source},task=0}}")).copied();
    assert!(source_rate.is_some_and(|r| r > 0.0), "{source_rate:?}");
    wait_for("every line in the sink file", Duration::from_secs(60), || (line_count(&output) >= n).then_some(()));
    let text = scrape(worker.port);
    let m = parse(&text);
    let get = |key: &str| *m.get(key).unwrap_or_else(|| panic!("{key} missing from:\n{text}"));
    let task = |name: &str| format!("connector={name},task=0");
    assert_eq!(get(&format!("kafka_connect_source_task_source_record_poll_total{{{}}}", task(&source))), n as f64);
    assert_eq!(get(&format!("kafka_connect_source_task_source_record_write_total{{{}}}", task(&source))), n as f64);
    assert_eq!(get(&format!("kafka_connect_sink_task_sink_record_read_total{{{}}}", task(&sink))), n as f64);
    assert_eq!(get(&format!("kafka_connect_sink_task_sink_record_send_total{{{}}}", task(&sink))), n as f64);
    assert_eq!(get(&format!("kafka_connect_task_error_total_record_errors{{{}}}", task(&sink))), 0.0);
    assert_eq!(get(&format!("kafka_connect_task_error_deadletterqueue_produce_requests{{{}}}", task(&source))), 0.0);
    assert_eq!(get(&format!("kafka_connect_connector_task_status{{connector={sink},status=running,task=0}}")), 1.0);
    assert_eq!(get(&format!("kafka_connect_connector_status{{connector={source},connector_type=source,status=running}}")), 1.0);
    assert_eq!(get(&format!("kafka_connect_connector_status{{connector={sink},connector_type=sink,status=running}}")), 1.0);
    assert_eq!(get("kafka_connect_worker_connector_count{}"), 2.0);
    assert_eq!(get("kafka_connect_worker_task_count{}"), 2.0);
    // Start-ups, batches, rates (windowed: the records came within it).
    assert_eq!(get("kafka_connect_worker_connector_startup_attempts_total{}"), 2.0);
    assert_eq!(get("kafka_connect_worker_connector_startup_success_total{}"), 2.0);
    assert_eq!(get("kafka_connect_worker_task_startup_success_total{}"), 2.0);
    assert_eq!(get("kafka_connect_worker_task_startup_failure_percentage{}"), 0.0);
    let batch_max = get(&format!("kafka_connect_connector_task_batch_size_max{{{}}}", task(&sink)));
    assert!(batch_max >= 1.0 && batch_max <= n as f64, "{batch_max}");
    assert!(get(&format!("kafka_connect_sink_task_sink_record_send_rate{{{}}}", task(&sink))) > 0.0);
    assert!(get(&format!("kafka_connect_sink_task_put_batch_max_time_ms{{{}}}", task(&sink))) >= 0.0);
    // Offset commits (every 500 ms here) and the sink partition's lag, which librdkafka reports every 5 s:
    // 0 once every record is read.
    let settled = wait_for("a sink offset commit and the partition's lag", Duration::from_secs(30), || {
        let m = parse(&scrape(worker.port));
        let commits = *m.get(&format!("kafka_connect_sink_task_offset_commit_completion_total{{{}}}", task(&sink)))?;
        let lag = *m.get(&format!("connect_rs_sink_partition_lag{{connector={sink},partition=0,task=0,topic={topic}}}"))?;
        (commits >= 1.0 && lag == 0.0).then_some(m)
    });
    // A fraction, as Kafka Connect reports it: every commit in the window succeeded (a flush with nothing new
    // counts as one).
    let fraction = settled[&format!("kafka_connect_connector_task_offset_commit_success_percentage{{{}}}", task(&source))];
    assert_eq!(fraction, 1.0);

    // A pause shows in the status metric.
    let (code, _) = http("PUT", worker.port, &format!("/connectors/{source}/pause"), None);
    assert_eq!(code, 202);
    wait_for("the paused status in /metrics", Duration::from_secs(30), || {
        parse(&scrape(worker.port))
            .get(&format!("kafka_connect_connector_status{{connector={source},connector_type=source,status=paused}}"))
            .map(|_| ())
    });
    assert_eq!(worker.stop(), Some(0));
}

/// `log.format=json`: every line the worker writes is one JSON object, with the level, the message and the
/// event's fields at the top level: a failing record's line names its connector, task, stage and coordinates.
#[test]
fn json_logs_are_one_object_a_line_with_connector_task_and_record() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\":1}\nnot json\n{\"n\":3}\n").unwrap();
    let topic = unique("e2e-json-logs");
    let mut setup = WorkerSetup::new(dir.path(), &[("log.format", "json")]);
    setup.connector(
        "json-logs",
        json!({
            "connector.class": "FileStreamSource", "file": input, "topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "transforms": "parse", "transforms.parse.type": "io.connectrs.transforms.ParseJson$Value",
            "errors.tolerance": "all", "errors.log.enable": true, "errors.log.include.messages": true,
        }),
    );
    let mut worker = setup.start();
    wait_for("2 records", Duration::from_secs(60), || (topic_count(&topic) >= 2).then_some(()));
    assert_eq!(worker.stop(), Some(0));
    let log = worker.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 5, "{log}");
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string() && line["message"].is_string(), "{line}");
    }
    let running = lines.iter().find(|l| l["message"] == "source task running").expect("the task's start");
    assert_eq!((running["connector"].as_str(), running["task"].as_u64()), (Some("json-logs"), Some(0)), "{running}");
    let failed = lines.iter().find(|l| l["level"] == "ERROR" && l["stage"] == "TRANSFORMATION").expect("the bad line's error");
    assert_eq!(failed["connector"], "json-logs");
    assert!(failed["record"].as_str().unwrap_or("").contains("offset"), "the record's coordinates: {failed}");
}

/// `metrics.listener`: the same OpenMetrics text on an address of its own (for Prometheus), outside the REST
/// API's authentication, which still guards `/metrics` on the REST listener.
#[test]
fn metrics_listener_serves_the_metrics_on_its_own_port() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let users = dir.path().join("users.properties");
    std::fs::write(&users, "admin=secret\n").unwrap();
    let listener = format!("http://127.0.0.1:{metrics_port}");
    let users_path = users.display().to_string();
    let setup = WorkerSetup::new(dir.path(), &[("metrics.listener", &listener), ("rest.auth.basic.users.file", &users_path)]);
    let worker = setup.start();
    let scrape = || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).expect("the metrics port");
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer
    };
    let answer = wait_for("the metrics server", Duration::from_secs(30), || {
        let a = scrape();
        (a.starts_with("HTTP/1.0 200") || a.starts_with("HTTP/1.1 200")).then_some(a)
    });
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let metrics = parse(body);
    assert_eq!(metrics.get("kafka_connect_worker_connector_count{}"), Some(&0.0), "{body}");
    assert_eq!(worker.get("/metrics").0, 401, "the REST listener's /metrics stays behind its authentication");
}
