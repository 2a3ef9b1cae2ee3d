//! A COPY kept open across puts (`copy.linger.ms`): into the table (insert mode), or into a staging table
//! that one statement applies to the table when the COPY ends, in one transaction (upsert and update).
//!
//! Writing each put as its own COPY made PostgreSQL pay a COPY's setup once per batch (PostgreSQL 15 spent
//! 43% of its time with 2,000-row COPYs in bookkeeping for the tuple slots it sets up; docs/benchmarks.md),
//! and left the sink waiting for the server to parse the whole batch before it encoded the next. A COPY that
//! stays open pays the setup once per many batches, and the server parses what was sent (in pieces of
//! `COPY_CHUNK_BYTES`) while the sink encodes the next batch.
//!
//! Nothing is kept to redo it: a COPY (with its transaction) is all or nothing, so if it fails when it ends
//! (a row the table's constraints refuse, the connection lost), nothing of it was written (but for a
//! connection lost after the end was sent and before its answer: then the rows may be written twice). The task then rewinds each
//! partition to its first offset in the COPY; Kafka delivers those records again and they are written batch
//! by batch, with bad rows isolated and reported as before (see `task`).

use crate::binary;
use crate::dialect::Row;
use crate::errors::{classify, WriteError};
use crate::session::Session;
use crate::write::COPY_CHUNK_BYTES;
use bytes::{BufMut, Bytes, BytesMut};
use connect_core::TopicPartition;
use futures::SinkExt;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::types::Type;
use tokio_postgres::CopyInSink;

/// Records per partition: their first offset and the offset after their last.
pub(crate) type Spans = Vec<(TopicPartition, i64, i64)>;

/// Widen `topic`/`partition`'s span to cover `first..next` (added if it has none). The last span is looked at
/// first: records come in runs of one partition.
pub(crate) fn widen(spans: &mut Spans, topic: &str, partition: i32, first: i64, next: i64) {
    match spans.iter_mut().rev().find(|(tp, _, _)| tp.partition == partition && tp.topic == topic) {
        Some((_, f, n)) => {
            *f = (*f).min(first);
            *n = (*n).max(next);
        }
        None => spans.push((TopicPartition::new(topic, partition), first, next)),
    }
}

pub(crate) struct OpenCopy {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    table: Arc<str>,
    /// Rows with exactly these columns, in this order, join this COPY.
    columns: Vec<String>,
    types: Vec<Option<Type>>,
    /// Encoded rows not sent yet: sent in messages of about `COPY_CHUNK_BYTES`, between chunks, so that a chunk
    /// whose encoding fails half way has sent nothing.
    pending: BytesMut,
    /// What this COPY holds, per partition: where to rewind if it fails.
    pub(crate) spans: Spans,
    pub(crate) opened: Instant,
    /// For a COPY into a staging table: what applies it.
    pub(crate) staged: Option<Staged>,
}

/// A COPY into a staging table, in a transaction of its own, applied to the table by one statement when it ends.
pub(crate) struct Staged {
    /// The upsert or update (`None`: an update with no columns to set, which changes nothing).
    pub(crate) apply: Option<tokio_postgres::Statement>,
    /// Hashes of the keys staged so far: within one statement a key may appear only once, so a chunk with a key
    /// already staged ends this COPY first (two keys that merely share a hash end it early, which is harmless).
    keys: HashSet<u64>,
}

impl Staged {
    /// With the hashes of the first chunk's keys.
    pub(crate) fn new(apply: Option<tokio_postgres::Statement>, keys: &[u64]) -> Self {
        Staged { apply, keys: keys.iter().copied().collect() }
    }
}

