//! Connector and task states, shaped as Kafka Connect's `ConnectorStateInfo`, plus connect-rs's extra
//! fields (restart count, next automatic restart, connector health) that Kafka Connect clients ignore.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Stopped,
    Failed,
    Restarting,
}

/// The state of a connector or one task, plus the trace of its failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    pub worker_id: String,
    /// Left out when empty, as Kafka Connect does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Automatic restarts since the last healthy run (connect-rs extension).
    #[serde(skip_serializing_if = "is_zero")]
    pub restart_count: u32,
    /// When the next automatic restart happens, in epoch milliseconds (connect-rs extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_restart_at_ms: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A status shared between a running task or connector and whoever reports on it.
#[derive(Debug, Clone)]
pub struct StatusCell(Arc<Mutex<Status>>);

impl Status {
    /// UNASSIGNED on `worker_id` (empty: no worker), with nothing else to say.
    pub fn unassigned(worker_id: &str) -> Self {
        Status { state: State::Unassigned, worker_id: worker_id.to_string(), trace: None, restart_count: 0, next_restart_at_ms: None }
    }
}

impl StatusCell {
    pub fn new(worker_id: &str) -> Self {
        StatusCell(Arc::new(Mutex::new(Status::unassigned(worker_id))))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn get(&self) -> Status {
        self.lock().clone()
    }
    /// A new state; the trace and the pending restart go (the restart count stays until reset).
    pub fn set(&self, state: State) {
        let mut s = self.lock();
        s.state = state;
        s.trace = None;
        s.next_restart_at_ms = None;
    }
    pub fn fail(&self, trace: String) {
        let mut s = self.lock();
        s.state = State::Failed;
        // A trace may quote a config value (a path, a URL with a password): secrets from providers are hidden.
        s.trace = Some(crate::logging::redact(&trace));
        s.next_restart_at_ms = None;
    }
    /// FAILED, with an automatic restart (number `count`) due after `delay`.
    pub fn schedule_restart(&self, count: u32, delay: Duration) {
        let mut s = self.lock();
        s.restart_count = count;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        s.next_restart_at_ms = Some((now + delay).as_millis() as u64);
    }
    pub fn reset_restarts(&self) {
        let mut s = self.lock();
        s.restart_count = 0;
        s.next_restart_at_ms = None;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskStateInfo {
    pub id: u32,
    #[serde(flatten)]
    pub status: Status,
}

/// How the connector's tasks are doing, so a connector whose tasks all failed, or that has none, never
/// reads as a plain RUNNING (connect-rs extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Every task is running.
    Healthy,
    /// Some tasks failed or are not running.
    Degraded,
    /// Every task failed.
    Failed,
    /// The connector runs no tasks.
    NoTasks,
    /// The connector itself is not running (paused, stopped, failed).
    NotRunning,
}

/// The connector part of `ConnectorStateInfo`, with connect-rs's health summary.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStatus {
    #[serde(flatten)]
    pub status: Status,
    pub health: Health,
}

/// `GET /connectors/{name}/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: ConnectorStatus,
    pub tasks: Vec<TaskStateInfo>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl ConnectorStateInfo {
    pub fn new(name: String, connector: Status, tasks: Vec<TaskStateInfo>, kind: &'static str) -> Self {
        let running = tasks.iter().filter(|t| t.status.state == State::Running).count();
        let failed = tasks.iter().filter(|t| t.status.state == State::Failed).count();
        let health = if connector.state != State::Running {
            Health::NotRunning
        } else if tasks.is_empty() {
            Health::NoTasks
        } else if failed == tasks.len() {
            Health::Failed
        } else if running == tasks.len() {
            Health::Healthy
        } else {
            Health::Degraded
        };
        ConnectorStateInfo { name, connector: ConnectorStatus { status: connector, health }, tasks, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u32, state: State) -> TaskStateInfo {
        let cell = StatusCell::new("w");
        cell.set(state);
        TaskStateInfo { id, status: cell.get() }
    }

    #[test]
    fn health_never_hides_failed_or_missing_tasks() {
        let running = StatusCell::new("w");
        running.set(State::Running);
        let r = running.get();
        assert_eq!(ConnectorStateInfo::new("c".into(), r.clone(), vec![], "source").connector.health, Health::NoTasks);
        assert_eq!(ConnectorStateInfo::new("c".into(), r.clone(), vec![task(0, State::Failed)], "source").connector.health, Health::Failed);
        assert_eq!(
            ConnectorStateInfo::new("c".into(), r.clone(), vec![task(0, State::Failed), task(1, State::Running)], "source")
                .connector
                .health,
            Health::Degraded
        );
        assert_eq!(ConnectorStateInfo::new("c".into(), r, vec![task(0, State::Running)], "source").connector.health, Health::Healthy);
    }

    #[test]
    fn kafka_connect_shape_with_extras_only_when_set() {
        let cell = StatusCell::new("127.0.0.1:8083");
        cell.set(State::Running);
        let json = serde_json::to_value(TaskStateInfo { id: 0, status: cell.get() }).unwrap();
        assert_eq!(json, serde_json::json!({"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083"}));
        cell.fail("boom".into());
        cell.schedule_restart(2, Duration::from_secs(4));
        let json = serde_json::to_value(TaskStateInfo { id: 0, status: cell.get() }).unwrap();
        assert_eq!(json["state"], "FAILED");
        assert_eq!(json["trace"], "boom");
        assert_eq!(json["restart_count"], 2);
        assert!(json["next_restart_at_ms"].as_u64().unwrap() > 0);
    }
}
