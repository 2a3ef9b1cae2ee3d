//! The standalone herder: owns connectors and their tasks, starts and stops them, and reports status.
//!
//! Invariant: a task's failure or panic marks that task FAILED with its trace and touches nothing else.

use connect_core::connector::AnyConnector;
use connect_core::{Config, ConnectError, ConnectorContext, ConnectorType};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::connector_config::{self, CONNECTOR_CLASS, NAME, TASKS_MAX, TOPICS, TOPICS_REGEX};
use crate::errors::{ErrorHandler, ErrorPolicy, TaskMetrics, TaskMetricsSnapshot};
use crate::kafka::{client_config, TopicCreator, CONSUMER_DEFAULTS, PRODUCER_DEFAULTS};
use crate::offsets::OffsetStore;
use crate::pipeline::Pipeline;
use crate::registry::Registry;
use crate::restart::RestartPolicy;
use crate::sink_task::{sink_consumer, SinkTaskRunner};
use crate::source_task::SourceTaskRunner;
use crate::state::{ConnectorStore, StoredConnector, TargetState};
use crate::status::{ConnectorStateInfo, State, StatusCell, TaskStateInfo};
use std::collections::BTreeSet;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum HerderError {
    #[error("Connector {0} not found")]
    NotFound(String),
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

/// Topics a connector used, shared with its tasks.
pub type TrackedTopics = Arc<std::sync::Mutex<BTreeSet<String>>>;

/// Everything tasks share.
pub struct WorkerContext {
    pub worker: WorkerConfig,
    pub registry: Registry,
    pub offsets: Arc<OffsetStore>,
    pub worker_id: String,
    pub health: crate::health::HealthCell,
}

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

struct TaskHandle {
    status: StatusCell,
    metrics: Arc<TaskMetrics>,
    cancel: CancellationToken,
    supervisor: JoinHandle<()>,
    /// The config the task runs with (placeholders resolved).
    config: Config,
    /// The same with the connector's placeholders put back, for REST.
    shown_config: Config,
}

struct ConnectorEntry {
    /// As the user gave it: placeholders unresolved (served by REST, stored on disk).
    config: Config,
    /// With placeholders resolved when the connector last started; what the connector and its tasks run with.
    resolved: Config,
    kind: ConnectorType,
    instance: Arc<Mutex<AnyConnector>>,
    status: StatusCell,
    tasks: Vec<TaskHandle>,
    /// Bumped on every (re)start, so a scheduled automatic restart of an older incarnation does nothing.
    generation: u64,
    target: TargetState,
    /// `true` while PAUSED; tasks watch it.
    paused: watch::Sender<bool>,
    topics: TrackedTopics,
}

pub struct Herder {
    ctx: Arc<WorkerContext>,
    connectors: Mutex<BTreeMap<String, ConnectorEntry>>,
    me: Weak<Herder>,
    store: ConnectorStore,
}

/// The context a running connector gets.
struct RuntimeConnectorContext {
    name: String,
    status: StatusCell,
}

impl ConnectorContext for RuntimeConnectorContext {
    fn request_task_reconfiguration(&self) {
        tracing::warn!(connector = %self.name, "task reconfiguration requested; not supported yet, restart the connector to apply");
    }
    fn raise_error(&self, error: ConnectError) {
        tracing::error!(connector = %self.name, error = %error.chain(), "connector raised an error");
        self.status.fail(error.chain());
    }
}

type TaskFuture = Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>;

/// Everything needed to (re)build one task, owned, so its supervisor can restart it on its own.
#[derive(Clone)]
struct TaskSpec {
    ctx: Arc<WorkerContext>,
    name: String,
    connector_config: Config,
    instance: Arc<Mutex<AnyConnector>>,
    id: u32,
    task_config: Config,
    policy: RestartPolicy,
    /// Kept across restarts of the task.
    metrics: Arc<TaskMetrics>,
    paused: watch::Receiver<bool>,
    topics: TrackedTopics,
}

impl TaskSpec {
    /// Set up a task's runner: clients, converters, transforms. Errors here fail only this task.
    async fn build(&self, status: StatusCell, cancel: CancellationToken) -> Result<TaskFuture, ConnectError> {
        let (ctx, name, id) = (&self.ctx, self.name.as_str(), self.id);
        let worker = &ctx.worker;
        let pipeline = Pipeline::build(&ctx.registry, worker, &self.connector_config)?;
        let policy = ErrorPolicy::from_connector(&self.connector_config);
        let mut topics = TopicCreator::new(worker, &self.connector_config, self.topics.clone())?;
        if let Some(dlq) = &policy.dlq_topic {
            // Kafka Connect creates a missing DLQ topic with one partition and the configured replication.
            topics
                .ensure_with(dlq, 1, policy.dlq_replication_factor)
                .await
                .map_err(|e| e.context(format!("dead-letter queue topic {dlq}")))?;
        }
        let mut errors =
            ErrorHandler { policy, connector: name.to_string(), task_id: id, metrics: self.metrics.clone(), dlq_producer: None };
        let instance = self.instance.lock().await;
        match &*instance {
            AnyConnector::Source(connector) => {
                let producer: rdkafka::producer::FutureProducer =
                    client_config(worker, "producer", Some(&self.connector_config), PRODUCER_DEFAULTS)
                        .set("client.id", format!("connector-producer-{name}-{id}"))
                        .create()
                        .map_err(|e| crate::kafka::kafka_error("cannot create the Kafka producer", e))?;
                if errors.policy.dlq_topic.is_some() {
                    errors.dlq_producer = Some(producer.clone());
                }
                let runner = SourceTaskRunner {
                    connector: name.to_string(),
                    task_id: id,
                    task: connector.create_task(),
                    task_config: self.task_config.clone(),
                    pipeline,
                    errors,
                    producer,
                    topics,
                    offsets: ctx.offsets.clone(),
                    flush_interval: worker.offset_flush_interval,
                    shutdown_timeout: worker.task_shutdown_timeout,
                    cancel,
                    status,
                    paused: self.paused.clone(),
                    poll_cancel_safe: false,
                };
                Ok(Box::pin(runner.run()))
            }
            AnyConnector::Sink(connector) => {
                let mut consumer_config = client_config(worker, "consumer", Some(&self.connector_config), CONSUMER_DEFAULTS)
                    .set("group.id", format!("connect-{name}"))
                    .set("client.id", format!("connector-consumer-{name}-{id}"))
                    .clone();
                // A Java consumer setting librdkafka does not know: the runtime's batch size.
                let max_batch = match consumer_config.get("max.poll.records") {
                    Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        ConnectError::fatal(format!("Invalid value {v} for configuration max.poll.records: must be a positive integer"))
                    })?,
                    None => crate::sink_task::DEFAULT_MAX_POLL_RECORDS,
                };
                consumer_config.remove("max.poll.records");
                let (consumer, rebalances, approved) = sink_consumer(consumer_config)?;
                if errors.policy.dlq_topic.is_some() {
                    let producer = client_config(worker, "producer", Some(&self.connector_config), PRODUCER_DEFAULTS)
                        .set("client.id", format!("connector-dlq-producer-{name}-{id}"))
                        .create()
                        .map_err(|e| crate::kafka::kafka_error("cannot create the dead-letter queue producer", e))?;
                    errors.dlq_producer = Some(producer);
                }
                let topics = connect_core::config::parse_list(self.connector_config.get(TOPICS).map(String::as_str).unwrap_or(""));
                let topics_regex = self.connector_config.get(TOPICS_REGEX).filter(|r| !r.trim().is_empty()).cloned();
                let runner = SinkTaskRunner {
                    connector: name.to_string(),
                    task_id: id,
                    task: connector.create_task(),
                    task_config: self.task_config.clone(),
                    pipeline: Arc::new(pipeline),
                    errors: Arc::new(errors),
                    consumer: Arc::new(consumer),
                    rebalances,
                    approved,
                    topics,
                    topics_regex,
                    flush_interval: worker.offset_flush_interval,
                    max_batch,
                    cancel,
                    status,
                    originals: Arc::default(),
                    paused: self.paused.clone(),
                    tracked_topics: self.topics.clone(),
                };
                Ok(Box::pin(runner.run()))
            }
        }
    }

    /// Run the task; when it fails, restart it by the policy until it runs, is stopped, or runs out of
    /// attempts. A failure or panic marks this task FAILED and touches nothing else.
    async fn supervise(self, status: StatusCell, cancel: CancellationToken) {
        let mut attempt: u32 = 0;
        loop {
            let started = Instant::now();
            let outcome = match self.build(status.clone(), cancel.clone()).await {
                Ok(future) => match tokio::spawn(future).await {
                    Ok(result) => result,
                    Err(join) if join.is_panic() => {
                        Err(ConnectError::fatal(format!("task panicked: {}", panic_message(join.into_panic()))))
                    }
                    Err(_) => Ok(()),
                },
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok(()) => {
                    status.set(State::Unassigned);
                    return;
                }
                Err(e) => e,
            };
            tracing::error!(connector = %self.name, task = self.id, error = %error.chain(), "task failed");
            status.fail(error.chain());
            if cancel.is_cancelled() {
                return;
            }
            if started.elapsed() >= self.policy.reset_after {
                attempt = 0; // it ran healthily for a while: start the backoff over
            }
            attempt += 1;
            if !self.policy.allows(attempt) {
                if self.policy.enabled {
                    tracing::error!(connector = %self.name, task = self.id, attempts = attempt - 1, "giving up automatic restarts; restart through the REST API");
                }
                return;
            }
            let delay = self.policy.delay(attempt);
            status.schedule_restart(attempt, delay);
            tracing::warn!(connector = %self.name, task = self.id, attempt, delay_ms = delay.as_millis() as u64, "restarting failed task after backoff");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            status.set(State::Restarting);
        }
    }
}

