//! The task runtime: the source and sink loops, the conversion and transform pipeline, record error
//! handling (tolerance, retries, DLQ, counters), task status, and the supervisor that builds, runs and
//! restarts one task.
//!
//! Depends on `kafka`, `store`, `config` and `registry`; never on `control` or `rest` (they drive it).

pub mod errors;
pub mod metrics;
pub mod paused;
pub mod pipeline;
pub mod restart;
pub mod sink;
pub mod source;
pub mod status;
pub mod supervisor;

use std::sync::Arc;

use crate::config::WorkerConfig;
use crate::kafka::health::HealthCell;
use crate::registry::Registry;
use crate::runtime::metrics::StartupMetrics;
use crate::store::offsets::OffsetStore;

/// Everything tasks of this worker share.
pub struct WorkerContext {
    pub worker: WorkerConfig,
    pub registry: Registry,
    pub offsets: Arc<OffsetStore>,
    pub worker_id: String,
    pub health: HealthCell,
    /// Connector and task start-ups, for the worker's metrics.
    pub startup: StartupMetrics,
}
