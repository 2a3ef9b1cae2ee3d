//! The S3 sink (Confluent S3SinkConnector configs) against SeaweedFS: the rail-data config with Avro files named
//! and laid out as Confluent's and read back by fastavro; JSON with gzip under a FieldPartitioner; hourly
//! rotation by record time; schema changes and unencodable records; a SIGKILL mid-stream giving the same object
//! set; the store unreachable for 20 s; a large file streamed out in parts while it is written.

use connect_e2e::s3::{self, S3_URL};
use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

/// The rail-data config as people run it, pointed at the test store (its region and credentials).
fn rail_config(topic: &str, bucket: &str) -> serde_json::Value {
    json!({
        "connector.class": "io.confluent.connect.s3.S3SinkConnector", "tasks.max": "1",
        "topics": topic, "s3.region": "us-east-1",
        "s3.bucket.name": bucket, "flush.size": "100",
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "format.class": "io.confluent.connect.s3.format.avro.AvroFormat",
        "schema.generator.class": "io.confluent.connect.storage.hive.schema.DefaultSchemaGenerator",
        "schema.compatibility": "NONE",
        "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
        "path.format": "'year'=YYYY/'month'=MM/'day'=dd", "timestamp.extractor": "Record",
        "partition.duration.ms": 1800000, "locale": "en", "timezone": "UTC",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "store.url": S3_URL, "aws.access.key.id": "testkey", "aws.secret.access.key": "testsecret",
    })
}

/// JsonConverter without schemas: the values are schemaless JSON.
const SCHEMALESS: [(&str, &str); 2] =
    [("value.converter", "org.apache.kafka.connect.json.JsonConverter"), ("value.converter.schemas.enable", "false")];

/// A config with some keys set (or replaced).
fn with(mut config: serde_json::Value, pairs: &[(&str, &str)]) -> serde_json::Value {
    for (k, v) in pairs {
        config[*k] = json!(v);
    }
    config
}

/// A worker running the rail config with `pairs` changed, its values read as `converters` say.
fn start_sink(dir: &std::path::Path, converters: &[(&str, &str)], topic: &str, bucket: &str, pairs: &[(&str, &str)]) -> Worker {
    let mut setup = WorkerSetup::new(dir, converters);
    setup.connector(&unique("s3-sink"), with(rail_config(topic, bucket), pairs));
    setup.start()
}

fn bucket() -> String {
    let b = unique("connect-s3").to_lowercase().replace('_', "-");
    require_s3();
    create_s3_bucket(&b);
    b
}

fn require_s3() {
    if std::net::TcpStream::connect("127.0.0.1:8333").is_err() {
        panic!("no S3 store on 127.0.0.1:8333: run `scripts/services up s3`");
    }
}

/// A movement as JsonConverter writes it with `schemas.enable=true`.
fn movement(i: usize) -> Vec<u8> {
    json!({
        "schema": {"type": "struct", "fields": [
            {"field": "TRAIN_ID", "type": "string", "optional": false},
            {"field": "LOC_STANOX", "type": "string", "optional": true},
            {"field": "TIMETABLE_VARIATION", "type": "int32", "optional": false},
        ], "optional": false, "name": "io.rail.Movement"},
        "payload": {"TRAIN_ID": format!("t{i}"), "LOC_STANOX": if i.is_multiple_of(7) { json!(null) } else { json!(format!("{:05}", i)) }, "TIMETABLE_VARIATION": i % 30},
    })
    .to_string()
    .into_bytes()
}

fn with_schemas() -> [(&'static str, &'static str); 2] {
    [("value.converter", "org.apache.kafka.connect.json.JsonConverter"), ("value.converter.schemas.enable", "true")]
}

fn wait_objects(bucket: &str, prefix: &str, n: usize, worker: &Worker) -> Vec<String> {
    wait_for_or_explain(
        &format!("{n} objects under {prefix}"),
        Duration::from_secs(120),
        || {
            let keys = s3::list(bucket, prefix);
            (keys.len() >= n).then_some(keys)
        },
        || format!("objects {:?}\n{}", s3::list(bucket, prefix), tail(&worker.log_text(), 30)),
    )
}

