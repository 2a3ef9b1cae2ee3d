//! The sink task: turns each `put` into chunks of `batch.size` rows, writes them (`write`), reports rows the
//! database refuses, and keeps one retry budget for everything that fails for the database's sake.

use crate::config::{InsertMode, PostgresSinkConfig};
use crate::dialect::{ident, row_of, Row, RowOp};
use crate::errors::{classify, db_error, describe, WriteError};
use crate::open_copy::{key_hash, widen, OpenCopy, Spans, Staged};
use crate::schema::Columns;
use crate::session::{self, Session};
use crate::write::{column_types, quoted_names, staged_statement, write_transaction};
use connect_core::{
    async_trait, Config, ConnectError, ErrorKind, OffsetMap, Result, SinkRecord, SinkTask, SinkTaskContext, TopicPartition,
};
use connect_kit::{Backoff, BackoffPolicy};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct PostgresSinkTask {
    /// Shared with the writes of each batch (an `Arc`, not a copy per batch).
    config: Option<Arc<PostgresSinkConfig>>,
    context: Option<SinkTaskContext>,
    client: Option<tokio_postgres::Client>,
    /// Known columns of each table.
    pub(crate) tables: HashMap<String, Columns>,
    /// Next offset per partition already in the database (exactly-once): records below it are skipped.
    written: HashMap<TopicPartition, i64>,
    /// The task's one retry budget (see [`retry_policy`]); `None` until started.
    retries: Option<Backoff>,
    /// `table.name.format` applied, per topic.
    table_names: HashMap<String, Arc<str>>,
    session: Session,
    /// Insert mode: the COPY that stays open across puts (`copy.linger.ms`).
    copy: Option<OpenCopy>,
    /// Partitions rewound after a COPY across puts failed, to their first offset in it: no later offset is
    /// committed before the records come again (the runtime seeks before the next put).
    rewound: HashMap<TopicPartition, i64>,
    /// Up to which offset (exclusive) records of a rewound partition are written batch by batch, so that the
    /// rows that failed the COPY are found and reported, not sent into another COPY that fails the same way.
    replay_until: HashMap<TopicPartition, i64>,
}

/// What became of a chunk offered to the open COPY.
enum Spanned {
    /// It is in the open COPY.
    Yes,
    /// It cannot go into a COPY across puts (or one could not be opened): write it batch by batch. No open
    /// COPY failed.
    No,
    /// The open COPY failed and its partitions were rewound: the chunk must come again too.
    Failed,
}

/// One budget for everything that fails for the database's sake: every failed connection attempt and every
/// batch that could not be written spends a step; after `max.retries` steps in a row the task fails. A
/// written batch restores the budget. A failed batch is redelivered by the runtime after `retry.backoff.ms`;
/// connection attempts within one put are `connection.backoff.ms` apart, at most `connection.attempts` of them.
fn retry_policy(config: &PostgresSinkConfig) -> BackoffPolicy {
    BackoffPolicy::constant(config.retry_backoff).with_max_attempts(config.max_retries)
}

/// Connection attempts within one call: `connection.attempts`, `connection.backoff.ms` apart.
fn connection_pacing(config: &PostgresSinkConfig) -> BackoffPolicy {
    BackoffPolicy::constant(config.connection_backoff).with_max_attempts(config.connection_attempts.saturating_sub(1))
}

impl PostgresSinkTask {
    pub(crate) fn config(&self) -> &PostgresSinkConfig {
        self.config.as_deref().expect("started")
    }

    /// Spend one step of the retry budget: the delay before the next try, or the error that fails the task.
    fn spend_retry(&mut self, cause: &ConnectError) -> Result<Duration> {
        let max_retries = self.config().max_retries;
        let retries = self.retries.as_mut().expect("started");
        retries.next_delay().ok_or_else(|| ConnectError::fatal(format!("giving up after {max_retries} retries: {cause}")))
    }

