//! A response body as a stream of lines, decompressed on the fly: gzip whether the server announced it
//! (`Content-Encoding`, which reqwest decodes) or only the file is gzip (a `.gz` download: recognised by its
//! magic bytes, multi-member files included). Nothing is held beyond the line being read and one line of
//! lookahead, so a body of any size goes through in flat memory.

use async_compression::tokio::bufread::GzipDecoder;
use futures::TryStreamExt;
use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

type Reader = Box<dyn AsyncBufRead + Send + Unpin>;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The body as bytes, gunzipped if it is a gzip file.
pub async fn open(response: reqwest::Response) -> io::Result<Reader> {
    let stream = response.bytes_stream().map_err(io::Error::other);
    let mut raw = BufReader::with_capacity(64 * 1024, StreamReader::new(stream));
    // The first bytes tell a gzip file (the first chunk of a response is never shorter than its header in
    // practice; a one-byte chunk would only make a gzip file read as text, which its lines then show).
    let head = raw.fill_buf().await?;
    if head.starts_with(&GZIP_MAGIC) {
        let mut decoder = GzipDecoder::new(raw);
        decoder.multiple_members(true);
        Ok(Box::new(BufReader::with_capacity(64 * 1024, decoder)))
    } else {
        Ok(Box::new(raw))
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
/// such when it is handed out.
pub struct Lines {
    reader: Reader,
    next: Option<Vec<u8>>,
    started: bool,
}

impl Lines {
    pub fn new(reader: Reader) -> Self {
        Lines { reader, next: None, started: false }
    }

    async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    /// The next line and whether it is the body's last.
    pub async fn next(&mut self) -> io::Result<Option<(Vec<u8>, bool)>> {
        if !self.started {
            self.started = true;
            self.next = self.read_line().await?;
        }
        let Some(line) = self.next.take() else { return Ok(None) };
        self.next = self.read_line().await?;
        Ok(Some((line, self.next.is_none())))
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
        let mut lines = Lines::new(reader(b"a\r\nb\n\nc"));
        let mut got = Vec::new();
        while let Some((line, last)) = lines.next().await.unwrap() {
            got.push((String::from_utf8(line).unwrap(), last));
        }
        assert_eq!(got, vec![("a".into(), false), ("b".into(), false), ("".into(), false), ("c".into(), true)]);
        let mut trailing = Lines::new(reader(b"x\n"));
        assert_eq!(trailing.next().await.unwrap(), Some((b"x".to_vec(), true)));
        assert_eq!(trailing.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn read_all_has_a_limit() {
        assert_eq!(read_all(reader(b"12345"), 5).await.unwrap(), b"12345");
        assert!(read_all(reader(b"123456"), 5).await.is_err());
    }
}
