//! FileStreamSource: one task reads the file and resumes at the stored byte position.

use crate::config::{self, BATCH_SIZE, FILE, TOPIC};
use connect_core::{
    async_trait, schemas, Config, ConfigDef, ConnectError, Connector, ConnectorContext, RecordData, Result, SourceConnector, SourceMap,
    SourceRecord, SourceTask, SourceTaskContext, Value,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncSeekExt, BufReader};

/// How long `poll` waits at the end of the file (or for a missing file) before returning empty.
const IDLE_WAIT: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct FileStreamSourceConnector {
    config: Config,
}

#[async_trait]
impl Connector for FileStreamSourceConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::source_def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        config::source_def().parse(&config)?;
        self.config = config;
        Ok(())
    }
    /// One file, one task, whatever `tasks.max` says (as in Kafka).
    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone()])
    }
}

impl SourceConnector for FileStreamSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<FileStreamSourceTask>::default()
    }
}

/// The read buffer is kept between lines up to this size.
const MAX_KEPT_LINE_BUFFER: usize = 1 << 20;

#[derive(Default)]
pub struct FileStreamSourceTask {
    file: Option<String>,
    topic: String,
    batch_size: usize,
    context: Option<SourceTaskContext>,
    reader: Option<BufReader<Box<dyn AsyncRead + Send + Unpin>>>,
    /// Byte position after the last complete line returned.
    position: u64,
    /// Bytes of a line whose newline has not arrived yet; kept across polls, never dropped.
    pending: Vec<u8>,
    partition: Arc<SourceMap>,
    /// Records from stdin have no partition: nothing to resume from.
    no_partition: Arc<SourceMap>,
}

fn position_map(position: u64) -> SourceMap {
    let mut m = SourceMap::new();
    m.insert("position".into(), position.into());
    m
}

impl FileStreamSourceTask {
    /// Open the file (or stdin) and seek to the stored position. `Ok(false)`: the file is not there yet.
    async fn open(&mut self) -> Result<bool> {
        let Some(path) = &self.file else {
            self.reader = Some(BufReader::with_capacity(64 * 1024, Box::new(tokio::io::stdin())));
            return Ok(true);
        };
        let mut file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %path, "couldn't find file for FileStreamSourceTask, waiting for it to be created");
                return Ok(false);
            }
            Err(e) => return Err(ConnectError::fatal(format!("cannot open {path}")).with_source(e)),
        };
        let stored = self.context.as_ref().and_then(|c| c.offsets.offset(&self.partition));
        if let Some(pos) = stored.as_ref().and_then(|o| o.get("position")).and_then(|p| p.as_u64()) {
            tracing::debug!(file = %path, position = pos, "resuming from stored offset");
            file.seek(std::io::SeekFrom::Start(pos))
                .await
                .map_err(|e| ConnectError::fatal(format!("cannot seek {path} to {pos}")).with_source(e))?;
            self.position = pos;
        }
        self.reader = Some(BufReader::with_capacity(64 * 1024, Box::new(file)));
        Ok(true)
    }

    fn record(&self, line: String) -> SourceRecord {
        let partition = if self.file.is_some() { self.partition.clone() } else { self.no_partition.clone() };
        let offset = if self.file.is_some() { position_map(self.position) } else { SourceMap::new() };
        SourceRecord::new(partition, offset, RecordData::new(self.topic.clone(), Some(schemas::string()), Value::String(line)))
    }
}

