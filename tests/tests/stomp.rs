//! STOMP source against real brokers: ActiveMQ 5.17 (one per test, so a test may restart it) and RabbitMQ's
//! STOMP plugin, into the real Kafka API broker. Counts are exact, bodies byte-identical, and after crashes
//! and restarts nothing is lost (duplicates counted, at most `max.pending.messages`).

use connect_e2e::stomp::{require_rabbitmq_stomp, ActiveMq, StompClient, RABBITMQ_STOMP_PORT};
use connect_e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Network Rail movement messages look like this: a JSON array of events as one text message.
fn movements(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            format!(
                r#"[{{"header":{{"msg_type":"0003","source_dev_id":"","user_id":"","original_data_source":"SMART","msg_queue_timestamp":"1733443200000","source_system_id":"TRUST"}},"body":{{"event_type":"ARRIVAL","train_id":"{i:06}","loc_stanox":"87701","toc_id":"88","variation_status":"LATE","planned_timestamp":"1733443260000","note":"café ✓ \"quoted\""}}}}]"#
            )
        })
        .collect()
}

/// The config the rail pipeline runs with Confluent's connector, pointed at a local STOMP port.
fn activemq_config(url: &str, kind: &str, destination: &str, kafka_topic: &str, extra: serde_json::Value) -> serde_json::Value {
    merge_json(
        json!({
            "connector.class": "io.confluent.connect.activemq.ActiveMQSourceConnector",
            "activemq.url": url, "activemq.username": "feeduser", "activemq.password": "feedpass",
            "jms.destination.type": kind, "jms.destination.name": destination, "kafka.topic": kafka_topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
            "confluent.license": "", "confluent.topic.bootstrap.servers": "kafka:29092", "confluent.topic.replication.factor": 1,
            "tasks.max": 1,
        }),
        extra,
    )
}

/// Wait until the worker logged `n` confirmed subscriptions (one per connection).
fn wait_subscribed(worker: &Worker, n: usize) {
    wait_for_or_explain(
        "the STOMP subscription",
        Duration::from_secs(60),
        || (worker.log_text().matches("STOMP subscription confirmed").count() >= n).then_some(()),
        || format!("worker log:\n{}", tail(&worker.log_text(), 40)),
    );
}

/// The `.text` of every record (the next step's `jq '.text'`), in topic order: all of them, duplicates
/// included, however many more than `expected` there are.
fn texts(topic: &str, expected: usize) -> Vec<String> {
    let present = (topic_count(topic).max(0) as usize).max(expected);
    read_topic(topic, present, Duration::from_secs(30))
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.3.as_deref().expect("a value")).expect("JSON value");
            v["text"].as_str().expect("a text message").to_string()
        })
        .collect()
}

fn counts(values: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Publish `bodies` in chunks of 250 every 100 ms on a thread of its own (about 4 s for 10,000), as a live
/// feed does; the thread returns how long it ran.
fn publish_slowly(port: u16, login: Option<(&str, &str)>, destination: &str, bodies: &[String]) -> std::thread::JoinHandle<Duration> {
    let (bodies, destination) = (bodies.to_vec(), destination.to_string());
    let login = login.map(|(u, p)| (u.to_string(), p.to_string()));
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut client = StompClient::connect(port, login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())));
        for chunk in bodies.chunks(250) {
            client.send_texts(&destination, chunk, &[("persistent", "true")]);
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    })
}

fn records_written(worker: &Worker, name: &str) -> u64 {
    worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0]["records-written"].as_u64().unwrap_or(0)
}

