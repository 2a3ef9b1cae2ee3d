//! The sink task: each `put` becomes `_bulk` requests of at most `batch.size` documents and `bulk.size.bytes`
//! (the kit's `SinkBuffer`), up to `max.in.flight.requests` open at once (the kit's `InFlight`) **across puts**:
//! `put` returns once its requests are sent, so the cluster is never idle between batches, and `pre_commit`
//! waits for the answers and commits each partition only up to the requests answered in the order they were
//! sent (the kit's `AckTracker`). Each request owns clones of its records, so a refused document is reported
//! (the errant-record reporter finds its original bytes after its batch has moved on) and a document the cluster
//! answers "later" for is sent again, with its request's tickets, before anything new: the `put` that notices
//! fails retriably with the delay to wait, and the runtime redelivers that batch with its partitions paused.
//! Records of a redelivered batch already handed over or settled are skipped (the kit's `redelivery`).
//! With `write.method=upsert` documents carry no version, so `put` waits for its answers as before: a later
//! document must not overtake an earlier one of the same id.
//!
//! Two retry schedules: a request that does not reach the cluster or that it turns away whole (unreachable,
//! 429, 5xx) is retried for as long as that lasts, `retry.backoff.ms` doubling up to a minute, because ids and
//! versions make every retry safe and an outage is no reason to fail; documents the cluster answers 429/5xx
//! for, item by item, get `max.retries` retries, then the task fails (and the worker restarts it later).

use crate::bulk::{self, ItemOutcome};
use crate::client::{Client, RequestError};
use crate::config::WriteMethod;
use crate::config::{ElasticsearchSinkConfig, OnMalformed, OnNull};
use crate::document::{self, Action};
use crate::mapping;
use connect_core::{
    async_trait, Config, ConnectError, OffsetMap, Result, SchemaType, SinkRecord, SinkTask, SinkTaskContext, TopicPartition,
};
use connect_kit::buffer::{BufferLimits, Coordinates, SinkBuffer};
use connect_kit::concurrency::{AckTracker, InFlight, Ticket};
use connect_kit::redelivery::{RecordId, Settled};
use connect_kit::{Backoff, BackoffPolicy, Jitter};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::task::AbortOnDropHandle;

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
    /// Records of the batch being redelivered that need nothing more from `put`: written, reported, skipped, or
    /// handed over to a request (which this task sees through, retries included).
    settled: Settled,
    /// Indices known to exist with a mapping (`schema.ignore=false`).
    mapped: HashSet<String>,
    /// Requests sent and not answered yet, across puts (at most `max.in.flight.requests`).
    in_flight: InFlight<Answered>,
    /// Per partition, the offset up to which every request is answered, in the order they were sent.
    acks: AckTracker<TopicPartition>,
    /// Requests (or their documents) answered "later", to send again before anything new, and when.
    held: Vec<Sent>,
    retry_at: Option<Instant>,
    retry_reason: String,
}

/// A request sent: its records (cloned, as they must outlive their batch for reports and retries), their ids
/// and version flags, and its tickets in `acks`.
struct Sent {
    records: Vec<SinkRecord>,
    ids: Vec<RecordId>,
    versioned: Vec<bool>,
    tickets: Vec<Ticket<TopicPartition>>,
}

/// A request and the cluster's answer to it.
struct Answered {
    sent: Sent,
    answer: std::result::Result<Vec<u8>, RequestError>,
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

    /// Send a request. One of records handed over now gets a ticket per partition it carries (pre_commit
    /// commits a partition only up to the tickets answered in order); one sent again keeps its tickets.
    fn send(&mut self, mut sent: Sent, body: Vec<u8>) {
        if sent.tickets.is_empty() {
            let mut ends: Vec<(TopicPartition, i64)> = Vec::new();
            for id in &sent.ids {
                match ends.iter_mut().find(|(tp, _)| tp.partition == id.partition && tp.topic == id.topic) {
                    Some((_, end)) => *end = (*end).max(id.offset + 1),
                    None => ends.push((TopicPartition::new(id.topic.clone(), id.partition), id.offset + 1)),
                }
            }
            sent.tickets = ends.into_iter().map(|(tp, end)| self.acks.issue(tp, end)).collect();
        }
        let client = self.client.clone().expect("started");
        // A task of its own, so the request goes on while nothing polls `in_flight` (between puts); aborted if
        // the sink task is dropped first.
        let request = AbortOnDropHandle::new(tokio::spawn(async move { client.bulk(body).await }));
        self.in_flight.push(async move {
            let answer = request.await.unwrap_or_else(|e| Err(RequestError::Retriable(format!("the _bulk request ended: {e}"))));
            Answered { sent, answer }
        });
    }

