//! One task's life: build its runner (Kafka clients, converters, transforms), run it, and restart it by
//! the restart policy when it fails. A failure or panic marks only this task FAILED.
//!
//! [`TaskHandle`] is what the control plane holds of a running task; its [`TaskHandle::stop`] is
//! idempotent, so no code path can await a finished task twice.

use connect_core::connector::AnyConnector;
use connect_core::{Config, ConnectError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::config::connector::{TOPICS, TOPICS_REGEX};
use crate::kafka::deliveries::ticket_producer;
use crate::kafka::{
    client_config, dlq_producer, kafka_error, TopicCreator, TrackedTopics, CONSUMER_DEFAULTS, MAX_POLL_RECORDS, PRODUCER_DEFAULTS,
};
use crate::runtime::errors::{ErrorHandler, ErrorPolicy};
use crate::runtime::metrics::TaskMetrics;
use crate::runtime::paused::PauseGate;
use crate::runtime::pipeline::Pipeline;
use crate::runtime::restart::RestartPolicy;
use crate::runtime::sink::{sink_consumer, SinkTaskRunner, DEFAULT_MAX_POLL_RECORDS};
use crate::runtime::source::SourceTaskRunner;
use crate::runtime::status::{State, StatusCell};
use crate::runtime::WorkerContext;

/// How often a sink's consumer reports its partitions' lag.
const SINK_LAG_INTERVAL_MS: &str = "5000";

type TaskFuture = Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>;

/// Everything needed to (re)build one task, owned, so its supervisor can restart it on its own.
#[derive(Clone)]
pub struct TaskSpec {
    pub ctx: Arc<WorkerContext>,
    pub connector: String,
    /// The connector's config with placeholders resolved.
    pub connector_config: Config,
    pub instance: Arc<Mutex<AnyConnector>>,
    pub id: u32,
    pub task_config: Config,
    pub policy: RestartPolicy,
    /// Kept across restarts of the task.
    pub metrics: Arc<TaskMetrics>,
    pub paused: watch::Receiver<bool>,
    pub topics: TrackedTopics,
}

impl TaskSpec {
    /// Set up a task's runner: clients, converters, transforms. Errors here fail only this task.
    async fn build(&self, status: StatusCell, cancel: CancellationToken) -> Result<TaskFuture, ConnectError> {
        let (ctx, name, id) = (&self.ctx, self.connector.as_str(), self.id);
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
        let pause = PauseGate::new(self.paused.clone(), cancel.clone(), worker.offset_flush_interval);
        let instance = self.instance.lock().await;
        match &*instance {
            AnyConnector::Source(connector) => {
                let config = client_config(worker, "producer", Some(&self.connector_config), PRODUCER_DEFAULTS)?
                    .set("client.id", format!("connector-producer-{name}-{id}"))
                    .clone();
                let (producer, tickets) = ticket_producer(&config).map_err(|e| kafka_error("cannot create the Kafka producer", e))?;
                if errors.policy.dlq_topic.is_some() {
                    errors.dlq_producer = Some(dlq_producer(worker, &self.connector_config, name, id)?);
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
                    pause,
                    poll_cancel_safe: false,
                };
                Ok(Box::pin(runner.run(tickets)))
            }
            AnyConnector::Sink(connector) => {
                let mut consumer_config = client_config(worker, "consumer", Some(&self.connector_config), CONSUMER_DEFAULTS)?
                    .set("group.id", format!("connect-{name}"))
                    .set("client.id", format!("connector-consumer-{name}-{id}"))
                    .clone();
                // A Java consumer setting librdkafka does not know: the runtime's batch size.
                let max_batch = match consumer_config.get(MAX_POLL_RECORDS) {
                    Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        ConnectError::fatal(format!("Invalid value {v} for configuration max.poll.records: must be a positive integer"))
                    })?,
                    None => DEFAULT_MAX_POLL_RECORDS,
                };
                consumer_config.remove(MAX_POLL_RECORDS);
                // librdkafka's statistics carry each partition's lag (the status page and /metrics show it).
                if consumer_config.get("statistics.interval.ms").is_none() {
                    consumer_config.set("statistics.interval.ms", SINK_LAG_INTERVAL_MS);
                }
                let (consumer, rebalances, approved) = sink_consumer(consumer_config, self.metrics.clone())?;
                if errors.policy.dlq_topic.is_some() {
                    errors.dlq_producer = Some(dlq_producer(worker, &self.connector_config, name, id)?);
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
                    pause,
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
            let built = self.build(status.clone(), cancel.clone()).await;
            self.ctx.startup.task_started(built.is_ok());
            let outcome = match built {
                // Aborted with its supervisor: a task abandoned after the graceful timeout does not live on.
                Ok(future) => match AbortOnDropHandle::new(tokio::spawn(future)).await {
                    Ok(result) => result,
                    Err(join) if join.is_panic() => {
                        Err(ConnectError::fatal(format!("task panicked: {}", panic_message(join.into_panic()))))
                    }
                    Err(_) => Ok(()),
                },
                Err(e) => Err(e),
            };
            // Its consumer is gone: a lag it last reported would read as current (a silent lag alert).
            self.metrics.set_partition_lag(Vec::new());
            let error = match outcome {
                Ok(()) => {
                    status.set(State::Unassigned);
                    return;
                }
                Err(e) => e,
            };
            tracing::error!(connector = %self.connector, task = self.id, error = %error.chain(), "task failed");
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
                    tracing::error!(connector = %self.connector, task = self.id, attempts = attempt - 1, "giving up automatic restarts; restart through the REST API");
                }
                return;
            }
            let delay = self.policy.delay(attempt);
            status.schedule_restart(attempt, delay);
            tracing::warn!(connector = %self.connector, task = self.id, attempt, delay_ms = delay.as_millis() as u64, "restarting failed task after backoff");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            status.set(State::Restarting);
        }
    }
}

