//! The sink task loop: consume → convert → transform → put → (periodically) pre_commit → commit.
//!
//! Invariant: a consumer offset is committed only when the task's `pre_commit` returned it, i.e. the
//! sink said everything before it is written. Offsets are the ORIGINAL coordinates, before transforms.

use connect_core::{
    Config, ConnectError, ErrantRecordReporter, OffsetMap, RecordData, SinkRecord, SinkTask, SinkTaskContext, TimestampType, TopicPartition,
};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message, Timestamp};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::kafka::kafka_error;
use crate::runtime::errors::{Disposition, ErrorHandler, Origin, RawRecord, Stage, TaskMetrics};
use crate::runtime::paused::{PauseEvent, PauseGate};
use crate::runtime::pipeline::Pipeline;
use crate::runtime::status::{State, StatusCell};

/// Records handed to one `put`, at most, unless `max.poll.records` says otherwise (Kafka's Java consumer
/// defaults to 500; fewer, larger batches let sinks write in bigger transactions, and a batch only takes what
/// is already fetched, so it adds no latency).
pub const DEFAULT_MAX_POLL_RECORDS: usize = 2000;

/// Partition assignment changes, from librdkafka's rebalance callback to the task loop.
pub enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// Consumer context: forwards rebalances, and on revocation commits what the task last approved so the
/// next owner does not redo it.
pub struct SinkConsumerContext {
    events: mpsc::UnboundedSender<RebalanceEvent>,
    approved: Arc<Mutex<OffsetMap>>,
}

impl ClientContext for SinkConsumerContext {}

fn tp_list(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
}

impl ConsumerContext for SinkConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = tp_list(tpl);
            let approved = self.approved.lock().unwrap_or_else(|p| p.into_inner());
            let mut commit = TopicPartitionList::new();
            for tp in &revoked {
                if let Some(off) = approved.get(tp) {
                    let _ = commit.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*off));
                }
            }
            if commit.count() > 0 {
                if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                    tracing::warn!(error = %e, "commit on partition revocation failed; the records since the last commit will be redelivered");
                }
            }
            let _ = self.events.send(RebalanceEvent::Revoked(revoked));
        }
    }
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let _ = self.events.send(RebalanceEvent::Assigned(tp_list(tpl)));
        }
    }
}

pub type SinkConsumer = StreamConsumer<SinkConsumerContext>;

/// A sink consumer, the channel its rebalances arrive on, and the offsets its revocation commits.
pub type SinkConsumerParts = (SinkConsumer, mpsc::UnboundedReceiver<RebalanceEvent>, Arc<Mutex<OffsetMap>>);

/// Build the consumer and the channel its rebalances arrive on.
pub fn sink_consumer(config: rdkafka::ClientConfig) -> Result<SinkConsumerParts, ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let approved = Arc::new(Mutex::new(OffsetMap::new()));
    let consumer: SinkConsumer = config
        .create_with_context(SinkConsumerContext { events: tx, approved: approved.clone() })
        .map_err(|e| kafka_error("cannot create the Kafka consumer", e))?;
    Ok((consumer, rx, approved))
}

pub struct SinkTaskRunner {
    pub connector: String,
    pub task_id: u32,
    pub task: Box<dyn SinkTask>,
    pub task_config: Config,
    /// Shared with the fetches, which run on a task of their own.
    pub pipeline: Arc<Pipeline>,
    pub errors: Arc<ErrorHandler>,
    pub consumer: Arc<SinkConsumer>,
    pub rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    pub approved: Arc<Mutex<OffsetMap>>,
    /// `topics` list, or `None` with `topics_regex` set.
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    pub flush_interval: Duration,
    /// `max.poll.records`: the most records one `put` gets.
    pub max_batch: usize,
    pub cancel: CancellationToken,
    pub status: StatusCell,
    /// Original bytes of the current batch's records, for the DLQ, kept only when a DLQ is configured.
    pub originals: Originals,
    /// The connector's PAUSED flag and this task's stop.
    pub pause: PauseGate,
    pub tracked_topics: crate::kafka::TrackedTopics,
}

/// Original bytes by (topic, partition, offset), shared between the sink loop and its reporter.
pub type Originals = Arc<Mutex<HashMap<(String, i32, i64), RawRecord>>>;

