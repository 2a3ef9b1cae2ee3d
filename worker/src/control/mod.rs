//! The control plane: the herder that owns connectors and their tasks, starts, stops, pauses and restarts
//! them, keeps their configs and target states, and answers what REST asks.
//!
//! Shape (issue #13): one owner, the [`actor`], applies every change (REST calls, automatic restarts) in
//! the order they arrive, so no two changes interleave and no task handle is stopped by two code paths at
//! once. Reads (status, config, tasks, metrics, topics) come from a [`view`] the owner publishes after
//! every change; they never wait for the owner, so `GET /connectors?expand=status` answers at once even
//! while a task is being stopped.
//!
//! Depends on `runtime`, `store`, `config`, `registry`; never on `rest` (REST calls it).

mod actor;
pub mod view;

use connect_core::{Config, ConnectorType};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::config::connector::{self, CONNECTOR_CLASS, NAME};
use crate::runtime::metrics::{TaskMetricsSnapshot, SAMPLE_INTERVAL};
use crate::runtime::pipeline::Pipeline;
use crate::runtime::status::{ConnectorStateInfo, State, Status, TaskStateInfo};
use crate::runtime::WorkerContext;
use crate::store::connectors::{ConnectorStore, TargetState};
use actor::Actor;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use view::View;
pub use view::{ConnectorInfo, LocalShare, TaskId, TaskInfo};

#[derive(Debug, thiserror::Error)]
pub enum HerderError {
    #[error("Connector {0} not found")]
    NotFound(String),
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    BadRequest(String),
    /// Kafka Connect's 409 for an operation that conflicts with another one under way.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

/// One connector of `GET /connectors?expand=...`, all read from one snapshot.
pub struct Expanded {
    pub name: String,
    pub status: Option<ConnectorStateInfo>,
    pub info: Option<ConnectorInfo>,
    /// Per task (connect-rs's `expand=metrics`).
    pub metrics: Option<Vec<(u32, TaskMetricsSnapshot)>>,
}

/// One change for the owner to apply.
type Job = Box<dyn for<'a> FnOnce(&'a mut Actor) -> BoxFuture<'a, ()> + Send>;

/// What a distributed worker's herder asks of its cluster (implemented by `distributed`): the config
/// topic's connectors, the status topic's statuses of connectors other workers run, and writes to the
/// config topic. This worker runs only the connectors assigned to it, through the cluster loop.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Every connector of the cluster: its config and target state.
    fn connectors(&self) -> BTreeMap<String, (Config, TargetState)>;
    /// One connector's config and target state.
    fn connector(&self, name: &str) -> Option<(Config, TargetState)>;
    /// The task configs last committed for a connector.
    fn task_configs(&self, name: &str) -> Vec<Config>;
    /// The connector's and its tasks' statuses as the worker running them last wrote them.
    fn remote_status(&self, name: &str) -> Option<(Status, Vec<(u32, Status)>)>;
    /// Create or replace a connector; `target` is written first when given (a new connector's initial state).
    async fn put_connector(&self, name: &str, config: &Config, target: Option<TargetState>) -> Result<(), HerderError>;
    async fn delete_connector(&self, name: &str) -> Result<(), HerderError>;
    async fn put_target(&self, name: &str, target: TargetState) -> Result<(), HerderError>;
    async fn request_restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), HerderError>;
}

/// The handle REST, the CLI's startup and automatic restarts use. Cheap to share.
pub struct Herder {
    ctx: Arc<WorkerContext>,
    jobs: mpsc::UnboundedSender<Job>,
    view: View,
    /// Distributed mode: the cluster; configs and target states live there.
    cluster: OnceLock<Arc<dyn Cluster>>,
}

impl Herder {
    /// Start the owner of the connectors on the current runtime (standalone: state kept in the state directory).
    pub fn new(ctx: Arc<WorkerContext>) -> Arc<Self> {
        let store = ConnectorStore::in_dir(&ctx.worker.state_dir());
        Self::start(ctx, Some(store))
    }

    /// A distributed worker's herder: no state file; [`Herder::join`] the cluster before serving REST.
    pub fn new_distributed(ctx: Arc<WorkerContext>) -> Arc<Self> {
        Self::start(ctx, None)
    }

