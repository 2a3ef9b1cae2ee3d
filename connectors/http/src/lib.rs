//! connect-http: HTTP both ways. The feed source ([`source`]) polls CSV, JSON and gzip JSON-lines feeds into
//! Kafka with castorm's `HttpSourceConnector` keys. The rest of this crate is an HTTP sink that runs
//! Confluent's `io.confluent.connect.http.HttpSinkConnector` configs
//! unchanged (webhooks, Telegram alerts) and goes beyond it: a body template with JSON escaping, `Retry-After`
//! and Telegram's `retry_after` honoured with the partitions paused, each record the target refuses sent to
//! the errant-record reporter with the status and the response body, and no request repeated when a batch is
//! redelivered after a retriable failure.
//!
//! The sink's files by concern: `config` (keys, defaults, parsing), `render` (a record's string or JSON form, Java's
//! `toString` for structs and maps, regex rewrites, the body template), `request` (grouping records into
//! request bodies: `batch.*`), `service` (one request and what its response means), `task` (the `SinkTask`:
//! sending, retry bookkeeping, reporting), `connector`.
//!
//! Depends on connect-core, connect-kit (the HTTP client, backoff) and reqwest; it must not depend on a Kafka
//! client or the worker.

pub mod config;
mod connector;
pub mod render;
mod request;
mod service;
pub mod source;
mod task;

pub use connector::HttpSinkConnector;
pub use task::HttpSinkTask;

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const SINK_CLASS: &str = "io.confluent.connect.http.HttpSinkConnector";
pub const SOURCE_CLASS: &str = "com.github.castorm.kafka.connect.http.HttpSourceConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![
        ConnectorPlugin {
            class: SINK_CLASS,
            aliases: &["HttpSink", "http-sink"],
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Sink(Box::<HttpSinkConnector>::default()),
        },
        ConnectorPlugin {
            class: SOURCE_CLASS,
            aliases: &["HttpSource", "http-source", "io.connectrs.http.HttpSourceConnector"],
            kind: ConnectorType::Source,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Source(Box::<source::HttpSourceConnector>::default()),
        },
    ]
}
#[cfg(test)]
mod tests;