fn kafka_origin(topic: &str, partition: i32, offset: i64) -> Origin {
    Origin::Kafka { topic: topic.to_string(), partition, offset }
}

fn raw_record(message: &BorrowedMessage<'_>) -> RawRecord {
    RawRecord {
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers: message
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default(),
        timestamp: message.timestamp().to_millis(),
    }
}

/// The errant-record reporter a sink task gets: sends a record its target rejected to the DLQ (with the
/// bytes as consumed) or the log, by the connector's `errors.*` settings, and waits until the DLQ has it.
/// Unlike Kafka Connect, every sink gets one, so a write error reaches the DLQ without the connector
/// opting in; with `errors.tolerance=none` reporting fails the task, as in Kafka Connect.
pub struct DeadLetterReporter {
    errors: Arc<ErrorHandler>,
    originals: Originals,
    /// Records reported so far: a batch's written count is its size less what its `put` reported.
    reported: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl ErrantRecordReporter for DeadLetterReporter {
    async fn report(&self, record: &SinkRecord, error: &ConnectError) -> Result<(), ConnectError> {
        let key = (record.original_topic().to_string(), record.original_partition(), record.original_offset());
        let raw = self.originals.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let origin = kafka_origin(&key.0, key.1, key.2);
        let error = ConnectError::new(error.kind(), error.to_string());
        self.reported.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.errors.handle(Stage::TaskPut, "SinkTask", &origin, raw.as_ref(), error)? {
            Disposition::Skipped => Ok(()),
            Disposition::DeadLettered(d) => self.errors.confirm(d).await,
        }
    }
}

/// Apply queued rebalance events: `open` assigned partitions, `close` revoked ones (returned).
async fn handle_rebalances(
    rebalances: &mut mpsc::UnboundedReceiver<RebalanceEvent>,
    task: &mut dyn SinkTask,
    tracked_topics: &crate::kafka::TrackedTopics,
    context: &SinkTaskContext,
    positions: &mut OffsetMap,
) -> Result<Vec<TopicPartition>, ConnectError> {
    let mut all_revoked = Vec::new();
    while let Ok(event) = rebalances.try_recv() {
        match event {
            RebalanceEvent::Assigned(parts) => {
                tracked_topics.lock().unwrap_or_else(|p| p.into_inner()).extend(parts.iter().map(|tp| tp.topic.clone()));
                let mut all = context.assignment();
                all.extend(parts.iter().cloned());
                context.set_assignment(all);
                task.open(&parts).await.map_err(|e| e.context("open failed"))?;
            }
            RebalanceEvent::Revoked(parts) => {
                task.close(&parts).await.map_err(|e| e.context("close failed"))?;
                context.set_assignment(context.assignment().into_iter().filter(|tp| !parts.contains(tp)).collect());
                for tp in &parts {
                    positions.remove(tp);
                }
                all_revoked.extend(parts);
            }
        }
    }
    Ok(all_revoked)
}

impl SinkTaskRunner {
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let reporter = Arc::new(DeadLetterReporter { errors: self.errors.clone(), originals: self.originals.clone(), reported: 0.into() });
        let context = SinkTaskContext::new(self.connector.clone(), self.task_id, Some(reporter.clone()));
        self.task.start(context.clone(), self.task_config.clone()).await.map_err(|e| e.context("task start failed"))?;
        let subscription: Vec<String> = match &self.topics_regex {
            Some(re) => vec![format!("^{}", re.trim_start_matches('^'))],
            None => self.topics.clone(),
        };
        let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
        self.consumer.subscribe(&refs).map_err(|e| kafka_error("cannot subscribe", e))?;
        self.status.set(State::Running);
        tracing::info!(connector = %self.connector, task = self.task_id, topics = ?subscription, "sink task running");

