//! The connector (cameras spread over tasks) and the task: per camera a reader (frames into a slot), a
//! decode stage and an inference stage on blocking threads, so the next frame is decoded while this one
//! is analysed; results come back in order through one channel, and `poll` turns them into records
//! (counts, window, `on_change`, offsets). Every stage awaits its input, and all of them end with the task.

use crate::config::{self as keys, Camera, Emit, Settings};
use crate::detector::{Detection, Detector, DetectorError};
use crate::frames::{self, CameraUrl, Frame, FrameSlot, Position, ReaderSettings, Resume};
use crate::record::{self, Counts, FrameRecord, Window};
use connect_core::{
    async_trait, schemas, Config, ConfigDef, ConnectError, Connector, ConnectorContext, RecordData, Result, SourceConnector, SourceMap,
    SourceRecord, SourceTask, SourceTaskContext, Value,
};
use connect_kit::BackoffPolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct CameraDetectorSourceConnector {
    name: String,
    config: Config,
}

#[async_trait]
impl Connector for CameraDetectorSourceConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        keys::def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        let parsed = keys::def().parse(&config)?;
        self.name = config.get("name").cloned().unwrap_or_else(|| "camera".to_string());
        Settings::from_config(&self.name, &parsed).map_err(ConnectError::fatal)?;
        self.config = config;
        Ok(())
    }
    /// Cameras dealt round robin over at most `max_tasks` tasks, each task's `camera.url` and
    /// `camera.name` holding its own cameras.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        let parsed = keys::def().parse(&self.config)?;
        let urls = parsed.list(keys::CAMERA_URL);
        let names = keys::camera_names(&self.name, urls.len(), &parsed.list(keys::CAMERA_NAME));
        let tasks = max_tasks.clamp(1, urls.len().max(1));
        Ok((0..tasks)
            .map(|t| {
                let mine: Vec<usize> = (t..urls.len()).step_by(tasks).collect();
                let mut config = self.config.clone();
                config.insert(keys::CAMERA_URL.into(), mine.iter().map(|&i| urls[i].as_str()).collect::<Vec<_>>().join(","));
                config.insert(keys::CAMERA_NAME.into(), mine.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>().join(","));
                config
            })
            .collect())
    }
}

impl SourceConnector for CameraDetectorSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<CameraDetectorSourceTask>::default()
    }
}

/// What a camera's pipeline hands `poll`.
enum Outcome {
    Analysed {
        frame: Frame,
        skipped: u64,
        detections: Vec<Detection>,
    },
    /// The frame could not be decoded: a data error, the bytes to the DLQ.
    Unreadable {
        frame: Frame,
        skipped: u64,
        why: String,
    },
    /// Inference itself failed: the task fails (a model that cannot run is not a bad record).
    Failed(String),
}

/// Per camera: what `poll` keeps between frames.
struct CameraState {
    camera: Camera,
    partition: Arc<SourceMap>,
    /// Camera frames received so far (the record's `frame`), continued after a restart.
    frames: i64,
    window: Option<Window>,
    last_emitted: Option<Counts>,
    /// Frames skipped before an unreadable frame, told in the next record's `skipped`.
    carried_skips: u64,
    /// Directory: the highest file name sent (what a restart passes over).
    high_file: Option<String>,
}

#[derive(Default)]
pub struct CameraDetectorSourceTask {
    settings: Option<Settings>,
    cameras: Vec<CameraState>,
    outcomes: Option<mpsc::Receiver<(usize, Outcome)>>,
    workers: Vec<JoinHandle<()>>,
}

/// Records one `poll` returns at most.
const BATCH: usize = 64;

fn stored_i64(offset: &SourceMap, key: &str) -> Option<i64> {
    offset.get(key).and_then(|v| v.as_i64())
}

fn stored_str<'a>(offset: &'a SourceMap, key: &str) -> Option<&'a str> {
    offset.get(key).and_then(|v| v.as_str())
}

impl CameraDetectorSourceTask {
    fn settings(&self) -> &Settings {
        self.settings.as_ref().expect("started")
    }