    /// Wait until one more request may be sent, settling the answers that made room.
    async fn make_room(&mut self) -> Result<()> {
        while !self.in_flight.has_room() {
            match self.in_flight.next().await {
                Some(answered) => self.settle(answered).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Wait for every request in flight and settle its answer.
    async fn drain(&mut self) -> Result<()> {
        while let Some(answered) = self.in_flight.next().await {
            self.settle(answered).await?;
        }
        Ok(())
    }

    /// The error that makes the runtime redeliver the batch (its partitions paused) once the held requests may
    /// be sent again.
    fn retry_later(&mut self) -> ConnectError {
        let wait = self.retry_at.map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()));
        if let Some(context) = &self.context {
            context.timeout(wait);
        }
        ConnectError::retriable(self.retry_reason.clone())
    }

    /// Send again, each as one request, what was answered "later", once its time has come (else the error
    /// that has the runtime wait and redeliver).
    async fn retry_held(&mut self) -> Result<()> {
        if self.retry_at.is_some_and(|at| at > Instant::now()) {
            return Err(self.retry_later());
        }
        self.retry_at = None;
        let config = self.config.clone().expect("started");
        for held in std::mem::take(&mut self.held) {
            self.make_room().await?;
            let mut body = Vec::new();
            for (record, id) in held.records.iter().zip(&held.ids) {
                // It made a document before, and the same record and config make the same one.
                let action = document::action(&config, record, id.part).map_err(|e| ConnectError::fatal(e.to_string()))?;
                bulk::append(&mut body, &action, config.write_method, config.data_stream.is_some(), config.max_in_flight.min(5));
            }
            self.send(held, body);
        }
        Ok(())
    }

    /// Read one `_bulk` answer: documents written or refused are settled (refused ones reported), documents or
    /// a request to try later are held with the request's tickets, and the wait before the retry is set.
    async fn settle(&mut self, answered: Answered) -> Result<()> {
        let config = self.config.clone().expect("started");
        let Answered { sent, answer } = answered;
        let mut again = Vec::new();
        let mut refused = Vec::new();
        let (mut progressed, mut outage, mut item_retry) = (false, None, None);
        match answer.map(|body| bulk::outcomes(&body, sent.ids.len(), &sent.versioned)) {
            Ok(Ok(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        ItemOutcome::Done => progressed = true,
                        ItemOutcome::Retry(reason) => {
                            item_retry.get_or_insert_with(|| format!("document {}: {reason}", sent.ids[i]));
                            again.push(i);
                        }
                        ItemOutcome::Refused { reason, malformed } => {
                            progressed = true;
                            refused.push((i, reason, malformed));
                        }
                    }
                }
            }
            Ok(Err(e)) => return Err(ConnectError::fatal(format!("POST /_bulk: {e}"))),
            Err(RequestError::Fatal(m)) => return Err(ConnectError::fatal(m)),
            Err(RequestError::Retriable(m)) => {
                outage = Some(m);
                again = (0..sent.ids.len()).collect();
            }
        }
        for (i, reason, malformed) in refused {
            let message = format!("Elasticsearch refused the document of {}: {reason}", sent.ids[i]);
            match (malformed, config.on_malformed) {
                (true, OnMalformed::Ignore) => self.skip(&sent.ids[i], &message, false),
                (true, OnMalformed::Warn) => self.skip(&sent.ids[i], &message, true),
                _ => self.report(&sent.records[i], &sent.ids[i], message).await?,
            }
        }
        let (retries, outages) = (self.retries.as_mut().expect("started"), self.outage.as_mut().expect("started"));
        if progressed {
            retries.reset();
        }
        if outage.is_none() {
            outages.reset();
        }
        if again.is_empty() {
            for ticket in &sent.tickets {
                self.acks.acknowledge(ticket);
            }
            return Ok(());
        }
        // The first answer of a round to need a retry sets the wait; others of the same round join it.
        if self.retry_at.is_none() {
            let delay = match &outage {
                Some(reason) => {
                    let delay = outages.next_delay().unwrap_or(MAX_OUTAGE_BACKOFF);
                    tracing::warn!(
                        attempt = outages.attempts(),
                        delay_ms = delay.as_millis() as u64,
                        "{reason}; retrying (the partitions wait)"
                    );
                    self.retry_reason = reason.clone();
                    delay
                }
                None => {
                    let reason = item_retry.unwrap_or_default();
                    let Some(delay) = retries.next_delay() else {
                        return Err(ConnectError::fatal(format!("{reason} (gave up after max.retries={})", config.max_retries)));
                    };
                    tracing::warn!(attempt = retries.attempts(), delay_ms = delay.as_millis() as u64, "{reason}; retrying");
                    self.retry_reason = reason;
                    delay
                }
            };
            self.retry_at = Some(Instant::now() + delay);
        }
        let Sent { records, ids, versioned, tickets } = sent;
        let mut held = Sent { records: Vec::with_capacity(again.len()), ids: Vec::new(), versioned: Vec::new(), tickets };
        let (mut records, mut ids) = (records.into_iter().map(Some).collect::<Vec<_>>(), ids.into_iter().map(Some).collect::<Vec<_>>());
        for i in again {
            held.records.push(records[i].take().expect("each index once"));
            held.ids.push(ids[i].take().expect("each index once"));
            held.versioned.push(versioned[i]);
        }
        self.held.push(held);
        Ok(())
    }

