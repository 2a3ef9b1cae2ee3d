//! connect-kit: the machinery connectors share, so that each connector is mostly its protocol (as Vector's
//! `src/sinks/util/`).
//!
//! - [`backoff`]: one backoff policy (initial, max, multiplier, jitter, give-up budget) for the worker and
//!   every connector, `Retry-After` parsing and body-supplied delays;
//! - [`buffer`]: a sink buffer flushed on records, bytes or linger time, keeping each record's coordinates;
//! - [`concurrency`]: bounded in-flight requests, and per-partition commits over the acknowledged prefix only;
//! - [`isolate`](mod@isolate): bisection of a rejected batch down to its bad records, in O(k log n) attempts;
//! - [`http`]: the reqwest client setup of HTTP connectors (timeouts, proxy, TLS, basic/bearer/OAuth2, gzip);
//! - [`redelivery`]: what a sink remembers across redeliveries of a batch, so a retry sends nothing twice
//!   (records told apart even when a transform made several of one Kafka record);
//! - [`validate`]: cross-key checks for `Connector::validate`, filed under the key they name;
//! - [`errant`]: a refused record to the errant-record reporter (the DLQ), or the task's data error without one;
//! - [`push_source`]: a bounded channel between a push protocol's receive loop and `SourceTask::poll`, with
//!   typed acknowledgement tokens.
//!
//! Depends on connect-core, tokio and small well-kept crates (futures, fastrand, httpdate, reqwest with
//! rustls). It must not depend on a Kafka client (rdkafka), the worker, or any connector: the worker and
//! connectors depend on it, never the other way round.

pub mod backoff;
pub mod buffer;
pub mod concurrency;
pub mod errant;
pub mod http;
pub mod isolate;
pub mod push_source;
pub mod redelivery;
pub mod validate;

pub use backoff::{Backoff, BackoffPolicy, Jitter};
pub use isolate::{isolate, Attempt, Isolation};
