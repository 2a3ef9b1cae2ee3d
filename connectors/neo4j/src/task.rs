//! The sink task: each `put` becomes batches of at most `neo4j.batch.size` records, each one transaction of
//! `UNWIND $events ...` statements (one per run of records of the same topic, in order). A batch the server
//! refuses for its data is bisected by the kit (`connect_kit::isolate`), each try its own transaction, down to
//! the records at fault, which go to the errant-record reporter with the server's message. A lost connection
//! or a transient error makes the `put` fail retriably with the delay to wait; the runtime redelivers the
//! batch with its partitions paused, and what already committed (the kit's `redelivery`) is not sent again.
//! `put` returns only when every record is settled, so offsets commit only what the graph has.
//!
//! With `neo4j.eos-offset-label`, each transaction also reads and moves the offset node of every partition it
//! writes, and skips records at or below it; `open` rewinds each assigned partition to its node. A record
//! reported to the DLQ is reported before any later record of its batch commits, so a crash in between
//! cannot skip it.

use crate::bolt;
use crate::config::{Flavour, Neo4jSinkConfig};
use crate::graph::{Item, Target, WriteError};
use crate::query::Statements;
use connect_core::{
    async_trait, Config, ConnectError, ErrantRecordReporter, Result, SinkRecord, SinkTask, SinkTaskContext, TopicPartition,
};
use connect_kit::redelivery::{RecordId, Settled};
use connect_kit::{isolate, Attempt, Backoff, BackoffPolicy, Jitter};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first wait after a failed batch; it doubles up to the configured longest.
const FIRST_RETRY: Duration = Duration::from_millis(100);

pub struct Neo4jSinkTask {
    flavour: Flavour,
    config: Option<Arc<Neo4jSinkConfig>>,
    context: Option<SinkTaskContext>,
    target: Option<Arc<Target>>,
    statements: Option<Arc<Statements>>,
    /// Records of the batch being redelivered that need nothing more.
    settled: Settled,
    /// Waits while the server cannot be reached: no limit.
    outage: Option<Backoff>,
    /// Transient server errors: `neo4j.retry.max.attemps`, then the task fails.
    transient: Option<Backoff>,
}

impl Neo4jSinkTask {
    pub fn new(flavour: Flavour) -> Self {
        Neo4jSinkTask {
            flavour,
            config: None,
            context: None,
            target: None,
            statements: None,
            settled: Settled::default(),
            outage: None,
            transient: None,
        }
    }

    fn reporter(&self) -> Option<Arc<dyn ErrantRecordReporter>> {
        self.context.as_ref().and_then(|c| c.errant_record_reporter())
    }

    /// What a batch that did not get through means for the `put`: wait and redeliver, or fail the task.
    fn retry_or_fail(&mut self, error: WriteError) -> ConnectError {
        let config = self.config.clone().expect("started");
        let (delay, message) = match error {
            WriteError::Unreachable(message) => {
                let outage = self.outage.as_mut().expect("started");
                let delay = outage.next_delay().unwrap_or(config.retry_backoff_max);
                tracing::warn!(
                    attempt = outage.attempts(),
                    delay_ms = delay.as_millis() as u64,
                    "{message}; retrying (the partitions wait)"
                );
                (delay, message)
            }
            WriteError::Transient(message) => {
                let transient = self.transient.as_mut().expect("started");
                match transient.next_delay() {
                    Some(delay) => {
                        tracing::warn!(attempt = transient.attempts(), delay_ms = delay.as_millis() as u64, "{message}; retrying");
                        (delay, message)
                    }
                    None => {
                        return ConnectError::fatal(format!("{message} (gave up after {} retries)", config.retry_max_attempts));
                    }
                }
            }
            WriteError::Fatal(message) | WriteError::Data(message) => return ConnectError::fatal(message),
        };
        if let Some(context) = &self.context {
            context.timeout(delay);
        }
        ConnectError::retriable(message)
    }
}

/// Report one record to the errant-record reporter: the DLQ, or a task failure with `errors.tolerance=none`.
async fn report(reporter: Option<&Arc<dyn ErrantRecordReporter>>, record: &SinkRecord, message: String) -> Result<()> {
    let error = ConnectError::data(message);
    match reporter {
        Some(reporter) => reporter.report(record, &error).await,
        None => Err(error),
    }
}

/// One batch under the kit's bisection: each try is a transaction of its own, so a refused range leaves
/// nothing behind. Records found at fault wait in `rejects` and are reported before the next try commits.
struct Batch<'a> {
    target: &'a Target,
    statements: &'a Statements,
    items: &'a [Item],
    /// The put's record of each item.
    records: Vec<&'a SinkRecord>,
    reporter: Option<Arc<dyn ErrantRecordReporter>>,
    rejects: &'a Mutex<Vec<(usize, WriteError)>>,
    /// Items reported so far, and ranges committed so far.
    reported: Vec<usize>,
    written: Vec<Range<usize>>,
}

