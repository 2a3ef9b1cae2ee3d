//! A response body as a stream of lines, decompressed on the fly: gzip whether the server announced it
//! (`Content-Encoding`, which reqwest decodes) or only the file is gzip (a `.gz` download: recognised by its
//! magic bytes, multi-member files included). Nothing is held beyond the line being read and one line of
//! lookahead, each at most a set number of bytes, so a body of any size goes through in flat memory.

use async_compression::tokio::bufread::GzipDecoder;
use futures::TryStreamExt;
use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

type Reader = Box<dyn AsyncBufRead + Send + Unpin>;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The body as bytes, gunzipped if it is a gzip file, and whether it was. `sniff: false` for the rest of a
/// body asked for with `Range`, whose first bytes are not a file's start.
pub async fn open(response: reqwest::Response, sniff: bool) -> io::Result<(Reader, bool)> {
    let stream = response.bytes_stream().map_err(io::Error::other);
    let mut raw = StreamReader::new(stream);
    if !sniff {
        return Ok((Box::new(BufReader::with_capacity(64 * 1024, raw)), false));
    }
    // The first two bytes tell a gzip file, however the body is cut into chunks; they are put back in front.
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    let whole = BufReader::with_capacity(64 * 1024, std::io::Cursor::new(head[..got].to_vec()).chain(raw));
    if head[..got] == GZIP_MAGIC {
        let mut decoder = GzipDecoder::new(whole);
        decoder.multiple_members(true);
        Ok((Box::new(BufReader::with_capacity(64 * 1024, decoder)), true))
    } else {
        Ok((Box::new(whole), false))
    }
}

/// Read a whole body (a json document), refusing one over `limit` bytes.
pub async fn read_all(mut reader: Reader, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    (&mut reader).take(limit + 1).read_to_end(&mut out).await?;
    if out.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "the response is larger than {limit} bytes (http.response.max.bytes); use jsonl or lines to stream it"
        )));
    }
    Ok(out)
}

/// Lines of a body, without their `\n` / `\r\n`, with one line of lookahead so the last line is known as
/// such when it is handed out. A line longer than the limit keeps its first `limit` bytes and is marked.
pub struct Lines {
    reader: Reader,
    /// The lookahead: a line, whether it was cut, and its length in the body with its end of line.
    next: Option<(Vec<u8>, bool, u64)>,
    started: bool,
    limit: usize,
    /// Bytes of the body up to the end of the last line handed out.
    consumed: u64,
}

impl Lines {
    pub fn new(reader: Reader, limit: usize) -> Self {
        Lines { reader, next: None, started: false, limit: limit.max(1), consumed: 0 }
    }

    /// Bytes of the body through the last line [`Lines::next`] returned, line ends included.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line, whether it was longer than the limit (the rest of it is read and dropped), and its
    /// length in the body.
    async fn read_line(&mut self) -> io::Result<Option<(Vec<u8>, bool, u64)>> {
        let mut line = Vec::new();
        let (mut any, mut overlong, mut raw) = (false, false, 0u64);
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = self.limit + 2 - line.len().min(self.limit + 2);
            line.extend_from_slice(&buf[..take.min(room)]);
            overlong |= take > room;
            raw += take as u64;
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() > self.limit {
            line.truncate(self.limit);
            overlong = true;
        }
        Ok(Some((line, overlong, raw)))
    }

    /// The next line, whether it is the body's last, and whether it was cut at the limit.
    pub async fn next(&mut self) -> io::Result<Option<(Vec<u8>, bool, bool)>> {
        if !self.started {
            self.started = true;
            self.next = self.read_line().await?;
        }
        let Some((line, overlong, raw)) = self.next.take() else { return Ok(None) };
        self.consumed += raw;
        self.next = self.read_line().await?;
        Ok(Some((line, self.next.is_none(), overlong)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Box::new(BufReader::new(bytes))
    }

    #[tokio::test]
    async fn lines_know_the_last_one() {
        let mut lines = Lines::new(reader(b"a\r\nb\n\nc"), 100);
        let mut got = Vec::new();
        while let Some((line, last, overlong)) = lines.next().await.unwrap() {
            assert!(!overlong);
            got.push((String::from_utf8(line).unwrap(), last, lines.consumed()));
        }
        assert_eq!(got, vec![("a".into(), false, 3), ("b".into(), false, 5), ("".into(), false, 6), ("c".into(), true, 7)]);
        let mut trailing = Lines::new(reader(b"x\n"), 100);
        assert_eq!(trailing.next().await.unwrap(), Some((b"x".to_vec(), true, false)));
        assert_eq!(trailing.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_overlong_line_is_cut_and_marked_and_the_next_one_is_whole() {
        let mut lines = Lines::new(reader(b"0123456789\nok\n"), 4);
        assert_eq!(lines.next().await.unwrap(), Some((b"0123".to_vec(), false, true)));
        assert_eq!(lines.consumed(), 11, "the dropped rest of the line counts");
        assert_eq!(lines.next().await.unwrap(), Some((b"ok".to_vec(), true, false)));
    }

    #[tokio::test]
    async fn read_all_has_a_limit() {
        assert_eq!(read_all(reader(b"12345"), 5).await.unwrap(), b"12345");
        assert!(read_all(reader(b"123456"), 5).await.is_err());
    }
}
