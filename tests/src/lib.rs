//! Helpers for connect-rs end-to-end tests and benchmarks: run the real `connect` binary against real
//! services (started by `scripts/services up`), read and write Kafka directly, call the REST API.
//!
//! Nothing here fakes a service: a test that cannot reach its broker fails with a message saying how
//! to start it.

pub mod arcadedb;
pub mod camera_server;
pub mod cluster;
pub mod elasticsearch;
pub mod feed_server;
pub mod http_target;
pub mod s3;
pub mod sasl_gate;
pub mod secured_broker;
pub mod stomp;
pub mod tcp_server;
pub mod tls_proxy;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Kafka API broker the tests use.
pub fn bootstrap() -> String {
    std::env::var("CONNECT_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Fail fast, and clearly, when the broker is not there.
pub fn require_broker() {
    let addr = bootstrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!("no Kafka API broker at {addr}: start one with `scripts/services up kafka` (the README's test command does)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `a` with every key of the object `b` set on it (connector configs built from a base and extras).
pub fn merge_json(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    for (k, v) in b.as_object().expect("an object") {
        a[k] = v.clone();
    }
    a
}

/// A name unique to this test run, for topics, connectors and groups.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A free TCP port on 127.0.0.1.
///
/// The port is free when asked, and taken only later by the server a test starts; tests of one binary run in
/// parallel, so a port is never handed out twice in one process (the kernel may offer a just-released port again).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A tool the tests use, as `scripts/test-all` exports it in `env_var`, else as `scripts/services SUBCOMMAND`
/// prints it (installing it first when missing): a Python with a package, a broker binary.
pub fn service_tool(env_var: &str, subcommand: &str) -> String {
    std::env::var(env_var).unwrap_or_else(|_| {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services"))
            .arg(subcommand)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap_or_else(|e| panic!("scripts/services {subcommand}: {e}"));
        assert!(out.status.success(), "scripts/services {subcommand}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// The `connect` binary built next to the running test executable, or `CONNECT_TEST_BINARY` (to run the
/// tests against another build, e.g. the code before a fix).
pub fn connect_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CONNECT_TEST_BINARY") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("connect");
    assert!(bin.exists(), "{} not found: build it with `cargo build --release -p connect-worker`", bin.display());
    bin
}

/// A worker's files: its config, its connectors, its log.
pub struct WorkerSetup {
    pub dir: PathBuf,
    pub port: u16,
    pub worker_config: PathBuf,
    pub connector_configs: Vec<PathBuf>,
    /// Extra environment variables for the worker process.
    pub env: Vec<(String, String)>,
}

impl WorkerSetup {
    /// A worker config in `dir` with String converters, a fast offset flush and a short consumer session
    /// (tansu takes about half the session timeout to form a group).
    pub fn new(dir: &Path, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut props = vec![
            ("bootstrap.servers".to_string(), bootstrap()),
            ("key.converter".into(), "org.apache.kafka.connect.storage.StringConverter".into()),
            ("value.converter".into(), "org.apache.kafka.connect.storage.StringConverter".into()),
            ("offset.storage.file.filename".into(), dir.join("connect.offsets").display().to_string()),
            ("offset.flush.interval.ms".into(), "500".into()),
            ("listeners".into(), format!("http://127.0.0.1:{port}")),
            ("consumer.session.timeout.ms".into(), "6000".into()),
            ("consumer.heartbeat.interval.ms".into(), "1000".into()),
        ];
        for (k, v) in extra {
            props.retain(|(key, _)| key != k);
            props.push((k.to_string(), v.to_string()));
        }
        let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let worker_config = dir.join("worker.properties");
        std::fs::write(&worker_config, text).unwrap();
        WorkerSetup { dir: dir.to_path_buf(), port, worker_config, connector_configs: Vec::new(), env: Vec::new() }
    }

    /// Add a connector file (`{"name":..,"config":{..}}`).
    pub fn connector(&mut self, name: &str, config: serde_json::Value) -> &mut Self {
        let path = self.dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::json!({"name": name, "config": config}).to_string()).unwrap();
        self.connector_configs.push(path);
        self
    }

    /// Set an environment variable of the worker process (overrides the harness's own, such as RUST_LOG).
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn start(&self) -> Worker {
        self.spawn("standalone", &self.connector_configs)
    }

    /// `connect distributed` with this worker config (group.id and the storage topics among the extras).
    pub fn start_distributed(&self) -> Worker {
        self.spawn("distributed", &[])
    }

    fn spawn(&self, mode: &str, connector_configs: &[PathBuf]) -> Worker {
        let log_path = self.dir.join("worker.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        // Earlier runs in this directory wrote to the same log: only what this run writes counts.
        let log_start = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let child = Command::new(connect_binary())
            .arg(mode)
            .arg(&self.worker_config)
            .args(connector_configs)
            .env("RUST_LOG", std::env::var("CONNECT_TEST_LOG").unwrap_or_else(|_| "info,librdkafka=warn".into()))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn connect");
        let mut worker = Worker { child: Some(child), port: self.port, log: log_path };
        worker.wait_rest(log_start);
        worker
    }
}

/// A running `connect standalone` process; killed when dropped.
pub struct Worker {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Worker {
    /// Until this worker says its REST server listens (another process on the same port must not pass for it).
    fn wait_rest(&mut self, log_start: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let listening = format!("REST server listening listener=http://127.0.0.1:{}", self.port);
        let listening_tls = format!("REST server listening listener=https://127.0.0.1:{}", self.port);
        // The same line with log.format=json.
        let listening_json = format!("\"listener\":\"http://127.0.0.1:{}\"", self.port);
        loop {
            let full = self.log_text();
            let log = full.get(log_start..).unwrap_or(&full);
            let said = log.contains(&listening)
                || log.contains(&listening_tls)
                || log.lines().any(|l| l.contains("\"REST server listening\"") && l.contains(&listening_json));
            if said && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the worker exited ({status}) before its REST port {} opened; log:\n{}", self.port, tail(log, 40));
            }
            if Instant::now() > deadline {
                panic!("worker REST port {} never opened; log:\n{}", self.port, tail(log, 40));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no final commit.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe_kill(c.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("worker did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Task 0's state of connector `name`, sampled once a second until `since` is `span` old: what an outage
    /// looked like from the REST API.
    pub fn task_states_until(&self, name: &str, since: Instant, span: Duration) -> Vec<String> {
        let mut states = Vec::new();
        while since.elapsed() < span {
            let (_, status) = self.get(&format!("/connectors/{name}/status"));
            states.push(status["tasks"][0]["state"].as_str().unwrap_or("?").to_string());
            std::thread::sleep(Duration::from_secs(1));
        }
        states
    }

    /// The first task's `records-written` counter (connect-rs's task metrics), 0 before it exists.
    pub fn records_written(&self, connector: &str) -> usize {
        self.get(&format!("/connectors/{connector}/metrics")).1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize
    }

    /// GET a REST path, returning the status code and JSON body.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        http("GET", self.port, path, None)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// A minimal blocking HTTP/1.1 client for the REST API (keeps the tests free of an async runtime).
pub fn http(method: &str, port: u16, path: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to REST");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body_text = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body_text}",
        body_text.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("HTTP status");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Poll `check` until it returns `Some`, or panic with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or_explain(what, timeout, check, String::new)
}

/// As [`wait_for`], but on timeout the panic message carries `explain()`: the state a reader needs to tell
/// a slow machine from a stuck pipeline (counts, task states, log tails).
pub fn wait_for_or_explain<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>, explain: impl FnOnce() -> String) -> T {
    wait_every_or_explain(what, Duration::from_millis(100), timeout, check, explain)
}

/// [`wait_for`] checking every `every` instead of every 100 ms (benches timing an end to a few ms).
pub fn wait_for_every<T>(what: &str, every: Duration, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_every_or_explain(what, every, timeout, check, String::new)
}

fn wait_every_or_explain<T>(
    what: &str,
    every: Duration,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", explain());
        }
        std::thread::sleep(every);
    }
}

/// The last `n` lines of a text, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn consumer_at(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("e2e-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("test consumer")
}

/// A consumer assigned every partition of `topic` from the beginning.
fn reader_from_beginning(bootstrap: &str, topic: &str) -> BaseConsumer {
    let c = consumer_at(bootstrap);
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).expect("topic exists");
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    c.assign(&tpl).expect("assign");
    c
}

/// The settings of the benchmarks' plain producers: the worker's delivery guarantees (idempotent,
/// acks=all) and generous batching.
pub fn plain_producer_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .set("batch.num.messages", "10000");
    c
}

/// Number of records in a topic, counted by reading it: tansu's high watermark is the base offset of
/// the last batch plus one, not the end of the log, so watermarks cannot count records.
pub fn topic_count(topic: &str) -> i64 {
    topic_count_at(&bootstrap(), topic)
}

/// [`topic_count`] on another broker.
pub fn topic_count_at(bootstrap: &str, topic: &str) -> i64 {
    let c = consumer_at(bootstrap);
    let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) else { return 0 };
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else { return 0 };
    if t.partitions().is_empty() {
        return 0;
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    c.assign(&tpl).expect("assign");
    let mut count = 0;
    let mut idle_since = Instant::now();
    let started = Instant::now();
    // Stop after 1 s without a record (the first fetch can take a while to start).
    while idle_since.elapsed() < Duration::from_millis(if count == 0 { 2000 } else { 1000 }) && started.elapsed() < Duration::from_secs(60)
    {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            count += 1;
            idle_since = Instant::now();
        }
    }
    count
}

/// One consumed record: partition, offset, key, value.
pub type ReadRecord = (i32, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Read every record of a topic (all partitions, from the beginning) until `expected` arrived or
/// `timeout` passed. Returns them in partition order.
pub fn read_topic(topic: &str, expected: usize, timeout: Duration) -> Vec<ReadRecord> {
    read_topic_at(&bootstrap(), topic, expected, timeout)
}

/// [`read_topic`] on another broker.
pub fn read_topic_at(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<ReadRecord> {
    let c = reader_from_beginning(bootstrap, topic);
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((m.partition(), m.offset(), m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec))),
            Some(Err(e)) => eprintln!("read_topic: {e}"),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.0, r.1));
    out
}

/// Read a topic from the beginning, handing each record's value to `each`, until `expected` records were
/// seen or `timeout` passed; returns how many were seen. For topics too large to hold in memory.
pub fn scan_topic(topic: &str, expected: usize, timeout: Duration, mut each: impl FnMut(Option<&[u8]>)) -> usize {
    let c = reader_from_beginning(&bootstrap(), topic);
    let mut seen = 0;
    let deadline = Instant::now() + timeout;
    while seen < expected && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                each(m.payload());
                seen += 1;
            }
            Some(Err(e)) => eprintln!("scan_topic: {e}"),
            None => {}
        }
    }
    seen
}

/// The offsets a consumer group committed for a topic (partition → next offset).
pub fn committed_offsets(group: &str, topic: &str) -> Vec<(i32, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition(topic, p.id());
        }
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                },
            )
        })
        .collect()
}

