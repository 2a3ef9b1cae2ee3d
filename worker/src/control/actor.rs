//! The owner of the connectors: applies one change at a time, in the order changes arrive, and publishes
//! the view after each. Target states follow Kafka Connect: an update keeps the target state; restarts
//! of a STOPPED connector leave it STOPPED; a PAUSED connector restarts paused; a STOPPED connector that
//! is paused is PAUSED with no tasks, and `resume` starts it.
//!
//! Invariant: a task handle is stopped through [`TaskHandle::stop`], which is idempotent, and only by
//! this owner; nothing else holds one.

use connect_core::connector::AnyConnector;
use connect_core::{Config, ConnectError, ConnectorContext, ConnectorType};
use futures::FutureExt;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex};

use super::view::{ConnectorInfo, ConnectorView, LocalShare, TaskView, View};
use super::{HerderError, Job};
use crate::config::connector::{CONNECTOR_CLASS, TASKS_MAX};
use crate::kafka::TrackedTopics;
use crate::runtime::metrics::TaskMetrics;
use crate::runtime::restart::RestartPolicy;
use crate::runtime::status::{ConnectorStateInfo, State, StatusCell};
use crate::runtime::supervisor::{TaskHandle, TaskSpec};
use crate::runtime::WorkerContext;
use crate::store::connectors::{ConnectorStore, StoredConnector, TargetState};

struct ConnectorEntry {
    /// As the user gave it: placeholders unresolved (served by REST, stored on disk).
    config: Config,
    /// With placeholders resolved when the connector last started; what the connector and its tasks run with.
    resolved: Config,
    kind: ConnectorType,
    instance: Arc<Mutex<AnyConnector>>,
    /// Whether `instance` was started (and not stopped since): only then are there tasks to reconcile.
    started: bool,
    status: StatusCell,
    tasks: BTreeMap<u32, TaskHandle>,
    /// The task configs the started instance generated (resolved), and the same with placeholders put back.
    generated: Vec<Config>,
    generated_shown: Vec<Config>,
    /// Distributed mode: what of this connector runs here. `None` standalone: the instance and every task
    /// it generates.
    share: Option<LocalShare>,
    /// Bumped on every (re)start and stop, so a scheduled automatic restart of an older incarnation does nothing.
    generation: u64,
    target: TargetState,
    /// `true` while PAUSED; tasks watch it.
    paused: watch::Sender<bool>,
    topics: TrackedTopics,
}

impl ConnectorEntry {
    fn view(&self) -> ConnectorView {
        ConnectorView {
            config: self.config.clone(),
            kind: self.kind,
            target: self.target,
            status: self.status.clone(),
            tasks: self
                .tasks
                .iter()
                .map(|(id, t)| TaskView {
                    id: *id,
                    status: t.status.clone(),
                    metrics: t.metrics.clone(),
                    shown_config: t.shown_config.clone(),
                })
                .collect(),
            topics: self.topics.clone(),
            generated: self.generated_shown.clone(),
            share: self.share.clone(),
        }
    }

    fn runs_instance(&self) -> bool {
        LocalShare::runs_instance(self.share.as_ref())
    }

    fn topic_list(&self) -> Vec<String> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// The connector's state once it runs as its target says.
    fn settle_status(&self) {
        match self.target {
            TargetState::Running => self.status.set(State::Running),
            TargetState::Paused => self.status.set(State::Paused),
            TargetState::Stopped => self.status.set(State::Stopped),
        }
    }
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

pub struct Actor {
    ctx: Arc<WorkerContext>,
    connectors: BTreeMap<String, ConnectorEntry>,
    /// Standalone: the state file. Distributed: none (the config topic holds the state).
    store: Option<ConnectorStore>,
    view: View,
    /// For automatic restarts, which come back as changes of their own.
    jobs: mpsc::WeakUnboundedSender<Job>,
    shut_down: bool,
}

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(name.to_string())
}

