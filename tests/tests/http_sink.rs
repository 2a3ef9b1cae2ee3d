//! The HTTP sink (Confluent HttpSinkConnector configs) from Kafka to a local server standing in for the
//! Telegram Bot API: the rail-data alert config verbatim, a 429 waited out, batching and templates, a 400 to
//! the DLQ with the answer, a server down for 20 s, and a SIGKILL mid-stream.

use connect_e2e::http_target::{answer, ok, HttpTarget};
use connect_e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn alert(i: usize) -> TestRecord {
    (Some(format!("train-{i}").into_bytes()), Some(json!({"MESSAGE": format!("Train {i} is late")}).to_string().into_bytes()), vec![])
}

/// The rail-data pipeline's config as people run it, with the URL pointing at the local server.
fn telegram_config(topic: &str, url: &str) -> serde_json::Value {
    json!({
        "connector.class": "io.confluent.connect.http.HttpSinkConnector",
        "request.method": "post",
        "http.api.url": url,
        "headers": "Content-Type: application/json",
        "topics": topic,
        "batch.max.size": "1",
        "batch.prefix": "{\"chat_id\":\"-364377679\",\"parse_mode\": \"markdown\",",
        "batch.suffix": "}",
        "regex.patterns": ".*\\{MESSAGE=(.*)\\}.*",
        "regex.replacements": "\"text\":\"$1\"",
        "regex.separator": "~",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    })
}

