//! A source helper for push-based protocols (MQTT; STOMP and cameras next): the protocol's receive loop
//! runs on a task of its own and hands messages to `SourceTask::poll` through a bounded channel.
//!
//! ```text
//! receive loop ──PushSender::send──► bounded channel ──PushReceiver::recv_batch──► poll ──► runtime
//!      ▲                                                                                      │
//!      └──────── ack upstream (e.g. MQTT PUBACK) ◄── commit_record(record) ◄── Kafka acked ◄──┘
//! ```
//!
//! What the runtime relies on (worker/src/source_task.rs), and how this helper meets it:
//!
//! - **`poll` returns within about a second when idle**: [`PushReceiver::recv_batch`] waits at most its
//!   `empty_timeout` for the first message and returns an empty batch after it.
//! - **Cancel-safe `poll`**: `recv_batch` only awaits the channel (`mpsc::Receiver::recv` is cancel-safe)
//!   and takes further messages without awaiting, so a task that polls only through it may return `true`
//!   from `poll_is_cancel_safe`; the runtime then runs `commit_record` while `poll` waits, which a broker
//!   that holds back messages until acknowledged needs.
//! - **Acks after Kafka**: `commit_record(record, metadata)` is called once per polled record, in poll
//!   order, after Kafka acknowledged it, or with `metadata = None` when a transform dropped it or it went
//!   to the DLQ (then too the source must acknowledge upstream, or the broker redelivers it forever).
//!   The ack handle travels on the record as a typed [`AckToken`] ([`with_ack`] / [`ack_of`]), not hidden
//!   in `source_offset`.
//! - **Empty source partitions are not stored**: the runtime stores `(source_partition, source_offset)`
//!   of an acknowledged record only when `source_partition` is a non-empty map (`PendingOffsets::record`
//!   returns early on an empty one); such a record's `source_offset` is ignored, nothing is written to
//!   the offset store and `OffsetReader::offset` has nothing to return for it. A protocol with no
//!   replayable position therefore uses one shared empty partition ([`no_offsets_partition`]); one with a
//!   position (a camera's frame counter, a STOMP sequence) uses a non-empty partition and its offset.
//!
//! When the receiving side ends (the loop returned, the connection is given up), `recv_batch` returns the
//! loop's error if it sent one ([`PushSender::fail`]), else a fatal "receive loop ended".

