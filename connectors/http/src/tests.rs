//! The task against a local HTTP server: what is sent, what a 429 or a 400 does, what a redelivery resends.

use crate::task::HttpSinkTask;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use connect_core::{
    async_trait, Config, ConnectError, ErrantRecordReporter, ErrorKind, RecordData, SinkRecord, SinkTask, SinkTaskContext, TimestampType,
    Value,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Responder = Box<dyn FnMut(usize, &str) -> Response + Send>;

struct Server {
    calls: Mutex<Vec<(String, String, String)>>,
    respond: Mutex<Responder>,
}

async fn serve(respond: impl FnMut(usize, &str) -> Response + Send + 'static) -> (Arc<Server>, String) {
    let server = Arc::new(Server { calls: Mutex::default(), respond: Mutex::new(Box::new(respond)) });
    let app = Router::new()
        .fallback(any(|State(s): State<Arc<Server>>, method: axum::http::Method, headers: HeaderMap, body: String| async move {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let n = {
                let mut calls = s.calls.lock().unwrap();
                calls.push((method.to_string(), content_type, body.clone()));
                calls.len() - 1
            };
            (s.respond.lock().unwrap())(n, &body)
        }))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bot123/sendMessage", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (server, url)
}

fn ok() -> Response {
    (StatusCode::OK, r#"{"ok":true}"#).into_response()
}

#[derive(Default)]
struct Reporter(Mutex<Vec<(i64, String)>>);

#[async_trait]
impl ErrantRecordReporter for Reporter {
    async fn report(&self, record: &SinkRecord, error: &ConnectError) -> connect_core::Result<()> {
        self.0.lock().unwrap().push((record.original_offset(), error.to_string()));
        Ok(())
    }
}

fn telegram_config(url: &str, extra: &[(&str, &str)]) -> Config {
    let mut c: Config = [
        ("connector.class", "io.confluent.connect.http.HttpSinkConnector"),
        ("request.method", "post"),
        ("http.api.url", url),
        ("headers", "Content-Type: application/json"),
        ("topics", "TRAINS_DELAYED_ALERT_TG"),
        ("batch.max.size", "1"),
        ("batch.prefix", r#"{"chat_id":"-364377679","parse_mode": "markdown","#),
        ("batch.suffix", "}"),
        ("regex.patterns", r".*\{MESSAGE=(.*)\}.*"),
        ("regex.replacements", r#""text":"$1""#),
        ("regex.separator", "~"),
        ("retry.backoff.ms", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    c.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

fn alert(offset: i64, message: &str) -> SinkRecord {
    let value = Value::Map(vec![(Value::from("MESSAGE"), Value::from(message))]);
    SinkRecord::new(
        RecordData::new("TRAINS_DELAYED_ALERT_TG", None, value).with_key(None, Value::from("k")),
        0,
        offset,
        TimestampType::CreateTime,
    )
}

async fn started(config: Config, reporter: Option<Arc<Reporter>>) -> (HttpSinkTask, SinkTaskContext) {
    let context = SinkTaskContext::new("http", 0, reporter.map(|r| r as Arc<dyn ErrantRecordReporter>));
    let mut task = HttpSinkTask::default();
    task.start(context.clone(), config).await.unwrap();
    (task, context)
}

#[tokio::test]
async fn a_429_is_waited_out_and_the_redelivery_sends_only_what_is_left() {
    let (server, url) = serve(|n, _| {
        if n == 2 {
            (StatusCode::TOO_MANY_REQUESTS, r#"{"ok":false,"error_code":429,"parameters":{"retry_after":3}}"#).into_response()
        } else {
            ok()
        }
    })
    .await;
    let (mut task, context) = started(telegram_config(&url, &[]), None).await;
    let records: Vec<SinkRecord> = (0..5).map(|i| alert(i, &format!("Train {i} is late"))).collect();
    let err = task.put(&records).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retriable, "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(context.take_timeout(), Some(Duration::from_secs(3)), "Telegram's retry_after is the delay");
    assert_eq!(server.calls.lock().unwrap().len(), 3, "nothing sent after the 429");
    task.put(&records).await.unwrap();
    let calls = server.calls.lock().unwrap();
    let bodies: Vec<&str> = calls.iter().map(|(_, _, b)| b.as_str()).collect();
    assert_eq!(bodies.len(), 6, "{bodies:?}");
    assert_eq!(bodies[2], bodies[3], "the refused record is sent again");
    assert_eq!(bodies[0], r#"{"chat_id":"-364377679","parse_mode": "markdown","text":"Train 0 is late"}"#);
    assert_eq!(bodies[5], r#"{"chat_id":"-364377679","parse_mode": "markdown","text":"Train 4 is late"}"#);
    assert!(calls.iter().all(|(m, ct, _)| m == "POST" && ct == "application/json"));
}

#[tokio::test]
async fn a_400_sends_that_record_to_the_reporter_with_the_body_and_the_rest_goes_on() {
    let (server, url) = serve(|_, body| {
        if body.contains("Train 42 ") {
            (StatusCode::BAD_REQUEST, r#"{"ok":false,"description":"Bad Request: can't parse entities"}"#).into_response()
        } else {
            ok()
        }
    })
    .await;
    let reporter = Arc::new(Reporter::default());
    let (mut task, _) = started(telegram_config(&url, &[]), Some(reporter.clone())).await;
    let records: Vec<SinkRecord> = (0..100).map(|i| alert(i, &format!("Train {i} is late"))).collect();
    task.put(&records).await.unwrap();
    assert_eq!(server.calls.lock().unwrap().len(), 100, "no retries of a 400 by default");
    let reported = reporter.0.lock().unwrap();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, 42);
    assert!(reported[0].1.contains("400 Bad Request") && reported[0].1.contains("can't parse entities"), "{}", reported[0].1);
}

#[tokio::test]
async fn without_error_reporting_a_400_fails_the_task_with_the_answer() {
    let (_, url) = serve(|_, _| (StatusCode::BAD_REQUEST, "no such chat").into_response()).await;
    let (mut task, _) = started(telegram_config(&url, &[]), None).await;
    let err = task.put(&[alert(7, "x")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal);
    assert!(err.to_string().contains("400 Bad Request: no such chat") && err.to_string().contains("TRAINS_DELAYED_ALERT_TG-0@7"), "{err}");
}

#[tokio::test]
async fn spent_retries_of_a_retried_4xx_refuse_the_stuck_request_and_go_on_with_the_rest() {
    let (server, url) =
        serve(|_, body| if body.contains("Train 1 ") { (StatusCode::NOT_FOUND, "no such chat").into_response() } else { ok() }).await;
    let reporter = Arc::new(Reporter::default());
    let config = telegram_config(&url, &[("max.retries", "2"), ("retry.on.status.codes", "404,500-")]);
    let (mut task, context) = started(config, Some(reporter.clone())).await;
    let records: Vec<SinkRecord> = (0..3).map(|i| alert(i, &format!("Train {i} is late"))).collect();
    for _ in 0..2 {
        assert!(task.put(&records).await.unwrap_err().is_retriable());
        assert!(context.take_timeout().is_some());
    }
    task.put(&records).await.unwrap();
    assert_eq!(reporter.0.lock().unwrap().iter().map(|(o, _)| *o).collect::<Vec<_>>(), [1]);
    assert!(reporter.0.lock().unwrap()[0].1.contains("gave up after max.retries=2"));
    // Record 0 once, record 1 three times (first try and two retries), record 2 once.
    assert_eq!(server.calls.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn spent_retries_on_an_outage_fail_the_task_instead_of_dead_lettering() {
    let (_, url) = serve(|_, _| (StatusCode::BAD_GATEWAY, "upstream down").into_response()).await;
    let reporter = Arc::new(Reporter::default());
    let (mut task, _) = started(telegram_config(&url, &[("max.retries", "1")]), Some(reporter.clone())).await;
    assert!(task.put(&[alert(0, "x")]).await.unwrap_err().is_retriable());
    let err = task.put(&[alert(0, "x")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal, "{err}");
    assert!(err.to_string().contains("502") && err.to_string().contains("gave up after max.retries=1"), "{err}");
    assert!(reporter.0.lock().unwrap().is_empty(), "nothing dead-lettered for an outage");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_not_taken_for_a_delivery() {
    let (server, url) = serve(|_, _| (StatusCode::FOUND, [("location", "https://elsewhere.example/hook")], "").into_response()).await;
    let reporter = Arc::new(Reporter::default());
    let (mut task, _) = started(telegram_config(&url, &[]), Some(reporter.clone())).await;
    task.put(&[alert(0, "x")]).await.unwrap();
    assert_eq!(server.calls.lock().unwrap().len(), 1, "no GET after the 302");
    let reported = reporter.0.lock().unwrap();
    assert!(reported[0].1.contains("302") && reported[0].1.contains("https://elsewhere.example/hook"), "{}", reported[0].1);
}

#[tokio::test]
async fn parts_of_one_kafka_record_are_each_sent_once_across_a_redelivery() {
    // An exploded record: two parts with the same coordinates; the second is rate-limited once.
    let (server, url) = serve(|n, _| if n == 1 { (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response() } else { ok() }).await;
    let (mut task, _) = started(telegram_config(&url, &[]), None).await;
    let parts = [alert(5, "part one"), alert(5, "part two")];
    assert!(task.put(&parts).await.unwrap_err().is_retriable());
    task.put(&parts).await.unwrap();
    let bodies: Vec<String> = server.calls.lock().unwrap().iter().map(|(_, _, b)| b.clone()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies[2].contains("part two"), "the second part is sent again, not skipped as settled: {bodies:?}");
}

#[tokio::test]
async fn a_template_keeps_quotes_and_newlines_valid_json() {
    let (server, url) = serve(|_, _| ok()).await;
    let config = [
        ("http.api.url", url.as_str()),
        ("request.body.template", r#"{"chat_id":"-1","text":"*${value.MESSAGE}*","key":"${key}"}"#),
        ("batch.max.size", "2"),
        ("batch.prefix", "["),
        ("batch.suffix", "]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut task, _) = started(config, None).await;
    task.put(&[alert(0, "He said \"late\"\nagain \\o/"), alert(1, "tab\there")]).await.unwrap();
    let calls = server.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&calls[0].2).unwrap_or_else(|e| panic!("{e}: {}", calls[0].2));
    assert_eq!(json[0]["text"], "*He said \"late\"\nagain \\o/*");
    assert_eq!(json[1]["text"], "*tab\there*");
    assert_eq!(calls[0].1, "application/json");
}

#[tokio::test]
async fn null_values_follow_behavior_on_null_values() {
    let (server, url) = serve(|_, _| ok()).await;
    let tombstone =
        SinkRecord::new(RecordData::new("t", None, Value::Null).with_key(None, Value::from("gone")), 0, 9, TimestampType::CreateTime);
    let url_with_key = format!("{url}/${{key}}");
    let (mut task, _) = started(telegram_config(&url_with_key, &[("behavior.on.null.values", "delete")]), None).await;
    task.put(&[alert(8, "x"), tombstone.clone()]).await.unwrap();
    let methods: Vec<String> = server.calls.lock().unwrap().iter().map(|(m, _, _)| m.clone()).collect();
    assert_eq!(methods, ["POST", "DELETE"]);

    let (mut ignoring, _) = started(telegram_config(&url, &[]), None).await;
    ignoring.put(std::slice::from_ref(&tombstone)).await.unwrap();
    assert_eq!(server.calls.lock().unwrap().len(), 2, "ignored: no request");

    let reporter = Arc::new(Reporter::default());
    let (mut failing, _) = started(telegram_config(&url, &[("behavior.on.null.values", "fail")]), Some(reporter.clone())).await;
    failing.put(&[tombstone]).await.unwrap();
    assert!(reporter.0.lock().unwrap()[0].1.contains("null"));
}

#[tokio::test]
async fn a_server_that_is_down_is_retried_not_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut task, context) = started(telegram_config(&format!("http://127.0.0.1:{port}/x"), &[]), None).await;
    let err = task.put(&[alert(0, "x")]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(context.take_timeout().is_some());
}

#[tokio::test]
async fn many_requests_in_flight_deliver_every_record_once() {
    let (server, url) = serve(|_, _| ok()).await;
    let config = telegram_config(&url, &[("max.in.flight.requests", "8"), ("batch.max.size", "3")]);
    let (mut task, _) = started(config, None).await;
    let records: Vec<SinkRecord> = (0..100).map(|i| alert(i, &format!("n{i}"))).collect();
    task.put(&records).await.unwrap();
    assert_eq!(server.calls.lock().unwrap().len(), 34);
}