/// What the control plane holds of one task.
pub struct TaskHandle {
    pub status: StatusCell,
    pub metrics: Arc<TaskMetrics>,
    /// The config the task runs with (placeholders resolved).
    pub config: Config,
    /// The same with the connector's placeholders put back, for REST.
    pub shown_config: Config,
    /// The connector config it runs with (placeholders unresolved): with its task config, the pair it was
    /// started for.
    pub connector_config: Config,
    cancel: CancellationToken,
    /// `None` once stopped: stopping again returns at once.
    supervisor: Option<JoinHandle<()>>,
}

impl TaskHandle {
    /// Start a task under its supervisor.
    pub fn spawn(spec: TaskSpec, shown_config: Config, connector_config: Config) -> Self {
        let status = StatusCell::new(&spec.ctx.worker_id);
        let cancel = CancellationToken::new();
        let (metrics, config) = (spec.metrics.clone(), spec.task_config.clone());
        let supervisor = tokio::spawn(spec.supervise(status.clone(), cancel.clone()));
        TaskHandle { status, metrics, config, shown_config, connector_config, cancel, supervisor: Some(supervisor) }
    }

    /// Whether the task's supervisor still runs (it ends when the task stops or gives up restarting).
    pub fn is_alive(&self) -> bool {
        self.supervisor.as_ref().is_some_and(|s| !s.is_finished())
    }

    /// Whether [`TaskHandle::stop`] was called (a task that ended on its own, e.g. FAILED after its
    /// restarts gave up, was not).
    pub fn was_stopped(&self) -> bool {
        self.supervisor.is_none()
    }

    /// Stop the task and wait for it, at most `grace`; after that it is aborted. Idempotent.
    pub async fn stop(&mut self, connector: &str, grace: Duration) {
        self.cancel.cancel();
        let Some(mut supervisor) = self.supervisor.take() else { return };
        if tokio::time::timeout(grace, &mut supervisor).await.is_err() {
            tracing::warn!(connector, "task did not stop within the graceful timeout; abandoning it");
            supervisor.abort();
        }
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