    /// The records not settled yet as requests; records that cannot be documents are reported or skipped here.
    async fn requests(&mut self, records: &[SinkRecord], ids: &[RecordId], limits: BufferLimits) -> Result<Vec<Request>> {
        let config = self.config.clone().expect("started");
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
        self.in_flight = InFlight::new(config.max_in_flight);
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        // Answers that came in since the last call, then what must be sent again before anything new.
        while let Some(answered) = self.in_flight.try_next() {
            self.settle(answered).await?;
        }
        if !self.held.is_empty() {
            self.retry_held().await?;
        }
        let ids = RecordId::of_batch(records);
        let limits = BufferLimits { max_records: config.batch_size, max_bytes: config.bulk_size_bytes, linger: Duration::ZERO };
        let requests = self.requests(records, &ids, limits).await?;
        for request in requests {
            self.make_room().await?;
            // After an answer that must be retried, nothing new is sent: with upserts, which carry no version,
            // a later document must not overtake an earlier one of the same id. The records not sent yet stay
            // unsettled and come back with the redelivery.
            if !self.held.is_empty() {
                return Err(self.retry_later());
            }
            let records = request.records.iter().map(|&i| records[i].clone()).collect();
            let ids: Vec<RecordId> = request.records.iter().map(|&i| ids[i].clone()).collect();
            for id in &ids {
                self.settled.insert(id.clone());
            }
            self.send(Sent { records, ids, versioned: request.versioned, tickets: Vec::new() }, request.body);
        }
        // Upserts carry no version, so a later put must not overtake this one: wait for every answer.
        if config.write_method == WriteMethod::Upsert {
            self.drain().await?;
            if !self.held.is_empty() {
                return Err(self.retry_later());
            }
        }
        self.settled.clear();
        Ok(())
    }

    /// Every request in flight answered; what must be sent again is sent if its time has come. Commits, per
    /// partition, only up to the last record every request before it settled.
    async fn pre_commit(&mut self, offsets: OffsetMap) -> Result<OffsetMap> {
        self.drain().await?;
        if !self.held.is_empty() && self.retry_at.is_none_or(|at| at <= Instant::now()) {
            self.retry_held().await.ok();
            self.drain().await?;
        }
        Ok(offsets
            .into_iter()
            .filter_map(|(tp, next)| match self.acks.outstanding(&tp) {
                0 => Some((tp, next)),
                _ => self.acks.committable(&tp).map(|done| (tp, done.min(next))),
            })
            .collect())
    }

    /// Revoked partitions: their answers are awaited (a request may carry several partitions), then their
    /// records still to retry are dropped (the new owner reads them again from the committed offset).
    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.drain().await?;
        let revoked = |id: &RecordId| partitions.iter().any(|tp| tp.partition == id.partition && tp.topic == id.topic);
        for held in &mut self.held {
            let keep: Vec<bool> = held.ids.iter().map(|id| !revoked(id)).collect();
            let mut flags = keep.iter();
            held.records.retain(|_| *flags.next().expect("one flag per record"));
            let mut flags = keep.iter();
            held.ids.retain(|_| *flags.next().expect("one flag per record"));
            let mut flags = keep.iter();
            held.versioned.retain(|_| *flags.next().expect("one flag per record"));
        }
        self.held.retain(|h| !h.records.is_empty());
        if self.held.is_empty() {
            self.retry_at = None;
        }
        for tp in partitions {
            self.acks.remove(tp);
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType, Value};
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::sync::Semaphore;

    /// A `_bulk` endpoint on 127.0.0.1: answers a request only when `answers` has a permit, gives its items the
    /// statuses of `statuses` in order (201 once they run out), and keeps every body it got.
    struct Cluster {
        url: String,
        bodies: Arc<Mutex<Vec<String>>>,
        answers: Arc<Semaphore>,
    }

