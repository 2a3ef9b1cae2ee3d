//! The Elasticsearch sink (Confluent ElasticsearchSinkConnector configs) against noida-db, an Elasticsearch 8
//! API emulator of the test's own: the rail-data config (one document per key, latest value), ids from
//! coordinates, tombstones deleting, a malformed document to the DLQ with Elasticsearch's reason, a 20 s outage,
//! an exact count across a SIGKILL, and the car-park pipeline landing with a geo_point mapping from a template.

use connect_e2e::elasticsearch::Elasticsearch;
use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

fn kv(key: &str, value: serde_json::Value) -> TestRecord {
    (Some(key.as_bytes().to_vec()), Some(value.to_string().into_bytes()), vec![])
}

/// The rail-data config as people run it, pointed at the emulator.
fn rail_config(topic: &str, es: &Elasticsearch) -> serde_json::Value {
    json!({
        "connector.class": "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
        "topics": topic,
        "connection.url": es.url(),
        "type.name": "type.name=kafkaconnect",
        "key.ignore": "false",
        "schema.ignore": "true",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
    })
}

fn wait_count(es: &Elasticsearch, index: &str, n: u64, worker: &Worker) {
    wait_for_or_explain(
        &format!("{n} documents in {index}"),
        Duration::from_secs(90),
        || (es.count(index) == Some(n)).then_some(()),
        || format!("count {:?}\n{}", es.count(index), tail(&worker.log_text(), 30)),
    );
}

#[test]
fn rail_config_one_document_per_key_ids_from_coordinates_and_tombstones_delete() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let (keyed, unkeyed, deleting) = (unique("TRAIN_MOVEMENTS_ACTIVATIONS_SCHEDULE"), unique("train_events"), unique("train_states"));
    let movement = |loc: &str, n: i64| json!({"LOC_STANOX": loc, "TIMETABLE_VARIATION": n});
    let records =
        vec![kv("t1", movement("LEEDS", 1)), kv("t2", movement("YORK", 0)), kv("t1", movement("HULL", 5)), kv("t3", movement("BATH", 2))];
    produce(&keyed, &records);
    produce(&unkeyed, &records);
    produce(&deleting, &[kv("t1", movement("LEEDS", 1)), kv("t2", movement("YORK", 0)), (Some(b"t1".to_vec()), None, vec![])]);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let names = [unique("es-rail"), unique("es-unkeyed"), unique("es-deleting")];
    setup.connector(&names[0], rail_config(&keyed, &es));
    setup.connector(&names[1], merge_json(rail_config(&unkeyed, &es), json!({"key.ignore": "true"})));
    setup.connector(&names[2], merge_json(rail_config(&deleting, &es), json!({"behavior.on.null.values": "delete"})));
    let mut worker = setup.start();
    let index = keyed.to_lowercase();
    wait_count(&es, &index, 3, &worker);
    let t1 = es.get(&format!("/{index}/_doc/t1")).expect("document t1");
    assert_eq!(t1["_source"], movement("HULL", 5), "the latest value of key t1");
    assert_eq!(t1["_version"], 2, "the Kafka offset is the external version");
    wait_count(&es, &unkeyed.to_lowercase(), 4, &worker);
    let by_coordinates = es.get(&format!("/{}/_doc/{unkeyed}+0+2", unkeyed.to_lowercase())).expect("id topic+partition+offset");
    assert_eq!(by_coordinates["_source"], movement("HULL", 5));
    wait_count(&es, &deleting.to_lowercase(), 1, &worker);
    assert!(es.get(&format!("/{}/_doc/t1", deleting.to_lowercase())).is_none(), "the tombstone deleted t1");
    for name in &names {
        let (_, status) = worker.get(&format!("/connectors/{name}/status"));
        assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    }
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn a_malformed_document_among_1000_goes_to_the_dlq_with_the_reason() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let (topic, dlq) = (unique("es_malformed"), unique("es-malformed-dlq"));
    let total = 1000;
    // The first document maps SPACES as a number; record 500's SPACES is not one.
    let records: Vec<TestRecord> = (0..total)
        .map(|i| {
            kv(&format!("car-{i}"), json!({"NAME": format!("car park {i}"), "SPACES": if i == 500 { json!("lots") } else { json!(i) }}))
        })
        .collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("es-malformed");
    setup.connector(
        &name,
        merge_json(
            rail_config(&topic, &es),
            json!({
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": 1,
                "errors.deadletterqueue.context.headers.enable": true,
            }),
        ),
    );
    let mut worker = setup.start();
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(90));
    wait_count(&es, &topic.to_lowercase(), total as u64 - 1, &worker);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(&b"car-500"[..]));
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("SPACES") && message.contains("400"), "Elasticsearch's reason: {message}");
    assert_eq!(es.count(&topic.to_lowercase()).unwrap() as usize + dead.len(), total, "records in = indexed + dead-lettered");
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// Network Rail's feed carries arrays of movements; Explode makes one record per movement, all with the
/// coordinates of the one Kafka record. With ids from coordinates each part must still be a document of its own.
#[test]
fn exploded_records_are_a_document_each() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let topic = unique("train_mvt");
    let batches: Vec<TestRecord> = (0..100)
        .map(|i| kv(&format!("m{i}"), json!([{"TRAIN_ID": i, "N": 0}, {"TRAIN_ID": i, "N": 1}, {"TRAIN_ID": i, "N": 2}])))
        .collect();
    produce(&topic, &batches);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        &unique("es-explode"),
        merge_json(
            rail_config(&topic, &es),
            json!({
                "key.ignore": "true",
                "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
                "transforms": "explode", "transforms.explode.type": "io.connectrs.transforms.Explode$Value",
            }),
        ),
    );
    let worker = setup.start();
    wait_count(&es, &topic.to_lowercase(), 300, &worker);
    let third = es.get(&format!("/{}/_doc/{topic}+0+7+2", topic.to_lowercase())).expect("the third part of offset 7");
    assert_eq!(third["_source"], json!({"TRAIN_ID": 7, "N": 2}));
}

