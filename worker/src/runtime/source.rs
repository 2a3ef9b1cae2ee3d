//! The source task loop: poll → convert → transform → produce → (ack) commit_record → offset commit.
//!
//! Invariant: a source offset reaches the offset store only after Kafka acknowledged its record and
//! every record polled before it. Acks are consumed in poll order (an [`AckQueue`], whose sent records
//! carry tickets of the producer's delivery reports), so the latest acknowledged offset per partition is
//! always safe to store; once an ack fails, no later offset is stored at all.

use connect_core::connector::RecordMetadata;
use connect_core::{Config, ConnectError, RecordData, SourceRecord, SourceTask, SourceTaskContext, Value};
use futures::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, Producer};
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::kafka::deliveries::{record_to, Delivered, TicketProducer, Tickets};
use crate::kafka::{kafka_error, TopicCreator};
use crate::runtime::errors::{Disposition, ErrorHandler, Origin, RawRecord, Stage};
use crate::runtime::metrics::{CommitOutcome, TaskMetrics};
use crate::runtime::paused::{PauseEvent, PauseGate};
use crate::runtime::pipeline::Pipeline;
use crate::runtime::status::{State, StatusCell};
use crate::store::offsets::{ConnectorOffsetReader, OffsetStore, PendingOffsets};
use connect_kit::backoff::{Backoff, BackoffPolicy};

/// Records sent but not yet acknowledged, at most. Bounds memory and gives backpressure to `poll`.
const MAX_IN_FLIGHT: usize = 20_000;

pub struct SourceTaskRunner {
    pub connector: String,
    pub task_id: u32,
    pub task: Box<dyn SourceTask>,
    pub task_config: Config,
    pub pipeline: Pipeline,
    pub errors: ErrorHandler,
    pub producer: TicketProducer,
    pub topics: TopicCreator,
    pub offsets: Arc<OffsetStore>,
    pub flush_interval: Duration,
    pub shutdown_timeout: Duration,
    pub cancel: CancellationToken,
    pub status: StatusCell,
    /// `true` while the connector is PAUSED.
    /// The connector's PAUSED flag and this task's stop.
    pub pause: PauseGate,
    /// Set from the task at start.
    pub poll_cancel_safe: bool,
}

/// A resolved entry of the ack queue.
struct Ack {
    /// Set on the last Kafka record a source record turned into: its offset is committable once this
    /// resolves, because every earlier piece resolved before it.
    source: Option<SourceRecord>,
    /// The topic a transformed record's last piece went to; `None`: the source record's own topic.
    topic: Option<String>,
    /// Where Kafka stored the record (`None`: dead-lettered or skipped, nothing to report).
    result: Result<Option<Delivered>, KafkaError>,
}

/// What became of one record on its way to Kafka.
enum Produced {
    /// Sent with this ticket ([`Tickets`]).
    Sent(u64),
    DeadLettered(DeliveryFuture),
    Skipped,
}

/// One record (or piece of a record) in flight, in poll order.
struct PendingAck {
    produced: Produced,
    topic: Option<String>,
    source: Option<SourceRecord>,
}

/// Records in flight in poll order, and the tickets of those sent. Only the front is ever waited for:
/// acks are handled in order anyway, and neither needs an allocation per record.
struct AckQueue {
    pending: VecDeque<PendingAck>,
    tickets: Tickets,
}

impl AckQueue {
    fn push_back(&mut self, produced: Produced, topic: Option<String>, source: Option<SourceRecord>) {
        self.pending.push_back(PendingAck { produced, topic, source });
    }
    fn len(&self) -> usize {
        self.pending.len()
    }
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
    /// The front's result once known; `Ready(None)` when nothing is in flight.
    fn poll_front(&mut self, cx: &mut Context<'_>) -> Poll<Option<Ack>> {
        let Some(front) = self.pending.front_mut() else { return Poll::Ready(None) };
        let result = match &mut front.produced {
            Produced::Skipped => Ok(None),
            Produced::Sent(ticket) => match self.tickets.poll_take(*ticket, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(outcome) => outcome.map(Some),
            },
            Produced::DeadLettered(delivery) => match delivery.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(_))) => Ok(None),
                Poll::Ready(Ok(Err((e, _)))) => Err(e),
                Poll::Ready(Err(_canceled)) => Err(KafkaError::Canceled),
            },
        };
        let front = self.pending.pop_front().expect("the front was just looked at");
        Poll::Ready(Some(Ack { source: front.source, topic: front.topic, result }))
    }
    /// The front ack if it is resolved now.
    fn try_next(&mut self) -> Option<Ack> {
        match self.poll_front(&mut Context::from_waker(futures::task::noop_waker_ref())) {
            Poll::Ready(ack) => ack,
            Poll::Pending => None,
        }
    }
    /// Wait for the front ack; `None` when nothing is in flight.
    async fn next(&mut self) -> Option<Ack> {
        std::future::poll_fn(|cx| self.poll_front(cx)).await
    }
}

