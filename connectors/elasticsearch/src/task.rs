//! The sink task: each `put` becomes `_bulk` requests of at most `batch.size` documents and `bulk.size.bytes`
//! (the kit's `SinkBuffer`), up to `max.in.flight.requests` open at once (the kit's `InFlight`), read item by
//! item. Refused documents go to the errant-record reporter; documents or requests the cluster cannot take now
//! (429, 5xx, unreachable) make the `put` fail retriably with the delay to wait, and the runtime redelivers the
//! batch with its partitions paused. Records already settled (written, reported, skipped) are remembered by
//! their Kafka coordinates and not sent again. `put` returns only when every record is settled, so offsets
//! commit only what the cluster acknowledged.

use crate::bulk::{self, ItemOutcome};
use crate::client::{Client, RequestError};
use crate::config::{ElasticsearchSinkConfig, OnMalformed, OnNull};
use crate::document::{self, Action};
use crate::mapping;
use connect_core::{async_trait, Config, ConnectError, Result, SchemaType, SinkRecord, SinkTask, SinkTaskContext};
use connect_kit::buffer::{BufferLimits, Coordinates, SinkBuffer};
use connect_kit::concurrency::InFlight;
use connect_kit::Backoff;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

type RecordId = (String, i32, i64);

fn record_id(record: &SinkRecord) -> RecordId {
    (record.original_topic().to_string(), record.original_partition(), record.original_offset())
}

fn coordinates(record: &SinkRecord) -> String {
    format!("{}-{}@{}", record.original_topic(), record.original_partition(), record.original_offset())
}

#[derive(Default)]
pub struct ElasticsearchSinkTask {
    config: Option<Arc<ElasticsearchSinkConfig>>,
    context: Option<SinkTaskContext>,
    client: Option<Arc<Client>>,
    retries: Option<Backoff>,
    /// Records of the batch being redelivered that need nothing more.
    settled: HashSet<RecordId>,
    /// Indices known to exist with a mapping (`schema.ignore=false`).
    mapped: HashSet<String>,
}

/// One `_bulk` request: the put's record indices it carries, whether each has a version of ours, the NDJSON.
struct Request {
    records: Vec<usize>,
    versioned: Vec<bool>,
    body: Vec<u8>,
}

impl ElasticsearchSinkTask {
    /// A record that cannot be indexed: reported (the DLQ, or a task failure with `errors.tolerance=none`).
    async fn report(&mut self, record: &SinkRecord, message: String) -> Result<()> {
        match self.context.as_ref().and_then(|c| c.errant_record_reporter()) {
            Some(reporter) => reporter.report(record, &ConnectError::data(message)).await?,
            None => return Err(ConnectError::fatal(format!("{message} (record {})", coordinates(record)))),
        }
        self.settled.insert(record_id(record));
        Ok(())
    }

    fn skip(&mut self, record: &SinkRecord, why: &str, warn: bool) {
        if warn {
            tracing::warn!(record = %coordinates(record), "skipping: {why}");
        } else {
            tracing::debug!(record = %coordinates(record), "skipping: {why}");
        }
        self.settled.insert(record_id(record));
    }

    /// With `schema.ignore=false`, the record's index gets a mapping from its value schema before its first
    /// document.
    async fn ensure_mapping(&mut self, record: &SinkRecord, index: &str) -> Result<()> {
        let config = self.config.clone().expect("started");
        if config.ignores_schema(record.topic()) || config.data_stream.is_some() || self.mapped.contains(index) {
            return Ok(());
        }
        let Some(schema) = record.data.value_schema.as_ref().filter(|s| s.kind == SchemaType::Struct) else { return Ok(()) };
        let client = self.client.clone().expect("started");
        match client.ensure_index(index, &mapping::mappings(schema)).await {
            Ok(()) => {
                self.mapped.insert(index.to_string());
                Ok(())
            }
            Err(RequestError::Retriable(m)) => Err(ConnectError::retriable(m)),
            Err(RequestError::Fatal(m)) => Err(ConnectError::fatal(m)),
        }
    }

