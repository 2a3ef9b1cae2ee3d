//! A sink buffer that flushes on records, bytes or linger time, keeping where each record came from.
//!
//! Kafka Connect sinks call the limits `batch.size` (records), `bulk.size.bytes` / `batch.max.size`
//! (bytes) and `linger.ms` (time since the first buffered record). [`SinkBuffer::push`] says when a
//! count limit is reached; [`SinkBuffer::linger_expired`] is a future to `select!` on, ready when the
//! oldest record has waited `linger` (pending forever while the buffer is empty), so no one polls a clock.
//!
//! Each entry keeps its [`Coordinates`], so a target's per-record error can name the record (and the
//! errant-record reporter can be handed it), and [`SinkBuffer::committable`] says which offsets a
//! `pre_commit` may return while records stay buffered.

use connect_core::{SinkRecord, TopicPartition};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Where a buffered entry came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Coordinates {
    /// A consumed record: its original topic, partition and offset.
    Kafka { topic: String, partition: i32, offset: i64 },
    /// The position in the batch handed to `put`, for sinks that write within one put.
    PutIndex(usize),
}

impl Coordinates {
    /// A sink record's original coordinates (what transforms did to it does not matter for offsets).
    pub fn of(record: &SinkRecord) -> Self {
        Coordinates::Kafka {
            topic: record.original_topic().to_string(),
            partition: record.original_partition(),
            offset: record.original_offset(),
        }
    }
}

/// The limits, any of which triggers a flush. Zero means "no such limit" for `max_bytes` and `linger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    /// `batch.size`: flush at this many records (at least 1).
    pub max_records: usize,
    /// `bulk.size.bytes` / `batch.max.size`: flush at this many bytes (0: no byte limit).
    pub max_bytes: usize,
    /// `linger.ms`: flush when the oldest record has waited this long (zero: no time limit).
    pub linger: Duration,
}

/// Why a buffer should be flushed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    Records,
    Bytes,
    Linger,
}

/// One buffered entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffered<T> {
    pub item: T,
    pub bytes: usize,
    pub at: Coordinates,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct SinkBuffer<T> {
    limits: BufferLimits,
    entries: Vec<Buffered<T>>,
    bytes: usize,
    oldest: Option<Instant>,
}

impl<T> SinkBuffer<T> {
    pub fn new(limits: BufferLimits) -> Self {
        SinkBuffer {
            limits: BufferLimits { max_records: limits.max_records.max(1), ..limits },
            entries: Vec::new(),
            bytes: 0,
            oldest: None,
        }
    }
    pub fn limits(&self) -> BufferLimits {
        self.limits
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn entries(&self) -> &[Buffered<T>] {
        &self.entries
    }

    /// Add an entry of `bytes` size. `Some` when a count limit is now reached: flush before pushing more.
    pub fn push(&mut self, item: T, bytes: usize, at: Coordinates) -> Option<FlushReason> {
        self.oldest.get_or_insert_with(Instant::now);
        self.entries.push(Buffered { item, bytes, at });
        self.bytes += bytes;
        self.full()
    }

    /// Would adding `bytes` more go over the byte limit? A sink whose target refuses oversized requests
    /// flushes first (a single entry larger than the limit still goes alone).
    pub fn would_overflow(&self, bytes: usize) -> bool {
        self.limits.max_bytes > 0 && !self.entries.is_empty() && self.bytes + bytes > self.limits.max_bytes
    }

    /// A count limit reached now, if any.
    pub fn full(&self) -> Option<FlushReason> {
        if self.entries.len() >= self.limits.max_records {
            Some(FlushReason::Records)
        } else if self.limits.max_bytes > 0 && self.bytes >= self.limits.max_bytes {
            Some(FlushReason::Bytes)
        } else {
            None
        }
    }

    /// When the oldest entry has lingered long enough (`None`: empty, or no linger limit).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.limits.linger.is_zero()).then_some(())?;
        self.oldest.map(|t| t + self.limits.linger)
    }

    /// Ready at the linger deadline; pending forever while there is none. Cancel-safe: meant for `select!`
    /// alongside the arrival of more records.
    pub async fn linger_expired(&self) -> FlushReason {
        match self.deadline() {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
        FlushReason::Linger
    }

    /// Take everything buffered, leaving the buffer empty (and its linger clock stopped).
    pub fn take(&mut self) -> Vec<Buffered<T>> {
        self.bytes = 0;
        self.oldest = None;
        std::mem::take(&mut self.entries)
    }

    /// Offsets a `pre_commit` may return for `consumed` (the next offset per partition the runtime has
    /// handed over): per partition, the lowest buffered offset (not yet written), else what was consumed.
    pub fn committable(&self, consumed: &HashMap<TopicPartition, i64>) -> HashMap<TopicPartition, i64> {
        let mut out = consumed.clone();
        for entry in &self.entries {
            if let Coordinates::Kafka { topic, partition, offset } = &entry.at {
                if let Some(next) = out.get_mut(&TopicPartition::new(topic.clone(), *partition)) {
                    *next = (*next).min(*offset);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> Coordinates {
        Coordinates::Kafka { topic: "t".into(), partition: 0, offset }
    }

    #[test]
    fn flushes_at_the_record_limit() {
        let mut b = SinkBuffer::new(BufferLimits { max_records: 3, max_bytes: 0, linger: Duration::ZERO });
        assert_eq!(b.push("a", 1, at(0)), None);
        assert_eq!(b.push("b", 1, at(1)), None);
        assert_eq!(b.push("c", 1, at(2)), Some(FlushReason::Records));
        let taken = b.take();
        assert_eq!(taken.iter().map(|e| e.item).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(taken[2].at, at(2), "each entry keeps its coordinates");
        assert!(b.is_empty() && b.bytes() == 0);
    }

    #[test]
    fn flushes_at_the_byte_limit() {
        let mut b = SinkBuffer::new(BufferLimits { max_records: 100, max_bytes: 10, linger: Duration::ZERO });
        assert_eq!(b.push(1, 4, Coordinates::PutIndex(0)), None);
        assert!(!b.would_overflow(6));
        assert!(b.would_overflow(7));
        assert_eq!(b.push(2, 6, Coordinates::PutIndex(1)), Some(FlushReason::Bytes));
        assert_eq!(b.bytes(), 10);
        b.take();
        assert!(!b.would_overflow(1000), "an oversized entry may go alone into an empty buffer");
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_at_linger_time() {
        let mut b = SinkBuffer::new(BufferLimits { max_records: 100, max_bytes: 0, linger: Duration::from_millis(500) });
        // Empty: the linger future never completes.
        assert!(tokio::time::timeout(Duration::from_secs(60), b.linger_expired()).await.is_err());
        let start = Instant::now();
        b.push("a", 1, at(0));
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.push("b", 1, at(1)); // a later record does not move the deadline
        assert_eq!(b.linger_expired().await, FlushReason::Linger);
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(b.take().len(), 2);
        assert_eq!(b.deadline(), None, "taking stops the clock");
    }

    #[test]
    fn committable_stops_below_buffered_records() {
        let mut b = SinkBuffer::new(BufferLimits { max_records: 100, max_bytes: 0, linger: Duration::ZERO });
        b.push((), 1, at(5));
        b.push((), 1, at(6));
        let consumed: HashMap<_, _> = [(TopicPartition::new("t", 0), 7), (TopicPartition::new("u", 0), 3)].into();
        let c = b.committable(&consumed);
        assert_eq!(c[&TopicPartition::new("t", 0)], 5);
        assert_eq!(c[&TopicPartition::new("u", 0)], 3);
    }
}