#[test]
fn rail_config_writes_avro_files_named_as_confluent_that_fastavro_reads_in_order() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("TRAIN_MOVEMENTS_ACTIVATIONS_SCHEDULE_00"), bucket());
    let total = 250;
    produce(&topic, &(0..total).map(|i| (Some(format!("t{i}").into_bytes()), Some(movement(i)), vec![])).collect::<Vec<_>>());
    let timestamps = read_topic_full(&topic, total, Duration::from_secs(30));
    let day = |ms: i64| {
        let secs = ms / 1000;
        let out = std::process::Command::new("date").args(["-u", "-d", &format!("@{secs}"), "+year=%Y/month=%m/day=%d"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let first_day = day(timestamps[0].timestamp.unwrap());
    assert_eq!(first_day, day(timestamps[199].timestamp.unwrap()), "the test does not run across midnight");
    let mut setup = WorkerSetup::new(dir.path(), &with_schemas());
    let name = unique("s3-rail");
    setup.connector(&name, rail_config(&topic, &bucket));
    let mut worker = setup.start();
    // flush.size=100: two files of 100; the last 50 stay open (no rotation is due).
    let keys = wait_objects(&bucket, "topics/", 2, &worker);
    // Kafka's committed offset stops after the stored files, not after the 50 records only in memory.
    let group = format!("connect-{name}");
    wait_for("the offset after the stored files committed", Duration::from_secs(30), || {
        (committed_offsets(&group, &topic).first().map(|(_, o)| *o) == Some(200)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let keys_now = s3::list(&bucket, "topics/");
    assert_eq!(keys_now, keys, "no third file");
    let expected: Vec<String> = [0, 100].iter().map(|o| format!("topics/{topic}/{first_day}/{topic}+0+{o:010}.avro")).collect();
    assert_eq!(keys, expected);
    for (file, key) in keys.iter().enumerate() {
        let (schema, records) = s3::avro(&bucket, key);
        // The record is named after the Connect schema (the file's schema gives the full name).
        assert_eq!(schema["name"], "io.rail.Movement", "{schema}");
        assert_eq!(schema["connect.name"], "io.rail.Movement");
        assert_eq!(records.len(), 100);
        for (i, record) in records.iter().enumerate() {
            let n = file * 100 + i;
            let loc = if n % 7 == 0 { json!(null) } else { json!(format!("{n:05}")) };
            assert_eq!(
                record,
                &json!({"TRAIN_ID": format!("t{n}"), "LOC_STANOX": loc, "TIMETABLE_VARIATION": n % 30}),
                "record {n} of {key}"
            );
        }
    }
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn json_gzip_files_under_a_field_partitioner() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("train_cancellations"), bucket());
    let tocs = ["NT", "XC", "GR"];
    let records: Vec<TestRecord> =
        (0..90).map(|i| (None, Some(json!({"TOC": tocs[i % 3], "N": i, "REASON": "M8"}).to_string().into_bytes()), vec![])).collect();
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &SCHEMALESS,
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("s3.compression.type", "gzip"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.FieldPartitioner"),
            ("partition.field.name", "TOC"),
            ("flush.size", "30"),
        ],
    );
    // flush.size counts the partition's records over all open files: after 30, all three TOC files close.
    let keys = wait_objects(&bucket, "topics/", 9, &worker);
    let mut lines = 0;
    for toc in tocs {
        for start in [0, 30, 60] {
            // The first record of each file for this TOC is the first of its kind at or after `start`.
            let first = (start..90).find(|i| tocs[i % 3] == toc).unwrap();
            let key = format!("topics/{topic}/TOC={toc}/{topic}+0+{first:010}.json.gz");
            assert!(keys.contains(&key), "{key} in {keys:?}");
            let values = s3::json_lines(&bucket, &key);
            assert_eq!(values.len(), 10);
            for (j, v) in values.iter().enumerate() {
                assert_eq!(v, &json!({"TOC": toc, "N": first + 3 * j, "REASON": "M8"}));
            }
            lines += values.len();
        }
    }
    assert_eq!(lines, 90);
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn hourly_files_rotate_by_record_time() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("train_hours"), bucket());
    // Three hours of movements, 20 a minute-ish, timed by a field (epoch ms).
    let start = 1_796_529_600_000i64; // 2026-12-06T04:00:00Z
    let records: Vec<TestRecord> = (0..180)
        .map(|i| (None, Some(json!({"ts": start + i as i64 * 60_000, "n": i}).to_string().into_bytes()), vec![]))
        .chain(std::iter::once((None, Some(json!({"ts": start + 3 * 3_600_000 + 5, "n": 180}).to_string().into_bytes()), vec![])))
        .collect();
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &SCHEMALESS,
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.HourlyPartitioner"),
            ("timestamp.extractor", "RecordField"),
            ("timestamp.field", "ts"),
            ("rotate.interval.ms", "3600000"),
            ("flush.size", "100000"),
        ],
    );
    // Each hour's file closes when the first record of the next hour arrives; the fourth hour's stays open.
    let keys = wait_objects(&bucket, "topics/", 3, &worker);
    let expected: Vec<String> = [(4, 0), (5, 60), (6, 120)]
        .iter()
        .map(|(h, o)| format!("topics/{topic}/year=2026/month=12/day=06/hour={h:02}/{topic}+0+{o:010}.json"))
        .collect();
    assert_eq!(keys, expected);
    for (h, key) in keys.iter().enumerate() {
        let values = s3::json_lines(&bucket, key);
        assert_eq!(values.len(), 60);
        assert_eq!(values[0]["n"], json!(h * 60));
    }
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn a_new_shape_starts_a_new_avro_file_and_an_unencodable_value_goes_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket, dlq) = (unique("camera_counts"), bucket(), unique("camera-counts-dlq"));
    let mut records: Vec<TestRecord> = (0..10)
        .map(|i| (None, Some(json!({"image": "Google", "probability": 90.0 + i as f64}).to_string().into_bytes()), vec![]))
        .collect();
    // Record 10 has another shape: a new file. Record 13's list mixes types: no Avro schema fits it.
    records.extend((10..23).map(|i| (None, Some(json!({"cat": i}).to_string().into_bytes()), vec![])));
    records[13] = (None, Some(json!({"cat": [1, "two"]}).to_string().into_bytes()), vec![]);
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &SCHEMALESS,
        &topic,
        &bucket,
        &[
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "12"),
            ("avro.codec", "bzip2"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq.as_str()),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    // 10 records of the first shape (a file closed by the change of shape), 12 of the second (closed by flush.size).
    let keys = wait_objects(&bucket, "topics/", 2, &worker);
    assert_eq!(
        keys,
        [format!("topics/{topic}/partition=0/{topic}+0+0000000000.avro"), format!("topics/{topic}/partition=0/{topic}+0+0000000010.avro")]
    );
    assert!(s3::get(&bucket, &keys[0]).windows(5).any(|w| w == b"bzip2"), "avro.codec bzip2 in the file's header");
    let (first_schema, first) = s3::avro(&bucket, &keys[0]);
    let (_, second) = s3::avro(&bucket, &keys[1]);
    assert_eq!(first_schema["name"], "io.confluent.connect.avro.ConnectDefault");
    assert_eq!(first.len(), 10);
    assert_eq!(first[3], json!({"image": "Google", "probability": 93.0}));
    assert_eq!(second.len(), 12);
    assert!(second.iter().all(|r| r["cat"].is_i64() && r["cat"] != json!(13)));
    wait_for_or_explain(
        "the dead letter",
        Duration::from_secs(60),
        || (topic_count(&dlq) >= 1).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(json!({"cat": [1, "two"]}).to_string().as_bytes()));
    assert_eq!(first.len() + second.len() + dead.len(), records.len(), "records in = written + dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

/// A movement of schema version 1 (`TRAIN_ID`, `VAR`), 2 (adds `DELAY`, default 0) or 3 (adds `PLATFORM`, required,
/// no default).
fn movement_version(i: usize, version: i32) -> TestRecord {
    let mut fields = vec![
        json!({"field": "TRAIN_ID", "type": "string", "optional": false}),
        json!({"field": "VAR", "type": "int32", "optional": false}),
    ];
    let mut payload = json!({"TRAIN_ID": format!("t{i}"), "VAR": i});
    if version >= 2 {
        fields.push(json!({"field": "DELAY", "type": "int32", "optional": false, "default": 0}));
        payload["DELAY"] = json!(i * 10);
    }
    if version >= 3 {
        fields.push(json!({"field": "PLATFORM", "type": "string", "optional": false}));
        payload["PLATFORM"] = json!("1a");
    }
    let schema = json!({"type": "struct", "fields": fields, "optional": false, "name": "io.rail.Movement", "version": version});
    (Some(format!("t{i}").into_bytes()), Some(json!({"schema": schema, "payload": payload}).to_string().into_bytes()), vec![])
}

#[test]
fn backward_compatibility_projects_older_records_into_the_newer_schemas_file() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket, dlq) = (unique("movements_evolving"), bucket(), unique("movements-evolving-dlq"));
    // 0-3: version 1 (a file by flush.size); 4-7: versions 2, 1, 2, 1 (one file of version 2, the version 1
    // records projected into it); 8: version 3; 9: version 2, which lacks version 3's required PLATFORM (the DLQ);
    // 10-12: version 3.
    let versions = [1, 1, 1, 1, 2, 1, 2, 1, 3, 2, 3, 3, 3];
    let records: Vec<TestRecord> = versions.iter().enumerate().map(|(i, v)| movement_version(i, *v)).collect();
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &with_schemas(),
        &topic,
        &bucket,
        &[
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "4"),
            ("schema.compatibility", "BACKWARD"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq.as_str()),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    let keys = wait_objects(&bucket, "topics/", 3, &worker);
    let name = |offset: usize| format!("topics/{topic}/partition=0/{topic}+0+{offset:010}.avro");
    assert_eq!(keys, [name(0), name(4), name(8)]);
    let (first_schema, first) = s3::avro(&bucket, &keys[0]);
    let (second_schema, second) = s3::avro(&bucket, &keys[1]);
    let (third_schema, third) = s3::avro(&bucket, &keys[2]);
    assert_eq!(first_schema["connect.version"], 1, "{first_schema}");
    assert_eq!(first, (0..4).map(|i| json!({"TRAIN_ID": format!("t{i}"), "VAR": i})).collect::<Vec<_>>());
    assert_eq!(second_schema["connect.version"], 2, "{second_schema}");
    assert_eq!(
        second,
        [
            json!({"TRAIN_ID": "t4", "VAR": 4, "DELAY": 40}),
            json!({"TRAIN_ID": "t5", "VAR": 5, "DELAY": 0}),
            json!({"TRAIN_ID": "t6", "VAR": 6, "DELAY": 60}),
            json!({"TRAIN_ID": "t7", "VAR": 7, "DELAY": 0}),
        ],
        "version 1 records projected to version 2 with its default"
    );
    assert_eq!(third_schema["connect.version"], 3, "{third_schema}");
    assert_eq!(third.iter().map(|r| r["VAR"].as_i64().unwrap()).collect::<Vec<_>>(), [8, 10, 11, 12]);
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(&b"t9"[..]));
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("Required field `PLATFORM` is missing from source schema"), "{message}");
    assert_eq!(first.len() + second.len() + third.len() + dead.len(), records.len(), "records in = written + dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn sigkill_mid_stream_gives_the_same_object_set_each_record_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("train_kill"), bucket());
    let (total, size) = (20_000, 100);
    produce(&topic, &(0..total).map(|i| (Some(format!("t{i}").into_bytes()), Some(movement(i)), vec![])).collect::<Vec<_>>());
    let mut props = with_schemas().to_vec();
    props.push(("consumer.max.poll.records", "500"));
    let mut setup = WorkerSetup::new(dir.path(), &props);
    let mut config = rail_config(&topic, &bucket);
    config["flush.size"] = json!(size.to_string());
    config["partitioner.class"] = json!("io.confluent.connect.storage.partitioner.DefaultPartitioner");
    config["format.class"] = json!("io.confluent.connect.s3.format.json.JsonFormat");
    setup.connector(&unique("s3-kill"), config);
    let mut worker = setup.start();
    // Killed as soon as the first files are there: the stream is still going.
    wait_objects(&bucket, "topics/", 1, &worker);
    worker.kill_hard();
    let at_kill = s3::list(&bucket, "topics/").len();
    assert!(at_kill < total / size, "the kill was not mid-stream ({at_kill} files already)");
    let worker = setup.start();
    let keys = wait_objects(&bucket, "topics/", total / size, &worker);
    let expected: Vec<String> = (0..total / size).map(|f| format!("topics/{topic}/partition=0/{topic}+0+{:010}.json", f * size)).collect();
    assert_eq!(keys, expected, "the same objects as an uninterrupted run");
    let mut seen = 0;
    for (f, key) in keys.iter().enumerate() {
        let values = s3::json_lines(&bucket, key);
        assert_eq!(values.len(), size);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(v["TRAIN_ID"], json!(format!("t{}", f * size + i)), "{key}");
        }
        seen += values.len();
    }
    assert_eq!(seen, total, "each record exactly once");
    eprintln!("s3 SIGKILL: killed at {at_kill} files; after the restart exactly {} files", keys.len());
}

