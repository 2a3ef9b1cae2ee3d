//! FileStreamSink: appends each record's value as one line.

use crate::config::{self, FILE};
use connect_core::{
    async_trait, Config, ConfigDef, ConnectError, Connector, ConnectorContext, OffsetMap, Result, SinkConnector, SinkRecord, SinkTask,
    SinkTaskContext, Value,
};
use std::io::Write;
use std::sync::Arc;

#[derive(Default)]
pub struct FileStreamSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for FileStreamSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::sink_def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        config::sink_def().parse(&config)?;
        self.config = config;
        Ok(())
    }
    /// Every task gets the same file, as in Kafka; more than one task interleaves lines.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for FileStreamSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<FileStreamSinkTask>::default()
    }
}

#[derive(Default)]
pub struct FileStreamSinkTask {
    path: Option<String>,
    out: Option<std::io::BufWriter<Box<dyn Write + Send>>>,
}

#[async_trait]
impl SinkTask for FileStreamSinkTask {
    async fn start(&mut self, _context: SinkTaskContext, config: Config) -> Result<()> {
        let parsed = config::sink_def().parse(&config)?;
        self.path = parsed.optional_string(FILE).filter(|f| !f.is_empty());
        let writer: Box<dyn Write + Send> = match &self.path {
            None => Box::new(std::io::stdout()),
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
                    // A missing directory may appear later (a mount, a deploy step): worth retrying.
                    ConnectError::retriable(format!("Couldn't find or create file '{path}' for FileStreamSinkTask")).with_source(e)
                })?;
                Box::new(file)
            }
        };
        self.out = Some(std::io::BufWriter::with_capacity(128 * 1024, writer));
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let out = self.out.as_mut().ok_or_else(|| ConnectError::fatal("FileStreamSinkTask was not started"))?;
        for record in records {
            let written = match &record.data.value {
                Value::String(s) => out.write_all(s.as_bytes()),
                Value::Bytes(b) => out.write_all(b),
                Value::Null => out.write_all(b"null"),
                other => write!(out, "{other}"),
            };
            written.and_then(|_| out.write_all(b"\n")).map_err(|e| ConnectError::from(e).context("writing to the sink file"))?;
        }
        Ok(())
    }

    async fn flush(&mut self, _offsets: &OffsetMap) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| ConnectError::from(e).context("flushing the sink file"))?;
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType};

    #[tokio::test]
    async fn writes_values_as_lines_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut t = FileStreamSinkTask::default();
        let cfg: Config = [("file".to_string(), path.to_str().unwrap().to_string())].into_iter().collect();
        t.start(SinkTaskContext::new("c", 0, None), cfg).await.unwrap();
        let recs = vec![
            SinkRecord::new(RecordData::new("t", None, Value::from("hello")), 0, 0, TimestampType::CreateTime),
            SinkRecord::new(RecordData::new("t", None, bytes_of(b"raw")), 0, 1, TimestampType::CreateTime),
            SinkRecord::new(RecordData::new("t", None, Value::Int64(5)), 0, 2, TimestampType::CreateTime),
        ];
        t.put(&recs).await.unwrap();
        t.flush(&OffsetMap::new()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\nraw\n5\n");
    }

    #[tokio::test]
    async fn missing_directory_is_a_retriable_start_error() {
        let mut t = FileStreamSinkTask::default();
        let cfg: Config = [("file".to_string(), "/nonexistent-dir-connect-rs/out.txt".to_string())].into_iter().collect();
        let err = t.start(SinkTaskContext::new("c", 0, None), cfg).await.unwrap_err();
        assert!(err.is_retriable());
        assert!(err.to_string().contains("Couldn't find or create file"));
    }

    fn bytes_of(b: &'static [u8]) -> Value {
        Value::Bytes(b.to_vec().into())
    }
}
