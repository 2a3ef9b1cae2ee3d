//! Video files and RTSP/RTMP streams, decoded by an `ffmpeg` subprocess into a stream of JPEGs on its
//! stdout (`-f image2pipe -vcodec mjpeg -`), split at the JPEG end-of-image markers. ffmpeg is found on
//! the PATH (or at `camera.ffmpeg.path`); the task refuses to start without it, saying so.
//!
//! The splitter is written here (a dozen lines): ffmpeg's MJPEG encoder writes bare JPEGs, without EXIF
//! thumbnails, so an end-of-image marker (FF D9) only ever ends a frame (entropy-coded data escapes FF).

use super::{now_ms, Ended, Frame, FrameSlot, Position, ReadError, ReaderSettings, Resume};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Check that ffmpeg runs, for a clear error at start rather than a camera that never connects.
pub async fn check(ffmpeg: &str) -> Result<(), String> {
    match Command::new(ffmpeg).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().await {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("'{ffmpeg} -version' failed ({status})")),
        Err(e) => Err(format!(
            "cannot run '{ffmpeg}' ({e}); video files and RTSP/RTMP cameras need ffmpeg: install it (Debian, Ubuntu: apt install ffmpeg) or set camera.ffmpeg.path"
        )),
    }
}

/// Splits a byte stream of concatenated JPEGs into frames.
#[derive(Default)]
pub struct JpegSplitter {
    buffer: BytesMut,
    /// How far the buffer was searched for an end marker.
    searched: usize,
}

impl JpegSplitter {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    pub fn next_frame(&mut self) -> Option<Bytes> {
        // Anything before a start-of-image marker is not a frame.
        if !self.buffer.starts_with(&[0xFF, 0xD8]) {
            let start = self.buffer.windows(2).position(|w| w == [0xFF, 0xD8])?;
            let _ = self.buffer.split_to(start);
            self.searched = 0;
        }
        let from = self.searched.max(2);
        match self.buffer[from..].windows(2).position(|w| w == [0xFF, 0xD9]) {
            Some(at) => {
                self.searched = 0;
                Some(self.buffer.split_to(from + at + 2).freeze())
            }
            None => {
                self.searched = self.buffer.len().saturating_sub(1);
                None
            }
        }
    }
}

fn arguments(input: &str, live: bool, settings: &ReaderSettings) -> Vec<String> {
    let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error"].map(String::from).to_vec();
    if live && input.to_ascii_lowercase().starts_with("rtsp") {
        args.extend(["-rtsp_transport", "tcp"].map(String::from));
    }
    args.extend(["-i".to_string(), input.to_string()]);
    if !live && !settings.interval.is_zero() {
        // One frame per interval of video time.
        args.extend(["-vf".to_string(), format!("fps={}", 1000.0 / settings.interval.as_millis() as f64)]);
    }
    args.extend(["-f", "image2pipe", "-vcodec", "mjpeg", "-q:v", "3", "-"].map(String::from));
    args
}

/// One ffmpeg run over the input: frames into the slot until its stdout ends.
pub async fn read(input: &str, live: bool, slot: &FrameSlot, settings: &ReaderSettings, resume: &mut Resume) -> Result<Ended, ReadError> {
    let mut child = Command::new(&settings.ffmpeg)
        .args(arguments(input, live, settings))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ReadError::Camera(format!("cannot run {}: {e}", settings.ffmpeg)))?;
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // The last lines ffmpeg printed, for the error message.
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut last = VecDeque::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if last.len() == 5 {
                last.pop_front();
            }
            last.push_back(line);
        }
        Vec::from(last).join("; ")
    });
    let mut splitter = JpegSplitter::default();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut index: u64 = 0;
    loop {
        let read = if live {
            tokio::time::timeout(settings.read_timeout, stdout.read(&mut chunk))
                .await
                .map_err(|_| ReadError::Silent(settings.read_timeout))?
        } else {
            stdout.read(&mut chunk).await
        };
        let n = read.map_err(|e| ReadError::Camera(format!("reading ffmpeg's output: {e}")))?;
        if n == 0 {
            break;
        }
        splitter.push(&chunk[..n]);
        while let Some(bytes) = splitter.next_frame() {
            let position = if live {
                Position::Live
            } else {
                let this = index;
                index += 1;
                if resume.after_index.is_some_and(|last| this <= last) {
                    continue; // analysed before a restart
                }
                resume.after_index = Some(this);
                Position::VideoIndex(this)
            };
            slot.put(Frame { bytes, time_ms: now_ms(), position }).await;
        }
    }
    let status = child.wait().await.map_err(|e| ReadError::Camera(format!("waiting for ffmpeg: {e}")))?;
    let said = errors.await.unwrap_or_default();
    match (status.success(), live) {
        (true, false) => Ok(Ended::Done),
        (true, true) => Ok(Ended::Closed),
        (false, _) => Err(ReadError::Camera(format!("ffmpeg on {input} failed ({status}): {said}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(fill: u8, len: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend(std::iter::repeat_n(fill, len));
        v.extend([0xFF, 0xD9]);
        v
    }

    #[test]
    fn frames_split_wherever_the_pipe_cuts() {
        let stream: Vec<u8> = [jpeg(1, 10), jpeg(2, 0), jpeg(0xFF, 7)].concat();
        for cut in 1..stream.len() {
            let mut s = JpegSplitter::default();
            let mut frames = Vec::new();
            for piece in stream.chunks(cut) {
                s.push(piece);
                while let Some(f) = s.next_frame() {
                    frames.push(f.to_vec());
                }
            }
            assert_eq!(frames, vec![jpeg(1, 10), jpeg(2, 0), jpeg(0xFF, 7)], "pieces of {cut}");
        }
    }

    #[test]
    fn arguments_ask_for_jpegs_and_thin_video_files_by_interval() {
        let settings = ReaderSettings {
            interval: std::time::Duration::from_millis(500),
            ffmpeg: "ffmpeg".into(),
            backoff: connect_kit::BackoffPolicy::constant(std::time::Duration::from_secs(1)),
            read_timeout: std::time::Duration::from_secs(10),
        };
        let file = arguments("/v/clip.mp4", false, &settings).join(" ");
        assert!(file.contains("-i /v/clip.mp4 -vf fps=2 -f image2pipe -vcodec mjpeg"), "{file}");
        let rtsp = arguments("rtsp://cam/stream", true, &settings).join(" ");
        assert!(rtsp.contains("-rtsp_transport tcp -i rtsp://cam/stream -f image2pipe"), "{rtsp}");
    }
}
