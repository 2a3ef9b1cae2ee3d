//! The files of one Kafka partition, rotated as Confluent's `TopicPartitionWriter` rotates them, so that the
//! same records always make the same files with the same names:
//!
//! - one open file per directory (encoded partition); a file is named after the offset of its first record;
//! - before a record is written, every open file is closed if its time is up (`rotate.interval.ms` of record
//!   time since the first record of the open files, or, by default, a record for another time directory),
//!   if the wall-clock schedule says so, or if the record's schema differs from its file's; the record then
//!   starts the new file;
//! - after a record is written, every open file is closed once the open files hold `flush.size` records.
//!
//! Closed files wait to be uploaded; the offset to commit moves only when they all are, to the offset after
//! the last Kafka record they took whole (a transform such as Explode makes several records of one Kafka
//! record: a file may end between them, and the commit then stops before that Kafka record). Records already
//! taken, counted by (offset, part), are skipped when the runtime redelivers a batch.

use crate::config::S3SinkConfig;
use crate::format::{EncodeError, FileBuilder, Prepared};
use crate::storage::{Store, UploadError};
use bytes::Bytes;
use chrono::{TimeZone, Utc};

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This record's fault: it goes to the errant-record reporter.
    #[error("{0}")]
    Record(#[from] EncodeError),
    /// A file that was being closed could not be finished: its records cannot be stored, so the task fails
    /// (and restarts, reading them again).
    #[error("a file could not be finished: {0}")]
    File(EncodeError),
}

/// A record's place in its Kafka partition: its offset, and which of the records a transform made of it.
pub type Position = (i64, u32);

struct OpenFile {
    directory: String,
    key: String,
    builder: FileBuilder,
}

/// A file waiting for its upload, and the offset to commit once it (and those before it) are stored.
struct Closed {
    key: String,
    bytes: Bytes,
    commit_after: i64,
}

pub struct PartitionWriter {
    topic: String,
    partition: i32,
    /// Open files in the order they were opened.
    files: Vec<OpenFile>,
    /// Records in the open files, and the time of their first one.
    record_count: usize,
    base_timestamp: Option<i64>,
    current_directory: Option<String>,
    /// The last record taken (written, reported or skipped): a redelivery starts after it.
    last_taken: Option<Position>,
    /// The offset to commit if the files were closed now: after the last Kafka record taken whole.
    commit_point: Option<i64>,
    closed: Vec<Closed>,
    offset_to_commit: Option<i64>,
    next_scheduled: Option<i64>,
}

impl PartitionWriter {
    pub fn new(topic: &str, partition: i32) -> Self {
        PartitionWriter {
            topic: topic.to_string(),
            partition,
            files: Vec::new(),
            record_count: 0,
            base_timestamp: None,
            current_directory: None,
            last_taken: None,
            commit_point: None,
            closed: Vec::new(),
            offset_to_commit: None,
            next_scheduled: None,
        }
    }

    /// Whether the record at `position` is new to this writer.
    pub fn is_new(&self, position: Position) -> bool {
        self.last_taken.is_none_or(|last| position > last)
    }

    /// Count a record as taken (written, or reported or skipped: those count too). `whole`: it is the last
    /// record of its Kafka record.
    pub fn skip(&mut self, position: Position, whole: bool) {
        self.last_taken = Some(position);
        self.commit_point = Some(if whole { position.0 + 1 } else { position.0 });
    }

