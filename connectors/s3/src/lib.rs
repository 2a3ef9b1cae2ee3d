//! connect-s3: an S3 sink that runs Confluent's `io.confluent.connect.s3.S3SinkConnector` configs unchanged
//! (plus `store.url` for a store that is not AWS), with aws-sdk-s3.
//!
//! Records become files as Confluent's sink makes them: JSON lines, Avro container files, Parquet or raw bytes, in
//! directories from the Default, Field or time-based partitioners, named `<topics.dir>/<topic>/<directory>/
//! <topic>+<partition>+<start offset>.<ext>`, rotated on `flush.size`, record time and schema changes. Offsets
//! commit only past files stored, and files depend only on the records, so a crash rewrites the same files:
//! exactly once, unless the wall clock decides files (`Wallclock`, `rotate.schedule.interval.ms`).
//!
//! Files by concern: `config` (keys, object names), `partitioner` (directories, Joda patterns, timestamp
//! extractors), `avro` (Connect schemas and values as Avro, as Confluent's AvroData), `parquet` (Connect data as
//! Parquet, as parquet-avro writes AvroData's), `format` (a file being
//! written), `writer` (one Kafka partition's files and their rotation), `storage` (uploads), `task`,
//! `connector`.
//!
//! Depends on connect-core, connect-kit (backoff), aws-sdk-s3, apache-avro, parquet (without arrow) and flate2; it must not depend on
//! a Kafka client or the worker.

pub mod avro;
pub mod config;
mod connector;
pub mod format;
pub mod parquet;
pub mod partitioner;
pub mod storage;
mod task;
pub mod writer;

pub use connector::S3SinkConnector;
pub use task::S3SinkTask;

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const CLASS: &str = "io.confluent.connect.s3.S3SinkConnector";

/// The plugins this crate provides, for the worker's registry.
pub fn plugins() -> Vec<ConnectorPlugin> {
    // `S3Sink` and `S3SinkConnector` name it too (its simple class name).
    vec![ConnectorPlugin {
        class: CLASS,
        aliases: &["s3-sink"],
        kind: ConnectorType::Sink,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Sink(Box::<S3SinkConnector>::default()),
    }]
}
