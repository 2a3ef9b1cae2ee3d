//! connect-postgres: a PostgreSQL sink that accepts the Confluent JDBC sink's configs
//! (`io.confluent.connect.jdbc.JdbcSinkConnector`) and goes beyond it: schemaless JSON with inferred column
//! types, COPY-based batches, bad rows isolated to the DLQ with PostgreSQL's own message, and an exactly-once
//! option that stores Kafka offsets in the rows' transaction.
//!
//! Depends on connect-core and tokio-postgres; it must not depend on a Kafka client or the worker.

mod binary;
pub mod config;
pub mod dialect;
mod sink;
mod tls;

pub use sink::{PostgresSinkConnector, PostgresSinkTask};

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
