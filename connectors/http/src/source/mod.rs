//! The HTTP feed source: polls a URL (a CSV snapshot, a JSON API, a daily gzip file of JSON lines) and
//! emits each item or line once. Keys are those of castorm's `HttpSourceConnector` plus ours for line
//! formats, compression and deduplication ([`config`]).
//!
//! Files by concern: `config` (keys), `body` (a response as decompressed lines, streamed), `offset` (what a
//! record's source offset remembers, and `${offset.NAME}` templates), `task` (the connector and the task:
//! fetch, 304s, retries, resume).

pub mod body;
pub mod config;
pub mod offset;
mod task;

pub use task::{HttpSourceConnector, HttpSourceTask};
