//! The config topic in Kafka Connect's format (`KafkaConfigBackingStore`): connector configs, target
//! states, task configs with their commit records, and restart requests. Values are JSON as Kafka
//! Connect's JsonConverter writes them with `schemas.enable=false`; an enveloped value
//! (`{"schema":..,"payload":..}`) is read too.
//!
//! Only the leader writes connector configs and target states (other workers forward REST writes to it);
//! the worker that runs a connector writes its task configs and commit record.

use connect_core::Config;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::kafka_log::{Apply, KafkaLog, LogError, TopicSpec};
use crate::config::WorkerConfig;
use crate::store::connectors::TargetState;

/// A KIP-745 restart request; `seq` (its offset in the topic) tells a request from an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartRequest {
    pub seq: i64,
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// Everything the config topic says, as of `offset`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigState {
    /// The offset of the last record applied (-1: none), Kafka Connect's "config offset".
    pub offset: i64,
    pub connectors: BTreeMap<String, Config>,
    /// Connectors without a target-state record are STARTED.
    pub targets: BTreeMap<String, TargetState>,
    /// Committed task configs.
    pub tasks: BTreeMap<String, Vec<Config>>,
    /// Per connector, the connector config its committed task configs were generated from (Kafka Connect's
    /// "applied connector config", KAFKA-9228): tasks run with that pair, and a connector config that changed
    /// since makes its task configs be written again even if they are the same, so its tasks pick up the
    /// change. Known when the commit record names it (connect-rs writes a digest of it, [`COMMIT_CONFIG_DIGEST`])
    /// and it is still the connector's config when the commit is read; otherwise absent, and tasks run with the
    /// connector's current config, as Kafka Connect's do.
    pub applied: BTreeMap<String, Config>,
    pub restarts: BTreeMap<String, RestartRequest>,
    /// Task configs read but not yet committed.
    pending_tasks: BTreeMap<String, BTreeMap<u32, Config>>,
}

impl ConfigState {
    pub fn new() -> Self {
        ConfigState { offset: -1, ..Default::default() }
    }

    pub fn target(&self, connector: &str) -> TargetState {
        self.targets.get(connector).copied().unwrap_or_default()
    }