#[test]
fn the_store_unreachable_for_20_s_loses_nothing_and_fails_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("train_outage"), bucket());
    let proxy = CuttableProxy::start("127.0.0.1:8333");
    let mut setup = WorkerSetup::new(dir.path(), &with_schemas());
    let name = unique("s3-outage");
    let mut config = rail_config(&topic, &bucket);
    config["store.url"] = json!(format!("http://127.0.0.1:{}", proxy.port));
    config["partitioner.class"] = json!("io.confluent.connect.storage.partitioner.DefaultPartitioner");
    config["format.class"] = json!("io.confluent.connect.s3.format.json.JsonFormat");
    setup.connector(&name, config);
    let mut worker = setup.start();
    produce(&topic, &(0..300).map(|i| (None, Some(movement(i)), vec![])).collect::<Vec<_>>());
    wait_objects(&bucket, "topics/", 3, &worker);
    proxy.down();
    let down_at = std::time::Instant::now();
    produce(&topic, &(300..1000).map(|i| (None, Some(movement(i)), vec![])).collect::<Vec<_>>());
    let states = worker.task_states_until(&name, down_at, Duration::from_secs(20));
    proxy.up();
    let keys = wait_objects(&bucket, "topics/", 10, &worker);
    assert!(states.iter().all(|s| s == "RUNNING"), "RUNNING throughout the outage: {states:?}");
    assert!(!worker.log_text().contains("task failed"), "no task failure: {}", tail(&worker.log_text(), 30));
    assert!(worker.log_text().contains("retrying the upload"), "the retries are logged");
    let lines: usize = keys.iter().map(|k| s3::json_lines(&bucket, k).len()).sum();
    assert_eq!(lines, 1000, "nothing lost, nothing twice");
    assert_eq!(worker.stop(), Some(0));
}

