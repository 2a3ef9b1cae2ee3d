//! What REST reads: a snapshot of every connector that the owner publishes after each change, and the
//! REST shapes built from it. Statuses and counters are shared cells that tasks update live, so a
//! snapshot never goes stale on them; configs, task lists and target states change only through the owner.

use connect_core::{Config, ConnectorType};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::HerderError;
use crate::kafka::TrackedTopics;
use crate::runtime::metrics::TaskMetrics;
use crate::runtime::status::{ConnectorStateInfo, State, StatusCell, TaskStateInfo};
use crate::store::connectors::TargetState;

/// `{"connector","task"}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

/// `GET /connectors/{name}`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: Config,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `GET /connectors/{name}/tasks` entries.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: Config,
}

/// One task as REST sees it.
#[derive(Clone)]
pub struct TaskView {
    pub id: u32,
    pub status: StatusCell,
    pub metrics: Arc<TaskMetrics>,
    /// Placeholders as the user gave them.
    pub shown_config: Config,
}

/// One connector as REST sees it.
#[derive(Clone)]
pub struct ConnectorView {
    /// As the user gave it (placeholders unresolved).
    pub config: Config,
    pub kind: ConnectorType,
    pub target: TargetState,
    pub status: StatusCell,
    /// In task id order. Distributed mode: only the tasks this worker runs.
    pub tasks: Vec<TaskView>,
    pub topics: TrackedTopics,
    /// The task configs the connector instance last generated (placeholders unresolved); empty when it
    /// does not run here or is stopped.
    pub generated: Vec<Config>,
    /// Distributed mode: what of the connector runs here. `None` standalone (all of it).
    pub share: Option<LocalShare>,
}

/// Distributed mode: the part of a connector a worker runs, as the group assigned it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalShare {
    /// The connector instance (which generates the task configs).
    pub instance: bool,
    /// Task id → its config as the config topic holds it (placeholders unresolved).
    pub tasks: BTreeMap<u32, Config>,
    /// The connector config those task configs were committed with (unresolved), which the tasks run with;
    /// `None` when the config topic does not say (the connector's current config is used).
    pub connector_config: Option<Config>,
}

impl LocalShare {
    /// Whether a connector with this share runs its instance here (`None`: standalone, always).
    pub fn runs_instance(share: Option<&LocalShare>) -> bool {
        share.is_none_or(|s| s.instance)
    }
}

impl ConnectorView {
    pub fn info(&self, name: &str) -> ConnectorInfo {
        ConnectorInfo {
            name: name.to_string(),
            config: self.config.clone(),
            tasks: self.tasks.iter().map(|t| TaskId { connector: name.to_string(), task: t.id }).collect(),
            kind: self.kind.as_str(),
        }
    }

    pub fn status(&self, name: &str) -> ConnectorStateInfo {
        ConnectorStateInfo::new(
            name.to_string(),
            self.status.get(),
            self.tasks.iter().map(|t| TaskStateInfo { id: t.id, status: t.status.get() }).collect(),
            self.kind.as_str(),
        )
    }

    pub fn task_infos(&self, name: &str) -> Vec<TaskInfo> {
        self.tasks
            .iter()
            .map(|t| TaskInfo { id: TaskId { connector: name.to_string(), task: t.id }, config: t.shown_config.clone() })
            .collect()
    }

    /// Whether the connector instance runs here (always, standalone).
    pub fn runs_instance(&self) -> bool {
        LocalShare::runs_instance(self.share.as_ref())
    }

    /// STOPPED and its tasks gone: offsets may be changed.
    pub fn is_stopped(&self) -> bool {
        self.target == TargetState::Stopped && self.status.get().state == State::Stopped
    }
}

/// The published snapshot. The lock is held only to copy in or out, never across an await.
#[derive(Clone, Default)]
pub struct View(Arc<RwLock<BTreeMap<String, ConnectorView>>>);

impl View {
    pub fn publish(&self, connectors: BTreeMap<String, ConnectorView>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = connectors;
    }

    pub fn names(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Read every connector from one snapshot, in name order.
    pub fn each<T>(&self, mut read: impl FnMut(&str, &ConnectorView) -> T) -> Vec<T> {
        let connectors = self.0.read().unwrap_or_else(|p| p.into_inner());
        connectors.iter().map(|(name, view)| read(name, view)).collect()
    }

    /// Answer from one connector's view, or 404.
    pub fn with<T>(&self, name: &str, read: impl FnOnce(&ConnectorView) -> T) -> Result<T, HerderError> {
        let connectors = self.0.read().unwrap_or_else(|p| p.into_inner());
        connectors.get(name).map(read).ok_or_else(|| HerderError::NotFound(name.to_string()))
    }
}
