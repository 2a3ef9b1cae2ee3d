//! The sink connector and task: rows are written in one transaction per `batch.size` records, with COPY
//! (into the table for inserts, into a staging table for upserts, updates and deletes, followed by one
//! set-based statement). A run of rows that fails is split in halves under savepoints until the rows at
//! fault are found; they go to the errant-record reporter with PostgreSQL's own message, the rest is written.

use crate::binary;
use crate::config::{self, InsertMode, PostgresSinkConfig};
use crate::dialect::{copy_text, ident, key_text, row_of, Row, RowOp};
use bytes::{BufMut, Bytes, BytesMut};
use connect_core::{
    async_trait, Config, ConfigDef, ConnectError, Connector, ConnectorContext, Result, SinkConnector, SinkRecord, SinkTask,
    SinkTaskContext, TopicPartition,
};
use futures::SinkExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio_postgres::types::Type;

/// A table's columns as PostgreSQL spells them, with their types (`None`: a type the driver does not know,
/// such as a domain or an enum; such columns are written as text).
type Columns = Arc<HashMap<String, Option<Type>>>;

/// Bytes per COPY data message: PostgreSQL parses one while the sink encodes the next.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// Most statements kept prepared: schemaless records with ever new field sets must not grow the cache without end.
const STATEMENT_CACHE_LIMIT: usize = 256;

/// What this task keeps in its PostgreSQL session: prepared statements (parsed and planned once, not per
/// batch) and staging tables (created once, emptied by each commit, instead of created and dropped per batch).
/// Both die with the connection, and so does this.
#[derive(Default)]
struct Session {
    statements: HashMap<String, tokio_postgres::Statement>,
    /// Staging table per (target table, column list), and whether a committed transaction created it (one
    /// created in a transaction or savepoint that is rolled back is gone).
    stages: HashMap<(Arc<str>, String), (String, bool)>,
    /// Stages that hold rows of the current transaction: a second run through one empties it first.
    stages_in_use: HashSet<String>,
}

impl Session {
    async fn statement(&mut self, db: &tokio_postgres::Client, sql: &str) -> std::result::Result<tokio_postgres::Statement, WriteError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        if self.statements.len() >= STATEMENT_CACHE_LIMIT {
            self.statements.clear();
        }
        let statement = db.prepare(sql).await.map_err(classify)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// The staging table for these columns of `table`, existing and empty within the current transaction.
    async fn stage(
        &mut self,
        db: &tokio_postgres::Client,
        table: &Arc<str>,
        quoted_table: &str,
        column_list: &str,
        careful: bool,
    ) -> std::result::Result<String, WriteError> {
        let next = self.stages.len();
        let (name, committed) =
            self.stages.entry((table.clone(), column_list.to_string())).or_insert_with(|| (format!("connect_rs_stage_{next}"), false));
        let name = name.clone();
        // Under savepoints a stage created earlier in this transaction may have been rolled back with one.
        if !*committed || careful {
            db.batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS SELECT {column_list} FROM {quoted_table} WITH NO DATA"
            ))
            .await
            .map_err(classify)?;
        }
        if !self.stages_in_use.insert(name.clone()) {
            db.batch_execute(&format!("DELETE FROM {name}")).await.map_err(classify)?;
        }
        Ok(name)
    }

    fn committed(&mut self) {
        for (_, committed) in self.stages.values_mut() {
            *committed = true;
        }
        self.stages_in_use.clear();
    }

    fn rolled_back(&mut self) {
        self.stages.retain(|_, (_, committed)| *committed);
        self.stages_in_use.clear();
    }
}

#[derive(Default)]
pub struct PostgresSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for PostgresSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    fn validate(&self, config: &Config) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut errors = std::collections::BTreeMap::new();
        if config::def().parse(config).is_ok() {
            if let Err(e) = PostgresSinkConfig::parse(config) {
                errors.insert("pk.mode".to_string(), vec![e.to_string()]);
            }
        }
        errors
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        PostgresSinkConfig::parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for PostgresSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<PostgresSinkTask>::default()
    }
}

/// Why a write failed: the rows (split and report them), or the database (retry the batch).
enum WriteError {
    Rows(String),
    Database(ConnectError),
    /// Rows that were to be written by one statement need two (binary and text COPY): nothing was written,
    /// write them in a transaction.
    NeedsTransaction,
}

