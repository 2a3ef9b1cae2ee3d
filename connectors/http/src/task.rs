//! The sink task: each `put` becomes requests (`request`), sent up to `max.in.flight.requests` at a time in
//! order (`service`); what the target refused goes to the errant-record reporter; what it asks to retry is
//! handed back to the runtime as a retriable error with the delay to wait.
//!
//! The runtime then pauses the partitions, keeps polling Kafka, and redelivers the same batch after the delay
//! (`SinkTaskContext::timeout`): no thread sleeps here and the consumer stays in its group. Records of that
//! batch already delivered (or reported) are remembered by their Kafka coordinates and not sent again.
//!
//! One retry budget per stuck request: `max.retries` retries of the first request that has not got through,
//! `retry.backoff.ms` doubling (or the server's `Retry-After` when longer); progress restores the budget.
//! When it is spent, the request's records count as refused (`behavior.on.error`).

use crate::config::{HttpSinkConfig, OnError, OnNull};
use crate::request::{Batcher, Prepared};
use crate::service::{Outcome, Service};
use connect_core::{async_trait, Config, ConnectError, Result, SinkRecord, SinkTask, SinkTaskContext};
use connect_kit::concurrency::InFlight;
use connect_kit::Backoff;
use std::collections::HashSet;
use std::sync::Arc;

/// A record's Kafka coordinates: what identifies it across redeliveries.
type Coordinates = (String, i32, i64);

fn coordinates(record: &SinkRecord) -> Coordinates {
    (record.original_topic().to_string(), record.original_partition(), record.original_offset())
}

#[derive(Default)]
pub struct HttpSinkTask {
    config: Option<Arc<HttpSinkConfig>>,
    context: Option<SinkTaskContext>,
    service: Option<Arc<Service>>,
    retries: Option<Backoff>,
    /// Records of the batch being redelivered that need nothing more: delivered, reported or skipped.
    settled: HashSet<Coordinates>,
}

/// How a put's requests went.
struct Round {
    outcomes: Vec<(Prepared, Outcome)>,
    /// Requests not started because an earlier one must be retried first (they keep their order).
    not_sent: usize,
}

impl HttpSinkTask {
    fn config(&self) -> &HttpSinkConfig {
        self.config.as_deref().expect("started")
    }

    /// Sends `requests` in order, at most `max.in.flight.requests` open (the kit's `InFlight`); once one must
    /// be retried, starts no more (those behind it wait, so with one in flight the target's order holds).
    /// Outcomes come back in request order.
    async fn send_all(&self, requests: Vec<Prepared>) -> Round {
        let config = self.config.clone().expect("started");
        let service = self.service.clone().expect("started");
        let total = requests.len();
        let mut in_flight = InFlight::new(config.max_in_flight);
        let mut outcomes: Vec<(usize, Prepared, Outcome)> = Vec::with_capacity(total);
        let finished = |done: Vec<(usize, Prepared, Outcome)>, outcomes: &mut Vec<_>| {
            let retry = done.iter().any(|(_, _, o)| matches!(o, Outcome::Retry { .. }));
            outcomes.extend(done);
            retry
        };
        let mut stop = false;
        for (sequence, request) in requests.into_iter().enumerate() {
            stop |= finished(in_flight.room().await, &mut outcomes);
            if stop {
                break;
            }
            let (config, service) = (config.clone(), service.clone());
            in_flight.push(async move {
                let outcome = service.send(&config, &request).await;
                (sequence, request, outcome)
            });
        }
        finished(in_flight.drain().await, &mut outcomes);
        outcomes.sort_by_key(|(sequence, _, _)| *sequence);
        Round { not_sent: total - outcomes.len(), outcomes: outcomes.into_iter().map(|(_, r, o)| (r, o)).collect() }
    }

