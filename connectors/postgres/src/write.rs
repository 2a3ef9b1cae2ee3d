//! Writing rows: one transaction per chunk, COPY (binary where the values allow, text for the rest) into the
//! table for inserts or into a staging table followed by one set-based statement for upserts, updates and
//! deletes. In careful mode each run is written under a savepoint and a failing run is bisected by the kit
//! (`connect_kit::isolate`) down to the rows at fault.

use crate::binary;
use crate::config::{InsertMode, PostgresSinkConfig};
use crate::dialect::{copy_text, ident, key_text, Row, RowOp};
use crate::errors::{classify, db_error, WriteError};
use crate::schema::{catalog_name, Columns};
use crate::session::Session;
use bytes::{BufMut, Bytes, BytesMut};
use connect_core::{Result, TopicPartition};
use connect_kit::{isolate, Attempt};
use futures::SinkExt;
use std::collections::HashMap;
use std::ops::Range;
use tokio_postgres::types::Type;

/// Bytes per COPY data message: PostgreSQL parses one while the sink encodes the next.
pub(crate) const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// One transaction of [`PostgresSinkTask::write_chunk_once`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_transaction(
    client: &mut tokio_postgres::Client,
    session: &mut Session,
    config: &PostgresSinkConfig,
    connector: &str,
    tables: &HashMap<String, Columns>,
    rows: &[(Row<'_>, usize)],
    offsets: &HashMap<TopicPartition, i64>,
    careful: bool,
) -> Result<Option<Vec<(usize, String)>>> {
    // The common case, one run of inserts and no offsets to store with it: one COPY is a transaction by itself,
    // which spares the BEGIN and COMMIT round trips. If it fails, nothing of it was written.
    let one_insert_run = !careful
        && (!config.exactly_once || offsets.is_empty())
        && config.insert_mode == InsertMode::Insert
        && rows.first().is_some_and(|(first, _)| first.op == RowOp::Write && rows.iter().all(|(r, _)| first.shares_statement_with(r)));
    if one_insert_run {
        match write_run(client, session, config, tables, rows, Mode::Lone).await {
            Ok(()) => return Ok(Some(Vec::new())),
            Err(WriteError::Database(e)) => return Err(e),
            Err(WriteError::Rows(_)) => return Ok(None),
            Err(WriteError::NeedsTransaction) => {}
        }
    }
    {
        let tx = client.transaction().await.map_err(db_error)?;
        let mut bad = Vec::new();
        // Runs of consecutive rows with one table, one operation and one column list share statements.
        let mut start = 0;
        while start < rows.len() {
            let mut end = start + 1;
            while end < rows.len() && rows[start].0.shares_statement_with(&rows[end].0) {
                end += 1;
            }
            if !careful {
                match write_run(tx.client(), session, config, tables, &rows[start..end], Mode::Optimistic).await {
                    Ok(()) => {}
                    Err(WriteError::Database(e)) => return Err(e),
                    // Dropping the transaction rolls it back.
                    Err(WriteError::Rows(_) | WriteError::NeedsTransaction) => return Ok(None),
                }
                start = end;
                continue;
            }
            let run = &rows[start..end];
            let mut careful = CarefulRun { tx: &tx, session: &mut *session, config, tables, run };
            isolate(run.len(), &mut careful, WriteError::kind, |i, e| {
                if let WriteError::Rows(message) = e {
                    bad.push((run[i].1, message));
                }
            })
            .await
            .map_err(WriteError::into_connect)?;
            start = end;
        }
        if config.exactly_once && !offsets.is_empty() {
            // A map's keys and values iterate in the same order.
            let topics: Vec<&str> = offsets.keys().map(|tp| tp.topic.as_str()).collect();
            let partitions: Vec<i32> = offsets.keys().map(|tp| tp.partition).collect();
            let next: Vec<i64> = offsets.values().copied().collect();
            let sql = format!(
                "INSERT INTO {} (connector, topic, kafka_partition, next_offset) SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[]) \
                 ON CONFLICT (connector, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                ident(&config.offsets_table, true)
            );
            let statement = session.statement(tx.client(), &sql).await.map_err(WriteError::into_connect)?;
            tx.execute(&statement, &[&connector, &topics, &partitions, &next]).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Some(bad))
    }
}

/// A run written under a savepoint, for the kit's bisection: a refused range is rolled back to the savepoint,
/// so it leaves nothing behind, and the range's halves are tried next.
struct CarefulRun<'a, 'r> {
    tx: &'a tokio_postgres::Transaction<'a>,
    session: &'a mut Session,
    config: &'a PostgresSinkConfig,
    tables: &'a HashMap<String, Columns>,
    run: &'a [(Row<'r>, usize)],
}