#[test]
fn the_cluster_frozen_for_20_s_loses_nothing_and_fails_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let topic = unique("es_outage");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("es-outage");
    // The rail config with its defaults (max.retries=5, retry.backoff.ms=100): an outage does not spend them.
    setup.connector(&name, rail_config(&topic, &es));
    let mut worker = setup.start();
    let index = topic.to_lowercase();
    produce(&topic, &(0..500).map(|i| kv(&format!("k{i}"), json!({"n": i}))).collect::<Vec<_>>());
    wait_count(&es, &index, 500, &worker);
    // Frozen rather than killed: noida-db keeps documents in memory, so a restart would lose the first 500.
    es.freeze();
    let down_at = std::time::Instant::now();
    produce(&topic, &(500..1500).map(|i| kv(&format!("k{i}"), json!({"n": i}))).collect::<Vec<_>>());
    let states = worker.task_states_until(&name, down_at, Duration::from_secs(20));
    es.thaw();
    wait_count(&es, &index, 1500, &worker);
    assert!(states.iter().all(|s| s == "RUNNING"), "RUNNING throughout the outage: {states:?}");
    assert!(worker.log_text().contains("retrying"), "the retries are logged");
    assert_eq!(worker.stop(), Some(0));
}

/// The same with the cluster unreachable (connections refused at once) rather than hanging: with Confluent's
/// defaults (5 retries from 100 ms) that is a task failure within seconds; here the partitions wait it out.
#[test]
fn the_cluster_unreachable_for_20_s_with_default_retries_fails_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let proxy = CuttableProxy::start(&format!("127.0.0.1:{}", es.port));
    let topic = unique("es_unreachable");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = unique("es-unreachable");
    let mut config = rail_config(&topic, &es);
    config["connection.url"] = json!(format!("http://127.0.0.1:{}", proxy.port));
    setup.connector(&name, config);
    let mut worker = setup.start();
    let index = topic.to_lowercase();
    produce(&topic, &(0..200).map(|i| kv(&format!("k{i}"), json!({"n": i}))).collect::<Vec<_>>());
    wait_count(&es, &index, 200, &worker);
    proxy.down();
    let down_at = std::time::Instant::now();
    produce(&topic, &(200..600).map(|i| kv(&format!("k{i}"), json!({"n": i}))).collect::<Vec<_>>());
    let states = worker.task_states_until(&name, down_at, Duration::from_secs(20));
    proxy.up();
    wait_count(&es, &index, 600, &worker);
    assert!(states.iter().all(|s| s == "RUNNING"), "RUNNING throughout the outage: {states:?}");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn sigkill_mid_stream_gives_an_exact_document_count() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let topic = unique("es_kill");
    let total = 20_000;
    produce(&topic, &(0..total).map(|i| kv(&format!("train-{i}"), json!({"n": i, "pad": "x".repeat(200)}))).collect::<Vec<_>>());
    // Small requests, so the stream is still going when the worker is killed.
    let mut setup = WorkerSetup::new(dir.path(), &[("consumer.max.poll.records", "500")]);
    let name = unique("es-kill");
    setup.connector(&name, merge_json(rail_config(&topic, &es), json!({"batch.size": "100", "max.in.flight.requests": "1"})));
    let mut worker = setup.start();
    let index = topic.to_lowercase();
    wait_for("some documents", Duration::from_secs(90), || (es.count(&index).unwrap_or(0) >= 2000).then_some(()));
    worker.kill_hard();
    let at_kill = es.count(&index).unwrap_or(0);
    assert!(at_kill < total as u64, "the kill was not mid-stream ({at_kill} documents already)");
    let worker = setup.start();
    wait_count(&es, &index, total as u64, &worker);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(es.count(&index), Some(total as u64), "ids and versions make the replay idempotent");
    eprintln!("elasticsearch SIGKILL: killed at {at_kill} documents; after the restart exactly {total}");
}

