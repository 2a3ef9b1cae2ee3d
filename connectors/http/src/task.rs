//! The sink task: each `put` becomes requests (`request`), sent up to `max.in.flight.requests` at a time in
//! order (`service`); what the target refused goes to the errant-record reporter; what it asks to retry is
//! handed back to the runtime as a retriable error with the delay to wait.
//!
//! The runtime then pauses the partitions, keeps polling Kafka, and redelivers the same batch after the delay
//! (`SinkTaskContext::timeout`): no thread sleeps here and the consumer stays in its group. Records of that
//! batch already delivered (or reported) are remembered (the kit's `redelivery`) and not sent again.
//!
//! One retry budget per stuck request: `max.retries` retries of the first request that has not got through,
//! `retry.backoff.ms` doubling (or the server's `Retry-After` when longer); progress restores the budget.
//! When it is spent on the target's condition (unreachable, 408/425/429, 5xx) the task fails, as Confluent's
//! does, and the worker restarts it later: an outage is not the records' fault, so they are not dead-lettered.
//! When it is spent on a 4xx the config asked to retry, the request's records are refused (`behavior.on.error`).

use crate::config::{HttpSinkConfig, OnError, OnNull};
use crate::request::{Batcher, Prepared};
use crate::service::{Outcome, Service};
use connect_core::{async_trait, Config, ConnectError, Result, SinkRecord, SinkTask, SinkTaskContext};
use connect_kit::concurrency::InFlight;
use connect_kit::redelivery::{RecordId, Settled};
use connect_kit::Backoff;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct HttpSinkTask {
    config: Option<Arc<HttpSinkConfig>>,
    context: Option<SinkTaskContext>,
    service: Option<Arc<Service>>,
    retries: Option<Backoff>,
    /// Records of the batch being redelivered that need nothing more: delivered, reported or skipped.
    settled: Settled,
}

/// How a put's requests went.
struct Round {
    outcomes: Vec<(Prepared, Outcome)>,
    /// Requests not started because an earlier one must be retried first (they keep their order).
    not_sent: usize,
}

/// The first request that must be retried, and why.
struct Stuck {
    request: Prepared,
    message: String,
    status: Option<u16>,
    server_delay: Option<Duration>,
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
    async fn refused(&mut self, record: &SinkRecord, id: &RecordId, message: &str) -> Result<()> {
        match self.config().on_error {
            OnError::Ignore => tracing::debug!(record = %id, "skipping a refused record (behavior.on.error=ignore): {message}"),
            OnError::Log => tracing::warn!(record = %id, "skipping a refused record (behavior.on.error=log): {message}"),
            OnError::Fail => {
                let reporter = self.context.as_ref().and_then(|c| c.errant_record_reporter());
                match reporter {
                    Some(reporter) => reporter.report(record, &ConnectError::data(message.to_string())).await?,
                    None => return Err(ConnectError::fatal(format!("{message} (record {id}; behavior.on.error=fail)"))),
                }
            }
        }
        self.settled.insert(id.clone());
        Ok(())
    }

    /// Requests for the records not yet settled; null values handled per `behavior.on.null.values`.
    async fn prepare(&mut self, records: &[SinkRecord], ids: &[RecordId]) -> Result<Vec<Prepared>> {
        let config = self.config.clone().expect("started");
        let mut batcher = Batcher::new(&config);
        let mut null_failures = Vec::new();
        for (index, record) in records.iter().enumerate() {
            if self.settled.contains(&ids[index]) {
                continue;
            }
            if !record.data.value.is_null() {
                batcher.push(index, record);
                continue;
            }
            match config.on_null {
                OnNull::Ignore => self.settled.insert(ids[index].clone()),
                OnNull::Log => {
                    tracing::warn!(record = %ids[index], key = %crate::render::key_text(record), "skipping a record with a null value (behavior.on.null.values=log)");
                    self.settled.insert(ids[index].clone());
                }
                OnNull::Delete => batcher.push_delete(index, record),
                OnNull::Fail => null_failures.push(index),
            }
        }
        for index in null_failures {
            self.refused(&records[index], &ids[index], "the record's value is null (behavior.on.null.values=fail)").await?;
        }
        Ok(batcher.finish())
    }
}

/// Statuses that are the target's condition rather than the records' fault (no status: not reached at all).
fn target_condition(status: Option<u16>) -> bool {
    status.is_none_or(|s| matches!(s, 408 | 425 | 429) || s >= 500)
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
        let ids = RecordId::of_batch(records);
        // Goes round again only when a request whose retries are spent was refused: the rest of the batch goes on.
        loop {
            let requests = self.prepare(records, &ids).await?;
            if requests.is_empty() {
                self.settled.clear();
                self.retries.as_mut().expect("started").reset();
                return Ok(());
            }
            let round = self.send_all(requests).await;
            // Settle what got through before reporting anything: a report that fails must not cost a re-send.
            let mut progressed = false;
            let mut refusals = Vec::new();
            let mut stuck: Option<Stuck> = None;
            for (request, outcome) in round.outcomes {
                match outcome {
                    Outcome::Delivered => {
                        progressed = true;
                        for &i in &request.records {
                            self.settled.insert(ids[i].clone());
                        }
                    }
                    Outcome::Refused { message } => {
                        progressed = true;
                        refusals.push((request, message));
                    }
                    Outcome::Unauthorized { message } if config.on_error == OnError::Fail => {
                        return Err(ConnectError::fatal(format!("{message} (no record can be delivered; check the credentials)")));
                    }
                    Outcome::Unauthorized { message } => refusals.push((request, message)),
                    Outcome::Retry { message, status, server_delay } => {
                        if stuck.is_none() {
                            stuck = Some(Stuck { request, message, status, server_delay });
                        }
                    }
                }
            }
            for (request, message) in refusals {
                for &i in &request.records {
                    self.refused(&records[i], &ids[i], &message).await?;
                }
            }
            let retries = self.retries.as_mut().expect("started");
            if progressed {
                retries.reset();
            }
            let Some(stuck) = stuck else { continue };
            if let Some(delay) = retries.next_delay_at_least(stuck.server_delay) {
                tracing::warn!(
                    attempt = retries.attempts(),
                    delay_ms = delay.as_millis() as u64,
                    waiting = round.not_sent,
                    "{}; retrying",
                    stuck.message
                );
                if let Some(context) = &self.context {
                    context.timeout(delay);
                }
                return Err(ConnectError::retriable(stuck.message));
            }
            retries.reset();
            let message = format!("{} (gave up after max.retries={})", stuck.message, config.max_retries);
            // The target's condition (down, overloaded) is not the records' fault: the task fails (and restarts by
            // itself) rather than dead-lettering them; behavior.on.error=ignore/log skips them, as asked.
            if target_condition(stuck.status) && config.on_error == OnError::Fail {
                return Err(ConnectError::fatal(message));
            }
            tracing::warn!(status = stuck.status, "{message}");
            for &i in &stuck.request.records {
                self.refused(&records[i], &ids[i], &message).await?;
            }
        }
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
