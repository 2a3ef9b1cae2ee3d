//! STOMP 1.0–1.2 frames and their codec (tokio-util `Decoder`/`Encoder`), written here because the only
//! STOMP crate with recent releases is EUPL-licensed.
//!
//! What the codec guarantees, whatever the bytes (fuzzed in the tests below):
//! - it never panics and never allocates past `max_frame_bytes` for one frame;
//! - a lone EOL between frames is a heart-beat ([`Item::Heartbeat`]), so the session sees a live broker;
//! - a body is taken by `content-length` when given (it may hold NULs), else up to the first NUL;
//! - headers are unescaped as the negotiated version says (1.1: `\n \c \\`; 1.2 adds `\r`; 1.0 and the
//!   CONNECT/CONNECTED frames: none); the first of repeated headers wins;
//! - a first frame that is not STOMP is [`FrameError::NotStomp`], naming what answered when it can tell
//!   (ActiveMQ's OpenWire, AMQP, HTTP), so a wrong port gives a clear error instead of a hang.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;
use tokio_util::codec::{Decoder, Encoder};

/// The negotiated protocol version: it decides header escaping and how messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    /// The `version` header of CONNECTED; a 1.0 broker sends none.
    pub fn from_header(value: Option<&str>) -> Version {
        match value.map(str::trim) {
            Some("1.2") => Version::V1_2,
            Some("1.1") => Version::V1_1,
            _ => Version::V1_0,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        })
    }
}

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    /// In wire order, unescaped; the first of a repeated name is the one that counts ([`Frame::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Frame {
    pub fn new(command: &str) -> Self {
        Frame { command: command.to_string(), headers: Vec::new(), body: Bytes::new() }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Headers with repeats removed (the first wins), in wire order.
    pub fn distinct_headers(&self) -> impl Iterator<Item = &(String, String)> {
        self.headers.iter().enumerate().filter(|(i, (k, _))| !self.headers[..*i].iter().any(|(seen, _)| seen == k)).map(|(_, h)| h)
    }
}

/// What the decoder yields: a frame, or a heart-beat (a lone EOL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Frame(Frame),
    Heartbeat,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the server does not speak STOMP: it answered with {0}")]
    NotStomp(String),
    #[error("a STOMP frame exceeds {limit} bytes (stomp.max.frame.bytes)")]
    TooLarge { limit: usize },
    #[error("malformed STOMP frame: {0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The longest command line plus header section we accept before the body.
const MAX_HEADER_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub struct StompCodec {
    version: Version,
    max_frame_bytes: usize,
    /// How much of the buffer was already searched for the NUL that ends a body without content-length,
    /// so a large body arriving in many reads is scanned once, not once per read.
    scanned: usize,
    /// Until the first frame arrived, bytes that are not STOMP mean the wrong protocol, not a broken frame.
    seen_frame: bool,
}

impl StompCodec {
    pub fn new(max_frame_bytes: usize) -> Self {
        StompCodec { version: Version::V1_0, max_frame_bytes, scanned: 0, seen_frame: false }
    }
    /// Set after CONNECTED: escaping follows the negotiated version from then on.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }
    pub fn version(&self) -> Version {
        self.version
    }

    fn escapes(&self, command: &str) -> bool {
        self.version >= Version::V1_1 && command != "CONNECT" && command != "CONNECTED" && command != "STOMP"
    }
}

/// Name what answered instead of STOMP, from its first bytes.
pub fn describe_foreign(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(64)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if has(b"ActiveMQ") {
        "ActiveMQ's OpenWire protocol (its JMS client port, usually 61616)".to_string()
    } else if head.starts_with(b"AMQP") {
        "AMQP (usually port 5672)".to_string()
    } else if head.starts_with(b"HTTP/") {
        "HTTP".to_string()
    } else if head.first() == Some(&0x20) && head.len() >= 2 && head[1] == 2 {
        "MQTT (a CONNACK)".to_string()
    } else {
        let hex: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("bytes that are not a STOMP frame (first bytes: {})", hex.join(" "))
    }
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..].iter().position(|&b| b == b'\n').map(|p| from + p)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn unescape(raw: &str, version: Version) -> Result<String, FrameError> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some('r') if version >= Version::V1_2 => out.push('\r'),
            other => {
                return Err(FrameError::Malformed(format!("undefined escape sequence \\{}", other.map(String::from).unwrap_or_default())))
            }
        }
    }
    Ok(out)
}

fn escape_into(out: &mut BytesMut, value: &str, version: Version) {
    for b in value.bytes() {
        match b {
            b'\n' => out.put_slice(b"\\n"),
            b':' => out.put_slice(b"\\c"),
            b'\\' => out.put_slice(b"\\\\"),
            b'\r' if version >= Version::V1_2 => out.put_slice(b"\\r"),
            other => out.put_u8(other),
        }
    }
}