/// Explode makes several records of one Kafka record; files end between them (flush.size 20, three parts each):
/// every part lands once, and the committed offset stops before a Kafka record whose parts are not all stored.
#[test]
fn exploded_records_each_land_once_and_commits_wait_for_whole_kafka_records() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("train_mvt"), bucket());
    let records: Vec<TestRecord> = (0..30)
        .map(|i| (None, Some(json!([{"n": i, "k": 0}, {"n": i, "k": 1}, {"n": i, "k": 2}]).to_string().into_bytes()), vec![]))
        .collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &SCHEMALESS);
    let name = unique("s3-explode");
    let config = with(
        rail_config(&topic, &bucket),
        &[
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "20"),
            ("transforms", "explode"),
            ("transforms.explode.type", "io.connectrs.transforms.Explode$Value"),
        ],
    );
    setup.connector(&name, config);
    let mut worker = setup.start();
    // 90 parts: four files of 20; the last 10 parts stay open.
    let keys = wait_objects(&bucket, "topics/", 4, &worker);
    // Files start at the Kafka record of their first part: parts 0, 20, 40, 60 are records 0, 6, 13, 20.
    let expected: Vec<String> = [0, 6, 13, 20].iter().map(|o| format!("topics/{topic}/partition=0/{topic}+0+{o:010}.json")).collect();
    assert_eq!(keys, expected);
    let parts: Vec<serde_json::Value> = keys.iter().flat_map(|k| s3::json_lines(&bucket, k)).collect();
    let want: Vec<serde_json::Value> = (0..80).map(|p| json!({"n": p / 3, "k": p % 3})).collect();
    assert_eq!(parts, want, "each part once, in order");
    // The 80th part is part 2 of Kafka record 26 (parts 78, 79 = record 26's first two): record 26 is not whole.
    let group = format!("connect-{name}");
    wait_for("the commit", Duration::from_secs(30), || {
        (committed_offsets(&group, &topic).first().map(|(_, o)| *o) == Some(26)).then_some(())
    });
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn byte_array_files_keep_the_separator() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("camera_frames"), bucket());
    produce(&topic, &(0..6).map(|i| (None, Some(format!("frame-{i}").into_bytes()), vec![])).collect::<Vec<_>>());
    let worker = start_sink(
        dir.path(),
        &[("value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter")],
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.bytearray.ByteArrayFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "3"),
        ],
    );
    let keys = wait_objects(&bucket, "topics/", 2, &worker);
    assert_eq!(
        keys,
        [format!("topics/{topic}/partition=0/{topic}+0+0000000000.bin"), format!("topics/{topic}/partition=0/{topic}+0+0000000003.bin")]
    );
    assert_eq!(s3::get(&bucket, &keys[1]), b"frame-3\nframe-4\nframe-5\n");
}

