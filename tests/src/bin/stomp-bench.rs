//! stomp-bench: how fast the STOMP source drains a backlog into Kafka, against a plain STOMP subscriber
//! (stomp-plain-sub) draining the same backlog from the same broker, in the same run.
//!
//! An ActiveMQ of the bench's own gets N Network-Rail-sized text messages on each of two queues; then the
//! plain subscriber drains one and the connector (the rail config: JsonConverter, acks after Kafka) the
//! other, each timed from its process start to its last message (the connector's: the last record Kafka
//! acknowledged). Usage: stomp-bench [N] (default 100000).

use connect_e2e::stomp::{ActiveMq, StompClient};
use connect_e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    // Persistent (KahaDB): a backlog of this size would exceed a memory-only broker's limit and block the publisher.
    let broker = ActiveMq::start(dir.path(), true);
    let body = r#"[{"header":{"msg_type":"0003","source_dev_id":"","user_id":"","original_data_source":"SMART","msg_queue_timestamp":"1733443200000","source_system_id":"TRUST"},"body":{"event_type":"ARRIVAL","gbtt_timestamp":"1733443260000","original_loc_stanox":"","planned_timestamp":"1733443260000","timetable_variation":"2","original_loc_timestamp":"","current_train_id":"","delay_monitoring_point":"true","next_report_run_time":"3","reporting_stanox":"87701","actual_timestamp":"1733443380000","correction_ind":"false","event_source":"AUTOMATIC","train_file_address":null,"platform":" 2","division_code":"88","train_terminated":"false","train_id":"NNNNNN","offroute_ind":"false","variation_status":"LATE","train_service_code":"24673105","toc_id":"88","loc_stanox":"87701","auto_expected":"true","direction_ind":"UP","route":"0","planned_event_type":"ARRIVAL","next_report_stanox":"87703","line_ind":""}}]"#;
    let bodies: Vec<String> = (0..n).map(|i| body.replace("NNNNNN", &format!("{i:06}"))).collect();
    let mut publisher = StompClient::connect(broker.stomp_port, None);
    for queue in ["/queue/bench-plain", "/queue/bench-connector"] {
        for chunk in bodies.chunks(5_000) {
            publisher.send_texts(queue, chunk, &[("persistent", "true")]);
        }
    }
    println!("stomp-bench: {n} text messages of {} bytes queued on each of two queues (ActiveMQ 5.17, persistent)", body.len());

    let bin = std::env::current_exe().unwrap().with_file_name("stomp-plain-sub");
    let start = Instant::now();
    let status = std::process::Command::new(&bin)
        .args([broker.stomp_port.to_string(), "/queue/bench-plain".into(), n.to_string(), "4096".into()])
        .status()
        .expect("stomp-plain-sub");
    assert!(status.success(), "stomp-plain-sub failed");
    let plain_secs = start.elapsed().as_secs_f64();

    let topic = unique("bench-stomp");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "bench-stomp",
        json!({
            "connector.class": "io.confluent.connect.activemq.ActiveMQSourceConnector", "activemq.url": broker.url(),
            "jms.destination.type": "queue", "jms.destination.name": "bench-connector", "kafka.topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
        }),
    );
    create_topic(&topic);
    let start = Instant::now();
    let worker = setup.start();
    let written = || worker.get("/connectors/bench-stomp/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
    let mut peak_rss = 0;
    loop {
        let w = written();
        if let Some((rss, _)) = memory_kib(worker.pid()) {
            peak_rss = peak_rss.max(rss);
        }
        if w >= n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "only {w} of {n} messages in Kafka after 600 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let connector_secs = start.elapsed().as_secs_f64();
    let (plain_rate, connector) = (n as f64 / plain_secs, n as f64 / connector_secs);
    println!("{:<56} {:>12}", "measure", "messages/s");
    println!("{:<56} {:>12.0}", "plain STOMP subscriber (client-individual acks)", plain_rate);
    println!("{:<56} {:>12.0}", "STOMP source -> Kafka (JsonConverter, acked after Kafka)", connector);
    println!("worker peak RSS while draining: {} MiB", peak_rss / 1024);
    println!("ratio connector / plain subscriber: {:.2} (aim >= 0.9)", connector / plain_rate);
}