/// Lines of a file (empty if it does not exist yet).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|s| s.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Count of lines in a file, cheaply, for polling.
pub fn line_count(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

/// Size of a file in bytes (0 if it does not exist yet).
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// `n` distinct lines of about `width` bytes: "00000042 xxxxx...".
pub fn numbered_lines(range: std::ops::Range<usize>, width: usize) -> String {
    let pad = width.saturating_sub(9);
    let filler: String = "abcdefghijklmnopqrstuvwxyz0123456789".chars().cycle().take(pad).collect();
    let mut s = String::with_capacity(range.len() * (width + 1));
    for i in range {
        s.push_str(&format!("{i:08} {filler}\n"));
    }
    s
}

/// Two fields of `/proc/PID/status` (values in KiB), e.g. `VmHWM:` and `VmRSS:`.
fn status_kib(pid: u32, first: &str, second: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field =
        |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
    Some((field(first)?, field(second)?))
}

/// CPU time a process used so far, all its threads, user and system, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(pid).map(|(own, _)| own)
}

/// User and system CPU seconds from `/proc/PID/stat`: the process's own, and its exited children's that it
/// waited for (cutime and cstime).
fn stat_cpu_secs(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime, stime, cutime and
    // cstime are the 14th to 17th fields of the line, the 12th to 15th after the name.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<u64> = after_name.split_whitespace().skip(11).take(4).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    static CLOCK_TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let per_sec = *CLOCK_TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().ok();
        out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
    });
    Some(((fields[0] + fields[1]) as f64 / per_sec, (fields[2] + fields[3]) as f64 / per_sec))
}

