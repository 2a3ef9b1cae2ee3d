//! The Neo4j sink (both Neo4j connector classes) against ArcadeDB's Bolt server, a server of each test's own:
//! the rail-data cancellations config unchanged (exact node and relationship counts, and a replay that changes
//! nothing), unreadable records and a failing Cypher to the DLQ with the rest committed, exactly-once with a
//! CREATE query across a SIGKILL, the current class's bindings, and the server stopped for 20 s.
//! The graph is read back over ArcadeDB's HTTP API.

use connect_e2e::arcadedb::{ArcadeDb, PASSWORD};
use connect_e2e::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const CANCELLATIONS: &str = "MERGE (train:train{id: event.TRAIN_ID}) MERGE (toc:toc{toc: event.TOC}) MERGE (canx_reason:canx_reason{reason: event.CANX_REASON}) MERGE (canx_loc:canx_loc{location: coalesce(event.CANCELLATION_LOCATION,'<unknown>')}) MERGE (train)-[:OPERATED_BY]->(toc) MERGE (canx_loc)<-[:CANCELLED_AT{reason:event.CANX_REASON, time:event.CANX_TIMESTAMP}]-(train)-[:CANCELLED_BECAUSE]->(canx_reason)";

/// The rail-data config as people run it (neo4j.topic.cypher.<topic> on the legacy class), pointed at the
/// test's server.
fn rail_config(topic: &str, dlq: &str, db: &ArcadeDb) -> serde_json::Value {
    json!({
        "connector.class": "streams.kafka.connect.sink.Neo4jSinkConnector",
        "topics": topic,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dlq,
        "errors.deadletterqueue.topic.replication.factor": 1,
        "errors.deadletterqueue.context.headers.enable": true,
        "neo4j.server.uri": db.uri(),
        "neo4j.authentication.basic.username": "root",
        "neo4j.authentication.basic.password": PASSWORD,
        format!("neo4j.topic.cypher.{topic}"): CANCELLATIONS,
    })
}

fn json_converter() -> [(&'static str, &'static str); 2] {
    [("value.converter", "org.apache.kafka.connect.json.JsonConverter"), ("value.converter.schemas.enable", "false")]
}

fn wait_nodes(db: &ArcadeDb, label: &str, n: i64, worker: &Worker) {
    wait_for_or_explain(
        &format!("{n} {label} nodes"),
        Duration::from_secs(120),
        || (db.cypher(&format!("MATCH (n:`{label}`) RETURN count(n) AS c")).ok()?.first()?["c"].as_i64() == Some(n)).then_some(()),
        || format!("{label}: {:?}\n{}", db.cypher(&format!("MATCH (n:`{label}`) RETURN count(n) AS c")), tail(&worker.log_text(), 30)),
    );
}

fn task_state(worker: &Worker, name: &str) -> serde_json::Value {
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    status["tasks"][0]["state"].clone()
}

