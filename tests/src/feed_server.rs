//! A local HTTP server standing in for a data feed (a car-park CSV, a JSON API, a daily gzip file): it
//! serves each path's current content with its ETag and Last-Modified, answers conditional requests with
//! 304, can throttle with 429 + Retry-After, streams files from disk (with `Range: bytes=N-` and `If-Range` when
//! asked to), and records every request.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a path serves.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub body: Vec<u8>,
    /// Stream this file instead of `body`.
    pub file: Option<PathBuf>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Send `Content-Encoding: gzip` (the body must be gzip then).
    pub gzip_encoding: bool,
    pub content_type: String,
    /// Answer `Range: bytes=N-` with 206 and the rest (when `If-Range` is absent or matches); else ignore it.
    pub ranges: bool,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct FeedRequest {
    pub path: String,
    pub query: Option<String>,
    pub if_none_match: Option<String>,
    /// The `Range` header asked for.
    pub range: Option<String>,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    contents: Mutex<HashMap<String, Content>>,
    requests: Mutex<Vec<FeedRequest>>,
    /// Answer this many requests with 429 and this Retry-After.
    throttle: Mutex<(usize, String)>,
}

pub struct FeedServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

async fn handle(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let if_none_match = headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_string);
    let if_modified_since = headers.get("if-modified-since").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (range, if_range) = (text("range"), text("if-range"));
    let mut record = FeedRequest {
        path: path.clone(),
        query: uri.query().map(str::to_string),
        if_none_match: if_none_match.clone(),
        range: range.clone(),
        status: 200,
        at: Instant::now(),
    };
    let response = 'answer: {
        {
            let mut throttle = s.throttle.lock().unwrap();
            if throttle.0 > 0 {
                throttle.0 -= 1;
                break 'answer (StatusCode::TOO_MANY_REQUESTS, [("retry-after", throttle.1.clone())], "slow down").into_response();
            }
        }
        let Some(content) = s.contents.lock().unwrap().get(&path).cloned() else {
            break 'answer (StatusCode::NOT_FOUND, "no such feed").into_response();
        };
        let unchanged = match (&content.etag, &if_none_match) {
            (Some(e), Some(i)) => e == i,
            _ => matches!((&content.last_modified, &if_modified_since), (Some(l), Some(i)) if l == i),
        };
        let mut builder = Response::builder().status(if unchanged { 304 } else { 200 });
        if let Some(e) = &content.etag {
            builder = builder.header("etag", e);
        }
        if let Some(l) = &content.last_modified {
            builder = builder.header("last-modified", l);
        }
        if unchanged {
            break 'answer builder.body(Body::empty()).unwrap();
        }
        if content.gzip_encoding {
            builder = builder.header("content-encoding", "gzip");
        }
        builder = builder
            .header("content-type", if content.content_type.is_empty() { "application/octet-stream" } else { &content.content_type });
        // `bytes=N-` only (what the source asks), honoured if `If-Range` names the current content.
        let start = range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<u64>().ok());
        let still_same = if_range.as_ref().is_none_or(|v| content.etag.as_ref() == Some(v) || content.last_modified.as_ref() == Some(v));
        let start = start.filter(|_| content.ranges && still_same);
        match &content.file {
            Some(path) => {
                use tokio::io::AsyncSeekExt;
                let mut file = tokio::fs::File::open(path).await.expect("the feed file");
                let length = file.metadata().await.unwrap().len();
                if let Some(start) = start {
                    if start >= length {
                        break 'answer (StatusCode::RANGE_NOT_SATISFIABLE, [("content-range", format!("bytes */{length}"))])
                            .into_response();
                    }
                    file.seek(std::io::SeekFrom::Start(start)).await.unwrap();
                    builder = builder.status(206).header("content-range", format!("bytes {start}-{}/{length}", length - 1));
                }
                builder = builder.header("content-length", length - start.unwrap_or(0));
                builder.body(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))).unwrap()
            }
            None => builder.body(Body::from(content.body.clone())).unwrap(),
        }
    };
    record.status = response.status().as_u16();
    s.requests.lock().unwrap().push(record);
    response
}

impl FeedServer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(any(handle)).with_state(shared.clone());
        let address = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        FeedServer { shared, address, _runtime: runtime }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Serve `content` at `path` from now on.
    pub fn set(&self, path: &str, content: Content) {
        self.shared.contents.lock().unwrap().insert(path.to_string(), content);
    }

    /// Answer the next `count` requests with 429 and `Retry-After: retry_after`.
    pub fn throttle(&self, count: usize, retry_after: &str) {
        *self.shared.throttle.lock().unwrap() = (count, retry_after.to_string());
    }

    pub fn requests(&self) -> Vec<FeedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests to `path` were answered with `status`.
    pub fn answered(&self, path: &str, status: u16) -> usize {
        self.shared.requests.lock().unwrap().iter().filter(|r| r.path == path && r.status == status).count()
    }
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Lines of a rail schedule as JSON (`{"seq":N,"JsonScheduleV1":{...}}`, ~200 bytes each), `bytes` of them,
/// gzipped into `path`; returns the line count. For the big-file test and `scripts/bench http-source`.
pub fn write_schedule(path: &std::path::Path, bytes: usize) -> usize {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let n = schedule_lines(&mut gz, bytes);
    use std::io::Write;
    gz.finish().unwrap().flush().unwrap();
    n
}

/// The same lines as [`write_schedule`], not compressed.
pub fn write_schedule_plain(path: &std::path::Path, bytes: usize) -> usize {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let n = schedule_lines(&mut file, bytes);
    file.flush().unwrap();
    n
}

fn schedule_lines(out: &mut impl std::io::Write, bytes: usize) -> usize {
    let (mut written, mut n) = (0, 0);
    while written < bytes {
        let line = format!(
            "{{\"seq\":{n},\"JsonScheduleV1\":{{\"CIF_train_uid\":\"C{:05}\",\"schedule_start_date\":\"2026-12-06\",\"train_status\":\"P\",\"schedule_segment\":{{\"signalling_id\":\"1A{:02}\",\"CIF_train_category\":\"XX\",\"CIF_speed\":\"125\"}}}}}}\n",
            n % 100_000,
            n % 100
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
    n
}
