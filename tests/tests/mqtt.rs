//! MQTT source against real Mosquitto brokers (one per test, so a test may restart its broker) and the
//! real Kafka API broker: exact counts, byte-identical payloads, no loss across crashes and restarts.

use connect_e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn payloads(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{{\"image\":\"Google\",\"probability\":97.3,\"n\":{i}}}\n")).collect()
}

/// The config people run today with Confluent's connector.
fn mqtt_config(broker: &MqttBroker, kafka_topic: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({
        "connector.class": "io.confluent.connect.mqtt.MqttSourceConnector",
        "mqtt.server.uri": broker.url(),
        "mqtt.topics": "sockfound",
        "kafka.topic": kafka_topic,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "tasks.max": 1,
        "mqtt.qos": 1,
        "confluent.topic.bootstrap.servers": "localhost:9092",
        "confluent.topic.replication.factor": 1,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn wait_subscribed(broker: &MqttBroker, worker: &Worker, client_id: &str, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while broker.subscriptions(client_id) < count {
        assert!(
            std::time::Instant::now() < deadline,
            "no subscription by {client_id}; broker log:\n{}\nworker log:\n{}",
            broker.log_text(),
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn values_by_count(topic: &str, expected: usize) -> (Vec<Vec<u8>>, HashMap<Vec<u8>, usize>) {
    let records = read_topic(topic, expected, Duration::from_secs(30));
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.3.clone().unwrap_or_default()).collect();
    let mut counts = HashMap::new();
    for v in &values {
        *counts.entry(v.clone()).or_insert(0) += 1;
    }
    (values, counts)
}

#[test]
fn ten_thousand_qos1_messages_arrive_exactly_once_byte_identical() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = MqttBroker::start(dir.path());
    let topic = unique("e2e-mqtt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("mqtt-camera", mqtt_config(&broker, &topic, json!({})));
    let worker = setup.start();
    wait_subscribed(&broker, &worker, "connect-rs-mqtt-camera-0", 1);
    let sent = payloads(0..10_000);
    broker.publish_lines("sockfound", 1, &sent);
    wait_for("10,000 records in Kafka", Duration::from_secs(120), || (topic_count(&topic) >= 10_000).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    let records = read_topic(&topic, 10_000, Duration::from_secs(30));
    assert_eq!(records.len(), 10_000, "exactly 10,000 records");
    assert_eq!(topic_count(&topic), 10_000);
    for r in &records {
        assert_eq!(r.2.as_deref(), Some(&b"sockfound"[..]), "key = the MQTT topic");
    }
    let values: Vec<&[u8]> = records.iter().map(|r| r.3.as_deref().unwrap()).collect();
    let expected: Vec<&[u8]> = sent.lines().map(str::as_bytes).collect();
    assert_eq!(values, expected, "payloads byte-identical, in order");
    let (_, status) = worker.get("/connectors/mqtt-camera/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
}

/// The worker killed with SIGKILL mid-stream, persistent session: messages published meanwhile wait in
/// the broker, unacknowledged ones are redelivered; nothing is lost. Duplicates are counted and reported.
#[test]
fn sigkill_mid_stream_with_a_persistent_session_loses_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = MqttBroker::start(dir.path());
    let topic = unique("e2e-mqtt-kill");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("mqtt-kill", mqtt_config(&broker, &topic, json!({"mqtt.clean.session.enabled": false})));
    let mut worker = setup.start();
    wait_subscribed(&broker, &worker, "connect-rs-mqtt-kill-0", 1);
    let total = 10_000;
    let chunk = 250;
    // A device keeps publishing while the worker dies and comes back.
    let port = broker.port;
    let publisher = std::thread::spawn(move || {
        for start in (0..total).step_by(chunk) {
            publish_lines(port, "sockfound", 1, &payloads(start..start + chunk));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // The worker's own counter, not a topic read: the topic keeps growing while we look.
    let at_kill = wait_for("a part of the stream in Kafka", Duration::from_secs(60), || {
        let written = worker.get("/connectors/mqtt-kill/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0);
        (written >= 2_000).then_some(written)
    });
    worker.kill_hard();
    std::thread::sleep(Duration::from_secs(1));
    let worker = setup.start();
    publisher.join().unwrap();
    wait_for("every message in Kafka", Duration::from_secs(120), || {
        let (_, counts) = values_by_count(&topic, total);
        (counts.len() >= total).then_some(())
    });
    let (values, counts) = values_by_count(&topic, total);
    for (i, line) in payloads(0..total).lines().enumerate() {
        assert!(counts.contains_key(line.as_bytes()), "message {i} lost");
    }
    let duplicates = values.len() - counts.len();
    eprintln!("mqtt SIGKILL: killed after {at_kill} records were in Kafka; {} records for {total} messages: {duplicates} duplicates (at-least-once redelivery of unacknowledged messages)", values.len());
    assert_eq!(counts.len(), total);
    assert_eq!(worker.get("/connectors/mqtt-kill/status").1["tasks"][0]["state"], "RUNNING");
}

/// Mosquitto restarted mid-stream: the connector reconnects, subscribes again and goes on; the task never
/// fails.
#[test]
fn broker_restart_mid_stream_reconnects_without_task_failure() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = MqttBroker::start(dir.path());
    let topic = unique("e2e-mqtt-restart");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("mqtt-restart", mqtt_config(&broker, &topic, json!({})));
    let worker = setup.start();
    wait_subscribed(&broker, &worker, "connect-rs-mqtt-restart-0", 1);
    broker.publish_lines("sockfound", 1, &payloads(0..1_000));
    wait_for("the first 1,000", Duration::from_secs(60), || (topic_count(&topic) >= 1_000).then_some(()));

    broker.restart();
    wait_subscribed(&broker, &worker, "connect-rs-mqtt-restart-0", 2);
    broker.publish_lines("sockfound", 1, &payloads(1_000..2_000));
    wait_for("the next 1,000", Duration::from_secs(60), || (topic_count(&topic) >= 2_000).then_some(()));
    let (_, counts) = values_by_count(&topic, 2_000);
    assert_eq!(counts.len(), 2_000, "every message of both phases");
    let (_, status) = worker.get("/connectors/mqtt-restart/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    assert!(status["tasks"][0].get("restart_count").is_none(), "the task never failed: {status}");
    assert!(status["tasks"][0].get("trace").is_none(), "{status}");
}

/// MQTT over WebSockets (`ws://`): a broker with only a WebSocket listener (amqtt; Debian's Mosquitto has
/// none), messages published over WebSockets too, every one in Kafka byte-identical with its MQTT topic as key.
#[test]
fn websocket_transport_moves_messages() {
    require_broker();
    let bin = std::path::PathBuf::from(std::env::var("CONNECT_TEST_AMQTT").unwrap_or_else(|_| {
        panic!("CONNECT_TEST_AMQTT is not set: run the tests through scripts/test-all (it exports `scripts/services amqtt-bin`)")
    }));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("amqtt.yaml");
    std::fs::write(
        &config,
        format!("listeners:\n  default:\n    type: ws\n    bind: 127.0.0.1:{port}\nplugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"),
    )
    .unwrap();
    // amqtt and amqtt_pub log every message at INFO: into files (scripts/test-all puts them under the services
    // directory of the cache and says where), not into the test output.
    let logs = std::env::var_os("CONNECT_TEST_SERVICE_LOGS").map(std::path::PathBuf::from).unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&logs).unwrap();
    let broker_log = logs.join("amqtt-websocket.log");
    let pub_log = logs.join("amqtt_pub-websocket.log");
    eprintln!("amqtt logs: {} and {}", broker_log.display(), pub_log.display());
    let log = std::fs::File::create(&broker_log).unwrap();
    let mut broker =
        std::process::Command::new(bin.join("amqtt")).arg("-c").arg(&config).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    wait_for("the WebSocket broker", Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok().then_some(()));
    let url = format!("ws://127.0.0.1:{port}/mqtt");

    let topic = unique("e2e-mqtt-ws");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "mqtt-ws",
        json!({
            "connector.class": "io.confluent.connect.mqtt.MqttSourceConnector", "mqtt.server.uri": url, "mqtt.topics": "sockfound",
            "kafka.topic": topic, "mqtt.qos": 1,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        }),
    );
    let mut worker = setup.start();
    wait_for("the connector to connect over WebSockets", Duration::from_secs(30), || {
        worker.log_text().contains("connected to the MQTT broker").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500)); // the SUBSCRIBE follows the CONNACK
    let n = 200;
    let lines = payloads(0..n);
    let file = dir.path().join("payloads.txt");
    std::fs::write(&file, &lines).unwrap();
    let pub_out = std::fs::File::create(&pub_log).unwrap();
    let status = std::process::Command::new(bin.join("amqtt_pub"))
        .args(["--url", &url, "-t", "sockfound", "-q", "1", "-f"])
        .arg(&file)
        .stdout(pub_out.try_clone().unwrap())
        .stderr(pub_out)
        .status()
        .unwrap();
    assert!(status.success(), "amqtt_pub failed; its log: {}", pub_log.display());
    let records = read_topic(&topic, n, Duration::from_secs(60));
    let _ = broker.kill();
    let _ = broker.wait();
    assert_eq!(
        records.len(),
        n,
        "amqtt logs: {}, {}; worker log:\n{}",
        broker_log.display(),
        pub_log.display(),
        tail(&worker.log_text(), 30)
    );
    let mut got: Vec<Vec<u8>> = records.iter().map(|r| r.3.clone().unwrap_or_default()).collect();
    got.sort();
    // amqtt_pub -f publishes each line with its newline.
    let mut want: Vec<Vec<u8>> = lines.lines().map(|l| format!("{l}\n").into_bytes()).collect();
    want.sort();
    let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert!(
        differing == 0,
        "{differing} payloads differ from what was published, e.g. {:?}",
        got.iter().zip(&want).find(|(a, b)| a != b).map(|(a, _)| String::from_utf8_lossy(a).into_owned())
    );
    assert!(records.iter().all(|r| r.2.as_deref() == Some(&b"sockfound"[..])), "keys are the MQTT topic");
    assert_eq!(worker.stop(), Some(0));
}