impl Decoder for StompCodec {
    type Item = Item;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FrameError> {
        // Heart-beats: EOLs between frames.
        match buf.first() {
            None => return Ok(None),
            Some(b'\n') => {
                buf.advance(1);
                return Ok(Some(Item::Heartbeat));
            }
            Some(b'\r') => {
                return match buf.get(1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        buf.advance(2);
                        Ok(Some(Item::Heartbeat))
                    }
                    Some(_) => Err(self.foreign_or_malformed(buf, "a CR not followed by LF")),
                };
            }
            Some(b) if !b.is_ascii_uppercase() => return Err(self.foreign_or_malformed(buf, "a frame that does not start with a command")),
            Some(_) => {}
        }
        // A command is upper-case letters: anything else, even before the line is complete, is another protocol
        // (AMQP's greeting starts with 'A' and holds no newline).
        let command_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
        if !strip_cr(&buf[..command_end]).iter().all(u8::is_ascii_uppercase) {
            return Err(self.foreign_or_malformed(buf, "a command that is not upper-case letters"));
        }
        // The command line and headers end at an empty line.
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0;
        let body_start = loop {
            let Some(end) = line_end(buf, pos) else {
                if buf.len() > MAX_HEADER_BYTES.min(self.max_frame_bytes) {
                    return Err(if self.seen_frame {
                        FrameError::TooLarge { limit: self.max_frame_bytes }
                    } else {
                        FrameError::NotStomp(describe_foreign(buf))
                    });
                }
                return Ok(None);
            };
            let line = strip_cr(&buf[pos..end]);
            if line.is_empty() {
                if lines.is_empty() {
                    return Err(FrameError::Malformed("empty command".into()));
                }
                break end + 1;
            }
            lines.push((pos, pos + line.len()));
            pos = end + 1;
            if pos > MAX_HEADER_BYTES {
                return Err(FrameError::TooLarge { limit: MAX_HEADER_BYTES });
            }
        };
        let (cs, ce) = lines[0];
        let command = &buf[cs..ce];
        if !command.iter().all(u8::is_ascii_uppercase) {
            return Err(self.foreign_or_malformed(buf, "a command that is not upper-case letters"));
        }
        let command = String::from_utf8_lossy(command).into_owned();
        let escapes = self.escapes(&command);
        let mut headers = Vec::with_capacity(lines.len() - 1);
        for &(s, e) in &lines[1..] {
            let line =
                std::str::from_utf8(&buf[s..e]).map_err(|_| FrameError::Malformed(format!("{command}: a header that is not UTF-8")))?;
            let (name, value) =
                line.split_once(':').ok_or_else(|| FrameError::Malformed(format!("{command}: header line without ':': {line:?}")))?;
            let (name, value) = if escapes {
                (unescape(name, self.version)?, unescape(value, self.version)?)
            } else {
                (name.to_string(), value.to_string())
            };
            headers.push((name, value));
        }
        let content_length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.trim().parse::<usize>().map_err(|_| FrameError::Malformed(format!("{command}: content-length {v:?}"))))
            .transpose()?;
        let (body_end, frame_end) = match content_length {
            Some(len) => {
                if len > self.max_frame_bytes {
                    return Err(FrameError::TooLarge { limit: self.max_frame_bytes });
                }
                let end = body_start + len;
                if buf.len() <= end {
                    buf.reserve(end + 1 - buf.len());
                    return Ok(None);
                }
                if buf[end] != 0 {
                    return Err(FrameError::Malformed(format!("{command}: no NUL after content-length {len} bytes")));
                }
                (end, end + 1)
            }
            None => {
                let from = body_start.max(self.scanned);
                match buf[from..].iter().position(|&b| b == 0) {
                    Some(p) => (from + p, from + p + 1),
                    None => {
                        if buf.len() - body_start > self.max_frame_bytes {
                            return Err(FrameError::TooLarge { limit: self.max_frame_bytes });
                        }
                        self.scanned = buf.len();
                        return Ok(None);
                    }
                }
            }
        };
        let mut frame_bytes = buf.split_to(frame_end);
        frame_bytes.truncate(body_end);
        let body = frame_bytes.split_off(body_start).freeze();
        self.seen_frame = true;
        self.scanned = 0;
        Ok(Some(Item::Frame(Frame { command, headers, body })))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FrameError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() => Ok(None),
            None => Err(self.leftover_at_eof(buf)),
        }
    }
}

