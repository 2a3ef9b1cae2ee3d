//! Records as sources produce them and sinks receive them.

use crate::data::{SchemaRef, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A connector-defined map identifying a source partition or a position in it
/// (e.g. `{"filename": "/x"}` and `{"position": 30}`). JSON values, because offsets are stored as JSON.
pub type SourceMap = serde_json::Map<String, serde_json::Value>;

/// One header. Values keep their schema so header converters can serialise them faithfully.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<SchemaRef>,
    pub value: Value,
}

/// Ordered headers; keys may repeat, as in Kafka.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.0.push(Header { key: key.into(), schema: None, value });
        self
    }
    /// The last header with this key.
    pub fn last(&self, key: &str) -> Option<&Header> {
        self.0.iter().rev().find(|h| h.key == key)
    }
    pub fn remove_all(&mut self, key: &str) {
        self.0.retain(|h| h.key != key);
    }
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The part of a record every transform sees, common to source and sink records
/// (Kafka Connect's `ConnectRecord`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordData {
    pub topic: String,
    /// Target partition for a source record (`None`: the producer's partitioner decides); for a sink
    /// record, the partition it was consumed from (after transforms, possibly rewritten).
    pub partition: Option<i32>,
    pub key_schema: Option<SchemaRef>,
    pub key: Value,
    pub value_schema: Option<SchemaRef>,
    pub value: Value,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Headers,
    /// For a sink record, the offset it was consumed at (what InsertField's `offset.field` inserts); `None`
    /// for source records, which have no Kafka offset yet.
    pub kafka_offset: Option<i64>,
}

impl RecordData {
    /// A record with a topic and a value, everything else empty.
    pub fn new(topic: impl Into<String>, value_schema: Option<SchemaRef>, value: Value) -> Self {
        RecordData { topic: topic.into(), value_schema, value, ..Default::default() }
    }
    pub fn with_key(mut self, key_schema: Option<SchemaRef>, key: Value) -> Self {
        self.key_schema = key_schema;
        self.key = key;
        self
    }
    pub fn with_timestamp(mut self, timestamp: Option<i64>) -> Self {
        self.timestamp = timestamp;
        self
    }
}

/// What a source task produces.
///
/// The source partition is shared (`Arc`): a task builds its partition map once and every record of that
/// partition points at it, instead of copying a map per record.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source_partition: Arc<SourceMap>,
    pub source_offset: SourceMap,
    pub data: RecordData,
    /// The connector's own handle for acknowledging this record upstream (an MQTT packet id, a STOMP ack
    /// id), handed back untouched in `SourceTask::commit_record`. Never stored, converted or transformed.
    pub ack: Option<AckToken>,
    /// Set when the source read something it cannot make a record of (a line that is not JSON): why.
    /// `data` then holds the raw input as bytes or a string, which the runtime reports as a data error at
    /// the TASK_POLL stage: the DLQ gets those bytes, or the task fails under `errors.tolerance=none`.
    /// Its offset advances like any record's once it is dead-lettered, so it is not read again.
    pub unreadable: Option<String>,
}

impl SourceRecord {
    pub fn new(source_partition: Arc<SourceMap>, source_offset: SourceMap, data: RecordData) -> Self {
        SourceRecord { source_partition, source_offset, data, ack: None, unreadable: None }
    }
    /// A record for raw input the source cannot read (see [`SourceRecord::unreadable`]).
    pub fn unreadable(source_partition: Arc<SourceMap>, source_offset: SourceMap, data: RecordData, why: impl Into<String>) -> Self {
        SourceRecord { source_partition, source_offset, data, ack: None, unreadable: Some(why.into()) }
    }
    /// Attach an acknowledgement handle (see [`AckToken`]).
    pub fn with_ack(mut self, ack: AckToken) -> Self {
        self.ack = Some(ack);
        self
    }
}

/// An opaque, typed acknowledgement handle a source task attaches to a record, so it need not hide an ack
/// id in `source_offset` (which the runtime may store). The runtime only carries it; the task reads it back
/// with [`AckToken::get`] under the type it put in.
#[derive(Clone)]
pub struct AckToken(Arc<dyn std::any::Any + Send + Sync>);

impl AckToken {
    pub fn new<T: std::any::Any + Send + Sync>(token: T) -> Self {
        AckToken(Arc::new(token))
    }
    /// The token, if it is a `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckToken(..)")
    }
}

impl PartialEq for AckToken {
    /// The same handle, not an equal value: tokens are identities.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Offsets to commit: for each partition, the offset of the NEXT record to consume (Kafka's convention).
pub type OffsetMap = HashMap<TopicPartition, i64>;

/// Whether a Kafka timestamp was set by the producer or the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    NoTimestampType,
    CreateTime,
    LogAppendTime,
}

/// What a sink task receives. The original coordinates survive any transform chain, because offsets are
/// committed against them.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub data: RecordData,
    /// Offset of the record in its (possibly transformed) topic partition.
    pub kafka_offset: i64,
    pub timestamp_type: TimestampType,
    original_topic: String,
    original_partition: i32,
    original_offset: i64,
}

impl SinkRecord {
    pub fn new(data: RecordData, partition: i32, offset: i64, timestamp_type: TimestampType) -> Self {
        let original_topic = data.topic.clone();
        let mut data = data;
        data.partition = Some(partition);
        SinkRecord { data, kafka_offset: offset, timestamp_type, original_topic, original_partition: partition, original_offset: offset }
    }
    /// A record with the same original coordinates and new data (a transform's output).
    pub fn with_data(&self, data: RecordData) -> SinkRecord {
        SinkRecord {
            data,
            kafka_offset: self.kafka_offset,
            timestamp_type: self.timestamp_type,
            original_topic: self.original_topic.clone(),
            original_partition: self.original_partition,
            original_offset: self.original_offset,
        }
    }
    pub fn topic(&self) -> &str {
        &self.data.topic
    }
    pub fn partition(&self) -> i32 {
        self.data.partition.unwrap_or(self.original_partition)
    }
    pub fn original_topic(&self) -> &str {
        &self.original_topic
    }
    pub fn original_partition(&self) -> i32 {
        self.original_partition
    }
    pub fn original_offset(&self) -> i64 {
        self.original_offset
    }
    /// The original coordinates as a topic partition.
    pub fn original_topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.original_topic.clone(), self.original_partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_record_keeps_original_coordinates_through_rewrites() {
        let data = RecordData::new("orders", None, Value::from("x"));
        let mut rec = SinkRecord::new(data, 3, 42, TimestampType::CreateTime);
        rec.data.topic = "orders-routed".into();
        rec.data.partition = Some(0);
        assert_eq!(rec.topic(), "orders-routed");
        assert_eq!(rec.original_topic(), "orders");
        assert_eq!(rec.original_partition(), 3);
        assert_eq!(rec.original_offset(), 42);
    }
}
