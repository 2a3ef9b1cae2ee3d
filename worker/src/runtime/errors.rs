//! Error handling for records: tolerance, retries, logging, dead-letter queues and counters
//! (`errors.*`, with Kafka Connect's semantics, plus a DLQ for sources, which Kafka Connect lacks).
//!
//! Invariant: a record that fails a stage either fails the task (`errors.tolerance=none`), or is skipped
//! and counted, and with a DLQ configured it is in the DLQ before its offset can be committed.

use crate::runtime::metrics::TaskMetrics;
use connect_core::{Config, ConnectError, ErrorKind};
use connect_kit::backoff::{Backoff, BackoffPolicy, Jitter};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The stages of Kafka Connect's `Stage` enum; names appear in traces and DLQ headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    TaskPoll,
    TaskPut,
    Transformation,
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    KafkaProduce,
    KafkaConsume,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::TaskPoll => "TASK_POLL",
            Stage::TaskPut => "TASK_PUT",
            Stage::Transformation => "TRANSFORMATION",
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::HeaderConverter => "HEADER_CONVERTER",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
            Stage::KafkaConsume => "KAFKA_CONSUME",
        })
    }
}

/// What a connector's `errors.*` keys say.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    /// `None`: retry forever (-1). Zero: no retries.
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
    pub log: bool,
    pub log_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_replication_factor: i32,
    pub dlq_context_headers: bool,
}

impl ErrorPolicy {
    pub fn from_connector(config: &Config) -> Self {
        let get = |k: &str| config.get(k).map(|v| v.trim().to_string());
        let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let retry_timeout_ms: i64 = get("errors.retry.timeout").and_then(|v| v.parse().ok()).unwrap_or(0);
        ErrorPolicy {
            tolerate_all: get("errors.tolerance").is_some_and(|v| v.eq_ignore_ascii_case("all")),
            retry_timeout: if retry_timeout_ms < 0 { None } else { Some(Duration::from_millis(retry_timeout_ms as u64)) },
            retry_delay_max: Duration::from_millis(get("errors.retry.delay.max.ms").and_then(|v| v.parse().ok()).unwrap_or(60_000)),
            log: flag("errors.log.enable"),
            log_messages: flag("errors.log.include.messages"),
            dlq_topic: get("errors.deadletterqueue.topic.name").filter(|t| !t.is_empty()),
            dlq_replication_factor: get("errors.deadletterqueue.topic.replication.factor").and_then(|v| v.parse().ok()).unwrap_or(3),
            dlq_context_headers: flag("errors.deadletterqueue.context.headers.enable"),
        }
    }

    /// Whether an error at `stage` may be skipped: conversion and transform errors of any kind, at other
    /// stages only retriable ones (Kafka Connect's rule) — plus, beyond Kafka Connect, the put stage when
    /// the sink reports the record itself through the errant-record reporter, and the poll stage when a
    /// source hands over input it could not read as a record (`SourceRecord::unreadable`, a data error).
    pub fn tolerable(stage: Stage, error: &ConnectError) -> bool {
        matches!(stage, Stage::Transformation | Stage::KeyConverter | Stage::ValueConverter | Stage::HeaderConverter | Stage::TaskPut)
            || (stage == Stage::TaskPoll && error.kind() == ErrorKind::Data)
            || error.kind() == ErrorKind::Retriable
    }
}

/// The original bytes of a record, for the DLQ: as consumed (sinks) or as far as they could be
/// serialised (sources).
#[derive(Debug, Clone, Default)]
pub struct RawRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

/// Where a failed record came from, for traces, logs and DLQ headers.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A consumed record: `__connect.errors.topic/partition/offset`.
    Kafka { topic: String, partition: i32, offset: i64 },
    /// A source record: `__connect.errors.source.partition/offset` (connect-rs extension), as JSON.
    Source { topic: String, partition: String, offset: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Kafka { topic, partition, offset } => write!(f, "topic {topic} partition {partition} offset {offset}"),
            Origin::Source { topic, partition, offset } => write!(f, "source partition {partition} offset {offset} (topic {topic})"),
        }
    }
}

/// What happened to a failed record.
pub enum Disposition {
    /// Skipped; nothing to wait for.
    Skipped,
    /// Skipped and on its way to the DLQ: its offset may be committed once this resolves.
    DeadLettered(DeliveryFuture),
}

/// One task's error handling: decides, logs, retries, dead-letters and counts.
pub struct ErrorHandler {
    pub policy: ErrorPolicy,
    pub connector: String,
    pub task_id: u32,
    pub metrics: Arc<TaskMetrics>,
    /// Producer for the DLQ, the task's own ([`crate::kafka::dlq_producer`]).
    pub dlq_producer: Option<FutureProducer>,
}

