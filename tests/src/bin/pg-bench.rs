//! pg-bench: how fast the Postgres sink lands records from Kafka in a table, against `COPY` of the same rows
//! into the same kind of table with psql, in the same run; the upsert figure beside it.
//!
//! Usage: pg-bench [N] [insert|upsert] (default 1,000,000 records, both modes). Needs tansu on 127.0.0.1:9092 and PostgreSQL on 127.0.0.1:5432
//! (`scripts/bench postgres` starts both).
//!
//! It also prints the CPU time per row of each process taking part (the worker or the plain client, PostgreSQL,
//! the broker) and what that allows on this machine's cores: the limits are each measured alone, with every
//! core for one of them, while the sink's run pays for reading, converting and writing on the same cores.

use connect_e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

const COLUMNS: &str = "id BIGINT, name TEXT, qty BIGINT, price DOUBLE PRECISION, ok BOOLEAN";

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let only = std::env::args().nth(2);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("pg_bench");
    let row = |i: usize| (format!("station-{}", i % 5000), (i % 1000) as i64, (i % 997) as f64 * 0.25, i.is_multiple_of(2));

    // The limit: psql COPY of the same rows (tab-separated text) into a table of the same types.
    let tsv: String = (0..n)
        .map(|i| {
            let (name, qty, price, ok) = row(i);
            format!("{i}\t{name}\t{qty}\t{price}\t{}\n", if ok { "t" } else { "f" })
        })
        .collect();
    let tsv_path = dir.path().join("rows.tsv");
    std::fs::write(&tsv_path, &tsv).unwrap();
    let plain = format!("{topic}_copy");
    psql(&format!("CREATE TABLE \"{plain}\" ({COLUMNS})"));
    let cpu = Cpu::now(None);
    let start = Instant::now();
    psql(&format!("\\copy \"{plain}\" FROM '{}'", tsv_path.display()));
    let copy_secs = start.elapsed().as_secs_f64();
    let copy_cpu = Cpu::now(None).since(cpu).per_row(n);
    assert_eq!(psql(&format!("SELECT count(*) FROM \"{plain}\"")), n.to_string());

    println!("pg-bench: producing {n} JSON records to Kafka");
    let records: Vec<TestRecord> = (0..n)
        .map(|i| {
            let (name, qty, price, ok) = row(i);
            (
                Some(i.to_string().into_bytes()),
                Some(json!({"id": i, "name": name, "qty": qty, "price": price, "ok": ok}).to_string().into_bytes()),
                vec![],
            )
        })
        .collect();
    produce(&topic, &records);
    drop(records);

    // The Kafka side's limit, for context: a plain rdkafka consumer reading the topic and doing nothing else.
    let cpu = Cpu::now(None);
    let consume_secs = plain_consume_secs(&topic, n);
    let consume_cpu = Cpu::now(None).since(cpu).per_row(n);

    let run = |mode: &str| -> (f64, Cpu) {
        let table = format!("{topic}_{mode}");
        let pk = if mode == "upsert" { ", PRIMARY KEY (id)" } else { "" };
        psql(&format!("CREATE TABLE \"{table}\" ({COLUMNS}{pk})"));
        let work = dir.path().join(mode);
        std::fs::create_dir_all(&work).unwrap();
        let mut setup = WorkerSetup::new(&work, &[]);
        let mut config = json!({
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": "jdbc:postgresql://127.0.0.1:5432/postgres", "connection.user": "postgres",
            "topics": topic, "table.name.format": table, "insert.mode": mode,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        });
        if mode == "upsert" {
            config["pk.mode"] = json!("record_value");
            config["pk.fields"] = json!("id");
        }
        // PG_BENCH_CONFIG: extra connector settings as a JSON object, to try a tuning.
        if let Ok(extra) = std::env::var("PG_BENCH_CONFIG") {
            let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&extra).expect("PG_BENCH_CONFIG: a JSON object");
            config.as_object_mut().unwrap().extend(extra);
        }
        setup.connector(&format!("bench-pg-{mode}"), config);
        let mut worker = setup.start();
        let written =
            || worker.get(&format!("/connectors/bench-pg-{mode}/metrics")).1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
        // From the first row written to the last: the consumer group join is not throughput.
        let first = wait_for("the first rows", Duration::from_secs(120), || (written() > 0).then(Instant::now));
        let first_count = written();
        let cpu = Cpu::now(Some(worker.pid()));
        wait_for("every row put", Duration::from_secs(1800), || (written() >= n).then_some(()));
        // Put is not yet in the table: the last rows may wait in a COPY across batches (`copy.linger.ms`).
        let count = || psql(&format!("SELECT count(*) FROM \"{table}\"")).parse::<usize>().unwrap_or(0);
        wait_for_every("every row in the table", Duration::from_millis(20), Duration::from_secs(120), || (count() >= n).then_some(()));
        let rows_timed = n - first_count.min(n - 1);
        let secs = first.elapsed().as_secs_f64() * n as f64 / rows_timed as f64;
        // Before the worker stops: its connection's backend is PostgreSQL's to count until then.
        let used = Cpu::now(Some(worker.pid())).since(cpu).per_row(rows_timed);
        worker.stop();
        assert_eq!(psql(&format!("SELECT count(*) FROM \"{table}\"")), n.to_string(), "{mode}: rows in the table");
        (secs, used)
    };
    let wanted = |mode: &str| only.as_deref().is_none_or(|o| o == mode);
    let insert = wanted("insert").then(|| run("insert"));
    let upsert = wanted("upsert").then(|| run("upsert"));
    let (insert_secs, upsert_secs) = (insert.map(|r| r.0), upsert.map(|r| r.0));
    let rate = |secs: f64| n as f64 / secs;
    println!("{:<52} {:>12}", "measure", "rows/s");
    println!("{:<52} {:>12.0}", "psql COPY of the same rows (the limit)", rate(copy_secs));
    println!("{:<52} {:>12.0}", "plain rdkafka consumer of the topic (for context)", rate(consume_secs));
    if let Some(secs) = insert_secs {
        println!("{:<52} {:>12.0}", "Kafka -> JdbcSinkConnector, insert.mode=insert", rate(secs));
    }
    if let Some(secs) = upsert_secs {
        println!("{:<52} {:>12.0}", "Kafka -> JdbcSinkConnector, insert.mode=upsert", rate(secs));
    }
    // The limit: the slower of the two things a sink cannot beat, writing (COPY) and reading (the consumer).
    let limit_secs = copy_secs.max(consume_secs);
    let limit_name = if copy_secs >= consume_secs { "psql COPY" } else { "plain consumer" };
    if let Some(secs) = insert_secs {
        println!(
            "ratio insert / min(COPY, consumer) = / {limit_name}: {:.2} (aim >= 0.7); insert / COPY: {:.2}; insert / plain consumer: {:.2}",
            limit_secs / secs,
            copy_secs / secs,
            consume_secs / secs
        );
    }
    if let Some(secs) = upsert_secs {
        println!(
            "ratio upsert / min(COPY, consumer) = / {limit_name}: {:.2} (aim >= 0.4); upsert / COPY: {:.2}",
            limit_secs / secs,
            copy_secs / secs
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!();
    println!("CPU per row, microseconds (user + system; the first column is the worker, or psql, or the plain consumer)");
    println!(
        "{:<20} {:>8} {:>11} {:>8} {:>8} {:>28}",
        "",
        "client",
        "PostgreSQL",
        "broker",
        "total",
        format!("{cores} cores allow, rows/s")
    );
    let mut lines = vec![("psql COPY", copy_cpu), ("plain consumer", consume_cpu)];
    lines.extend(insert.map(|r| ("insert", r.1)));
    lines.extend(upsert.map(|r| ("upsert", r.1)));
    for (name, cpu) in lines {
        let total = cpu.total();
        println!(
            "{name:<20} {:>8.2} {:>11.2} {:>8.2} {total:>8.2} {:>28.0}",
            cpu.client,
            cpu.postgres,
            cpu.broker,
            cores as f64 / total * 1e6
        );
    }
}

/// CPU seconds used so far (or, after [`Cpu::per_row`], microseconds per row) by the processes of a run: the
/// client (the worker when given, else this process with the psql it ran), PostgreSQL and the broker.
#[derive(Clone, Copy)]
struct Cpu {
    client: f64,
    postgres: f64,
    broker: f64,
}

impl Cpu {
    fn now(worker: Option<u32>) -> Self {
        let client = match worker {
            Some(pid) => cpu_secs(pid).unwrap_or(0.0),
            None => cpu_secs(std::process::id()).unwrap_or(0.0) + children_cpu_secs(),
        };
        Cpu { client, postgres: cpu_secs_named(&["postgres"]), broker: cpu_secs_named(&["tansu", "nisshi"]) }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu { client: self.client - before.client, postgres: self.postgres - before.postgres, broker: self.broker - before.broker }
    }

    fn per_row(self, rows: usize) -> Cpu {
        let per = |secs: f64| secs * 1e6 / rows.max(1) as f64;
        Cpu { client: per(self.client), postgres: per(self.postgres), broker: per(self.broker) }
    }

    fn total(self) -> f64 {
        self.client + self.postgres + self.broker
    }
}
