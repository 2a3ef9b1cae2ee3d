//! connect-worker: the connect-rs runtime.
//!
//! Kafka I/O (rdkafka), the source and sink task loops, source-offset storage, error tolerance, the
//! standalone herder and the REST API. This is the one crate that talks to Kafka; connectors never do.
//! The `connect` binary (src/main.rs) is a thin command line over this library.
//!
//! Folders by concern, each depending only on those below it:
//! `rest` (the REST API) → `control` (the herder) → `runtime` (task loops, pipeline, errors, supervisor)
//! → `kafka` (clients, topic creation, broker health), `store` (offsets and connector state on disk),
//! `config` (worker and connector configs, config providers), `registry` (the plugins), `logging`.
//! `standalone` wires them together; `distributed` wires them into a worker group (Kafka's group protocol,
//! the config/status/offsets topics, REST forwarding) on top of `control`; `shutdown` bounds the stop after a signal; `cli` is the REST client behind `connect <command>`;
//! `docs` renders the plugin reference (`connect plugins --docs`).

pub mod cli;
pub mod config;
pub mod control;
pub mod distributed;
pub mod docs;
pub mod kafka;
pub mod logging;
pub mod registry;
pub mod rest;
pub mod runtime;
pub mod shutdown;
pub mod standalone;
pub mod store;
