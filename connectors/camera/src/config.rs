//! Keys of the camera source, and the settings a task runs with.

use crate::detector::{DetectorSpec, EngineKind, ModelKind, Region};
use crate::frames::CameraUrl;
use connect_core::config::{ConfigValue, ParsedConfig};
use connect_core::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};
use std::path::PathBuf;
use std::time::Duration;

pub const CAMERA_URL: &str = "camera.url";
pub const CAMERA_NAME: &str = "camera.name";
pub const KAFKA_TOPIC: &str = "kafka.topic";
pub const FRAME_INTERVAL: &str = "frame.interval.ms";
pub const FRAME_EMIT: &str = "frame.emit";
pub const MODEL_KIND: &str = "detector.model.kind";
pub const MODEL: &str = "detector.model";
pub const LABELS: &str = "detector.labels";
pub const SCORE_THRESHOLD: &str = "detector.score.threshold";
pub const NMS_IOU: &str = "detector.nms.iou";
pub const LABELS_INCLUDE: &str = "detector.labels.include";
pub const LABELS_EXCLUDE: &str = "detector.labels.exclude";
pub const ROI: &str = "detector.roi";
pub const THREADS: &str = "detector.threads";
pub const ENGINE: &str = "detector.engine";
pub const ORT_LIBRARY: &str = "detector.ort.library";
pub const WINDOW: &str = "detector.window.ms";
pub const FFMPEG_PATH: &str = "camera.ffmpeg.path";
pub const RECONNECT_BACKOFF: &str = "camera.reconnect.backoff.ms";
pub const RECONNECT_BACKOFF_MAX: &str = "camera.reconnect.backoff.max.ms";
pub const READ_TIMEOUT: &str = "camera.read.timeout.ms";

/// Which analysed frames become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Always,
    /// Only frames whose object counts differ from the previous record's.
    OnChange,
}

/// One camera of a task.
#[derive(Debug, Clone)]
pub struct Camera {
    pub url: CameraUrl,
    pub name: String,
}

/// A task's settings, parsed once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cameras: Vec<Camera>,
    pub topic: String,
    pub interval: Duration,
    pub emit: Emit,
    pub window: Option<Duration>,
    pub detector: DetectorSpec,
    pub ffmpeg: String,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub read_timeout: Duration,
}

fn string_check(check: fn(&str) -> Result<(), String>) -> impl Fn(&ConfigValue) -> Result<(), String> + Send + Sync + 'static {
    move |v| match v {
        ConfigValue::String(s) => check(s),
        _ => Ok(()),
    }
}

fn urls_ok(value: &ConfigValue) -> Result<(), String> {
    let ConfigValue::List(urls) = value else { return Ok(()) };
    if urls.is_empty() {
        return Err("no camera URL given".into());
    }
    urls.iter().try_for_each(|u| CameraUrl::parse(u).map(|_| ()))
}

