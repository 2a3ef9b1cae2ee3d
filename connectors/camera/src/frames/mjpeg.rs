//! MJPEG over HTTP (`multipart/x-mixed-replace`): the body is a MIME multipart stream that never ends, a
//! JPEG a part. A part is handed over as soon as it is complete: by its `Content-Length` when the camera
//! sends one (every common camera server does), else at the next delimiter.
//!
//! Written here rather than with multer (axum's multipart parser), because multer ignores `Content-Length`
//! and releases a part only when the next delimiter arrives: every frame would wait for the next one (a
//! frame's latency at 1 fps is a second), and the last frame before a camera pauses would never come.

use bytes::{Bytes, BytesMut};

/// A part larger than this is refused (a stream gone astray, not a camera).
pub const MAX_PART_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MultipartError {
    #[error("a part of more than {MAX_PART_BYTES} bytes")]
    TooLarge,
    #[error("a part's Content-Length is not a number: {0}")]
    BadLength(String),
}

pub struct MultipartSplitter {
    /// `--boundary`.
    delimiter: Vec<u8>,
    buffer: BytesMut,
    /// The stream said it ended (`--boundary--`).
    ended: bool,
    /// A part without Content-Length: how far its body was searched for the next delimiter.
    scanned: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl MultipartSplitter {
    pub fn new(boundary: &str) -> MultipartSplitter {
        // Some cameras put the leading dashes into the boundary parameter itself; the delimiter is then the
        // parameter as it is, which the search for "--" + it would miss.
        let delimiter = if boundary.starts_with("--") { boundary.as_bytes().to_vec() } else { format!("--{boundary}").into_bytes() };
        MultipartSplitter { delimiter, buffer: BytesMut::new(), ended: false, scanned: 0 }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next complete part's body, if one is complete.
    pub fn next_part(&mut self) -> Result<Option<Bytes>, MultipartError> {
        if self.ended {
            return Ok(None);
        }
        let Some(start) = find(&self.buffer, &self.delimiter) else {
            // Nothing but preamble (or the tail of an unterminated part): keep only what could begin a delimiter.
            let keep = self.delimiter.len().saturating_sub(1);
            if self.buffer.len() > keep {
                let _ = self.buffer.split_to(self.buffer.len() - keep);
            }
            return Ok(None);
        };
        let after = start + self.delimiter.len();
        if self.buffer.len() < after + 2 {
            return Ok(None);
        }
        if &self.buffer[after..after + 2] == b"--" {
            self.ended = true;
            return Ok(None);
        }
        // Headers end at an empty line; the delimiter line's own line end opens them.
        let Some(headers_end) = find(&self.buffer[after..], b"\r\n\r\n").map(|i| after + i + 4) else {
            return self.check_size(start);
        };
        let headers = String::from_utf8_lossy(&self.buffer[after..headers_end]).to_string();
        let length = headers.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().to_string())
        });
        let body_end = match length {
            Some(text) => {
                let n: usize = text.parse().map_err(|_| MultipartError::BadLength(text.clone()))?;
                if n > MAX_PART_BYTES {
                    return Err(MultipartError::TooLarge);
                }
                if self.buffer.len() < headers_end + n {
                    return Ok(None);
                }
                headers_end + n
            }
            None => {
                // The next delimiter, searched from where the last look stopped; the body ends before its line
                // break and before any extra dashes (a camera that put "--" into the boundary parameter and
                // still writes "--" + it).
                let from = self.scanned.max(headers_end);
                match find(&self.buffer[from..], &self.delimiter) {
                    Some(i) => {
                        let mut end = from + i;
                        while end > headers_end && self.buffer[end - 1] == b'-' {
                            end -= 1;
                        }
                        if end >= headers_end + 2 && &self.buffer[end - 2..end] == b"\r\n" {
                            end -= 2;
                        }
                        end
                    }
                    None => {
                        self.scanned = self.buffer.len().saturating_sub(self.delimiter.len()).max(headers_end);
                        return self.check_size(start);
                    }
                }
            }
        };
        self.scanned = 0;
        let mut part = self.buffer.split_to(body_end);
        Ok(Some(part.split_off(headers_end).freeze()))
    }

    fn check_size(&mut self, start: usize) -> Result<Option<Bytes>, MultipartError> {
        if self.buffer.len() - start > MAX_PART_BYTES + 64 * 1024 {
            return Err(MultipartError::TooLarge);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[&[u8]], with_length: bool) -> Vec<u8> {
        let mut s = b"preamble\r\n".to_vec();
        for p in parts {
            s.extend_from_slice(b"--frame\r\nContent-Type: image/jpeg\r\n");
            if with_length {
                s.extend_from_slice(format!("Content-Length: {}\r\n", p.len()).as_bytes());
            }
            s.extend_from_slice(b"\r\n");
            s.extend_from_slice(p);
            s.extend_from_slice(b"\r\n");
        }
        s
    }

    fn split(bytes: &[u8], piece: usize, boundary: &str) -> Vec<Vec<u8>> {
        let mut splitter = MultipartSplitter::new(boundary);
        let mut parts = Vec::new();
        for chunk in bytes.chunks(piece) {
            splitter.push(chunk);
            while let Some(p) = splitter.next_part().unwrap() {
                parts.push(p.to_vec());
            }
        }
        parts
    }

    const PARTS: [&[u8]; 3] = [b"\xFF\xD8one\r\n--fr\xFF\xD9", b"", b"\xFF\xD8three\xFF\xD9"];

    #[test]
    fn a_part_with_a_length_is_complete_without_waiting_for_the_next_delimiter() {
        let bytes = stream(&PARTS, true);
        for piece in 1..bytes.len() {
            assert_eq!(split(&bytes, piece, "frame"), PARTS.map(<[u8]>::to_vec).to_vec(), "pieces of {piece}");
        }
    }

    #[test]
    fn without_a_length_a_part_ends_at_the_next_delimiter() {
        let mut bytes = stream(&PARTS, false);
        bytes.extend_from_slice(b"--frame--\r\n");
        for piece in 1..bytes.len() {
            assert_eq!(split(&bytes, piece, "frame"), PARTS.map(<[u8]>::to_vec).to_vec(), "pieces of {piece}");
        }
    }

    #[test]
    fn a_boundary_parameter_with_dashes_and_delimiters_with_two_more_without_lengths() {
        // The parameter says "--frame"; the stream writes "--" + "--frame", parts without Content-Length.
        let mut bytes = Vec::new();
        for p in PARTS {
            bytes.extend_from_slice(b"----frame\r\nContent-Type: image/jpeg\r\n\r\n");
            bytes.extend_from_slice(p);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"----frame--\r\n");
        for piece in 1..bytes.len() {
            assert_eq!(split(&bytes, piece, "--frame"), PARTS.map(<[u8]>::to_vec).to_vec(), "pieces of {piece}");
        }
    }

    #[test]
    fn a_boundary_given_with_its_dashes_and_a_bad_length() {
        assert_eq!(split(&stream(&PARTS, true), 7, "--frame"), PARTS.map(<[u8]>::to_vec).to_vec());
        let mut s = MultipartSplitter::new("frame");
        s.push(b"--frame\r\nContent-Length: lots\r\n\r\nxx");
        assert_eq!(s.next_part(), Err(MultipartError::BadLength("lots".into())));
        let mut s = MultipartSplitter::new("frame");
        s.push(format!("--frame\r\nContent-Length: {}\r\n\r\n", MAX_PART_BYTES + 1).as_bytes());
        assert_eq!(s.next_part(), Err(MultipartError::TooLarge));
    }
}