    fn offset(&self, state: &CameraState, frame: &Frame, emitted: Option<&Counts>) -> SourceMap {
        let mut offset = SourceMap::new();
        match &frame.position {
            Position::Live => offset.insert("ts".into(), frame.time_ms.into()),
            // The highest name sent, never lower: files are taken in the order they became whole, which
            // across scans need not be name order, and a restart passes over names up to this one.
            Position::File(name) => {
                offset.insert("file".into(), state.high_file.as_ref().filter(|h| *h > name).unwrap_or(name).clone().into())
            }
            Position::VideoIndex(i) => offset.insert("index".into(), (*i as i64).into()),
        };
        offset.insert("frame".into(), state.frames.into());
        if let Some(counts) = emitted {
            offset.insert("objects".into(), record::counts_text(counts).into());
        }
        offset
    }

    fn record_of(&mut self, index: usize, outcome: Outcome) -> Result<Option<SourceRecord>> {
        let topic = self.settings().topic.clone();
        let emit = self.settings().emit;
        let state = &mut self.cameras[index];
        match outcome {
            Outcome::Failed(why) => Err(ConnectError::fatal(format!("camera {}: {why}", state.camera.name))),
            Outcome::Unreadable { frame, skipped, why } => {
                state.frames += 1 + skipped as i64;
                if let Position::File(name) = &frame.position {
                    if state.high_file.as_ref().is_none_or(|h| name > h) {
                        state.high_file = Some(name.clone());
                    }
                }
                state.carried_skips += skipped;
                let state = &self.cameras[index];
                let offset = self.offset(state, &frame, state.last_emitted.as_ref());
                let data = RecordData::new(topic, Some(schemas::optional_bytes()), Value::Bytes(frame.bytes))
                    .with_key(Some(record::key_schema()), Value::String(state.camera.name.clone()))
                    .with_timestamp(Some(frame.time_ms));
                Ok(Some(SourceRecord::unreadable(state.partition.clone(), offset, data, format!("camera {}: {why}", state.camera.name))))
            }
            Outcome::Analysed { frame, skipped, detections } => {
                state.frames += 1 + skipped as i64;
                if let Position::File(name) = &frame.position {
                    if state.high_file.as_ref().is_none_or(|h| name > h) {
                        state.high_file = Some(name.clone());
                    }
                }
                // Skips before frames that made no record (unreadable, or unchanged with on_change) are
                // told in the next record.
                state.carried_skips += skipped;
                let own = record::counts(&detections);
                let objects = match &mut state.window {
                    Some(window) => window.add(frame.time_ms, own),
                    None => own,
                };
                if emit == Emit::OnChange && state.last_emitted.as_ref() == Some(&objects) {
                    return Ok(None);
                }
                let skipped = std::mem::take(&mut state.carried_skips);
                state.last_emitted = Some(objects.clone());
                let state = &self.cameras[index];
                let value = FrameRecord {
                    camera: &state.camera.name,
                    ts: frame.time_ms,
                    frame: state.frames,
                    skipped,
                    objects: &objects,
                    detections: &detections,
                }
                .value();
                let offset = self.offset(state, &frame, (emit == Emit::OnChange).then_some(&objects));
                let data = RecordData::new(topic, Some(record::value_schema()), value)
                    .with_key(Some(record::key_schema()), Value::String(state.camera.name.clone()))
                    .with_timestamp(Some(frame.time_ms));
                Ok(Some(SourceRecord::new(state.partition.clone(), offset, data)))
            }
        }
    }
}