#[test]
fn network_rail_config_moves_ten_thousand_text_messages_in_order_byte_identical() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let topic = unique("networkrail_TRAIN_MVT");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("networkrail-mvt", activemq_config(&broker.url(), "topic", "TRAIN_MVT_EA_TOC", &topic, json!({})));
    let worker = setup.start();
    wait_subscribed(&worker, 1);
    let sent = movements(0..10_000);
    let mut publisher = StompClient::connect(broker.stomp_port, None);
    for chunk in sent.chunks(1000) {
        publisher.send_texts("/topic/TRAIN_MVT_EA_TOC", chunk, &[("persistent", "true"), ("toc", "EA")]);
    }
    wait_for("10,000 records in Kafka", Duration::from_secs(120), || (topic_count(&topic) >= 10_000).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    let records = read_topic(&topic, 10_000, Duration::from_secs(30));
    assert_eq!(records.len(), 10_000, "exactly 10,000 records");
    // `.text` byte-identical and in order, and `jq '.text|fromjson[]'` works on it.
    let got = texts(&topic, 10_000);
    assert_eq!(got, sent, "bodies byte-identical, in order");
    let event: serde_json::Value = serde_json::from_str(&got[42]).unwrap();
    assert_eq!(event[0]["body"]["train_id"], "000042");
    // The JMS source's shape.
    let value: serde_json::Value = serde_json::from_slice(records[0].3.as_deref().unwrap()).unwrap();
    eprintln!("a record's value: {value}");
    assert_eq!(value["messageType"], "text");
    assert_eq!(value["destination"], json!({"destinationType": "topic", "name": "TRAIN_MVT_EA_TOC"}));
    assert_eq!(value["deliveryMode"], 2, "persistent");
    assert_eq!(value["priority"], 4);
    assert_eq!(value["redelivered"], false);
    assert!(value["timestamp"].as_i64().unwrap() > 1_700_000_000_000, "the broker's timestamp: {value}");
    assert!(value["bytes"].is_null());
    assert_eq!(
        value["properties"]["toc"],
        json!({"propertyType": "string", "boolean": null, "byte": null, "short": null, "integer": null, "long": null, "float": null, "double": null, "string": "EA"})
    );
    let key: serde_json::Value = serde_json::from_slice(records[0].2.as_deref().unwrap()).unwrap();
    assert_eq!(key["messageID"], value["messageID"]);
    assert!(key["messageID"].as_str().unwrap().starts_with("ID:"), "ActiveMQ's message id: {key}");
    let (_, status) = worker.get("/connectors/networkrail-mvt/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
}

/// A BytesMessage (ActiveMQ makes one from a SEND with content-length) arrives in `bytes`, base64 in JSON.
#[test]
fn bytes_messages_keep_every_byte() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let topic = unique("e2e-stomp-bytes");
    let queue = unique("frames");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("stomp-bytes", activemq_config(&broker.url(), "queue", &queue, &topic, json!({})));
    let worker = setup.start();
    wait_subscribed(&worker, 1);
    let body: Vec<u8> = (0..=255u8).chain([0, 0, 10, 13, 58]).collect();
    StompClient::connect(broker.stomp_port, None).send_bytes(&format!("/queue/{queue}"), &body);
    wait_for("the record in Kafka", Duration::from_secs(60), || (topic_count(&topic) >= 1).then_some(()));
    let records = read_topic(&topic, 1, Duration::from_secs(60));
    assert_eq!(records.len(), 1, "worker log:\n{}", tail(&worker.log_text(), 30));
    let value: serde_json::Value = serde_json::from_slice(records[0].3.as_deref().unwrap()).unwrap();
    assert_eq!(value["messageType"], "bytes");
    assert!(value["text"].is_null());
    let b64 = value["bytes"].as_str().expect("bytes as base64");
    assert_eq!(base64_decode(b64), body, "every byte, NULs included");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | alphabet.iter().position(|&a| a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// SIGKILL mid-stream on a queue, more published while the worker is down, restart: every message
/// arrives; duplicates (unacknowledged messages redelivered) are at most max.pending.messages.
fn kill_and_restart_loses_nothing(
    broker_port: u16,
    url: &str,
    kind: &str,
    login: Option<(&str, &str)>,
    extra: serde_json::Value,
    dir: &std::path::Path,
) {
    let durable_id = extra["jms.subscription.name"].as_str().map(str::to_string);
    let topic = unique("e2e-stomp-kill");
    let destination = unique("TRAIN_MVT");
    let name = unique("stomp-kill");
    let max_pending = 500;
    let mut setup = WorkerSetup::new(dir, &[]);
    setup.connector(
        &name,
        activemq_config(url, kind, &destination, &topic, merge_json(json!({"max.pending.messages": max_pending}), extra)),
    );
    let mut worker = setup.start();
    wait_subscribed(&worker, 1);
    let total = 10_000;
    let sent = movements(0..total);
    let stomp_destination = format!("/{kind}/{destination}");
    // RabbitMQ keeps a durable subscription's queue until it is removed: remove it at the end.
    let cleanup = match (&durable_id, login) {
        (Some(id), Some(login)) => Some((login, id.clone())),
        _ => None,
    };
    // A feed that keeps publishing while the worker dies and comes back: what is published while it is down
    // is kept by the queue or the durable subscription.
    let publisher = publish_slowly(broker_port, login, &stomp_destination, &sent);
    let at_kill = wait_for("part of the stream in Kafka", Duration::from_secs(60), || {
        let n = records_written(&worker, &name);
        (n >= 1_000).then_some(n)
    });
    worker.kill_hard();
    std::thread::sleep(Duration::from_secs(1));
    let worker = setup.start();
    let published_at_restart = publisher.join().unwrap();
    assert!(at_kill < 6_000, "killed after {at_kill} records: too late to be mid-stream");
    eprintln!("stomp SIGKILL ({kind}): the publisher was done {published_at_restart:?} after the restart began");
    wait_for_or_explain(
        "every message in Kafka",
        Duration::from_secs(120),
        || {
            let got = texts(&topic, total);
            (counts(&got).len() >= total).then_some(())
        },
        || format!("{} distinct of {total}; worker log:\n{}", counts(&texts(&topic, total)).len(), tail(&worker.log_text(), 30)),
    );
    let got = texts(&topic, total);
    let counts = counts(&got);
    for (i, body) in sent.iter().enumerate() {
        assert!(counts.contains_key(body.as_str()), "message {i} lost");
    }
    let duplicates = got.len() - counts.len();
    eprintln!(
        "stomp SIGKILL ({kind}): killed after {at_kill} records; {} records for {total} messages: {duplicates} duplicates",
        got.len()
    );
    assert!(duplicates <= max_pending, "{duplicates} duplicates, more than max.pending.messages={max_pending}");
    // Messages in flight at the kill come again, marked so by the broker.
    let redelivered = read_topic(&topic, got.len(), Duration::from_secs(30))
        .iter()
        .filter(|r| serde_json::from_slice::<serde_json::Value>(r.3.as_deref().unwrap()).unwrap()["redelivered"] == true)
        .count();
    eprintln!("stomp SIGKILL ({kind}): {redelivered} records marked redelivered");
    assert_eq!(worker.get(&format!("/connectors/{name}/status")).1["tasks"][0]["state"], "RUNNING");
    if let Some((login, id)) = cleanup {
        drop(worker);
        StompClient::connect(broker_port, Some(login)).remove_durable_subscription(&stomp_destination, &id);
    }
}

#[test]
fn activemq_queue_sigkill_mid_stream_loses_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    kill_and_restart_loses_nothing(broker.stomp_port, &broker.url(), "queue", None, json!({}), dir.path());
}

#[test]
fn activemq_durable_topic_keeps_what_is_published_while_the_worker_is_down() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), true);
    kill_and_restart_loses_nothing(
        broker.stomp_port,
        &broker.url(),
        "topic",
        None,
        json!({"jms.subscription.durable": true, "jms.subscription.name": "rail-archive", "jms.client.id": "connect-rs-rail"}),
        dir.path(),
    );
}

