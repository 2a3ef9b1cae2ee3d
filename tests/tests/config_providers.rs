//! Config providers end to end: a connector whose file path and topic come from `${file:...}` and `${env:...}`
//! runs with the resolved values, while REST, the stored state, status traces and the worker log show the
//! placeholders only. Placeholders that cannot be resolved are validation errors naming the key.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn placeholders_resolve_at_start_and_secrets_never_show() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let secrets_dir = dir.path().join("secrets");
    std::fs::create_dir(&secrets_dir).unwrap();
    let input = dir.path().join("in.txt");
    // The "secrets": a file path and a path that fails, distinctive so that a leak is found. The topic comes
    // from the environment (it is hidden from logs too, but REST's /topics rightly names it).
    let secret_out = dir.path().join(format!("{}.txt", unique("hush-out")));
    let secret_bad = format!("/nonexistent-{}/out.txt", unique("hush-bad"));
    let topic = unique("env-topic");
    let secrets_file = secrets_dir.join("connect-secrets.properties");
    std::fs::write(&secrets_file, format!("sink.file={}\nbad.file={secret_bad}\n", secret_out.display())).unwrap();
    let file_ref = |key: &str| format!("${{file:{}:{key}}}", secrets_file.display());

    let mut setup = WorkerSetup::new(
        dir.path(),
        &[
            ("config.providers", "file,env"),
            ("config.providers.file.class", "org.apache.kafka.common.config.provider.FileConfigProvider"),
            ("config.providers.file.param.allowed.paths", secrets_dir.to_str().unwrap()),
            ("config.providers.env.class", "org.apache.kafka.common.config.provider.EnvVarConfigProvider"),
            ("config.providers.env.param.allowlist.pattern", "CONNECT_RS_.*"),
        ],
    );
    setup
        .env("CONNECT_RS_TOPIC", &topic)
        // Debug logging: the more the worker says, the more a leak would show.
        .env("RUST_LOG", "debug,librdkafka=warn,rdkafka=warn,h2=info,hyper=info,reqwest=info")
        .connector("secret-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": "${env:CONNECT_RS_TOPIC}"}))
        .connector(
            "secret-sink",
            json!({"connector.class": "FileStreamSink", "file": file_ref("sink.file"), "topics": "${env:CONNECT_RS_TOPIC}"}),
        )
        .connector(
            "broken-sink",
            json!({"connector.class": "FileStreamSink", "file": file_ref("bad.file"), "topics": "${env:CONNECT_RS_TOPIC}"}),
        );
    std::fs::write(&input, numbered_lines(0..500, 32)).unwrap();
    let mut worker = setup.start();

    // The connectors run with the resolved values: lines arrive in the secret file through the secret topic.
    wait_for("500 lines in the resolved sink file", Duration::from_secs(90), || (line_count(&secret_out) >= 500).then_some(()));
    assert_eq!(read_lines(&secret_out), numbered_lines(0..500, 32).lines().map(str::to_string).collect::<Vec<_>>());
    assert_eq!(read_topic(&topic, 500, Duration::from_secs(30)).len(), 500);

    // The failing connector's trace quotes its file path, hidden.
    let status = wait_for("broken-sink's task to report its failure", Duration::from_secs(60), || {
        let (_, s) = worker.get("/connectors/broken-sink/status");
        s["tasks"][0]["trace"].is_string().then_some(s)
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("[hidden]"), "the trace should name the file, hidden: {trace}");

    let secrets = [secret_out.display().to_string(), secret_bad.clone()];
    let assert_hidden = |what: &str, text: &str| {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{what} shows the secret {s}:\n{text}");
        }
    };
    let (_, config) = worker.get("/connectors/secret-sink/config");
    assert_eq!(config["file"], file_ref("sink.file"), "GET config shows the placeholder");
    assert_eq!(config["topics"], "${env:CONNECT_RS_TOPIC}");
    for path in [
        "/connectors/secret-sink/config",
        "/connectors/secret-sink/tasks",
        "/connectors/broken-sink/tasks",
        "/connectors/broken-sink/status",
        "/connectors?expand=info&expand=status",
        "/connectors/secret-source/topics",
    ] {
        let (code, body) = worker.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        assert_hidden(path, &body.to_string());
    }
    let (_, tasks) = worker.get("/connectors/secret-sink/tasks");
    assert_eq!(tasks[0]["config"]["file"], file_ref("sink.file"), "task configs show the placeholder: {tasks}");

    // Validation: a placeholder that cannot be resolved is an error naming its key; a good one is checked
    // against its resolved value, but shown as given.
    let port = worker.port;
    let bad = |file: &str| json!({"name": "bad", "config": {"connector.class": "FileStreamSink", "topics": "t", "file": file}});
    let (code, body) = http("POST", port, "/connectors", Some(&bad(&file_ref("no.such.key"))));
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("configuration file") && message.contains("has no value for 'no.such.key'"), "{message}");
    let outside = dir.path().join("outside.properties");
    std::fs::write(&outside, "k=v\n").unwrap();
    let (code, body) = http("POST", port, "/connectors", Some(&bad(&format!("${{file:{}:k}}", outside.display()))));
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not under allowed.paths"), "{body}");
    let (code, body) = http("POST", port, "/connectors", Some(&bad("${vault:secret/db:password}")));
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no config provider named 'vault'"), "{body}");
    let (code, infos) = http(
        "PUT",
        port,
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"connector.class": "FileStreamSink", "name": "v", "topics": "t", "file": file_ref("sink.file")})),
    );
    assert_eq!((code, infos["error_count"].as_i64()), (200, Some(0)), "{infos}");
    assert_hidden("validate", &infos.to_string());

    assert_eq!(worker.stop(), Some(0));
    let log = worker.log_text();
    assert_hidden("the worker log", &log);
    assert!(log.contains("[hidden]"), "the log should show the failing path as [hidden]");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") && path.file_name().unwrap().to_str().unwrap().starts_with("connect-rs") {
            assert_hidden("the stored state", &std::fs::read_to_string(&path).unwrap());
        }
    }
}
