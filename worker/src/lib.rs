//! connect-worker: the connect-rs runtime.
//!
//! Kafka I/O (rdkafka), the source and sink task loops, source-offset storage, error tolerance, the
//! standalone herder and the REST API. This is the one crate that talks to Kafka; connectors never do.
//! The `connect` binary (src/main.rs) is a thin command line over this library.

pub mod auth;
pub mod cli;
pub mod config;
pub mod config_providers;
pub mod connector_config;
pub mod errors;
pub mod health;
pub mod herder;
pub mod kafka;
pub mod logging;
pub mod offsets;
pub mod offsets_api;
pub mod pipeline;
pub mod registry;
pub mod rest;
pub mod restart;
pub mod sink_task;
pub mod source_task;
pub mod standalone;
pub mod state;
pub mod status;
