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
//! the last record they took. Records already taken are skipped when the runtime redelivers a batch.

use crate::config::S3SinkConfig;
use crate::format::{FileBuilder, Prepared};
use crate::storage::{Store, UploadError};
use chrono::{TimeZone, Utc};

struct OpenFile {
    directory: String,
    key: String,
    builder: FileBuilder,
}

/// A file waiting for its upload, and the offset to commit once it (and those before it) are stored.
struct Closed {
    key: String,
    bytes: Vec<u8>,
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
    /// The offset after the last record taken (written, reported or skipped): a redelivery starts there.
    next_offset: Option<i64>,
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
            next_offset: None,
            closed: Vec::new(),
            offset_to_commit: None,
            next_scheduled: None,
        }
    }

    /// Whether the record at `offset` is new to this writer.
    pub fn is_new(&self, offset: i64) -> bool {
        self.next_offset.is_none_or(|next| offset >= next)
    }

    /// A record that is not written (reported or skipped) still counts as taken.
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = Some(offset + 1);
    }

    /// Write a prepared record with its time (`None`: no time-based partitioner) into `directory`, rotating
    /// before and after as the module docs say. An error leaves no trace of the record.
    pub fn write(
        &mut self,
        config: &S3SinkConfig,
        offset: i64,
        timestamp: Option<i64>,
        directory: String,
        prepared: Prepared,
        now: i64,
    ) -> Result<(), crate::format::EncodeError> {
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
                self.close_files(config, now)?;
            }
        }
        if self.next_scheduled.is_none() {
            self.next_scheduled = config.rotate_schedule_ms.map(|period| next_rotation(config, now, period));
        }
        let index = match self.files.iter().position(|f| f.directory == directory) {
            Some(i) => i,
            None => {
                let key = config.object_key(&self.topic, &directory, self.partition, offset);
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
            return Err(e);
        }
        if self.base_timestamp.is_none() {
            self.base_timestamp = timestamp;
        }
        self.record_count += 1;
        self.current_directory = Some(directory);
        self.next_offset = Some(offset + 1);
        if self.record_count >= config.flush_size {
            self.close_files(config, now)?;
        }
        Ok(())
    }

    /// Close every open file: it waits for its upload.
    fn close_files(&mut self, config: &S3SinkConfig, now: i64) -> Result<(), crate::format::EncodeError> {
        let commit_after = self.next_offset.unwrap_or_default();
        for file in self.files.drain(..) {
            let bytes = file.builder.finish()?;
            self.closed.push(Closed { key: file.key, bytes, commit_after });
        }
        self.record_count = 0;
        self.base_timestamp = None;
        self.next_scheduled = config.rotate_schedule_ms.map(|period| next_rotation(config, now, period));
        Ok(())
    }

    /// Close the open files if the wall-clock schedule says so (no record needs to arrive for that).
    pub fn rotate_on_schedule(&mut self, config: &S3SinkConfig, now: i64) -> Result<(), crate::format::EncodeError> {
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

    /// The offset to commit if it moved since last asked.
    pub fn take_offset_to_commit(&mut self) -> Option<i64> {
        self.offset_to_commit.take()
    }

    /// Bytes held in memory (open and closed files).
    pub fn buffered_bytes(&self) -> usize {
        self.files.iter().map(|f| f.builder.bytes()).sum::<usize>() + self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
    }
}

/// The next scheduled rotation after `now`: the zone's midnight plus whole periods, as storage-common's
/// `DateTimeUtils.getNextTimeAdjustedByDay`.
fn next_rotation(config: &S3SinkConfig, now: i64, period: i64) -> i64 {
    let zone = match &config.partitioner {
        crate::partitioner::Partitioner::Time(t) => t.zone(),
        _ => chrono_tz::UTC,
    };
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