        let mut positions = OffsetMap::new();
        let result = self.main_loop(&context, &reporter, &mut positions).await;
        let counts = self.errors.metrics.snapshot();
        tracing::info!(connector = %self.connector, task = self.task_id, read = counts.records_read, written = counts.records_written, "sink task stopping");
        // Commit what was written before leaving, also after an error: positions hold only batches that
        // were put completely, and pre_commit decides. A failing pre_commit after an error is only logged.
        let committed = match (&result, self.commit(&mut positions, CommitMode::Sync).await) {
            (Err(_), Err(e)) => {
                tracing::warn!(connector = %self.connector, task = self.task_id, error = %e.chain(), "final commit after a failure failed");
                Ok(())
            }
            (_, c) => c,
        };
        let assigned = context.assignment();
        let closed = self.task.close(&assigned).await;
        let stopped = self.task.stop().await;
        result.and(committed).and(closed).and(stopped)
    }

    /// Puts each batch while the next one is fetched and converted: a sink waiting on its target (a database
    /// parsing a COPY, an HTTP response) no longer leaves the worker idle. Puts stay strictly in order, one at a
    /// time, and rebalances, rewinds and commits happen between them.
    async fn main_loop(
        &mut self,
        context: &SinkTaskContext,
        reporter: &DeadLetterReporter,
        positions: &mut OffsetMap,
    ) -> Result<(), ConnectError> {
        let mut last_commit = Instant::now();
        let mut pending_seeks: OffsetMap = OffsetMap::new();
        // The next batch to put, converted while the one before it was put.
        let mut ready: Option<Batch> = None;
        let fetcher = Fetcher {
            connector: self.connector.clone(),
            consumer: self.consumer.clone(),
            pipeline: self.pipeline.clone(),
            errors: self.errors.clone(),
            originals: self.originals.clone(),
            max_batch: self.max_batch,
            cancel: self.cancel.clone(),
        };
        loop {
            // The fetch that brought `ready` may have assigned partitions: `open` them before any of their records
            // is put (as Kafka Connect does in its rebalance callback). Records of partitions revoked meanwhile, or
            // rewound by the task (in `open` or `put`), are dropped: the new owner or the seek fetches them again.
            let revoked = handle_rebalances(&mut self.rebalances, self.task.as_mut(), &self.tracked_topics, context, positions).await?;
            let requests = context.take_requests();
            pending_seeks.extend(requests.offsets);
            if let Some(batch) = ready.as_mut() {
                batch.retain_partitions(|tp| !revoked.contains(tp) && !pending_seeks.contains_key(tp));
            }
            if !revoked.is_empty() {
                // This task will not put those partitions' records again: their DLQ originals can go.
                self.originals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(topic, partition, _), _| !revoked.iter().any(|tp| tp.partition == *partition && tp.topic == *topic));
            }
            self.apply_seeks(&mut pending_seeks, positions);
            self.pause_resume(&requests.pause, &requests.resume);
            if requests.commit_requested || last_commit.elapsed() >= self.flush_interval {
                self.commit(positions, CommitMode::Async).await?;
                last_commit = Instant::now();
            }

            if self.pause.is_paused() {
                // PAUSED: stop fetching, keep committing; a pause longer than max.poll.interval.ms
                // makes the consumer leave its group and rejoin on resume (nothing is lost).
                let assigned = context.assignment();
                self.pause_resume(&assigned, &[]);
                self.status.set(State::Paused);
                loop {
                    match self.pause.wait(std::future::pending::<Option<()>>()).await {
                        PauseEvent::Resumed => break,
                        PauseEvent::Stopped => return Ok(()),
                        PauseEvent::FlushDue => self.commit(positions, CommitMode::Async).await?,
                        PauseEvent::Work(()) => {}
                    }
                }
                let assigned = context.assignment();
                self.pause_resume(&[], &assigned);
                self.status.set(State::Running);
                continue;
            }
            let wait = self.flush_interval.saturating_sub(last_commit.elapsed()).max(Duration::from_millis(10));
            let fetcher = fetcher.clone();
            let Some(mut batch) = ready.take().filter(|b| !b.records.is_empty() || !b.consumed.is_empty()) else {
                match fetcher.fetch(wait).await? {
                    Fetched::Batch(b) => ready = Some(b),
                    Fetched::Nothing => {}
                    Fetched::Stopped => return Ok(()),
                }
                continue;
            };
            // Records sent to the DLQ at conversion or transform must be there before their offsets count.
            for delivery in std::mem::take(&mut batch.dead_lettered) {
                self.errors.confirm(delivery).await?;
            }
            let reported_before = reporter.reported.load(std::sync::atomic::Ordering::Relaxed);
            let put = put_with_retry(
                self.task.as_mut(),
                PutScope { connector: &self.connector, task_id: self.task_id, errors: &self.errors, cancel: &self.cancel },
                context,
                &batch.records,
            );
            // On a task of its own, so that it runs on another thread while this one drives the put.
            let mut next = tokio::spawn(fetcher.fetch(wait));
            tokio::pin!(put);
            let mut fetched = None;
            let put_done = loop {
                tokio::select! {
                    done = &mut put => break done,
                    f = &mut next, if fetched.is_none() => fetched = Some(f),
                }
            };
            // A fetch still waiting for messages holds none yet (it converts within one poll, without awaiting):
            // aborting it loses nothing. One that finished just before the abort still hands over its batch.
            let fetched = match fetched {
                Some(f) => Some(f),
                None => {
                    next.abort();
                    match next.await {
                        Err(e) if e.is_cancelled() => None,
                        other => Some(other),
                    }
                }
            };
            let fetched = match fetched {
                Some(Ok(f)) => Some(f),
                Some(Err(e)) => Some(Err(ConnectError::fatal(format!("the fetch of the next batch failed: {e}")))),
                None => None,
            };
            if !put_done? {
                return Ok(()); // stopped mid-retry: the batch stays uncommitted
            }
            let reported = reporter.reported.load(std::sync::atomic::Ordering::Relaxed) - reported_before;
            TaskMetrics::add(&self.errors.metrics.records_written, (batch.records.len() as u64).saturating_sub(reported));
            // The originals of the next batch, converted meanwhile, stay for its `put`.
            self.originals.lock().unwrap_or_else(|p| p.into_inner()).retain(|(topic, partition, offset), _| {
                !batch.consumed.iter().any(|(tp, next)| tp.partition == *partition && tp.topic == *topic && offset < next)
            });
            for (tp, next) in batch.consumed {
                positions.insert(tp, next);
            }
            match fetched.transpose()? {
                Some(Fetched::Batch(b)) => ready = Some(b),
                Some(Fetched::Stopped) => return Ok(()),
                Some(Fetched::Nothing) | None => {}
            }
        }
    }
}