    fn start(ctx: Arc<WorkerContext>, store: Option<ConnectorStore>) -> Arc<Self> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let view = View::default();
        let actor = Actor::new(ctx.clone(), jobs.downgrade(), view.clone(), store);
        tokio::spawn(actor.run(queue));
        tokio::spawn(sample_metrics(view.clone(), jobs.downgrade()));
        Arc::new(Herder { ctx, jobs, view, cluster: OnceLock::new() })
    }

    /// Distributed mode: from now on configs and target states are the cluster's.
    pub fn join(&self, cluster: Arc<dyn Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    fn cluster(&self) -> Option<&Arc<dyn Cluster>> {
        self.cluster.get()
    }

    /// The cluster's config and target state of `name`, or 404.
    fn cluster_connector(cluster: &Arc<dyn Cluster>, name: &str) -> Result<(Config, TargetState), HerderError> {
        cluster.connector(name).ok_or_else(|| HerderError::NotFound(name.to_string()))
    }

    fn kind_of(&self, config: &Config) -> ConnectorType {
        config
            .get(CONNECTOR_CLASS)
            .and_then(|class| self.ctx.registry.connector(class))
            .map(|plugin| plugin.kind)
            .unwrap_or(ConnectorType::Source)
    }

    /// A connector this worker does not run, as the cluster knows it.
    fn remote_info(&self, name: &str, config: Config) -> ConnectorInfo {
        let tasks = self.cluster().map(|c| c.task_configs(name).len()).unwrap_or(0) as u32;
        ConnectorInfo {
            name: name.to_string(),
            kind: self.kind_of(&config).as_str(),
            config,
            tasks: (0..tasks).map(|task| TaskId { connector: name.to_string(), task }).collect(),
        }
    }

    /// A connector's status in distributed mode: what runs here as it is now, the rest as the workers
    /// running it last wrote it to the status topic.
    fn cluster_status(&self, name: &str, config: &Config) -> ConnectorStateInfo {
        let kind = self.kind_of(config).as_str();
        let (mut connector, mut tasks) =
            self.cluster().and_then(|c| c.remote_status(name)).unwrap_or_else(|| (Status::unassigned(""), Vec::new()));
        let _ = self.view.with(name, |v| {
            if v.runs_instance() {
                connector = v.status.get();
            }
            for task in &v.tasks {
                match tasks.iter_mut().find(|(id, _)| *id == task.id) {
                    Some((_, status)) => *status = task.status.get(),
                    None => tasks.push((task.id, task.status.get())),
                }
            }
        });
        tasks.sort_by_key(|(id, _)| *id);
        ConnectorStateInfo::new(
            name.to_string(),
            connector,
            tasks.into_iter().map(|(id, status)| TaskStateInfo { id, status }).collect(),
            kind,
        )
    }

    /// Distributed mode: run or update this worker's `share` of `name` (the cluster loop calls this for
    /// what it owns).
    pub async fn apply_local(&self, name: &str, config: Config, target: TargetState, share: LocalShare) -> Result<(), HerderError> {
        self.check_config(&config)?;
        let name = name.to_string();
        self.apply(move |a| Box::pin(a.apply_local(name, config, target, share))).await
    }

    /// Distributed mode: stop `name` on this worker.
    pub async fn remove_local(&self, name: &str) {
        let name = name.to_string();
        let _ = self
            .apply(move |a| {
                Box::pin(async move {
                    a.remove_local(&name).await;
                    Ok(())
                })
            })
            .await;
    }

    /// Distributed mode: KIP-745 restart of a connector this worker runs.
    pub async fn restart_local(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<ConnectorStateInfo, HerderError> {
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.restart_connector(&name, include_tasks, only_failed).await })).await
    }

    /// The connectors this worker runs now.
    pub fn local_names(&self) -> Vec<String> {
        self.view.names()
    }

    /// Read one connector this worker runs.
    pub fn with_local<T>(&self, name: &str, read: impl FnOnce(&view::ConnectorView) -> T) -> Option<T> {
        self.view.with(name, read).ok()
    }

    pub fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    /// Hand a change to the owner and wait for its answer.
    async fn apply<T, F>(&self, change: F) -> Result<T, HerderError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Actor) -> BoxFuture<'a, Result<T, HerderError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |actor| {
            Box::pin(async move {
                let result = change(actor).await;
                // Publish before answering: a read sent after the answer must see the change.
                actor.publish();
                let _ = reply.send(result);
            })
        });
        self.jobs.send(job).map_err(|_| HerderError::Conflict("The worker is shutting down".into()))?;
        // A dropped reply means the change panicked; the owner logged it and goes on with the next one.
        answer.await.map_err(|_| HerderError::Internal("The operation failed unexpectedly; see the worker log".into()))?
    }

    /// Check a full connector config as Kafka Connect does before accepting it: the connector's keys,
    /// and that its converters, transforms and predicates exist and accept their settings. Returns the
    /// connector's name.
    fn check_config(&self, config: &Config) -> Result<String, HerderError> {
        let name = config
            .get(NAME)
            .cloned()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| HerderError::BadRequest("Connector config must contain a non-empty name".into()))?;
        if name.contains('/') {
            return Err(HerderError::BadRequest(format!("Connector name '{name}' may not contain '/'")));
        }
        let class =
            config.get(CONNECTOR_CLASS).ok_or_else(|| HerderError::BadRequest("Connector config must contain connector.class".into()))?;
        let Some((_, infos)) = connector::validate(&self.ctx.registry, &self.ctx.worker.providers, config) else {
            return Err(HerderError::BadRequest(format!(
                "Failed to find any class that implements Connector and which name matches {class}"
            )));
        };
        if infos.error_count > 0 {
            return Err(HerderError::BadRequest(connector::invalid_config_message(&infos)));
        }
        // Placeholders resolved above without errors; the pipeline is built as a task would build it.
        let resolved = self.ctx.worker.providers.transform(config).map(|r| r.config).unwrap_or_else(|_| config.clone());
        if let Err(e) = Pipeline::build(&self.ctx.registry, &self.ctx.worker, &resolved) {
            return Err(HerderError::BadRequest(format!(
                "Connector configuration is invalid and contains the following 1 error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
                crate::logging::redact(&e.to_string())
            )));
        }
        Ok(name)
    }

    /// Create a connector in `target` state (`initial_state` of `POST /connectors`).
    pub async fn create_in_state(&self, config: Config, target: TargetState) -> Result<ConnectorInfo, HerderError> {
        let name = self.check_config(&config)?;
        if let Some(cluster) = self.cluster() {
            if cluster.connector(&name).is_some() {
                return Err(HerderError::AlreadyExists(name));
            }
            cluster.put_connector(&name, &config, Some(target)).await?;
            return Ok(ConnectorInfo { kind: self.kind_of(&config).as_str(), name, config, tasks: Vec::new() });
        }
        self.apply(move |a| Box::pin(a.create(name, config, target))).await
    }

    /// Bring back the connectors of the last run, in their target states.
    pub async fn restore(&self) -> Result<usize, HerderError> {
        let stored = self.apply(|a| Box::pin(async { a.load_stored() })).await?;
        let mut restored = 0;
        for (name, s) in stored {
            if let Err(e) = self.check_config(&s.config) {
                tracing::error!(connector = %name, error = %e, "stored connector config is no longer valid; not started");
                continue;
            }
            self.apply(move |a| Box::pin(a.restore(name, s))).await?;
            restored += 1;
        }
        Ok(restored)
    }

    /// `PUT /connectors/{name}/config`: create, or replace the config and restart in the same target
    /// state. `true`: created.
    pub async fn put_config(&self, name: &str, mut config: Config) -> Result<(bool, ConnectorInfo), HerderError> {
        match config.get(NAME) {
            Some(n) if n != name => {
                return Err(HerderError::BadRequest(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            _ => {
                config.insert(NAME.into(), name.to_string());
            }
        }
        self.check_config(&config)?;
        if let Some(cluster) = self.cluster() {
            let existing = cluster.connector(name);
            let created = existing.is_none();
            if existing.is_none_or(|(old, _)| old != config) {
                cluster.put_connector(name, &config, None).await?;
            }
            return Ok((created, self.remote_info(name, config)));
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(a.put_config(name, config))).await
    }

    /// `PATCH /connectors/{name}/config`: change some keys (`None` removes one) and restart.
    pub async fn patch_config(&self, name: &str, patch: Vec<(String, Option<String>)>) -> Result<ConnectorInfo, HerderError> {
        let mut config = self.info(name)?.config;
        for (k, v) in patch {
            match v {
                Some(v) => config.insert(k, v),
                None => config.remove(&k),
            };
        }
        Ok(self.put_config(name, config).await?.1)
    }

    /// `PUT /connectors/{name}/pause`: tasks stop processing but keep their resources; kept across restarts.
    pub async fn pause(&self, name: &str) -> Result<(), HerderError> {
        if let Some(cluster) = self.cluster() {
            Self::cluster_connector(cluster, name)?;
            return cluster.put_target(name, TargetState::Paused).await;
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.pause(&name) })).await
    }

    /// `PUT /connectors/{name}/resume`: a PAUSED or STOPPED connector runs again.
    pub async fn resume(&self, name: &str) -> Result<(), HerderError> {
        if let Some(cluster) = self.cluster() {
            Self::cluster_connector(cluster, name)?;
            return cluster.put_target(name, TargetState::Running).await;
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.resume(&name).await })).await
    }

    /// `PUT /connectors/{name}/stop`: shut the tasks down and free their resources (idempotent).
    pub async fn stop(&self, name: &str) -> Result<(), HerderError> {
        if let Some(cluster) = self.cluster() {
            Self::cluster_connector(cluster, name)?;
            return cluster.put_target(name, TargetState::Stopped).await;
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.stop(&name).await })).await
    }

    pub async fn delete(&self, name: &str) -> Result<(), HerderError> {
        if let Some(cluster) = self.cluster() {
            Self::cluster_connector(cluster, name)?;
            return cluster.delete_connector(name).await;
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.delete(&name).await })).await
    }

    /// `PUT /connectors/{name}/topics/reset`.
    pub async fn reset_topics(&self, name: &str) -> Result<(), HerderError> {
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.reset_topics(&name) })).await
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`: stop the task and start it afresh (the backoff
    /// starts over).
    pub async fn restart_task(&self, name: &str, id: u32) -> Result<(), HerderError> {
        if let Some(cluster) = self.cluster() {
            Self::cluster_connector(cluster, name)?;
            if id as usize >= cluster.task_configs(name).len() {
                return Err(HerderError::NotFound(format!("Task {name}-{id} not found")));
            }
            if !self.view.with(name, |v| v.tasks.iter().any(|t| t.id == id)).unwrap_or(false) {
                // Forwarded here but not running here (it is moving): Kafka Connect's answer while rebalancing.
                return Err(HerderError::Conflict(format!(
                    "Cannot restart task {name}-{id}: the connector is moving between workers; try again"
                )));
            }
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.restart_task(&name, id).await })).await
    }

    /// `POST /connectors/{name}/restart`. Without `include_tasks` only the connector restarts. With
    /// `only_failed`, only instances that are FAILED restart. Returns the status as it was when the
    /// restart began, with the chosen instances marked RESTARTING (Kafka Connect's 202 body).
    pub async fn restart_connector(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<ConnectorStateInfo, HerderError> {
        if let Some(cluster) = self.cluster() {
            // Kafka Connect's way: a restart request in the config topic, carried out by the worker running it.
            let (_, target) = Self::cluster_connector(cluster, name)?;
            let mut answer = self.status(name)?;
            if !only_failed || answer.connector.status.state == State::Failed {
                answer.connector.status.state = State::Restarting;
            }
            if include_tasks {
                for task in answer.tasks.iter_mut().filter(|t| !only_failed || t.status.state == State::Failed) {
                    task.status.state = State::Restarting;
                    task.status.trace = None;
                }
            }
            if target != TargetState::Stopped {
                cluster.request_restart(name, include_tasks, only_failed).await?;
            }
            return Ok(answer);
        }
        let name = name.to_string();
        self.apply(move |a| Box::pin(async move { a.restart_connector(&name, include_tasks, only_failed).await })).await
    }

    /// Stop every connector (tasks commit what they wrote) and refuse changes from then on.
    pub async fn shutdown(&self) {
        let _ = self.apply(|a| Box::pin(async { a.shutdown().await })).await;
    }

    // Reads: from the published view, never waiting for the owner.

    // In distributed mode, a connector another worker runs is answered from the cluster's topics.

    pub fn names(&self) -> Vec<String> {
        match self.cluster() {
            Some(cluster) => cluster.connectors().into_keys().collect(),
            None => self.view.names(),
        }
    }

    pub fn info(&self, name: &str) -> Result<ConnectorInfo, HerderError> {
        match self.cluster() {
            // The config and tasks as the cluster last changed them (the running copy may be restarting).
            Some(cluster) => Ok(self.remote_info(name, Self::cluster_connector(cluster, name)?.0)),
            None => self.view.with(name, |v| v.info(name)),
        }
    }

    /// Read a connector from this worker's view, or (distributed mode, another worker runs it) from the
    /// cluster; in distributed mode a connector the config topic no longer has is a 404 even while this
    /// worker is still stopping it.
    fn read<T>(
        &self,
        name: &str,
        local: impl FnOnce(&view::ConnectorView) -> T,
        remote: impl FnOnce(Config, TargetState) -> T,
    ) -> Result<T, HerderError> {
        match self.cluster() {
            None => self.view.with(name, local),
            Some(cluster) => {
                let (config, target) = Self::cluster_connector(cluster, name)?;
                Ok(self.view.with(name, local).unwrap_or_else(|_| remote(config, target)))
            }
        }
    }

    pub fn status(&self, name: &str) -> Result<ConnectorStateInfo, HerderError> {
        match self.cluster() {
            None => self.view.with(name, |v| v.status(name)),
            Some(cluster) => Ok(self.cluster_status(name, &Self::cluster_connector(cluster, name)?.0)),
        }
    }

    /// `GET /connectors?expand=...`: every connector's status and info, all from one snapshot.
    pub fn expanded(&self, status: bool, info: bool, metrics: bool) -> Vec<Expanded> {
        let local = |name: &str, v: &view::ConnectorView| Expanded {
            name: name.to_string(),
            status: status.then(|| v.status(name)),
            info: info.then(|| v.info(name)),
            metrics: metrics.then(|| v.tasks.iter().map(|t| (t.id, t.metrics.snapshot())).collect()),
        };
        let Some(cluster) = self.cluster() else { return self.view.each(local) };
        cluster
            .connectors()
            .into_iter()
            .map(|(name, (config, _))| Expanded {
                status: status.then(|| self.cluster_status(&name, &config)),
                info: info.then(|| self.remote_info(&name, config.clone())),
                // Counters live on the workers running the tasks: here, those of the tasks that run here.
                metrics: metrics
                    .then(|| self.view.with(&name, |v| v.tasks.iter().map(|t| (t.id, t.metrics.snapshot())).collect()).unwrap_or_default()),
                name,
            })
            .collect()
    }

    /// Per-task counters (connect-rs extension; names follow Kafka Connect's task error metrics). In
    /// distributed mode they live on the worker running the connector (REST forwards there).
    pub fn metrics(&self, name: &str) -> Result<Vec<(u32, TaskMetricsSnapshot)>, HerderError> {
        self.read(name, |v| v.tasks.iter().map(|t| (t.id, t.metrics.snapshot())).collect(), |_, _| Vec::new())
    }

    pub fn tasks(&self, name: &str) -> Result<Vec<TaskInfo>, HerderError> {
        match self.cluster() {
            None => self.view.with(name, |v| v.task_infos(name)),
            // Every task as the config topic holds it, wherever it runs.
            Some(cluster) => {
                Self::cluster_connector(cluster, name)?;
                Ok(cluster
                    .task_configs(name)
                    .into_iter()
                    .enumerate()
                    .map(|(i, config)| TaskInfo { id: TaskId { connector: name.to_string(), task: i as u32 }, config })
                    .collect())
            }
        }
    }

    /// `GET /connectors/{name}/topics`.
    pub fn topics(&self, name: &str) -> Result<Vec<String>, HerderError> {
        self.read(name, |v| v.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect(), |_, _| Vec::new())
    }

    /// Whether the connector is STOPPED (offsets may be changed only then), and its type.
    pub fn stopped(&self, name: &str) -> Result<(bool, ConnectorType), HerderError> {
        match self.cluster() {
            None => self.view.with(name, |v| (v.is_stopped(), v.kind)),
            Some(cluster) => {
                let (config, target) = Self::cluster_connector(cluster, name)?;
                let status = self.cluster_status(name, &config);
                let tasks_gone = cluster.task_configs(name).is_empty() && self.view.with(name, |v| v.tasks.is_empty()).unwrap_or(true);
                let stopped = target == TargetState::Stopped && status.connector.status.state == State::Stopped && tasks_gone;
                Ok((stopped, self.kind_of(&config)))
            }
        }
    }
}

/// Every [`SAMPLE_INTERVAL`], keep each task's counters: rates, windowed averages and the status page's
/// sparklines come from these samples. Ends with the herder.
async fn sample_metrics(view: View, herder: mpsc::WeakUnboundedSender<Job>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if herder.upgrade().is_none() {
            return;
        }
        view.each(|_, connector| connector.tasks.iter().for_each(|task| task.metrics.sample()));
    }
}