/// Where a source record came from, for traces and DLQ headers.
fn source_origin(record: &SourceRecord) -> Origin {
    Origin::Source {
        topic: record.data.topic.clone(),
        partition: serde_json::to_string(&*record.source_partition).unwrap_or_default(),
        offset: serde_json::to_string(&record.source_offset).unwrap_or_default(),
    }
}

/// Bytes for a value whose converter failed: strings and bytes as they are, anything else as JSON.
fn fallback_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) => Some(b.to_vec()),
        other => Some(other.to_json().to_string().into_bytes()),
    }
}

/// What the loop carries between iterations.
struct InFlight {
    acks: AckQueue,
    /// Offsets Kafka acknowledged, not yet in the store.
    pending: PendingOffsets,
    /// Reused output buffer of the transform chain.
    scratch: Vec<RecordData>,
    /// An ack failed: the task is failing, and no offset after that record may be stored.
    failed: bool,
}

impl SourceTaskRunner {
    /// Run the task until it stops; `tickets` takes the outcomes of `producer`'s deliveries.
    pub async fn run(mut self, tickets: Tickets) -> Result<(), ConnectError> {
        let context = SourceTaskContext {
            connector_name: self.connector.clone(),
            task_id: self.task_id,
            offsets: Arc::new(ConnectorOffsetReader { store: self.offsets.clone(), connector: self.connector.clone() }),
        };
        self.task.start(context, self.task_config.clone()).await.map_err(|e| e.context("task start failed"))?;
        self.poll_cancel_safe = self.task.poll_is_cancel_safe();
        self.status.set(State::Running);
        tracing::info!(connector = %self.connector, task = self.task_id, "source task running");

        let mut state = InFlight {
            acks: AckQueue { pending: VecDeque::new(), tickets },
            pending: PendingOffsets::default(),
            scratch: Vec::new(),
            failed: false,
        };
        let result = self.main_loop(&mut state).await;
        // Whatever happened, store what Kafka acknowledged, then stop the task.
        let drained = self.drain(&mut state).await;
        let committed = self.commit_offsets(&mut state).await;
        let stopped = self.task.stop().await;
        result.and(drained).and(committed).and(stopped)
    }

