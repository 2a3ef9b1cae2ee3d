//! connect-camera: a source connector that runs an object detector on camera frames and writes, per
//! analysed frame, the objects it saw (`{"objects": {"Cat": 1}, ...}`) to Kafka.
//!
//! Files by concern: `config` (keys), `frames` (where frames come from: MJPEG and snapshot URLs,
//! directories, video files and RTSP through ffmpeg; reconnects), `detector` (the ONNX model run by tract,
//! box decoding, NMS), `record` (the record's schema, counts, the trailing window, `on_change`), `task`
//! (the connector and the task: the frame → decode → infer → record pipeline).
//!
//! Depends on connect-core, connect-kit, tokio, reqwest, tract-onnx and image crates. It must not depend on a
//! Kafka client or the worker.

pub mod config;
pub mod detector;
pub mod frames;
pub mod record;
mod task;

pub use task::{CameraDetectorSourceConnector, CameraDetectorSourceTask};

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const CLASS: &str = "io.connectrs.camera.CameraDetectorSourceConnector";

pub fn plugins() -> Vec<ConnectorPlugin> {
    // `CameraDetectorSource` names it too (its simple class name without "Connector").
    vec![ConnectorPlugin {
        class: CLASS,
        aliases: &["camera-detector-source"],
        kind: ConnectorType::Source,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Source(Box::<CameraDetectorSourceConnector>::default()),
    }]
}