/// PostgreSQL's own message with its detail, hint and context (COPY says which line and column).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; DETAIL: {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; HINT: {h}"));
            }
            if let Some(w) = db.where_() {
                m.push_str(&format!("; WHERE: {w}"));
            }
            m
        }
        None => {
            // The driver's message alone can be as thin as "error performing TLS handshake": add the causes.
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                m.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            m
        }
    }
}

/// Errors of the connection or the server as a whole (retry), versus errors caused by the rows.
fn classify(e: tokio_postgres::Error) -> WriteError {
    let message = describe(&e);
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let server_side = ["08", "53", "57", "58", "40"].iter().any(|class| code.starts_with(class));
            if server_side {
                WriteError::Database(ConnectError::retriable(format!("PostgreSQL: {message}")))
            } else {
                WriteError::Rows(message)
            }
        }
        None => WriteError::Database(ConnectError::retriable(format!("PostgreSQL connection: {message}"))),
    }
}

impl WriteError {
    /// As a task error, where no rows can be split off: row errors are fatal there.
    fn into_connect(self) -> ConnectError {
        match self {
            WriteError::Database(e) => e,
            WriteError::Rows(m) => ConnectError::fatal(format!("PostgreSQL: {m}")),
            WriteError::NeedsTransaction => ConnectError::fatal("PostgreSQL: rows needed a transaction"),
        }
    }
}

fn db_error(e: tokio_postgres::Error) -> ConnectError {
    classify(e).into_connect()
}

#[derive(Default)]
pub struct PostgresSinkTask {
    /// Shared with the writes of each batch (an `Arc`, not a copy per batch).
    config: Option<Arc<PostgresSinkConfig>>,
    context: Option<SinkTaskContext>,
    client: Option<tokio_postgres::Client>,
    /// Known columns of each table.
    tables: HashMap<String, Columns>,
    /// Next offset per partition already in the database (exactly-once): records below it are skipped.
    written: HashMap<TopicPartition, i64>,
    retries_left: u32,
    /// `table.name.format` applied, per topic.
    table_names: HashMap<String, Arc<str>>,
    session: Session,
}

impl PostgresSinkTask {
    fn config(&self) -> &PostgresSinkConfig {
        self.config.as_deref().expect("started")
    }