/// CPU seconds so far of this process's exited children (a psql it ran, say).
pub fn children_cpu_secs() -> f64 {
    stat_cpu_secs(std::process::id()).map_or(0.0, |(_, children)| children)
}

/// CPU seconds so far of every process named one of `names` (`/proc/PID/comm`), with their exited children's:
/// PostgreSQL's postmaster waits for the backends of closed connections, so their time is not lost.
pub fn cpu_secs_named(names: &[&str]) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| names.contains(&comm.trim())))
        .filter_map(stat_cpu_secs)
        .map(|(own, children)| own + children)
        .sum()
}

/// Peak (VmHWM) and current (VmRSS) resident memory of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    status_kib(pid, "VmHWM:", "VmRSS:")
}

/// Resident memory of a process split as the kernel counts it (RssAnon, RssFile), in KiB: anonymous pages are
/// its heap, stacks and the binary's data that start-up relocated (written, so private); file pages are the
/// parts of its binary and libraries it read, clean and shared.
pub fn memory_split_kib(pid: u32) -> Option<(u64, u64)> {
    status_kib(pid, "RssAnon:", "RssFile:")
}

/// Create a bucket in the test S3 server (SeaweedFS, credentials testkey/testsecret) through the S3 API.
pub fn create_s3_bucket(bucket: &str) {
    let status = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "testkey:testsecret",
            "-X",
            "PUT",
        ])
        .arg(format!("http://127.0.0.1:8333/{bucket}"))
        .output()
        .expect("curl (scripts/test-all installs it)");
    let code = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(code == "200" || code == "409", "creating S3 bucket {bucket}: HTTP {code} {}", String::from_utf8_lossy(&status.stderr));
}