    /// Apply one record of the topic.
    pub fn apply(&mut self, key: &str, value: Option<&Value>, offset: i64) {
        self.offset = self.offset.max(offset);
        let value = value.map(|v| match v.get("payload") {
            Some(payload) if v.get("schema").is_some() => payload,
            _ => v,
        });
        if let Some(name) = key.strip_prefix("connector-") {
            match value.and_then(|v| v.get("properties")).and_then(properties) {
                Some(config) => {
                    self.connectors.insert(name.to_string(), config);
                }
                None => {
                    // A tombstone (or a value we cannot read) deletes the connector.
                    self.connectors.remove(name);
                    self.targets.remove(name);
                    self.tasks.remove(name);
                    self.applied.remove(name);
                    self.pending_tasks.remove(name);
                    self.restarts.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            let state = value.and_then(|v| v.get("state.v2").or_else(|| v.get("state"))).and_then(Value::as_str);
            match state {
                Some("PAUSED") => self.targets.insert(name.to_string(), TargetState::Paused),
                Some("STOPPED") => self.targets.insert(name.to_string(), TargetState::Stopped),
                _ => self.targets.remove(name),
            };
        } else if let Some(rest) = key.strip_prefix("task-") {
            // `task-<connector>-<n>`: the number is after the last dash.
            if let Some((name, id)) = rest.rsplit_once('-').and_then(|(n, id)| Some((n, id.parse::<u32>().ok()?))) {
                if let Some(config) = value.and_then(|v| v.get("properties")).and_then(properties) {
                    self.pending_tasks.entry(name.to_string()).or_default().insert(id, config);
                }
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value.and_then(|v| v.get("tasks")).and_then(Value::as_u64).unwrap_or(0) as u32;
            let pending = self.pending_tasks.remove(name).unwrap_or_default();
            let configs: Option<Vec<Config>> = (0..count).map(|id| pending.get(&id).cloned()).collect();
            match configs {
                Some(configs) => {
                    self.tasks.insert(name.to_string(), configs);
                    let digest = value.and_then(|v| v.get(COMMIT_CONFIG_DIGEST)).and_then(Value::as_str);
                    match self.connectors.get(name) {
                        Some(config) if digest == Some(config_digest(config).as_str()) => {
                            self.applied.insert(name.to_string(), config.clone())
                        }
                        _ => self.applied.remove(name),
                    };
                }
                None => {
                    tracing::warn!(connector = name, "config topic: a commit record without all its task configs; kept the last committed")
                }
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            if let Some(v) = value {
                let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
                let request = RestartRequest { seq: offset, include_tasks: flag("include-tasks"), only_failed: flag("only-failed") };
                self.restarts.insert(name.to_string(), request);
            }
        }
    }
}

/// The commit record's field with the digest of the connector config the task configs were generated from.
/// Kafka Connect's reader takes `tasks` and ignores other fields.
pub const COMMIT_CONFIG_DIGEST: &str = "connector-config-digest";

/// A digest of a connector config that is the same on every worker and version: FNV-1a 64 over its keys and
/// values in order, as hex. (It tells configs apart; it is no protection against anyone.)
pub fn config_digest(config: &Config) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in config {
        for byte in key.bytes().chain([0]).chain(value.bytes()).chain([0]) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn properties(v: &Value) -> Option<Config> {
    v.as_object().map(|o| {
        o.iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Null => None,
                other => Some((k.clone(), other.to_string())),
            })
            .collect()
    })
}

pub fn connector_key(name: &str) -> String {
    format!("connector-{name}")
}

pub fn connector_value(config: &Config) -> Vec<u8> {
    serde_json::to_vec(&json!({ "properties": config })).expect("plain JSON")
}

pub fn target_state_value(state: TargetState) -> Vec<u8> {
    // STOPPED is written as PAUSED for workers that know only `state`, as Kafka Connect does.
    let (v1, v2) = match state {
        TargetState::Running => ("STARTED", "STARTED"),
        TargetState::Paused => ("PAUSED", "PAUSED"),
        TargetState::Stopped => ("PAUSED", "STOPPED"),
    };
    serde_json::to_vec(&json!({ "state": v1, "state.v2": v2 })).expect("plain JSON")
}

/// The config topic, followed; every change is published as a new [`ConfigState`].
pub struct ConfigLog {
    log: Arc<KafkaLog>,
    state: watch::Receiver<Arc<ConfigState>>,
}

const WRITE_VISIBLE: Duration = Duration::from_secs(30);

impl ConfigLog {
    pub async fn start(worker: &WorkerConfig, spec: &TopicSpec, client_id: &str) -> Result<Self, LogError> {
        let (tx, state) = watch::channel(Arc::new(ConfigState::new()));
        let apply: Apply = Box::new(move |key, value, _partition, offset| {
            let key = String::from_utf8_lossy(key);
            let value = value.and_then(|v| serde_json::from_slice::<Value>(v).ok());
            // Changed in place; copied only while a reader still holds the previous snapshot, so replaying
            // the topic at start is linear (a copy per record made it quadratic in the number of records).
            tx.send_modify(|state| Arc::make_mut(state).apply(&key, value.as_ref(), offset));
        });
        let log = KafkaLog::start(worker, spec, client_id, apply).await?;
        Ok(ConfigLog { log, state })
    }

    pub fn state(&self) -> Arc<ConfigState> {
        self.state.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ConfigState>> {
        self.state.clone()
    }

    /// Write records in order and return once this worker has read them back.
    pub async fn write(&self, records: &[(String, Option<Vec<u8>>)]) -> Result<(), LogError> {
        let mut last = None;
        for (key, value) in records {
            last = Some(self.log.send(key, value.as_deref()).await?);
        }
        if let Some((partition, offset)) = last {
            self.log.wait_for(partition, offset, WRITE_VISIBLE).await?;
        }
        Ok(())
    }

    pub async fn read_to_end(&self, timeout: Duration) -> Result<(), LogError> {
        self.log.read_to_end(timeout).await
    }

    /// Wait until the record at `offset` has been applied (`false` after `timeout`).
    pub async fn wait_for_offset(&self, offset: i64, timeout: Duration) -> bool {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(timeout, state.wait_for(|s| s.offset >= offset)).await;
        matches!(reached, Ok(Ok(_)))
    }

    pub async fn put_connector(&self, name: &str, config: &Config, target: Option<TargetState>) -> Result<(), LogError> {
        let mut records = Vec::new();
        if let Some(target) = target {
            // The target state first, so the connector never starts in the wrong state.
            records.push((format!("target-state-{name}"), Some(target_state_value(target))));
        }
        records.push((connector_key(name), Some(connector_value(config))));
        self.write(&records).await
    }

    pub async fn delete_connector(&self, name: &str) -> Result<(), LogError> {
        self.write(&[(connector_key(name), None), (format!("target-state-{name}"), None)]).await
    }

    pub async fn put_target(&self, name: &str, target: TargetState) -> Result<(), LogError> {
        self.write(&[(format!("target-state-{name}"), Some(target_state_value(target)))]).await
    }

    pub async fn request_restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), LogError> {
        let value = serde_json::to_vec(&json!({"include-tasks": include_tasks, "only-failed": only_failed})).expect("plain JSON");
        self.write(&[(format!("restart-connector-{name}"), Some(value))]).await
    }

    /// The task configs a connector generated, then the commit record that makes them current.
    /// `connector_config`: the connector config they were generated from, named in the commit record.
    pub async fn put_task_configs(&self, name: &str, configs: &[Config], connector_config: &Config) -> Result<(), LogError> {
        let mut records: Vec<(String, Option<Vec<u8>>)> = configs
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("task-{name}-{i}"), Some(serde_json::to_vec(&json!({ "properties": c })).expect("plain JSON"))))
            .collect();
        let commit = json!({"tasks": configs.len(), COMMIT_CONFIG_DIGEST: config_digest(connector_config)});
        records.push((format!("commit-{name}"), Some(serde_json::to_vec(&commit).expect("plain JSON"))));
        self.write(&records).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_all(records: &[(&str, Option<Value>)]) -> ConfigState {
        let mut state = ConfigState::new();
        for (offset, (key, value)) in records.iter().enumerate() {
            state.apply(key, value.as_ref(), offset as i64);
        }
        state
    }

    /// Records as a Kafka Connect 3.x worker writes them (KafkaConfigBackingStore, JsonConverter without schemas).
    #[test]
    fn reads_what_kafka_connect_writes() {
        let state = apply_all(&[
            ("connector-src", Some(json!({"properties": {"connector.class": "FileStreamSource", "tasks.max": "2", "name": "src"}}))),
            ("task-src-0", Some(json!({"properties": {"file": "/a"}}))),
            ("task-src-1", Some(json!({"properties": {"file": "/b"}}))),
            ("commit-src", Some(json!({"tasks": 2}))),
            ("target-state-src", Some(json!({"state": "PAUSED", "state.v2": "STOPPED"}))),
            ("connector-my-sink-1", Some(json!({"properties": {"connector.class": "FileStreamSink", "name": "my-sink-1"}}))),
            ("target-state-my-sink-1", Some(json!({"state": "PAUSED"}))),
            ("restart-connector-my-sink-1", Some(json!({"include-tasks": true, "only-failed": false}))),
            ("session-key", Some(json!({"key": "AAAA", "algorithm": "HmacSHA256", "creation-timestamp": 1}))),
        ]);
        assert_eq!(state.offset, 8);
        assert_eq!(state.connectors["src"]["tasks.max"], "2");
        assert_eq!(state.tasks["src"].len(), 2);
        assert_eq!(state.tasks["src"][1]["file"], "/b");
        assert_eq!(state.target("src"), TargetState::Stopped);
        assert_eq!(state.target("my-sink-1"), TargetState::Paused);
        assert_eq!(state.restarts["my-sink-1"], RestartRequest { seq: 7, include_tasks: true, only_failed: false });
    }

    #[test]
    fn a_tombstone_deletes_and_an_incomplete_commit_keeps_the_last_tasks() {
        let state = apply_all(&[
            ("connector-a", Some(json!({"properties": {"name": "a"}}))),
            ("task-a-0", Some(json!({"properties": {"x": "1"}}))),
            ("commit-a", Some(json!({"tasks": 1}))),
            ("task-a-0", Some(json!({"properties": {"x": "2"}}))),
            ("commit-a", Some(json!({"tasks": 2}))),
            ("connector-b", Some(json!({"schema": {"type": "struct"}, "payload": {"properties": {"name": "b"}}}))),
            ("connector-b", None),
        ]);
        assert_eq!(state.tasks["a"][0]["x"], "1");
        assert!(!state.connectors.contains_key("b"));
    }

    /// The connector config a commit names is the one tasks run with, until the next commit; a commit that
    /// names none (Kafka Connect's) or another config than the connector's applies none.
    #[test]
    fn a_commit_records_the_connector_config_its_task_configs_were_made_with() {
        let config = |v: &str| -> Config { [("name", "a"), ("v", v)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let commit = |v: &str| json!({"tasks": 1, COMMIT_CONFIG_DIGEST: config_digest(&config(v))});
        let mut state = apply_all(&[
            ("connector-a", Some(json!({"properties": config("1")}))),
            ("task-a-0", Some(json!({"properties": {"x": "1"}}))),
            ("commit-a", Some(commit("1"))),
            ("connector-a", Some(json!({"properties": config("2")}))),
        ]);
        assert_eq!(state.applied["a"]["v"], "1", "a new connector config is not applied until task configs are committed for it");
        state.apply("task-a-0", Some(&json!({"properties": {"x": "1"}})), 4);
        state.apply("commit-a", Some(&commit("2")), 5);
        assert_eq!(state.applied["a"]["v"], "2", "the same task configs, committed again for the new config");
        state.apply("connector-a", Some(&json!({"properties": config("3")})), 6);
        state.apply("task-a-0", Some(&json!({"properties": {"x": "1"}})), 7);
        state.apply("commit-a", Some(&commit("2")), 8);
        assert!(!state.applied.contains_key("a"), "a commit for config 2 read when the connector has config 3");
        state.apply("task-a-0", Some(&json!({"properties": {"x": "1"}})), 9);
        state.apply("commit-a", Some(&json!({"tasks": 1})), 10);
        assert!(!state.applied.contains_key("a"), "Kafka Connect's commit names no config");
        state.apply("commit-a", Some(&commit("3")), 11);
        state.apply("connector-a", None, 12);
        assert!(!state.applied.contains_key("a"), "deleted");
        assert_ne!(config_digest(&config("1")), config_digest(&config("2")));
    }

    #[test]
    fn writes_what_kafka_connect_reads() {
        let stopped: Value = serde_json::from_slice(&target_state_value(TargetState::Stopped)).unwrap();
        assert_eq!(stopped, json!({"state": "PAUSED", "state.v2": "STOPPED"}));
        let config: Config = [("name".to_string(), "a".to_string())].into_iter().collect();
        let value: Value = serde_json::from_slice(&connector_value(&config)).unwrap();
        assert_eq!(value, json!({"properties": {"name": "a"}}));
        let mut state = ConfigState::new();
        state.apply(&connector_key("a"), Some(&value), 0);
        assert_eq!(state.connectors["a"], config);
    }
}
