//! connect-postgres: a PostgreSQL sink that accepts the Confluent JDBC sink's configs
//! (`io.confluent.connect.jdbc.JdbcSinkConnector`) and goes beyond it: schemaless JSON with inferred column
//! types, COPY-based batches, bad rows isolated to the DLQ with PostgreSQL's own message, and an exactly-once
//! option that stores Kafka offsets in the rows' transaction.
//!
//! Files by concern, the template for new sinks: `connector` (config validation, task configs), `task` (the
//! `SinkTask`: chunks, reporting, the retry budget), `session` (the connection and what lives in it:
//! prepared statements, staging tables), `schema` (tables and columns, auto.create / auto.evolve), `write`
//! (transactions, COPY, bisection of bad rows through `connect_kit::isolate`), `open_copy` (one COPY across
//! many puts in insert mode, rewound through Kafka if it fails), `errors` (the rows' fault or
//! the database's), plus `config`, `dialect`, `binary` and `tls`.
//!
//! Depends on connect-core, connect-kit and tokio-postgres; it must not depend on a Kafka client or the worker.

mod binary;
pub mod config;
mod connector;
pub mod dialect;
mod errors;
mod open_copy;
mod schema;
mod session;
mod task;
mod tls;
mod write;

pub use connector::PostgresSinkConnector;
pub use task::PostgresSinkTask;

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const SINK_CLASS: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![ConnectorPlugin {
        class: SINK_CLASS,
        aliases: &["PostgresSink", "postgres-sink"],
        kind: ConnectorType::Sink,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Sink(Box::<PostgresSinkConnector>::default()),
    }]
}