impl Actor {
    pub fn new(ctx: Arc<WorkerContext>, jobs: mpsc::WeakUnboundedSender<Job>, view: View, store: Option<ConnectorStore>) -> Self {
        Actor { ctx, connectors: BTreeMap::new(), store, view, jobs, shut_down: false }
    }

    /// Apply changes one at a time until every handle is gone. A change that panics is logged and its
    /// caller gets an error; the owner goes on with the next. Each change publishes the view before its
    /// caller is answered (`Herder::apply`); automatic restarts are published here.
    pub async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = queue.recv().await {
            if AssertUnwindSafe(job(&mut self)).catch_unwind().await.is_err() {
                tracing::error!("a control-plane operation panicked; the connectors stay as they were left");
            }
            self.publish();
        }
    }

    pub(super) fn publish(&self) {
        self.view.publish(self.connectors.iter().map(|(name, e)| (name.clone(), e.view())).collect());
    }

    fn grace(&self) -> Duration {
        self.ctx.worker.task_shutdown_timeout + Duration::from_secs(2)
    }

    fn policy(&self, connector_config: &Config) -> RestartPolicy {
        RestartPolicy::resolve(&self.ctx.worker.raw, connector_config)
    }

    fn entry(&mut self, name: &str) -> Result<&mut ConnectorEntry, HerderError> {
        if self.shut_down {
            return Err(HerderError::Conflict("The worker is shutting down".into()));
        }
        self.connectors.get_mut(name).ok_or_else(|| not_found(name))
    }

    /// Write every connector's config and target state to the state directory.
    fn persist(&self) -> Result<(), HerderError> {
        let Some(store) = &self.store else { return Ok(()) };
        let stored: BTreeMap<String, StoredConnector> = self
            .connectors
            .iter()
            .map(|(name, e)| (name.clone(), StoredConnector { config: e.config.clone(), state: e.target, topics: e.topic_list() }))
            .collect();
        store.save(&stored).map_err(|e| HerderError::Internal(e.to_string()))
    }

    pub fn load_stored(&mut self) -> Result<BTreeMap<String, StoredConnector>, HerderError> {
        match &self.store {
            Some(store) => store.load().map_err(|e| HerderError::Internal(e.to_string())),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Distributed mode: run this worker's `share` of `name` with this config and target state, starting,
    /// replacing or re-targeting it as needed (the config was checked by the caller).
    pub async fn apply_local(&mut self, name: String, config: Config, target: TargetState, share: LocalShare) -> Result<(), HerderError> {
        match self.connectors.get(&name) {
            None => {
                if self.shut_down {
                    return Err(HerderError::Conflict("The worker is shutting down".into()));
                }
                self.insert_and_start(&name, config, target, Vec::new(), Some(share)).await;
                return Ok(());
            }
            Some(existing) if existing.config != config && existing.config.get(CONNECTOR_CLASS) != config.get(CONNECTOR_CLASS) => {
                // Another class: replaced in its new target state directly, so a stopped connector never runs its
                // new config. (Its tasks wait for task configs of the new class: see `task_connector_config`.)
                let topics = existing.topic_list();
                if let Some(mut old) = self.connectors.remove(&name) {
                    stop_connector_entry(&name, &mut old, self.grace()).await;
                }
                self.insert_and_start(&name, config, target, topics, Some(share)).await;
                return Ok(());
            }
            Some(_) => {}
        }
        let entry = self.connectors.get_mut(&name).expect("matched above");
        let was = entry.target;
        let instance_moved = entry.runs_instance() != share.instance;
        // A new config (same class): the instance restarts with it and generates new task configs, while the
        // tasks go on with the pair they run (the committed task configs and the connector config they were
        // committed with) until the new ones are committed; then each task whose pair changed restarts, once.
        let reconfigured = entry.config != config;
        if reconfigured {
            entry.config = config;
            if entry.runs_instance() {
                stop_instance(&name, entry).await;
            }
        }
        // The instance comes here, or restarts for a new config: it starts in its target state, except that a
        // STOPPED connector stays stopped and a pause of a STOPPED one leaves it PAUSED with no tasks until it
        // resumes.
        let start_here = (instance_moved || reconfigured)
            && share.instance
            && !entry.started
            && !matches!((was, target), (_, TargetState::Stopped) | (TargetState::Stopped, TargetState::Paused));
        if instance_moved && !share.instance {
            stop_instance(&name, entry).await;
        }
        entry.share = Some(share);
        if reconfigured && !entry.runs_instance() {
            self.resolve_connector_config(&name);
        }
        let entry = self.connectors.get_mut(&name).expect("matched above");
        if start_here {
            // So that a resume below starts it, whatever an earlier run here left in the cell.
            entry.status.set(State::Restarting);
        }
        if was != target {
            match target {
                TargetState::Running => self.resume(&name).await?, // starts the instance if it came here
                TargetState::Paused => self.pause(&name)?,
                TargetState::Stopped => self.stop(&name).await?,
            }
        }
        if start_here && (was == target || target == TargetState::Paused) {
            self.start_connector(&name, 0).await;
        }
        // Tasks run from the config topic's configs, even if the instance failed to start (which skips its own
        // reconciliation): a task revoked meanwhile must stop, one assigned must start.
        self.reconcile_tasks(&name).await;
        Ok(())
    }

    /// Distributed mode: stop `name` here (it was revoked or deleted); nothing if it does not run here.
    pub async fn remove_local(&mut self, name: &str) {
        if let Some(mut entry) = self.connectors.remove(name) {
            stop_connector_entry(name, &mut entry, self.grace()).await;
        }
    }

    pub async fn restore(&mut self, name: String, stored: StoredConnector) -> Result<(), HerderError> {
        if self.connectors.contains_key(&name) {
            return Ok(());
        }
        self.insert_and_start(&name, stored.config, stored.state, stored.topics, None).await;
        Ok(())
    }

    pub async fn create(&mut self, name: String, config: Config, target: TargetState) -> Result<ConnectorInfo, HerderError> {
        if self.shut_down {
            return Err(HerderError::Conflict("The worker is shutting down".into()));
        }
        if self.connectors.contains_key(&name) {
            return Err(HerderError::AlreadyExists(name));
        }
        self.insert_and_start(&name, config, target, Vec::new(), None).await;
        self.persist()?;
        Ok(self.connectors[&name].view().info(&name))
    }

    async fn insert_and_start(&mut self, name: &str, config: Config, target: TargetState, topics: Vec<String>, share: Option<LocalShare>) {
        let plugin = self.ctx.registry.connector(&config[CONNECTOR_CLASS]).expect("validated before");
        let (paused, _) = watch::channel(target == TargetState::Paused);
        let entry = ConnectorEntry {
            kind: plugin.kind,
            instance: Arc::new(Mutex::new((plugin.create)())),
            started: false,
            status: StatusCell::new(&self.ctx.worker_id),
            tasks: BTreeMap::new(),
            generated: Vec::new(),
            generated_shown: Vec::new(),
            share,
            generation: 0,
            target,
            paused,
            topics: Arc::new(std::sync::Mutex::new(topics.into_iter().collect())),
            resolved: config.clone(),
            config,
        };
        self.connectors.insert(name.to_string(), entry);
        let entry = &self.connectors[name];
        if target == TargetState::Stopped {
            entry.status.set(State::Stopped);
        } else if entry.runs_instance() {
            self.start_connector(name, 0).await;
        } else {
            // Only tasks run here: they need the connector config resolved, as the instance would have it.
            self.resolve_connector_config(name);
            self.connectors[name].settle_status();
            self.reconcile_tasks(name).await;
        }
    }

    /// `PUT .../config`: a changed config replaces the connector, which restarts in its target state.
    pub async fn put_config(&mut self, name: String, config: Config) -> Result<(bool, ConnectorInfo), HerderError> {
        if self.shut_down {
            return Err(HerderError::Conflict("The worker is shutting down".into()));
        }
        let (created, target, topics) = match self.connectors.get(&name) {
            None => (true, TargetState::Running, Vec::new()),
            Some(existing) if existing.config == config => return Ok((false, existing.view().info(&name))),
            Some(existing) => (false, existing.target, existing.topic_list()),
        };
        if let Some(mut old) = self.connectors.remove(&name) {
            stop_connector_entry(&name, &mut old, self.grace()).await;
        }
        self.insert_and_start(&name, config, target, topics, None).await;
        self.persist()?;
        Ok((created, self.connectors[&name].view().info(&name)))
    }

    /// PAUSED: tasks keep their resources but do no work. A STOPPED connector is not started for a pause
    /// (as in Kafka Connect): it is PAUSED with no tasks, and `resume` starts it.
    pub fn pause(&mut self, name: &str) -> Result<(), HerderError> {
        let entry = self.entry(name)?;
        entry.target = TargetState::Paused;
        entry.paused.send_replace(true);
        // A running connector's tasks go PAUSED; a STOPPED one is PAUSED with no tasks until it resumes.
        if matches!(entry.status.get().state, State::Running | State::Stopped) {
            entry.status.set(State::Paused);
        }
        self.persist()
    }

    /// A PAUSED or STOPPED connector runs again; a running one is left alone.
    pub async fn resume(&mut self, name: &str) -> Result<(), HerderError> {
        let entry = self.entry(name)?;
        let was = entry.target;
        entry.target = TargetState::Running;
        entry.paused.send_replace(false);
        if was != TargetState::Running {
            if !entry.runs_instance() {
                // Only tasks run here: those a stop ended start again.
                entry.settle_status();
                self.reconcile_tasks(name).await;
            } else if entry.started {
                if entry.status.get().state == State::Paused {
                    entry.status.set(State::Running);
                }
            } else if entry.status.get().state != State::Failed {
                // Never started, or stopped: start it now. (A FAILED one has a restart scheduled or given up;
                // its restart picks up the new target.)
                entry.status.set(State::Restarting);
                self.start_connector(name, 0).await;
            }
        }
        self.persist()
    }

    /// STOPPED: tasks shut down and their resources freed; idempotent.
    pub async fn stop(&mut self, name: &str) -> Result<(), HerderError> {
        let grace = self.grace();
        let entry = self.entry(name)?;
        stop_connector_entry(name, entry, grace).await;
        entry.target = TargetState::Stopped;
        entry.status.set(State::Stopped);
        self.persist()
    }

    pub async fn delete(&mut self, name: &str) -> Result<(), HerderError> {
        self.entry(name)?;
        let mut entry = self.connectors.remove(name).expect("checked above");
        stop_connector_entry(name, &mut entry, self.grace()).await;
        self.persist()
    }

    pub fn reset_topics(&mut self, name: &str) -> Result<(), HerderError> {
        self.entry(name)?.topics.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.persist()
    }

    pub async fn restart_task(&mut self, name: &str, id: u32) -> Result<(), HerderError> {
        let grace = self.grace();
        let entry = self.entry(name)?;
        let Some(task) = entry.tasks.get_mut(&id) else {
            return Err(HerderError::NotFound(format!("Task {name}-{id} not found")));
        };
        task.stop(name, grace).await;
        let (config, shown) = (task.config.clone(), task.shown_config.clone());
        let connector = self.task_connector_config(name);
        let handle = self.spawn_task(name, id, config, shown, &connector);
        self.connectors.get_mut(name).expect("checked above").tasks.insert(id, handle);
        Ok(())
    }

    /// KIP-745 restart. A STOPPED connector stays STOPPED (Kafka Connect restarts it into its target
    /// state); a PAUSED one restarts paused.
    pub async fn restart_connector(
        &mut self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<ConnectorStateInfo, HerderError> {
        let grace = self.grace();
        let entry = self.entry(name)?;
        // Distributed mode: only what runs here restarts; the workers running the rest do their part.
        let restart_connector = entry.runs_instance() && (!only_failed || entry.status.get().state == State::Failed);
        let chosen: Vec<u32> = if include_tasks {
            entry.tasks.iter().filter(|(_, t)| !only_failed || t.status.get().state == State::Failed).map(|(id, _)| *id).collect()
        } else {
            Vec::new()
        };
        let mut answer = entry.view().status(name);
        if restart_connector {
            answer.connector.status.state = State::Restarting;
        }
        for task in answer.tasks.iter_mut().filter(|t| chosen.contains(&t.id)) {
            task.status.state = State::Restarting;
            task.status.trace = None;
        }
        if entry.target == TargetState::Stopped {
            return Ok(answer); // nothing runs, so nothing restarts
        }
        for id in &chosen {
            if let Some(task) = entry.tasks.get_mut(id) {
                task.stop(name, grace).await;
            }
        }
        if restart_connector {
            // Kafka Connect restarts the connector instance; its tasks keep running unless chosen.
            if entry.started {
                if let Err(e) = entry.instance.lock().await.as_connector_mut().stop().await {
                    tracing::warn!(connector = name, error = %e.chain(), "connector stop failed");
                }
                entry.started = false;
            }
            entry.status.set(State::Restarting);
            entry.status.reset_restarts();
            // The chosen tasks are stopped, so the reconciliation in start_connector replaces them and keeps
            // the others running.
            self.start_connector(name, 0).await;
            if self.connectors[name].share.is_some() {
                // Distributed tasks run from the config topic's configs: they start again even if the
                // instance failed to.
                self.reconcile_tasks(name).await;
            }
        } else {
            let connector = self.task_connector_config(name);
            for id in chosen {
                let task = &self.connectors[name].tasks[&id];
                let (config, shown) = (task.config.clone(), task.shown_config.clone());
                let handle = self.spawn_task(name, id, config, shown, &connector);
                self.connectors.get_mut(name).expect("checked above").tasks.insert(id, handle);
            }
        }
        Ok(answer)
    }

    pub async fn shutdown(&mut self) -> Result<(), HerderError> {
        self.shut_down = true;
        let grace = self.grace();
        let mut entries: Vec<(String, ConnectorEntry)> = std::mem::take(&mut self.connectors).into_iter().collect();
        futures::future::join_all(entries.iter_mut().map(|(n, e)| stop_connector_entry(n, e, grace))).await;
        Ok(())
    }

    /// Start the connector and reconcile its tasks. On failure the connector is FAILED and, by the restart
    /// policy, a new start is scheduled (`attempt` counts the automatic ones so far).
    async fn start_connector(&mut self, name: &str, attempt: u32) {
        let worker_providers = &self.ctx.worker.providers;
        let entry = self.connectors.get_mut(name).expect("caller checked");
        entry.generation += 1;
        let context = Arc::new(RuntimeConnectorContext { name: name.to_string(), status: entry.status.clone() });
        let max_tasks = entry.config.get(TASKS_MAX).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1).max(1);
        // Placeholders are resolved at every start, so a rotated secret is picked up by a restart.
        match resolve_placeholders(worker_providers, &entry.config) {
            Ok(resolved) => entry.resolved = resolved,
            Err(message) => {
                self.ctx.startup.connector_started(false);
                tracing::error!(connector = name, error = %message, "connector config placeholders cannot be resolved");
                entry.status.fail(message);
                self.schedule_connector_restart(name, attempt + 1);
                return;
            }
        }
        let task_configs = {
            let mut instance = entry.instance.lock().await;
            let started = instance.as_connector_mut().start(context, entry.resolved.clone()).await;
            entry.started = started.is_ok();
            started.and_then(|_| instance.as_connector().task_configs(max_tasks)).and_then(|configs| {
                if configs.len() > max_tasks {
                    Err(ConnectError::fatal(format!("The connector {name} has generated {} tasks, which is greater than {max_tasks}, the maximum number of tasks it is configured to create.", configs.len())))
                } else {
                    Ok(configs)
                }
            })
        };
        self.ctx.startup.connector_started(task_configs.is_ok());
        let task_configs = match task_configs {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(connector = name, error = %e.chain(), "connector failed to start");
                entry.status.fail(e.chain());
                self.schedule_connector_restart(name, attempt + 1);
                return;
            }
        };
        entry.settle_status();
        if attempt == 0 {
            entry.status.reset_restarts();
        }
        tracing::info!(connector = name, tasks = task_configs.len(), "connector started");
        entry.generated_shown =
            task_configs.iter().map(|c| connect_core::config_provider::unresolve(c, &entry.config, &entry.resolved)).collect();
        entry.generated = task_configs;
        self.reconcile_tasks(name).await;
    }

    /// Resolve the connector config's placeholders into `resolved` for a worker that runs only some of
    /// its tasks (the instance resolves them at its start).
    fn resolve_connector_config(&mut self, name: &str) {
        let entry = self.connectors.get_mut(name).expect("caller checked");
        match resolve_placeholders(&self.ctx.worker.providers, &entry.config) {
            Ok(resolved) => entry.resolved = resolved,
            Err(message) => {
                tracing::error!(connector = name, error = %message, "connector config placeholders cannot be resolved; its tasks run unresolved");
            }
        }
    }

    /// Make the running tasks match what should run: standalone, what the instance generated; distributed,
    /// the tasks assigned here with the config topic's configs. A task still running (or FAILED on its own)
    /// with the same config is kept; every other one is replaced, and tasks no longer wanted stop.
    async fn reconcile_tasks(&mut self, name: &str) {
        let grace = self.grace();
        let entry = &self.connectors[name];
        if entry.target == TargetState::Stopped {
            return;
        }
        let connector = self.task_connector_config(name);
        let wanted: Vec<(u32, Config, Config)> = match &entry.share {
            // Task configs another class generated do not run on this one: its own are committed soon.
            Some(_) if connector.0.get(CONNECTOR_CLASS) != entry.config.get(CONNECTOR_CLASS) => Vec::new(),
            None => entry
                .generated
                .iter()
                .zip(&entry.generated_shown)
                .enumerate()
                .map(|(id, (config, shown))| (id as u32, config.clone(), shown.clone()))
                .collect(),
            Some(share) => share.tasks.iter().map(|(id, shown)| (*id, self.resolve_task_config(name, shown), shown.clone())).collect(),
        };
        let mut previous = std::mem::take(&mut self.connectors.get_mut(name).expect("caller checked").tasks);
        let mut kept = BTreeMap::new();
        let mut to_start = Vec::new();
        for (id, config, shown) in wanted {
            // A task still running with the same configs is kept; the replaced one stays in `previous` to stop.
            match previous.get(&id) {
                Some(old) if !old.was_stopped() && old.config == config && old.connector_config == connector.0 => {
                    kept.insert(id, previous.remove(&id).expect("just found"));
                }
                _ => to_start.push((id, config, shown)),
            }
        }
        // Every task replaced or no longer wanted stops (and stores its last offsets) before any new one starts:
        // a new config may hand task 0 what task 1 ran, and two tasks must never read one source partition or
        // start from an offset its old owner has yet to store (Kafka Connect's standalone herder stops them all first
        // too). This orders the tasks of this worker; workers read the config topic each on their own.
        futures::future::join_all(previous.values_mut().map(|t| t.stop(name, grace))).await;
        for (id, config, shown) in to_start {
            kept.insert(id, self.spawn_task(name, id, config, shown, &connector));
        }
        self.connectors.get_mut(name).expect("caller checked").tasks = kept;
    }

    /// A task config from the config topic with this worker's providers' values in place of placeholders.
    fn resolve_task_config(&self, name: &str, shown: &Config) -> Config {
        match resolve_placeholders(&self.ctx.worker.providers, shown) {
            Ok(resolved) => resolved,
            Err(message) => {
                tracing::error!(connector = name, error = %message, "task config placeholders cannot be resolved; the task runs unresolved");
                shown.clone()
            }
        }
    }

    /// Retry a failed connector start after the policy's backoff, as a change of its own, unless the
    /// connector was deleted, restarted or recreated meanwhile.
    fn schedule_connector_restart(&self, name: &str, attempt: u32) {
        let entry = &self.connectors[name];
        let policy = self.policy(&entry.config);
        if !policy.allows(attempt) {
            return;
        }
        let delay = policy.delay(attempt);
        entry.status.schedule_restart(attempt, delay);
        let (jobs, name, generation) = (self.jobs.clone(), name.to_string(), entry.generation);
        tracing::warn!(connector = %name, attempt, delay_ms = delay.as_millis() as u64, "restarting failed connector after backoff");
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(jobs) = jobs.upgrade() else { return };
            let job: Job = Box::new(move |actor: &mut Actor| {
                Box::pin(async move {
                    let current =
                        actor.connectors.get(&name).filter(|e| !actor.shut_down && e.generation == generation && e.runs_instance());
                    if current.is_some_and(|e| e.status.get().state == State::Failed) {
                        actor.connectors[&name].status.set(State::Restarting);
                        actor.start_connector(&name, attempt).await;
                    }
                })
            });
            let _ = jobs.send(job);
        });
    }

    /// The connector config its tasks run with, unresolved and resolved: distributed, the one the config topic
    /// committed their task configs with (so a task never runs new task configs with an old connector config,
    /// or the other way round); standalone, or when the topic does not say, the connector's own.
    fn task_connector_config(&self, name: &str) -> (Config, Config) {
        let entry = &self.connectors[name];
        match entry.share.as_ref().and_then(|s| s.connector_config.as_ref()) {
            Some(committed) if *committed != entry.config => (committed.clone(), self.resolve_task_config(name, committed)),
            _ => (entry.config.clone(), entry.resolved.clone()),
        }
    }

    /// `connector`: its connector config, unresolved and resolved ([`Self::task_connector_config`]).
    fn spawn_task(&self, name: &str, id: u32, task_config: Config, shown_config: Config, connector: &(Config, Config)) -> TaskHandle {
        let entry = &self.connectors[name];
        let spec = TaskSpec {
            ctx: self.ctx.clone(),
            connector: name.to_string(),
            connector_config: connector.1.clone(),
            instance: entry.instance.clone(),
            id,
            task_config,
            policy: self.policy(&connector.0),
            metrics: Arc::new(TaskMetrics::new()),
            paused: entry.paused.subscribe(),
            topics: entry.topics.clone(),
        };
        TaskHandle::spawn(spec, shown_config, connector.0.clone())
    }
}