#[test]
fn rail_cancellations_make_the_expected_graph_and_a_replay_changes_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let (topic, dlq) = (unique("TRAIN_CANCELLATIONS_02"), unique("sink-neo4j-train-00_dlq"));
    let (tocs, reasons, places) =
        (["NT", "XC", "GR", "SR", "AW"], ["M8", "TG", "YI", "FO"], ["LEEDS", "YORK", "HULL", "BATH", "DERBY", "ELY"]);
    let total = 400;
    let mut expected = [HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new()];
    let records: Vec<TestRecord> = (0..total)
        .map(|i| {
            let (train, toc, reason) = (format!("T{}", i % 250), tocs[i % 5], reasons[i % 4]);
            // Some cancellations have no location: the template's coalesce makes them '<unknown>'.
            let place = (i % 10 != 0).then(|| places[i % 6]);
            let time = 1_700_000_000_000i64 + (i % 300) as i64;
            let mut event = json!({"TRAIN_ID": train, "TOC": toc, "CANX_REASON": reason, "CANX_TIMESTAMP": time});
            if let Some(p) = place {
                event["CANCELLATION_LOCATION"] = json!(p);
            }
            let place = place.unwrap_or("<unknown>").to_string();
            expected[0].insert(train.clone());
            expected[1].insert(toc.to_string());
            expected[2].insert(reason.to_string());
            expected[3].insert(place.clone());
            expected[4].insert(format!("{train}>{toc}"));
            expected[5].insert(format!("{place}<{reason},{time}<{train}"));
            expected[6].insert(format!("{train}>{reason}"));
            (Some(train.into_bytes()), Some(event.to_string().into_bytes()), vec![])
        })
        .collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &json_converter());
    let name = unique("neo4j-rail");
    setup.connector(&name, rail_config(&topic, &dlq, &db));
    let mut worker = setup.start();
    let counts = |db: &ArcadeDb| {
        [
            db.nodes("train"),
            db.nodes("toc"),
            db.nodes("canx_reason"),
            db.nodes("canx_loc"),
            db.relationships("OPERATED_BY"),
            db.relationships("CANCELLED_AT"),
            db.relationships("CANCELLED_BECAUSE"),
        ]
    };
    let want: Vec<i64> = expected.iter().map(|s| s.len() as i64).collect();
    wait_for_or_explain(
        "the cancellations graph",
        Duration::from_secs(120),
        || (counts(&db).to_vec() == want).then_some(()),
        || format!("counts {:?}, want {want:?}\n{}", counts(&db), tail(&worker.log_text(), 30)),
    );
    let group = format!("connect-{name}");
    wait_for("the offsets committed", Duration::from_secs(60), || {
        (committed_offsets(&group, &topic).iter().map(|(_, o)| *o).sum::<i64>() == total as i64).then_some(())
    });
    assert_eq!(task_state(&worker, &name), "RUNNING");
    assert_eq!(worker.stop(), Some(0));

    // The same topic again from the start, by a connector of another name (another consumer group).
    let mut replay = WorkerSetup::new(dir.path(), &json_converter());
    let again = unique("neo4j-rail-replay");
    replay.connector(&again, rail_config(&topic, &dlq, &db));
    let mut worker = replay.start();
    let group = format!("connect-{again}");
    wait_for("the replay to finish", Duration::from_secs(120), || {
        (committed_offsets(&group, &topic).iter().map(|(_, o)| *o).sum::<i64>() == total as i64).then_some(())
    });
    assert_eq!(counts(&db).to_vec(), want, "MERGE: the replay changed nothing");
    assert_eq!(topic_count(&dlq).max(0), 0, "nothing dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn unreadable_records_and_a_failing_cypher_go_to_the_dlq_and_the_rest_commit() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let (topic, dlq) = (unique("readings"), unique("readings-dlq"));
    let total = 300;
    // Readings 37, 137 and 237 divide by zero in the template; two records are not JSON at all.
    let mut records: Vec<TestRecord> = (0..total)
        .map(|i| {
            (
                Some(format!("r{i}").into_bytes()),
                Some(json!({"id": i, "d": if i % 100 == 37 { 0 } else { 1 }}).to_string().into_bytes()),
                vec![],
            )
        })
        .collect();
    records.insert(50, (Some(b"bad-1".to_vec()), Some(b"{not json".to_vec()), vec![]));
    records.insert(200, (Some(b"bad-2".to_vec()), Some(b"\x00\x01".to_vec()), vec![]));
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &json_converter());
    let name = unique("neo4j-dlq");
    let mut config = rail_config(&topic, &dlq, &db);
    config[format!("neo4j.topic.cypher.{topic}")] = json!("CREATE (:Reading {id: event.id, q: 10 / event.d})");
    setup.connector(&name, config);
    let mut worker = setup.start();
    // read_topic_full finds nothing in a topic not yet created: wait for the DLQ's records first.
    wait_for_or_explain(
        "five dead letters",
        Duration::from_secs(120),
        || (topic_count(&dlq) >= 5).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let dead = read_topic_full(&dlq, 5, Duration::from_secs(60));
    wait_nodes(&db, "Reading", total as i64 - 3, &worker);
    assert_eq!(dead.len(), 5, "two unreadable records and three the template fails on");
    let mut failed: Vec<String> = dead.iter().map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()).collect();
    failed.sort();
    assert_eq!(failed, ["bad-1", "bad-2", "r137", "r237", "r37"]);
    let cypher_failure = dead.iter().find(|r| r.key.as_deref() == Some(&b"r37"[..])).unwrap();
    let message = cypher_failure.header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("ArithmeticError") || message.contains("by zero"), "the server's message: {message}");
    assert_eq!(db.nodes("Reading") + dead.len() as i64, records.len() as i64, "records in = nodes + dead-lettered");
    assert_eq!(task_state(&worker, &name), "RUNNING");
    assert_eq!(worker.stop(), Some(0));
}