#[test]
fn car_park_records_land_with_a_geo_point_mapping_from_a_template() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let es = Elasticsearch::start(dir.path());
    let topic = unique("carparks");
    // The index template a user puts in place (README, "Elasticsearch sink").
    let template = json!({"index_patterns": ["carparks*"], "template": {"mappings": {"properties": {"LOCATION": {"type": "geo_point"}, "TS": {"type": "date"}}}}});
    es.call("PUT", "/_index_template/carparks", Some(&template)).expect("the template is accepted");
    let input = dir.path().join("carparks.csv");
    std::fs::write(
        &input,
        concat!(
            "2020-10-06,14:41,Westgate,116,89,Spaces,53.796291,-1.759143,\"https://maps.google.com/?daddr=53.796291,-1.759143\"\n",
            "2020-12-06,09:05,\"Kirkgate, Market\",250,0,Full,53.793802,-1.748971,\"https://maps.google.com/?daddr=53.793802,-1.748971\"\n",
        ),
    )
    .unwrap();
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        &unique("carparks-source"),
        json!({
            "connector.class": "FileStreamSource", "file": input, "topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "transforms": "parse,ts,location,key,keyName",
            "transforms.parse.type": "io.connectrs.transforms.ParseCsv$Value",
            "transforms.parse.columns": "date,time,NAME,CAPACITY:int32,EMPTY_PLACES:int32,STATUS,LATITUDE:float64,LONGITUDE:float64,DIRECTIONSURL",
            "transforms.ts.type": "io.connectrs.transforms.ParseTimestamp$Value",
            "transforms.ts.field": "TS", "transforms.ts.date.field": "date", "transforms.ts.time.field": "time",
            "transforms.ts.format": "yyyy-MM-dd HH:mm", "transforms.ts.timezone": "Europe/London", "transforms.ts.remove.sources": "true",
            "transforms.location.type": "io.connectrs.transforms.BuildStruct$Value",
            "transforms.location.field": "LOCATION", "transforms.location.fields": "lat=LATITUDE,lon=LONGITUDE",
            "transforms.location.remove.sources": "true",
            "transforms.key.type": "org.apache.kafka.connect.transforms.ValueToKey", "transforms.key.fields": "NAME",
            "transforms.keyName.type": "org.apache.kafka.connect.transforms.ExtractField$Key", "transforms.keyName.field": "NAME",
        }),
    );
    setup.connector(
        &unique("carparks-es"),
        json!({
            "connector.class": "ElasticsearchSink", "topics": topic, "connection.url": es.url(), "schema.ignore": "true",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        }),
    );
    let worker = setup.start();
    let index = topic.to_lowercase();
    wait_count(&es, &index, 2, &worker);
    let mapping = es.get(&format!("/{index}/_mapping")).unwrap();
    assert_eq!(mapping[&index]["mappings"]["properties"]["LOCATION"]["type"], "geo_point", "{mapping}");
    let near_leeds = json!({"query": {"geo_distance": {"distance": "2km", "LOCATION": {"lat": 53.7965, "lon": -1.7592}}}});
    let hits = es.call("POST", &format!("/{index}/_search"), Some(&near_leeds)).unwrap();
    let names: Vec<&str> = hits["hits"]["hits"].as_array().unwrap().iter().map(|h| h["_id"].as_str().unwrap()).collect();
    assert!(names.contains(&"Westgate"), "{hits}");
    let westgate = es.get(&format!("/{index}/_doc/Westgate")).unwrap();
    assert_eq!(westgate["_source"]["CAPACITY"], 116);
    assert_eq!(westgate["_source"]["LOCATION"], json!({"lat": 53.796291, "lon": -1.759143}));
}