/// What one fetch brought.
enum Fetched {
    Batch(Batch),
    /// Nothing within the wait.
    Nothing,
    /// The task is stopping, or the consumer closed.
    Stopped,
}

/// Fetching and converting, apart from the task, so that it can run while the task puts the batch before.
#[derive(Clone)]
struct Fetcher {
    connector: String,
    consumer: Arc<SinkConsumer>,
    pipeline: Arc<Pipeline>,
    errors: Arc<ErrorHandler>,
    originals: Originals,
    max_batch: usize,
    cancel: CancellationToken,
}

impl Fetcher {
    /// The messages already fetched (up to `max.poll.records`), or the first to arrive within `wait`, converted.
    async fn fetch(self, wait: Duration) -> Result<Fetched, ConnectError> {
        let mut stream = self.consumer.stream().ready_chunks(self.max_batch);
        tokio::select! {
            _ = self.cancel.cancelled() => Ok(Fetched::Stopped),
            _ = tokio::time::sleep(wait.min(Duration::from_millis(500))) => Ok(Fetched::Nothing),
            chunk = stream.next() => match chunk {
                Some(messages) => Ok(Fetched::Batch(self.convert(messages)?)),
                None => Ok(Fetched::Stopped),
            },
        }
    }

    /// Convert consumed messages; conversion and transform errors go to the error policy.
    fn convert(&self, messages: Vec<rdkafka::error::KafkaResult<BorrowedMessage<'_>>>) -> Result<Batch, ConnectError> {
        let mut batch = Batch { records: Vec::with_capacity(messages.len()), consumed: Vec::new(), dead_lettered: Vec::new() };
        let keep_originals = self.errors.policy.dlq_topic.is_some();
        let mut originals = self.originals.lock().unwrap_or_else(|p| p.into_inner());
        TaskMetrics::add(&self.errors.metrics.records_read, messages.len() as u64);
        let mut outputs = Vec::new();
        for message in messages {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    let err = kafka_error("consuming failed", e);
                    if err.is_retriable() {
                        tracing::warn!(connector = %self.connector, error = %err.chain(), "consumer error; continuing");
                        continue;
                    }
                    return Err(err.context(format!("stage {}", Stage::KafkaConsume)));
                }
            };
            let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
            match batch.consumed.iter_mut().find(|(t, _)| t.partition == partition && t.topic == topic) {
                Some(entry) => entry.1 = offset + 1,
                None => batch.consumed.push((TopicPartition::new(topic, partition), offset + 1)),
            }
            // A failed record is dead-lettered with its bytes as consumed, or skipped, or fails the task.
            let mut fail = |stage: Stage, class: &str, error: ConnectError| -> Result<(), ConnectError> {
                let raw = raw_record(&message);
                if let Disposition::DeadLettered(d) =
                    self.errors.handle(stage, class, &kafka_origin(topic, partition, offset), Some(&raw), error)?
                {
                    batch.dead_lettered.push(d);
                }
                Ok(())
            };
            let (key_schema, key) = match self.pipeline.key_converter.to_connect(topic, message.key()) {
                Ok(k) => k,
                Err(e) => {
                    fail(Stage::KeyConverter, &self.pipeline.key_converter_class, e)?;
                    continue;
                }
            };
            let (value_schema, value) = match self.pipeline.value_converter.to_connect(topic, message.payload()) {
                Ok(v) => v,
                Err(e) => {
                    fail(Stage::ValueConverter, &self.pipeline.value_converter_class, e)?;
                    continue;
                }
            };
            let mut data = RecordData {
                topic: topic.to_string(),
                partition: Some(partition),
                key_schema,
                key,
                value_schema,
                value,
                timestamp: None,
                headers: Default::default(),
                kafka_offset: Some(offset),
            };
            let timestamp_type = match message.timestamp() {
                Timestamp::NotAvailable => TimestampType::NoTimestampType,
                Timestamp::CreateTime(t) => {
                    data.timestamp = Some(t);
                    TimestampType::CreateTime
                }
                Timestamp::LogAppendTime(t) => {
                    data.timestamp = Some(t);
                    TimestampType::LogAppendTime
                }
            };
            if let Some(headers) = message.headers() {
                let mut failed = false;
                for h in headers.iter() {
                    match self.pipeline.header_from_bytes(topic, h.key, h.value) {
                        Ok(header) => data.headers.0.push(header),
                        Err(e) => {
                            fail(Stage::HeaderConverter, &self.pipeline.header_converter_class, e)?;
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    continue;
                }
            }
            let mut record = SinkRecord::new(data, partition, offset, timestamp_type);
            if keep_originals {
                originals.insert((topic.to_string(), partition, offset), raw_record(&message));
            }
            if self.pipeline.transforms.is_empty() {
                batch.records.push(record);
                continue;
            }
            outputs.clear();
            let data = std::mem::take(&mut record.data);
            match self.pipeline.transforms.apply(data, &mut outputs) {
                Ok(()) => batch.records.extend(outputs.drain(..).map(|d| record.with_data(d))),
                Err(e) => {
                    let class = e.class.clone();
                    fail(Stage::Transformation, &class, ConnectError::data(e.to_string()))?;
                }
            }
        }
        Ok(batch)
    }
}

