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
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::kafka::kafka_error;
use crate::runtime::errors::{Disposition, ErrorHandler, Origin, RawRecord, Stage};
use crate::runtime::metrics::{CommitOutcome, PartitionLag, TaskMetrics};
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
    metrics: Arc<TaskMetrics>,
    /// When the oldest commit not yet answered was made, for the commit time metrics.
    commit_started: Mutex<Option<Instant>>,
}

impl ClientContext for SinkConsumerContext {
    /// librdkafka's statistics (every `statistics.interval.ms`): keep each assigned partition's lag, from the
    /// position the task has read up to (before its first message, from the committed offset).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag: Vec<PartitionLag> = statistics
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .into_values()
                    // -1: librdkafka's internal "unassigned" partition; a lag below 0 is not known yet.
                    .filter(|p| p.partition >= 0 && p.desired)
                    .filter_map(move |p| {
                        let lag = if p.app_offset >= 0 && p.hi_offset >= 0 {
                            (p.hi_offset - p.app_offset).max(0)
                        } else {
                            p.consumer_lag // -1 until known
                        };
                        (lag >= 0).then(|| PartitionLag { topic: topic.clone(), partition: p.partition, lag })
                    })
            })
            .collect();
        lag.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        self.metrics.set_partition_lag(lag);
    }
}

fn tp_list(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
}

impl ConsumerContext for SinkConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = tp_list(tpl);
            let mut approved = self.approved.lock().unwrap_or_else(|p| p.into_inner());
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
            // Forgotten once committed: if the partition comes back after another member moved it on, this old
            // approval must not be committed again at the next revocation (it would rewind the group).
            for tp in &revoked {
                approved.remove(tp);
            }
            drop(approved);
            let _ = self.events.send(RebalanceEvent::Revoked(revoked));
        }
    }

    /// The broker's answer to a commit (sync or async): the offset commit metrics count it here.
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        let started = self.commit_started.lock().unwrap_or_else(|p| p.into_inner()).take();
        let took = started.map(|s| s.elapsed()).unwrap_or_default();
        let outcome = if result.is_ok() { CommitOutcome::Completed } else { CommitOutcome::Failed };
        self.metrics.record_commit(outcome, took);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let _ = self.events.send(RebalanceEvent::Assigned(tp_list(tpl)));
        }
    }
}

impl SinkConsumerContext {
    /// A commit was sent: its time runs until the broker answers (the oldest unanswered one's, if several).
    fn commit_sent(&self) {
        self.commit_started.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Instant::now);
    }
}

pub type SinkConsumer = StreamConsumer<SinkConsumerContext>;

/// A sink consumer, the channel its rebalances arrive on, and the offsets its revocation commits.
pub type SinkConsumerParts = (SinkConsumer, mpsc::UnboundedReceiver<RebalanceEvent>, Arc<Mutex<OffsetMap>>);

/// Build the consumer and the channel its rebalances arrive on.
pub fn sink_consumer(config: rdkafka::ClientConfig, metrics: Arc<TaskMetrics>) -> Result<SinkConsumerParts, ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let approved = Arc::new(Mutex::new(OffsetMap::new()));
    let consumer: SinkConsumer = config
        .create_with_context(SinkConsumerContext { events: tx, approved: approved.clone(), metrics, commit_started: Mutex::default() })
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
    /// The connector's PAUSED flag and this task's stop.
    pub pause: PauseGate,
    pub tracked_topics: crate::kafka::TrackedTopics,
}

/// Original bytes of one batch's records by (topic, partition, offset), for the DLQ; kept with the batch
/// (only when a DLQ is configured) and lent to the reporter while the batch is in `put`.
pub type Originals = Arc<HashMap<(String, i32, i64), RawRecord>>;

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
    /// The originals of the batch in `put`.
    originals: Mutex<Originals>,
    /// Records reported so far: a batch's written count is its size less what its `put` reported.
    reported: std::sync::atomic::AtomicU64,
}

