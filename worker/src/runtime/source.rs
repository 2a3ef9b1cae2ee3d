//! The source task loop: poll → convert → transform → produce → (ack) commit_record → offset commit.
//!
//! Invariant: a source offset reaches the offset store only after Kafka acknowledged its record and
//! every record polled before it. Acks are consumed in poll order (a `FuturesOrdered`), so the latest
//! acknowledged offset per partition is always safe to store.

use connect_core::connector::RecordMetadata;
use connect_core::{Config, ConnectError, RecordData, SourceRecord, SourceTask, SourceTaskContext, Value};
use futures::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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
    pub producer: FutureProducer,
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

/// The outcome of one produced record (or of a record that produced nothing).
struct Ack {
    /// Set on the last Kafka record a source record turned into: its offset is committable once this
    /// resolves, because every earlier piece resolved before it.
    source: Option<SourceRecord>,
    result: Result<Option<RecordMetadata>, KafkaError>,
}

/// Resolves when Kafka acknowledged a record; a hand-written future so no allocation per record.
struct AckFuture {
    delivery: Option<DeliveryFuture>,
    topic: Option<String>,
    source: Option<SourceRecord>,
    /// The delivery is to the dead-letter queue: success means "handled", with no metadata to report.
    dead_letter: bool,
}

/// What became of one record on its way to Kafka.
enum Produced {
    Sent(DeliveryFuture),
    DeadLettered(DeliveryFuture),
    Skipped,
}

impl AckFuture {
    fn new(produced: Produced, topic: Option<String>, source: Option<SourceRecord>) -> Self {
        match produced {
            Produced::Sent(d) => AckFuture { delivery: Some(d), topic, source, dead_letter: false },
            Produced::DeadLettered(d) => AckFuture { delivery: Some(d), topic: None, source, dead_letter: true },
            Produced::Skipped => AckFuture { delivery: None, topic: None, source, dead_letter: false },
        }
    }
}

impl Future for AckFuture {
    type Output = Ack;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ack> {
        let this = &mut *self;
        let result = match this.delivery.as_mut() {
            None => Ok(None),
            Some(d) => match d.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(_))) if this.dead_letter => Ok(None),
                Poll::Ready(Ok(Ok(delivery))) => Ok(Some(RecordMetadata {
                    topic: this.topic.take().unwrap_or_default(),
                    partition: delivery.partition,
                    offset: delivery.offset,
                })),
                Poll::Ready(Ok(Err((e, _)))) => Err(e),
                Poll::Ready(Err(_canceled)) => Err(KafkaError::Canceled),
            },
        };
        Poll::Ready(Ack { source: this.source.take(), result })
    }
}

#[derive(Default)]
struct AckQueue(VecDeque<AckFuture>);

impl AckQueue {
    fn push_back(&mut self, ack: AckFuture) {
        self.0.push_back(ack);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The front ack if it is resolved now.
    fn try_next(&mut self) -> Option<Ack> {
        let ack = self.0.front_mut()?.now_or_never()?;
        self.0.pop_front();
        Some(ack)
    }
    /// Wait for the front ack; `None` when nothing is in flight.
    async fn next(&mut self) -> Option<Ack> {
        let ack = std::future::poll_fn(|cx| match self.0.front_mut() {
            None => Poll::Ready(None),
            Some(front) => front.poll_unpin(cx).map(Some),
        })
        .await?;
        self.0.pop_front();
        Some(ack)
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
#[derive(Default)]
struct InFlight {
    /// In poll order. Only the front is ever awaited: acks are handled in order anyway, and a queue
    /// avoids a per-record allocation that a `FuturesOrdered` would make.
    acks: AckQueue,
    /// Offsets Kafka acknowledged, not yet in the store.
    pending: PendingOffsets,
    /// Reused output buffer of the transform chain.
    scratch: Vec<RecordData>,
}

impl SourceTaskRunner {
    pub async fn run(mut self) -> Result<(), ConnectError> {
        let context = SourceTaskContext {
            connector_name: self.connector.clone(),
            task_id: self.task_id,
            offsets: Arc::new(ConnectorOffsetReader { store: self.offsets.clone(), connector: self.connector.clone() }),
        };
        self.task.start(context, self.task_config.clone()).await.map_err(|e| e.context("task start failed"))?;
        self.poll_cancel_safe = self.task.poll_is_cancel_safe();
        self.status.set(State::Running);
        tracing::info!(connector = %self.connector, task = self.task_id, "source task running");

        let mut state = InFlight::default();
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
            state.acks.push_back(AckFuture::new(produced, None, Some(record)));
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
            state.acks.push_back(AckFuture::new(produced, None, Some(record)));
            state.scratch = outputs;
            return Ok(());
        }
        if self.pipeline.transforms.is_empty() {
            // The common case: one source record, one Kafka record, no allocation on the way.
            let produced = self.produce(state, &record.data, &record).await?;
            let topic = matches!(produced, Produced::Sent(_)).then(|| record.data.topic.clone());
            state.acks.push_back(AckFuture::new(produced, topic, Some(record)));
            state.scratch = outputs;
            return Ok(());
        }
        let mut pieces = Vec::with_capacity(outputs.len());
        for data in &outputs {
            let produced = self.produce(state, data, &record).await?;
            pieces.push((produced, data.topic.clone()));
        }
        let last = pieces.pop();
        for (produced, _) in pieces {
            state.acks.push_back(AckFuture::new(produced, None, None));
        }
        match last {
            Some((produced, topic)) => state.acks.push_back(AckFuture::new(produced, Some(topic), Some(record))),
            None => state.acks.push_back(AckFuture::new(Produced::Skipped, None, Some(record))),
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
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
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
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(Produced::Sent(delivery)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // The client's queue is full: wait for the oldest ack (or a moment), then try again.
                    record = returned;
                    match state.acks.try_next() {
                        Some(ack) => self.handle_ack(state, ack).await?,
                        _ => {
                            if let Some(ack) = tokio::time::timeout(Duration::from_millis(100), state.acks.next()).await.ok().flatten() {
                                self.handle_ack(state, ack).await?;
                            }
                        }
                    }
                }
                Err((e, _)) => {
                    return self.fail_record(Stage::KafkaProduce, "producer", origin, data, kafka_error("producing a record failed", e))
                }
            }
        }
    }

    async fn handle_ack(&mut self, state: &mut InFlight, ack: Ack) -> Result<(), ConnectError> {
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
            self.task.commit_record(&record, metadata.as_ref()).await.map_err(|e| e.context("commit_record failed"))?;
            state.pending.record(record.source_partition, record.source_offset);
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
