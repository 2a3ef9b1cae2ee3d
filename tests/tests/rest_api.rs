//! The REST API over real HTTP against a running worker: Kafka Connect's endpoints, shapes and status
//! codes, persistence across restarts, and the cron pipeline people run today (curl + jq).

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

fn source_config(name: &str, file: &std::path::Path, topic: &str) -> serde_json::Value {
    json!({"name": name, "connector.class": "FileStreamSource", "file": file, "topic": topic, "tasks.max": 1})
}

fn state_of(worker: &Worker, name: &str) -> (String, Vec<String>) {
    let (_, s) = worker.get(&format!("/connectors/{name}/status"));
    let tasks =
        s["tasks"].as_array().map(|t| t.iter().map(|t| t["state"].as_str().unwrap_or("").to_string()).collect()).unwrap_or_default();
    (s["connector"]["state"].as_str().unwrap_or("").to_string(), tasks)
}

#[test]
fn connector_lifecycle_over_rest() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, numbered_lines(0..100, 30)).unwrap();
    let topic = unique("e2e-rest");
    let worker_setup = WorkerSetup::new(dir.path(), &[]);
    let mut worker = worker_setup.start();
    let port = worker.port;

    // Root, health, plugins.
    let (code, root) = worker.get("/");
    assert_eq!(code, 200);
    assert!(root["version"].is_string() && root.get("commit").is_some() && root.get("kafka_cluster_id").is_some(), "{root}");
    // The cluster's id once the cluster answered (Redpanda Console and kafbat kafka-ui show it).
    wait_for("the Kafka cluster id at GET /", Duration::from_secs(30), || worker.get("/").1["kafka_cluster_id"].as_str().map(|_| ()));
    assert_eq!(worker.get("/health").0, 200);
    let (_, plugins) = worker.get("/connector-plugins");
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["class"] == "org.apache.kafka.connect.file.FileStreamSourceConnector" && p["type"] == "source"));
    assert!(plugins.as_array().unwrap().iter().all(|p| p["type"] == "source" || p["type"] == "sink"));
    let (_, all) = worker.get("/connector-plugins?connectorsOnly=false");
    assert!(all.as_array().unwrap().iter().any(|p| p["type"] == "converter"));
    assert!(all.as_array().unwrap().iter().any(|p| p["type"] == "transformation"));

    // Create: 201 + Location; duplicate 409; invalid 400 with Kafka Connect's message; bad JSON 400.
    let body = json!({"name": "rest-src", "config": source_config("rest-src", &input, &topic)});
    let (code, created) = http("POST", port, "/connectors", Some(&body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["name"], "rest-src");
    assert_eq!(created["type"], "source");
    assert_eq!(http("POST", port, "/connectors", Some(&body)).0, 409);
    let (code, err) =
        http("POST", port, "/connectors", Some(&json!({"name": "bad", "config": {"connector.class": "FileStreamSource", "tasks.max": 0}})));
    assert_eq!(code, 400);
    assert_eq!(err["error_code"], 400);
    assert!(
        err["message"].as_str().unwrap().starts_with("Connector configuration is invalid and contains the following 2 error(s):"),
        "{err}"
    );
    assert_eq!(raw_http(port, "POST", "/connectors", "{not json").0, 400);
    assert_eq!(http("GET", port, "/connectors/nope", None).0, 404);
    assert_eq!(http("GET", port, "/connectors/nope/status", None).1["error_code"], 404);
    wait_for("RUNNING", Duration::from_secs(20), || {
        (state_of(&worker, "rest-src") == ("RUNNING".into(), vec!["RUNNING".into()])).then_some(())
    });

    // Lists, expand, config, tasks.
    assert_eq!(worker.get("/connectors").1, json!(["rest-src"]));
    let (_, expanded) = worker.get("/connectors?expand=status&expand=info");
    assert_eq!(expanded["rest-src"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["rest-src"]["info"]["config"]["topic"], topic.as_str());
    assert_eq!(worker.get("/connectors/rest-src/config").1["tasks.max"], "1");
    assert_eq!(worker.get("/connectors/rest-src/tasks").1[0]["id"], json!({"connector": "rest-src", "task": 0}));
    assert!(worker.get("/connectors/rest-src/tasks-config").1["rest-src-0"].is_object());
    assert_eq!(worker.get("/connectors/rest-src/tasks/0/status").1["state"], "RUNNING");
    assert_eq!(worker.get("/connectors/rest-src/tasks/9/status").0, 404);

    // PUT config: 201 when it creates, 200 when it updates; PATCH removes null keys.
    let sink_file = dir.path().join("out.txt");
    let sink = json!({"connector.class": "FileStreamSink", "topics": topic, "file": sink_file});
    let (code, _) = http("PUT", port, "/connectors/rest-sink/config", Some(&sink));
    assert_eq!(code, 201);
    wait_for("the sink's 100 lines", Duration::from_secs(90), || (line_count(&sink_file) >= 100).then_some(()));
    // Config changes restart a connector: exercise them on a source of its own, so the sink's consumer
    // group stays settled (tansu is slow to rebalance a group whose members come and go mid-join).
    let cfg = source_config("rest-cfg", &input, &format!("{topic}-cfg"));
    assert_eq!(http("PUT", port, "/connectors/rest-cfg/config", Some(&cfg)).0, 201);
    let (code, updated) = http("PUT", port, "/connectors/rest-cfg/config", Some(&merge_json(cfg.clone(), json!({"custom.key": "x"}))));
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["config"]["custom.key"], "x");
    let (code, patched) = http("PATCH", port, "/connectors/rest-cfg/config", Some(&json!({"custom.key": null, "batch.size": 10})));
    assert_eq!(code, 200, "{patched}");
    assert!(patched["config"].get("custom.key").is_none(), "{patched}");
    assert_eq!(patched["config"]["batch.size"], "10");
    assert_eq!(http("PATCH", port, "/connectors/nope/config", Some(&json!({"a": "b"}))).0, 404);
    assert_eq!(http("DELETE", port, "/connectors/rest-cfg", None).0, 204);
    let (_, topics) = worker.get("/connectors/rest-src/topics");
    assert_eq!(topics, json!({"rest-src": {"topics": [topic]}}));

    // Pause, resume, stop; offsets only while STOPPED.
    assert_eq!(http("PUT", port, "/connectors/rest-src/pause", None).0, 202);
    wait_for("PAUSED", Duration::from_secs(20), || {
        (state_of(&worker, "rest-src") == ("PAUSED".into(), vec!["PAUSED".into()])).then_some(())
    });
    assert_eq!(http("PUT", port, "/connectors/rest-src/resume", None).0, 202);
    wait_for("RUNNING again", Duration::from_secs(20), || {
        (state_of(&worker, "rest-src") == ("RUNNING".into(), vec!["RUNNING".into()])).then_some(())
    });
    let (code, err) = http(
        "PATCH",
        port,
        "/connectors/rest-src/offsets",
        Some(&json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 0}}]})),
    );
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("STOPPED"));
    assert_eq!(http("PUT", port, "/connectors/rest-src/stop", None).0, 204);
    assert_eq!(state_of(&worker, "rest-src"), ("STOPPED".into(), vec![]));
    let (_, offsets) = worker.get("/connectors/rest-src/offsets");
    assert_eq!(offsets["offsets"][0]["partition"]["filename"], input.to_str().unwrap());
    assert_eq!(offsets["offsets"][0]["offset"]["position"], 100 * 31);
    let (code, msg) = http(
        "PATCH",
        port,
        "/connectors/rest-src/offsets",
        Some(&json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 31 * 90}}]})),
    );
    assert_eq!((code, msg["message"].as_str()), (200, Some("The offsets for this connector have been altered successfully")));
    assert_eq!(http("PATCH", port, "/connectors/rest-src/offsets", Some(&json!({"offsets": []}))).0, 400);
    // Resume: the source re-reads from the altered position, so the last 10 lines arrive again.
    assert_eq!(http("PUT", port, "/connectors/rest-src/resume", None).0, 202);
    wait_for("the 10 re-read lines", Duration::from_secs(60), || (line_count(&sink_file) >= 110).then_some(()));
    assert_eq!(http("PUT", port, "/connectors/rest-src/stop", None).0, 204);
    let (code, msg) = http("DELETE", port, "/connectors/rest-src/offsets", None);
    assert_eq!((code, msg["message"].as_str()), (200, Some("The offsets for this connector have been reset successfully")));
    assert_eq!(worker.get("/connectors/rest-src/offsets").1, json!({"offsets": []}));
    assert_eq!(http("PUT", port, "/connectors/rest-src/topics/reset", None).0, 202);
    assert_eq!(worker.get("/connectors/rest-src/topics").1, json!({"rest-src": {"topics": []}}));

    // Loggers.
    let (code, loggers) = worker.get("/admin/loggers");
    assert_eq!(code, 200);
    assert!(loggers["root"]["level"].is_string(), "{loggers}");
    let (code, affected) = http("PUT", port, "/admin/loggers/connect_worker::sink_task", Some(&json!({"level": "DEBUG"})));
    assert_eq!(code, 200, "{affected}");
    assert_eq!(worker.get("/admin/loggers/connect_worker::sink_task").1["level"], "DEBUG");
    assert_eq!(http("PUT", port, "/admin/loggers/root", Some(&json!({"level": "LOUD"}))).0, 404);
    assert_eq!(http("PUT", port, "/admin/loggers/root", Some(&json!({}))).0, 400);

    // Validate: 200 with error_count, even for a bad config.
    let (code, infos) = http(
        "PUT",
        port,
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"connector.class": "FileStreamSink", "name": "v"})),
    );
    assert_eq!(code, 200);
    assert_eq!(infos["error_count"], 1);
    assert_eq!(infos["name"], "org.apache.kafka.connect.file.FileStreamSinkConnector");

    // Persistence: a restart brings back both connectors in their states (rest-src stays STOPPED).
    assert_eq!(worker.stop(), Some(0));
    let mut worker = worker_setup.start();
    wait_for("restored connectors", Duration::from_secs(20), || {
        (worker.get("/connectors").1 == json!(["rest-sink", "rest-src"])).then_some(())
    });
    assert_eq!(state_of(&worker, "rest-src"), ("STOPPED".into(), vec![]));
    wait_for("rest-sink RUNNING", Duration::from_secs(20), || (state_of(&worker, "rest-sink").0 == "RUNNING").then_some(()));
    assert_eq!(http("DELETE", worker.port, "/connectors/rest-sink", None).0, 204);
    assert_eq!(http("DELETE", worker.port, "/connectors/rest-sink", None).0, 404);
    assert_eq!(worker.stop(), Some(0));
    let worker = worker_setup.start();
    assert_eq!(worker.get("/connectors").1, json!(["rest-src"]), "a deleted connector stays deleted");
}

