//! The Postgres (JDBC-compatible) sink against PostgreSQL on 127.0.0.1:5432: the rail-data upsert config
//! people run today, auto.evolve, bad rows to the DLQ with PostgreSQL's message, and exactly-once inserts
//! across a SIGKILL.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

fn count(table: &str) -> i64 {
    psql(&format!("SELECT count(*) FROM \"{table}\"")).parse().unwrap_or(-1)
}

fn table_exists(table: &str) -> bool {
    psql(&format!("SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'")) == "1"
}

fn columns(table: &str) -> Vec<String> {
    psql(&format!("SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn kv(key: &str, value: serde_json::Value) -> TestRecord {
    (Some(key.as_bytes().to_vec()), Some(value.to_string().into_bytes()), vec![])
}

fn base_config(topic: &str) -> serde_json::Value {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": "jdbc:postgresql://127.0.0.1:5432/",
        "connection.user": "postgres",
        "topics": topic,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    })
}

/// The rail-data shape: upsert by the message key, two fields dropped with the old `blacklist` key,
/// tombstones delete, a new field adds a column.
#[test]
fn rail_data_upserts_by_key_drops_fields_evolves_and_deletes() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("TRAIN_MOVEMENTS");
    let movement = |event: &str, loc: &str, n: i64| {
        json!({"EVENT_TYPE": event, "LOC_STANOX": loc, "TIMETABLE_VARIATION": n, "ON_TIME": n == 0,
               "SCHEDULE_SEGMENT_LOCATION": [{"a": 1}], "HEADER": {"msg_type": "0003"}})
    };
    produce(
        &topic,
        &[
            kv("train-1", movement("ARRIVAL", "LEEDS", 2)),
            kv("train-2", movement("ARRIVAL", "YORK", 0)),
            kv("train-1", movement("DEPARTURE", "LEEDS", 3)),
        ],
    );
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "rail-postgres",
        merge_json(
            base_config(&topic),
            json!({
                "auto.create": true,
                "auto.evolve": true,
                "insert.mode": "upsert",
                "pk.mode": "record_key",
                "pk.fields": "MESSAGE_KEY",
                "delete.enabled": true,
                "transforms": "dropArrays",
                "transforms.dropArrays.type": "org.apache.kafka.connect.transforms.ReplaceField$Value",
                "transforms.dropArrays.blacklist": "SCHEDULE_SEGMENT_LOCATION, HEADER",
            }),
        ),
    );
    let mut worker = setup.start();
    wait_for("the table with two rows", Duration::from_secs(60), || (table_exists(&topic) && count(&topic) == 2).then_some(()));
    assert_eq!(columns(&topic), vec!["MESSAGE_KEY", "EVENT_TYPE", "LOC_STANOX", "TIMETABLE_VARIATION", "ON_TIME"]);
    assert_eq!(
        psql(&format!("SELECT \"MESSAGE_KEY\", \"EVENT_TYPE\", \"TIMETABLE_VARIATION\", \"ON_TIME\" FROM \"{topic}\" ORDER BY 1")),
        "train-1|DEPARTURE|3|f\ntrain-2|ARRIVAL|0|t",
        "two records with one key give one row with the later values"
    );
    assert_eq!(
        psql(&format!(
            "SELECT data_type FROM information_schema.columns WHERE table_name = '{topic}' AND column_name = 'TIMETABLE_VARIATION'"
        )),
        "bigint"
    );

    // A new field: auto.evolve adds the column. A tombstone deletes.
    let mut with_platform = movement("ARRIVAL", "HULL", 1);
    with_platform["PLATFORM"] = json!("4");
    produce(&topic, &[kv("train-3", with_platform), (Some(b"train-2".to_vec()), None, vec![])]);
    wait_for("train-3 in and train-2 deleted", Duration::from_secs(60), || {
        let keys = psql(&format!("SELECT string_agg(\"MESSAGE_KEY\", ',' ORDER BY 1) FROM \"{topic}\""));
        (keys == "train-1,train-3").then_some(())
    });
    assert!(columns(&topic).contains(&"PLATFORM".to_string()), "{:?}", columns(&topic));
    assert_eq!(psql(&format!("SELECT \"PLATFORM\" FROM \"{topic}\" WHERE \"MESSAGE_KEY\" = 'train-3'")), "4");
    assert_eq!(psql(&format!("SELECT coalesce(\"PLATFORM\", 'null') FROM \"{topic}\" WHERE \"MESSAGE_KEY\" = 'train-1'")), "null");
    let (_, status) = worker.get("/connectors/rail-postgres/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// A string into an integer column: those rows land in the DLQ with PostgreSQL's message; the good rows of
/// the same batch are written. Rows in = rows written + records in the DLQ. The rows are long enough that a
/// batch's binary COPY is already streaming (256 KiB pieces) when its bad rows turn out to need text COPY.
#[test]
fn bad_rows_go_to_the_dlq_with_the_postgres_message() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("pg_bad_rows"), unique("pg-bad-rows-dlq"));
    psql(&format!("CREATE TABLE \"{topic}\" (id BIGINT NOT NULL, qty INTEGER, note TEXT)"));
    let padding = "p".repeat(400);
    let records: Vec<TestRecord> = (0..2000)
        .map(|i| {
            let qty = if i % 100 == 42 { json!("many") } else { json!(i) };
            let note = if i == 7 { format!("row\t{i}\nwith \\ escapes") } else { format!("row {i} {padding}") };
            kv(&i.to_string(), json!({"id": i, "qty": qty, "note": note}))
        })
        .collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "pg-bad-rows",
        merge_json(
            base_config(&topic),
            json!({
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": 1,
                "errors.deadletterqueue.context.headers.enable": true,
            }),
        ),
    );
    let mut worker = setup.start();
    let dead = read_topic_full(&dlq, 20, Duration::from_secs(60));
    wait_for("1980 good rows", Duration::from_secs(60), || (count(&topic) >= 1980).then_some(()));
    assert_eq!((count(&topic), dead.len()), (1980, 20), "2000 in = 1980 written + 20 dead-lettered");
    for record in &dead {
        let message = record.header("__connect.errors.exception.message").unwrap_or_default();
        assert!(message.contains("invalid input syntax for type integer: \"many\""), "{message}");
        assert!(!message.contains("Batch entry"), "{message}");
        let v: serde_json::Value = serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
        assert_eq!(v["id"].as_i64().unwrap() % 100, 42);
    }
    assert_eq!(psql(&format!("SELECT note FROM \"{topic}\" WHERE id = 7")), "row\t7\nwith \\ escapes", "text survives COPY escaping");
    let (_, status) = worker.get("/connectors/pg-bad-rows/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// Insert mode with `exactly.once.enabled`: the worker is SIGKILLed mid-stream and restarted; the table has
/// exactly one row per record, although Kafka's committed offsets lag behind what was written.
#[test]
fn exactly_once_inserts_survive_sigkill() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("pg_exactly_once");
    let total = 100_000;
    let records: Vec<TestRecord> = (0..total).map(|i| kv(&i.to_string(), json!({"id": i, "payload": "x".repeat(40)}))).collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &[("offset.flush.interval.ms", "60000")]);
    setup.connector(
        "pg-eos",
        merge_json(base_config(&topic), json!({"auto.create": true, "exactly.once.enabled": true, "batch.size": 500})),
    );
    let mut worker = setup.start();
    wait_for("some rows written", Duration::from_secs(90), || (table_exists(&topic) && count(&topic) >= 5_000).then_some(()));
    worker.kill_hard();
    let at_kill = count(&topic);
    assert!(at_kill < total as i64, "the stream was not cut in the middle ({at_kill} rows already)");
    let mut worker = setup.start();
    wait_for_or_explain(
        "every record in the table",
        Duration::from_secs(180),
        || (count(&topic) >= total as i64).then_some(()),
        || format!("{} rows; log:\n{}", count(&topic), tail(&worker.log_text(), 40)),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&topic), total as i64, "exactly one row per record");
    assert_eq!(psql(&format!("SELECT count(DISTINCT id) FROM \"{topic}\"")), total.to_string());
    eprintln!("exactly-once: {at_kill} rows when SIGKILLed, {total} rows after the restart, no duplicates");
    assert_eq!(worker.stop(), Some(0));
}

