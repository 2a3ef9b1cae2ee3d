//! The sink task: each `put` becomes batches of at most `neo4j.batch.size` records, each one transaction of
//! `UNWIND $events ...` statements (one per run of records of the same topic, in order). A batch the server
//! refuses for its data is bisected by the kit (`connect_kit::isolate`), each try its own transaction, down to
//! the records at fault, which go to the errant-record reporter with the server's message. A lost connection
//! or a transient error makes the `put` fail retriably with the delay to wait; the runtime redelivers the
//! batch with its partitions paused, and what already committed (the kit's `redelivery`) is not sent again.
//! `put` returns only when every record is settled, so offsets commit only what the graph has.
//!
//! Bisection works on Kafka records, not on the records a transform made of one (Explode's parts): the parts
//! of one Kafka record commit, or are reported, together, which exactly-once needs, since it counts offsets.
//!
//! With `neo4j.eos-offset-label`, each transaction also reads and moves the offset node of every partition it
//! writes, and skips records at or below it; `open` rewinds each assigned partition to its node. A record
//! reported to the DLQ is reported before any later record of its batch commits, so a crash in between
//! cannot skip it, and the offset nodes then move over it, so a restart does not report it again.

use crate::bolt;
use crate::config::{Flavour, Neo4jSinkConfig};
use crate::graph::{Item, Target, WriteError};
use crate::query::Statements;
use connect_core::{
    async_trait, Config, ConnectError, ErrantRecordReporter, ErrorKind, Result, SinkRecord, SinkTask, SinkTaskContext, TopicPartition,
};
use connect_kit::errant::report;
use connect_kit::redelivery::{RecordId, Settled};
use connect_kit::{isolate, Attempt, Backoff};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

pub struct Neo4jSinkTask {
    flavour: Flavour,
    config: Option<Arc<Neo4jSinkConfig>>,
    context: Option<SinkTaskContext>,
    target: Option<Arc<Target>>,
    /// After a retriable error the connection pool is replaced: a connection a timeout cut off mid-answer could
    /// be out of step with the server, and neo4rs would hand it out again.
    rebuild_target: bool,
    statements: Option<Arc<Statements>>,
    /// Records of the batch being redelivered that need nothing more.
    settled: Settled,
    /// Waits while the server cannot be reached: no limit.
    outage: Option<Backoff>,
    /// Transient server errors: limited by the retry keys, then the task fails.
    transient: Option<Backoff>,
}

impl Neo4jSinkTask {
    pub fn new(flavour: Flavour) -> Self {
        Neo4jSinkTask {
            flavour,
            config: None,
            context: None,
            target: None,
            rebuild_target: false,
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
                let delay = outage.next_delay().unwrap_or_else(|| outage.policy().delay(u32::MAX));
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
        self.rebuild_target = true;
        if let Some(context) = &self.context {
            context.timeout(delay);
        }
        ConnectError::retriable(message)
    }
}

/// One batch under the kit's bisection, over its Kafka records (`groups` of items): each try is a transaction
/// of its own, so a refused range leaves nothing behind. Records found at fault wait in `rejects` and are
/// reported before the next try commits.
struct Batch<'a> {
    target: &'a Target,
    statements: &'a Statements,
    items: &'a [Item],
    /// The items of each Kafka record, in order.
    groups: Vec<Range<usize>>,
    /// The put's record of each item.
    records: Vec<&'a SinkRecord>,
    reporter: Option<Arc<dyn ErrantRecordReporter>>,
    rejects: &'a Mutex<Vec<(usize, WriteError)>>,
    /// Items reported so far, and items committed so far.
    reported: Vec<usize>,
    written: Vec<usize>,
}

impl Batch<'_> {
    fn items_of(&self, groups: Range<usize>) -> Range<usize> {
        self.groups[groups.start].start..self.groups[groups.end - 1].end
    }

    async fn report_rejects(&mut self) -> std::result::Result<(), WriteError> {
        let rejects = std::mem::take(&mut *self.rejects.lock().expect("not poisoned"));
        for (group, error) in rejects {
            for index in self.items_of(group..group + 1) {
                let record = self.records[index];
                let message = format!(
                    "Neo4j refused the record at {}-{}@{}: {error}",
                    record.original_topic(),
                    record.original_partition(),
                    record.original_offset()
                );
                // A DLQ that cannot take it now is worth a retry; a refusal (errors.tolerance=none) ends the task.
                report(self.reporter.as_ref(), record, message).await.map_err(|e| match e.kind() {
                    ErrorKind::Retriable => WriteError::Transient(e.to_string()),
                    _ => WriteError::Fatal(e.to_string()),
                })?;
                self.reported.push(index);
            }
        }
        Ok(())
    }
}