/// What people run from cron today: list connectors, read each status, pick FAILED tasks with jq and
/// POST a restart for each. The failed task comes back RUNNING.
#[test]
fn the_cron_restart_pipeline_with_curl_and_jq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-cron");
    let starts = dir.path().join("starts");
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enable", "false")]);
    setup.connector(
        "cron-flaky",
        json!({"connector.class": "FlakySource", "topic": topic, "records": 5, "fail.starts": 1, "state.file": starts}),
    );
    let worker = setup.start();
    wait_for("the task FAILED", Duration::from_secs(20), || {
        (state_of(&worker, "cron-flaky").1 == vec!["FAILED".to_string()]).then_some(())
    });
    let script = format!(
        r#"set -euo pipefail
URL=http://127.0.0.1:{port}
for c in $(curl -fsS $URL/connectors | jq -r '.[]'); do
  for t in $(curl -fsS $URL/connectors/$c/status | jq -r '.tasks[] | select(.state=="FAILED") | .id'); do
    curl -fsS -X POST $URL/connectors/$c/tasks/$t/restart
    echo "restarted $c/$t"
  done
done"#,
        port = worker.port
    );
    let out = std::process::Command::new("bash").arg("-c").arg(&script).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "restarted cron-flaky/0");
    wait_for("the task RUNNING", Duration::from_secs(20), || {
        (state_of(&worker, "cron-flaky").1 == vec!["RUNNING".to_string()]).then_some(())
    });
}