/// The database goes away mid-stream (every connection cut, new ones refused) for 15 s and comes back: the
/// task retries with backoff instead of dying, and every record ends up in the table exactly once (upsert).
#[test]
fn database_outage_is_retried_not_fatal() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("pg_outage");
    let proxy = CuttableProxy::start("127.0.0.1:5432");
    let total = 20_000;
    let batch =
        |range: std::ops::Range<usize>| -> Vec<TestRecord> { range.map(|i| kv(&i.to_string(), json!({"id": i, "v": i * 2}))).collect() };
    produce(&topic, &batch(0..total / 2));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "pg-outage",
        merge_json(
            base_config(&topic),
            json!({
                "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/postgres", proxy.port),
                "auto.create": true, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
                "connection.attempts": 2, "connection.backoff.ms": 500, "retry.backoff.ms": 1000, "max.retries": 100,
            }),
        ),
    );
    let mut worker = setup.start();
    wait_for("the first half in the table", Duration::from_secs(60), || {
        (table_exists(&topic) && count(&topic) >= (total / 2) as i64).then_some(())
    });
    proxy.down();
    produce(&topic, &batch(total / 2..total));
    std::thread::sleep(Duration::from_secs(15));
    let (_, status) = worker.get("/connectors/pg-outage/status");
    assert_ne!(status["tasks"][0]["state"], "FAILED", "a database outage must not fail the task: {status}");
    assert_eq!(count(&topic), (total / 2) as i64, "nothing can be written while the database is away");
    proxy.up();
    wait_for_or_explain(
        "every record in the table after the outage",
        Duration::from_secs(120),
        || (count(&topic) >= total as i64).then_some(()),
        || {
            format!(
                "{} rows; status {}; log:\n{}",
                count(&topic),
                worker.get("/connectors/pg-outage/status").1,
                tail(&worker.log_text(), 30)
            )
        },
    );
    assert_eq!(count(&topic), total as i64);
    assert_eq!(psql(&format!("SELECT sum(v) FROM \"{topic}\"")), ((0..total).map(|i| i * 2).sum::<usize>()).to_string());
    let log = worker.log_text();
    assert!(log.contains("PostgreSQL"), "the log should say why it retried");
    let (_, status) = worker.get("/connectors/pg-outage/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// `sslmode=require` in a JDBC URL: the sink's connection is encrypted (pg_stat_ssl says so). `verify-full`
/// against roots that did not sign the server's certificate refuses to connect instead of going plain.
#[test]
fn tls_to_the_database() {
    require_broker();
    require_postgres();
    assert_eq!(psql("SHOW ssl"), "on", "PostgreSQL on 5432 offers no TLS (scripts/services gives its own cluster a certificate)");
    let roots = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert!(roots.exists(), "no system CA bundle at {}", roots.display());
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("pg_tls");
    let app = unique("connect-rs-tls");
    produce(&topic, &(0..100).map(|i| kv(&i.to_string(), json!({"id": i}))).collect::<Vec<_>>());
    let url = |mode: &str| format!("jdbc:postgresql://127.0.0.1:5432/postgres?{mode}&ApplicationName={app}");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup
        .connector("pg-tls", merge_json(base_config(&topic), json!({"connection.url": url("sslmode=require"), "auto.create": true})))
        .connector(
            "pg-tls-verify",
            merge_json(
                base_config(&topic),
                json!({
                    "connection.url": url(&format!("sslmode=verify-full&sslrootcert={}", roots.display())),
                    "auto.create": true, "table.name.format": format!("{topic}_verify"),
                }),
            ),
        );
    let mut worker = setup.start();
    wait_for("100 rows over TLS", Duration::from_secs(60), || (table_exists(&topic) && count(&topic) == 100).then_some(()));
    let encrypted = psql(&format!(
        "SELECT count(*) FILTER (WHERE s.ssl) || '/' || count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{app}'"
    ));
    let (tls, all) = encrypted.split_once('/').unwrap();
    assert!(all != "0" && tls == all, "the sink's connections, encrypted/all: {encrypted}");
    wait_for_or_explain(
        "the verify-full connector to refuse the server's certificate",
        Duration::from_secs(60),
        || worker.log_text().contains("invalid peer certificate").then_some(()),
        || tail(&worker.log_text(), 20),
    );
    assert!(!table_exists(&format!("{topic}_verify")), "nothing may be written without a verified server");
    assert_eq!(worker.stop(), Some(0));
}

/// Upserts, tombstones and a bad row in one batch: runs of writes and deletes share the connection's staging
/// tables (one is used twice in a transaction, and after the bad row is found under savepoints the stages are
/// made again inside them). Then a second batch through the stages a committed transaction left. 9 records in =
/// 8 applied + 1 in the DLQ, and the table holds exactly what the records say, in order.
#[test]
fn upserts_tombstones_and_a_bad_row_share_staging_tables() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique("pg_upsert_mix"), unique("pg-upsert-mix-dlq"));
    psql(&format!("CREATE TABLE \"{topic}\" (k TEXT PRIMARY KEY, n INTEGER, s TEXT)"));
    let tombstone = |k: &str| (Some(k.as_bytes().to_vec()), None, vec![]);
    produce(
        &topic,
        &[
            kv("k1", json!({"n": 1, "s": "a"})),
            kv("k2", json!({"n": 2, "s": "b"})),
            tombstone("k1"),
            kv("k3", json!({"n": "three", "s": "c"})),
            kv("k1", json!({"n": 5, "s": "e"})),
            kv("k2", json!({"n": 6, "s": "f"})),
            kv("k4", json!({"n": 7, "s": "g"})),
        ],
    );
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "pg-upsert-mix",
        merge_json(
            base_config(&topic),
            json!({
                "insert.mode": "upsert",
                "pk.mode": "record_key",
                "pk.fields": "k",
                "delete.enabled": true,
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": dlq,
                "errors.deadletterqueue.topic.replication.factor": 1,
                "errors.deadletterqueue.context.headers.enable": true,
            }),
        ),
    );
    let mut worker = setup.start();
    let rows = || psql(&format!("SELECT string_agg(k || '=' || n || s, ',' ORDER BY k) FROM \"{topic}\""));
    wait_for("the first batch applied", Duration::from_secs(60), || (rows() == "k1=5e,k2=6f,k4=7g").then_some(()));
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1, "one bad row in the DLQ");
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("invalid input syntax for type integer: \"three\""), "{message}");

    produce(&topic, &[kv("k5", json!({"n": 8, "s": "h"})), tombstone("k4"), kv("k2", json!({"n": 9, "s": "i"}))]);
    wait_for("the second batch applied", Duration::from_secs(60), || (rows() == "k1=5e,k2=9i,k5=8h").then_some(()));
    assert_eq!(read_topic_full(&dlq, 2, Duration::from_secs(3)).len(), 1, "nothing more in the DLQ");
    let (_, status) = worker.get("/connectors/pg-upsert-mix/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// Insert mode keeps one COPY open across many batches (`copy.linger.ms`). Rows the table's CHECK constraint
/// refuses have a binary form, so they go into that COPY and fail all of it when it ends: the task rewinds to
/// the COPY's first offsets, Kafka delivers the records again, and they are written batch by batch with the
/// bad rows found, reported and left out. Every record is either one row or one DLQ entry, and the offsets
/// are committed to the end. (The harness's 500 ms offset flush ends each COPY before the 5 s linger would.)
#[test]
fn a_row_refused_in_a_copy_across_batches_is_replayed_and_dead_lettered() {
    refused_rows_in_a_copy_across_batches("insert");
}

/// The same with upserts, which stage their rows across batches and apply them in one statement: the CHECK
/// constraint refuses rows when the staged rows are applied. Keys repeat across batches (a COPY with a key
/// already staged ends before the next begins), and the last record for a key wins.
#[test]
fn a_row_refused_in_upserts_staged_across_batches_is_replayed_and_dead_lettered() {
    refused_rows_in_a_copy_across_batches("upsert");
}

fn refused_rows_in_a_copy_across_batches(mode: &str) {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let (topic, dlq) = (unique(&format!("pg_span_{mode}")), unique(&format!("pg-span-{mode}-dlq")));
    let upsert = mode == "upsert";
    let pk = if upsert { ", PRIMARY KEY (id)" } else { "" };
    psql(&format!("CREATE TABLE \"{topic}\" (id BIGINT NOT NULL, qty BIGINT CHECK (qty >= 0), note TEXT{pk})"));
    let total = 5_000;
    // Upserts: ids 0..4000, the first thousand twice (the second time in a later batch).
    let id = |i: usize| if upsert { i % 4000 } else { i };
    let records: Vec<TestRecord> = (0..total)
        .map(|i| {
            let qty = if i % 500 == 250 { -1 } else { i as i64 };
            kv(&i.to_string(), json!({"id": id(i), "qty": qty, "note": format!("row {i}")}))
        })
        .collect();
    produce(&topic, &records);
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let name = format!("pg-span-{mode}");
    let mut config = merge_json(
        base_config(&topic),
        json!({
            "copy.linger.ms": 5000,
            "consumer.override.max.poll.records": 250,
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": 1,
            "errors.deadletterqueue.context.headers.enable": true,
        }),
    );
    if upsert {
        config = merge_json(config, json!({"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"}));
    }
    setup.connector(&name, config);
    let mut worker = setup.start();
    let dead = read_topic_full(&dlq, 10, Duration::from_secs(90));
    // Ten bad records; with upserts, the ids of the eight below 4000 never get a good row (250 and 750 come
    // back bad a second time).
    let rows: i64 = if upsert { 4000 - 8 } else { 4990 };
    wait_for_or_explain(
        "every good row",
        Duration::from_secs(60),
        || (count(&topic) >= rows).then_some(()),
        || format!("{} rows; log:\n{}", count(&topic), tail(&worker.log_text(), 30)),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((count(&topic), dead.len()), (rows, 10), "5000 in = {} written + 10 dead-lettered", total - 10);
    assert_eq!(psql(&format!("SELECT count(DISTINCT id) FROM \"{topic}\"")), rows.to_string(), "no row written twice");
    if upsert {
        assert_eq!(psql(&format!("SELECT qty FROM \"{topic}\" WHERE id = 5")), "4005", "the last record for a key wins");
    }
    for record in &dead {
        let message = record.header("__connect.errors.exception.message").unwrap_or_default();
        assert!(message.contains("violates check constraint"), "{message}");
        let v: serde_json::Value = serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
        assert_eq!(v["qty"].as_i64(), Some(-1), "{v}");
    }
    let log = worker.log_text();
    assert!(log.contains("a COPY across batches failed"), "the bad rows were to be met inside a COPY across batches:\n{}", tail(&log, 30));
    let group = format!("connect-{name}");
    wait_for_or_explain(
        "offsets committed to the end",
        Duration::from_secs(30),
        || (committed_offsets(&group, &topic).iter().map(|(_, o)| o).sum::<i64>() == total as i64).then_some(()),
        || format!("committed {:?}", committed_offsets(&group, &topic)),
    );
    let (_, status) = worker.get(&format!("/connectors/{name}/status"));
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

/// A COPY across batches does not wait for more records, nor for the offset flush (a minute here), to end:
/// a lone record is in the table within about `copy.linger.ms`. (The first put connects and goes batch by
/// batch; the second record is the one that waits in an open COPY.)
#[test]
fn a_lone_record_is_written_without_waiting_for_more() {
    require_broker();
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("pg_span_lone");
    psql(&format!("CREATE TABLE \"{topic}\" (id BIGINT NOT NULL, note TEXT)"));
    produce(&topic, &[kv("0", json!({"id": 0, "note": "first"}))]);
    let mut setup = WorkerSetup::new(dir.path(), &[("offset.flush.interval.ms", "60000")]);
    setup.connector("pg-span-lone", merge_json(base_config(&topic), json!({"copy.linger.ms": 300})));
    let mut worker = setup.start();
    wait_for("the first record in the table", Duration::from_secs(30), || (count(&topic) == 1).then_some(()));
    produce(&topic, &[kv("1", json!({"id": 1, "note": "second"}))]);
    wait_for_or_explain(
        "the second record in the table well before the offset flush",
        Duration::from_secs(20),
        || (count(&topic) == 2).then_some(()),
        || format!("{} rows; log:\n{}", count(&topic), tail(&worker.log_text(), 20)),
    );
    assert_eq!(worker.stop(), Some(0));
}