/// Decode stage → inference stage → `poll`, for one camera: decoding runs on the blocking pool, inference on
/// a thread of its own, so decoding the next frame overlaps inference of this one. The inference thread ends
/// when the decode task does (its channel closes), or when the task is gone (nobody receives).
fn spawn_pipeline(
    index: usize,
    slot: Arc<FrameSlot>,
    detector: Arc<Detector>,
    throttle: Option<Duration>,
    outcomes: mpsc::Sender<(usize, Outcome)>,
) -> JoinHandle<()> {
    let (prepared_tx, mut prepared_rx) = mpsc::channel::<(Frame, u64, std::result::Result<crate::detector::Prepared, DetectorError>)>(1);
    let decode_detector = detector.clone();
    let decode = tokio::spawn(async move {
        let mut next_allowed = tokio::time::Instant::now();
        loop {
            if throttle.is_some() {
                tokio::time::sleep_until(next_allowed).await;
            }
            let Some((frame, skipped)) = slot.take().await else { return };
            if let Some(interval) = throttle {
                // From the frame taken, not from the end of the wait: a camera slower than the interval must
                // not get two frames analysed back to back.
                next_allowed = tokio::time::Instant::now() + interval;
            }
            let d = decode_detector.clone();
            let bytes = frame.bytes.clone();
            let prepared = match tokio::task::spawn_blocking(move || d.prepare(&bytes)).await {
                Ok(prepared) => prepared,
                Err(e) => Err(DetectorError::NotAnImage(format!("the decoder panicked: {e}"))),
            };
            if prepared_tx.send((frame, skipped, prepared)).await.is_err() {
                return;
            }
        }
    });
    // Inference on a thread of its own for the camera's life: tract keeps its scratch buffers per thread, and
    // a long-lived thread keeps them (and its caches) warm, where a pool thread per frame would not.
    let infer = std::thread::Builder::new().name(format!("camera-infer-{index}")).spawn(move || {
        while let Some((frame, skipped, prepared)) = prepared_rx.blocking_recv() {
            let outcome = match prepared {
                Err(e) => Outcome::Unreadable { frame, skipped, why: e.to_string() },
                Ok(input) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| detector.detect(input))) {
                    Ok(Ok(detections)) => Outcome::Analysed { frame, skipped, detections },
                    Ok(Err(e)) => Outcome::Failed(e.to_string()),
                    Err(_) => Outcome::Failed("the detector panicked".into()),
                },
            };
            if outcomes.blocking_send((index, outcome)).is_err() {
                return;
            }
        }
    });
    if let Err(e) = infer {
        tracing::error!("cannot start an inference thread: {e}");
    }
    decode
}