impl Attempt for Batch<'_> {
    type Error = WriteError;
    async fn attempt(&mut self, groups: Range<usize>) -> std::result::Result<(), WriteError> {
        self.report_rejects().await?;
        let range = self.items_of(groups);
        let items: Vec<&Item> = self.items[range.clone()].iter().collect();
        self.target.write(self.statements, &items).await?;
        self.written.extend(range);
        Ok(())
    }
}

/// Whether two items came from one Kafka record (a transform made several records of it).
fn same_kafka_record(a: &Item, b: &Item) -> bool {
    a.offset == b.offset && a.partition == b.partition
}

/// The items of each Kafka record (consecutive items from the same one).
fn kafka_records(items: &[Item]) -> Vec<Range<usize>> {
    let mut groups: Vec<Range<usize>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match groups.last_mut() {
            Some(last) if same_kafka_record(&items[last.start], item) => last.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    groups
}

#[async_trait]
impl SinkTask for Neo4jSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let config = Neo4jSinkConfig::parse(&config, self.flavour)?;
        self.target = Some(Arc::new(Target::new(&config).await.map_err(|e| ConnectError::fatal(e.to_string()))?));
        self.statements = Some(Arc::new(Statements::new(&config)));
        self.outage = Some(Backoff::new(config.outage_backoff.clone()));
        self.transient = Some(Backoff::new(config.transient_backoff.clone()));
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
            Err(e) => {
                self.rebuild_target = true;
                tracing::warn!("cannot read the offset nodes now ({e}); each transaction checks them anyway");
            }
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        if std::mem::take(&mut self.rebuild_target) {
            self.target = Some(Arc::new(Target::new(&config).await.map_err(|e| ConnectError::fatal(e.to_string()))?));
        }
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
            // A batch never splits the records one Kafka record became (a transform's).
            let mut end = (start + config.batch_size).min(items.len());
            while end < items.len() && same_kafka_record(&items[end], &items[end - 1]) {
                end += 1;
            }
            let rejects = Mutex::new(Vec::new());
            let chunk = &items[start..end];
            let mut batch = Batch {
                target: &target,
                statements: &statements,
                items: chunk,
                groups: kafka_records(chunk),
                records: record_of_item[start..end].iter().map(|&i| &records[i]).collect(),
                reporter: reporter.clone(),
                rejects: &rejects,
                reported: Vec::new(),
                written: Vec::new(),
            };
            let groups = batch.groups.len();
            let outcome = isolate(groups, &mut batch, WriteError::kind, |i, e| rejects.lock().expect("not poisoned").push((i, e))).await;
            let outcome = match outcome {
                Ok(_) => batch.report_rejects().await,
                Err(e) => Err(e),
            };
            // What committed or was reported is settled, whatever happened after.
            for &item in batch.written.iter().chain(batch.reported.iter()) {
                self.settled.insert(ids[record_of_item[start + item]].clone());
            }
            if outcome.is_ok() && !batch.reported.is_empty() {
                // Exactly-once: the offset nodes move over the reported records too (written ones moved them
                // already), so a restart does not report them again. Nothing to do without the label.
                let mut last: HashMap<Arc<TopicPartition>, i64> = HashMap::new();
                for item in chunk {
                    let offset = last.entry(Arc::clone(&item.partition)).or_insert(item.offset);
                    *offset = (*offset).max(item.offset);
                }
                if let Err(error) = target.advance_offsets(&last).await {
                    tracing::warn!("the offset nodes could not be moved over the records sent to the DLQ ({error}); after a restart they may be reported again");
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use neo4rs::BoltType;

    fn item(partition: &Arc<TopicPartition>, offset: i64) -> Item {
        Item { statement: 0, partition: Arc::clone(partition), offset, event: BoltType::from(offset) }
    }

    #[test]
    fn the_parts_of_one_kafka_record_are_one_group() {
        let (p0, p1) = (Arc::new(TopicPartition::new("t", 0)), Arc::new(TopicPartition::new("t", 1)));
        let items = [item(&p0, 5), item(&p0, 5), item(&p0, 5), item(&p1, 5), item(&p0, 6), item(&p0, 7), item(&p0, 7)];
        assert_eq!(kafka_records(&items), [0..3, 3..4, 4..5, 5..7]);
        assert!(kafka_records(&[]).is_empty());
    }
}