#[test]
fn keys_and_headers_files_sit_beside_each_file_and_a_record_without_a_key_goes_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket, dlq) = (unique("movements_kh"), bucket(), unique("movements-kh-dlq"));
    let records: Vec<TestRecord> = (0..25)
        .map(|i| {
            let key = (i != 7).then(|| format!("train-{i}").into_bytes());
            let headers = vec![("source".to_string(), b"feed".to_vec()), ("seq".to_string(), i.to_string().into_bytes())];
            (key, Some(json!({"n": i}).to_string().into_bytes()), headers)
        })
        .collect();
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &SCHEMALESS,
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "8"),
            ("store.kafka.keys", "true"),
            ("keys.format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("store.kafka.headers", "true"),
            // The headers files are Avro: with snappy blocks, which fastavro reads with cramjam.
            ("avro.codec", "snappy"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq.as_str()),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
        ],
    );
    // 24 records with keys in files of 8: three data files, each with its keys and headers files.
    let keys = wait_objects(&bucket, "topics/", 9, &worker);
    let dir_of = format!("topics/{topic}/partition=0/{topic}+0+");
    let mut expected: Vec<String> = ["0000000000", "0000000009", "0000000017"]
        .iter()
        .flat_map(|start| [format!("{dir_of}{start}.headers.avro"), format!("{dir_of}{start}.json"), format!("{dir_of}{start}.keys.json")])
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "each file named after its first record's offset, its keys and headers beside it");

    let mut written = 0;
    for start in ["0000000000", "0000000009", "0000000017"] {
        let values = s3::json_lines(&bucket, &format!("{dir_of}{start}.json"));
        let record_keys = s3::json_lines(&bucket, &format!("{dir_of}{start}.keys.json"));
        let headers_key = format!("{dir_of}{start}.headers.avro");
        assert!(s3::get(&bucket, &headers_key).windows(6).any(|w| w == b"snappy"), "avro.codec snappy in the file's header");
        let (schema, headers) = s3::avro(&bucket, &headers_key);
        assert_eq!(schema["type"], "array", "{schema}");
        assert_eq!((values.len(), record_keys.len(), headers.len()), (8, 8, 8), "aligned: one key and one header list per record");
        for ((value, key), header) in values.iter().zip(&record_keys).zip(&headers) {
            let n = value["n"].as_i64().unwrap();
            assert_eq!(key, &json!(format!("train-{n}")), "the record's own key");
            assert_eq!(header, &json!([{"key": "source", "value": "feed"}, {"key": "seq", "value": n.to_string()}]));
        }
        written += values.len();
    }
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(json!({"n": 7}).to_string().as_bytes()), "the record without a key");
    assert_eq!(written + dead.len(), records.len(), "records in = written + dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

/// A schedule entry as JsonConverter writes it with schemas: a timestamp, a nested struct, a list, a map. The
/// list's items are required in the first ten (a two-level list in Parquet) and optional after (three-level).
fn schedule(i: usize) -> Vec<u8> {
    let optional_calls = i >= 10;
    json!({
        "schema": {"type": "struct", "name": "io.rail.Schedule", "optional": false, "fields": [
            {"field": "TRAIN_ID", "type": "string", "optional": false},
            {"field": "DEPARTS", "type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "optional": false},
            {"field": "ORIGIN", "type": "struct", "optional": true, "fields": [
                {"field": "STANOX", "type": "string", "optional": false},
                {"field": "LAT", "type": "double", "optional": true},
            ]},
            {"field": "CALLS", "type": "array", "items": {"type": "string", "optional": optional_calls}, "optional": false},
            {"field": "CARS", "type": "map", "keys": {"type": "string"}, "values": {"type": "int32"}, "optional": true},
        ]},
        "payload": {
            "TRAIN_ID": format!("t{i}"),
            "DEPARTS": 1_796_000_000_000_i64 + i as i64 * 60_000,
            "ORIGIN": if i % 4 == 3 { json!(null) } else { json!({"STANOX": format!("{i:05}"), "LAT": if i.is_multiple_of(2) { json!(51.5) } else { json!(null) }}) },
            "CALLS": calls(i),
            "CARS": if i % 5 == 4 { json!(null) } else { json!({"first": 1, "standard": i}) },
        },
    })
    .to_string()
    .into_bytes()
}

/// The list in schedule `i`.
fn calls(i: usize) -> serde_json::Value {
    match (i % 3, i >= 10) {
        (0, _) => json!([]),
        (_, false) => json!(["a", format!("s{i}")]),
        (_, true) => json!(["a", null, format!("s{i}")]),
    }
}

#[test]
fn parquet_files_that_pyarrow_reads_and_a_value_that_is_no_struct_goes_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket, dlq) = (unique("TRAIN_SCHEDULE_PARQUET"), bucket(), unique("schedule-parquet-dlq"));
    let mut records: Vec<TestRecord> = (0..20).map(|i| (Some(format!("t{i}").into_bytes()), Some(schedule(i)), vec![])).collect();
    // Record 20 is a plain string: Parquet files hold structs.
    records.push((None, Some(json!({"schema": {"type": "string"}, "payload": "not a schedule"}).to_string().into_bytes()), vec![]));
    produce(&topic, &records);
    let mut worker = start_sink(
        dir.path(),
        &with_schemas(),
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.parquet.ParquetFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "10"),
            ("store.kafka.keys", "true"),
            ("keys.format.class", "io.confluent.connect.s3.format.parquet.ParquetFormat"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq.as_str()),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
        ],
    );
    let objects = wait_objects(&bucket, "topics/", 4, &worker);
    let dir_of = format!("topics/{topic}/partition=0/{topic}+0+");
    let named = |start: &str, view: &str| format!("{dir_of}{start}{view}.snappy.parquet");
    assert_eq!(
        objects,
        [named("0000000000", ".keys"), named("0000000000", ""), named("0000000010", ".keys"), named("0000000010", "")],
        "named as Confluent's, each keys file beside its data file"
    );
    let keys = [named("0000000000", ""), named("0000000010", "")];

    let mut written = 0;
    for (file, key) in keys.iter().enumerate() {
        let (schema, footer, rows) = s3::parquet(&bucket, key);
        let squashed = schema.split_whitespace().collect::<Vec<_>>().join(" ");
        let list = if file == 0 {
            "required group CALLS (List) { repeated binary array (String); }"
        } else {
            // A list with optional items: the three-level form, as Confluent switches to.
            "required group CALLS (List) { repeated group list { optional binary element (String); } }"
        };
        assert!(squashed.contains(list), "{list}\nnot in\n{schema}");
        for expected in [
            "required binary TRAIN_ID (String);",
            "required int64 DEPARTS (Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false));",
            "optional group ORIGIN { required binary STANOX (String); optional double LAT; }",
            "optional group CARS (Map) { repeated group key_value { required binary key (String); required int32 value; } }",
        ] {
            assert!(squashed.contains(expected), "{expected}\nnot in\n{schema}");
        }
        assert!(footer["parquet.avro.schema"].as_str().unwrap().contains("io.rail.Schedule"), "{footer}");
        assert_eq!(rows.len(), 10);
        // The keys file: Confluent's `RecordKey {key}` struct, one row per record, in the same order.
        let (key_schema, _, key_rows) = s3::parquet(&bucket, &key.replace(".snappy.parquet", ".keys.snappy.parquet"));
        assert!(key_schema.contains("optional binary key (String);"), "{key_schema}");
        let expected_keys: Vec<serde_json::Value> = (0..10).map(|j| json!({"key": format!("t{}", file * 10 + j)})).collect();
        assert_eq!(key_rows, expected_keys);
        for (j, row) in rows.iter().enumerate() {
            let i = file * 10 + j;
            assert_eq!(row["TRAIN_ID"], json!(format!("t{i}")));
            let departs = chrono_like(1_796_000_000_000 + i as i64 * 60_000);
            assert_eq!(row["DEPARTS"], json!(departs), "row {i}");
            let origin = if i % 4 == 3 {
                json!(null)
            } else {
                json!({"STANOX": format!("{i:05}"), "LAT": if i % 2 == 0 { json!(51.5) } else { json!(null) }})
            };
            assert_eq!(row["ORIGIN"], origin, "row {i}");
            assert_eq!(row["CALLS"], calls(i), "row {i}");
            assert_eq!(row["CARS"], if i % 5 == 4 { json!(null) } else { json!([["first", 1], ["standard", i]]) }, "row {i}");
        }
        written += rows.len();
    }
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!(dead.len(), 1);
    assert!(String::from_utf8_lossy(dead[0].value.as_deref().unwrap()).contains("not a schedule"));
    assert_eq!(written + dead.len(), records.len(), "records in = written + dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

/// A time in ms as pyarrow prints a UTC timestamp (Python's `str(datetime)`).
fn chrono_like(ms: i64) -> String {
    let out =
        std::process::Command::new("date").args(["-u", "-d", &format!("@{}", ms / 1000), "+%Y-%m-%d %H:%M:%S+00:00"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// SSE-C (`s3.sse.customer.key`): every object, single PUT and multipart alike, is stored encrypted with the
/// customer's key. SeaweedFS gives it back only to a GET that carries the same key: without one, or with another,
/// the GET is refused.
#[test]
fn customer_key_encryption_covers_single_and_multipart_uploads() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("archive_sse_c"), bucket());
    // 12 records of 512 KiB: a first file of 6 MiB, a multipart upload in 5 MiB parts (the first part sent while
    // the file is open, when the records come in more than one put); then 12 of 2 bytes: one PUT. Both closed by
    // flush.size, so the files do not depend on timing (a scheduled rotation could cut the first while a part
    // is on its way).
    let record = |i: usize| if i < 12 { format!("{i:02}").repeat(256 * 1024).into_bytes() } else { format!("{i:02}").into_bytes() };
    produce(&topic, &(0..24).map(|i| (None, Some(record(i)), vec![])).collect::<Vec<_>>());
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let mut worker = start_sink(
        dir.path(),
        &[("value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter")],
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.bytearray.ByteArrayFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", "12"),
            ("s3.part.size", "5242880"),
            ("s3.sse.customer.key", key),
        ],
    );
    let keys = wait_objects(&bucket, "topics/", 2, &worker);
    assert_eq!(
        keys,
        [format!("topics/{topic}/partition=0/{topic}+0+0000000000.bin"), format!("topics/{topic}/partition=0/{topic}+0+0000000012.bin")],
        "{}",
        tail(&worker.log_text(), 30)
    );
    for (object, records) in keys.iter().zip([0..12, 12..24]) {
        let expected: Vec<u8> = records.flat_map(|i| [record(i), b"\n".to_vec()].concat()).collect();
        let (status, body) = s3::get_sse_c(&bucket, object, Some((key, "tP/LI3N87DFaSk0aoqYgzg==")));
        assert_eq!(status, 200, "{object} with its key: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        assert!(body == expected, "{object}: {} bytes back, {} written", body.len(), expected.len());
        let (status, body) = s3::get_sse_c(&bucket, object, None);
        assert_eq!(status, 400, "{object} without the key: {}", String::from_utf8_lossy(&body));
        // 32 bytes of 0xff, and their MD5.
        let (status, body) =
            s3::get_sse_c(&bucket, object, Some(("//////////////////////////////////////////8=", "DX3EJmSXEA5IMfWzG2snTw==")));
        assert!((400..500).contains(&status), "{object} with another key: {status} {}", String::from_utf8_lossy(&body));
    }
    let log = worker.log_text();
    assert!(!log.contains(key), "the key is never logged");
    assert_eq!(worker.stop(), Some(0));
}

/// A file far larger than a part goes to the store while it is written: its parts are stored before it closes,
/// and the worker never holds the whole file, so its memory stays well under the file's size (before
/// 2026-12-07 files were built whole in memory: peak RSS above the file's size).
#[test]
fn a_large_file_streams_its_parts_while_written_and_memory_stays_flat() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("archive_stream"), bucket());
    // 6 KiB records, different in every line: 24,000 make a 141 MiB file closed by flush.size.
    let (n, first) = (24_000, 20_000);
    let record = |i: usize| format!("{i:07} ").repeat(768).into_bytes();
    produce(&topic, &(0..first).map(|i| (None, Some(record(i)), vec![])).collect::<Vec<_>>());
    // The consumer's prefetch and batches bounded too (librdkafka may otherwise hold a 50 MiB fetch of this
    // backlog, and a put takes 2,000 records of 4 KiB by default), so the peak is mostly the files'.
    let mut worker = start_sink(
        dir.path(),
        &[
            ("value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"),
            ("consumer.fetch.max.bytes", "4194304"),
            ("consumer.queued.max.messages.kbytes", "4096"),
            ("consumer.max.poll.records", "500"),
        ],
        &topic,
        &bucket,
        &[
            ("format.class", "io.confluent.connect.s3.format.bytearray.ByteArrayFormat"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.DefaultPartitioner"),
            ("flush.size", &n.to_string()),
            ("s3.part.size", "5242880"),
        ],
    );
    let key = format!("topics/{topic}/partition=0/{topic}+0+0000000000.bin");
    let mut peak_kib = 0;
    let mut sample = |worker: &Worker| {
        if let Some((hwm, _)) = memory_kib(worker.pid()) {
            peak_kib = peak_kib.max(hwm);
        }
    };
    // The first 20,000 records (117 MiB) are written: at least 22 whole parts of 5 MiB are stored, no object yet.
    let stored = wait_for_or_explain(
        "22 parts of the open file stored",
        Duration::from_secs(180),
        || {
            sample(&worker);
            let upload = s3::multipart_uploads(&bucket).into_iter().find(|(k, _)| *k == key)?;
            let parts = s3::parts(&bucket, &key, &upload.1);
            (parts.len() >= 22).then_some(parts)
        },
        || {
            format!(
                "uploads {:?}\nobjects {:?}\n{}",
                s3::multipart_uploads(&bucket),
                s3::list(&bucket, "topics/"),
                tail(&worker.log_text(), 30)
            )
        },
    );
    assert!(stored.iter().all(|size| *size == 5_242_880), "every part sent while the file is open is whole: {stored:?}");
    assert!(s3::list(&bucket, "topics/").is_empty(), "the file is not closed yet, so there is no object");
    produce(&topic, &(first..n).map(|i| (None, Some(record(i)), vec![])).collect::<Vec<_>>());
    let keys = wait_for_or_explain(
        "the file stored",
        Duration::from_secs(120),
        || {
            sample(&worker);
            let keys = s3::list(&bucket, "topics/");
            (!keys.is_empty()).then_some(keys)
        },
        || format!("uploads {:?}\n{}", s3::multipart_uploads(&bucket), tail(&worker.log_text(), 30)),
    );
    assert_eq!(keys, std::slice::from_ref(&key));
    let body = s3::get(&bucket, &key);
    let line = record(0).len() + 1;
    assert_eq!(body.len(), n * line, "every record once, each with its separator");
    for (i, chunk) in body.chunks(line).enumerate() {
        assert!(chunk[..line - 1] == record(i)[..] && chunk[line - 1] == b'\n', "record {i} in its place");
    }
    wait_for_or_explain(
        "no upload left behind",
        Duration::from_secs(30),
        || s3::multipart_uploads(&bucket).is_empty().then_some(()),
        || format!("uploads {:?}", s3::multipart_uploads(&bucket)),
    );
    sample(&worker);
    let file_mib = body.len() as u64 >> 20;
    eprintln!("peak RSS {} MiB for a {file_mib} MiB file", peak_kib / 1024);
    // An idle worker is about 26 MiB: holding the whole file would take it above the file's size plus 20 MiB.
    let bound_kib = (file_mib + 20) * 1024;
    assert!(peak_kib < bound_kib, "peak RSS {} MiB while writing a {file_mib} MiB file: the whole file is held", peak_kib / 1024);
    assert_eq!(worker.stop(), Some(0));
}