/// A tansu broker of a test's own, on durable S3 storage (SeaweedFS from `scripts/services up s3`), so the
/// test can stop and restart it without losing what it stored.
pub struct DurableBroker {
    pub port: u16,
    cluster_id: String,
    /// A bucket of its own: a broker never reads what earlier runs left in the shared S3 server.
    bucket: String,
    log: PathBuf,
    child: Option<Child>,
}

impl DurableBroker {
    pub fn start(dir: &Path) -> Self {
        let bucket = unique("tansu-e2e");
        create_s3_bucket(&bucket);
        let mut b = DurableBroker { port: free_port(), cluster_id: unique("e2e-cluster"), bucket, log: dir.join("tansu.log"), child: None };
        b.restart();
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)start the broker process and wait for its port.
    pub fn restart(&mut self) {
        let bin = std::env::var("CONNECT_TEST_TANSU").unwrap_or_else(|_| {
            panic!("CONNECT_TEST_TANSU is not set: run the tests through scripts/test-all (it exports `scripts/services tansu-bin`)")
        });
        assert!(std::net::TcpStream::connect("127.0.0.1:8333").is_ok(), "no S3 server on 127.0.0.1:8333: run `scripts/services up s3`");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &format!("s3://{}/", self.bucket),
                "--cluster-id",
                &self.cluster_id,
            ])
            .env("AWS_ACCESS_KEY_ID", "testkey")
            .env("AWS_SECRET_ACCESS_KEY", "testsecret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT", "http://127.0.0.1:8333")
            .env("AWS_ALLOW_HTTP", "true")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        wait_for("the durable broker's port", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok().then_some(())
        });
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL the broker.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run one SQL statement on the PostgreSQL at 127.0.0.1:5432 as `postgres`; its unaligned output.
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql (scripts/services up postgres installs it)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn require_postgres() {
    assert!(std::net::TcpStream::connect("127.0.0.1:5432").is_ok(), "no PostgreSQL on 127.0.0.1:5432: run `scripts/services up postgres`");
}

/// A record to produce in a test: key, value, headers.
pub type TestRecord = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

/// Produce records to a topic (created with one partition first) and wait until the broker has them all.
pub fn produce(topic: &str, records: &[TestRecord]) {
    produce_at(&bootstrap(), topic, records)
}