impl CarefulRun<'_, '_> {
    async fn savepoint(&self, sql: &str) -> std::result::Result<(), WriteError> {
        // An error of the savepoint itself is the database's, never the rows': it must stop the search.
        self.tx.batch_execute(sql).await.map_err(|e| WriteError::Database(db_error(e)))
    }
}

impl Attempt for CarefulRun<'_, '_> {
    type Error = WriteError;
    async fn attempt(&mut self, range: Range<usize>) -> std::result::Result<(), WriteError> {
        self.savepoint("SAVEPOINT connect_rs_run").await?;
        match write_run(self.tx.client(), self.session, self.config, self.tables, &self.run[range], Mode::Careful).await {
            Ok(()) => self.savepoint("RELEASE SAVEPOINT connect_rs_run").await,
            Err(e @ WriteError::Rows(_)) => {
                self.savepoint("ROLLBACK TO SAVEPOINT connect_rs_run").await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// COPY the rows into `target` (their columns only, of these types): binary for the rows whose values all
/// match their columns exactly, then text for the rest, where PostgreSQL converts or refuses each value.
/// `lone`: outside a transaction, where only one COPY may run (else nothing is written).
async fn copy_rows(
    db: &tokio_postgres::Client,
    session: &mut Session,
    target: &str,
    columns: &str,
    rows: &[&Row<'_>],
    types: &[Option<Type>],
    lone: bool,
) -> std::result::Result<(), WriteError> {
    let mut text_rows: Vec<&Row> = Vec::new();
    let mut buffer = BytesMut::with_capacity(COPY_CHUNK_BYTES + 4096);
    buffer.put_slice(binary::HEADER);
    // Opened at the first row that has a binary form.
    let mut sink = None;
    for row in rows {
        if !binary::encode_row(row.columns(), types, &mut buffer) {
            text_rows.push(row);
            continue;
        }
        if sink.is_none() {
            let statement = session.statement(db, &format!("COPY {target} ({columns}) FROM STDIN (FORMAT binary)")).await?;
            sink = Some(Box::pin(db.copy_in(&statement).await.map_err(classify)?));
        }
        if buffer.len() >= COPY_CHUNK_BYTES {
            let s = sink.as_mut().expect("opened above");
            s.send(buffer.split().freeze()).await.map_err(classify)?;
        }
    }
    if lone && !text_rows.is_empty() {
        // Two COPYs would be two transactions: drop the binary one unfinished (PostgreSQL aborts it).
        return Err(WriteError::NeedsTransaction);
    }
    if let Some(mut s) = sink {
        buffer.put_slice(binary::TRAILER);
        s.send(buffer.freeze()).await.map_err(classify)?;
        s.as_mut().finish().await.map_err(classify)?;
    }
    if !text_rows.is_empty() {
        let statement = session.statement(db, &format!("COPY {target} ({columns}) FROM STDIN")).await?;
        copy_text_rows(db, &statement, &text_rows).await?;
    }
    Ok(())
}

/// COPY rows in the text format (tab-separated, `\N` for null).
async fn copy_text_rows(
    db: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    rows: &[&Row<'_>],
) -> std::result::Result<(), WriteError> {
    let sink = db.copy_in(statement).await.map_err(classify)?;
    futures::pin_mut!(sink);
    let mut text = String::with_capacity(COPY_CHUNK_BYTES + 4096);
    for row in rows {
        let mut first = true;
        for cell in row.columns() {
            if !first {
                text.push('\t');
            }
            first = false;
            copy_text(cell, &mut text);
        }
        text.push('\n');
        if text.len() >= COPY_CHUNK_BYTES {
            sink.send(Bytes::from(std::mem::replace(&mut text, String::with_capacity(COPY_CHUNK_BYTES + 4096)))).await.map_err(classify)?;
        }
    }
    sink.send(Bytes::from(text)).await.map_err(classify)?;
    sink.finish().await.map_err(classify)?;
    Ok(())
}

/// The table's type of each of the row's columns (`None` where it is not known).
pub(crate) fn column_types(config: &PostgresSinkConfig, tables: &HashMap<String, Columns>, row: &Row<'_>) -> Vec<Option<Type>> {
    let table_columns = tables.get(&*row.table);
    row.columns()
        .map(|c| table_columns.and_then(|t| t.get(&catalog_name(&c.column, config.quote_identifiers)).cloned().flatten()))
        .collect()
}

/// The row's table and its column list, quoted for SQL as `quote.sql.identifiers` says.
pub(crate) fn quoted_names(config: &PostgresSinkConfig, row: &Row<'_>) -> (String, String) {
    let q = config.quote_identifiers;
    let columns: Vec<String> = row.columns().map(|c| ident(&c.column, q)).collect();
    (ident(&row.table, q), columns.join(", "))
}

/// How a run of rows is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Outside a transaction, as one statement, or not at all (`WriteError::NeedsTransaction`).
    Lone,
    /// In a transaction without savepoints.
    Optimistic,
    /// Under a savepoint of a transaction, where what this transaction created may have been rolled back.
    Careful,
}

/// Write rows that share a table, an operation and a column list.
async fn write_run(
    db: &tokio_postgres::Client,
    session: &mut Session,
    config: &PostgresSinkConfig,
    tables: &HashMap<String, Columns>,
    rows: &[(Row<'_>, usize)],
    mode: Mode,
) -> std::result::Result<(), WriteError> {
    let first = &rows[0].0;
    let types = column_types(config, tables, first);
    let (table, column_list) = quoted_names(config, first);
    if first.op == RowOp::Write && config.insert_mode == InsertMode::Insert {
        let refs: Vec<&Row> = rows.iter().map(|(r, _)| r).collect();
        return copy_rows(db, session, &table, &column_list, &refs, &types, mode == Mode::Lone).await;
    }
    // Upsert, update and delete go through a staging table with the target's column types; within one
    // statement a key may appear once, so the last row for a key wins (it would win row by row too).
    let mut last_for_key: HashMap<Vec<String>, usize> = HashMap::with_capacity(rows.len());
    for (i, (row, _)) in rows.iter().enumerate() {
        last_for_key.insert(row.key.iter().map(key_text).collect(), i);
    }
    let mut last: Vec<usize> = last_for_key.into_values().collect();
    last.sort_unstable();
    let refs: Vec<&Row> = last.into_iter().map(|i| &rows[i].0).collect();
    let stage = session.stage(db, &first.table, &table, &column_list, mode == Mode::Careful).await?;
    copy_rows(db, session, &stage, &column_list, &refs, &types, false).await?;
    let Some(sql) = staged_statement(config, first, &table, &stage, &column_list) else { return Ok(()) };
    let statement = session.statement(db, &sql).await?;
    db.execute(&statement, &[]).await.map_err(classify)?;
    Ok(())
}

/// The one statement that applies a staging table's rows (like `row`) to the table: an upsert, an update or
/// a delete. `None` for an update with no columns to set.
pub(crate) fn staged_statement(config: &PostgresSinkConfig, row: &Row<'_>, table: &str, stage: &str, column_list: &str) -> Option<String> {
    let q = config.quote_identifiers;
    let keys: Vec<String> = row.key.iter().map(|c| ident(&c.column, q)).collect();
    let values: Vec<String> = row.values.iter().map(|c| ident(&c.column, q)).collect();
    let key_match: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
    Some(match (&row.op, config.insert_mode) {
        (RowOp::Delete, _) => format!("DELETE FROM {table} t USING {stage} s WHERE {}", key_match.join(" AND ")),
        (RowOp::Write, InsertMode::Update) => {
            if values.is_empty() {
                return None;
            }
            let set: Vec<String> = values.iter().map(|v| format!("{v} = s.{v}")).collect();
            format!("UPDATE {table} t SET {} FROM {stage} s WHERE {}", set.join(", "), key_match.join(" AND "))
        }
        (RowOp::Write, _) => {
            let action = if values.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", values.iter().map(|v| format!("{v} = EXCLUDED.{v}")).collect::<Vec<_>>().join(", "))
            };
            format!("INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage} ON CONFLICT ({}) {action}", keys.join(", "))
        }
    })
}