impl DeadLetterReporter {
    /// The batch about to be put: its records are the ones that may be reported.
    fn lend(&self, originals: &Originals) {
        *self.originals.lock().unwrap_or_else(|p| p.into_inner()) = originals.clone();
    }
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

/// What a drain of rebalance events left.
#[derive(Debug, Default, PartialEq)]
struct Rebalanced {
    /// Partitions whose last event was a revocation.
    revoked: Vec<TopicPartition>,
    /// Partitions revoked and assigned back in the same drain (an eager rebalance revokes every partition and
    /// assigns most back at once). Their records already fetched may come from either assignment: they are
    /// dropped and the partition sought to the first of them ([`seek_reassigned`]), so none is lost (a batch
    /// from the new assignment) and none is put stale or twice (one from before the revocation).
    reassigned: Vec<TopicPartition>,
}

/// Apply queued rebalance events: `open` assigned partitions, `close` revoked ones.
async fn handle_rebalances(
    rebalances: &mut mpsc::UnboundedReceiver<RebalanceEvent>,
    task: &mut dyn SinkTask,
    tracked_topics: &crate::kafka::TrackedTopics,
    context: &SinkTaskContext,
    positions: &mut OffsetMap,
) -> Result<Rebalanced, ConnectError> {
    let mut all_revoked = Vec::new();
    let mut reassigned = Vec::new();
    while let Ok(event) = rebalances.try_recv() {
        match event {
            RebalanceEvent::Assigned(parts) => {
                tracked_topics.lock().unwrap_or_else(|p| p.into_inner()).extend(parts.iter().map(|tp| tp.topic.clone()));
                let mut all = context.assignment();
                all.extend(parts.iter().cloned());
                context.set_assignment(all);
                reassigned.extend(all_revoked.iter().filter(|tp| parts.contains(tp)).cloned());
                all_revoked.retain(|tp| !parts.contains(tp));
                task.open(&parts).await.map_err(|e| e.context("open failed"))?;
            }
            RebalanceEvent::Revoked(parts) => {
                task.close(&parts).await.map_err(|e| e.context("close failed"))?;
                context.set_assignment(context.assignment().into_iter().filter(|tp| !parts.contains(tp)).collect());
                for tp in &parts {
                    positions.remove(tp);
                }
                reassigned.retain(|tp| !parts.contains(tp));
                all_revoked.extend(parts);
            }
        }
    }
    Ok(Rebalanced { revoked: all_revoked, reassigned })
}

/// Seek each re-assigned partition to the first of its records waiting in these batches (which the seek then
/// drops from them), unless the task asked for a position itself.
fn seek_reassigned<'a>(reassigned: &[TopicPartition], batches: impl Iterator<Item = &'a Batch>, pending_seeks: &mut OffsetMap) {
    if reassigned.is_empty() {
        return;
    }
    for record in batches.flat_map(|b| b.records.iter()) {
        let tp = reassigned.iter().find(|tp| tp.partition == record.original_partition() && tp.topic == record.original_topic());
        if let Some(tp) = tp {
            let first = pending_seeks.entry(tp.clone()).or_insert(record.original_offset());
            *first = (*first).min(record.original_offset());
        }
    }
}

