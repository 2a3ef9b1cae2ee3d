//! The sink task: each `put` becomes `_bulk` requests of at most `batch.size` documents and `bulk.size.bytes`
//! (the kit's `SinkBuffer`), up to `max.in.flight.requests` open at once (the kit's `InFlight`), read item by
//! item. Refused documents go to the errant-record reporter; documents or requests the cluster cannot take now
//! make the `put` fail retriably with the delay to wait, and the runtime redelivers the batch with its
//! partitions paused. Records already settled (written, reported, skipped) are remembered (the kit's
//! `redelivery`) and not sent again. `put` returns only when every record is settled, so offsets commit only
//! what the cluster acknowledged.
//!
//! Two retry schedules: a request that does not reach the cluster or that it turns away whole (unreachable,
//! 429, 5xx) is retried for as long as that lasts, `retry.backoff.ms` doubling up to a minute, because ids and
//! versions make every retry safe and an outage is no reason to fail; documents the cluster answers 429/5xx
//! for, item by item, get `max.retries` retries, then the task fails (and the worker restarts it later).

use crate::bulk::{self, ItemOutcome};
use crate::client::{Client, RequestError};
use crate::config::{ElasticsearchSinkConfig, OnMalformed, OnNull};
use crate::document::{self, Action};
use crate::mapping;
use connect_core::{async_trait, Config, ConnectError, Result, SchemaType, SinkRecord, SinkTask, SinkTaskContext};
use connect_kit::buffer::{BufferLimits, Coordinates, SinkBuffer};
use connect_kit::concurrency::InFlight;
use connect_kit::redelivery::{RecordId, Settled};
use connect_kit::{Backoff, BackoffPolicy, Jitter};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between retries of a cluster that cannot be reached.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct ElasticsearchSinkTask {
    config: Option<Arc<ElasticsearchSinkConfig>>,
    context: Option<SinkTaskContext>,
    client: Option<Arc<Client>>,
    /// `max.retries` for documents the cluster answers 429/5xx for.
    retries: Option<Backoff>,
    /// Requests that do not get through at all: no limit.
    outage: Option<Backoff>,
    /// Records of the batch being redelivered that need nothing more.
    settled: Settled,
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
    async fn report(&mut self, record: &SinkRecord, id: &RecordId, message: String) -> Result<()> {
        match self.context.as_ref().and_then(|c| c.errant_record_reporter()) {
            Some(reporter) => reporter.report(record, &ConnectError::data(message)).await?,
            None => return Err(ConnectError::fatal(format!("{message} (record {id})"))),
        }
        self.settled.insert(id.clone());
        Ok(())
    }

    fn skip(&mut self, id: &RecordId, why: &str, warn: bool) {
        if warn {
            tracing::warn!(record = %id, "skipping: {why}");
        } else {
            tracing::debug!(record = %id, "skipping: {why}");
        }
        self.settled.insert(id.clone());
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
    async fn requests(&mut self, records: &[SinkRecord], ids: &[RecordId]) -> Result<Vec<Request>> {
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
                bulk::append(&mut request.body, &action, config.write_method, config.data_stream.is_some(), config.max_in_flight.min(5));
                request.records.push(index);
                request.versioned.push(versioned);
            }
            requests.push(request);
        };
        for (index, record) in records.iter().enumerate() {
            let id = &ids[index];
            if self.settled.contains(id) {
                continue;
            }
            if record.data.value.is_null() {
                match config.on_null {
                    OnNull::Ignore => {
                        self.skip(id, "null value (behavior.on.null.values=IGNORE)", false);
                        continue;
                    }
                    OnNull::Fail => {
                        self.report(record, id, "the record's value is null (behavior.on.null.values=FAIL)".into()).await?;
                        continue;
                    }
                    OnNull::Delete => {}
                }
            }
            let action = match document::action(&config, record, id.part) {
                Ok(a) => a,
                Err(e) if config.drop_invalid_message => {
                    self.skip(id, &format!("{e} (drop.invalid.message=true)"), true);
                    continue;
                }
                Err(e) => {
                    self.report(record, id, e.to_string()).await?;
                    continue;
                }
            };
            if let Action::Write { target, .. } = &action {
                self.ensure_mapping(record, target).await?;
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
        let initial = config.retry_backoff.delay(1);
        self.outage =
            Some(Backoff::new(BackoffPolicy::exponential(initial, MAX_OUTAGE_BACKOFF.max(initial)).with_jitter(Jitter::Symmetric(0.2))));
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        let ids = RecordId::of_batch(records);
        let requests = self.requests(records, &ids).await?;
        let client = self.client.clone().expect("started");
        // In order, at most max.in.flight.requests open; after one that must be retried, no new ones (with
        // upserts, which carry no version, a later document must not overtake an earlier one of the same id).
        let mut in_flight = InFlight::new(config.max_in_flight);
        let mut answers = Vec::with_capacity(requests.len());
        let must_retry = |done: &[(usize, Vec<usize>, Vec<bool>, std::result::Result<Vec<u8>, RequestError>)]| {
            done.iter().any(|(.., answer)| matches!(answer, Err(RequestError::Retriable(_))))
        };
        for (sequence, request) in requests.into_iter().enumerate() {
            let done = in_flight.room().await;
            let stop = must_retry(&done);
            answers.extend(done);
            if stop {
                break;
            }
            let client = client.clone();
            in_flight.push(async move {
                let Request { records, versioned, body } = request;
                let answer = client.bulk(body).await;
                (sequence, records, versioned, answer)
            });
        }
        answers.extend(in_flight.drain().await);
        answers.sort_by_key(|(sequence, ..)| *sequence);

        // Settle what got through before reporting anything: a report that fails must not cost a re-send.
        let mut progressed = false;
        let mut outage: Option<String> = None;
        let mut item_retry: Option<String> = None;
        let mut refused = Vec::new();
        for (_, indices, versioned, answer) in answers {
            let items = match answer.map(|body| bulk::outcomes(&body, indices.len(), &versioned)) {
                Ok(Ok(items)) => items,
                Ok(Err(e)) => return Err(ConnectError::fatal(format!("POST /_bulk: {e}"))),
                Err(RequestError::Fatal(m)) => return Err(ConnectError::fatal(m)),
                Err(RequestError::Retriable(m)) => {
                    outage.get_or_insert(m);
                    continue;
                }
            };
            for (&index, item) in indices.iter().zip(items) {
                match item {
                    ItemOutcome::Done => {
                        progressed = true;
                        self.settled.insert(ids[index].clone());
                    }
                    ItemOutcome::Retry(reason) => {
                        item_retry.get_or_insert(format!("document {}: {reason}", ids[index]));
                    }
                    ItemOutcome::Refused { reason, malformed } => {
                        progressed = true;
                        refused.push((index, reason, malformed));
                    }
                }
            }
        }
        for (index, reason, malformed) in refused {
            let message = format!("Elasticsearch refused the document of {}: {reason}", ids[index]);
            match (malformed, config.on_malformed) {
                (true, OnMalformed::Ignore) => self.skip(&ids[index], &message, false),
                (true, OnMalformed::Warn) => self.skip(&ids[index], &message, true),
                _ => self.report(&records[index], &ids[index], message).await?,
            }
        }
        let (retries, outages) = (self.retries.as_mut().expect("started"), self.outage.as_mut().expect("started"));
        if progressed {
            retries.reset();
        }
        if outage.is_none() {
            outages.reset();
        }
        let (wait, reason) = match (outage, item_retry) {
            (None, None) => {
                retries.reset();
                self.settled.clear();
                return Ok(());
            }
            (Some(reason), _) => {
                let delay = outages.next_delay().unwrap_or(MAX_OUTAGE_BACKOFF);
                tracing::warn!(
                    attempt = outages.attempts(),
                    delay_ms = delay.as_millis() as u64,
                    "{reason}; retrying (the partitions wait)"
                );
                (delay, reason)
            }
            (None, Some(reason)) => match retries.next_delay() {
                Some(delay) => {
                    tracing::warn!(attempt = retries.attempts(), delay_ms = delay.as_millis() as u64, "{reason}; retrying");
                    (delay, reason)
                }
                None => return Err(ConnectError::fatal(format!("{reason} (gave up after max.retries={})", config.max_retries))),
            },
        };
        if let Some(context) = &self.context {
            context.timeout(wait);
        }
        Err(ConnectError::retriable(reason))
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