impl Herder {
    pub fn new(ctx: Arc<WorkerContext>) -> Arc<Self> {
        let store = ConnectorStore::in_dir(&ctx.worker.state_dir());
        Arc::new_cyclic(|me| Herder { ctx, connectors: Mutex::new(BTreeMap::new()), me: me.clone(), store })
    }

    pub fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    fn policy(&self, connector_config: &Config) -> RestartPolicy {
        RestartPolicy::resolve(&self.ctx.worker.raw, connector_config)
    }

    /// Validate and start a connector. The config must contain `name`.
    pub async fn create(&self, config: Config) -> Result<ConnectorInfo, HerderError> {
        self.create_in_state(config, TargetState::Running).await
    }

    /// Check a full connector config; returns its name, type and plugin class.
    fn check_config(&self, config: &Config) -> Result<(String, ConnectorType, &'static str), HerderError> {
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
        let Some((kind, infos)) = connector_config::validate(&self.ctx.registry, &self.ctx.worker.providers, config) else {
            return Err(HerderError::BadRequest(format!(
                "Failed to find any class that implements Connector and which name matches {class}"
            )));
        };
        if infos.error_count > 0 {
            return Err(HerderError::BadRequest(connector_config::invalid_config_message(&infos)));
        }
        let plugin = self.ctx.registry.connector(class).expect("validated above");
        Ok((name, kind, plugin.class))
    }

