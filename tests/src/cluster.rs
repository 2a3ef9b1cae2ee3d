//! A `connect distributed` cluster for tests and the distributed benchmark: a nisshi broker of its own
//! (tansu 0.6.0's coordinator lets a member join a completed generation without the others rebalancing),
//! worker configs sharing a group and topics, and what the REST API says about where connectors run.

use crate::secured_broker::SecuredBroker;
use crate::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// One cluster: its broker, group and topics; short sessions so a killed worker is noticed soon.
pub struct TestCluster {
    broker: SecuredBroker,
    prefix: String,
}

impl TestCluster {
    pub fn new(name: &str, dir: &Path) -> Self {
        let prefix = unique(name);
        let broker_dir = dir.join("broker");
        std::fs::create_dir_all(&broker_dir).unwrap();
        TestCluster { broker: SecuredBroker::start_open(&broker_dir), prefix }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    pub fn count(&self, topic: &str) -> i64 {
        topic_count_at(&self.bootstrap(), topic)
    }

    pub fn topic(&self, which: &str) -> String {
        format!("{}-{which}", self.prefix)
    }

    pub fn setup(&self, dir: &Path, index: usize) -> WorkerSetup {
        let dir = dir.join(format!("worker-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut keys = distributed_keys(&self.bootstrap(), &self.prefix);
        // A killed worker's sink consumers hold their partitions for the consumer session (45 s by default).
        keys.extend(
            [("consumer.session.timeout.ms", "6000"), ("consumer.heartbeat.interval.ms", "1000")].map(|(k, v)| (k.into(), v.into())),
        );
        let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        WorkerSetup::new(&dir, &keys)
    }
}

/// A distributed worker's keys on `bootstrap`: the group `<prefix>-group` and the storage topics
/// `<prefix>-configs`, `-offsets`, `-status` (one replica; a 6 s session).
pub fn distributed_keys(bootstrap: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("bootstrap.servers", bootstrap.to_string()),
        ("group.id", format!("{prefix}-group")),
        ("config.storage.topic", format!("{prefix}-configs")),
        ("offset.storage.topic", format!("{prefix}-offsets")),
        ("status.storage.topic", format!("{prefix}-status")),
        ("config.storage.replication.factor", "1".into()),
        ("offset.storage.replication.factor", "1".into()),
        ("status.storage.replication.factor", "1".into()),
        ("offset.storage.partitions", "3".into()),
        ("status.storage.partitions", "2".into()),
        ("session.timeout.ms", "6000".into()),
        ("heartbeat.interval.ms", "1000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn source(file: &Path, topic: &str) -> Value {
    json!({"connector.class": "FileStreamSource", "tasks.max": "1", "file": file, "topic": topic})
}

/// POST a connector through `port`, retrying while the cluster is still forming (409).
pub fn create(port: u16, name: &str, config: Value) {
    let body = json!({"name": name, "config": config});
    wait_for_or_explain(
        &format!("connector {name} created"),
        Duration::from_secs(60),
        || {
            let (code, _) = http("POST", port, "/connectors", Some(&body));
            match code {
                201 => Some(()),
                409 => None,
                other => panic!("POST /connectors answered {other}"),
            }
        },
        || "the cluster never accepted it".into(),
    );
}

/// A task's state and the worker running it.
pub type TaskPlace = (String, String);

/// Every connector's (connector state, worker id, each task's state and worker) as `port` reports them.
pub fn statuses(port: u16) -> BTreeMap<String, (String, String, Vec<TaskPlace>)> {
    let (code, body) = http("GET", port, "/connectors?expand=status", None);
    assert_eq!(code, 200, "{body}");
    body.as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let s = &v["status"];
            let tasks = s["tasks"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| (t["state"].as_str().unwrap_or("?").to_string(), t["worker_id"].as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                name.clone(),
                (
                    s["connector"]["state"].as_str().unwrap_or("?").to_string(),
                    s["connector"]["worker_id"].as_str().unwrap_or("").to_string(),
                    tasks,
                ),
            )
        })
        .collect()
}

/// All of `names` RUNNING with every task RUNNING, instances and tasks on workers among `workers`, as
/// `port` sees it; where each connector instance runs.
pub fn all_running_on(port: u16, names: &BTreeSet<String>, workers: &BTreeSet<String>) -> Option<BTreeMap<String, String>> {
    let s = statuses(port);
    let mut placement = BTreeMap::new();
    for name in names {
        let (state, worker, tasks) = s.get(name)?;
        let task_elsewhere = tasks.iter().any(|(state, worker)| state != "RUNNING" || !workers.contains(worker));
        if state != "RUNNING" || tasks.is_empty() || task_elsewhere || !workers.contains(worker) {
            return None;
        }
        placement.insert(name.clone(), worker.clone());
    }
    Some(placement)
}

/// `kafka_connect_worker_task_startup_attempts_total` of one worker.
pub fn task_starts(port: u16) -> u64 {
    let (code, text) = http_text("GET", port, "/metrics");
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("kafka_connect_worker_task_startup_attempts_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the task start-up counter in /metrics")
}

pub fn http_text(method: &str, port: u16, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to REST");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (code, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

pub fn worker_id(setup: &WorkerSetup) -> String {
    format!("127.0.0.1:{}", setup.port)
}

/// Append numbered lines to a file a FileStreamSource reads.
pub fn append(path: &Path, range: std::ops::Range<usize>) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(numbered_lines(range, 32).as_bytes()).unwrap();
}