#[async_trait]
impl SourceTask for FileStreamSourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = config::source_def().parse(&config)?;
        self.file = parsed.optional_string(FILE).filter(|f| !f.is_empty());
        self.topic = parsed.string(TOPIC);
        self.batch_size = parsed.int(BATCH_SIZE) as usize;
        let mut partition = SourceMap::new();
        partition.insert("filename".into(), self.file.clone().into());
        self.partition = Arc::new(partition);
        self.context = Some(context);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.reader.is_none() && !self.open().await? {
            tokio::time::sleep(IDLE_WAIT).await;
            return Ok(Vec::new());
        }
        // Some room up front (a 10,000-line batch grew through a dozen copies from nothing), not a whole batch's:
        // a tailed file brings a line or two per poll.
        let mut records = Vec::with_capacity(self.batch_size.min(256));
        while records.len() < self.batch_size {
            let reader = self.reader.as_mut().expect("opened above");
            let n =
                reader.read_until(b'\n', &mut self.pending).await.map_err(|e| ConnectError::from(e).context("reading the source file"))?;
            if n == 0 || self.pending.last() != Some(&b'\n') {
                break; // end of file, possibly mid-line: the partial line stays pending
            }
            self.position += self.pending.len() as u64;
            let line = &self.pending[..self.pending.len() - 1];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // One allocation of the line's size; the read buffer is kept for the next line (taking it made
            // every line grow a new buffer from nothing, half a dozen reallocations each).
            let text = String::from_utf8_lossy(line).into_owned();
            self.pending.clear();
            if self.pending.capacity() > MAX_KEPT_LINE_BUFFER {
                self.pending = Vec::new(); // one huge line must not pin its buffer for good
            }
            records.push(self.record(text));
        }
        if records.is_empty() {
            tokio::time::sleep(IDLE_WAIT).await;
        }
        Ok(records)
    }

    async fn stop(&mut self) -> Result<()> {
        self.reader = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::OffsetReader;
    use std::io::Write;

    struct Stored(Option<u64>);
    impl OffsetReader for Stored {
        fn offset(&self, _: &SourceMap) -> Option<SourceMap> {
            self.0.map(position_map)
        }
    }

    async fn task(path: &str, stored: Option<u64>, batch: &str) -> FileStreamSourceTask {
        let mut t = FileStreamSourceTask::default();
        let cfg: Config =
            [("file", path), ("topic", "lines"), ("batch.size", batch)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let ctx = SourceTaskContext { connector_name: "c".into(), task_id: 0, offsets: Arc::new(Stored(stored)) };
        t.start(ctx, cfg).await.unwrap();
        t
    }

    fn values(records: &[SourceRecord]) -> Vec<String> {
        records.iter().map(|r| r.data.value.to_string()).collect()
    }

    #[tokio::test]
    async fn reads_lines_with_positions_and_keeps_partial_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "one\r\ntwo\nthr").unwrap();
        let path = f.path().to_str().unwrap().to_string();
        let mut t = task(&path, None, "10").await;
        let recs = t.poll().await.unwrap();
        assert_eq!(values(&recs), ["one", "two"]);
        assert_eq!(recs[0].source_offset["position"], 5);
        assert_eq!(recs[1].source_offset["position"], 9);
        assert_eq!(recs[1].source_partition["filename"], path.as_str());
        assert!(t.poll().await.unwrap().is_empty(), "a line without newline is not sent yet");
        writeln!(f, "ee").unwrap();
        f.flush().unwrap();
        let recs = t.poll().await.unwrap();
        assert_eq!(values(&recs), ["three"]);
        assert_eq!(recs[0].source_offset["position"], 15);
        // Bytes that are not UTF-8 are replaced, and the next line starts clean.
        f.write_all(b"bad \xff byte\nok\n").unwrap();
        f.flush().unwrap();
        let recs = t.poll().await.unwrap();
        assert_eq!(values(&recs), ["bad \u{fffd} byte", "ok"]);
        assert_eq!(recs[1].source_offset["position"], 15 + 14);
    }

    #[tokio::test]
    async fn resumes_at_stored_position_and_honours_batch_size() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "a\nb\nc\nd\n").unwrap();
        let mut t = task(f.path().to_str().unwrap(), Some(2), "2").await;
        assert_eq!(values(&t.poll().await.unwrap()), ["b", "c"]);
        assert_eq!(values(&t.poll().await.unwrap()), ["d"]);
    }

    #[tokio::test]
    async fn waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.txt");
        let mut t = task(path.to_str().unwrap(), None, "10").await;
        assert!(t.poll().await.unwrap().is_empty());
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(values(&t.poll().await.unwrap()), ["x"]);
    }
}