    /// Create a connector in `target` state (`initial_state` of `POST /connectors`).
    pub async fn create_in_state(&self, config: Config, target: TargetState) -> Result<ConnectorInfo, HerderError> {
        let (name, _, _) = self.check_config(&config)?;
        let mut connectors = self.connectors.lock().await;
        if connectors.contains_key(&name) {
            return Err(HerderError::AlreadyExists(name));
        }
        self.insert_and_start(&mut connectors, &name, config, target, Vec::new()).await;
        self.persist(&connectors)?;
        Ok(info(&name, connectors.get(&name).expect("inserted")))
    }

    async fn insert_and_start(
        &self,
        connectors: &mut BTreeMap<String, ConnectorEntry>,
        name: &str,
        config: Config,
        target: TargetState,
        topics: Vec<String>,
    ) {
        let plugin = self.ctx.registry.connector(&config[CONNECTOR_CLASS]).expect("validated");
        let (paused, _) = watch::channel(target == TargetState::Paused);
        let entry = ConnectorEntry {
            kind: plugin.kind,
            instance: Arc::new(Mutex::new((plugin.create)())),
            status: StatusCell::new(&self.ctx.worker_id),
            tasks: Vec::new(),
            generation: 0,
            target,
            paused,
            topics: Arc::new(std::sync::Mutex::new(topics.into_iter().collect())),
            resolved: config.clone(),
            config,
        };
        connectors.insert(name.to_string(), entry);
        let entry = connectors.get_mut(name).expect("inserted");
        match target {
            TargetState::Stopped => entry.status.set(State::Stopped),
            TargetState::Running | TargetState::Paused => {
                self.start_connector(name, entry, 0).await;
                if target == TargetState::Paused && entry.status.get().state == State::Running {
                    entry.status.set(State::Paused);
                }
            }
        }
    }

