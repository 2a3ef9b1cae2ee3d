//! mqtt-bench: how fast the MQTT source lands messages in Kafka, against how fast a plain MQTT subscriber
//! receives the same messages from the same broker, in the same run.
//!
//! Both have a persistent session (QoS 1) on a Mosquitto of the bench's own; N messages are published
//! once while both are away, so each then drains the same backlog and the publisher's speed does not
//! count. Usage: mqtt-bench [N] (default 20000: Mosquitto itself drains much larger offline queues slowly).

use connect_e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let broker = MqttBroker::start(dir.path());
    let topic = unique("bench-mqtt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "bench-mqtt",
        json!({
            "connector.class": "io.confluent.connect.mqtt.MqttSourceConnector", "mqtt.server.uri": broker.url(), "mqtt.topics": "sockfound",
            "kafka.topic": topic, "mqtt.qos": 1, "mqtt.clean.session.enabled": false,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        }),
    );
    // Create both persistent sessions, then leave.
    let mut worker = setup.start();
    wait_for("the connector's subscription", Duration::from_secs(30), || {
        (broker.subscriptions("connect-rs-bench-mqtt-0") >= 1).then_some(())
    });
    worker.stop();
    let plain = |count: usize| {
        std::process::Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-t", "sockfound", "-q", "1", "-i", "bench-plain", "-c", "-C"])
            .arg(count.to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("mosquitto_sub")
    };
    // mosquitto_sub -C 0 is not "no messages": subscribe with a 1 s wait instead.
    let _ = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-t", "sockfound", "-q", "1", "-i", "bench-plain", "-c", "-W", "1"])
        .stdout(std::process::Stdio::null())
        .status();
    let payloads: String = (0..n).map(|i| format!("{{\"image\":\"Google\",\"probability\":97.3,\"n\":{i}}}\n")).collect();
    broker.publish_lines("sockfound", 1, &payloads);
    println!("mqtt-bench: {n} QoS-1 messages queued for two persistent sessions");

    // The limit: a plain subscriber (mosquitto_sub, C) drains its backlog.
    let start = Instant::now();
    assert!(plain(n).success(), "mosquitto_sub failed");
    let plain_secs = start.elapsed().as_secs_f64();

    // The connector drains its backlog into Kafka: from the worker's REST port opening (the task then
    // connects, as mosquitto_sub's time includes its start and connect) to the last record Kafka acked.
    // Sampled every 5 ms: the counter moves in jumps of whole batches, so sparse samples would mislead.
    let start = Instant::now();
    let worker = setup.start();
    let written = || worker.get("/connectors/bench-mqtt/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
    let progress = std::env::var("BENCH_PROGRESS").is_ok();
    let (mut first, mut last_print) = (None, Instant::now());
    loop {
        let w = written();
        if w > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if progress && last_print.elapsed() >= Duration::from_millis(100) {
            eprintln!("{:>8.3}s {w}", start.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        if w >= n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "only {w} of {n} messages in Kafka after 600 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let connector_secs = start.elapsed().as_secs_f64();
    println!(
        "connector: first record in Kafka after {:.3} s, all {n} after {connector_secs:.3} s",
        first.unwrap_or_default().as_secs_f64()
    );
    let (plain_rate, connector) = (n as f64 / plain_secs, n as f64 / connector_secs);
    println!("{:<48} {:>12}", "measure", "messages/s");
    println!("{:<48} {:>12.0}", "plain MQTT subscriber (mosquitto_sub, QoS 1)", plain_rate);
    println!("{:<48} {:>12.0}", "MQTT source -> Kafka (acked after Kafka)", connector);
    println!("ratio connector / plain subscriber: {:.2} (aim >= 0.9)", connector / plain_rate);
}
