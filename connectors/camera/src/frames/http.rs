//! HTTP cameras: an MJPEG stream (`multipart/x-mixed-replace`, a JPEG a part, see [`super::mjpeg`]) or a
//! snapshot URL (one image per GET). Which one is decided by the answer's Content-Type, so one key serves
//! both. Credentials go in the URL (`http://user:password@camera/`), as camera apps write them.

use super::mjpeg::MultipartSplitter;
use super::{now_ms, Ended, Frame, FrameSlot, Position, ReadError, ReaderSettings};
use reqwest::header::CONTENT_TYPE;

pub fn client(settings: &ReaderSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().connect_timeout(settings.read_timeout).read_timeout(settings.read_timeout).build()
}

fn camera_error(url: &str, e: impl std::fmt::Display) -> ReadError {
    ReadError::Camera(format!("{url}: {e}"))
}

fn from_reqwest(url: &str, e: reqwest::Error, settings: &ReaderSettings) -> ReadError {
    if e.is_timeout() {
        ReadError::Silent(settings.read_timeout)
    } else {
        camera_error(url, format!("{e:#}"))
    }
}

/// The `boundary` parameter of a multipart Content-Type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// One session with the camera: GET, then read parts (MJPEG) or ask again once the detector took the
/// snapshot (or after `frame.interval.ms`).
pub async fn read(client: &reqwest::Client, url: &str, slot: &FrameSlot, settings: &ReaderSettings) -> Result<Ended, ReadError> {
    loop {
        let response = client.get(url).send().await.map_err(|e| from_reqwest(url, e, settings))?;
        let status = response.status();
        if !status.is_success() {
            return Err(camera_error(url, format!("answered {status}")));
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if content_type.to_ascii_lowercase().starts_with("multipart/") {
            let boundary = boundary_of(&content_type)
                .ok_or_else(|| camera_error(url, format!("a multipart answer without a boundary ({content_type})")))?;
            return read_mjpeg(url, response, boundary, slot, settings).await;
        }
        let bytes = response.bytes().await.map_err(|e| from_reqwest(url, e, settings))?;
        slot.put(Frame { bytes, time_ms: now_ms(), position: Position::Live }).await;
        if settings.interval.is_zero() {
            slot.wait_taken().await;
        } else {
            tokio::time::sleep(settings.interval).await;
        }
    }
}

async fn read_mjpeg(
    url: &str,
    mut response: reqwest::Response,
    boundary: String,
    slot: &FrameSlot,
    settings: &ReaderSettings,
) -> Result<Ended, ReadError> {
    let mut parts = MultipartSplitter::new(&boundary);
    loop {
        let Some(chunk) = response.chunk().await.map_err(|e| from_reqwest(url, e, settings))? else {
            return Ok(Ended::Closed);
        };
        parts.push(&chunk);
        while let Some(bytes) = parts.next_part().map_err(|e| camera_error(url, format!("the MJPEG stream broke: {e}")))? {
            slot.put(Frame { bytes, time_ms: now_ms(), position: Position::Live }).await;
        }
        if parts.ended() {
            return Ok(Ended::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_with_and_without_quotes() {
        assert_eq!(boundary_of("multipart/x-mixed-replace; boundary=frame").as_deref(), Some("frame"));
        assert_eq!(boundary_of("multipart/x-mixed-replace;boundary=\"--my b\"").as_deref(), Some("--my b"));
        assert_eq!(boundary_of("multipart/x-mixed-replace"), None);
    }
}