/// Exactly once with a CREATE query: Kafka offsets are committed rarely (offset.flush.interval.ms), so after the
/// SIGKILL the worker reads again much of what the graph has; only the offset nodes keep it from creating twice.
#[test]
fn exactly_once_with_create_gives_exactly_n_nodes_across_a_sigkill() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let topic = unique("train_movements");
    let total = 6000;
    produce(&topic, &(0..total).map(|i| (None, Some(json!({"n": i}).to_string().into_bytes()), vec![])).collect::<Vec<_>>());
    let mut props = json_converter().to_vec();
    props.extend([("offset.flush.interval.ms", "600000"), ("consumer.max.poll.records", "200")]);
    let mut setup = WorkerSetup::new(dir.path(), &props);
    let name = unique("neo4j-eos");
    setup.connector(
        &name,
        json!({
            "connector.class": "org.neo4j.connectors.kafka.sink.Neo4jConnector",
            "topics": topic,
            "neo4j.uri": db.uri(),
            "neo4j.authentication.basic.username": "root",
            "neo4j.authentication.basic.password": PASSWORD,
            "neo4j.batch-size": "50",
            "neo4j.eos-offset-label": "__KafkaOffset",
            format!("neo4j.cypher.topic.{topic}"): "CREATE (:Movement {n: __value.n})",
        }),
    );
    let mut worker = setup.start();
    wait_for("some movements", Duration::from_secs(120), || (db.nodes("Movement") >= 1000).then_some(()));
    worker.kill_hard();
    let at_kill = db.nodes("Movement");
    assert!(at_kill < total as i64, "the kill was not mid-stream ({at_kill} nodes already)");
    assert!(
        committed_offsets(&format!("connect-{name}"), &topic).iter().all(|(_, o)| *o < at_kill),
        "Kafka's committed offset lags the graph"
    );
    let worker = setup.start();
    wait_nodes(&db, "Movement", total as i64, &worker);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(db.nodes("Movement"), total as i64, "each movement exactly once");
    assert_eq!(db.count("MATCH (m:Movement) RETURN count(DISTINCT m.n) AS c"), total as i64);
    let offset = db.cypher(&format!("MATCH (k:__KafkaOffset {{topic: '{topic}', partition: 0}}) RETURN k.offset AS o")).unwrap();
    assert_eq!(offset[0]["o"], json!(total - 1), "the offset node holds the last offset written");
    assert!(worker.log_text().contains("rewinding to the offset node"), "the restarted task rewound to the graph's offset");
    eprintln!("neo4j SIGKILL: killed at {at_kill} nodes; after the restart exactly {total}");
}

#[test]
fn the_current_class_binds_key_headers_and_timestamp() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let topic = unique("carparks");
    let park = |key: &str, spaces: i64| {
        (
            Some(key.as_bytes().to_vec()),
            Some(json!({"spaces": spaces}).to_string().into_bytes()),
            vec![("source".to_string(), b"bradford-feed".to_vec())],
        )
    };
    produce(&topic, &[park("Westgate", 10), park("Kirkgate", 3), park("Westgate", 7)]);
    // StringConverter values: JSON text is a map in the query, as with the Neo4j connector.
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        &unique("neo4j-bindings"),
        json!({
            "connector.class": "Neo4jConnector",
            "topics": topic,
            "neo4j.uri": db.uri(),
            "neo4j.authentication.basic.username": "root",
            "neo4j.authentication.basic.password": PASSWORD,
            "neo4j.cypher.bind-key-as": "park",
            format!("neo4j.cypher.topic.{topic}"): "MERGE (p:CarPark {name: park}) SET p.spaces = event.spaces, p.free = __value.spaces, p.source = __header.source, p.seen = __timestamp",
        }),
    );
    let worker = setup.start();
    wait_nodes(&db, "CarPark", 2, &worker);
    wait_for("the latest Westgate value", Duration::from_secs(60), || {
        let rows = db.cypher("MATCH (p:CarPark {name: 'Westgate'}) RETURN p.spaces AS s").ok()?;
        (rows.first()?["s"] == json!(7)).then_some(())
    });
    let rows =
        db.cypher("MATCH (p:CarPark {name: 'Kirkgate'}) RETURN p.spaces AS s, p.free AS f, p.source AS src, p.seen AS seen").unwrap();
    assert_eq!((&rows[0]["s"], &rows[0]["f"], &rows[0]["src"]), (&json!(3), &json!(3), &json!("bradford-feed")), "{rows:?}");
    assert!(!rows[0]["seen"].is_null(), "the record's timestamp is bound: {rows:?}");
}

