//! Connector and task traits, and the contexts the runtime hands to them.
//!
//! A connector splits work into task configs; tasks move the data. The runtime owns Kafka, conversion,
//! transforms, offsets and error handling, so a connector is mostly its protocol.

use crate::config::{Config, ConfigDef};
use crate::error::{ConnectError, Result};
use crate::record::{OffsetMap, SinkRecord, SourceMap, SourceRecord, TopicPartition};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Source or sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorType {
    Source,
    Sink,
}

impl ConnectorType {
    /// The lower-case name Kafka Connect uses in REST bodies (`"source"`, `"sink"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        }
    }
}

/// What a connector may ask of the runtime while it runs.
pub trait ConnectorContext: Send + Sync {
    /// The connector's input changed (e.g. new tables or topics): ask for new task configs.
    fn request_task_reconfiguration(&self);
    /// The connector hit an error it cannot recover from outside `start`/`stop`: mark it FAILED.
    fn raise_error(&self, error: ConnectError);
}

/// Behaviour shared by source and sink connectors.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The plugin version shown by `GET /connector-plugins`.
    fn version(&self) -> &'static str;
    /// The connector's own keys (the runtime adds the common ones: name, tasks.max, converters, ...).
    fn config_def(&self) -> ConfigDef;
    /// Checks across keys that a per-key definition cannot express; errors per key.
    fn validate(&self, _config: &Config) -> BTreeMap<String, Vec<String>> {
        BTreeMap::new()
    }
    async fn start(&mut self, context: Arc<dyn ConnectorContext>, config: Config) -> Result<()>;
    /// Split the work into at most `max_tasks` task configs.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>>;
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

pub trait SourceConnector: Connector {
    fn create_task(&self) -> Box<dyn SourceTask>;
}

pub trait SinkConnector: Connector {
    fn create_task(&self) -> Box<dyn SinkTask>;
}

/// A connector instance of either kind.
pub enum AnyConnector {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl AnyConnector {
    pub fn connector_type(&self) -> ConnectorType {
        match self {
            AnyConnector::Source(_) => ConnectorType::Source,
            AnyConnector::Sink(_) => ConnectorType::Sink,
        }
    }
    pub fn as_connector(&self) -> &dyn Connector {
        match self {
            AnyConnector::Source(c) => c.as_ref(),
            AnyConnector::Sink(c) => c.as_ref(),
        }
    }
    pub fn as_connector_mut(&mut self) -> &mut dyn Connector {
        match self {
            AnyConnector::Source(c) => c.as_mut(),
            AnyConnector::Sink(c) => c.as_mut(),
        }
    }
}

/// Where Kafka put a record: passed to [`SourceTask::commit_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Reads the stored offsets of a source task's partitions.
pub trait OffsetReader: Send + Sync {
    fn offset(&self, partition: &SourceMap) -> Option<SourceMap>;
}

/// What the runtime gives a source task at start.
#[derive(Clone)]
pub struct SourceTaskContext {
    pub connector_name: String,
    pub task_id: u32,
    pub offsets: Arc<dyn OffsetReader>,
}

/// A source task: pulls records from an external system.
#[async_trait]
pub trait SourceTask: Send {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()>;

    /// Return the next batch. When nothing is available, wait a short while (at most about a second) and
    /// return an empty batch, so the runtime can acknowledge records and commit offsets in between.
    ///
    /// The runtime may drop the returned future when the task is being stopped; records not yet returned
    /// must then be re-readable from the last committed offset (which holds for any offset-based source).
    async fn poll(&mut self) -> Result<Vec<SourceRecord>>;

    /// `true` if dropping a pending `poll` future loses nothing (it only waits on a channel or a timer).
    /// Then the runtime handles Kafka acknowledgements, and so `commit_record`, while `poll` waits, and
    /// calls `poll` again: what a source whose upstream holds back messages until it acknowledges (MQTT)
    /// needs. Default `false`: `poll` is interrupted only to stop the task.
    fn poll_is_cancel_safe(&self) -> bool {
        false
    }

    /// Offsets up to now were stored: acknowledge upstream in bulk, if the system wants that.
    async fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    /// Kafka accepted this record (metadata `None`: it was filtered out by a transform or dead-lettered).
    /// Called in poll order. A source that acknowledges per message (MQTT, JMS) does it here.
    async fn commit_record(&mut self, _record: &SourceRecord, _metadata: Option<&RecordMetadata>) -> Result<()> {
        Ok(())
    }

    async fn stop(&mut self) -> Result<()>;
}

/// Sends a record that a sink could not write to the dead-letter queue or the error log, per the
/// connector's `errors.*` settings. With `errors.tolerance=none` reporting fails the task.
#[async_trait]
pub trait ErrantRecordReporter: Send + Sync {
    async fn report(&self, record: &SinkRecord, error: &ConnectError) -> Result<()>;
}

/// Requests a sink task made of the runtime since the runtime last looked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SinkRequests {
    /// Rewind (or skip) partitions to these offsets: the next record read is the one at that offset.
    pub offsets: HashMap<TopicPartition, i64>,
    /// After a retriable error, wait this long before redelivering the batch.
    pub timeout: Option<Duration>,
    pub pause: Vec<TopicPartition>,
    pub resume: Vec<TopicPartition>,
    pub commit_requested: bool,
    /// Call `pre_commit` by then at the latest (the earliest of the deadlines asked for): a sink that holds
    /// records it has not made durable yet (an open COPY) asks for this instead of waiting for
    /// `offset.flush.interval.ms`.
    pub commit_by: Option<std::time::Instant>,
}