#[test]
fn rabbitmq_queue_sigkill_mid_stream_loses_nothing() {
    require_broker();
    require_rabbitmq_stomp();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("stomp://127.0.0.1:{RABBITMQ_STOMP_PORT}");
    kill_and_restart_loses_nothing(
        RABBITMQ_STOMP_PORT,
        &url,
        "queue",
        Some(("guest", "guest")),
        json!({"activemq.username": "guest", "activemq.password": "guest"}),
        dir.path(),
    );
}

#[test]
fn rabbitmq_durable_topic_keeps_what_is_published_while_the_worker_is_down() {
    require_broker();
    require_rabbitmq_stomp();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("stomp://127.0.0.1:{RABBITMQ_STOMP_PORT}");
    let subscription = unique("rail-archive");
    kill_and_restart_loses_nothing(
        RABBITMQ_STOMP_PORT,
        &url,
        "topic",
        Some(("guest", "guest")),
        json!({"activemq.username": "guest", "activemq.password": "guest", "jms.subscription.durable": true, "jms.subscription.name": subscription}),
        dir.path(),
    );
}

/// ActiveMQ killed and restarted mid-stream (persistent messages): the task reconnects by itself and never
/// fails, and every message arrives.
#[test]
fn broker_restart_mid_stream_reconnects_without_task_failure() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = ActiveMq::start(dir.path(), true);
    let topic = unique("e2e-stomp-restart");
    let queue = unique("movements");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("stomp-restart", activemq_config(&broker.url(), "queue", &queue, &topic, json!({"stomp.heartbeat.ms": 2000})));
    let worker = setup.start();
    wait_subscribed(&worker, 1);
    let sent = movements(0..4_000);
    StompClient::connect(broker.stomp_port, None).send_texts(&format!("/queue/{queue}"), &sent[..2_000], &[("persistent", "true")]);
    wait_for("the first messages in Kafka", Duration::from_secs(60), || (records_written(&worker, "stomp-restart") >= 500).then_some(()));
    let outage = Instant::now();
    broker.kill();
    std::thread::sleep(Duration::from_secs(5));
    broker.restart();
    StompClient::connect(broker.stomp_port, None).send_texts(&format!("/queue/{queue}"), &sent[2_000..], &[("persistent", "true")]);
    let states = worker.task_states_until("stomp-restart", outage, Duration::from_secs(12));
    wait_subscribed(&worker, 2);
    wait_for_or_explain(
        "every message in Kafka",
        Duration::from_secs(120),
        || {
            let got = texts(&topic, sent.len());
            (counts(&got).len() >= sent.len()).then_some(())
        },
        || {
            format!(
                "{} distinct of {}; worker log:\n{}",
                counts(&texts(&topic, sent.len())).len(),
                sent.len(),
                tail(&worker.log_text(), 30)
            )
        },
    );
    let got = texts(&topic, sent.len());
    let counts = counts(&got);
    for (i, body) in sent.iter().enumerate() {
        assert!(counts.contains_key(body.as_str()), "message {i} lost");
    }
    assert!(states.iter().all(|s| s == "RUNNING"), "the task never failed during the outage: {states:?}");
    assert!(worker.log_text().contains("STOMP connection lost"), "the loss was logged");
    eprintln!("stomp broker restart: {} records for {} messages", got.len(), sent.len());
}

