//! Where frames come from, as encoded images (JPEG, PNG) with their time and position:
//! - [`http`]: an MJPEG stream (`multipart/x-mixed-replace`) or a snapshot URL (one image per GET), told
//!   apart by the answer's Content-Type;
//! - [`directory`]: new image files in a directory, in name order;
//! - [`ffmpeg`]: a video file or an RTSP/RTMP stream decoded by an `ffmpeg` subprocess into JPEGs.
//!
//! A reader puts frames into a [`FrameSlot`]. A live camera overwrites a frame the detector has not taken
//! yet (the newest frame wins; the overwritten ones are counted as skipped); files wait for the detector,
//! so each is analysed. A reader that loses its camera reconnects with backoff for as long as the task runs.

pub mod directory;
pub mod ffmpeg;
pub mod http;
pub mod mjpeg;

use bytes::Bytes;
use connect_kit::{Backoff, BackoffPolicy};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// A camera's address, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraUrl {
    /// MJPEG stream or snapshot URL.
    Http(String),
    Directory(PathBuf),
    /// A video file, read once through ffmpeg.
    VideoFile(PathBuf),
    /// RTSP, RTMP and the like, through ffmpeg, reconnected when it ends.
    VideoStream(String),
}

impl CameraUrl {
    pub fn parse(url: &str) -> Result<CameraUrl, String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return reqwest::Url::parse(url).map(|_| CameraUrl::Http(url.to_string())).map_err(|e| format!("'{url}': {e}"));
        }
        if ["rtsp://", "rtsps://", "rtmp://", "rtmps://", "srt://", "udp://", "tcp://"].iter().any(|s| lower.starts_with(s)) {
            return Ok(CameraUrl::VideoStream(url.to_string()));
        }
        let path = match url.strip_prefix("file://") {
            Some(rest) if rest.starts_with('/') => rest,
            Some(_) => return Err(format!("'{url}' is not a file:/// URL with an absolute path")),
            None if url.starts_with('/') => url,
            None => return Err(format!("'{url}' is not an http(s)://, file:///, rtsp:// or rtmp:// URL")),
        };
        let path = PathBuf::from(path);
        if url.ends_with('/') || path.is_dir() {
            Ok(CameraUrl::Directory(path))
        } else {
            Ok(CameraUrl::VideoFile(path))
        }
    }

    /// A live camera: frames not analysed in time are dropped (the newest wins).
    pub fn is_live(&self) -> bool {
        matches!(self, CameraUrl::Http(_) | CameraUrl::VideoStream(_))
    }

    pub fn needs_ffmpeg(&self) -> bool {
        matches!(self, CameraUrl::VideoFile(_) | CameraUrl::VideoStream(_))
    }
}

/// Where a frame sits in its camera's sequence: what a record's source offset remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The n-th frame received from a live camera.
    Live,
    /// A directory's file.
    File(String),
    /// The index of a video file's frame (after the fps filter).
    VideoIndex(u64),
}

/// An encoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Bytes,
    /// When it was taken or received (epoch ms).
    pub time_ms: i64,
    pub position: Position,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// Where a camera left off before a restart.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Directory: files up to this name were analysed.
    pub after_file: Option<String>,
    /// Video file: frames up to this index were analysed.
    pub after_index: Option<u64>,
    /// Directory: files taken since the task started (and still there).
    pub done: std::collections::HashSet<String>,
}

#[derive(Default)]
struct SlotState {
    frame: Option<Frame>,
    skipped: u64,
    ended: bool,
}

/// One frame between a reader and the detector.
pub struct FrameSlot {
    /// Frames handed over so far (a reader's session that delivered some was a working connection).
    puts: std::sync::atomic::AtomicU64,
    state: Mutex<SlotState>,
    filled: Notify,
    emptied: Notify,
    live: bool,
}

impl FrameSlot {
    pub fn new(live: bool) -> FrameSlot {
        FrameSlot { puts: Default::default(), state: Mutex::default(), filled: Notify::new(), emptied: Notify::new(), live }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand a frame over: a live camera's replaces one not yet taken; a file's waits until the slot is free.
    pub async fn put(&self, frame: Frame) {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut frame = Some(frame);
        loop {
            {
                let mut state = self.lock();
                if self.live || state.frame.is_none() {
                    if state.frame.replace(frame.take().expect("kept until put")).is_some() {
                        state.skipped += 1;
                    }
                    self.filled.notify_one();
                    return;
                }
            }
            self.emptied.notified().await;
        }
    }

    pub fn frames_put(&self) -> u64 {
        self.puts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait until the detector took the frame (a snapshot camera is asked only then).
    pub async fn wait_taken(&self) {
        loop {
            if self.lock().frame.is_none() {
                return;
            }
            self.emptied.notified().await;
        }
    }

    /// No more frames will come (a video file ended).
    pub fn end(&self) {
        self.lock().ended = true;
        self.filled.notify_one();
    }

    /// The next frame and how many were dropped before it; `None` once the camera ended and all was taken.
    pub async fn take(&self) -> Option<(Frame, u64)> {
        loop {
            {
                let mut state = self.lock();
                if let Some(frame) = state.frame.take() {
                    let skipped = std::mem::take(&mut state.skipped);
                    self.emptied.notify_one();
                    return Some((frame, skipped));
                }
                if state.ended {
                    return None;
                }
            }
            self.filled.notified().await;
        }
    }
}

/// How a reader runs.
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    pub interval: Duration,
    pub ffmpeg: String,
    pub backoff: BackoffPolicy,
    pub read_timeout: Duration,
}

/// Why a reader lost its camera (it reconnects after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Camera(String),
    #[error("the camera sent nothing for {0:?}")]
    Silent(Duration),
}

/// How a reader's session with its camera ended.
pub enum Ended {
    /// A video file was read to its end: no more frames.
    Done,
    /// The session ran and ended (the stream closed): reconnect at once, the backoff reset.
    Closed,
}

/// Read the camera into the slot until the task stops (the future is dropped) or a video file ends.
pub async fn run(camera: String, url: CameraUrl, slot: std::sync::Arc<FrameSlot>, settings: ReaderSettings, mut resume: Resume) {
    let client = match http::client(&settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(camera, "cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut backoff = Backoff::new(settings.backoff.clone());
    loop {
        let delivered_before = slot.frames_put();
        let outcome = match &url {
            CameraUrl::Http(u) => http::read(&client, u, &slot, &settings).await,
            CameraUrl::Directory(dir) => directory::read(dir, &slot, &mut resume).await,
            CameraUrl::VideoFile(path) => ffmpeg::read(&path.to_string_lossy(), false, &slot, &settings, &mut resume).await,
            CameraUrl::VideoStream(u) => ffmpeg::read(u, true, &slot, &settings, &mut resume).await,
        };
        match outcome {
            Ok(Ended::Done) => {
                tracing::info!(camera, "the video ended: no more frames from this camera");
                slot.end();
                return;
            }
            Ok(Ended::Closed) => {
                tracing::info!(camera, "the camera closed its stream; reconnecting");
                backoff.reset();
                tokio::time::sleep(settings.backoff.delay(0)).await;
            }
            Err(e) => {
                if slot.frames_put() > delivered_before {
                    // The session worked for a while: this outage starts the backoff over.
                    backoff.reset();
                }
                let delay = backoff.next_delay().unwrap_or(settings.backoff.delay(u32::MAX));
                tracing::warn!(camera, delay_ms = delay.as_millis() as u64, "camera unavailable: {e}; reconnecting");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