    async fn main_loop(&mut self, state: &mut InFlight) -> Result<(), ConnectError> {
        let mut last_commit = Instant::now();
        // Retriable poll errors: doubling from 300 ms to a minute, for as long as they last.
        let mut poll_backoff = Backoff::new(BackoffPolicy::exponential(Duration::from_millis(300), Duration::from_secs(60)));
        loop {
            while let Some(ack) = state.acks.try_next() {
                self.handle_ack(state, ack).await?;
            }
            if last_commit.elapsed() >= self.flush_interval {
                self.commit_offsets(state).await?;
                last_commit = Instant::now();
            }
            if self.pause.is_paused() && !self.wait_while_paused(state).await? {
                return Ok(()); // stopped while paused
            }
            if state.acks.len() >= MAX_IN_FLIGHT {
                tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    Some(ack) = state.acks.next() => self.handle_ack(state, ack).await?,
                }
                continue;
            }
            // A source that acknowledges upstream per record (MQTT) may get no more messages until it
            // does, so for one whose poll is cancel-safe, acks are handled while poll waits (the pending
            // poll is dropped and called again). Other sources' polls are never interrupted but by stop.
            let polled_at = Instant::now();
            let batch = if self.poll_cancel_safe {
                tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    Some(ack) = state.acks.next() => {
                        self.handle_ack(state, ack).await?;
                        continue;
                    }
                    batch = self.task.poll() => batch,
                }
            } else {
                tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    batch = self.task.poll() => batch,
                }
            };
            let batch = match batch {
                Ok(b) => {
                    poll_backoff.reset();
                    b
                }
                Err(e) if e.is_retriable() => {
                    let delay = poll_backoff.next_delay().unwrap_or(Duration::from_secs(60));
                    tracing::warn!(connector = %self.connector, task = self.task_id, error = %e.chain(), delay_ms = delay.as_millis() as u64, "retriable error from poll; retrying");
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
                Err(e) => return Err(e.context(format!("stage {} failed", Stage::TaskPoll))),
            };
            TaskMetrics::add(&self.errors.metrics.records_read, batch.len() as u64);
            // An empty poll (an idle source's timeout) is no batch, as in Kafka Connect, whose tasks return null.
            if !batch.is_empty() {
                self.errors.metrics.record_batch(batch.len(), polled_at.elapsed());
            }
            for record in batch {
                self.send(state, record).await?;
            }
        }
    }

    /// Convert, transform and produce one source record. A record that yields no Kafka record (filtered,
    /// skipped or dead-lettered under `errors.tolerance=all`) still gets an ack in order, so its offset
    /// advances only once it is in Kafka, in the DLQ, or deliberately dropped.
    async fn send(&mut self, state: &mut InFlight, record: SourceRecord) -> Result<(), ConnectError> {
        if let Some(why) = &record.unreadable {
            let produced = self.fail_unreadable(&record, ConnectError::data(why.clone()))?;
            state.acks.push_back(produced, None, Some(record));
            return Ok(());
        }
        let mut outputs = std::mem::take(&mut state.scratch);
        outputs.clear();
        let transformed = if self.pipeline.transforms.is_empty() {
            Ok(())
        } else {
            Self::transform_with_retry(&self.pipeline, &self.errors, &record, &mut outputs).await
        };
        if let Err(e) = transformed {
            let class = e.class.clone();
            let produced = self.fail_record(Stage::Transformation, &class, &record, &record.data, ConnectError::data(e.to_string()))?;
            state.acks.push_back(produced, None, Some(record));
            state.scratch = outputs;
            return Ok(());
        }
        if self.pipeline.transforms.is_empty() {
            // The common case: one source record, one Kafka record, no allocation on the way.
            let produced = self.produce(state, &record.data, &record).await?;
            state.acks.push_back(produced, None, Some(record));
            state.scratch = outputs;
            return Ok(());
        }
        // Each piece joins the ack queue as soon as it is sent, so every ticket handed out has its entry
        // even if a later piece fails; the source record rides on the last piece.
        match outputs.split_last() {
            None => state.acks.push_back(Produced::Skipped, None, Some(record)),
            Some((last, init)) => {
                for data in init {
                    let produced = self.produce(state, data, &record).await?;
                    state.acks.push_back(produced, None, None);
                }
                let produced = self.produce(state, last, &record).await?;
                state.acks.push_back(produced, Some(last.topic.clone()), Some(record));
            }
        }
        state.scratch = outputs;
        Ok(())
    }

    /// PAUSED: no polling, but acknowledgements and offset commits go on. `true` on resume, `false` when
    /// the task is being stopped.
    async fn wait_while_paused(&mut self, state: &mut InFlight) -> Result<bool, ConnectError> {
        self.status.set(State::Paused);
        loop {
            match self.pause.wait(state.acks.next()).await {
                PauseEvent::Resumed => break,
                PauseEvent::Stopped => return Ok(false),
                PauseEvent::FlushDue => self.commit_offsets(state).await?,
                PauseEvent::Work(ack) => self.handle_ack(state, ack).await?,
            }
        }
        self.status.set(State::Running);
        Ok(true)
    }

    /// Apply the transform chain, trying again on a retriable error within `errors.retry.timeout`.
    async fn transform_with_retry(
        pipeline: &Pipeline,
        errors: &ErrorHandler,
        record: &SourceRecord,
        outputs: &mut Vec<RecordData>,
    ) -> Result<(), connect_core::transform::TransformError> {
        let mut backoff = errors.record_retries();
        loop {
            outputs.clear();
            match pipeline.transforms.apply(record.data.clone(), outputs) {
                Err(e) if e.error.is_retriable() => match errors.next_retry(&mut backoff) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// A record failed `stage`: fail the task, skip it, or send it to the DLQ (beyond Kafka Connect,
    /// which has no DLQ for sources), with headers naming the stage and the source partition and offset.
    /// Raw input the source could not read: a data error at TASK_POLL, with the input's bytes as they came
    /// (no converter runs on them) for the DLQ.
    fn fail_unreadable(&self, record: &SourceRecord, error: ConnectError) -> Result<Produced, ConnectError> {
        let data = &record.data;
        let raw = RawRecord {
            key: fallback_bytes(&data.key),
            value: fallback_bytes(&data.value),
            headers: Vec::new(),
            timestamp: data.timestamp,
        };
        let class = self.task_config.get("connector.class").map(String::as_str).unwrap_or("source task");
        Ok(match self.errors.handle(Stage::TaskPoll, class, &source_origin(record), Some(&raw), error)? {
            Disposition::Skipped => Produced::Skipped,
            Disposition::DeadLettered(d) => Produced::DeadLettered(d),
        })
    }

    fn fail_record(
        &self,
        stage: Stage,
        class: &str,
        record: &SourceRecord,
        data: &RecordData,
        error: ConnectError,
    ) -> Result<Produced, ConnectError> {
        let topic = data.topic.as_str();
        let raw = RawRecord {
            key: match self.pipeline.key_converter.from_connect(topic, data.key_schema.as_ref(), &data.key) {
                Ok(k) => k.map(|k| k.into_owned()),
                Err(_) => fallback_bytes(&data.key),
            },
            value: match self.pipeline.value_converter.from_connect(topic, data.value_schema.as_ref(), &data.value) {
                Ok(v) => v.map(|v| v.into_owned()),
                Err(_) => fallback_bytes(&data.value),
            },
            headers: data
                .headers
                .iter()
                .map(|h| (h.key.clone(), self.pipeline.header_to_bytes(topic, h).ok().flatten().map(|b| b.into_owned())))
                .collect(),
            timestamp: data.timestamp,
        };
        Ok(match self.errors.handle(stage, class, &source_origin(record), Some(&raw), error)? {
            Disposition::Skipped => Produced::Skipped,
            Disposition::DeadLettered(d) => Produced::DeadLettered(d),
        })
    }

    /// Convert and produce one Kafka record.
    async fn produce(&mut self, state: &mut InFlight, data: &RecordData, origin: &SourceRecord) -> Result<Produced, ConnectError> {
        let topic = data.topic.as_str();
        let key = match self.pipeline.key_converter.from_connect(topic, data.key_schema.as_ref(), &data.key) {
            Ok(k) => k,
            Err(e) => return self.fail_record(Stage::KeyConverter, &self.pipeline.key_converter_class, origin, data, e),
        };
        let value = match self.pipeline.value_converter.from_connect(topic, data.value_schema.as_ref(), &data.value) {
            Ok(v) => v,
            Err(e) => return self.fail_record(Stage::ValueConverter, &self.pipeline.value_converter_class, origin, data, e),
        };
        let mut header_bytes = Vec::with_capacity(data.headers.len());
        for h in data.headers.iter() {
            match self.pipeline.header_to_bytes(topic, h) {
                Ok(b) => header_bytes.push(b),
                Err(e) => return self.fail_record(Stage::HeaderConverter, &self.pipeline.header_converter_class, origin, data, e),
            }
        }
        self.topics.ensure(topic).await?;
        let mut record = record_to(topic);
        if let Some(k) = key.as_deref() {
            record = record.key(k);
        }
        if let Some(v) = value.as_deref() {
            record = record.payload(v);
        }
        if let Some(p) = data.partition {
            record = record.partition(p);
        }
        if let Some(ts) = data.timestamp {
            record = record.timestamp(ts);
        }
        if !data.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(data.headers.len());
            for (h, bytes) in data.headers.iter().zip(&header_bytes) {
                headers = headers.insert(KafkaHeader { key: &h.key, value: bytes.as_deref() });
            }
            record = record.headers(headers);
        }
        loop {
            match state.acks.tickets.send(&self.producer, record) {
                Ok(ticket) => return Ok(Produced::Sent(ticket)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // The client's queue is full: wait for the oldest ack (or a moment), then try again.
                    record = returned;
                    if state.acks.is_empty() {
                        // Nothing of this task's left to wait for (librdkafka still counts messages it has
                        // reported): a moment.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else if let Some(ack) = tokio::time::timeout(Duration::from_millis(100), state.acks.next()).await.ok().flatten() {
                        self.handle_ack(state, ack).await?;
                    }
                }
                Err((e, _)) => {
                    return self.fail_record(Stage::KafkaProduce, "producer", origin, data, kafka_error("producing a record failed", e))
                }
            }
        }
    }

    /// Settle the oldest record in flight. An error fails the task and stops offsets here: a later
    /// record's offset stored past this one would skip it on restart.
    async fn handle_ack(&mut self, state: &mut InFlight, ack: Ack) -> Result<(), ConnectError> {
        let settled = self.settle(state, ack).await;
        if settled.is_err() {
            state.failed = true;
        }
        settled
    }

    async fn settle(&mut self, state: &mut InFlight, ack: Ack) -> Result<(), ConnectError> {
        let metadata = match ack.result {
            Ok(m) => m,
            Err(e) => {
                let err = kafka_error("Kafka did not acknowledge a record", e);
                let produced = match &ack.source {
                    Some(record) => self.fail_record(Stage::KafkaProduce, "producer", record, &record.data, err)?,
                    None => {
                        let origin =
                            Origin::Source { topic: String::new(), partition: "(part of a split record)".into(), offset: String::new() };
                        match self.errors.handle(Stage::KafkaProduce, "producer", &origin, None, err)? {
                            Disposition::Skipped => Produced::Skipped,
                            Disposition::DeadLettered(d) => Produced::DeadLettered(d),
                        }
                    }
                };
                // Rare path: wait here, so the offset below is stored only once the DLQ has the record.
                if let Produced::DeadLettered(d) = produced {
                    self.errors.confirm(d).await?;
                }
                None
            }
        };
        if metadata.is_some() {
            TaskMetrics::add(&self.errors.metrics.records_written, 1);
        }
        if let Some(record) = ack.source {
            let metadata = metadata.map(|(partition, offset)| RecordMetadata {
                topic: ack.topic.unwrap_or_else(|| record.data.topic.clone()),
                partition,
                offset,
            });
            self.task.commit_record(&record, metadata.as_ref()).await.map_err(|e| e.context("commit_record failed"))?;
            if !state.failed {
                state.pending.record(record.source_partition, record.source_offset);
            }
        }
        Ok(())
    }

    /// Wait (bounded) for every record still in flight, so their offsets can be stored.
    async fn drain(&mut self, state: &mut InFlight) -> Result<(), ConnectError> {
        let deadline = Instant::now() + self.shutdown_timeout;
        while !state.acks.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, state.acks.next()).await {
                Ok(Some(ack)) => self.handle_ack(state, ack).await?,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(connector = %self.connector, task = self.task_id, outstanding = state.acks.len(), "shutdown timeout with records in flight; their offsets are not stored and they will be re-sent");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Hand acknowledged offsets to the store, make them durable, then let the task acknowledge in bulk.
    async fn commit_offsets(&mut self, state: &mut InFlight) -> Result<(), ConnectError> {
        let started = Instant::now();
        if state.pending.is_empty() {
            // Kafka Connect counts a flush with nothing to write as a successful commit.
            self.errors.metrics.record_commit(CommitOutcome::Completed, Duration::ZERO);
        } else {
            self.offsets.put(&self.connector, state.pending.drain());
            let store = self.offsets.clone();
            let flushed = tokio::task::spawn_blocking(move || store.flush())
                .await
                .map_err(|e| ConnectError::fatal("offset flush panicked").with_source(e))?
                .map_err(|e| ConnectError::retriable("cannot store source offsets").with_source(e));
            let outcome = if flushed.is_ok() { CommitOutcome::Completed } else { CommitOutcome::Failed };
            self.errors.metrics.record_commit(outcome, started.elapsed());
            flushed?;
        }
        self.task.commit().await.map_err(|e| e.context("commit failed"))
    }
}

impl Drop for SourceTaskRunner {
    fn drop(&mut self) {
        // Give librdkafka a moment to send what is queued; offsets of unsent records were not stored.
        let _ = self.producer.flush(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WorkerConfig;
    use crate::kafka::deliveries::ticket_producer;
    use crate::registry::Registry;
    use crate::runtime::errors::ErrorPolicy;
    use async_trait::async_trait;
    use connect_core::SourceMap;
    use rdkafka::config::ClientConfig;

    /// Polls two records once (offsets 1 and 2 of one partition, to topics `kept` and `dropped`), then
    /// nothing.
    struct TwoRecords {
        polled: bool,
    }

    #[async_trait]
    impl SourceTask for TwoRecords {
        async fn start(&mut self, _: SourceTaskContext, _: Config) -> connect_core::Result<()> {
            Ok(())
        }
        async fn poll(&mut self) -> connect_core::Result<Vec<SourceRecord>> {
            if std::mem::replace(&mut self.polled, true) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Ok(Vec::new());
            }
            let partition: Arc<SourceMap> = Arc::new([("file".to_string(), serde_json::json!("f"))].into_iter().collect());
            let record = |topic: &str, position: u64| {
                let offset: SourceMap = [("position".to_string(), serde_json::json!(position))].into_iter().collect();
                SourceRecord::new(partition.clone(), offset, RecordData::new(topic, None, Value::String(format!("line {position}"))))
            };
            Ok(vec![record("kept", 1), record("dropped", 2)])
        }
        async fn stop(&mut self) -> connect_core::Result<()> {
            Ok(())
        }
    }

    /// The first record is never acknowledged (no broker: it times out) and fails the task; the second is
    /// filtered out, so its ack is ready at once. Its offset must not be stored: on restart the source
    /// would resume after the first record, which never reached Kafka.
    #[tokio::test]
    async fn after_a_failed_ack_no_later_offset_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let offsets_file = dir.path().join("connect.offsets");
        let worker_config: Config =
            [("bootstrap.servers", "127.0.0.1:1"), ("offset.storage.file.filename", offsets_file.to_str().unwrap())]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let worker = WorkerConfig::from_config(worker_config).unwrap();
        let connector: Config = [
            ("connector.class", "TwoRecords"),
            ("value.converter", "org.apache.kafka.connect.storage.StringConverter"),
            ("transforms", "drop"),
            ("transforms.drop.type", "org.apache.kafka.connect.transforms.Filter"),
            ("transforms.drop.predicate", "isDropped"),
            ("predicates", "isDropped"),
            ("predicates.isDropped.type", "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"),
            ("predicates.isDropped.pattern", "dropped"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let pipeline = Pipeline::build(&Registry::default(), &worker, &connector).unwrap();
        let mut topics = TopicCreator::new(&worker, &connector, Default::default()).unwrap();
        topics.assume_exists("kept");
        let mut producer_config = ClientConfig::new();
        producer_config.set("bootstrap.servers", "127.0.0.1:1").set("message.timeout.ms", "300");
        let (producer, tickets) = ticket_producer(&producer_config).unwrap();
        let offsets = OffsetStore::open(&offsets_file).unwrap();
        let cancel = CancellationToken::new();
        let (_paused_tx, paused) = tokio::sync::watch::channel(false);
        let runner = SourceTaskRunner {
            connector: "two".into(),
            task_id: 0,
            task: Box::new(TwoRecords { polled: false }),
            task_config: connector.clone(),
            pipeline,
            errors: ErrorHandler {
                policy: ErrorPolicy::from_connector(&connector),
                connector: "two".into(),
                task_id: 0,
                metrics: Arc::default(),
                dlq_producer: None,
            },
            producer,
            topics,
            offsets: offsets.clone(),
            flush_interval: Duration::from_millis(50),
            shutdown_timeout: Duration::from_secs(5),
            cancel: cancel.clone(),
            status: StatusCell::new("w"),
            pause: PauseGate::new(paused, cancel, Duration::from_millis(50)),
            poll_cancel_safe: false,
        };
        let failed = tokio::time::timeout(Duration::from_secs(30), runner.run(tickets)).await.expect("the task ends");
        let error = failed.expect_err("an unacknowledged record fails the task under errors.tolerance=none");
        assert!(error.chain().contains("KAFKA_PRODUCE"), "{}", error.chain());
        let partition: SourceMap = [("file".to_string(), serde_json::json!("f"))].into_iter().collect();
        assert_eq!(offsets.get("two", &partition), None, "no offset may pass the record that never reached Kafka");
    }
}
