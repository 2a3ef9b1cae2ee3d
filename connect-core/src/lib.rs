//! connect-core: the connect-rs plugin API.
//!
//! Everything a connector, transform or converter needs and nothing it does not: the data model
//! ([`data`]), records ([`record`]), the connector/task traits and their contexts ([`connector`]),
//! transforms and predicates ([`transform`]), converters ([`converter`]), config definitions and
//! validation ([`config`]) and the reference docs rendered from them ([`config_doc`]), config providers for `${provider:path:key}` placeholders ([`config_provider`]), plugin descriptions ([`plugin`]), errors ([`error`]), Kafka Connect's schema projection ([`projector`]) and Java's regex replacement syntax ([`java_regex`]), which configs are written in.
//!
//! It must not depend on a Kafka client, an async runtime or any connector's protocol crate: the worker
//! is the one crate that talks to Kafka, and connectors depend on this crate only.

pub mod config;
pub mod config_doc;
pub mod config_provider;
pub mod connector;
pub mod converter;
pub mod data;
pub mod error;
pub mod java_regex;
pub mod plugin;
pub mod projector;
pub mod record;
pub mod transform;

pub use async_trait::async_trait;
pub use config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, ParsedConfig, Validator};
pub use connector::{
    AnyConnector, Connector, ConnectorContext, ConnectorType, ErrantRecordReporter, OffsetReader, RecordMetadata, SinkConnector, SinkTask,
    SinkTaskContext, SourceConnector, SourceTask, SourceTaskContext,
};
pub use data::{logical, schemas, Schema, SchemaRef, SchemaType, Struct, Value};
pub use error::{ConnectError, ErrorKind, Result};
pub use record::{AckToken, Header, Headers, OffsetMap, RecordData, SinkRecord, SourceMap, SourceRecord, TimestampType, TopicPartition};
