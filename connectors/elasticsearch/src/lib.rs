//! connect-elasticsearch: an Elasticsearch sink that runs Confluent's
//! `io.confluent.connect.elasticsearch.ElasticsearchSinkConnector` configs unchanged, over the `_bulk` API.
//!
//! Documents get deterministic ids (the record key, or `topic+partition+offset`) and the Kafka offset as their
//! external version, so a replay after a crash never overwrites a newer document and re-indexes nothing twice.
//! Each `_bulk` answer is read item by item: a rejected document goes to the errant-record reporter with
//! Elasticsearch's reason; 429 and 5xx (for the request or an item) are retried by the runtime's redelivery
//! with the partitions paused, and only what the cluster acknowledged lets offsets advance.
//!
//! Files by concern: `config` (keys and parsing), `document` (a record's index, id, version and JSON, written
//! without an intermediate `serde_json::Value`), `mapping` (index mappings from record schemas), `bulk` (NDJSON
//! requests and item-by-item answers), `client` (hosts with round robin and failover, auth, TLS), `task`,
//! `connector`.
//!
//! Depends on connect-core, connect-kit (HTTP client, backoff, in-flight bound) and reqwest; it must not depend
//! on a Kafka client or the worker.

mod bulk;
mod client;
pub mod config;
mod connector;
pub mod document;
mod mapping;
mod task;

pub use connector::ElasticsearchSinkConnector;
pub use task::ElasticsearchSinkTask;

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const SINK_CLASS: &str = "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![ConnectorPlugin {
        class: SINK_CLASS,
        aliases: &["ElasticsearchSink", "elasticsearch-sink"],
        kind: ConnectorType::Sink,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Sink(Box::<ElasticsearchSinkConnector>::default()),
    }]
}