    /// The open connection, or a new one (`connection.attempts` tries, `connection.backoff.ms` apart).
    async fn client(&mut self) -> Result<&mut tokio_postgres::Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let (attempts, backoff) = (self.config().connection_attempts, self.config().connection_backoff);
            let mut last = None;
            let tls = crate::tls::connector(&self.config().tls)?;
            let mut connection_config = self.config().connection.clone();
            if tls.is_some() {
                connection_config.ssl_mode(tokio_postgres::config::SslMode::Require);
            }
            for attempt in 1..=attempts {
                let connected = match &tls {
                    Some(tls) => connection_config.connect(tls.clone()).await.map(|(client, connection)| {
                        spawn_connection(connection);
                        client
                    }),
                    None => connection_config.connect(tokio_postgres::NoTls).await.map(|(client, connection)| {
                        spawn_connection(connection);
                        client
                    }),
                };
                match connected {
                    Ok(client) => {
                        self.client = Some(client);
                        self.session = Session::default();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(attempt, error = %e, "cannot connect to PostgreSQL");
                        last = Some(e);
                        if attempt < attempts {
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
            if self.client.is_none() {
                let e = last.map(|e| describe(&e)).unwrap_or_default();
                return Err(ConnectError::retriable(format!("cannot connect to PostgreSQL after {attempts} attempts: {e}")));
            }
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    fn name_in_catalog(&self, name: &str) -> String {
        catalog_name(name, self.config().quote_identifiers)
    }

    /// Make sure each table exists with every column its rows need (auto.create / auto.evolve). Rows that need
    /// a column the table lacks, without auto.evolve, are returned as errors.
    async fn prepare_tables(&mut self, rows: &[(Row<'_>, usize)]) -> Result<HashMap<usize, String>> {
        let mut refused = HashMap::new();
        let mut by_table: Vec<&str> = Vec::new();
        for (row, _) in rows {
            if !by_table.contains(&&*row.table) {
                by_table.push(&row.table);
            }
        }
        for table in by_table {
            let catalog_name = self.name_in_catalog(table);
            if !self.tables.contains_key(table) {
                let columns = self.load_columns(&catalog_name).await?;
                if let Some(columns) = columns {
                    self.tables.insert(table.to_string(), columns);
                }
            }
            let q = self.config().quote_identifiers;
            // Column types: the first row with a non-null value decides.
            let mut wanted: Vec<(&str, &'static str, bool)> = Vec::new();
            for (row, _) in rows.iter().filter(|(r, _)| &*r.table == table) {
                for (i, c) in row.columns().enumerate() {
                    let is_key = i < row.key.len();
                    match wanted.iter_mut().find(|(n, _, _)| *n == c.column) {
                        Some(w) if w.1 == "TEXT" && !c.value.is_null() => w.1 = c.sql_type,
                        Some(_) => {}
                        None => wanted.push((&c.column, c.sql_type, is_key)),
                    }
                }
            }
            if !self.tables.contains_key(table) {
                if !self.config().auto_create {
                    return Err(ConnectError::fatal(format!("Table {table} is missing and auto.create is disabled")));
                }
                let mut ddl = format!("CREATE TABLE IF NOT EXISTS {} (", ident(table, q));
                let defs: Vec<String> =
                    wanted.iter().map(|(n, t, key)| format!("{} {t}{}", ident(n, q), if *key { " NOT NULL" } else { "" })).collect();
                ddl.push_str(&defs.join(", "));
                let keys: Vec<String> = wanted.iter().filter(|w| w.2).map(|(n, _, _)| ident(n, q)).collect();
                if !keys.is_empty() {
                    ddl.push_str(&format!(", PRIMARY KEY ({})", keys.join(", ")));
                }
                ddl.push(')');
                tracing::info!(table, "creating table: {ddl}");
                self.client().await?.batch_execute(&ddl).await.map_err(db_error)?;
                let columns = self.load_columns(&catalog_name).await?.unwrap_or_default();
                self.tables.insert(table.to_string(), columns);
            }
            let known = self.tables.get(table).cloned().unwrap_or_default();
            let missing: Vec<&(&str, &'static str, bool)> =
                wanted.iter().filter(|(n, _, _)| !known.contains_key(&self.name_in_catalog(n))).collect();
            if missing.is_empty() {
                continue;
            }
            if self.config().auto_evolve {
                for (n, t, _) in &missing {
                    let ddl = format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {t}", ident(table, q), ident(n, q));
                    tracing::info!(table, "evolving table: {ddl}");
                    self.client().await?.batch_execute(&ddl).await.map_err(db_error)?;
                }
                let columns = self.load_columns(&catalog_name).await?.unwrap_or_default();
                self.tables.insert(table.to_string(), columns);
            } else {
                let missing: HashSet<String> = missing.iter().map(|(n, _, _)| self.name_in_catalog(n)).collect();
                for (row, index) in rows.iter().filter(|(r, _)| &*r.table == table) {
                    if let Some(c) = row.columns().find(|c| missing.contains(&self.name_in_catalog(&c.column))) {
                        refused.insert(*index, format!("table {table} has no column {} and auto.evolve is disabled", c.column));
                    }
                }
            }
        }
        Ok(refused)
    }

    async fn load_columns(&mut self, table: &str) -> Result<Option<Columns>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.attname::text, a.atttypid FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&table],
            )
            .await
            .map_err(db_error)?;
        Ok((!rows.is_empty()).then(|| Arc::new(rows.iter().map(|r| (r.get::<_, String>(0), Type::from_oid(r.get::<_, u32>(1)))).collect())))
    }

    async fn report(&self, record: &SinkRecord, message: String) -> Result<()> {
        let error = ConnectError::data(message);
        match self.context.as_ref().and_then(|c| c.errant_record_reporter()) {
            Some(reporter) => reporter.report(record, &error).await,
            None => Err(error),
        }
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

/// One transaction of [`PostgresSinkTask::write_chunk_once`].
#[allow(clippy::too_many_arguments)]
async fn write_transaction(
    client: &mut tokio_postgres::Client,
    session: &mut Session,
    config: &PostgresSinkConfig,
    connector: &str,
    tables: &HashMap<String, Columns>,
    rows: &[(Row<'_>, usize)],
    offsets: &HashMap<TopicPartition, i64>,
    careful: bool,
) -> Result<Option<Vec<(usize, String)>>> {
    let same = |a: &Row, b: &Row| a.table == b.table && a.op == b.op && a.columns().map(|c| &c.column).eq(b.columns().map(|c| &c.column));
    // The common case, one run of inserts and no offsets to store with it: one COPY is a transaction by itself,
    // which spares the BEGIN and COMMIT round trips. If it fails, nothing of it was written.
    let one_insert_run = !careful
        && (!config.exactly_once || offsets.is_empty())
        && config.insert_mode == InsertMode::Insert
        && rows.first().is_some_and(|(first, _)| first.op == RowOp::Write && rows.iter().all(|(r, _)| same(first, r)));
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
            while end < rows.len() && same(&rows[start].0, &rows[end].0) {
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
            let mut stack = vec![(start, end)];
            while let Some((lo, hi)) = stack.pop() {
                tx.batch_execute("SAVEPOINT connect_rs_run").await.map_err(db_error)?;
                match write_run(tx.client(), session, config, tables, &rows[lo..hi], Mode::Careful).await {
                    Ok(()) => tx.batch_execute("RELEASE SAVEPOINT connect_rs_run").await.map_err(db_error)?,
                    Err(e @ (WriteError::Database(_) | WriteError::NeedsTransaction)) => return Err(e.into_connect()),
                    Err(WriteError::Rows(message)) => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT connect_rs_run").await.map_err(db_error)?;
                        if hi - lo == 1 {
                            bad.push((rows[lo].1, message));
                        } else {
                            let mid = lo + (hi - lo) / 2;
                            stack.push((mid, hi));
                            stack.push((lo, mid));
                        }
                    }
                }
            }
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

/// Drive a connection until it closes.
fn spawn_connection<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
}

/// A column's name as PostgreSQL stores it: as written when quoted, folded to lower case when not.
fn catalog_name(name: &str, quoted: bool) -> String {
    if quoted {
        name.to_string()
    } else {
        name.to_lowercase()
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
    let q = config.quote_identifiers;
    let first = &rows[0].0;
    let table_columns = tables.get(&*first.table);
    let types: Vec<Option<Type>> =
        first.columns().map(|c| table_columns.and_then(|t| t.get(&catalog_name(&c.column, q)).cloned().flatten())).collect();
    let table = ident(&first.table, q);
    let columns: Vec<String> = first.columns().map(|c| ident(&c.column, q)).collect();
    let column_list = columns.join(", ");
    let keys: Vec<String> = first.key.iter().map(|c| ident(&c.column, q)).collect();
    let values: Vec<String> = first.values.iter().map(|c| ident(&c.column, q)).collect();
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
    let key_match: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
    let sql = match (first.op.clone(), config.insert_mode) {
        (RowOp::Delete, _) => format!("DELETE FROM {table} t USING {stage} s WHERE {}", key_match.join(" AND ")),
        (RowOp::Write, InsertMode::Update) => {
            if values.is_empty() {
                return Ok(());
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
    };
    let statement = session.statement(db, &sql).await?;
    db.execute(&statement, &[]).await.map_err(classify)?;
    Ok(())
}

#[async_trait]
impl SinkTask for PostgresSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let parsed = PostgresSinkConfig::parse(&config)?;
        self.retries_left = parsed.max_retries;
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
                    Err(e) if e.kind() == connect_core::ErrorKind::Data => self.report(record, e.to_string()).await?,
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
                    self.retries_left = config.max_retries;
                    for (i, message) in bad {
                        self.report(fresh[i], format!("PostgreSQL rejected the row: {message}")).await?;
                    }
                    if config.exactly_once {
                        self.written.extend(offsets);
                    }
                }
                Err(e) if e.kind() == connect_core::ErrorKind::Retriable => {
                    self.client = None;
                    if self.retries_left == 0 {
                        return Err(ConnectError::fatal(format!("giving up after {} retries: {e}", config.max_retries)));
                    }
                    self.retries_left -= 1;
                    if let Some(c) = &self.context {
                        c.timeout(config.retry_backoff);
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