    /// A record the target refused for good (or whose retries are spent), per `behavior.on.error`.
    async fn refused(&mut self, record: &SinkRecord, message: &str) -> Result<()> {
        let at = format!("{}-{}@{}", record.original_topic(), record.original_partition(), record.original_offset());
        match self.config().on_error {
            OnError::Ignore => tracing::debug!(record = %at, "skipping a refused record (behavior.on.error=ignore): {message}"),
            OnError::Log => tracing::warn!(record = %at, "skipping a refused record (behavior.on.error=log): {message}"),
            OnError::Fail => {
                let reporter = self.context.as_ref().and_then(|c| c.errant_record_reporter());
                match reporter {
                    Some(reporter) => reporter.report(record, &ConnectError::data(message.to_string())).await?,
                    None => return Err(ConnectError::fatal(format!("{message} (record {at}; behavior.on.error=fail)"))),
                }
            }
        }
        self.settled.insert(coordinates(record));
        Ok(())
    }
}

#[async_trait]
impl SinkTask for HttpSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let config = HttpSinkConfig::parse(&config)?;
        self.service = Some(Arc::new(Service::new(&config)?));
        self.retries = Some(Backoff::new(config.retry_backoff.clone()));
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        let mut batcher = Batcher::new(&config);
        let mut null_failures = Vec::new();
        for (index, record) in records.iter().enumerate() {
            if self.settled.contains(&coordinates(record)) {
                continue;
            }
            if !record.data.value.is_null() {
                batcher.push(index, record);
                continue;
            }
            match config.on_null {
                OnNull::Ignore => {
                    self.settled.insert(coordinates(record));
                }
                OnNull::Log => {
                    tracing::warn!(topic = record.original_topic(), partition = record.original_partition(), offset = record.original_offset(), key = %crate::render::key_text(record), "skipping a record with a null value (behavior.on.null.values=log)");
                    self.settled.insert(coordinates(record));
                }
                OnNull::Delete => batcher.push_delete(index, record),
                OnNull::Fail => null_failures.push(index),
            }
        }
        for index in null_failures {
            self.refused(&records[index], "the record's value is null (behavior.on.null.values=fail)").await?;
        }
        let requests = batcher.finish();
        if requests.is_empty() {
            self.settled.clear();
            return Ok(());
        }
        let round = self.send_all(requests).await;
        let mut progressed = false;
        let mut retry: Option<(Prepared, String, Option<u16>, Option<std::time::Duration>)> = None;
        for (request, outcome) in round.outcomes {
            match outcome {
                Outcome::Delivered => {
                    progressed = true;
                    self.settled.extend(request.records.iter().map(|&i| coordinates(&records[i])));
                }
                Outcome::Refused { message } => {
                    progressed = true;
                    for &i in &request.records {
                        self.refused(&records[i], &message).await?;
                    }
                }
                Outcome::Unauthorized { message } => match config.on_error {
                    OnError::Fail => {
                        return Err(ConnectError::fatal(format!("{message} (no record can be delivered; check the credentials)")))
                    }
                    _ => {
                        for &i in &request.records {
                            self.refused(&records[i], &message).await?;
                        }
                    }
                },
                Outcome::Retry { message, status, server_delay } => {
                    if retry.is_none() {
                        retry = Some((request, message, status, server_delay));
                    }
                }
            }
        }
        let retries = self.retries.as_mut().expect("started");
        if progressed {
            retries.reset();
        }
        let Some((request, message, status, server_delay)) = retry else {
            debug_assert_eq!(round.not_sent, 0);
            retries.reset();
            self.settled.clear();
            return Ok(());
        };
        match retries.next_delay_at_least(server_delay) {
            Some(delay) => {
                tracing::warn!(
                    attempt = retries.attempts(),
                    delay_ms = delay.as_millis() as u64,
                    waiting = round.not_sent,
                    "{message}; retrying"
                );
                if let Some(context) = &self.context {
                    context.timeout(delay);
                }
                Err(ConnectError::retriable(message))
            }
            None => {
                // The budget is spent: this request's records are refused; the rest of the batch goes on.
                retries.reset();
                let max_retries = config.max_retries;
                let message = format!("{message} (gave up after max.retries={max_retries})");
                tracing::warn!(status, "{message}");
                for &i in &request.records {
                    self.refused(&records[i], &message).await?;
                }
                // What is left of the batch: put again at once (not redelivered by the runtime, so no wait).
                self.put(records).await
            }
        }
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