impl SinkTaskRunner {
    fn apply_seeks(&self, pending: &mut OffsetMap, positions: &mut OffsetMap) {
        pending.retain(|tp, offset| match self.consumer.seek(&tp.topic, tp.partition, Offset::Offset(*offset), Duration::from_secs(1)) {
            Ok(()) => {
                positions.insert(tp.clone(), *offset);
                false
            }
            Err(e) => {
                tracing::debug!(partition = %tp, error = %e, "seek not possible yet; retrying");
                true
            }
        });
    }

    fn pause_resume(&self, pause: &[TopicPartition], resume: &[TopicPartition]) {
        let list = |tps: &[TopicPartition]| {
            let mut tpl = TopicPartitionList::new();
            for tp in tps {
                tpl.add_partition(&tp.topic, tp.partition);
            }
            tpl
        };
        if !pause.is_empty() {
            if let Err(e) = self.consumer.pause(&list(pause)) {
                tracing::warn!(error = %e, "pause failed");
            }
        }
        if !resume.is_empty() {
            if let Err(e) = self.consumer.resume(&list(resume)) {
                tracing::warn!(error = %e, "resume failed");
            }
        }
    }

    /// Ask the task what is safe (`pre_commit`) and commit exactly that.
    async fn commit(&mut self, positions: &mut OffsetMap, mode: CommitMode) -> Result<(), ConnectError> {
        if positions.is_empty() {
            return Ok(());
        }
        let approved = self.task.pre_commit(positions.clone()).await.map_err(|e| e.context("pre_commit failed"))?;
        if approved.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in &approved {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset)).map_err(|e| kafka_error("bad offset", e))?;
        }
        self.approved.lock().unwrap_or_else(|p| p.into_inner()).extend(approved);
        match self.consumer.commit(&tpl, mode) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Not fatal: the next commit carries the same or later offsets.
                tracing::warn!(connector = %self.connector, task = self.task_id, error = %e, "offset commit failed");
                Ok(())
            }
        }
    }
}

