//! Header converters end to end: what each `header.converter` writes to Kafka and reads back.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

/// `header.converter` is pluggable: the default (SimpleHeaderConverter) writes a string header as its bytes;
/// JsonConverter writes it as JSON; a sink reading with JsonConverter decodes it (a header it cannot decode
/// would fail the task, and the lines would never reach the file).
#[test]
fn header_converter_is_pluggable() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let (simple_topic, json_topic) = (unique("e2e-hdr-simple"), unique("e2e-hdr-json"));
    let out = dir.path().join("out.txt");
    let insert = |topic: &str, converter: Option<&str>| {
        let mut c = json!({
            "connector.class": "FileStreamSource", "file": input, "topic": topic,
            "transforms": "camera", "transforms.camera.type": "org.apache.kafka.connect.transforms.InsertHeader",
            "transforms.camera.header": "camera", "transforms.camera.value.literal": "garden-1",
        });
        if let Some(conv) = converter {
            c["header.converter"] = json!(conv);
            c["header.converter.schemas.enable"] = json!("false");
        }
        c
    };
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup
        .connector("hdr-simple", insert(&simple_topic, None))
        .connector("hdr-json", insert(&json_topic, Some("org.apache.kafka.connect.json.JsonConverter")))
        // Reads the JSON headers back with JsonConverter; only records that have the header reach the file.
        .connector(
            "hdr-sink",
            json!({
                "connector.class": "FileStreamSink", "file": out, "topics": json_topic,
                "header.converter": "org.apache.kafka.connect.json.JsonConverter", "header.converter.schemas.enable": "false",
                "transforms": "keepCamera", "transforms.keepCamera.type": "org.apache.kafka.connect.transforms.Filter",
                "transforms.keepCamera.predicate": "hasCamera", "transforms.keepCamera.negate": "true",
                "predicates": "hasCamera", "predicates.hasCamera.type": "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
                "predicates.hasCamera.name": "camera",
            }),
        );
    let mut worker = setup.start();
    let simple = read_topic_full(&simple_topic, 2, Duration::from_secs(60));
    let json_records = read_topic_full(&json_topic, 2, Duration::from_secs(60));
    assert_eq!(simple[0].header("camera").as_deref(), Some("garden-1"), "SimpleHeaderConverter: the string as it is");
    assert_eq!(json_records[0].header("camera").as_deref(), Some("\"garden-1\""), "JsonConverter: the string as JSON");
    wait_for("both lines through the sink", Duration::from_secs(60), || (line_count(&out) >= 2).then_some(()));
    assert_eq!(read_lines(&out), vec!["a".to_string(), "b".to_string()]);
    assert_eq!(worker.stop(), Some(0));
}
