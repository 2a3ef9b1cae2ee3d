//! The REST API under a schema-driven fuzzer (no 5xx for any generated input), and optional
//! authentication (basic users and bearer tokens from files; `/health` stays open).

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

/// schemathesis generates requests from /openapi.json for every operation; none may get a 5xx.
#[test]
fn openapi_document_survives_schemathesis_without_server_errors() {
    require_broker();
    let fuzzer = std::env::var("CONNECT_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "CONNECT_TEST_SCHEMATHESIS is not set: run the tests through scripts/test-all (it exports `scripts/services schemathesis-bin`)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("fuzz-src", json!({"connector.class": "FileStreamSource", "file": input, "topic": unique("e2e-fuzz")}));
    let worker = setup.start();
    let (code, doc) = worker.get("/openapi.json");
    assert_eq!(code, 200);
    assert!(doc["paths"]["/connectors/{name}/status"].is_object());
    let out = std::process::Command::new(&fuzzer)
        .args(["run", &format!("http://127.0.0.1:{}/openapi.json", worker.port), "--checks", "not_a_server_error", "--max-examples", "30"])
        .args(["--phases", "examples,coverage,fuzzing", "--seed", "42", "--report-dir"])
        .arg(dir.path().join("schemathesis"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    let summary = text.lines().find(|l| l.contains(" generated, ")).unwrap_or("");
    eprintln!("schemathesis: {summary}");
    assert!(summary.contains("passed") && !summary.contains("failed"), "{text}");
    assert!(worker.get("/health").0 == 200, "the worker is still up");
}

#[test]
fn authentication_guards_everything_but_health() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.properties");
    std::fs::write(&users, "ops=s3cret\n").unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "cron-token-1\n").unwrap();
    let setup = WorkerSetup::new(
        dir.path(),
        &[("rest.auth.basic.users.file", users.to_str().unwrap()), ("rest.auth.bearer.tokens.file", tokens.to_str().unwrap())],
    );
    let worker = setup.start();
    let url = format!("http://127.0.0.1:{}", worker.port);
    let curl = |args: &[&str]| -> String {
        let out =
            std::process::Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(curl(&[&format!("{url}/connectors")]), "401");
    assert_eq!(curl(&["-u", "ops:wrong", &format!("{url}/connectors")]), "401");
    assert_eq!(curl(&["-u", "ops:s3cret", &format!("{url}/connectors")]), "200");
    assert_eq!(curl(&["-H", "Authorization: Bearer cron-token-1", &format!("{url}/connectors")]), "200");
    assert_eq!(curl(&["-H", "Authorization: Bearer nope", &format!("{url}/connectors")]), "401");
    assert_eq!(curl(&[&format!("{url}/health")]), "200", "health stays open for probes");
    assert_eq!(curl(&["-X", "POST", &format!("{url}/connectors/x/restart")]), "401");
    std::thread::sleep(Duration::from_millis(10));
    let log = worker.log_text();
    assert!(!log.contains("s3cret") && !log.contains("cron-token-1"), "secrets never reach the log");
}