/// The OpenWire port (what a JMS client's tcp://host:61616 URL names) fails the start with an error that
/// says what answered and names the STOMP ports.
#[test]
fn an_openwire_port_fails_the_start_with_a_clear_error() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let topic = unique("e2e-stomp-openwire");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let url = format!("tcp://127.0.0.1:{}", broker.openwire_port);
    setup.connector("stomp-openwire", activemq_config(&url, "topic", "TRAIN_MVT_EA_TOC", &topic, json!({})));
    let worker = setup.start();
    let status = wait_for("the task to fail", Duration::from_secs(60), || {
        let (_, s) = worker.get("/connectors/stomp-openwire/status");
        (s["tasks"][0]["state"] == "FAILED").then_some(s)
    });
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("does not speak STOMP") && trace.contains("OpenWire"), "{trace}");
    assert!(trace.contains("61613"), "names the STOMP port: {trace}");
}

/// `jms.message.selector` goes to the broker, which filters: only the selected messages arrive.
#[test]
fn a_message_selector_is_applied_by_activemq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let topic = unique("e2e-stomp-selector");
    let queue = unique("movements");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "stomp-selector",
        activemq_config(&broker.url(), "queue", &queue, &topic, json!({"jms.message.selector": "toc = 'EA'"})),
    );
    let worker = setup.start();
    wait_subscribed(&worker, 1);
    let sent = movements(0..100);
    let mut publisher = StompClient::connect(broker.stomp_port, None);
    for (i, body) in sent.iter().enumerate() {
        let toc = if i % 2 == 0 { "EA" } else { "GW" };
        publisher.send_texts(&format!("/queue/{queue}"), std::slice::from_ref(body), &[("toc", toc)]);
    }
    wait_for("50 records in Kafka", Duration::from_secs(60), || (topic_count(&topic) >= 50).then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    let got = texts(&topic, 50);
    let expected: Vec<String> = sent.iter().step_by(2).cloned().collect();
    assert_eq!(got, expected, "exactly the EA messages, in order");
}