impl StompCodec {
    /// The connection ended: a partial frame left over is an error, and before any frame it tells what
    /// answered.
    fn leftover_at_eof(&self, buf: &BytesMut) -> FrameError {
        if self.seen_frame {
            FrameError::Malformed(format!("the connection closed inside a frame ({} bytes)", buf.len()))
        } else {
            FrameError::NotStomp(describe_foreign(buf))
        }
    }

    fn foreign_or_malformed(&self, buf: &[u8], what: &str) -> FrameError {
        if self.seen_frame {
            FrameError::Malformed(what.to_string())
        } else {
            FrameError::NotStomp(describe_foreign(buf))
        }
    }
}

impl Encoder<Item> for StompCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Item, out: &mut BytesMut) -> Result<(), FrameError> {
        let frame = match item {
            Item::Heartbeat => {
                out.put_u8(b'\n');
                return Ok(());
            }
            Item::Frame(frame) => frame,
        };
        let escapes = self.escapes(&frame.command);
        out.reserve(frame.command.len() + frame.body.len() + 64 * frame.headers.len() + 4);
        out.put_slice(frame.command.as_bytes());
        out.put_u8(b'\n');
        for (name, value) in &frame.headers {
            if escapes {
                escape_into(out, name, self.version);
                out.put_u8(b':');
                escape_into(out, value, self.version);
            } else {
                out.put_slice(name.as_bytes());
                out.put_u8(b':');
                out.put_slice(value.as_bytes());
            }
            out.put_u8(b'\n');
        }
        if !frame.body.is_empty() && !frame.headers.iter().any(|(k, _)| k == "content-length") {
            out.put_slice(format!("content-length:{}\n", frame.body.len()).as_bytes());
        }
        out.put_u8(b'\n');
        out.put_slice(&frame.body);
        out.put_u8(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(codec: &mut StompCodec, bytes: &[u8]) -> Result<Vec<Item>, FrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut items = Vec::new();
        while let Some(item) = codec.decode(&mut buf)? {
            items.push(item);
        }
        Ok(items)
    }

    fn v12() -> StompCodec {
        let mut c = StompCodec::new(1 << 20);
        c.set_version(Version::V1_2);
        c.seen_frame = true;
        c
    }