/// A config with the providers' values in place of its placeholders (the values are hidden from the logs
/// from now on), or every placeholder's error, one per line.
fn resolve_placeholders(providers: &connect_core::config_provider::ConfigTransformer, config: &Config) -> Result<Config, String> {
    match providers.transform(config) {
        Ok(resolved) => {
            crate::logging::hide_secrets(&resolved.secrets);
            Ok(resolved.config)
        }
        Err(errors) => Err(errors.into_values().collect::<Vec<_>>().join("\n")),
    }
}

/// Stop a connector's tasks (in parallel, each bounded by `grace`) and the connector instance.
async fn stop_connector_entry(name: &str, entry: &mut ConnectorEntry, grace: Duration) {
    let mut tasks = std::mem::take(&mut entry.tasks);
    futures::future::join_all(tasks.values_mut().map(|t| t.stop(name, grace))).await;
    stop_instance(name, entry).await;
}

/// Stop the connector instance (its tasks are left as they are); a scheduled automatic restart of it
/// is called off.
async fn stop_instance(name: &str, entry: &mut ConnectorEntry) {
    entry.generation += 1;
    entry.generated.clear();
    entry.generated_shown.clear();
    if entry.started {
        if let Err(e) = entry.instance.lock().await.as_connector_mut().stop().await {
            tracing::warn!(connector = name, error = %e.chain(), "connector stop failed");
        }
        entry.started = false;
    }
}