#[async_trait]
impl SourceTask for CameraDetectorSourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = keys::def().parse(&config)?;
        let settings = Settings::from_config(&context.connector_name, &parsed).map_err(ConnectError::fatal)?;
        if let Some(camera) = settings.cameras.iter().find(|c| c.url.needs_ffmpeg()) {
            frames::ffmpeg::check(&settings.ffmpeg).await.map_err(|e| ConnectError::fatal(format!("camera {}: {e}", camera.name)))?;
        }
        let spec = settings.detector.clone();
        let detector = tokio::task::spawn_blocking(move || Detector::load(spec))
            .await
            .map_err(|e| ConnectError::fatal(format!("loading the model panicked: {e}")))?
            .map_err(|e| ConnectError::fatal(e.to_string()))?;
        let detector = Arc::new(detector);
        let reader = ReaderSettings {
            interval: settings.interval,
            ffmpeg: settings.ffmpeg.clone(),
            backoff: BackoffPolicy::exponential(settings.backoff_initial, settings.backoff_max.max(settings.backoff_initial))
                .with_jitter(connect_kit::Jitter::Symmetric(0.2)),
            read_timeout: settings.read_timeout,
        };
        let (outcomes_tx, outcomes_rx) = mpsc::channel(16);
        for (index, camera) in settings.cameras.iter().enumerate() {
            let mut partition = SourceMap::new();
            partition.insert("camera".into(), camera.name.clone().into());
            let partition = Arc::new(partition);
            let stored = context.offsets.offset(&partition).unwrap_or_default();
            let resume = Resume {
                after_file: stored_str(&stored, "file").map(str::to_string),
                after_index: stored_i64(&stored, "index").map(|i| i as u64),
                done: Default::default(),
            };
            let live = camera.url.is_live();
            let slot = Arc::new(FrameSlot::new(live));
            self.workers.push(tokio::spawn(frames::run(camera.name.clone(), camera.url.clone(), slot.clone(), reader.clone(), resume)));
            // Live cameras are thinned by wall-clock time; video files by ffmpeg, directories not at all.
            let throttle = (live && !settings.interval.is_zero()).then_some(settings.interval);
            self.workers.push(spawn_pipeline(index, slot, detector.clone(), throttle, outcomes_tx.clone()));
            tracing::info!(camera = camera.name, "reading {}", redact(&camera.url));
            self.cameras.push(CameraState {
                camera: camera.clone(),
                partition,
                frames: stored_i64(&stored, "frame").unwrap_or(0),
                window: settings.window.map(Window::new),
                last_emitted: stored_str(&stored, "objects").and_then(record::counts_from_text),
                carried_skips: 0,
                high_file: stored_str(&stored, "file").map(str::to_string),
            });
        }
        self.outcomes = Some(outcomes_rx);
        self.settings = Some(settings);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let outcomes = self.outcomes.as_mut().expect("started");
        let first = match tokio::time::timeout(Duration::from_secs(1), outcomes.recv()).await {
            Ok(Some(first)) => first,
            // Every camera ended (video files), or nothing yet: let the runtime commit meanwhile.
            Ok(None) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(Vec::new());
            }
            Err(_) => return Ok(Vec::new()),
        };
        let mut ready = vec![first];
        while ready.len() < BATCH {
            match outcomes.try_recv() {
                Ok(next) => ready.push(next),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(ready.len());
        for (index, outcome) in ready {
            if let Some(record) = self.record_of(index, outcome)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// `poll` only waits on the outcomes channel: dropping it loses nothing.
    fn poll_is_cancel_safe(&self) -> bool {
        true
    }

    async fn stop(&mut self) -> Result<()> {
        for worker in self.workers.drain(..) {
            worker.abort();
        }
        Ok(())
    }
}

/// A camera URL for logs, without its password.
fn redact(url: &CameraUrl) -> String {
    match url {
        CameraUrl::Http(u) => match reqwest::Url::parse(u) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => u.clone(),
        },
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::EngineKind;

    #[test]
    fn cameras_are_dealt_over_tasks_with_their_names() {
        let config: Config = [
            ("name", "garden"),
            (keys::CAMERA_URL, "http://a/stream, http://b/stream, file:///c/"),
            (keys::CAMERA_NAME, "front, back"),
            (keys::KAFKA_TOPIC, "t"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let connector = CameraDetectorSourceConnector { name: "garden".into(), config };
        let two = connector.task_configs(2).unwrap();
        let of = |c: &Config, key: &str| c.get(key).cloned().unwrap_or_default();
        assert_eq!(two.len(), 2);
        assert_eq!(
            (of(&two[0], keys::CAMERA_URL), of(&two[0], keys::CAMERA_NAME)),
            ("http://a/stream,file:///c/".into(), "front,garden-3".into())
        );
        assert_eq!((of(&two[1], keys::CAMERA_URL), of(&two[1], keys::CAMERA_NAME)), ("http://b/stream".into(), "back".into()));
        // Never more tasks than cameras.
        assert_eq!(connector.task_configs(8).unwrap().len(), 3);
        assert_eq!(connector.task_configs(1).unwrap()[0].get(keys::CAMERA_NAME).unwrap(), "front,back,garden-3");
    }

    #[test]
    fn detector_engine_ort_takes_its_library_or_says_the_build_lacks_it() {
        let settings = |pairs: &[(&str, &str)]| {
            let mut config: Config = [(keys::CAMERA_URL, "file:///frames/"), (keys::KAFKA_TOPIC, "t")]
                .iter()
                .chain(pairs)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            config.insert("name".into(), "garden".into());
            Settings::from_config("garden", &keys::def().parse(&config).unwrap())
        };
        assert_eq!(settings(&[]).unwrap().detector.engine, EngineKind::Tract);
        let ort = settings(&[(keys::ENGINE, "ort"), (keys::ORT_LIBRARY, "/opt/ort/libonnxruntime.so")]);
        if EngineKind::ORT_BUILT {
            assert_eq!(ort.unwrap().detector.engine, EngineKind::Ort { library: "/opt/ort/libonnxruntime.so".into() });
        } else {
            assert!(ort.unwrap_err().contains("--features ort"));
        }
    }
}
