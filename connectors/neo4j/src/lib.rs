//! connect-neo4j: a Neo4j sink that runs the Neo4j Kafka connectors' Cypher-template configs unchanged, both
//! the legacy `streams.kafka.connect.sink.Neo4jSinkConnector` (neo4j-streams) and the current
//! `org.neo4j.connectors.kafka.sink.Neo4jConnector`, over Bolt with neo4rs.
//!
//! Each batch of records runs as `UNWIND $events AS event <cypher>` in one transaction (the current class binds
//! `__value`, `__key`, `__header`, `__timestamp` too). Records whose data the server refuses are found by
//! bisection and go to the DLQ with the server's message; an unreachable server or a transient error is
//! retried with the partitions waiting; offsets commit only what committed in the graph. With
//! `neo4j.eos-offset-label` an offset node per partition, moved in each batch's transaction, makes the sink
//! exactly once.
//!
//! Files by concern: `config` (both key families), `bolt` (Connect values as Bolt values), `query` (the
//! statements sent), `graph` (pool, transactions, what an error means), `task`, `connector`.
//!
//! Depends on connect-core, connect-kit (bisection, backoff, redelivery) and neo4rs; it must not depend on a
//! Kafka client or the worker.

pub mod bolt;
pub mod config;
mod connector;
pub mod graph;
pub mod query;
mod task;

pub use connector::Neo4jSinkConnector;
pub use task::Neo4jSinkTask;

use config::Flavour;
use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const LEGACY_CLASS: &str = "streams.kafka.connect.sink.Neo4jSinkConnector";
pub const CLASS: &str = "org.neo4j.connectors.kafka.sink.Neo4jConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![
        // `Neo4jSink` and `Neo4jSinkConnector` name this one (its simple class name).
        ConnectorPlugin {
            class: LEGACY_CLASS,
            aliases: &[],
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Sink(Box::new(Neo4jSinkConnector::new(Flavour::Legacy))),
        },
        // `Neo4j` and `Neo4jConnector` name this one (its simple class name).
        ConnectorPlugin {
            class: CLASS,
            aliases: &["neo4j"],
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Sink(Box::new(Neo4jSinkConnector::new(Flavour::Current))),
        },
    ]
}
