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
//! With `store.kafka.keys` / `store.kafka.headers`, each file has a keys and a headers file beside it that take
//! the same records (a record goes into all of them or none) and close with it.
//!
//! An open file's bytes go to the store in `s3.part.size` parts while it is written ([`PartitionWriter::upload`]
//! sends the whole parts it holds), so a partition holds about a part per open file, not whole files.
//!
//! Closed files wait to be uploaded; the offset to commit moves only when they all are, to the offset after
//! the last Kafka record they took whole (a transform such as Explode makes several records of one Kafka
//! record: a file may end between them, and the commit then stops before that Kafka record). Records already
//! taken, counted by (offset, part), are skipped when the runtime redelivers a batch.

use crate::config::{Compatibility, S3SinkConfig, View};
use crate::format::{push_parts, EncodeError, Encoded, FileBuilder, Prepared};
use crate::storage::{ObjectUpload, Store, UploadError};
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

/// What a record puts into a file and the files beside it.
pub struct Views<'a> {
    pub value: Prepared<'a>,
    /// With `store.kafka.keys`.
    pub key: Option<Prepared<'a>>,
    /// With `store.kafka.headers`.
    pub headers: Option<Prepared<'a>>,
}

struct OpenFile {
    directory: String,
    upload: ObjectUpload,
    builder: FileBuilder,
    /// The keys and headers files beside it (their uploads and builders), when stored.
    keys: Option<(ObjectUpload, FileBuilder)>,
    headers: Option<(ObjectUpload, FileBuilder)>,
}

impl OpenFile {
    /// Encode a record for the file and the files beside it, adding nothing yet.
    fn encode(&mut self, views: Views<'_>) -> Result<(Encoded, Option<Encoded>, Option<Encoded>), EncodeError> {
        let value = self.builder.encode(views.value)?;
        let beside = |file: &mut Option<(ObjectUpload, FileBuilder)>, view: Option<Prepared<'_>>, name: &str| match (file, view) {
            (Some((_, builder)), Some(prepared)) => builder.encode(prepared).map(Some),
            (None, None) => Ok(None),
            _ => Err(EncodeError(format!("the record's {name} do not match the files being written"))),
        };
        let key = beside(&mut self.keys, views.key, "keys")?;
        let headers = beside(&mut self.headers, views.headers, "headers")?;
        Ok((value, key, headers))
    }

    fn push(&mut self, (value, key, headers): (Encoded, Option<Encoded>, Option<Encoded>)) -> Result<(), EncodeError> {
        self.builder.push(value)?;
        if let (Some((_, builder)), Some(key)) = (&mut self.keys, key) {
            builder.push(key)?;
        }
        if let (Some((_, builder)), Some(headers)) = (&mut self.headers, headers) {
            builder.push(headers)?;
        }
        Ok(())
    }

    /// Whether the record's value, key and headers may go into these files, the value rewritten to the file's
    /// schema where `schema.compatibility` allows ([`FileBuilder::fit`]; keys and headers are compared only, as
    /// Confluent's sink considers value schemas alone): a different schema in any of them starts new files (an
    /// Avro file has one schema). The value is rewritten only once the others are accepted.
    fn fit(&self, views: &mut Views<'_>, compatibility: Compatibility) -> Result<bool, EncodeError> {
        let beside = |file: &Option<(ObjectUpload, FileBuilder)>, view: &Option<Prepared<'_>>| match (file, view) {
            (Some((_, builder)), Some(prepared)) => builder.accepts(prepared),
            _ => true,
        };
        if !beside(&self.keys, &views.key) || !beside(&self.headers, &views.headers) {
            return Ok(false);
        }
        self.builder.fit(&mut views.value, compatibility)
    }

    /// The file and the files beside it, each with its upload.
    fn outputs(&mut self) -> impl Iterator<Item = (&mut ObjectUpload, &mut FileBuilder)> {
        std::iter::once((&mut self.upload, &mut self.builder))
            .chain(self.keys.as_mut().map(|(u, b)| (u, b)))
            .chain(self.headers.as_mut().map(|(u, b)| (u, b)))
    }
}