pub fn def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::required(
                CAMERA_URL,
                ConfigType::List,
                Importance::High,
                "Cameras, separated by commas: an MJPEG stream or a snapshot URL (http:// or https://, told apart by the answer's Content-Type), a directory of images (file:///path/), a video file (file:///path/clip.mp4) or an RTSP/RTMP URL (both through ffmpeg).",
            )
            .validator(Validator::custom(urls_ok).described("http(s)://, file://, rtsp:// or rtmp:// URLs"))
            .group("Camera", 1),
        )
        .define(
            ConfigKey::new(
                CAMERA_NAME,
                ConfigType::List,
                Some(""),
                Importance::Medium,
                "The cameras' names (the record key), in the order of camera.url. Default: the connector's name, with -1, -2, ... when there are several cameras.",
            )
            .group("Camera", 2),
        )
        .define(
            ConfigKey::required(KAFKA_TOPIC, ConfigType::String, Importance::High, "The Kafka topic to write to.")
                .validator(Validator::NonEmptyString)
                .group("Camera", 3),
        )
        .define(
            ConfigKey::new(
                FRAME_INTERVAL,
                ConfigType::Long,
                Some("0"),
                Importance::Medium,
                "At most one frame per interval is analysed (ms). 0: every frame; when the detector is slower than a live camera the newest frame wins and the others are counted as skipped. For video files the interval is in video time (ffmpeg's fps filter); a directory's files are all analysed.",
            )
            .validator(Validator::at_least(0.0))
            .group("Camera", 4),
        )
        .define(
            ConfigKey::new(FRAME_EMIT, ConfigType::String, Some("always"), Importance::Medium, "always: a record per analysed frame; on_change: only frames whose counts differ from the previous record's.")
                .validator(Validator::OneOf(vec!["always", "on_change"]))
                .group("Camera", 5),
        )
        .define(
            ConfigKey::new(FFMPEG_PATH, ConfigType::String, Some("ffmpeg"), Importance::Low, "The ffmpeg program that reads video files and RTSP/RTMP streams.")
                .group("Camera", 6),
        )
        .define(
            ConfigKey::new(RECONNECT_BACKOFF, ConfigType::Long, Some("1000"), Importance::Low, "First wait before reconnecting to a camera that dropped or refused (ms); it doubles up to camera.reconnect.backoff.max.ms.")
                .validator(Validator::at_least(1.0))
                .group("Camera", 7),
        )
        .define(
            ConfigKey::new(RECONNECT_BACKOFF_MAX, ConfigType::Long, Some("30000"), Importance::Low, "Longest wait between reconnects (ms). A camera is retried for as long as the task runs.")
                .validator(Validator::at_least(1.0))
                .group("Camera", 8),
        )
        .define(
            ConfigKey::new(READ_TIMEOUT, ConfigType::Long, Some("10000"), Importance::Low, "A camera that sends nothing for this long is reconnected (ms).")
                .validator(Validator::at_least(1.0))
                .group("Camera", 9),
        )
        .define(
            ConfigKey::new(MODEL_KIND, ConfigType::String, Some("ssd"), Importance::Medium, "ssd: SSD-MobileNetV2 on Open Images v4 (24 labels, bundled); nanodet: NanoDet on COCO-80 (needs detector.model and detector.labels).")
                .validator(Validator::OneOf(vec!["ssd", "nanodet"]))
                .group("Detector", 1),
        )
        .define(
            ConfigKey::new(MODEL, ConfigType::String, Some(""), Importance::Medium, "Path of the ONNX model. Empty: the bundled SSD model.").group("Detector", 2),
        )
        .define(
            ConfigKey::new(LABELS, ConfigType::String, Some(""), Importance::Medium, "Path of the label list, one a line in the model's class order. Empty: the bundled SSD labels.")
                .group("Detector", 3),
        )
        .define(
            ConfigKey::new(SCORE_THRESHOLD, ConfigType::Double, Some("0.5"), Importance::Medium, "Lowest score of a reported object (0..1).")
                .validator(Validator::between(0.0, 1.0))
                .group("Detector", 4),
        )
        .define(
            ConfigKey::new(NMS_IOU, ConfigType::Double, Some("0.5"), Importance::Low, "Boxes of one label overlapping a better one by more than this IoU are dropped (0..1).")
                .validator(Validator::between(0.0, 1.0))
                .group("Detector", 5),
        )
        .define(
            ConfigKey::new(LABELS_INCLUDE, ConfigType::List, Some(""), Importance::Medium, "Only these labels are reported (case-insensitive). Empty: all.").group("Detector", 6),
        )
        .define(
            ConfigKey::new(LABELS_EXCLUDE, ConfigType::List, Some(""), Importance::Medium, "These labels are never reported (case-insensitive).").group("Detector", 7),
        )
        .define(
            ConfigKey::new(ROI, ConfigType::String, Some("0,0,1,1"), Importance::Medium, "The region analysed, x,y,w,h in fractions of the frame (e.g. 0,0.5,1,0.5: the lower half). Boxes are still given in fractions of the whole frame.")
                .validator(Validator::custom(string_check(|s| Region::parse(s).map(|_| ()))).described("x,y,w,h in 0..1"))
                .group("Detector", 8),
        )
        .define(
            ConfigKey::new(THREADS, ConfigType::Int, Some("1"), Importance::Low, "Threads of one inference. 1 leaves the other cores to decoding the next frame, which runs beside it.")
                .validator(Validator::between(1.0, 64.0))
                .group("Detector", 9),
        )
        .define(
            ConfigKey::new(ENGINE, ConfigType::String, Some("tract"), Importance::Low, "What runs the model: tract (pure Rust, always built) or ort (ONNX Runtime, about 3x faster; needs a build with the `ort` feature and the library, see detector.ort.library).")
                .validator(Validator::OneOf(vec!["tract", "ort"]))
                .group("Detector", 10),
        )
        .define(
            ConfigKey::new(ORT_LIBRARY, ConfigType::String, Some(""), Importance::Low, "With detector.engine=ort: the path of libonnxruntime.so (1.31 or later, e.g. from the onnxruntime wheel on PyPI). Empty: the ORT_DYLIB_PATH environment variable, else libonnxruntime.so on the library path.")
                .group("Detector", 11),
        )
        .define(
            ConfigKey::new(WINDOW, ConfigType::Long, Some("0"), Importance::Medium, "When > 0, objects holds the largest count of each label over this trailing window of frames (ms), not the frame's own counts.")
                .validator(Validator::at_least(0.0))
                .group("Detector", 10),
        )
}

