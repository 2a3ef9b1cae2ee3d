//! The car-park feed of the field examples: raw CSV lines from a file source become clean, typed JSON in Kafka
//! through a connector config alone (ParseCsv, ParseTimestamp in Europe/London, ComputeField, BuildStruct,
//! InsertField, ValueToKey/ExtractField). A line the chain cannot parse lands in the DLQ, and the count holds:
//! lines in = records delivered + records in the DLQ.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

const LINES: &[&str] = &[
    r#"2020-10-06,14:41,Westgate,116,89,Spaces,53.796291,-1.759143,"https://maps.google.com/?daddr=53.796291,-1.759143""#,
    r#"2020-12-06,09:05,"Kirkgate, Market",250,0,Full,53.793802,-1.748971,"https://maps.google.com/?daddr=53.793802,-1.748971""#,
    // Capacity is not a number: a data error, dead-lettered.
    r#"2020-10-06,14:41,Broken,lots,89,Spaces,53.8,-1.7,"x""#,
];

#[test]
fn car_park_csv_lines_come_out_as_typed_json() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("carparks.csv");
    std::fs::write(&input, LINES.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let (topic, dlq) = (unique("e2e-carparks"), unique("e2e-carparks-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "carparks",
        merge_json(
            json!({
                "connector.class": "FileStreamSource",
                "file": input,
                "topic": topic,
                "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                "value.converter.schemas.enable": "false",
            }),
            car_park_chain(&dlq),
        ),
    );
    let mut worker = setup.start();
    let records = read_topic_full(&topic, 2, Duration::from_secs(60));
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!((records.len(), dead.len()), (2, 1), "3 lines in = 2 delivered + 1 dead-lettered");

    let json_of = |r: &FullRecord| serde_json::from_slice::<serde_json::Value>(r.value.as_ref().unwrap()).unwrap();
    let westgate = json_of(&records[0]);
    assert_eq!(
        westgate,
        json!({
            "NAME": "Westgate",
            "CAPACITY": 116,
            "EMPTY_PLACES": 89,
            "STATUS": "Spaces",
            "DIRECTIONSURL": "https://maps.google.com/?daddr=53.796291,-1.759143",
            // 2020-10-06 14:41 in London is British Summer Time: 13:41 UTC.
            "TS": 1_601_991_660_000i64,
            "PCT_FULL": 23.275862068965516,
            "LOCATION": {"lat": 53.796291, "lon": -1.759143},
            "SOURCE": "v2",
        })
    );
    assert_eq!(records[0].key.as_deref(), Some(&b"Westgate"[..]));
    let kirkgate = json_of(&records[1]);
    assert_eq!(kirkgate["NAME"], "Kirkgate, Market", "a quoted cell keeps its delimiter");
    assert_eq!(kirkgate["TS"], 1_607_245_500_000i64, "09:05 in December is GMT: 09:05 UTC");
    assert_eq!(kirkgate["PCT_FULL"], 100.0);
    assert!(kirkgate["PCT_FULL"].is_f64(), "PCT_FULL is a double even at 100: {kirkgate}");

    let bad = &dead[0];
    assert_eq!(bad.header("__connect.errors.stage").as_deref(), Some("TRANSFORMATION"));
    let message = bad.header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("column CAPACITY: 'lots' is not a valid Int32"), "{message}");
    let (_, status) = worker.get("/connectors/carparks/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}