    #[test]
    fn a_message_with_heartbeats_around_it() {
        let wire = b"\n\r\nMESSAGE\r\ndestination:/topic/TRAIN_MVT_EA_TOC\nmessage-id:ID\\cabc-1\ncontent-type:text/plain\n\n[{\"header\":{}}]\0\n";
        let items = decode_all(&mut v12(), wire).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], Item::Heartbeat);
        assert_eq!(items[1], Item::Heartbeat);
        let Item::Frame(f) = &items[2] else { panic!() };
        assert_eq!(f.command, "MESSAGE");
        assert_eq!(f.get("message-id"), Some("ID:abc-1"), "\\c is a colon in 1.1+");
        assert_eq!(f.get("destination"), Some("/topic/TRAIN_MVT_EA_TOC"));
        assert_eq!(&f.body[..], b"[{\"header\":{}}]");
        assert_eq!(items[3], Item::Heartbeat);
    }

    #[test]
    fn content_length_bodies_may_hold_nul_and_arrive_in_pieces() {
        let wire = b"MESSAGE\ncontent-length:5\nmessage-id:1\n\na\0b\0c\0";
        let mut codec = v12();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in wire.iter() {
            buf.put_u8(b);
            if let Some(item) = codec.decode(&mut buf).unwrap() {
                got = Some(item);
            }
        }
        let Some(Item::Frame(f)) = got else { panic!("no frame") };
        assert_eq!(&f.body[..], b"a\0b\0c");
        assert!(buf.is_empty());
    }

    #[test]
    fn first_header_wins_and_version_1_0_does_not_unescape() {
        let mut c = StompCodec::new(1024);
        let items = decode_all(&mut c, b"MESSAGE\nfoo:a\\cb\nfoo:second\n\n\0").unwrap();
        let Item::Frame(f) = &items[0] else { panic!() };
        assert_eq!(f.get("foo"), Some("a\\cb"));
        assert_eq!(f.distinct_headers().count(), 1);
    }

    #[test]
    fn openwire_amqp_and_http_are_named() {
        // ActiveMQ's WireFormatInfo: size, type 1, magic.
        let mut openwire = vec![0, 0, 1, 0x3c, 1];
        openwire.extend_from_slice(b"ActiveMQ\0\0\0\x0c");
        let err = decode_all(&mut StompCodec::new(1024), &openwire).unwrap_err();
        assert!(matches!(&err, FrameError::NotStomp(w) if w.contains("OpenWire")), "{err}");
        let err = decode_all(&mut StompCodec::new(1024), b"AMQP\0\0\x09\x01").unwrap_err();
        assert!(matches!(&err, FrameError::NotStomp(w) if w.contains("AMQP")), "{err}");
        let mut codec = StompCodec::new(1024);
        let mut buf = BytesMut::from(&b"CONNEC"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "a partial command waits for more");
        assert!(matches!(codec.decode_eof(&mut buf).unwrap_err(), FrameError::NotStomp(_)), "and is no STOMP at EOF");
        let err = decode_all(&mut StompCodec::new(1024), b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err();
        assert!(err.to_string().contains("HTTP"), "{err}");
    }

    #[test]
    fn limits_hold() {
        let err = decode_all(&mut v12(), b"MESSAGE\ncontent-length:99999999\n\n").unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        let mut c = StompCodec::new(16);
        c.seen_frame = true;
        let err = decode_all(&mut c, b"MESSAGE\n\n01234567890123456789").unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert!(matches!(decode_all(&mut v12(), b"MESSAGE\nno colon\n\n\0").unwrap_err(), FrameError::Malformed(_)));
    }

    #[test]
    fn encoding_escapes_and_sets_content_length() {
        let mut c = v12();
        let mut out = BytesMut::new();
        let f = Frame::new("SEND").header("destination", "/queue/a:b").header("x", "line\nbreak").with_body(&b"x\0y"[..]);
        c.encode(Item::Frame(f.clone()), &mut out).unwrap();
        assert_eq!(&out[..], b"SEND\ndestination:/queue/a\\cb\nx:line\\nbreak\ncontent-length:3\n\nx\0y\0");
        let back = decode_all(&mut c, &out).unwrap();
        let Item::Frame(mut g) = back[0].clone() else { panic!() };
        g.headers.retain(|(k, _)| k != "content-length");
        assert_eq!(g, f);
        // CONNECT is never escaped.
        let mut out = BytesMut::new();
        c.encode(Item::Frame(Frame::new("CONNECT").header("passcode", "a:b")), &mut out).unwrap();
        assert_eq!(&out[..], b"CONNECT\npasscode:a:b\n\n\0");
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let name = "[a-z][a-z0-9\\-:\\\\\n\r]{0,12}";
        let value = "[ -~\n\r\\\\:é]{0,24}";
        (
            prop::sample::select(vec!["MESSAGE", "RECEIPT", "ERROR", "SEND", "ACK"]),
            prop::collection::vec((name, value), 0..6),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(command, headers, body)| Frame {
                command: command.to_string(),
                headers: headers.into_iter().filter(|(k, _)| k != "content-length").collect(),
                body: Bytes::from(body),
            })
    }

    /// What a version can carry in headers: 1.0 has no escapes (no EOL in names or values, no colon in
    /// names), 1.1 none for CR.
    fn representable(frame: &Frame, version: Version) -> bool {
        frame.headers.iter().all(|(k, v)| match version {
            Version::V1_0 => !k.contains(['\n', '\r', ':']) && !v.contains(['\n', '\r']),
            Version::V1_1 => !k.contains('\r') && !v.contains('\r'),
            Version::V1_2 => true,
        })
    }

    proptest! {
        /// Whatever the bytes, in whatever pieces: no panic, and every error is a typed one.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), cut in 0usize..600, seen in any::<bool>()) {
            let mut codec = StompCodec::new(256);
            codec.seen_frame = seen;
            codec.set_version(Version::V1_2);
            let mut buf = BytesMut::new();
            let cut = cut.min(bytes.len());
            for piece in [&bytes[..cut], &bytes[cut..]] {
                buf.extend_from_slice(piece);
                while let Ok(Some(_)) = codec.decode(&mut buf) {}
            }
        }

        /// Frames encoded and decoded back are the same, in any version, split anywhere on the wire.
        #[test]
        fn frames_round_trip(frames in prop::collection::vec(arb_frame(), 1..5), version in 0usize..3, split in 0usize..2000) {
            let version = [Version::V1_0, Version::V1_1, Version::V1_2][version];
            let frames: Vec<Frame> = frames.into_iter().filter(|f| representable(f, version)).collect();
            let mut codec = StompCodec::new(1 << 20);
            codec.set_version(version);
            let mut wire = BytesMut::new();
            for f in &frames {
                codec.encode(Item::Frame(f.clone()), &mut wire).unwrap();
                codec.encode(Item::Heartbeat, &mut wire).unwrap();
            }
            let wire = wire.freeze();
            let split = split.min(wire.len());
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(piece);
                while let Some(item) = codec.decode(&mut buf).unwrap() {
                    if let Item::Frame(mut f) = item {
                        f.headers.retain(|(k, _)| k != "content-length");
                        got.push(f);
                    }
                }
            }
            prop_assert_eq!(got, frames);
        }
    }
}