/// The cameras' names: those given, else the connector's name (with `-i` when there are several).
pub fn camera_names(connector: &str, urls: usize, given: &[String]) -> Vec<String> {
    (0..urls)
        .map(|i| match given.get(i) {
            Some(name) => name.clone(),
            None if urls == 1 => connector.to_string(),
            None => format!("{connector}-{}", i + 1),
        })
        .collect()
}

fn path_or_none(value: String) -> Option<PathBuf> {
    (!value.trim().is_empty()).then(|| PathBuf::from(value.trim()))
}

impl Settings {
    pub fn from_config(connector: &str, parsed: &ParsedConfig) -> Result<Settings, String> {
        let urls = parsed.list(CAMERA_URL);
        let names = camera_names(connector, urls.len(), &parsed.list(CAMERA_NAME));
        let cameras = urls
            .iter()
            .zip(names)
            .map(|(url, name)| Ok(Camera { url: CameraUrl::parse(url)?, name }))
            .collect::<Result<Vec<_>, String>>()?;
        let kind = ModelKind::parse(&parsed.string(MODEL_KIND)).ok_or("unknown detector.model.kind")?;
        let model = path_or_none(parsed.string(MODEL));
        let labels = path_or_none(parsed.string(LABELS));
        if kind == ModelKind::NanoDet && (model.is_none() || labels.is_none()) {
            return Err(format!("{MODEL_KIND}=nanodet needs {MODEL} and {LABELS} (only the SSD model is bundled)"));
        }
        let engine = match parsed.string(ENGINE).trim().to_ascii_lowercase().as_str() {
            "ort" if !EngineKind::ORT_BUILT => {
                return Err(format!("{ENGINE}=ort: this build has no ONNX Runtime engine (build connect with `--features ort`)"))
            }
            "ort" => {
                let library = path_or_none(parsed.string(ORT_LIBRARY))
                    .or_else(|| std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"));
                EngineKind::Ort { library }
            }
            _ => EngineKind::Tract,
        };
        let ms = |key| Duration::from_millis(parsed.int(key).max(0) as u64);
        Ok(Settings {
            cameras,
            topic: parsed.string(KAFKA_TOPIC),
            interval: ms(FRAME_INTERVAL),
            emit: if parsed.string(FRAME_EMIT) == "on_change" { Emit::OnChange } else { Emit::Always },
            window: Some(ms(WINDOW)).filter(|w| !w.is_zero()),
            detector: DetectorSpec {
                kind,
                model,
                labels,
                threads: parsed.int(THREADS).max(1) as usize,
                engine,
                score_threshold: parsed.double(SCORE_THRESHOLD) as f32,
                nms_iou: parsed.double(NMS_IOU) as f32,
                include: parsed.list(LABELS_INCLUDE),
                exclude: parsed.list(LABELS_EXCLUDE),
                roi: Region::parse(&parsed.string(ROI))?,
            },
            ffmpeg: parsed.string(FFMPEG_PATH),
            backoff_initial: ms(RECONNECT_BACKOFF),
            backoff_max: ms(RECONNECT_BACKOFF_MAX),
            read_timeout: ms(READ_TIMEOUT),
        })
    }
}