    async fn cluster(statuses: Vec<u16>) -> Cluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (bodies, answers) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Semaphore::new(0)));
        let statuses = Arc::new(Mutex::new(VecDeque::from(statuses)));
        let (kept, permits) = (bodies.clone(), answers.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (kept, permits, statuses) = (kept.clone(), permits.clone(), statuses.clone());
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    loop {
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        socket.read_exact(&mut body).await.unwrap();
                        let body = String::from_utf8(body).unwrap();
                        let actions = body.lines().count() / 2;
                        kept.lock().unwrap().push(body);
                        permits.acquire().await.unwrap().forget();
                        let items: Vec<String> = (0..actions)
                            .map(|_| format!(r#"{{"index":{{"status":{}}}}}"#, statuses.lock().unwrap().pop_front().unwrap_or(201)))
                            .collect();
                        let answer = format!(r#"{{"errors":false,"items":[{}]}}"#, items.join(","));
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", answer.len());
                        socket.get_mut().write_all(format!("{head}{answer}").as_bytes()).await.unwrap();
                    }
                });
            }
        });
        Cluster { url, bodies, answers }
    }

    impl Cluster {
        /// The `_id` of each request's first document, in the order the requests came.
        fn ids(&self) -> Vec<String> {
            let bodies = self.bodies.lock().unwrap();
            bodies
                .iter()
                .map(|b| {
                    let meta: serde_json::Value = serde_json::from_str(b.lines().next().unwrap()).unwrap();
                    meta["index"]["_id"].as_str().unwrap().to_string()
                })
                .collect()
        }
        async fn wait_for_requests(&self, n: usize) {
            for _ in 0..500 {
                if self.bodies.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{n} requests did not come: {:?}", self.ids());
        }
    }

    async fn started(url: &str, settings: &[(&str, &str)]) -> ElasticsearchSinkTask {
        let mut config: Config =
            [("connection.url", url), ("batch.size", "1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        config.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut task = ElasticsearchSinkTask::default();
        task.start(SinkTaskContext::new("es", 0, None), config).await.unwrap();
        task
    }

    fn record(offset: i64) -> SinkRecord {
        let value = Value::Map(vec![(Value::String("n".into()), Value::Int64(offset))]);
        let data = RecordData::new("t", None, value).with_key(None, Value::String(format!("k{offset}")));
        SinkRecord::new(data, 0, offset, TimestampType::CreateTime)
    }

    fn offsets(next: i64) -> OffsetMap {
        [(TopicPartition::new("t", 0), next)].into_iter().collect()
    }

    #[tokio::test]
    async fn requests_stay_open_across_puts_and_the_commit_waits_for_their_answers() {
        let es = cluster(Vec::new()).await;
        let mut task = started(&es.url, &[("max.in.flight.requests", "5")]).await;
        task.put(&[record(0), record(1)]).await.unwrap();
        task.put(&[record(2)]).await.unwrap();
        es.wait_for_requests(3).await;
        assert_eq!(es.ids(), ["k0", "k1", "k2"], "both puts returned with their requests still unanswered");
        let early = tokio::time::timeout(Duration::from_millis(300), task.pre_commit(offsets(3))).await;
        assert!(early.is_err(), "nothing is committable before the answers");
        es.answers.add_permits(3);
        assert_eq!(task.pre_commit(offsets(3)).await.unwrap(), offsets(3));
    }

    #[tokio::test]
    async fn a_document_answered_later_goes_again_before_the_next_batch_and_holds_back_the_commit() {
        // The first document is answered 429 (the cluster is busy), every other one 201.
        let es = cluster(vec![429]).await;
        es.answers.add_permits(100);
        let mut task = started(&es.url, &[("max.in.flight.requests", "1"), ("retry.backoff.ms", "50"), ("max.retries", "3")]).await;
        task.put(&[record(0)]).await.unwrap();
        // Waiting for room, this put reads the 429: it sends nothing new and asks for a redelivery.
        let err = task.put(&[record(1)]).await.unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert_eq!(es.ids(), ["k0"]);
        assert_eq!(task.pre_commit(offsets(1)).await.unwrap(), OffsetMap::new(), "k0 is not written: nothing to commit yet");
        tokio::time::sleep(Duration::from_millis(100)).await;
        task.put(&[record(1)]).await.unwrap();
        assert_eq!(task.pre_commit(offsets(2)).await.unwrap(), offsets(2));
        assert_eq!(es.ids(), ["k0", "k0", "k1"], "k0 again, before k1");
    }
}
