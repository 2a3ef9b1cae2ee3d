//! FileStreamSource and FileStreamSink: Kafka's reference connectors, with their class names and keys.
//!
//! The source reads a file line by line (its offset is the byte position after the last line sent, so a
//! restart resumes there); the sink appends each record's value as a line. Both exist to exercise the
//! runtime end to end, exactly as Kafka's own FileStream connectors do.
//!
//! This crate depends on connect-core and tokio only; it must not depend on a Kafka client or the worker.

mod config;
mod sink;
mod source;

pub use sink::{FileStreamSinkConnector, FileStreamSinkTask};
pub use source::{FileStreamSourceConnector, FileStreamSourceTask};

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const SOURCE_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
pub const SINK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![
        ConnectorPlugin {
            class: SOURCE_CLASS,
            aliases: &["file-source"],
            kind: ConnectorType::Source,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Source(Box::<FileStreamSourceConnector>::default()),
        },
        ConnectorPlugin {
            class: SINK_CLASS,
            aliases: &["file-sink"],
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Sink(Box::<FileStreamSinkConnector>::default()),
        },
    ]
}