/// A clean stop mid-stream (SIGTERM): the acks for everything Kafka took are sent before DISCONNECT, so a
/// restart gets no duplicates.
#[test]
fn a_clean_stop_mid_stream_sends_its_acks_no_duplicates() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let topic = unique("e2e-stomp-stop");
    let queue = unique("movements");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("stomp-stop", activemq_config(&broker.url(), "queue", &queue, &topic, json!({})));
    let mut worker = setup.start();
    wait_subscribed(&worker, 1);
    // A backlog drained at full speed, so thousands of messages are in flight (delivered, not yet acked)
    // when the stop comes.
    let sent = movements(0..40_000);
    let (port, destination, bodies) = (broker.stomp_port, format!("/queue/{queue}"), sent.clone());
    let publisher = std::thread::spawn(move || {
        let mut client = StompClient::connect(port, None);
        for chunk in bodies.chunks(2_000) {
            client.send_texts(&destination, chunk, &[("persistent", "true")]);
        }
    });
    let at_stop = wait_for("part of the stream in Kafka", Duration::from_secs(60), || {
        let n = records_written(&worker, "stomp-stop");
        (n >= 5_000).then_some(n)
    });
    assert_eq!(worker.stop(), Some(0), "a clean exit");
    let stopped_log = worker.log_text();
    let worker = setup.start();
    publisher.join().unwrap();
    wait_for_or_explain(
        "every message in Kafka",
        Duration::from_secs(120),
        || (counts(&texts(&topic, sent.len())).len() >= sent.len()).then_some(()),
        || format!("worker log:\n{}", tail(&worker.log_text(), 30)),
    );
    std::thread::sleep(Duration::from_secs(2));
    let got = texts(&topic, sent.len());
    eprintln!("stomp clean stop after {at_stop} records: {} records for {} messages", got.len(), sent.len());
    assert!(at_stop < 35_000, "stopped mid-stream");
    assert_eq!(got.len(), sent.len(), "no duplicates after a clean stop; the stopped worker's log ends:\n{}", tail(&stopped_log, 25));
    assert_eq!(got, sent, "every message exactly once, in order");
}

/// A window of 8 pending messages and a Filter that drops every record: dropped records are acknowledged
/// too (the runtime calls `commit_record` for them), so the window never fills and stalls; then, without the
/// filter, the same window moves a stream in order, each message once.
#[test]
fn a_small_pending_window_never_stalls_even_when_every_record_is_dropped() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = ActiveMq::start(dir.path(), false);
    let (dropped_topic, kept_topic) = (unique("e2e-stomp-dropped"), unique("e2e-stomp-window"));
    let (dropped_queue, kept_queue) = (unique("dropped"), unique("kept"));
    let window = json!({"max.pending.messages": 8, "batch.size": 4});
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "stomp-dropped",
        activemq_config(
            &broker.url(),
            "queue",
            &dropped_queue,
            &dropped_topic,
            merge_json(
                window.clone(),
                json!({
                    "transforms": "dropAll", "transforms.dropAll.type": "org.apache.kafka.connect.transforms.Filter",
                    "transforms.dropAll.predicate": "always",
                    "predicates": "always", "predicates.always.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
                    "predicates.always.pattern": ".*",
                }),
            ),
        ),
    );
    setup.connector("stomp-window", activemq_config(&broker.url(), "queue", &kept_queue, &kept_topic, window));
    let worker = setup.start();
    wait_subscribed(&worker, 2);
    let sent = movements(0..2_000);
    let mut publisher = StompClient::connect(broker.stomp_port, None);
    publisher.send_texts(&format!("/queue/{dropped_queue}"), &sent, &[("persistent", "true")]);
    publisher.send_texts(&format!("/queue/{kept_queue}"), &sent, &[("persistent", "true")]);
    let read = |name: &str| worker.get(&format!("/connectors/{name}/metrics")).1["tasks"][0]["records-read"].as_u64().unwrap_or(0);
    wait_for_or_explain(
        "every dropped message read",
        Duration::from_secs(120),
        || (read("stomp-dropped") >= 2_000).then_some(()),
        || format!("records-read {} (a stalled window stops at 8); log:\n{}", read("stomp-dropped"), tail(&worker.log_text(), 20)),
    );
    assert_eq!(records_written(&worker, "stomp-dropped"), 0, "the filter dropped every record");
    wait_for("every kept message in Kafka", Duration::from_secs(120), || (records_written(&worker, "stomp-window") >= 2_000).then_some(()));
    assert_eq!(texts(&kept_topic, 2_000), sent, "in order, each once, through a window of 8");
}
