//! What a standalone worker keeps on disk: source offsets (`offsets`) and connector configs with their
//! target states (`connectors`), both rewritten atomically. Depends on nothing else in the worker.

pub mod connectors;
pub mod offsets;