impl OpenCopy {
    /// Open a binary COPY into `target` (the table, or the staging table of `staged`) with the rows of a first
    /// chunk, or `Ok(None)` when some value has no exact binary form (the batch-by-batch path writes those as
    /// text).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open(
        db: &tokio_postgres::Client,
        session: &mut Session,
        target: &str,
        column_list: &str,
        types: Vec<Option<Type>>,
        rows: &[(Row<'_>, usize)],
        spans: Spans,
        staged: Option<Staged>,
    ) -> Result<Option<OpenCopy>, WriteError> {
        let mut pending = BytesMut::with_capacity(COPY_CHUNK_BYTES + 4096);
        pending.put_slice(binary::HEADER);
        if !encode(rows, &types, &mut pending) {
            return Ok(None);
        }
        let statement = session.statement(db, &format!("COPY {target} ({column_list}) FROM STDIN (FORMAT binary)")).await?;
        let sink = Box::pin(db.copy_in(&statement).await.map_err(classify)?);
        let first = &rows[0].0;
        let mut copy = OpenCopy {
            sink,
            table: first.table.clone(),
            columns: first.columns().map(|c| c.column.to_string()).collect(),
            types,
            pending,
            spans,
            opened: Instant::now(),
            staged,
        };
        copy.send_full().await?;
        Ok(Some(copy))
    }

    /// Whether rows of this table and these columns can join this COPY.
    pub(crate) fn takes(&self, row: &Row<'_>) -> bool {
        row.table == self.table && row.columns().map(|c| &*c.column).eq(self.columns.iter().map(String::as_str))
    }

    /// Give up on this COPY (PostgreSQL aborts it), before the connection is used for anything else: what it
    /// held, and whether it was staged (its transaction is then still to be rolled back).
    pub(crate) fn abandon(self) -> (Spans, bool) {
        let OpenCopy { sink, spans, staged, .. } = self;
        drop(sink);
        (spans, staged.is_some())
    }

    /// Whether some of these key hashes are staged already.
    pub(crate) fn has_any_key(&self, hashes: &[u64]) -> bool {
        self.staged.as_ref().is_some_and(|s| hashes.iter().any(|h| s.keys.contains(h)))
    }

    /// Add a chunk of rows [`takes`](Self::takes) accepts, with their keys' hashes when staged. `Ok(false)`,
    /// with nothing added, when some value has no exact binary form.
    pub(crate) async fn append(&mut self, rows: &[(Row<'_>, usize)], spans: &Spans, keys: &[u64]) -> Result<bool, WriteError> {
        if !encode(rows, &self.types, &mut self.pending) {
            return Ok(false);
        }
        if let Some(staged) = &mut self.staged {
            staged.keys.extend(keys);
        }
        for (tp, first, next) in spans {
            widen(&mut self.spans, &tp.topic, tp.partition, *first, *next);
        }
        self.send_full().await?;
        Ok(true)
    }

    async fn send_full(&mut self) -> Result<(), WriteError> {
        if self.pending.len() >= COPY_CHUNK_BYTES {
            self.sink.send(self.pending.split().freeze()).await.map_err(classify)?;
        }
        Ok(())
    }

    /// End the COPY (applying and committing a staged one): its rows are in the table when this returns `Ok`,
    /// none of them otherwise (a staged COPY's transaction is then left for the caller to roll back).
    pub(crate) async fn finish(mut self, db: &tokio_postgres::Client) -> Result<u64, WriteError> {
        self.pending.put_slice(binary::TRAILER);
        self.sink.send(self.pending.split().freeze()).await.map_err(classify)?;
        let rows = self.sink.as_mut().finish().await.map_err(classify)?;
        if let Some(staged) = &self.staged {
            if let Some(apply) = &staged.apply {
                db.execute(apply, &[]).await.map_err(classify)?;
            }
            db.batch_execute("COMMIT").await.map_err(classify)?;
        }
        Ok(rows)
    }
}

/// Append the rows as binary COPY tuples; `false`, with `out` as it was, when some value has no exact binary form.
fn encode(rows: &[(Row<'_>, usize)], types: &[Option<Type>], out: &mut BytesMut) -> bool {
    let mark = out.len();
    for (row, _) in rows {
        if !binary::encode_row(row.columns(), types, out) {
            out.truncate(mark);
            return false;
        }
    }
    true
}

/// A hash of the row's key, the same for rows whose key values have the same COPY text.
pub(crate) fn key_hash(row: &Row<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut text = String::new();
    for cell in &row.key {
        text.clear();
        crate::dialect::copy_text(cell, &mut text);
        text.hash(&mut hasher);
    }
    hasher.finish()
}