impl SinkTaskRunner {
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let reporter = Arc::new(DeadLetterReporter { errors: self.errors.clone(), originals: Mutex::default(), reported: 0.into() });
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
    /// time, and rebalances, rewinds, pauses and commits happen between them.
    ///
    /// A `put` that fails with a retriable error is redelivered after the delay the task asked for
    /// (`SinkTaskContext::timeout`) or the backoff's; meanwhile every partition is paused and the consumer
    /// is still polled, so it stays in its group however long the target is down (Kafka Connect's
    /// "paused for redelivery"), and the pauses, resumes and rewinds the failing `put` asked for are applied.
    async fn main_loop(
        &mut self,
        context: &SinkTaskContext,
        reporter: &DeadLetterReporter,
        positions: &mut OffsetMap,
    ) -> Result<(), ConnectError> {
        let mut last_commit = Instant::now();
        // The earliest `pre_commit` the task asked for (it holds records it has not made durable yet).
        let mut commit_by: Option<Instant> = None;
        let mut pending_seeks: OffsetMap = OffsetMap::new();
        // Batches fetched and converted, waiting for their `put`, in order.
        let mut ready: VecDeque<Batch> = VecDeque::new();
        // The batch whose `put` failed retriably, and when to put it again.
        let mut redeliver: Option<(Batch, Instant)> = None;
        let mut put_backoff = self.errors.put_retries();
        // Partitions the task paused itself: a resume after PAUSED or after a redelivery leaves them paused.
        let mut task_paused: BTreeSet<TopicPartition> = BTreeSet::new();
        let fetcher = Fetcher {
            connector: self.connector.clone(),
            consumer: self.consumer.clone(),
            pipeline: self.pipeline.clone(),
            errors: self.errors.clone(),
            max_batch: self.max_batch,
            cancel: self.cancel.clone(),
        };
        loop {
            // The fetch that brought a batch may have assigned partitions: `open` them before any of their records
            // is put (as Kafka Connect does in its rebalance callback). Records of partitions revoked meanwhile, or
            // rewound by the task (in `open`, `put` or `close`; `pre_commit`'s below), are dropped: the new owner or
            // the seek fetches them again.
            let Rebalanced { revoked, reassigned } =
                handle_rebalances(&mut self.rebalances, self.task.as_mut(), &self.tracked_topics, context, positions).await?;
            seek_reassigned(&reassigned, ready.iter().chain(redeliver.iter().map(|(b, _)| b)), &mut pending_seeks);
            let requests = context.take_requests();
            if let Some(by) = requests.commit_by {
                commit_by = Some(commit_by.map_or(by, |earlier| earlier.min(by)));
            }
            pending_seeks.extend(requests.offsets);
            self.drop_and_seek(&revoked, &mut pending_seeks, &mut ready, &mut redeliver, positions);
            task_paused.extend(requests.pause.iter().cloned());
            for tp in &requests.resume {
                task_paused.remove(tp);
            }
            self.pause_resume(&requests.pause, &requests.resume);
            if redeliver.is_some() {
                // Waiting to redeliver: fetch nothing new (partitions assigned meanwhile included).
                self.pause_resume(&context.assignment(), &[]);
            }
            let commit_due = commit_by.is_some_and(|by| Instant::now() >= by);
            if requests.commit_requested || commit_due || last_commit.elapsed() >= self.flush_interval {
                self.commit(positions, CommitMode::Async).await?;
                last_commit = Instant::now();
                commit_by = None;
                // `pre_commit` may have rewound partitions: seek before any batch fetched earlier is put.
                let rewinds = context.take_offset_requests();
                if !rewinds.is_empty() {
                    pending_seeks.extend(rewinds);
                    self.drop_and_seek(&[], &mut pending_seeks, &mut ready, &mut redeliver, positions);
                }
            }

            if self.pause.is_paused() {
                // What the task holds undurable is not left waiting for the pause to end.
                if commit_by.take().is_some() {
                    self.commit(positions, CommitMode::Async).await?;
                }
                // PAUSED: stop fetching, keep committing; a pause longer than max.poll.interval.ms
                // makes the consumer leave its group and rejoin on resume (nothing is lost).
                self.pause_resume(&context.assignment(), &[]);
                self.status.set(State::Paused);
                loop {
                    match self.pause.wait(std::future::pending::<Option<()>>()).await {
                        PauseEvent::Resumed => break,
                        PauseEvent::Stopped => return Ok(()),
                        PauseEvent::FlushDue => self.commit(positions, CommitMode::Async).await?,
                        PauseEvent::Work(()) => {}
                    }
                }
                if redeliver.is_none() {
                    self.resume_all_but(context, &task_paused);
                }
                self.status.set(State::Running);
                continue;
            }
            let mut wait = self.flush_interval.saturating_sub(last_commit.elapsed()).max(Duration::from_millis(10));
            if let Some(by) = commit_by {
                wait = wait.min(by.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
            }

            // Waiting to redeliver, or nothing fetched yet: poll (heartbeats, rebalances, max.poll.interval.ms)
            // and go round again.
            let due_in = redeliver.as_ref().map(|(_, due)| due.saturating_duration_since(Instant::now()));
            let nothing_to_put = match due_in {
                Some(left) => !left.is_zero(),
                None => ready.is_empty(),
            };
            if nothing_to_put {
                match fetcher.clone().fetch(due_in.unwrap_or(wait).min(wait)).await? {
                    // While a batch waits for redelivery this was fetched before the pause took effect: it goes after.
                    Fetched::Batch(b) => ready.push_back(b),
                    Fetched::Nothing => {}
                    Fetched::Stopped => return Ok(()), // a failed batch stays uncommitted
                }
                continue;
            }
            let mut batch = match redeliver.take() {
                Some((batch, _)) => {
                    self.resume_all_but(context, &task_paused);
                    batch
                }
                None => ready.pop_front().expect("checked above"),
            };
            if batch.records.is_empty() && batch.consumed.is_empty() {
                continue;
            }
            // Records sent to the DLQ at conversion or transform must be there before their offsets count.
            for delivery in std::mem::take(&mut batch.dead_lettered) {
                self.errors.confirm(delivery).await?;
            }
            reporter.lend(&batch.originals);
            let reported_before = reporter.reported.load(std::sync::atomic::Ordering::Relaxed);
            let put_at = Instant::now();
            let (put_result, next, fetched) = {
                let put = self.task.put(&batch.records);
                // On a task of its own, so that it runs on another thread while this one drives the put. One batch
                // ahead at most: with one already waiting, there is nothing to overlap.
                let mut next = ready.is_empty().then(|| tokio::spawn(fetcher.clone().fetch(wait)));
                tokio::pin!(put);
                let mut fetched = None;
                let put_result = loop {
                    tokio::select! {
                        done = &mut put => break done,
                        f = async { next.as_mut().expect("guarded").await }, if next.is_some() && fetched.is_none() => fetched = Some(f),
                    }
                };
                (put_result, next, fetched)
            };
            self.errors.metrics.record_batch(batch.records.len(), put_at.elapsed());
            // A fetch still waiting for messages holds none yet (it converts within one poll, without awaiting):
            // aborting it loses nothing. One that finished just before the abort still hands over its batch.
            let fetched = match (fetched, next) {
                (Some(f), _) => Some(f),
                (None, Some(next)) => {
                    next.abort();
                    match next.await {
                        Err(e) if e.is_cancelled() => None,
                        other => Some(other),
                    }
                }
                (None, None) => None,
            };
            match fetched {
                Some(Ok(Ok(Fetched::Batch(b)))) => ready.push_back(b),
                Some(Ok(Ok(Fetched::Nothing))) | None => {}
                Some(Ok(Ok(Fetched::Stopped))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(ConnectError::fatal(format!("the fetch of the next batch failed: {e}"))),
            }
            match put_result {
                Ok(()) => {
                    put_backoff.reset();
                    let reported = reporter.reported.load(std::sync::atomic::Ordering::Relaxed) - reported_before;
                    TaskMetrics::add(&self.errors.metrics.records_written, (batch.records.len() as u64).saturating_sub(reported));
                    for (tp, next) in batch.consumed {
                        positions.insert(tp, next);
                    }
                }
                Err(e) if e.is_retriable() => {
                    let Some(backoff) = put_backoff.next_delay() else {
                        let limit = put_backoff.policy().max_elapsed.unwrap_or_default();
                        return Err(e.context(format!("put kept failing for errors.retry.timeout={} ms", limit.as_millis())));
                    };
                    let delay = context.take_timeout().unwrap_or(backoff);
                    TaskMetrics::add(&self.errors.metrics.total_retries, 1);
                    tracing::warn!(connector = %self.connector, task = self.task_id, error = %e.chain(), delay_ms = delay.as_millis() as u64, "retriable error from put; redelivering the batch");
                    self.pause_resume(&context.assignment(), &[]);
                    redeliver = Some((batch, Instant::now() + delay));
                }
                Err(e) => {
                    let first = batch
                        .records
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

    /// Resume every assigned partition but those the task paused itself.
    fn resume_all_but(&self, context: &SinkTaskContext, task_paused: &BTreeSet<TopicPartition>) {
        let resume: Vec<TopicPartition> = context.assignment().into_iter().filter(|tp| !task_paused.contains(tp)).collect();
        self.pause_resume(&[], &resume);
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
        let mut batch = Batch {
            records: Vec::with_capacity(messages.len()),
            consumed: Vec::new(),
            dead_lettered: Vec::new(),
            originals: Arc::default(),
        };
        let keep_originals = self.errors.policy.dlq_topic.is_some();
        let mut originals = HashMap::new();
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
        if keep_originals {
            batch.originals = Arc::new(originals);
        }
        Ok(batch)
    }
}

impl SinkTaskRunner {
    /// Drop the waiting records of revoked partitions and of those to be sought (the new owner or the seek
    /// fetches them again), then seek.
    fn drop_and_seek(
        &self,
        revoked: &[TopicPartition],
        pending_seeks: &mut OffsetMap,
        ready: &mut VecDeque<Batch>,
        redeliver: &mut Option<(Batch, Instant)>,
        positions: &mut OffsetMap,
    ) {
        for batch in ready.iter_mut().chain(redeliver.iter_mut().map(|(b, _)| b)) {
            batch.retain_partitions(|tp| !revoked.contains(tp) && !pending_seeks.contains_key(tp));
        }
        self.apply_seeks(pending_seeks, positions);
    }

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
        // Kafka Connect counts a commit with nothing to commit (or none the task approved) as a success.
        if positions.is_empty() {
            self.errors.metrics.record_commit(CommitOutcome::Completed, Duration::ZERO);
            return Ok(());
        }
        let approved = self.task.pre_commit(positions.clone()).await.map_err(|e| e.context("pre_commit failed"))?;
        if approved.is_empty() {
            self.errors.metrics.record_commit(CommitOutcome::Completed, Duration::ZERO);
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in &approved {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset)).map_err(|e| kafka_error("bad offset", e))?;
        }
        self.approved.lock().unwrap_or_else(|p| p.into_inner()).extend(approved);
        // Its outcome is counted by the consumer's commit callback: an async commit has only been queued here.
        self.consumer.context().commit_sent();
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

struct Batch {
    records: Vec<SinkRecord>,
    /// Next offset per consumed partition (original coordinates), including records that were filtered or
    /// skipped: they are done too.
    consumed: Vec<(TopicPartition, i64)>,
    /// DLQ deliveries of records that failed conversion or a transform.
    dead_lettered: Vec<rdkafka::producer::DeliveryFuture>,
    /// The records' original bytes, for the DLQ (empty without one).
    originals: Originals,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::Consumer;

    /// A partition revoked and later assigned back must not have its old approved offset committed at the next
    /// revocation: meanwhile another member may have committed further, and the stale offset would rewind it.
    #[test]
    fn a_revoked_partition_forgets_its_approved_offset() {
        let mut config = rdkafka::ClientConfig::new();
        // No broker and no group: the commit on revocation fails at once (and is logged), which is all this needs.
        config.set("bootstrap.servers", "127.0.0.1:1");
        let (tx, mut events) = mpsc::unbounded_channel();
        let approved = Arc::new(Mutex::new(OffsetMap::new()));
        let consumer: BaseConsumer<SinkConsumerContext> = config
            .create_with_context(SinkConsumerContext {
                events: tx,
                approved: approved.clone(),
                metrics: Arc::default(),
                commit_started: Mutex::default(),
            })
            .unwrap();
        let p0 = TopicPartition::new("t", 0);
        let p1 = TopicPartition::new("t", 1);
        approved.lock().unwrap().extend([(p0.clone(), 100), (p1.clone(), 7)]);
        let mut revoked = TopicPartitionList::new();
        revoked.add_partition("t", 0);
        consumer.context().pre_rebalance(&consumer, &Rebalance::Revoke(&revoked));
        let left = approved.lock().unwrap().clone();
        assert_eq!(left.get(&p0), None, "the revoked partition's approval is gone");
        assert_eq!(left.get(&p1), Some(&7), "the others stay");
        assert!(matches!(events.try_recv(), Ok(RebalanceEvent::Revoked(parts)) if parts == vec![p0]));
    }

    /// A sink task that only counts its calls.
    #[derive(Default)]
    struct Counting {
        opened: Vec<TopicPartition>,
        closed: Vec<TopicPartition>,
    }

    #[async_trait::async_trait]
    impl SinkTask for Counting {
        async fn start(&mut self, _: SinkTaskContext, _: connect_core::Config) -> Result<(), ConnectError> {
            Ok(())
        }
        async fn open(&mut self, partitions: &[TopicPartition]) -> Result<(), ConnectError> {
            self.opened.extend_from_slice(partitions);
            Ok(())
        }
        async fn put(&mut self, _: &[SinkRecord]) -> Result<(), ConnectError> {
            Ok(())
        }
        async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), ConnectError> {
            self.closed.extend_from_slice(partitions);
            Ok(())
        }
        async fn stop(&mut self) -> Result<(), ConnectError> {
            Ok(())
        }
    }

    /// An eager rebalance revokes every partition and assigns them back; the events reach the loop together with
    /// a batch fetched from the new assignment. Its records must not be dropped as if their partitions had gone:
    /// the consumer's position is already past them, so they would be skipped for good. Only a partition whose
    /// last event is a revocation is revoked; one assigned back is sought to the first of its fetched records.
    #[tokio::test]
    async fn a_partition_revoked_and_assigned_back_in_one_drain_keeps_its_fetched_records() {
        let (tx, mut events) = mpsc::unbounded_channel();
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        tx.send(RebalanceEvent::Assigned(vec![p0.clone(), p1.clone()])).unwrap();
        tx.send(RebalanceEvent::Revoked(vec![p0.clone(), p1.clone()])).unwrap();
        tx.send(RebalanceEvent::Assigned(vec![p0.clone()])).unwrap();
        let mut task = Counting::default();
        let context = SinkTaskContext::new("c", 0, None);
        let mut positions: OffsetMap = [(p0.clone(), 10), (p1.clone(), 20)].into_iter().collect();
        let rebalanced =
            handle_rebalances(&mut events, &mut task, &crate::kafka::TrackedTopics::default(), &context, &mut positions).await.unwrap();
        assert_eq!(rebalanced, Rebalanced { revoked: vec![p1.clone()], reassigned: vec![p0.clone()] });
        assert_eq!(context.assignment(), vec![p0.clone()]);
        assert_eq!((task.opened.len(), task.closed.len()), (3, 2), "every event still reaches the task");
        assert!(positions.is_empty(), "positions of revoked partitions are forgotten either way");

        // p0's records already fetched (30..33, from either assignment) are fetched again from the first of them.
        let record = |partition: i32, offset: i64| {
            SinkRecord::new(RecordData::new("t", None, connect_core::Value::Null), partition, offset, TimestampType::CreateTime)
        };
        let batch =
            |records: Vec<SinkRecord>| Batch { records, consumed: Vec::new(), dead_lettered: Vec::new(), originals: Arc::default() };
        let batches = [batch(vec![record(1, 8), record(0, 31), record(0, 32)]), batch(vec![record(0, 30), record(0, 33)])];
        let mut seeks = OffsetMap::new();
        seek_reassigned(&rebalanced.reassigned, batches.iter(), &mut seeks);
        assert_eq!(seeks, OffsetMap::from([(p0.clone(), 30)]));
        let mut asked = OffsetMap::from([(p0.clone(), 5)]);
        seek_reassigned(&rebalanced.reassigned, batches.iter(), &mut asked);
        assert_eq!(asked[&p0], 5, "a position the task asked for stands");
    }
}