/// What `put_with_retry` needs of the runner besides the task.
struct PutScope<'a> {
    connector: &'a str,
    task_id: u32,
    errors: &'a ErrorHandler,
    cancel: &'a CancellationToken,
}

/// `put`, redelivering the same batch after a retriable error (as Kafka Connect does), with the
/// delay the task asked for or an exponential backoff.
/// Returns `Ok(false)` when the task was stopped before the batch could be written (it is not
/// committed, so it will be delivered again).
///
/// Retries go on forever by default, as in Kafka Connect; `errors.retry.timeout` > 0 bounds them,
/// after which the task fails (and restarts by the restart policy).
async fn put_with_retry(
    task: &mut dyn SinkTask,
    scope: PutScope<'_>,
    context: &SinkTaskContext,
    records: &[SinkRecord],
) -> Result<bool, ConnectError> {
    let mut backoff = Duration::from_millis(300);
    let started = Instant::now();
    loop {
        match task.put(records).await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_retriable() => {
                let delay = context.take_requests().timeout.unwrap_or(backoff);
                if let Some(limit) = scope.errors.policy.retry_timeout.filter(|t| !t.is_zero()) {
                    if started.elapsed() + delay > limit {
                        return Err(e.context(format!("put kept failing for errors.retry.timeout={} ms", limit.as_millis())));
                    }
                }
                TaskMetrics::add(&scope.errors.metrics.total_retries, 1);
                tracing::warn!(connector = %scope.connector, task = scope.task_id, error = %e.chain(), delay_ms = delay.as_millis() as u64, "retriable error from put; redelivering the batch");
                tokio::select! {
                    _ = scope.cancel.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(delay) => {}
                }
                backoff = crate::runtime::errors::next_delay(backoff, scope.errors.policy.retry_delay_max);
            }
            Err(e) => {
                let first = records
                    .first()
                    .map(|r| kafka_origin(r.original_topic(), r.original_partition(), r.original_offset()).to_string())
                    .unwrap_or_default();
                return Err(e.context(format!(
                    "Task threw an uncaught and unrecoverable exception in stage {} (batch starting at {first})",
                    Stage::TaskPut
                )));
            }
        }
    }
}

struct Batch {
    records: Vec<SinkRecord>,
    /// Next offset per consumed partition (original coordinates), including records that were filtered or
    /// skipped: they are done too.
    consumed: Vec<(TopicPartition, i64)>,
    /// DLQ deliveries of records that failed conversion or a transform.
    dead_lettered: Vec<rdkafka::producer::DeliveryFuture>,
}

impl Batch {
    /// Keep only the records and positions of the partitions `keep` accepts.
    fn retain_partitions(&mut self, keep: impl Fn(&TopicPartition) -> bool) {
        if self.consumed.iter().all(|(tp, _)| keep(tp)) {
            return;
        }
        let dropped: Vec<TopicPartition> = self.consumed.iter().filter(|(tp, _)| !keep(tp)).map(|(tp, _)| tp.clone()).collect();
        self.consumed.retain(|(tp, _)| keep(tp));
        self.records.retain(|r| !dropped.iter().any(|tp| tp.partition == r.original_partition() && tp.topic == r.original_topic()));
    }
}