    /// Write a prepared record with its time (`None`: no time-based partitioner) into `directory`, rotating
    /// before and after as the module docs say. An error leaves no trace of the record.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        config: &S3SinkConfig,
        position: Position,
        whole: bool,
        timestamp: Option<i64>,
        directory: String,
        prepared: Prepared<'_>,
        now: i64,
    ) -> Result<(), WriteError> {
        if self.record_count > 0 {
            let by_time = match (config.rotate_interval_ms, timestamp, self.base_timestamp) {
                (Some(interval), Some(ts), Some(base)) => {
                    ts - base >= interval
                        || (config.rotate_on_partition_change && self.current_directory.as_deref() != Some(directory.as_str()))
                }
                _ => false,
            };
            let by_schedule = self.next_scheduled.is_some_and(|at| now >= at);
            let by_schema = self.files.iter().find(|f| f.directory == directory).is_some_and(|f| !f.builder.accepts(&prepared));
            if by_time || by_schedule || by_schema {
                self.close_files(config, now).map_err(WriteError::File)?;
            }
        }
        if self.next_scheduled.is_none() {
            self.next_scheduled = config.rotate_schedule_ms.map(|period| next_rotation(config, now, period));
        }
        let index = match self.files.iter().position(|f| f.directory == directory) {
            Some(i) => i,
            None => {
                // Named after its first record's Kafka offset, as Confluent's.
                let key = config.object_key(&self.topic, &directory, self.partition, position.0);
                let builder = FileBuilder::new(&config.format, config.gzip, config.gzip_level, &key);
                self.files.push(OpenFile { directory: directory.clone(), key, builder });
                self.files.len() - 1
            }
        };
        if let Err(e) = self.files[index].builder.append(prepared) {
            // A file is named after its first record: one whose first record failed is not kept.
            if self.files[index].builder.records() == 0 {
                self.files.remove(index);
            }
            return Err(WriteError::Record(e));
        }
        if self.base_timestamp.is_none() {
            self.base_timestamp = timestamp;
        }
        self.record_count += 1;
        self.current_directory = Some(directory);
        self.skip(position, whole);
        if self.record_count >= config.flush_size {
            self.close_files(config, now).map_err(WriteError::File)?;
        }
        Ok(())
    }

    /// Close every open file: it waits for its upload.
    fn close_files(&mut self, config: &S3SinkConfig, now: i64) -> Result<(), EncodeError> {
        let commit_after = self.commit_point.unwrap_or_default();
        for file in std::mem::take(&mut self.files) {
            let bytes = file.builder.finish()?;
            self.closed.push(Closed { key: file.key, bytes: Bytes::from(bytes), commit_after });
        }
        self.record_count = 0;
        self.base_timestamp = None;
        self.next_scheduled = config.rotate_schedule_ms.map(|period| next_rotation(config, now, period));
        Ok(())
    }

    /// Close the open files if the wall-clock schedule says so (no record needs to arrive for that).
    pub fn rotate_on_schedule(&mut self, config: &S3SinkConfig, now: i64) -> Result<(), EncodeError> {
        if self.record_count > 0 && self.next_scheduled.is_some_and(|at| now >= at) {
            self.close_files(config, now)?;
        }
        Ok(())
    }

    /// Upload the closed files in order; the offset to commit moves with each one stored.
    pub async fn upload(&mut self, store: &Store) -> Result<usize, UploadError> {
        let mut uploaded = 0;
        while let Some(file) = self.closed.first() {
            store.upload(&file.key, file.bytes.clone()).await?;
            tracing::debug!(key = %file.key, bytes = file.bytes.len(), "uploaded");
            let file = self.closed.remove(0);
            self.offset_to_commit = Some(file.commit_after);
            uploaded += 1;
        }
        Ok(uploaded)
    }

    /// The offset after the last file stored (asked again after a commit that failed, it is the same).
    pub fn offset_to_commit(&self) -> Option<i64> {
        self.offset_to_commit
    }

    /// Bytes held in memory (open and closed files).
    pub fn buffered_bytes(&self) -> usize {
        self.files.iter().map(|f| f.builder.bytes()).sum::<usize>() + self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
    }
}

/// The next scheduled rotation after `now`: the zone's midnight plus whole periods, as storage-common's
/// `DateTimeUtils.getNextTimeAdjustedByDay`.
fn next_rotation(config: &S3SinkConfig, now: i64, period: i64) -> i64 {
    let zone = config.timezone;
    let Some(now_utc) = Utc.timestamp_millis_opt(now).single() else { return now + period };
    let local = now_utc.with_timezone(&zone);
    let midnight = zone
        .from_local_datetime(&local.date_naive().and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(now);
    let day = 86_400_000;
    midnight + (((now - midnight) / period + 1) * period).min(day)
}