    /// Write every connector's config and target state to the state directory.
    fn persist(&self, connectors: &BTreeMap<String, ConnectorEntry>) -> Result<(), HerderError> {
        let stored: BTreeMap<String, StoredConnector> = connectors
            .iter()
            .map(|(name, e)| {
                let topics = e.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                (name.clone(), StoredConnector { config: e.config.clone(), state: e.target, topics })
            })
            .collect();
        self.store.save(&stored).map_err(|e| HerderError::Internal(e.to_string()))
    }

    /// Bring back the connectors of the last run, in their target states.
    pub async fn restore(&self) -> Result<usize, HerderError> {
        let stored = self.store.load().map_err(|e| HerderError::Internal(e.to_string()))?;
        let mut connectors = self.connectors.lock().await;
        let mut restored = 0;
        for (name, s) in stored {
            if let Err(e) = self.check_config(&s.config) {
                tracing::error!(connector = %name, error = %e, "stored connector config is no longer valid; not started");
                continue;
            }
            self.insert_and_start(&mut connectors, &name, s.config, s.state, s.topics).await;
            restored += 1;
        }
        Ok(restored)
    }

    /// `PUT /connectors/{name}/config`: create, or replace the config and restart. `true`: created.
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
        let mut connectors = self.connectors.lock().await;
        if let Some(existing) = connectors.get(name) {
            if existing.config == config {
                return Ok((false, info(name, existing)));
            }
        }
        let (created, target, topics) = match connectors.remove(name) {
            None => (true, TargetState::Running, Vec::new()),
            Some(mut old) => {
                self.stop_connector(name, &mut old).await;
                let topics = old.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                (false, old.target, topics)
            }
        };
        self.insert_and_start(&mut connectors, name, config, target, topics).await;
        self.persist(&connectors)?;
        Ok((created, info(name, connectors.get(name).expect("inserted"))))
    }

    /// `PATCH /connectors/{name}/config`: change some keys (`None` removes one) and restart.
    pub async fn patch_config(&self, name: &str, patch: Vec<(String, Option<String>)>) -> Result<ConnectorInfo, HerderError> {
        let mut config = self.info(name).await?.config;
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
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        if entry.target == TargetState::Stopped {
            // Kafka Connect pauses a stopped connector without starting it.
            entry.target = TargetState::Paused;
        } else {
            entry.target = TargetState::Paused;
            entry.paused.send_replace(true);
            if entry.status.get().state == State::Running {
                entry.status.set(State::Paused);
            }
        }
        self.persist(&connectors)
    }

    /// `PUT /connectors/{name}/resume`: a PAUSED or STOPPED connector runs again.
    pub async fn resume(&self, name: &str) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let was = entry.target;
        entry.target = TargetState::Running;
        entry.paused.send_replace(false);
        match was {
            TargetState::Running => {}
            TargetState::Paused if entry.status.get().state != State::Stopped => {
                if entry.status.get().state == State::Paused {
                    entry.status.set(State::Running);
                }
            }
            _ => {
                entry.status.set(State::Restarting);
                self.start_connector(name, entry, 0).await;
            }
        }
        self.persist(&connectors)
    }

    /// `PUT /connectors/{name}/stop`: shut the tasks down and free their resources (idempotent).
    pub async fn stop(&self, name: &str) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        if entry.status.get().state != State::Stopped {
            self.stop_connector(name, entry).await;
        }
        entry.target = TargetState::Stopped;
        entry.status.set(State::Stopped);
        self.persist(&connectors)
    }

    /// Whether the connector is STOPPED (offsets may be changed only then), and its type.
    pub async fn stopped(&self, name: &str) -> Result<(bool, ConnectorType), HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        Ok((entry.target == TargetState::Stopped && entry.status.get().state == State::Stopped, entry.kind))
    }

    /// `GET /connectors/{name}/topics`.
    pub async fn topics(&self, name: &str) -> Result<Vec<String>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let topics = entry.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        Ok(topics)
    }

    /// `PUT /connectors/{name}/topics/reset`.
    pub async fn reset_topics(&self, name: &str) -> Result<(), HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        entry.topics.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.persist(&connectors)
    }

    /// Start the connector and its tasks. On failure the connector is FAILED and, by the restart
    /// policy, a new start is scheduled (`attempt` counts the automatic ones so far).
    async fn start_connector(&self, name: &str, entry: &mut ConnectorEntry, attempt: u32) {
        entry.generation += 1;
        let context = Arc::new(RuntimeConnectorContext { name: name.to_string(), status: entry.status.clone() });
        let max_tasks = entry.config.get(TASKS_MAX).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1).max(1);
        // Placeholders are resolved at every start, so a rotated secret is picked up by a restart.
        match self.ctx.worker.providers.transform(&entry.config) {
            Ok(resolved) => {
                crate::logging::hide_secrets(&resolved.secrets);
                entry.resolved = resolved.config;
            }
            Err(errors) => {
                let message = errors.into_values().collect::<Vec<_>>().join("\n");
                tracing::error!(connector = name, error = %message, "connector config placeholders cannot be resolved");
                entry.status.fail(message);
                self.schedule_connector_restart(name, entry, attempt + 1);
                return;
            }
        }
        let task_configs = {
            let mut instance = entry.instance.lock().await;
            let started = instance.as_connector_mut().start(context, entry.resolved.clone()).await;
            started.and_then(|_| instance.as_connector().task_configs(max_tasks)).and_then(|configs| {
                if configs.len() > max_tasks {
                    Err(ConnectError::fatal(format!("The connector {name} has generated {} tasks, which is greater than {max_tasks}, the maximum number of tasks it is configured to create.", configs.len())))
                } else {
                    Ok(configs)
                }
            })
        };
        let task_configs = match task_configs {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(connector = name, error = %e.chain(), "connector failed to start");
                entry.status.fail(e.chain());
                self.schedule_connector_restart(name, entry, attempt + 1);
                return;
            }
        };
        entry.status.set(State::Running);
        if attempt == 0 {
            entry.status.reset_restarts();
        }
        tracing::info!(connector = name, tasks = task_configs.len(), "connector started");
        // Reconcile: a task still running with the same config keeps running; every other slot gets a
        // fresh task (on a first start there are none to keep).
        let mut previous = std::mem::take(&mut entry.tasks).into_iter();
        for (id, task_config) in task_configs.into_iter().enumerate() {
            match previous.next() {
                Some(old) if !old.supervisor.is_finished() && old.config == task_config => entry.tasks.push(old),
                other => {
                    if let Some(mut old) = other {
                        self.stop_task(name, &mut old).await;
                    }
                    let handle = self.spawn_task(name, entry, id as u32, task_config);
                    entry.tasks.push(handle);
                }
            }
        }
        for mut extra in previous {
            self.stop_task(name, &mut extra).await;
        }
    }

    fn schedule_connector_restart(&self, name: &str, entry: &ConnectorEntry, attempt: u32) {
        let policy = self.policy(&entry.config);
        if !policy.allows(attempt) {
            return;
        }
        let delay = policy.delay(attempt);
        entry.status.schedule_restart(attempt, delay);
        let (me, name, generation) = (self.me.clone(), name.to_string(), entry.generation);
        tracing::warn!(connector = %name, attempt, delay_ms = delay.as_millis() as u64, "restarting failed connector after backoff");
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(herder) = me.upgrade() else { return };
            let mut connectors = herder.connectors.lock().await;
            // Only if nobody deleted, restarted or recreated it meanwhile.
            if let Some(entry) = connectors.get_mut(&name) {
                if entry.generation == generation && entry.status.get().state == State::Failed {
                    entry.status.set(State::Restarting);
                    herder.start_connector(&name, entry, attempt).await;
                }
            }
        });
    }

    fn spawn_task(&self, name: &str, entry: &ConnectorEntry, id: u32, task_config: Config) -> TaskHandle {
        let status = StatusCell::new(&self.ctx.worker_id);
        let cancel = CancellationToken::new();
        let metrics = Arc::new(TaskMetrics::default());
        let spec = TaskSpec {
            ctx: self.ctx.clone(),
            name: name.to_string(),
            connector_config: entry.resolved.clone(),
            instance: entry.instance.clone(),
            id,
            task_config: task_config.clone(),
            policy: self.policy(&entry.config),
            metrics: metrics.clone(),
            paused: entry.paused.subscribe(),
            topics: entry.topics.clone(),
        };
        let supervisor = tokio::spawn(spec.supervise(status.clone(), cancel.clone()));
        let shown_config = connect_core::config_provider::unresolve(&task_config, &entry.config, &entry.resolved);
        TaskHandle { status, metrics, cancel, supervisor, config: task_config, shown_config }
    }

    /// Stop one task and wait for it (bounded by the graceful timeout).
    async fn stop_task(&self, name: &str, task: &mut TaskHandle) {
        task.cancel.cancel();
        let grace = self.ctx.worker.task_shutdown_timeout + Duration::from_secs(2);
        if tokio::time::timeout(grace, &mut task.supervisor).await.is_err() {
            tracing::warn!(connector = name, "task did not stop within the graceful timeout; abandoning it");
            task.supervisor.abort();
        }
    }

    /// Stop a connector's tasks (in parallel, bounded by the shutdown timeout) and the connector.
    async fn stop_connector(&self, name: &str, entry: &mut ConnectorEntry) {
        entry.generation += 1;
        let mut tasks: Vec<TaskHandle> = entry.tasks.drain(..).collect();
        futures::future::join_all(tasks.iter_mut().map(|t| self.stop_task(name, t))).await;
        if let Err(e) = entry.instance.lock().await.as_connector_mut().stop().await {
            tracing::warn!(connector = name, error = %e.chain(), "connector stop failed");
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let mut entry = connectors.remove(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        self.stop_connector(name, &mut entry).await;
        self.persist(&connectors)
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`: stop the task and start it afresh (the backoff
    /// starts over).
    pub async fn restart_task(&self, name: &str, id: u32) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let index = id as usize;
        if index >= entry.tasks.len() {
            return Err(HerderError::NotFound(format!("Task {name}-{id} not found")));
        }
        self.stop_task(name, &mut entry.tasks[index]).await;
        let config = entry.tasks[index].config.clone();
        entry.tasks[index] = self.spawn_task(name, entry, id, config);
        Ok(())
    }

    /// `POST /connectors/{name}/restart`. Without `include_tasks` only the connector restarts. With
    /// `only_failed`, only instances that are FAILED restart. Returns the status as it was when the
    /// restart began, with the chosen instances marked RESTARTING (Kafka Connect's 202 body).
    pub async fn restart_connector(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<ConnectorStateInfo, HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let restart_connector = !only_failed || entry.status.get().state == State::Failed;
        let chosen: Vec<usize> = if include_tasks {
            entry.tasks.iter().enumerate().filter(|(_, t)| !only_failed || t.status.get().state == State::Failed).map(|(i, _)| i).collect()
        } else {
            Vec::new()
        };
        let mut snapshot = snapshot(name, entry);
        if restart_connector {
            snapshot.connector.status.state = State::Restarting;
        }
        for &i in &chosen {
            snapshot.tasks[i].status.state = State::Restarting;
            snapshot.tasks[i].status.trace = None;
        }
        if restart_connector {
            // Kafka Connect restarts the connector instance; its tasks keep running unless chosen.
            for &i in &chosen {
                self.stop_task(name, &mut entry.tasks[i]).await;
            }
            if let Err(e) = entry.instance.lock().await.as_connector_mut().stop().await {
                tracing::warn!(connector = name, error = %e.chain(), "connector stop failed");
            }
            entry.status.set(State::Restarting);
            entry.status.reset_restarts();
            // The chosen tasks are stopped (finished), so the reconciliation in start_connector replaces
            // them and keeps the others running.
            self.start_connector(name, entry, 0).await;
        } else {
            for &i in &chosen {
                self.stop_task(name, &mut entry.tasks[i]).await;
                let config = entry.tasks[i].config.clone();
                entry.tasks[i] = self.spawn_task(name, entry, i as u32, config);
            }
        }
        Ok(snapshot)
    }

    pub async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        let names: Vec<String> = connectors.keys().cloned().collect();
        let mut entries: Vec<(String, ConnectorEntry)> = names.into_iter().filter_map(|n| connectors.remove(&n).map(|e| (n, e))).collect();
        futures::future::join_all(entries.iter_mut().map(|(n, e)| self.stop_connector(n, e))).await;
    }

    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    pub async fn info(&self, name: &str) -> Result<ConnectorInfo, HerderError> {
        let connectors = self.connectors.lock().await;
        connectors.get(name).map(|e| info(name, e)).ok_or_else(|| HerderError::NotFound(name.to_string()))
    }

    pub async fn status(&self, name: &str) -> Result<ConnectorStateInfo, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        Ok(snapshot(name, entry))
    }

    /// Per-task counters (connect-rs extension; names follow Kafka Connect's task error metrics).
    pub async fn metrics(&self, name: &str) -> Result<Vec<(u32, TaskMetricsSnapshot)>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        Ok(entry.tasks.iter().enumerate().map(|(i, t)| (i as u32, t.metrics.snapshot())).collect())
    }

    pub async fn tasks(&self, name: &str) -> Result<Vec<TaskInfo>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        Ok(entry
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| TaskInfo { id: TaskId { connector: name.to_string(), task: i as u32 }, config: t.shown_config.clone() })
            .collect())
    }
}

fn snapshot(name: &str, entry: &ConnectorEntry) -> ConnectorStateInfo {
    ConnectorStateInfo::new(
        name.to_string(),
        entry.status.get(),
        entry.tasks.iter().enumerate().map(|(i, t)| TaskStateInfo { id: i as u32, status: t.status.get() }).collect(),
        entry.kind.as_str(),
    )
}

fn info(name: &str, entry: &ConnectorEntry) -> ConnectorInfo {
    ConnectorInfo {
        name: name.to_string(),
        config: entry.config.clone(),
        tasks: (0..entry.tasks.len() as u32).map(|task| TaskId { connector: name.to_string(), task }).collect(),
        kind: entry.kind.as_str(),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}
