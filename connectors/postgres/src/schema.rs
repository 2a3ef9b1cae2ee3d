//! Tables and columns: what the database has (`load_columns`), and making it fit the rows (`auto.create`,
//! `auto.evolve`).

use crate::dialect::{ident, Row};
use crate::errors::db_error;
use crate::task::PostgresSinkTask;
use connect_core::{ConnectError, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio_postgres::types::Type;

/// A table's columns as PostgreSQL spells them, with their types (`None`: a type the driver does not know,
/// such as a domain or an enum; such columns are written as text).
pub(crate) type Columns = Arc<HashMap<String, Option<Type>>>;

/// A column's name as PostgreSQL stores it: as written when quoted, folded to lower case when not.
pub(crate) fn catalog_name(name: &str, quoted: bool) -> String {
    if quoted {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

impl PostgresSinkTask {
    pub(crate) fn name_in_catalog(&self, name: &str) -> String {
        catalog_name(name, self.config().quote_identifiers)
    }

    /// Make sure each table exists with every column its rows need (auto.create / auto.evolve). Rows that need
    /// a column the table lacks, without auto.evolve, are returned as errors.
    pub(crate) async fn prepare_tables(&mut self, rows: &[(Row<'_>, usize)]) -> Result<HashMap<usize, String>> {
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

    pub(crate) async fn load_columns(&mut self, table: &str) -> Result<Option<Columns>> {
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
}