/// A file waiting for its upload, and the offset to commit once it (and those before it) are stored: set only
/// on the last of the files closed together, so nothing is committed until all of them are stored.
struct Closed {
    /// Its bytes not yet stored, as parts.
    upload: ObjectUpload,
    commit_after: Option<i64>,
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
    /// Uploads of files that could not be finished, to abort.
    abandoned: Vec<ObjectUpload>,
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
            abandoned: Vec::new(),
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
        mut views: Views<'_>,
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
            // Only when the files stay open: a record that starts new files keeps its own schema.
            let by_schema = !(by_time || by_schedule)
                && match self.files.iter().find(|f| f.directory == directory) {
                    Some(file) => !file.fit(&mut views, config.compatibility)?,
                    None => false,
                };
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
                let builder = FileBuilder::new(&config.format, config.gzip, config.gzip_level, &key, config.part_size);
                let beside = |view: View, format: &Option<crate::config::Format>| {
                    let name = config.view_key(&key, view)?;
                    let builder = FileBuilder::new(format.as_ref()?, config.gzip, config.gzip_level, &name, config.part_size);
                    Some((ObjectUpload::new(name), builder))
                };
                let keys = beside(View::Keys, &config.keys_format);
                let headers = beside(View::Headers, &config.headers_format);
                self.files.push(OpenFile { directory: directory.clone(), upload: ObjectUpload::new(key), builder, keys, headers });
                self.files.len() - 1
            }
        };
        let encoded = match self.files[index].encode(views) {
            Ok(encoded) => encoded,
            Err(e) => {
                // A file is named after its first record: one whose first record failed is not kept.
                if self.files[index].builder.records() == 0 {
                    self.files.remove(index);
                }
                return Err(WriteError::Record(e));
            }
        };
        self.files[index].push(encoded).map_err(WriteError::File)?;
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
        let mut finished = Vec::new();
        let mut failure = None;
        for file in std::mem::take(&mut self.files) {
            for (mut upload, builder) in [Some((file.upload, file.builder)), file.keys, file.headers].into_iter().flatten() {
                if failure.is_some() {
                    self.abandoned.push(upload);
                    continue;
                }
                let tail = match builder.finish() {
                    Ok(tail) => tail,
                    Err(e) => {
                        failure = Some(e);
                        self.abandoned.push(upload);
                        continue;
                    }
                };
                // What is left, in parts: all whole but the last, as S3 requires. A file that is empty still
                // makes an object.
                let last = push_parts(tail.into(), config.part_size, upload.waiting_mut());
                if !last.is_empty() || (upload.waiting_mut().is_empty() && upload.parts_stored() == 0) {
                    upload.waiting_mut().push_back(last);
                }
                finished.push(upload);
            }
        }
        if let Some(e) = failure {
            // The task fails; the uploads begun for these files are aborted when it stops.
            self.abandoned.extend(finished);
            return Err(e);
        }
        // Only the last file closed now carries the offset: the records before it may be in any of them (one
        // file per directory, and the keys and headers files), so the offset moves once all are stored.
        let last = finished.len().saturating_sub(1);
        for (i, upload) in finished.into_iter().enumerate() {
            self.closed.push(Closed { upload, commit_after: (i == last).then_some(commit_after) });
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

    /// Upload the closed files in order (the offset to commit moves with each one stored), then the whole parts
    /// the open files hold.
    pub async fn upload(&mut self, store: &Store) -> Result<usize, UploadError> {
        let mut uploaded = 0;
        while let Some(file) = self.closed.first_mut() {
            store.finish(&mut file.upload).await?;
            tracing::debug!(key = %file.upload.key(), "uploaded");
            let file = self.closed.remove(0);
            if let Some(offset) = file.commit_after {
                self.offset_to_commit = Some(offset);
            }
            uploaded += 1;
        }
        let part_size = store.part_size();
        for file in &mut self.files {
            for (upload, builder) in file.outputs() {
                builder.take_parts(part_size, upload.waiting_mut());
                store.send_parts(upload).await?;
            }
        }
        Ok(uploaded)
    }

    /// Give up the files not stored (the partition was revoked or the task stops): their records are read
    /// again from the committed offset. Returns their uploads, for the caller to abort ([`Store::abort_all`]).
    pub fn abandon(self) -> Vec<ObjectUpload> {
        let mut uploads = self.abandoned;
        for file in self.files {
            uploads.extend([Some(file.upload), file.keys.map(|(u, _)| u), file.headers.map(|(u, _)| u)].into_iter().flatten());
        }
        uploads.extend(self.closed.into_iter().map(|c| c.upload));
        uploads
    }

    /// The offset after the last file stored (asked again after a commit that failed, it is the same).
    pub fn offset_to_commit(&self) -> Option<i64> {
        self.offset_to_commit
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

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, SinkRecord, Value};

    fn config(pairs: &[(&str, &str)]) -> S3SinkConfig {
        let mut all: connect_core::Config = [
            ("s3.bucket.name", "b"),
            ("flush.size", "2"),
            ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        S3SinkConfig::parse(&all).unwrap()
    }

    fn record(offset: i64) -> SinkRecord {
        let mut data = RecordData::new("t", None, Value::String(format!("v{offset}")));
        data.key = Value::String(format!("k{offset}"));
        data.headers.add("h", Value::String("x".into()));
        SinkRecord::new(data, 0, offset, connect_core::TimestampType::CreateTime)
    }

    fn write(w: &mut PartitionWriter, c: &S3SinkConfig, r: &SinkRecord, directory: &str) -> Result<(), WriteError> {
        let views = Views {
            value: FileBuilder::prepare(&c.format, r).unwrap(),
            key: c.keys_format.as_ref().map(|f| FileBuilder::prepare_key(f, r)).transpose().map_err(WriteError::Record)?,
            headers: c.headers_format.as_ref().map(|f| FileBuilder::prepare_headers(f, r)).transpose().map_err(WriteError::Record)?,
        };
        w.write(c, (r.kafka_offset, 0), true, None, directory.to_string(), views, 0)
    }

    /// Version 1: `{id: int32}`; version 2: `{id: int32, delay: int32 = 0}`; `None`: version 2 without a version.
    fn versioned(offset: i64, version: Option<i32>) -> SinkRecord {
        use connect_core::{Schema, SchemaType, Struct};
        let mut delay = Schema::new(SchemaType::Int32);
        delay.default = Some(Value::Int32(0));
        let mut value = Struct::new();
        let mut schema = if version == Some(1) {
            value.put("id", Value::Int32(offset as i32));
            Schema::structure([("id".to_string(), Schema::new(SchemaType::Int32).into_ref())])
        } else {
            value.put("id", Value::Int32(offset as i32)).put("delay", Value::Int32(5));
            Schema::structure([("id".to_string(), Schema::new(SchemaType::Int32).into_ref()), ("delay".to_string(), delay.into_ref())])
        }
        .named("Movement");
        schema.version = version;
        SinkRecord::new(
            RecordData::new("t", Some(schema.into_ref()), Value::Struct(value)),
            0,
            offset,
            connect_core::TimestampType::CreateTime,
        )
    }

    /// A part size for unit tests (files there stay smaller).
    const PART: usize = 5 << 20;

    fn lines(closed: &Closed) -> Vec<String> {
        let bytes: Vec<u8> = closed.upload.waiting().iter().flat_map(|b| b.iter().copied()).collect();
        String::from_utf8(bytes).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn backward_compatibility_projects_older_records_and_starts_a_file_for_newer_ones() {
        let c = config(&[("schema.compatibility", "BACKWARD"), ("flush.size", "3")]);
        let mut w = PartitionWriter::new("t", 0);
        write(&mut w, &c, &versioned(0, Some(1)), "d").unwrap();
        write(&mut w, &c, &versioned(1, Some(2)), "d").unwrap();
        assert_eq!(w.closed.len(), 1, "a newer version starts a new file");
        write(&mut w, &c, &versioned(2, Some(1)), "d").unwrap();
        write(&mut w, &c, &versioned(3, Some(2)), "d").unwrap();
        assert_eq!(w.closed.len(), 2, "flush.size 3: offsets 1, 2 and 3 in the second file");
        assert_eq!(lines(&w.closed[0]), [r#"{"id":0}"#]);
        assert_eq!(
            lines(&w.closed[1]),
            [r#"{"id":1,"delay":5}"#, r#"{"id":2,"delay":0}"#, r#"{"id":3,"delay":5}"#],
            "the version 1 record projected to version 2, with the default"
        );
        // A new file starts from its first record's schema (Confluent's writer forgets its schemas at each commit);
        // without versions to compare, a change of schema starts a new file, as with NONE.
        write(&mut w, &c, &versioned(4, None), "d").unwrap();
        write(&mut w, &c, &versioned(5, Some(1)), "d").unwrap();
        assert_eq!(w.closed.len(), 3);
        assert_eq!(lines(&w.closed[2]), [r#"{"id":4,"delay":5}"#]);
        assert_eq!(w.files[0].builder.schema().and_then(|s| s.version), Some(1));
    }

    #[test]
    fn forward_compatibility_projects_newer_records_and_none_starts_a_file_for_any_other_schema() {
        let c = config(&[("schema.compatibility", "FORWARD"), ("flush.size", "2")]);
        let mut w = PartitionWriter::new("t", 0);
        write(&mut w, &c, &versioned(0, Some(2)), "d").unwrap();
        write(&mut w, &c, &versioned(1, Some(1)), "d").unwrap();
        assert_eq!(w.closed.len(), 1, "an older version starts a new file");
        write(&mut w, &c, &versioned(2, Some(2)), "d").unwrap();
        assert_eq!(lines(&w.closed[1]), [r#"{"id":1}"#, r#"{"id":2}"#], "version 2 projected to version 1");
        let c = config(&[("flush.size", "10")]);
        let mut w = PartitionWriter::new("t", 0);
        for (offset, version) in [(0, Some(1)), (1, Some(2)), (2, Some(1))] {
            write(&mut w, &c, &versioned(offset, version), "d").unwrap();
        }
        assert_eq!(w.closed.len(), 2, "NONE: every change of schema starts a new file");
    }

    #[test]
    fn files_closed_together_move_the_offset_only_once_all_are_stored() {
        let c = config(&[("store.kafka.keys", "true"), ("keys.format.class", "JsonFormat"), ("store.kafka.headers", "true")]);
        let mut w = PartitionWriter::new("t", 0);
        // Two directories, one record each: flush.size 2 closes both files (and their keys and headers files).
        write(&mut w, &c, &record(0), "partition=a").unwrap();
        write(&mut w, &c, &record(1), "partition=b").unwrap();
        let closed: Vec<(&str, Option<i64>)> = w.closed.iter().map(|f| (f.upload.key(), f.commit_after)).collect();
        assert_eq!(
            closed,
            [
                ("topics/t/partition=a/t+0+0000000000.json", None),
                ("topics/t/partition=a/t+0+0000000000.keys.json", None),
                ("topics/t/partition=a/t+0+0000000000.headers.avro", None),
                ("topics/t/partition=b/t+0+0000000001.json", None),
                ("topics/t/partition=b/t+0+0000000001.keys.json", None),
                ("topics/t/partition=b/t+0+0000000001.headers.avro", Some(2)),
            ]
        );
    }

    #[test]
    fn a_key_that_cannot_be_encoded_leaves_the_files_aligned() {
        // ByteArray keys: the value encodes as JSON, a number key does not encode as bytes.
        let c = config(&[("store.kafka.keys", "true"), ("keys.format.class", "ByteArrayFormat"), ("flush.size", "10")]);
        let mut w = PartitionWriter::new("t", 0);
        let mut numbered = record(0);
        numbered.data.key = Value::Int64(5);
        assert!(matches!(write(&mut w, &c, &numbered, "d"), Err(WriteError::Record(_))));
        assert!(w.files.is_empty(), "a file whose first record failed is not kept, nor its keys file");
        write(&mut w, &c, &record(1), "d").unwrap();
        let mut numbered = record(2);
        numbered.data.key = Value::Int64(5);
        assert!(matches!(write(&mut w, &c, &numbered, "d"), Err(WriteError::Record(_))));
        write(&mut w, &c, &record(3), "d").unwrap();
        let file = &w.files[0];
        assert_eq!((file.builder.records(), file.keys.as_ref().unwrap().1.records()), (2, 2), "the files stay aligned");
    }

    #[test]
    fn a_key_with_another_schema_starts_new_files() {
        let c = config(&[("store.kafka.keys", "true"), ("flush.size", "10")]);
        let mut w = PartitionWriter::new("t", 0);
        write(&mut w, &c, &record(0), "d").unwrap();
        let mut other = record(1);
        other.data.key = Value::Map(vec![(Value::String("id".into()), Value::Int64(1))]);
        write(&mut w, &c, &other, "d").unwrap();
        let closed: Vec<&str> = w.closed.iter().map(|f| f.upload.key()).collect();
        assert_eq!(closed, ["topics/t/d/t+0+0000000000.json", "topics/t/d/t+0+0000000000.keys.avro"], "the string-keyed files closed");
        assert_eq!(w.files[0].upload.key(), "topics/t/d/t+0+0000000001.json");
    }

    #[test]
    fn headers_are_key_value_strings_with_bytes_in_base64_and_json_wraps_them() {
        let mut r = record(0);
        r.data.headers.add("trace", Value::Bytes(vec![0xff, 0x00].into()));
        let prepared = FileBuilder::prepare_headers(&crate::config::Format::Json, &r).unwrap();
        let mut file = FileBuilder::new(&crate::config::Format::Json, false, None, "k", PART);
        file.append(prepared).unwrap();
        let line = String::from_utf8(file.finish().unwrap()).unwrap();
        assert_eq!(line, "{\"headers\":[{\"key\":\"h\",\"value\":\"x\"},{\"key\":\"trace\",\"value\":\"/wA=\"}]}\n");
        r.data.headers = Default::default();
        let err = FileBuilder::prepare_headers(&crate::config::Format::Json, &r).err().unwrap();
        assert!(err.0.contains("Headers cannot be null or empty"), "{err}");
    }

    #[test]
    fn parquet_keys_and_headers_files_hold_confluents_record_key_and_record_headers_structs() {
        let parquet = crate::config::Format::Parquet { codec: "snappy".into() };
        let r = record(0);
        let key = FileBuilder::prepare_key(&parquet, &r).unwrap();
        let schema = key.schema().cloned().unwrap();
        assert_eq!(schema.name.as_deref(), Some("RecordKey"));
        assert_eq!(schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["key"]);
        assert_eq!(schema.fields[0].schema.kind, connect_core::SchemaType::String, "a schemaless string key, inferred");
        let mut file = FileBuilder::new(&parquet, false, None, "k", PART);
        file.append(key).unwrap();
        assert!(file.finish().unwrap().starts_with(b"PAR1"));

        let headers = FileBuilder::prepare_headers(&parquet, &r).unwrap();
        let schema = headers.schema().cloned().unwrap();
        assert_eq!(schema.name.as_deref(), Some("RecordHeaders"));
        assert_eq!(schema.fields[0].name, "headers");
        assert_eq!(schema.fields[0].schema.kind, connect_core::SchemaType::Array);
        let mut file = FileBuilder::new(&parquet, false, None, "h", PART);
        file.append(headers).unwrap();
        assert!(file.finish().unwrap().starts_with(b"PAR1"));
    }
}