fn telegram_body(i: usize) -> String {
    format!(r#"{{"chat_id":"-364377679","parse_mode": "markdown","text":"Train {i} is late"}}"#)
}

/// How often each body was delivered.
fn counts(bodies: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for b in bodies {
        *counts.entry(b.clone()).or_default() += 1;
    }
    counts
}

#[test]
fn telegram_alerts_one_call_per_record_and_a_429_is_waited_out() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("TRAINS_DELAYED_ALERT_TG");
    // The third call is rate-limited the way Telegram does it: 429 and parameters.retry_after in the body.
    let target = HttpTarget::with_responder(|n, _| {
        if n == 2 {
            answer(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 2","parameters":{"retry_after":2}}"#)
        } else {
            ok()
        }
    });
    let total = 20;
    produce(&topic, &(0..total).map(alert).collect::<Vec<_>>());
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("telegram-alerts");
    setup.connector(&name, telegram_config(&topic, &target.url("/bot123:abc/sendMessage")));
    let mut worker = setup.start();
    wait_for_or_explain(
        "every alert delivered",
        Duration::from_secs(60),
        || (target.delivered().len() >= total).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_millis(500));
    let calls = target.calls();
    assert_eq!(calls.len(), total + 1, "one call per record plus the one answered 429");
    assert!(calls.iter().all(|c| c.method == "POST" && c.path == "/bot123:abc/sendMessage" && c.content_type == "application/json"));
    let delivered = target.delivered();
    let expected: Vec<String> = (0..total).map(telegram_body).collect();
    assert_eq!(delivered, expected, "each record once, in order");
    for body in &delivered {
        serde_json::from_str::<serde_json::Value>(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    }
    let waited = calls[3].at.duration_since(calls[2].at);
    assert!(waited >= Duration::from_millis(1900), "the retry came {waited:?} after the 429 asked for 2 s");
    assert_eq!(calls[2].body, calls[3].body, "the rate-limited alert is the one sent next");
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert!(worker.log_text().contains("429"), "the wait is logged");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn batches_as_json_arrays_and_templates_with_quotes_and_newlines() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (arrays, templated) = (unique("http_arrays"), unique("http_template"));
    let target = HttpTarget::start();
    let total = 100;
    let records: Vec<TestRecord> = (0..total)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                Some(json!({"n": i, "text": format!("say \"{i}\"\nnext line \\ {i}")}).to_string().into_bytes()),
                vec![],
            )
        })
        .collect();
    produce(&arrays, &records);
    produce(&templated, &records);
    let base = |topic: &str, path: &str| {
        json!({
            "connector.class": "HttpSink",
            "http.api.url": target.url(path),
            "topics": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        })
    };
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        &unique("http-arrays"),
        merge_json(base(&arrays, "/arrays"), json!({"request.body.format": "json", "batch.json.as.array": "true", "batch.max.size": "10"})),
    );
    setup.connector(
        &unique("http-template"),
        merge_json(
            base(&templated, "/template"),
            json!({"request.body.template": "{\"chat_id\":\"-1\",\"text\":\"${value.text}\",\"n\":${value.n},\"key\":\"${key}\"}"}),
        ),
    );
    let mut worker = setup.start();
    wait_for_or_explain(
        "every record at both endpoints",
        Duration::from_secs(60),
        || {
            let calls = target.calls();
            let arrays: usize = calls
                .iter()
                .filter(|c| c.path == "/arrays")
                .map(|c| serde_json::from_str::<serde_json::Value>(&c.body).unwrap().as_array().unwrap().len())
                .sum();
            let templated = calls.iter().filter(|c| c.path == "/template").count();
            (arrays >= total && templated >= total).then_some(())
        },
        || tail(&worker.log_text(), 30),
    );
    let calls = target.calls();
    let array_calls: Vec<_> = calls.iter().filter(|c| c.path == "/arrays").collect();
    assert!(array_calls.len() <= total / 10 + 9, "batched: {} calls for {total} records", array_calls.len());
    let mut seen = Vec::new();
    for call in &array_calls {
        assert_eq!(call.content_type, "application/json");
        let items: Vec<serde_json::Value> = serde_json::from_str(&call.body).unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|item| item["n"].as_u64().unwrap() as usize));
    }
    assert_eq!(seen, (0..total).collect::<Vec<_>>());
    for (i, call) in calls.iter().filter(|c| c.path == "/template").enumerate() {
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_else(|e| panic!("{e}: {}", call.body));
        assert_eq!(body["text"], format!("say \"{i}\"\nnext line \\ {i}"));
        assert_eq!(body["n"], i);
        assert_eq!(body["key"], format!("k{i}"));
    }
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn a_400_for_one_record_in_a_hundred_goes_to_the_dlq_with_the_answer() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("TRAINS_ALERT_400"), unique("http-dlq"));
    let target = HttpTarget::with_responder(|_, body| {
        if body.contains("Train 42 ") {
            answer(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}"#)
        } else {
            ok()
        }
    });
    let total = 100;
    produce(&topic, &(0..total).map(alert).collect::<Vec<_>>());
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("telegram-400");
    setup.connector(
        &name,
        merge_json(
            telegram_config(&topic, &target.url("/bot/sendMessage")),
            json!({
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": 1,
                "errors.deadletterqueue.context.headers.enable": true,
            }),
        ),
    );
    let mut worker = setup.start();
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    wait_for("99 delivered", Duration::from_secs(30), || (target.delivered().len() >= total - 1).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    let delivered = target.delivered();
    assert_eq!(dead.len(), 1);
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("400") && message.contains("can't parse entities"), "{message}");
    assert_eq!(dead[0].value.as_deref(), alert(42).1.as_deref(), "the original record is dead-lettered");
    assert!(!delivered.contains(&telegram_body(42)));
    assert_eq!(delivered.len() + dead.len(), total, "records in = delivered + dead-lettered");
    assert_eq!(counts(&delivered).len(), delivered.len(), "no duplicates");
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn with_errors_tolerance_none_a_400_fails_the_task_with_the_answer() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("TRAINS_ALERT_FAIL");
    let target = HttpTarget::with_responder(|_, _| answer(400, r#"{"ok":false,"description":"Bad Request: chat not found"}"#));
    produce(&topic, &[alert(1)]);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("telegram-fail");
    setup.connector(&name, telegram_config(&topic, &target.url("/bot/sendMessage")));
    let mut worker = setup.start();
    let trace = wait_for("the task FAILED", Duration::from_secs(60), || {
        let (_, status) = worker.get(&format!("/connectors/{name}/status"));
        (status["tasks"][0]["state"] == "FAILED").then(|| status["tasks"][0]["trace"].as_str().unwrap_or_default().to_string())
    });
    assert!(trace.contains("400 Bad Request") && trace.contains("chat not found"), "{trace}");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn a_server_down_for_20_s_loses_nothing_and_fails_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("http_outage");
    let mut target = HttpTarget::start();
    let total = 300;
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("http-outage");
    setup.connector(
        &name,
        merge_json(telegram_config(&topic, &target.url("/hook")), json!({"retry.backoff.ms": "500", "max.retries": "10"})),
    );
    let mut worker = setup.start();
    produce(&topic, &(0..100).map(alert).collect::<Vec<_>>());
    wait_for("the first 100", Duration::from_secs(60), || (target.delivered().len() >= 100).then_some(()));
    target.down();
    let down_at = std::time::Instant::now();
    produce(&topic, &(100..total).map(alert).collect::<Vec<_>>());
    let states = worker.task_states_until(&name, down_at, Duration::from_secs(20));
    assert_eq!(target.delivered().len(), 100, "nothing delivered while down");
    target.up();
    wait_for_or_explain(
        "every record after the outage",
        Duration::from_secs(120),
        || (counts(&target.delivered()).len() >= total).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let delivered = target.delivered();
    let distinct = counts(&delivered);
    for i in 0..total {
        assert!(distinct.contains_key(&telegram_body(i)), "record {i} lost");
    }
    assert!(states.iter().all(|s| s == "RUNNING"), "the task stayed RUNNING during the outage: {states:?}");
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(delivered.len(), total, "no duplicates either");
    assert!(worker.log_text().contains("retrying"), "the retries are logged");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn sigkill_mid_stream_delivers_every_record_at_least_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("http_kill");
    // A target that takes a little while per request, so the kill lands mid-stream.
    let target = HttpTarget::with_responder(|_, _| {
        std::thread::sleep(Duration::from_millis(2));
        ok()
    });
    let total = 3000;
    produce(&topic, &(0..total).map(alert).collect::<Vec<_>>());
    // Puts of at most 500 records: offsets are committed between puts, so a put is the most that can be sent twice.
    let mut setup = WorkerSetup::new(dir.path(), &[("offset.flush.interval.ms", "300"), ("consumer.max.poll.records", "500")]);
    let name = unique("http-kill");
    setup.connector(&name, telegram_config(&topic, &target.url("/hook")));
    let mut worker = setup.start();
    wait_for("some records delivered", Duration::from_secs(60), || (target.delivered().len() >= 1500).then_some(()));
    worker.kill_hard();
    // A request the server was answering at the kill is recorded once its answer is done.
    std::thread::sleep(Duration::from_millis(300));
    let at_kill = target.delivered().len();
    assert!(at_kill < total, "the kill was not mid-stream ({at_kill} already delivered)");
    // Records up to the committed offset are not sent again: they bound the duplicates.
    let committed = committed_offsets(&format!("connect-{name}"), &topic).iter().map(|(_, o)| *o).sum::<i64>().max(0) as usize;
    assert!(committed > 0, "offsets were committed before the kill");
    let worker = setup.start();
    wait_for_or_explain(
        "every record after the restart",
        Duration::from_secs(120),
        || (counts(&target.delivered()).len() >= total).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let delivered = target.delivered();
    let distinct = counts(&delivered);
    for i in 0..total {
        assert!(distinct.contains_key(&telegram_body(i)), "record {i} lost");
    }
    let duplicates = delivered.len() - distinct.len();
    eprintln!(
        "http SIGKILL: killed after {at_kill} of {total} deliveries with offset {committed} committed; {} calls delivered {} records: \
         {duplicates} duplicates (what was sent after the last commit before the kill is sent again: at-least-once)",
        delivered.len(),
        distinct.len()
    );
    assert!(duplicates <= at_kill - committed.min(at_kill), "duplicates only of records delivered after the last commit");
}