/// A request with a raw (possibly malformed) body.
fn raw_http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

/// Sink offsets over REST while STOPPED: read them, move one partition, reset it with `"offset": null`, and the
/// resumed sink reads from where the offsets say.
#[test]
fn sink_offsets_alter_and_reset_one_partition() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-sink-offsets");
    let records: Vec<TestRecord> = (0..50).map(|i| (None, Some(format!("line-{i}").into_bytes()), vec![])).collect();
    produce(&topic, &records);
    let output = dir.path().join("out.txt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("offsets-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let mut worker = setup.start();
    let port = worker.port;
    wait_for("50 lines", Duration::from_secs(60), || (line_count(&output) >= 50).then_some(()));
    assert_eq!(http("PUT", port, "/connectors/offsets-sink/stop", None).0, 204);
    let partition = json!({"kafka_topic": topic, "kafka_partition": 0});
    let (_, offsets) = wait_for("the committed offset", Duration::from_secs(30), || {
        let (code, body) = worker.get("/connectors/offsets-sink/offsets");
        (body["offsets"][0]["offset"]["kafka_offset"] == 50).then_some((code, body))
    });
    assert_eq!(offsets["offsets"][0]["partition"], partition);

    let alter = json!({"offsets": [{"partition": partition, "offset": {"kafka_offset": 40}}]});
    assert_eq!(http("PATCH", port, "/connectors/offsets-sink/offsets", Some(&alter)).0, 200);
    assert_eq!(worker.get("/connectors/offsets-sink/offsets").1["offsets"][0]["offset"]["kafka_offset"], 40);
    let reset = json!({"offsets": [{"partition": partition, "offset": null}]});
    let (code, body) = http("PATCH", port, "/connectors/offsets-sink/offsets", Some(&reset));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        worker.get("/connectors/offsets-sink/offsets").1["offsets"][0]["offset"]["kafka_offset"],
        0,
        "reset to where auto.offset.reset=earliest starts"
    );

    assert_eq!(http("PUT", port, "/connectors/offsets-sink/resume", None).0, 202);
    wait_for("the topic read again from the start", Duration::from_secs(60), || (line_count(&output) >= 100).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(line_count(&output), 100, "50 lines, then all 50 again after the reset");
    assert_eq!(worker.stop(), Some(0));
}
