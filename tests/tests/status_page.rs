//! The status page (`/ui/`) in a real browser: headless Chromium (Debian's) driven by Playwright for Python
//! (tests/browser/status_page.py). The page lists a few hundred connectors from one call, shows a failing
//! task's trace, filters, and its buttons pause and delete, which is checked here over REST.

use connect_e2e::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_page_shows_states_and_traces_and_its_buttons_act() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, numbered_lines(0..100, 10)).unwrap();
    let topic = unique("ui");
    let (source, failing, deletable) = (unique("ui-source"), unique("ui-failing-sink"), unique("ui-deletable"));
    let mut setup = WorkerSetup::new(
        dir.path(),
        &[
            ("config.providers", "env"),
            ("config.providers.env.class", "org.apache.kafka.common.config.provider.EnvVarConfigProvider"),
            ("config.providers.env.param.allowlist.pattern", "CONNECT_RS_.*"),
        ],
    );
    setup.env("CONNECT_RS_UI_SECRET", "s3cr3t-from-env");
    setup.connector(&source, json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}));
    // Its file cannot be created: the task fails at start with a trace, and keeps being restarted.
    setup.connector(
        &failing,
        json!({"connector.class": "FileStreamSink", "topics": topic, "file": "/nonexistent-dir/out.txt",
               "sasl.password": "hunter2", "ssl.key.password": "${env:CONNECT_RS_UI_SECRET}",
               "connection.url": "jdbc:postgresql://db:5432/rail?user=etl&password=hunter3"}),
    );
    setup.connector(&deletable, json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}));
    let worker = setup.start();
    // Hundreds of connectors (stopped: no tasks), for the one-call listing.
    let bulk = 300;
    // Named to sort after the others, so the screenshots show those first.
    let bulk_prefix = unique("ui-stopped");
    for i in 0..bulk {
        let body = json!({"name": format!("{bulk_prefix}-{i:03}"), "initial_state": "STOPPED",
                          "config": {"connector.class": "FileStreamSource", "file": input, "topic": topic}});
        assert_eq!(http("POST", worker.port, "/connectors", Some(&body)).0, 201);
    }
    wait_for("the source's records", Duration::from_secs(60), || (worker.records_written(&source) >= 100).then_some(()));

    let shots = std::env::var("CONNECT_TEST_SCREENSHOTS").ok();
    let out = Command::new(service_tool("CONNECT_TEST_BROWSER_PYTHON", "browser-python-bin"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/browser/status_page.py"))
        .args([&format!("http://127.0.0.1:{}", worker.port), &source, &failing, &deletable, &(bulk + 3).to_string()])
        .envs(shots.map(|s| ("CONNECT_TEST_SCREENSHOTS", s)))
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser check failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&worker.log_text(), 30)
    );
    println!("browser: {stdout}");

    // What the page did, seen over REST.
    let (_, status) = worker.get(&format!("/connectors/{source}/status"));
    assert_eq!(status["connector"]["state"], "PAUSED", "{status}");
    assert_eq!(worker.get(&format!("/connectors/{deletable}")).0, 404);
    let (_, failed) = worker.get(&format!("/connectors/{failing}/status"));
    assert!(failed["tasks"][0]["trace"].as_str().unwrap_or("").contains("Couldn't find or create file"), "{failed}");
}

/// Behind the REST API's authentication when it is on, like every endpoint but `/health`.
#[test]
fn the_page_is_behind_the_rest_authentication() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.properties");
    std::fs::write(&users, "admin=secret\n").unwrap();
    let users_path = users.display().to_string();
    let worker = WorkerSetup::new(dir.path(), &[("rest.auth.basic.users.file", &users_path)]).start();
    let fetch = |path: &str, user: Option<&str>| {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", &format!("http://127.0.0.1:{}{path}", worker.port)]);
        if let Some(u) = user {
            curl.args(["-u", u]);
        }
        String::from_utf8(curl.output().expect("curl").stdout).unwrap()
    };
    assert!(fetch("/ui/", None).starts_with("401"));
    assert!(fetch("/ui/app.js", None).starts_with("401"));
    assert_eq!(fetch("/ui/", Some("admin:secret")), "200 text/html; charset=utf-8");
    assert_eq!(fetch("/ui/app.js", Some("admin:secret")), "200 text/javascript; charset=utf-8");
    assert!(fetch("/ui", Some("admin:secret")).starts_with("308"), "/ui redirects to /ui/");
}