    /// The open connection, or a new one (at most `connection.attempts` tries, `connection.backoff.ms` apart,
    /// each spending from the retry budget).
    pub(crate) async fn client(&mut self) -> Result<&mut tokio_postgres::Client> {
        // A statement sent while a COPY is open would wait behind it: the task would wait for itself.
        debug_assert!(self.copy.is_none(), "the connection is busy with an open COPY");
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let tls = crate::tls::connector(&self.config().tls)?;
            // Paces the attempts of this call; the task's budget decides whether to go on at all.
            let mut pacing = Backoff::new(connection_pacing(self.config()));
            let client = loop {
                match session::connect(&self.config().connection, tls.as_ref()).await {
                    Ok(client) => break client,
                    Err(e) => {
                        let attempt = pacing.attempts() + 1;
                        tracing::warn!(attempt, error = %e, "cannot connect to PostgreSQL");
                        let error =
                            ConnectError::retriable(format!("cannot connect to PostgreSQL after {attempt} attempts: {}", describe(&e)));
                        self.spend_retry(&error)?;
                        match pacing.next_delay() {
                            Some(delay) => tokio::time::sleep(delay).await,
                            None => return Err(error),
                        }
                    }
                }
            };
            self.client = Some(client);
            self.session = Session::default();
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    /// Whether a chunk may go into a COPY across puts: not with exactly-once (whose offsets are written with
    /// each batch's rows), no deletes, one table and one column list, no record of it to be replayed.
    fn may_span(&self, config: &PostgresSinkConfig, rows: &[(Row<'_>, usize)], spans: &Spans) -> bool {
        let Some((first, _)) = rows.first() else { return false };
        !config.copy_linger.is_zero()
            && !config.exactly_once
            && first.op == RowOp::Write
            && rows.iter().all(|(r, _)| first.shares_statement_with(r))
            && !spans.iter().any(|(tp, first, _)| self.replay_until.get(tp).is_some_and(|until| first < until))
    }

    /// Put a chunk into the open COPY, opening one if none is open (or the open one is for other columns, or
    /// already stages one of the chunk's keys).
    async fn span(&mut self, rows: &[(Row<'_>, usize)], spans: &Spans) -> Spanned {
        let staged = self.config().insert_mode != InsertMode::Insert;
        let keys: Vec<u64> = if staged { rows.iter().map(|(r, _)| key_hash(r)).collect() } else { Vec::new() };
        // Within one statement a key may appear once: a chunk with a key twice goes batch by batch, where the
        // last row for a key wins.
        let mut seen = HashSet::with_capacity(keys.len());
        if !keys.iter().all(|k| seen.insert(*k)) {
            return Spanned::No;
        }
        if self.copy.as_ref().is_some_and(|copy| !copy.takes(&rows[0].0) || copy.has_any_key(&keys)) && !self.end_copy(&[]).await {
            return Spanned::Failed;
        }
        if let Some(copy) = &mut self.copy {
            return match copy.append(rows, spans, &keys).await {
                Ok(true) => Spanned::Yes,
                Ok(false) => Spanned::No,
                Err(e) => {
                    let (spans, staged) = self.copy.take().expect("open").abandon();
                    self.copy_failed(spans, staged, e, &[]).await;
                    Spanned::Failed
                }
            };
        }
        // Opening one needs the connection and the tables as they should be; anything that goes wrong here is
        // left to the batch-by-batch path, which retries and reports.
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            return Spanned::No;
        }
        match self.prepare_tables(rows).await {
            Ok(refused) if refused.is_empty() => {}
            _ => return Spanned::No,
        }
        let config = self.config.clone().expect("started");
        let types = column_types(&config, &self.tables, &rows[0].0);
        let (table, column_list) = quoted_names(&config, &rows[0].0);
        let client = self.client.as_ref().expect("checked above");
        let session = &mut self.session;
        let opened = async {
            let (target, staging) = if staged {
                client.batch_execute("BEGIN").await.map_err(classify)?;
                let stage = session.stage(client, &rows[0].0.table, &table, &column_list, false).await?;
                let apply = match staged_statement(&config, &rows[0].0, &table, &stage, &column_list) {
                    Some(sql) => Some(session.statement(client, &sql).await?),
                    None => None,
                };
                (stage, Some(Staged::new(apply, &keys)))
            } else {
                (table, None)
            };
            OpenCopy::open(client, session, &target, &column_list, types, rows, spans.clone(), staging).await
        }
        .await;
        match opened {
            Ok(Some(copy)) => {
                self.copy = Some(copy);
                Spanned::Yes
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!(error = %e, "cannot open a COPY across batches; writing batch by batch");
                }
                if staged {
                    self.roll_back().await;
                }
                Spanned::No
            }
        }
    }

    /// End the open COPY, if any. `false` if it failed: then nothing of it was written and its partitions (but
    /// those in `leaving`, being revoked) were rewound to their first offset in it.
    async fn end_copy(&mut self, leaving: &[TopicPartition]) -> bool {
        let Some(copy) = self.copy.take() else { return true };
        let (spans, staged) = (copy.spans.clone(), copy.staged.is_some());
        let outcome = match &self.client {
            Some(client) => copy.finish(client).await,
            None => Err(WriteError::Database(ConnectError::retriable("PostgreSQL connection: closed"))),
        };
        match outcome {
            Ok(rows) => {
                tracing::debug!(rows, "COPY across batches ended");
                if staged {
                    self.session.committed();
                }
                self.retries.as_mut().expect("started").reset();
                true
            }
            Err(e) => {
                self.copy_failed(spans, staged, e, leaving).await;
                false
            }
        }
    }

    /// A COPY across batches failed: roll its transaction back (if staged) and rewind its partitions.
    async fn copy_failed(&mut self, spans: Spans, staged: bool, error: WriteError, leaving: &[TopicPartition]) {
        tracing::warn!(
            error = %error,
            "a COPY across batches failed, so none of its rows were written; its records are read again from Kafka and written batch by batch"
        );
        if matches!(error, WriteError::Database(_)) {
            self.client = None;
        }
        if staged {
            self.roll_back().await;
        }
        self.rewind(spans.into_iter().filter(|(tp, _, _)| !leaving.contains(tp)));
    }

    /// End the transaction of a staged COPY that failed or could not be opened (the connection is dropped if
    /// even that fails).
    async fn roll_back(&mut self) {
        if let Some(client) = &self.client {
            if let Err(e) = client.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %describe(&e), "ROLLBACK failed; reconnecting");
                self.client = None;
            }
        }
        self.session.rolled_back();
    }

    /// Rewind every partition of these records (from the first of each) that is not rewound further back already.
    fn rewind_records(&mut self, records: &[SinkRecord]) {
        let mut spans: Spans = Vec::new();
        for r in records {
            widen(&mut spans, r.original_topic(), r.original_partition(), r.original_offset(), r.original_offset() + 1);
        }
        self.rewind(spans.into_iter());
    }

    fn rewind(&mut self, spans: impl Iterator<Item = (TopicPartition, i64, i64)>) {
        for (tp, first, next) in spans {
            let first = self.rewound.get(&tp).map_or(first, |earlier| first.min(*earlier));
            if let Some(context) = &self.context {
                context.offset(tp.clone(), first);
            }
            self.rewound.insert(tp.clone(), first);
            let until = self.replay_until.entry(tp).or_insert(next);
            *until = (*until).max(next);
        }
    }

    /// These records were written (or are in the open COPY): a rewound partition's records came again, so its
    /// rewind was applied; one replayed to the end is spanned again.
    fn passed(&mut self, spans: &Spans) {
        if self.rewound.is_empty() && self.replay_until.is_empty() {
            return;
        }
        for (tp, _, next) in spans {
            self.rewound.remove(tp);
            if self.replay_until.get(tp).is_some_and(|until| next >= until) {
                self.replay_until.remove(tp);
            }
        }
    }

    async fn report(&self, record: &SinkRecord, message: String) -> Result<()> {
        connect_kit::errant::report(self.context.as_ref().and_then(|c| c.errant_record_reporter()).as_ref(), record, message).await
    }

    /// Write one chunk of rows in one transaction. Optimistic first: no savepoints; if some row fails, the
    /// transaction is rolled back and the chunk written again carefully, with failing runs split under
    /// savepoints to find the bad rows. Returns the bad rows with PostgreSQL's message.
    async fn write_chunk(&mut self, rows: &[(Row<'_>, usize)], offsets: &HashMap<TopicPartition, i64>) -> Result<Vec<(usize, String)>> {
        match self.write_chunk_once(rows, offsets, false).await? {
            Some(bad) => Ok(bad),
            None => Ok(self.write_chunk_once(rows, offsets, true).await?.unwrap_or_default()),
        }
    }

    /// One attempt. `careful`: savepoints around each run, so bad rows can be found and left out; otherwise
    /// `None` when a row failed (the transaction is rolled back).
    async fn write_chunk_once(
        &mut self,
        rows: &[(Row<'_>, usize)],
        offsets: &HashMap<TopicPartition, i64>,
        careful: bool,
    ) -> Result<Option<Vec<(usize, String)>>> {
        let config = self.config.clone().expect("started");
        let connector = self.context.as_ref().map(|c| c.connector_name.clone()).unwrap_or_default();
        let tables = self.tables.clone();
        self.client().await?;
        let mut session = std::mem::take(&mut self.session);
        let client = self.client.as_mut().expect("connected");
        let outcome = write_transaction(client, &mut session, &config, &connector, &tables, rows, offsets, careful).await;
        match &outcome {
            Ok(Some(_)) => session.committed(),
            _ => session.rolled_back(),
        }
        self.session = session;
        outcome
    }
}

#[async_trait]
impl SinkTask for PostgresSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let parsed = PostgresSinkConfig::parse(&config)?;
        self.retries = Some(Backoff::new(retry_policy(&parsed)));
        self.config = Some(Arc::new(parsed));
        self.context = Some(context);
        if self.config().exactly_once {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} (connector TEXT NOT NULL, topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, \
                 next_offset BIGINT NOT NULL, PRIMARY KEY (connector, topic, kafka_partition))",
                ident(&self.config().offsets_table, true)
            );
            self.client().await?.batch_execute(&sql).await.map_err(db_error)?;
        }
        Ok(())
    }

    /// With exactly-once, rewind each partition to the offset stored with the rows.
    async fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if !self.config().exactly_once {
            return Ok(());
        }
        let connector = self.context.as_ref().map(|c| c.connector_name.clone()).unwrap_or_default();
        let sql =
            format!("SELECT topic, kafka_partition, next_offset FROM {} WHERE connector = $1", ident(&self.config().offsets_table, true));
        let rows = self.client().await?.query(&sql, &[&connector]).await.map_err(db_error)?;
        for row in rows {
            let tp = TopicPartition::new(row.get::<_, String>(0), row.get::<_, i32>(1));
            let next: i64 = row.get(2);
            if partitions.contains(&tp) {
                tracing::info!(partition = %tp, next, "resuming from the offset stored with the rows");
                if let Some(c) = &self.context {
                    c.offset(tp.clone(), next);
                }
                self.written.insert(tp, next);
            }
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.config.clone().expect("started");
        let batch_size = config.batch_size;
        let mut at = 0;
        for chunk in records.chunks(batch_size) {
            let rest = &records[at..];
            at += chunk.len();
            // Skip what the database already has (exactly-once: a redelivery after a rewind or a retry).
            let fresh: Vec<&SinkRecord> = if self.written.is_empty() {
                chunk.iter().collect()
            } else {
                chunk
                    .iter()
                    .filter(|r| self.written.get(&r.original_topic_partition()).is_none_or(|next| r.original_offset() >= *next))
                    .collect()
            };
            if fresh.is_empty() {
                continue;
            }
            // Per record: no allocation or hashing where the previous record's partition and table serve.
            let mut spans: Spans = Vec::new();
            let mut last_table: Option<(&str, Arc<str>)> = None;
            let mut rows = Vec::with_capacity(fresh.len());
            let mut unconvertible = Vec::new();
            for (i, record) in fresh.iter().enumerate() {
                let (topic, partition, offset) = (record.original_topic(), record.original_partition(), record.original_offset());
                widen(&mut spans, topic, partition, offset, offset + 1);
                let table = match &last_table {
                    Some((t, name)) if *t == record.topic() => name.clone(),
                    _ => {
                        let name = match self.table_names.get(record.topic()) {
                            Some(name) => name.clone(),
                            None => {
                                let name: Arc<str> = config.table_name(record.topic()).into();
                                self.table_names.insert(record.topic().to_string(), name.clone());
                                name
                            }
                        };
                        last_table = Some((record.topic(), name.clone()));
                        name
                    }
                };
                match row_of(&config, record, table) {
                    Ok(row) => rows.push((row, i)),
                    Err(e) if e.kind() == ErrorKind::Data => unconvertible.push((i, e.to_string())),
                    Err(e) => return Err(e),
                }
            }
            if unconvertible.is_empty() && self.may_span(&config, &rows, &spans) {
                match self.span(&rows, &spans).await {
                    Spanned::Yes => {
                        self.passed(&spans);
                        continue;
                    }
                    Spanned::No => {}
                    Spanned::Failed => {
                        self.rewind_records(rest);
                        return Ok(());
                    }
                }
            }
            // Batch by batch from here: a COPY still open ends first (the connection runs one statement at a time).
            if !self.end_copy(&[]).await {
                self.rewind_records(rest);
                return Ok(());
            }
            for (i, message) in unconvertible {
                self.report(fresh[i], message).await?;
            }
            let offsets: HashMap<TopicPartition, i64> = spans.iter().map(|(tp, _, next)| (tp.clone(), *next)).collect();
            let outcome = async {
                let refused = self.prepare_tables(&rows).await?;
                let mut kept = Vec::with_capacity(rows.len());
                let mut refused_rows = Vec::new();
                for (row, i) in std::mem::take(&mut rows) {
                    match refused.get(&i) {
                        Some(m) => refused_rows.push((i, m.clone())),
                        None => kept.push((row, i)),
                    }
                }
                let mut bad = self.write_chunk(&kept, &offsets).await?;
                bad.extend(refused_rows);
                Ok::<_, ConnectError>(bad)
            }
            .await;
            match outcome {
                Ok(bad) => {
                    self.retries.as_mut().expect("started").reset();
                    for (i, message) in bad {
                        self.report(fresh[i], format!("PostgreSQL rejected the row: {message}")).await?;
                    }
                    if config.exactly_once {
                        self.written.extend(offsets);
                    }
                    self.passed(&spans);
                }
                Err(e) if e.kind() == ErrorKind::Retriable => {
                    self.client = None;
                    let delay = self.spend_retry(&e)?;
                    if let Some(c) = &self.context {
                        c.timeout(delay);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        // An open COPY ends when it is old enough, or at the commit the runtime is asked for by then.
        if let Some(copy) = &self.copy {
            let age = copy.opened.elapsed();
            if age >= config.copy_linger {
                self.end_copy(&[]).await;
            } else if let Some(context) = &self.context {
                context.request_commit_within(config.copy_linger - age);
            }
        }
        Ok(())
    }

    /// The open COPY ends, so that everything put so far is in the table; then only the offsets before any
    /// rewind are safe.
    async fn pre_commit(&mut self, mut offsets: OffsetMap) -> Result<OffsetMap> {
        self.end_copy(&[]).await;
        for (tp, first) in &self.rewound {
            if let Some(offset) = offsets.get_mut(tp) {
                *offset = (*offset).min(*first);
            }
        }
        Ok(offsets)
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        // Rows of the partitions kept are rewound if the COPY fails; the revoked ones' new owner reads them again.
        self.end_copy(partitions).await;
        for tp in partitions {
            self.written.remove(tp);
            self.rewound.remove(tp);
            self.replay_until.remove(tp);
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        // A COPY still open is abandoned: nothing of it is written, and its offsets were never committed.
        self.copy = None;
        self.client = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a COPY across batches failed, its partitions are rewound to its first offsets, no later offset
    /// of theirs is committed until their records come again, and they go batch by batch up to its end.
    #[tokio::test]
    async fn a_rewound_partition_commits_nothing_further_until_its_records_come_again() {
        let context = SinkTaskContext::new("pg", 0, None);
        let mut task = PostgresSinkTask { context: Some(context.clone()), ..Default::default() };
        let (tp, other) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        task.rewind([(tp.clone(), 100, 250)].into_iter());
        assert_eq!(context.take_requests().offsets, HashMap::from([(tp.clone(), 100)]));
        let positions: OffsetMap = [(tp.clone(), 250), (other.clone(), 40)].into_iter().collect();
        let approved = task.pre_commit(positions.clone()).await.unwrap();
        assert_eq!((approved[&tp], approved[&other]), (100, 40), "the rewound partition is held at its first offset");
        // A second failure before the records came again keeps the earlier rewind point and the later end.
        task.rewind([(tp.clone(), 180, 300)].into_iter());
        assert_eq!(context.take_requests().offsets[&tp], 100);
        task.passed(&vec![(tp.clone(), 100, 200)]);
        assert_eq!(task.pre_commit(positions.clone()).await.unwrap()[&tp], 250, "its records came again: no more holding back");
        assert!(task.replay_until.contains_key(&tp), "below 300 it still goes batch by batch");
        task.passed(&vec![(tp.clone(), 200, 300)]);
        assert!(task.replay_until.is_empty() && task.rewound.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn one_retry_budget_for_batches_and_connections() {
        let config: Config = [
            ("connection.url", "jdbc:postgresql://127.0.0.1:5432/postgres?user=u"),
            ("max.retries", "3"),
            ("retry.backoff.ms", "1000"),
            ("connection.attempts", "2"),
            ("connection.backoff.ms", "500"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = PostgresSinkConfig::parse(&config).unwrap();
        let mut task =
            PostgresSinkTask { retries: Some(Backoff::new(retry_policy(&config))), config: Some(Arc::new(config)), ..Default::default() };
        let cause = ConnectError::retriable("PostgreSQL connection: refused");
        for _ in 0..3 {
            assert_eq!(task.spend_retry(&cause).unwrap(), Duration::from_secs(1));
        }
        let err = task.spend_retry(&cause).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Fatal);
        assert!(err.to_string().starts_with("giving up after 3 retries"), "{err}");
        let mut pacing = Backoff::new(connection_pacing(task.config()));
        assert_eq!([pacing.next_delay(), pacing.next_delay()], [Some(Duration::from_millis(500)), None], "2 attempts, 1 wait");
    }
}