    /// The put's unsettled records as requests; records that cannot be documents are reported or skipped here.
    async fn requests(&mut self, records: &[SinkRecord]) -> Result<Vec<Request>> {
        let config = self.config.clone().expect("started");
        let limits = BufferLimits { max_records: config.batch_size, max_bytes: config.bulk_size_bytes, linger: Duration::ZERO };
        let mut buffer: SinkBuffer<(Action, bool)> = SinkBuffer::new(limits);
        let mut requests = Vec::new();
        let close = |buffer: &mut SinkBuffer<(Action, bool)>, requests: &mut Vec<Request>| {
            if buffer.is_empty() {
                return;
            }
            let mut request = Request { records: Vec::new(), versioned: Vec::new(), body: Vec::with_capacity(buffer.bytes()) };
            for entry in buffer.take() {
                let Coordinates::PutIndex(index) = entry.at else { unreachable!("put indices only") };
                let (action, versioned) = entry.item;
                bulk::append(&mut request.body, &action, config.write_method, config.data_stream.is_some());
                request.records.push(index);
                request.versioned.push(versioned);
            }
            requests.push(request);
        };
        for (index, record) in records.iter().enumerate() {
            if self.settled.contains(&record_id(record)) {
                continue;
            }
            if record.data.value.is_null() {
                match config.on_null {
                    OnNull::Ignore => {
                        self.skip(record, "null value (behavior.on.null.values=IGNORE)", false);
                        continue;
                    }
                    OnNull::Fail => {
                        self.report(record, "the record's value is null (behavior.on.null.values=FAIL)".into()).await?;
                        continue;
                    }
                    OnNull::Delete => {}
                }
            }
            let action = match document::action(&config, record) {
                Ok(a) => a,
                Err(e) if config.drop_invalid_message => {
                    self.skip(record, &format!("{e} (drop.invalid.message=true)"), true);
                    continue;
                }
                Err(e) => {
                    self.report(record, e.to_string()).await?;
                    continue;
                }
            };
            if let Action::Write { target, .. } = &action {
                self.ensure_mapping(record, &target.clone()).await?;
            }
            let (bytes, versioned) = match &action {
                Action::Write { source, version, .. } => (source.len() + 100, version.is_some()),
                Action::Delete { version, .. } => (100, version.is_some()),
            };
            if buffer.would_overflow(bytes) {
                close(&mut buffer, &mut requests);
            }
            if buffer.push((action, versioned), bytes, Coordinates::PutIndex(index)).is_some() {
                close(&mut buffer, &mut requests);
            }
        }
        close(&mut buffer, &mut requests);
        Ok(requests)
    }
}

#[async_trait]
impl SinkTask for ElasticsearchSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let config = ElasticsearchSinkConfig::parse(&config)?;
        self.client = Some(Arc::new(Client::new(&config)?));
        self.retries = Some(Backoff::new(config.retry_backoff.clone()));
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        let requests = self.requests(records).await?;
        let client = self.client.clone().expect("started");
        let mut in_flight = InFlight::new(config.max_in_flight);
        let mut answers = Vec::with_capacity(requests.len());
        for (sequence, request) in requests.into_iter().enumerate() {
            answers.extend(in_flight.room().await);
            let client = client.clone();
            in_flight.push(async move {
                let body = std::mem::take(&mut { request.body });
                let answer = client.bulk(body).await;
                (sequence, request.records, request.versioned, answer)
            });
        }
        answers.extend(in_flight.drain().await);
        answers.sort_by_key(|(sequence, ..)| *sequence);

        let mut progressed = false;
        let mut retry: Option<String> = None;
        for (_, indices, versioned, answer) in answers {
            let items = match answer.map(|body| bulk::outcomes(&body, indices.len(), &versioned)) {
                Ok(Ok(items)) => items,
                Ok(Err(e)) => return Err(ConnectError::fatal(format!("POST /_bulk: {e}"))),
                Err(RequestError::Fatal(m)) => return Err(ConnectError::fatal(m)),
                Err(RequestError::Retriable(m)) => {
                    retry.get_or_insert(m);
                    continue;
                }
            };
            for (&index, item) in indices.iter().zip(items) {
                let record = &records[index];
                match item {
                    ItemOutcome::Done => {
                        progressed = true;
                        self.settled.insert(record_id(record));
                    }
                    ItemOutcome::Retry(reason) => {
                        retry.get_or_insert(format!("document {}: {reason}", coordinates(record)));
                    }
                    ItemOutcome::Refused { reason, malformed } => {
                        progressed = true;
                        let message = format!("Elasticsearch refused the document of {}: {reason}", coordinates(record));
                        match (malformed, config.on_malformed) {
                            (true, OnMalformed::Ignore) => self.skip(record, &message, false),
                            (true, OnMalformed::Warn) => self.skip(record, &message, true),
                            _ => self.report(record, message).await?,
                        }
                    }
                }
            }
        }
        let retries = self.retries.as_mut().expect("started");
        if progressed {
            retries.reset();
        }
        let Some(reason) = retry else {
            retries.reset();
            self.settled.clear();
            return Ok(());
        };
        match retries.next_delay() {
            Some(delay) => {
                tracing::warn!(attempt = retries.attempts(), delay_ms = delay.as_millis() as u64, "{reason}; retrying");
                if let Some(context) = &self.context {
                    context.timeout(delay);
                }
                Err(ConnectError::retriable(reason))
            }
            None => Err(ConnectError::fatal(format!("{reason} (gave up after max.retries={})", config.max_retries))),
        }
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