impl ErrorHandler {
    /// Decide on a record that failed `stage` (after any retries). `Err`: the task must fail, with a
    /// trace naming the stage, the class and the record. `Ok`: the record is skipped (and dead-lettered
    /// when a DLQ is configured).
    pub fn handle(
        &self,
        stage: Stage,
        class: &str,
        origin: &Origin,
        raw: Option<&RawRecord>,
        error: ConnectError,
    ) -> Result<Disposition, ConnectError> {
        TaskMetrics::add(&self.metrics.total_record_errors, 1);
        TaskMetrics::add(&self.metrics.total_record_failures, 1);
        self.metrics.last_error_timestamp.store(now_ms(), Ordering::Relaxed);
        if !(self.policy.tolerate_all && ErrorPolicy::tolerable(stage, &error)) {
            let hint = if self.policy.tolerate_all { "" } else { " (errors.tolerance=none)" };
            return Err(error.context(format!("Tolerance exceeded in error handler{hint}: stage {stage}, class {class}, record {origin}")));
        }
        TaskMetrics::add(&self.metrics.total_records_skipped, 1);
        if self.policy.log {
            TaskMetrics::add(&self.metrics.total_errors_logged, 1);
            if self.policy.log_messages {
                tracing::error!(connector = %self.connector, task = self.task_id, stage = %stage, class, record = %origin, error = %error.chain(), "error encountered in task; record skipped");
            } else {
                tracing::error!(connector = %self.connector, task = self.task_id, stage = %stage, class, error = %error.chain(), "error encountered in task; record skipped");
            }
        }
        match (&self.policy.dlq_topic, &self.dlq_producer, raw) {
            (Some(topic), Some(producer), Some(raw)) => {
                self.dead_letter(producer, topic, stage, class, origin, raw, &error).map(Disposition::DeadLettered)
            }
            (Some(_), _, None) => {
                // Kafka Connect counts this as a DLQ failure: there is nothing original to write.
                TaskMetrics::add(&self.metrics.deadletterqueue_produce_failures, 1);
                Ok(Disposition::Skipped)
            }
            _ => Ok(Disposition::Skipped),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dead_letter(
        &self,
        producer: &FutureProducer,
        topic: &str,
        stage: Stage,
        class: &str,
        origin: &Origin,
        raw: &RawRecord,
        error: &ConnectError,
    ) -> Result<DeliveryFuture, ConnectError> {
        TaskMetrics::add(&self.metrics.deadletterqueue_produce_requests, 1);
        let mut headers = OwnedHeaders::new_with_capacity(raw.headers.len() + 12);
        for (k, v) in &raw.headers {
            headers = headers.insert(KafkaHeader { key: k, value: v.as_deref() });
        }
        if self.policy.dlq_context_headers {
            let task_id = self.task_id.to_string();
            let stage_name = stage.to_string();
            let message = error.to_string();
            let trace = error.chain();
            let mut context: Vec<(&str, String)> = Vec::with_capacity(10);
            match origin {
                Origin::Kafka { topic, partition, offset } => {
                    context.push(("__connect.errors.topic", topic.clone()));
                    context.push(("__connect.errors.partition", partition.to_string()));
                    context.push(("__connect.errors.offset", offset.to_string()));
                }
                Origin::Source { partition, offset, .. } => {
                    context.push(("__connect.errors.source.partition", partition.clone()));
                    context.push(("__connect.errors.source.offset", offset.clone()));
                }
            }
            context.push(("__connect.errors.connector.name", self.connector.clone()));
            context.push(("__connect.errors.task.id", task_id));
            context.push(("__connect.errors.stage", stage_name));
            context.push(("__connect.errors.class.name", class.to_string()));
            context.push(("__connect.errors.exception.class.name", error.kind().java_class().to_string()));
            context.push(("__connect.errors.exception.message", message));
            context.push(("__connect.errors.exception.stacktrace", trace));
            for (k, v) in &context {
                headers = headers.insert(KafkaHeader { key: k, value: Some(v.as_bytes()) });
            }
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = raw.key.as_deref() {
            record = record.key(k);
        }
        if let Some(v) = raw.value.as_deref() {
            record = record.payload(v);
        }
        if let Some(ts) = raw.timestamp {
            record = record.timestamp(ts);
        }
        producer.send_result(record).map_err(|(e, _)| {
            TaskMetrics::add(&self.metrics.deadletterqueue_produce_failures, 1);
            crate::kafka::kafka_error("cannot send a record to the dead-letter queue", e)
        })
    }

    /// Wait for a DLQ delivery; a record that reached neither Kafka nor the DLQ fails the task.
    pub async fn confirm(&self, delivery: DeliveryFuture) -> Result<(), ConnectError> {
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => {
                TaskMetrics::add(&self.metrics.deadletterqueue_produce_failures, 1);
                Err(crate::kafka::kafka_error("the dead-letter queue did not take a record", e))
            }
            Err(_) => {
                TaskMetrics::add(&self.metrics.deadletterqueue_produce_failures, 1);
                Err(ConnectError::retriable("the dead-letter queue producer went away"))
            }
        }
    }

    /// The schedule of `errors.retry.*` for records (retriable transform errors): doubling from 300 ms up to
    /// `errors.retry.delay.max.ms`, jittered below the cap once reached, within `errors.retry.timeout`
    /// (0, the default, allows no retry; -1 retries forever).
    pub fn record_retries(&self) -> Backoff {
        let policy = retry_schedule(self.policy.retry_delay_max);
        Backoff::new(match self.policy.retry_timeout {
            Some(limit) => policy.with_max_elapsed(limit),
            None => policy,
        })
    }

    /// The schedule for retriable `put` errors: the same delays, but retried forever unless
    /// `errors.retry.timeout` > 0 bounds them (Kafka Connect redelivers a failing batch until it is written).
    pub fn put_retries(&self) -> Backoff {
        let policy = retry_schedule(self.policy.retry_delay_max);
        Backoff::new(match self.policy.retry_timeout.filter(|t| !t.is_zero()) {
            Some(limit) => policy.with_max_elapsed(limit),
            None => policy,
        })
    }

    /// After a retriable failure: the time to wait before trying again, or `None` when the budget is spent.
    /// Counts the retry.
    pub fn next_retry(&self, backoff: &mut Backoff) -> Option<Duration> {
        let wait = backoff.next_delay()?;
        TaskMetrics::add(&self.metrics.total_retries, 1);
        TaskMetrics::add(&self.metrics.total_record_failures, 1);
        Some(wait)
    }
}

/// Doubling from 300 ms to `cap`; once at the cap, jittered below it (many tasks failing together do not
/// retry together).
pub fn retry_schedule(cap: Duration) -> BackoffPolicy {
    BackoffPolicy::exponential(Duration::from_millis(300), cap).with_jitter(Jitter::WhenCapped(0.5))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(pairs: &[(&str, &str)]) -> ErrorHandler {
        let config: Config = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ErrorHandler {
            policy: ErrorPolicy::from_connector(&config),
            connector: "c".into(),
            task_id: 0,
            metrics: Arc::default(),
            dlq_producer: None,
        }
    }

    fn origin() -> Origin {
        Origin::Kafka { topic: "t".into(), partition: 0, offset: 5 }
    }

    #[test]
    fn tolerance_none_fails_with_stage_and_coordinates() {
        let h = handler(&[]);
        let err = h.handle(Stage::ValueConverter, "JsonConverter", &origin(), None, ConnectError::data("bad json")).err().unwrap();
        assert!(err.message().contains("stage VALUE_CONVERTER, class JsonConverter, record topic t partition 0 offset 5"), "{err}");
        assert_eq!(h.metrics.snapshot().total_record_errors, 1);
        assert_eq!(h.metrics.snapshot().total_records_skipped, 0);
    }

    #[test]
    fn tolerance_all_skips_what_kafka_connect_skips() {
        let h = handler(&[("errors.tolerance", "all"), ("errors.log.enable", "true")]);
        assert!(h.handle(Stage::ValueConverter, "c", &origin(), None, ConnectError::data("bad")).is_ok());
        assert!(h.handle(Stage::KafkaProduce, "c", &origin(), None, ConnectError::retriable("timeout")).is_ok());
        assert!(h.handle(Stage::KafkaProduce, "c", &origin(), None, ConnectError::fatal("auth")).is_err());
        let m = h.metrics.snapshot();
        assert_eq!((m.total_record_errors, m.total_records_skipped, m.total_errors_logged), (3, 2, 2));
    }

    #[test]
    fn retries_within_the_timeout_with_growing_delays() {
        let h = handler(&[("errors.retry.timeout", "2000"), ("errors.retry.delay.max.ms", "1000")]);
        let mut backoff = h.record_retries();
        assert_eq!(h.next_retry(&mut backoff), Some(Duration::from_millis(300)));
        assert_eq!(h.next_retry(&mut backoff), Some(Duration::from_millis(600)));
        let capped = h.next_retry(&mut backoff).unwrap();
        assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_millis(1000), "{capped:?}");
        assert_eq!(h.metrics.snapshot().total_retries, 3);
        let none = handler(&[]);
        assert_eq!(none.next_retry(&mut none.record_retries()), None, "0 means no retries");
        let forever = handler(&[("errors.retry.timeout", "-1")]);
        let mut backoff = forever.record_retries();
        assert!((0..100).all(|_| forever.next_retry(&mut backoff).is_some()));
        // Puts retry forever unless errors.retry.timeout > 0 bounds them.
        assert!(none.put_retries().next_delay().is_some());
        assert_eq!(h.put_retries().policy().max_elapsed, Some(Duration::from_millis(2000)));
    }
}