impl Batch<'_> {
    async fn report_rejects(&mut self) -> std::result::Result<(), WriteError> {
        let rejects = std::mem::take(&mut *self.rejects.lock().expect("not poisoned"));
        for (index, error) in rejects {
            let record = self.records[index];
            let message = format!(
                "Neo4j refused the record at {}-{}@{}: {error}",
                record.original_topic(),
                record.original_partition(),
                record.original_offset()
            );
            report(self.reporter.as_ref(), record, message).await.map_err(|e| WriteError::Fatal(e.to_string()))?;
            self.reported.push(index);
        }
        Ok(())
    }
}

impl Attempt for Batch<'_> {
    type Error = WriteError;
    async fn attempt(&mut self, range: Range<usize>) -> std::result::Result<(), WriteError> {
        self.report_rejects().await?;
        let items: Vec<&Item> = self.items[range.clone()].iter().collect();
        self.target.write(self.statements, &items).await?;
        self.written.push(range);
        Ok(())
    }
}

#[async_trait]
impl SinkTask for Neo4jSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let config = Neo4jSinkConfig::parse(&config, self.flavour)?;
        self.target = Some(Arc::new(Target::new(&config).await.map_err(|e| ConnectError::fatal(e.to_string()))?));
        self.statements = Some(Arc::new(Statements::new(&config)));
        let policy = BackoffPolicy::exponential(FIRST_RETRY, config.retry_backoff_max).with_jitter(Jitter::Symmetric(0.2));
        self.outage = Some(Backoff::new(policy.clone()));
        self.transient = Some(Backoff::new(policy.with_max_attempts(config.retry_max_attempts)));
        self.config = Some(Arc::new(config));
        self.context = Some(context);
        Ok(())
    }

    /// Exactly-once: rewind each partition to the record after its offset node's. If the server cannot be
    /// asked now, the transactions' own check still skips what the graph has.
    async fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let target = self.target.clone().expect("started");
        if self.config.as_ref().expect("started").eos_label.is_none() {
            return Ok(());
        }
        match target.stored_next_offsets(partitions).await {
            Ok(stored) => {
                let context = self.context.as_ref().expect("started");
                for (tp, next) in stored {
                    tracing::info!(partition = %tp, next, "rewinding to the offset node (exactly-once)");
                    context.offset(tp, next);
                }
            }
            Err(e) => tracing::warn!("cannot read the offset nodes now ({e}); each transaction checks them anyway"),
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        let (target, statements) = (self.target.clone().expect("started"), self.statements.clone().expect("started"));
        let reporter = self.reporter();
        let ids = RecordId::of_batch(records);
        let mut items = Vec::with_capacity(records.len());
        let mut record_of_item = Vec::with_capacity(records.len());
        let mut partitions: HashMap<TopicPartition, Arc<TopicPartition>> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            if self.settled.contains(&ids[index]) {
                continue;
            }
            let Some(statement) = statements.of_topic(record.topic()) else {
                let message =
                    format!("no Cypher template for topic {:?} (neo4j.topic.cypher.<topic> or neo4j.cypher.topic.<topic>)", record.topic());
                report(reporter.as_ref(), record, message).await?;
                self.settled.insert(ids[index].clone());
                continue;
            };
            let tp = record.original_topic_partition();
            let partition = partitions.entry(tp.clone()).or_insert_with(|| Arc::new(tp)).clone();
            items.push(Item {
                statement,
                partition,
                offset: record.original_offset(),
                event: bolt::event(record, self.flavour, &config.bindings),
            });
            record_of_item.push(index);
        }

        let mut start = 0;
        while start < items.len() {
            // A batch never splits the records one Kafka record became (a transform's), so exactly-once, which
            // counts Kafka offsets, sees them commit together.
            let mut end = (start + config.batch_size).min(items.len());
            while end < items.len() && items[end].offset == items[end - 1].offset && items[end].partition == items[end - 1].partition {
                end += 1;
            }
            let rejects = Mutex::new(Vec::new());
            let mut batch = Batch {
                target: &target,
                statements: &statements,
                items: &items[start..end],
                records: record_of_item[start..end].iter().map(|&i| &records[i]).collect(),
                reporter: reporter.clone(),
                rejects: &rejects,
                reported: Vec::new(),
                written: Vec::new(),
            };
            let outcome =
                isolate(end - start, &mut batch, WriteError::kind, |i, e| rejects.lock().expect("not poisoned").push((i, e))).await;
            let outcome = match outcome {
                Ok(_) => batch.report_rejects().await,
                Err(e) => Err(e),
            };
            // What committed or was reported is settled, whatever happened after.
            let settled_items = batch.written.iter().flat_map(|r| r.clone()).chain(batch.reported.iter().copied());
            for item in settled_items {
                self.settled.insert(ids[record_of_item[start + item]].clone());
            }
            if let Err(error) = outcome {
                return Err(self.retry_or_fail(error));
            }
            self.outage.as_mut().expect("started").reset();
            self.transient.as_mut().expect("started").reset();
            start = end;
        }
        self.settled.clear();
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