use connect_core::{AckToken, ConnectError, Result, SourceMap, SourceRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The receive loop's end of the channel.
#[derive(Debug)]
pub struct PushSender<M> {
    tx: mpsc::Sender<Result<M>>,
}

impl<M> Clone for PushSender<M> {
    fn clone(&self) -> Self {
        PushSender { tx: self.tx.clone() }
    }
}

/// The task stopped: its receiver is gone, and the receive loop should end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the source task stopped receiving")]
pub struct Stopped;

impl<M> PushSender<M> {
    /// Hand a message to `poll`, waiting while the channel is full: a slow Kafka slows the receive loop,
    /// and through TCP, the broker.
    pub async fn send(&self, message: M) -> Result<(), Stopped> {
        self.tx.send(Ok(message)).await.map_err(|_| Stopped)
    }
    /// End with an error `poll` returns to the runtime (retriable: the runtime retries `poll`; fatal: the
    /// task fails). The loop should return after this.
    pub async fn fail(&self, error: ConnectError) {
        // If the task already stopped there is no one to tell.
        let _ = self.tx.send(Err(error)).await;
    }
    /// The task stopped receiving.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
    /// Completes when the task stopped receiving: for a loop to `select!` on while it waits on its protocol.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// `poll`'s end of the channel.
#[derive(Debug)]
pub struct PushReceiver<M> {
    rx: mpsc::Receiver<Result<M>>,
    max_batch: usize,
    empty_timeout: Duration,
    /// The loop's error, found behind messages returned first: returned by the next `recv_batch`.
    error: Option<ConnectError>,
}

/// A bounded channel of `capacity` messages; `poll` takes at most `max_batch` at a time and returns empty
/// after waiting `empty_timeout` (keep it at about a second or less).
pub fn channel<M>(capacity: usize, max_batch: usize, empty_timeout: Duration) -> (PushSender<M>, PushReceiver<M>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (PushSender { tx }, PushReceiver { rx, max_batch: max_batch.max(1), empty_timeout, error: None })
}

impl<M> PushReceiver<M> {
    /// The next messages: waits up to `empty_timeout` for one (empty when none came), then takes what else
    /// is ready without waiting, up to `max_batch`. An error the loop sent is returned once the messages
    /// before it were taken. Cancel-safe.
    pub async fn recv_batch(&mut self) -> Result<Vec<M>> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let first = match tokio::time::timeout(self.empty_timeout, self.rx.recv()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => return Err(ConnectError::fatal("the receive loop ended")),
            Ok(Some(message)) => message?,
        };
        let mut batch = Vec::with_capacity(self.max_batch.min(self.rx.len() + 1));
        batch.push(first);
        while batch.len() < self.max_batch {
            match self.rx.try_recv() {
                Ok(Ok(message)) => batch.push(message),
                Ok(Err(e)) => {
                    // What came before the error goes to Kafka first; the error on the next call.
                    self.error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}

/// The partition for records with no replayable position: empty, so the runtime stores no offset for
/// them (see the [module docs](self)). Share one `Arc` across records.
pub fn no_offsets_partition() -> Arc<SourceMap> {
    Arc::new(SourceMap::new())
}

/// Attach a typed acknowledgement handle to a record.
pub fn with_ack<T: std::any::Any + Send + Sync>(record: SourceRecord, token: T) -> SourceRecord {
    record.with_ack(AckToken::new(token))
}

/// The record's acknowledgement handle of type `T`, as attached by [`with_ack`] (`None`: none, e.g. MQTT
/// QoS 0, or another type).
pub fn ack_of<T: std::any::Any>(record: &SourceRecord) -> Option<&T> {
    record.ack.as_ref()?.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, Value};

    #[tokio::test(start_paused = true)]
    async fn idle_poll_returns_empty_after_the_timeout() {
        let (_tx, mut rx) = channel::<u32>(4, 10, Duration::from_millis(800));
        let start = tokio::time::Instant::now();
        assert!(rx.recv_batch().await.unwrap().is_empty());
        assert_eq!(start.elapsed(), Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_bounded_and_the_channel_pushes_back() {
        let (tx, mut rx) = channel::<u32>(3, 2, Duration::from_secs(1));
        let producer = tokio::spawn(async move {
            for i in 0..5 {
                tx.send(i).await.unwrap();
            }
            tx.fail(ConnectError::retriable("connection given up")).await;
        });
        tokio::task::yield_now().await;
        assert!(!producer.is_finished(), "a full channel makes the receive loop wait");
        let mut received = Vec::new();
        let error = loop {
            match rx.recv_batch().await {
                Ok(batch) => {
                    assert!(!batch.is_empty() && batch.len() <= 2, "{batch:?}");
                    received.extend(batch);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(received, [0, 1, 2, 3, 4], "every message before the error, in order");
        assert!(error.is_retriable(), "then the loop's error");
        producer.await.unwrap();
        let (tx, mut rx) = channel::<u32>(1, 1, Duration::from_secs(1));
        drop(tx);
        assert_eq!(rx.recv_batch().await.unwrap_err().kind(), connect_core::ErrorKind::Fatal, "an ended loop fails the task");
    }

    #[tokio::test]
    async fn sender_sees_the_task_stop() {
        let (tx, rx) = channel::<u32>(1, 1, Duration::from_secs(1));
        drop(rx);
        assert!(tx.is_closed());
        tx.closed().await;
        assert_eq!(tx.send(1).await, Err(Stopped));
    }

    #[test]
    fn ack_tokens_are_typed_and_survive_clones() {
        #[derive(Debug, PartialEq)]
        struct PacketId(u16);
        let record = SourceRecord::new(no_offsets_partition(), SourceMap::new(), RecordData::new("t", None, Value::Null));
        assert_eq!(ack_of::<PacketId>(&record), None);
        let record = with_ack(record, PacketId(7));
        let copy = record.clone();
        assert_eq!(ack_of::<PacketId>(&copy), Some(&PacketId(7)));
        assert_eq!(ack_of::<u16>(&copy), None, "only under its own type");
        assert_eq!(copy, record);
        assert!(record.source_offset.is_empty() && record.source_partition.is_empty());
    }
}
