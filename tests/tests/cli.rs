//! The `connect` client subcommands against a running worker: tables, JSON output and exit codes.

use connect_e2e::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn connect(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(connect_binary()).arg("--url").arg(format!("http://127.0.0.1:{port}")).args(args).output().expect("run connect");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn client_subcommands_and_exit_codes() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-cli");
    let starts = dir.path().join("starts");
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enable", "false")]);
    setup.connector(
        "cli-flaky",
        json!({"connector.class": "FlakySource", "topic": topic, "records": 5, "fail.starts": 1, "state.file": starts}),
    );
    let worker = setup.start();
    let port = worker.port;
    wait_for("the task FAILED", Duration::from_secs(20), || {
        (worker.get("/connectors/cli-flaky/status").1["tasks"][0]["state"] == "FAILED").then_some(())
    });

    let (code, out, _) = connect(port, &["list"]);
    assert_eq!(code, 0);
    // The worker's own health first (Kafka reachable or not), then the connectors.
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("worker: healthy"), "{out}");
    assert!(lines.next().unwrap().starts_with("NAME"), "{out}");
    assert!(out.contains("cli-flaky") && out.contains("0/1") && out.contains("failed"), "{out}");
    let (code, out, _) = connect(port, &["status", "cli-flaky"]);
    assert_eq!(code, 0);
    assert!(out.contains("FAILED") && out.contains("fails on purpose"), "{out}");

    // The cron job in one command.
    let (code, out, err) = connect(port, &["restart-failed"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restarted cli-flaky tasks [0]"), "{out}");
    wait_for("the task RUNNING", Duration::from_secs(20), || {
        (worker.get("/connectors/cli-flaky/status").1["tasks"][0]["state"] == "RUNNING").then_some(())
    });
    let (code, out, _) = connect(port, &["restart-failed"]);
    assert_eq!((code, out.trim()), (0, "nothing has failed"));

    // JSON output parses; unknown names and unreachable workers give the documented exit codes.
    let (code, out, _) = connect(port, &["--output", "json", "list"]);
    assert_eq!(code, 0);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(parsed["cli-flaky"]["status"]["tasks"][0]["state"], "RUNNING");
    let (code, _, err) = connect(port, &["status", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    let (code, _, _) = connect(free_port(), &["list"]);
    assert_eq!(code, 3, "an unreachable worker");

    // validate, create, pause/resume/stop, offsets, delete.
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x\n").unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, json!({"name": "cli-src", "config": {"connector.class": "FileStreamSource", "tasks.max": 0}}).to_string())
        .unwrap();
    let (code, out, _) = connect(port, &["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("topic: Missing required configuration") && out.contains("tasks.max: Invalid value 0"), "{out}");
    let good = dir.path().join("good.properties");
    std::fs::write(&good, format!("name=cli-src\nconnector.class=FileStreamSource\nfile={}\ntopic={topic}-2\n", input.display())).unwrap();
    assert_eq!(connect(port, &["validate", good.to_str().unwrap()]).0, 0);
    assert_eq!(connect(port, &["create", good.to_str().unwrap()]).0, 0);
    assert_eq!(connect(port, &["create", good.to_str().unwrap()]).0, 1, "409 for a name that exists");
    assert_eq!(connect(port, &["pause", "cli-src"]).0, 0);
    assert_eq!(connect(port, &["resume", "cli-src"]).0, 0);
    assert_eq!(connect(port, &["stop", "cli-src"]).0, 0);
    let (code, out, _) = connect(port, &["offsets", "get", "cli-src"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"offsets\""), "{out}");
    let (code, out, _) = connect(port, &["offsets", "reset", "cli-src"]);
    assert_eq!((code, out.trim()), (0, "The offsets for this connector have been reset successfully"));
    let (code, out, _) = connect(port, &["plugins"]);
    assert_eq!(code, 0);
    assert!(out.contains("org.apache.kafka.connect.file.FileStreamSinkConnector"), "{out}");
    assert_eq!(connect(port, &["delete", "cli-src"]).0, 0);
    assert_eq!(worker.get("/connectors").1, json!(["cli-flaky"]));
}
