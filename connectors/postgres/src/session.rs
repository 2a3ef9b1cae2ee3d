//! The connection and what this task keeps in its PostgreSQL session (prepared statements, staging tables).

use crate::errors::{classify, WriteError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most statements kept prepared: schemaless records with ever new field sets must not grow the cache without end.
const STATEMENT_CACHE_LIMIT: usize = 256;

/// What this task keeps in its PostgreSQL session: prepared statements (parsed and planned once, not per
/// batch) and staging tables (created once, emptied by each commit, instead of created and dropped per batch).
/// Both die with the connection, and so does this.
#[derive(Default)]
pub(crate) struct Session {
    statements: HashMap<String, tokio_postgres::Statement>,
    /// Staging table per (target table, column list), and whether a committed transaction created it (one
    /// created in a transaction or savepoint that is rolled back is gone).
    stages: HashMap<(Arc<str>, String), (String, bool)>,
    /// Stages that hold rows of the current transaction: a second run through one empties it first.
    stages_in_use: HashSet<String>,
}

impl Session {
    pub(crate) async fn statement(
        &mut self,
        db: &tokio_postgres::Client,
        sql: &str,
    ) -> std::result::Result<tokio_postgres::Statement, WriteError> {
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
    pub(crate) async fn stage(
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

    pub(crate) fn committed(&mut self) {
        for (_, committed) in self.stages.values_mut() {
            *committed = true;
        }
        self.stages_in_use.clear();
    }

    pub(crate) fn rolled_back(&mut self) {
        self.stages.retain(|_, (_, committed)| *committed);
        self.stages_in_use.clear();
    }
}

/// Drive a connection until it closes.
pub(crate) fn spawn_connection<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
}

/// One connection attempt, with TLS when the URL asks for it; the connection is driven on a task of its own.
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
    tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    match tls {
        Some(tls) => {
            let mut config = config.clone();
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = config.connect(tls.clone()).await?;
            spawn_connection(connection);
            Ok(client)
        }
        None => {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            spawn_connection(connection);
            Ok(client)
        }
    }
}
