//! Failure model: failed tasks and connectors restart by themselves with backoff; manual restarts
//! through REST still work and start the backoff over; panics stay inside their task.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

/// Fast backoff so the tests do not wait minutes.
const FAST_RESTARTS: &[(&str, &str)] = &[("auto.restart.backoff.initial.ms", "700"), ("auto.restart.backoff.max.ms", "2000")];

/// A connector whose first three task starts fail ends RUNNING without any REST call; while it waited,
/// its status showed FAILED with the restart count and the time of the next attempt.
#[test]
fn flaky_task_recovers_by_itself_and_status_shows_the_backoff() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-flaky");
    let starts = dir.path().join("starts");
    let mut setup = WorkerSetup::new(dir.path(), FAST_RESTARTS);
    setup.connector(
        "flaky",
        json!({"connector.class": "FlakySource", "topic": topic, "records": 50, "fail.starts": 3, "state.file": starts}),
    );
    let mut worker = setup.start();

    let waiting = wait_for("a FAILED status with a scheduled restart", Duration::from_secs(20), || {
        let (_, s) = worker.get("/connectors/flaky/status");
        (s["tasks"][0]["state"] == "FAILED" && s["tasks"][0]["next_restart_at_ms"].is_u64()).then_some(s)
    });
    let task = &waiting["tasks"][0];
    assert!(task["restart_count"].as_u64().unwrap() >= 1, "{task}");
    assert!(task["trace"].as_str().unwrap().contains("fails on purpose"), "{task}");
    assert_eq!(waiting["connector"]["health"], "failed", "all tasks failed must not read as healthy: {waiting}");

    let running = wait_for("the task RUNNING again", Duration::from_secs(30), || {
        let (_, s) = worker.get("/connectors/flaky/status");
        (s["tasks"][0]["state"] == "RUNNING").then_some(s)
    });
    assert_eq!(running["connector"]["health"], "healthy");
    assert!(running["tasks"][0].get("trace").is_none());
    assert_eq!(std::fs::read_to_string(&starts).unwrap().trim(), "4", "three failed starts, then one that worked");
    wait_for("all 50 records", Duration::from_secs(30), || (topic_count(&topic) >= 50).then_some(()));
    assert_eq!(topic_count(&topic), 50);
    assert_eq!(worker.stop(), Some(0));
}

/// A FileStreamSink pointed at a directory that does not exist yet: FAILED, then RUNNING by itself
/// shortly after the directory appears, with every record written.
#[test]
fn file_sink_recovers_when_its_directory_appears() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, numbered_lines(0..300, 40)).unwrap();
    let later = dir.path().join("later");
    let output = later.join("out.txt");
    let topic = unique("e2e-later");
    let mut setup = WorkerSetup::new(dir.path(), FAST_RESTARTS);
    setup
        .connector("later-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}))
        .connector("later-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let mut worker = setup.start();
    let failed = wait_for("the sink FAILED", Duration::from_secs(20), || {
        let (_, s) = worker.get("/connectors/later-sink/status");
        (s["tasks"][0]["state"] == "FAILED").then_some(s)
    });
    assert!(failed["tasks"][0]["trace"].as_str().unwrap().contains("Couldn't find or create file"), "{failed}");
    std::fs::create_dir_all(&later).unwrap();
    wait_for("the sink RUNNING", Duration::from_secs(20), || {
        (worker.get("/connectors/later-sink/status").1["tasks"][0]["state"] == "RUNNING").then_some(())
    });
    wait_for("all 300 lines written", Duration::from_secs(60), || (line_count(&output) >= 300).then_some(()));
    assert_eq!(worker.stop(), Some(0));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), numbered_lines(0..300, 40));
}

/// With automatic restarts off, a failed task stays FAILED; the REST restarts bring it back, the
/// `includeTasks&onlyFailed` form answers 202 with RESTARTING, and unknown names answer 404.
#[test]
fn manual_restarts_through_rest() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-manual");
    let starts = dir.path().join("starts");
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enable", "false")]);
    setup.connector(
        "manual",
        json!({"connector.class": "FlakySource", "topic": topic, "records": 10, "fail.starts": 2, "state.file": starts}),
    );
    let mut worker = setup.start();
    wait_for("the task FAILED", Duration::from_secs(20), || {
        (worker.get("/connectors/manual/status").1["tasks"][0]["state"] == "FAILED").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, s) = worker.get("/connectors/manual/status");
    assert_eq!(s["tasks"][0]["state"], "FAILED", "no automatic restart when disabled");
    assert!(s["tasks"][0].get("next_restart_at_ms").is_none());

    // The cron job's form: restart every failed instance of the connector.
    let (code, body) = http("POST", worker.port, "/connectors/manual/restart?includeTasks=true&onlyFailed=true", None);
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["tasks"][0]["state"], "RESTARTING", "{body}");
    assert_eq!(body["connector"]["state"], "RUNNING", "the connector itself had not failed: {body}");
    // Start 2 fails again; restart the task directly.
    wait_for("the task FAILED again", Duration::from_secs(20), || {
        (worker.get("/connectors/manual/status").1["tasks"][0]["state"] == "FAILED").then_some(())
    });
    let (code, _) = http("POST", worker.port, "/connectors/manual/tasks/0/restart", None);
    assert_eq!(code, 204);
    wait_for("the task RUNNING", Duration::from_secs(20), || {
        (worker.get("/connectors/manual/status").1["tasks"][0]["state"] == "RUNNING").then_some(())
    });
    wait_for("10 records", Duration::from_secs(30), || (topic_count(&topic) >= 10).then_some(()));

    assert_eq!(http("POST", worker.port, "/connectors/manual/restart", None).0, 204);
    assert_eq!(http("POST", worker.port, "/connectors/nope/restart", None).0, 404);
    assert_eq!(http("POST", worker.port, "/connectors/manual/tasks/7/restart", None).0, 404);
    let (code, health) = worker.get("/health");
    assert_eq!((code, health["status"].as_str()), (200, Some("healthy")));
    assert_eq!(worker.stop(), Some(0));
}

/// A task that panics is FAILED with the panic message; the worker and its other connector keep going.
#[test]
fn a_panicking_task_stays_inside_its_task() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (t1, t2) = (unique("e2e-panic"), unique("e2e-calm"));
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enable", "false")]);
    setup
        .connector("panicky", json!({"connector.class": "FlakySource", "topic": t1, "panic.on.poll": true}))
        .connector("calm", json!({"connector.class": "io.connectrs.testing.FlakySourceConnector", "topic": t2, "records": 20}));
    let mut worker = setup.start();
    let s = wait_for("the panicking task FAILED", Duration::from_secs(20), || {
        let (_, s) = worker.get("/connectors/panicky/status");
        (s["tasks"][0]["state"] == "FAILED").then_some(s)
    });
    assert!(s["tasks"][0]["trace"].as_str().unwrap().contains("task panicked: FlakySource panics on purpose"), "{s}");
    wait_for("the calm connector's 20 records", Duration::from_secs(30), || (topic_count(&t2) >= 20).then_some(()));
    assert_eq!(worker.get("/connectors/calm/status").1["tasks"][0]["state"], "RUNNING");
    assert!(worker.is_running());
    assert_eq!(worker.stop(), Some(0));
}