#[test]
fn the_server_stopped_for_20_s_loses_nothing_and_fails_nothing() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let mut db = ArcadeDb::start(dir.path());
    let (topic, dlq) = (unique("TRAIN_CANCELLATIONS_outage"), unique("neo4j-outage-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &json_converter());
    let name = unique("neo4j-outage");
    let mut config = rail_config(&topic, &dlq, &db);
    config[format!("neo4j.topic.cypher.{topic}")] = json!("MERGE (t:Cancellation {id: event.id})");
    // The longest wait between retries (default 30 s), shortened so the test does not idle after the restart.
    config["neo4j.retry.backoff.msecs"] = json!(4000);
    setup.connector(&name, config);
    let mut worker = setup.start();
    let batch = |range: std::ops::Range<i64>| {
        range.map(|i| (None, Some(json!({"id": i}).to_string().into_bytes()), vec![])).collect::<Vec<TestRecord>>()
    };
    produce(&topic, &batch(0..500));
    wait_nodes(&db, "Cancellation", 500, &worker);
    db.stop();
    let down_at = std::time::Instant::now();
    produce(&topic, &batch(500..1500));
    let states = worker.task_states_until(&name, down_at, Duration::from_secs(20));
    db.restart();
    wait_nodes(&db, "Cancellation", 1500, &worker);
    assert!(states.iter().all(|s| s == "RUNNING"), "RUNNING throughout the outage: {states:?}");
    // A failure and an automatic restart could fall between two looks at the status: the log would say.
    assert!(!worker.log_text().contains("task failed"), "no task failure: {}", tail(&worker.log_text(), 30));
    assert!(worker.log_text().contains("retrying"), "the retries are logged");
    assert_eq!(topic_count(&dlq).max(0), 0, "nothing dead-lettered");
    assert_eq!(worker.stop(), Some(0));
}

/// Exactly-once with Explode (several records of one Kafka record) and a batch the server refuses in part: the
/// Kafka record at fault goes to the DLQ with all its parts, every other part is written once, and a restart
/// that reads the topic again (nothing committed to Kafka) writes nothing twice and reports nothing twice.
#[test]
fn exactly_once_with_exploded_records_and_a_refused_part_writes_and_reports_each_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let db = ArcadeDb::start(dir.path());
    let (topic, dlq) = (unique("train_batches"), unique("train-batches-dlq"));
    let total = 200;
    // Kafka record 77's second part divides by zero in the template.
    let records: Vec<TestRecord> = (0..total)
        .map(|i| {
            let parts: Vec<serde_json::Value> =
                (0..3).map(|k| json!({"n": i, "k": k, "d": if i == 77 && k == 1 { 0 } else { 1 }})).collect();
            (Some(format!("b{i}").into_bytes()), Some(serde_json::Value::Array(parts).to_string().into_bytes()), vec![])
        })
        .collect();
    produce(&topic, &records);
    let mut props = json_converter().to_vec();
    props.push(("offset.flush.interval.ms", "600000"));
    let mut setup = WorkerSetup::new(dir.path(), &props);
    let name = unique("neo4j-eos-explode");
    setup.connector(
        &name,
        json!({
            "connector.class": "org.neo4j.connectors.kafka.sink.Neo4jConnector",
            "topics": topic,
            "neo4j.uri": db.uri(),
            "neo4j.authentication.basic.username": "root",
            "neo4j.authentication.basic.password": PASSWORD,
            "neo4j.batch-size": "10",
            "neo4j.eos-offset-label": "__KafkaOffset",
            format!("neo4j.cypher.topic.{topic}"): "CREATE (:Part {n: event.n, k: event.k, q: 10 / event.d})",
            "transforms": "explode", "transforms.explode.type": "io.connectrs.transforms.Explode$Value",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": 1,
            "errors.deadletterqueue.context.headers.enable": true,
        }),
    );
    let mut worker = setup.start();
    let expected = (total as i64 - 1) * 3;
    wait_nodes(&db, "Part", expected, &worker);
    wait_for_or_explain(
        "three dead letters",
        Duration::from_secs(60),
        || (topic_count(&dlq) >= 3).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    assert_eq!(db.count("MATCH (p:Part {n: 77}) RETURN count(p) AS c"), 0, "no part of the refused Kafka record is written");
    assert_eq!(worker.stop(), Some(0));
    // Nothing was committed to Kafka (offset.flush.interval.ms): the restarted worker reads everything again.
    let worker = setup.start();
    wait_for_or_explain(
        "the restarted task to rewind",
        Duration::from_secs(120),
        || worker.log_text().contains("rewinding to the offset node").then_some(()),
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(db.nodes("Part"), expected, "each part written once");
    assert_eq!(db.count("MATCH (p:Part) RETURN count(DISTINCT p.n * 10 + p.k) AS c"), expected);
    let dead = read_topic_full(&dlq, 3, Duration::from_secs(30));
    assert_eq!(dead.len(), 3, "the refused Kafka record's three parts, reported once");
    assert!(dead.iter().all(|r| r.key.as_deref() == Some(&b"b77"[..])));
    assert_eq!(db.nodes("Part") + dead.len() as i64, total as i64 * 3, "parts in = written + dead-lettered");
}
