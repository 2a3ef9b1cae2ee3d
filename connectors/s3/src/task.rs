//! The sink task: records go to their partition's [`PartitionWriter`]; files that rotation closed are
//! uploaded before `put` returns, and so are the whole parts of the files still open. A record that cannot be written (no directory for it, a value the format
//! cannot encode, a null value with `behavior.on.null.values=fail`) goes to the errant-record reporter. An
//! upload that fails because the store cannot be reached makes `put` fail retriably: the runtime waits and
//! redelivers the batch, the records already taken are skipped, and the waiting files are uploaded first.
//! `pre_commit` returns, per partition, only the offset after the last file stored, so Kafka's committed
//! offset never passes a record that is only in memory: after a crash the same records make the same files
//! again (exactly once, as Confluent's sink, unless the files depend on the wall clock).

use crate::config::{OnNull, S3SinkConfig};
use crate::format::FileBuilder;
use crate::storage::{Store, UploadError};
use crate::writer::{PartitionWriter, Views, WriteError};
use connect_core::{async_trait, Config, ConnectError, OffsetMap, Result, SinkRecord, SinkTask, SinkTaskContext, TopicPartition};
use connect_kit::redelivery::RecordId;
use connect_kit::{Backoff, BackoffPolicy, Jitter};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait between upload attempts while the store is unreachable.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct S3SinkTask {
    config: Option<Arc<S3SinkConfig>>,
    context: Option<SinkTaskContext>,
    store: Option<Arc<Store>>,
    writers: HashMap<TopicPartition, PartitionWriter>,
    outage: Option<Backoff>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl S3SinkTask {
    async fn report(&self, record: &SinkRecord, message: String) -> Result<()> {
        connect_kit::errant::report(self.context.as_ref().and_then(|c| c.errant_record_reporter()).as_ref(), record, message).await
    }

    /// Upload what every writer has closed; an unreachable store makes the caller retry later.
    async fn upload_closed(&mut self) -> Result<()> {
        let store = self.store.clone().expect("started");
        let mut failure = None;
        for writer in self.writers.values_mut() {
            if let Err(e) = writer.upload(&store).await {
                failure = Some(e);
                break;
            }
        }
        let outage = self.outage.as_mut().expect("started");
        match failure {
            None => {
                outage.reset();
                Ok(())
            }
            Some(UploadError::Fatal(m)) => Err(ConnectError::fatal(m)),
            Some(UploadError::Retriable(m)) => {
                let delay = outage.next_delay().unwrap_or(MAX_OUTAGE_BACKOFF);
                tracing::warn!(
                    attempt = outage.attempts(),
                    delay_ms = delay.as_millis() as u64,
                    "{m}; retrying the upload (the partitions wait)"
                );
                if let Some(context) = &self.context {
                    context.timeout(delay);
                }
                Err(ConnectError::retriable(m))
            }
        }
    }
}

#[async_trait]
impl SinkTask for S3SinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let config = S3SinkConfig::parse(&config)?;
        self.store = Some(Arc::new(Store::new(&config).await));
        let first = config.retry_backoff.max(Duration::from_millis(10));
        self.outage =
            Some(Backoff::new(BackoffPolicy::exponential(first, MAX_OUTAGE_BACKOFF.max(first)).with_jitter(Jitter::Symmetric(0.2))));
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    async fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.writers.insert(tp.clone(), PartitionWriter::new(&tp.topic, tp.partition));
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        // Files from an earlier put whose upload failed go first, so files are stored in order.
        self.upload_closed().await?;
        let now = now_ms();
        // A transform (Explode) may make several records of one Kafka record: they are told apart by part.
        let ids = RecordId::of_batch(records);
        for (index, record) in records.iter().enumerate() {
            let tp = record.original_topic_partition();
            let offset = record.original_offset();
            let position = (offset, ids[index].part);
            // The last record of its Kafka record: a commit may pass its offset only after it.
            let whole = records.get(index + 1).is_none_or(|next| next.original_offset() != offset || next.original_topic_partition() != tp);
            let writer = self.writers.entry(tp.clone()).or_insert_with(|| PartitionWriter::new(&tp.topic, tp.partition));
            if !writer.is_new(position) {
                continue;
            }
            let outcome = if record.data.value.is_null() {
                match config.on_null {
                    OnNull::Ignore => {
                        writer.skip(position, whole);
                        continue;
                    }
                    OnNull::Fail => Err("the record's value is null (behavior.on.null.values=fail)".to_string()),
                }
            } else {
                (|| {
                    let value = FileBuilder::prepare(&config.format, record).map_err(|e| e.to_string())?;
                    // Keys and headers are checked before anything is written, so the files stay aligned.
                    let key =
                        config.keys_format.as_ref().map(|f| FileBuilder::prepare_key(f, record)).transpose().map_err(|e| e.to_string())?;
                    let headers = config
                        .headers_format
                        .as_ref()
                        .map(|f| FileBuilder::prepare_headers(f, record))
                        .transpose()
                        .map_err(|e| e.to_string())?;
                    let timestamp = config.partitioner.timestamp(record, now).map_err(|e| e.to_string())?;
                    let directory = config.partitioner.encode(record, now).map_err(|e| e.to_string())?;
                    Ok((Views { value, key, headers }, timestamp, directory))
                })()
            };
            let written = match outcome {
                Ok((views, timestamp, directory)) => match writer.write(&config, position, whole, timestamp, directory, views, now) {
                    Ok(()) => Ok(()),
                    Err(WriteError::Record(e)) => Err(format!("cannot be written as {:?}: {e}", config.format)),
                    Err(e @ WriteError::File(_)) => return Err(ConnectError::fatal(format!("{tp}: {e}"))),
                },
                Err(e) => Err(e),
            };
            if let Err(message) = written {
                self.report(record, format!("{tp}@{offset}: {message}")).await?;
                // Taken only once reported: a report that fails (the DLQ unreachable) leaves the record to be
                // tried again when the batch is redelivered.
                if let Some(writer) = self.writers.get_mut(&tp) {
                    writer.skip(position, whole);
                }
            }
        }
        self.upload_closed().await
    }

    /// The offset after the last file stored, per partition that stored one since; scheduled rotation happens
    /// here too, since it needs no record.
    async fn pre_commit(&mut self, _offsets: OffsetMap) -> Result<OffsetMap> {
        let config = self.config.clone().expect("started");
        let now = now_ms();
        for writer in self.writers.values_mut() {
            writer.rotate_on_schedule(&config, now).map_err(|e| ConnectError::fatal(e.to_string()))?;
        }
        // A store that is down now leaves the files waiting; their offsets are not committed.
        if let Err(e) = self.upload_closed().await {
            if !e.is_retriable() {
                return Err(e);
            }
        }
        let mut commit = OffsetMap::new();
        for (tp, writer) in self.writers.iter() {
            if let Some(offset) = writer.offset_to_commit() {
                commit.insert(tp.clone(), offset);
            }
        }
        Ok(commit)
    }

    /// Revoked partitions drop their open files (the multipart uploads begun for them are aborted): the next
    /// owner reads those records again.
    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let uploads = partitions.iter().filter_map(|tp| self.writers.remove(tp)).flat_map(PartitionWriter::abandon).collect();
        if let Some(store) = &self.store {
            store.abort_all(uploads).await;
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        let uploads = self.writers.drain().flat_map(|(_, writer)| writer.abandon()).collect();
        if let Some(store) = &self.store {
            store.abort_all(uploads).await;
        }
        Ok(())
    }
}
