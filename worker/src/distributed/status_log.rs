//! The status topic in Kafka Connect's format (`KafkaStatusBackingStore`): each worker writes the state of
//! the connectors and tasks it runs (`status-connector-<name>`, `status-task-<name>-<n>`), every worker
//! reads all of them, so any worker answers `GET /connectors?expand=status` and knows which worker runs a
//! connector (its `worker_id`, the host:port REST requests for that connector are forwarded to).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::kafka_log::{Apply, KafkaLog, LogError, TopicSpec};
use crate::config::WorkerConfig;
use crate::runtime::status::{State, Status};

#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    pub state: State,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i32,
}

impl StatusRecord {
    pub fn to_status(&self) -> Status {
        Status { state: self.state, trace: self.trace.clone(), ..Status::unassigned(&self.worker_id) }
    }
}

fn parse_state(s: &str) -> Option<State> {
    Some(match s {
        "UNASSIGNED" => State::Unassigned,
        "RUNNING" => State::Running,
        "PAUSED" => State::Paused,
        "STOPPED" => State::Stopped,
        "FAILED" => State::Failed,
        "RESTARTING" => State::Restarting,
        // DESTROYED (a deleted connector) and anything unknown: no status.
        _ => return None,
    })
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Unassigned => "UNASSIGNED",
        State::Running => "RUNNING",
        State::Paused => "PAUSED",
        State::Stopped => "STOPPED",
        State::Failed => "FAILED",
        State::Restarting => "RESTARTING",
    }
}

pub fn encode(record: &StatusRecord) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "state": state_name(record.state),
        "trace": record.trace,
        "worker_id": record.worker_id,
        "generation": record.generation,
    }))
    .expect("plain JSON")
}

fn decode(value: &[u8]) -> Option<StatusRecord> {
    let v: Value = serde_json::from_slice(value).ok()?;
    Some(StatusRecord {
        state: parse_state(v.get("state")?.as_str()?)?,
        trace: v.get("trace").and_then(Value::as_str).map(str::to_string),
        worker_id: v.get("worker_id").and_then(Value::as_str).unwrap_or_default().to_string(),
        generation: v.get("generation").and_then(Value::as_i64).unwrap_or(0) as i32,
    })
}

/// Every status the topic holds.
#[derive(Debug, Default, Clone)]
pub struct Statuses {
    pub connectors: BTreeMap<String, StatusRecord>,
    pub tasks: BTreeMap<String, BTreeMap<u32, StatusRecord>>,
}

/// Kafka Connect's `putSafe` rule, applied when reading: a status from another worker with an older
/// generation is a late write of a worker that no longer runs it, and is ignored.
fn supersedes(new: &StatusRecord, existing: Option<&StatusRecord>) -> bool {
    existing.is_none_or(|old| old.worker_id == new.worker_id || new.generation >= old.generation)
}

impl Statuses {
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        let record = value.and_then(decode);
        if let Some(name) = key.strip_prefix("status-connector-") {
            match record {
                Some(r) => {
                    if supersedes(&r, self.connectors.get(name)) {
                        self.connectors.insert(name.to_string(), r);
                    }
                }
                None => {
                    self.connectors.remove(name);
                    self.tasks.remove(name);
                }
            }
        } else if let Some((name, id)) =
            key.strip_prefix("status-task-").and_then(|rest| rest.rsplit_once('-')).and_then(|(n, id)| Some((n, id.parse::<u32>().ok()?)))
        {
            match record {
                Some(r) => {
                    let tasks = self.tasks.entry(name.to_string()).or_default();
                    if supersedes(&r, tasks.get(&id)) {
                        tasks.insert(id, r);
                    }
                }
                None => {
                    if let Some(tasks) = self.tasks.get_mut(name) {
                        tasks.remove(&id);
                    }
                }
            }
        }
    }
}

pub struct StatusLog {
    log: Arc<KafkaLog>,
    statuses: Arc<RwLock<Statuses>>,
}

impl StatusLog {
    pub async fn start(worker: &WorkerConfig, spec: &TopicSpec, client_id: &str) -> Result<Self, LogError> {
        let statuses = Arc::new(RwLock::new(Statuses::default()));
        let target = statuses.clone();
        let apply: Apply = Box::new(move |key, value, _, _| {
            target.write().unwrap_or_else(|p| p.into_inner()).apply(&String::from_utf8_lossy(key), value);
        });
        let log = KafkaLog::start(worker, spec, client_id, apply).await?;
        Ok(StatusLog { log, statuses })
    }

    pub fn read<T>(&self, read: impl FnOnce(&Statuses) -> T) -> T {
        read(&self.statuses.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Write the status of a connector instance (`task` `None`) or of one of its tasks.
    pub async fn put(&self, name: &str, task: Option<u32>, record: &StatusRecord) -> Result<(), LogError> {
        let key = match task {
            None => format!("status-connector-{name}"),
            Some(id) => format!("status-task-{name}-{id}"),
        };
        self.log.send(&key, Some(&encode(record))).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafka_connects_status_records() {
        let mut s = Statuses::default();
        s.apply("status-connector-my-src", Some(br#"{"state":"RUNNING","trace":null,"worker_id":"10.0.0.1:8083","generation":3}"#));
        s.apply("status-task-my-src-0", Some(br#"{"state":"FAILED","trace":"boom","worker_id":"10.0.0.2:8083","generation":3}"#));
        s.apply("status-task-my-src-1", Some(br#"{"state":"DESTROYED","worker_id":"x","generation":3}"#));
        assert_eq!(s.connectors["my-src"].worker_id, "10.0.0.1:8083");
        assert_eq!(s.tasks["my-src"][&0].state, State::Failed);
        assert_eq!(s.tasks["my-src"][&0].trace.as_deref(), Some("boom"));
        assert!(!s.tasks["my-src"].contains_key(&1));
        let record = StatusRecord { state: State::Paused, trace: None, worker_id: "w:1".into(), generation: 9 };
        s.apply("status-connector-b", Some(&encode(&record)));
        assert_eq!(s.connectors["b"], record);
        s.apply("status-connector-b", None);
        assert!(!s.connectors.contains_key("b"));
        // A late write from the worker that ran it before (older generation) does not win.
        let new_owner = StatusRecord { state: State::Running, trace: None, worker_id: "w:2".into(), generation: 5 };
        let old_owner = StatusRecord { state: State::Running, trace: None, worker_id: "w:1".into(), generation: 4 };
        s.apply("status-connector-c", Some(&encode(&new_owner)));
        s.apply("status-connector-c", Some(&encode(&old_owner)));
        assert_eq!(s.connectors["c"], new_owner);
    }
}