/// What the runtime gives a sink task: a way to report bad records, ask for a retry delay, pause and
/// resume partitions, and rewind to offsets the sink stored itself.
#[derive(Clone)]
pub struct SinkTaskContext {
    pub connector_name: String,
    pub task_id: u32,
    reporter: Option<Arc<dyn ErrantRecordReporter>>,
    shared: Arc<Mutex<SinkShared>>,
}

#[derive(Default)]
struct SinkShared {
    requests: SinkRequests,
    assignment: Vec<TopicPartition>,
}

impl SinkTaskContext {
    pub fn new(connector_name: impl Into<String>, task_id: u32, reporter: Option<Arc<dyn ErrantRecordReporter>>) -> Self {
        SinkTaskContext { connector_name: connector_name.into(), task_id, reporter, shared: Arc::default() }
    }
    /// The reporter for records that cannot be written (`None` when the connector set up no error
    /// reporting, as in Kafka Connect).
    pub fn errant_record_reporter(&self) -> Option<Arc<dyn ErrantRecordReporter>> {
        self.reporter.clone()
    }
    /// Rewind or skip `partition` to `offset`.
    pub fn offset(&self, partition: TopicPartition, offset: i64) {
        self.lock().requests.offsets.insert(partition, offset);
    }
    pub fn offsets(&self, offsets: &OffsetMap) {
        self.lock().requests.offsets.extend(offsets.iter().map(|(k, v)| (k.clone(), *v)));
    }
    /// Ask the runtime to wait this long before redelivering after a retriable error.
    pub fn timeout(&self, delay: Duration) {
        self.lock().requests.timeout = Some(delay);
    }
    pub fn pause(&self, partitions: &[TopicPartition]) {
        self.lock().requests.pause.extend_from_slice(partitions);
    }
    pub fn resume(&self, partitions: &[TopicPartition]) {
        self.lock().requests.resume.extend_from_slice(partitions);
    }
    /// Ask for an offset commit as soon as possible.
    pub fn request_commit(&self) {
        self.lock().requests.commit_requested = true;
    }
    /// Ask for `pre_commit` within `delay`, even if no records arrive meanwhile (see [`SinkRequests::commit_by`]).
    pub fn request_commit_within(&self, delay: Duration) {
        let Some(due) = std::time::Instant::now().checked_add(delay) else { return };
        let mut shared = self.lock();
        let by = &mut shared.requests.commit_by;
        *by = Some(by.map_or(due, |earlier| earlier.min(due)));
    }
    /// The partitions this task currently owns.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.lock().assignment.clone()
    }

    /// Runtime side: take only the retry delay asked for by a failing `put`, leaving pause, resume,
    /// rewind and commit requests for the runtime's loop to apply.
    pub fn take_timeout(&self) -> Option<Duration> {
        self.lock().requests.timeout.take()
    }
    /// Runtime side: take only the rewinds asked for (by `pre_commit`, applied right after the commit).
    pub fn take_offset_requests(&self) -> HashMap<TopicPartition, i64> {
        std::mem::take(&mut self.lock().requests.offsets)
    }
    /// Runtime side: take the pending requests.
    pub fn take_requests(&self) -> SinkRequests {
        std::mem::take(&mut self.lock().requests)
    }
    /// Runtime side: record the current assignment.
    pub fn set_assignment(&self, partitions: Vec<TopicPartition>) {
        self.lock().assignment = partitions;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkShared> {
        // A poisoned lock only means another thread panicked mid-update of plain data; keep going.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A sink task: writes records to an external system.
#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()>;

    /// Partitions were assigned. A sink that stores offsets itself rewinds here with `context.offset`.
    async fn open(&mut self, _partitions: &[TopicPartition]) -> Result<()> {
        Ok(())
    }

    /// Write (or buffer) a batch. A record the target rejects goes to the errant-record reporter; a
    /// retriable error makes the runtime redeliver the same batch after a backoff. The batch is lent, so
    /// the runtime can redeliver it without a copy; a sink that buffers clones what it keeps.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<()>;

    /// Make everything put so far durable.
    async fn flush(&mut self, _offsets: &OffsetMap) -> Result<()> {
        Ok(())
    }

    /// Offsets safe to commit (the next offset to read per partition). The default flushes and returns
    /// `offsets` unchanged; a sink that buffers returns less; an empty map commits nothing.
    async fn pre_commit(&mut self, offsets: OffsetMap) -> Result<OffsetMap> {
        self.flush(&offsets).await?;
        Ok(offsets)
    }

    /// Partitions were revoked: release what belongs to them.
    async fn close(&mut self, _partitions: &[TopicPartition]) -> Result<()> {
        Ok(())
    }

    async fn stop(&mut self) -> Result<()>;
}
