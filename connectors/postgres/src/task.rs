//! The sink task: turns each `put` into chunks of `batch.size` rows, writes them (`write`), reports rows the
//! database refuses, and keeps one retry budget for everything that fails for the database's sake.

use crate::config::PostgresSinkConfig;
use crate::dialect::{ident, row_of, Row};
use crate::errors::{db_error, describe};
use crate::schema::Columns;
use crate::session::{self, Session};
use crate::write::write_transaction;
use connect_core::{async_trait, Config, ConnectError, ErrorKind, Result, SinkRecord, SinkTask, SinkTaskContext, TopicPartition};
use connect_kit::{Backoff, BackoffPolicy};
use std::collections::HashMap;
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
        for chunk in records.chunks(batch_size) {
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
            let mut next_offsets: Vec<(TopicPartition, i64)> = Vec::new();
            let mut last_table: Option<(&str, Arc<str>)> = None;
            let mut rows = Vec::with_capacity(fresh.len());
            for (i, record) in fresh.iter().enumerate() {
                let (topic, partition, offset) = (record.original_topic(), record.original_partition(), record.original_offset());
                match next_offsets.iter_mut().rev().find(|(tp, _)| tp.partition == partition && tp.topic == topic) {
                    Some((_, next)) => *next = (*next).max(offset + 1),
                    None => next_offsets.push((TopicPartition::new(topic, partition), offset + 1)),
                }
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
                    Err(e) if e.kind() == ErrorKind::Data => self.report(record, e.to_string()).await?,
                    Err(e) => return Err(e),
                }
            }
            let offsets: HashMap<TopicPartition, i64> = next_offsets.into_iter().collect();
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
        Ok(())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.written.remove(tp);
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        self.client = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