/// [`produce`] on another broker.
pub fn produce_at(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    create_topic_at(bootstrap, topic, 1);
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("enable.idempotence", "true").create().expect("test producer");
    for (key, value, headers) in records {
        let mut hs = OwnedHeaders::new();
        for (k, v) in headers {
            hs = hs.insert(Header { key: k, value: Some(v) });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).headers(hs);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// Create a one-partition topic (idempotent).
pub fn create_topic(topic: &str) {
    create_topic_with_partitions(topic, 1);
}

/// Create a topic with this many partitions (idempotent).
pub fn create_topic_with_partitions(topic: &str, partitions: i32) {
    create_topic_at(&bootstrap(), topic, partitions)
}

/// [`create_topic_with_partitions`] on another broker.
pub fn create_topic_at(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ = rt.block_on(admin.create_topics([&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()));
}

/// A consumed record with its headers.
#[derive(Debug, Clone)]
pub struct FullRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl FullRecord {
    /// The last header with this key, as text.
    pub fn header(&self, key: &str) -> Option<String> {
        self.headers.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.as_ref()).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Read every record of a topic with headers, until `expected` arrived and then 1 s more (to catch
/// extras), or `timeout` passed.
pub fn read_topic_full(topic: &str, expected: usize, timeout: Duration) -> Vec<FullRecord> {
    use rdkafka::message::Headers;
    let c = consumer_at(&bootstrap());
    let deadline = Instant::now() + timeout;
    // The topic may not exist yet (a worker that has not written its first record): wait for its partitions
    // within the timeout, rather than reading nothing.
    let mut tpl = TopicPartitionList::new();
    while tpl.count() == 0 {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            for t in md.topics().iter().filter(|t| t.name() == topic && t.error().is_none()) {
                for p in t.partitions() {
                    tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
                }
            }
        }
        if tpl.count() == 0 {
            if Instant::now() >= deadline {
                return Vec::new();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut complete_at: Option<Instant> = None;
    while Instant::now() < deadline && complete_at.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(FullRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
                    .unwrap_or_default(),
                timestamp: m.timestamp().to_millis(),
            });
        }
        if out.len() >= expected && complete_at.is_none() {
            complete_at = Some(Instant::now());
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// A Mosquitto broker of a test's own (so the test may restart it), on a free port, queueing plenty of
/// messages for offline persistent sessions. Stopped when dropped.
pub struct MqttBroker {
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl MqttBroker {
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 0\nuser root\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type subscribe\n"),
        )
        .unwrap();
        let mut b = MqttBroker { port, config, log: dir.join("mosquitto.log"), child: None };
        b.restart();
        b
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed: run `scripts/services up mqtt`");
        self.child =
            Some(Command::new(bin).arg("-c").arg(&self.config).stdout(Stdio::null()).stderr(log).spawn().expect("start mosquitto"));
        wait_for("mosquitto's port", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok().then_some(())
        });
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many subscriptions by `client_id` the broker logged (across restarts): with `log_type
    /// subscribe` Mosquitto writes `<time>: <client id> <qos> <topic>` for each.
    pub fn subscriptions(&self, client_id: &str) -> usize {
        let marker = format!(": {client_id} ");
        self.log_text().lines().filter(|l| l.contains(&marker)).count()
    }

    /// Publish each line of `payloads` as one message (mosquitto_pub -l), at QoS `qos`.
    pub fn publish_lines(&self, topic: &str, qos: u8, payloads: &str) {
        publish_lines(self.port, topic, qos, payloads);
    }
}

/// Publish each line of `payloads` as one MQTT message to the broker on `port` (mosquitto_pub -l).
pub fn publish_lines(port: u16, topic: &str, qos: u8, payloads: &str) {
    use std::io::Write;
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-q", &qos.to_string(), "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub (scripts/services up mqtt installs it)");
    child.stdin.take().unwrap().write_all(payloads.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "mosquitto_pub failed");
}

impl Drop for MqttBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy on a port of its own in front of a real server, which a test can cut: `down` closes every
/// connection and refuses new ones (as a server that went away), `up` accepts again. For outages of services
/// that this machine shares with other users (PostgreSQL on 5432), which a test must not stop itself.
pub struct CuttableProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CuttableProxy {
    pub fn start(target: &str) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (up2, gen2, target) = (up.clone(), generation.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else { continue };
                let born = gen2.load(Ordering::SeqCst);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    let (up3, gen3) = (up2.clone(), gen2.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        from.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            if !up3.load(Ordering::SeqCst) || gen3.load(Ordering::SeqCst) != born {
                                break;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        CuttableProxy { port, up, generation }
    }

    /// Close every connection and refuse new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Accept connections again.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A plain rdkafka consumer assigned partition 0 of `topic` from the beginning (no group membership), as the
/// benchmarks' limits read: with the worker's `fetch.queue.backoff.ms` (20 ms), since librdkafka's default 1 s
/// pause after a full prefetch queue would make the limit partly measure that sleep.
pub fn plain_consumer(topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("bench-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Seconds a plain rdkafka consumer takes to read the first `n` records of partition 0 of `topic` (assigned,
/// no group, nothing done with the records): the limit a sink is measured against. It gets the worker's
/// `fetch.queue.backoff.ms` (20 ms): with librdkafka's default 1 s pause after a full prefetch queue, the
/// limit would partly measure that sleep.
pub fn plain_consume_secs(topic: &str, n: usize) -> f64 {
    let consumer = plain_consumer(topic);
    let start = Instant::now();
    let mut read = 0;
    while read < n && start.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(read, n, "the plain consumer did not read every record");
    secs
}

/// The car-park pipeline's transform chain (ParseCsv, ParseTimestamp in Europe/London, ComputeField,
/// BuildStruct, InsertField, ValueToKey/ExtractField) with a DLQ, for the file-source and feed-source tests.
pub fn car_park_chain(dlq: &str) -> serde_json::Value {
    serde_json::json!({
        "transforms": "parse,ts,pct,location,source,key,keyName",
        "transforms.parse.type": "io.connectrs.transforms.ParseCsv$Value",
        "transforms.parse.columns": "date,time,NAME,CAPACITY:int32,EMPTY_PLACES:int32,STATUS,LATITUDE:float64,LONGITUDE:float64,DIRECTIONSURL",
        "transforms.ts.type": "io.connectrs.transforms.ParseTimestamp$Value",
        "transforms.ts.field": "TS",
        "transforms.ts.date.field": "date",
        "transforms.ts.time.field": "time",
        "transforms.ts.format": "yyyy-MM-dd HH:mm",
        "transforms.ts.timezone": "Europe/London",
        "transforms.ts.remove.sources": "true",
        "transforms.pct.type": "io.connectrs.transforms.ComputeField$Value",
        "transforms.pct.field": "PCT_FULL",
        "transforms.pct.expression": "(CAPACITY - EMPTY_PLACES) / CAPACITY * 100",
        "transforms.pct.field.type": "float64",
        "transforms.location.type": "io.connectrs.transforms.BuildStruct$Value",
        "transforms.location.field": "LOCATION",
        "transforms.location.fields": "lat=LATITUDE,lon=LONGITUDE",
        "transforms.location.remove.sources": "true",
        "transforms.source.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.source.static.field": "SOURCE",
        "transforms.source.static.value": "v2",
        "transforms.key.type": "org.apache.kafka.connect.transforms.ValueToKey",
        "transforms.key.fields": "NAME",
        "transforms.keyName.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.keyName.field": "NAME",
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dlq,
        "errors.deadletterqueue.topic.replication.factor": 1,
        "errors.deadletterqueue.context.headers.enable": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A topic that a worker creates only with its first record: the read waits for it within its timeout
    /// (it used to return nothing at once, which failed a WASM test in CI when the source started slowly).
    #[test]
    fn read_topic_full_waits_for_a_topic_that_does_not_exist_yet() {
        require_broker();
        let topic = unique("created-later");
        let writer = {
            let topic = topic.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                produce(&topic, &[(None, Some(b"late".to_vec()), vec![])]);
            })
        };
        let records = read_topic_full(&topic, 1, Duration::from_secs(30));
        writer.join().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].value.as_deref(), Some(&b"late"[..]));
    }
}
