//! The feed source's connector and task: fetch the feed every `http.timer.interval.millis`, stream the
//! response into records a batch per `poll`, and remember in each record's offset what was sent, so that
//! neither a 304, nor a server that ignores conditional requests, nor a restart halfway through a file
//! sends anything twice.
//!
//! A fetch's life: `Wait` (until the next fetch; `poll` returns empty at least once a second) → request
//! (conditional when the last response was read to its end) → 304: `Wait` again; 2xx: `Stream` (jsonl,
//! lines) or `Items` (json) until the body is used up → `Wait`. Lines already sent from the same content
//! (same validators, or none, and the same CRC over them) are passed over; if their CRC differs, the
//! content changed under the same validators, and it is fetched again from the start. A body read part way
//! whose bytes can be counted (no content coding, not a gzip file) is resumed by asking for the rest only
//! (`Range` + `If-Range`); any other answer than the rest of the same content falls back to passing over.

use super::body::{self, Lines};
use super::config::{self as keys, Format};
use super::offset::{self, FeedOffset};
use connect_core::{
    async_trait, schemas, Config, ConfigDef, ConnectError, Connector, ConnectorContext, RecordData, Result, SourceConnector, SourceMap,
    SourceRecord, SourceTask, SourceTaskContext, Value,
};
use connect_kit::http::{Auth, HttpClient, HttpSettings};
use connect_kit::{backoff, Backoff, BackoffPolicy};
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

#[derive(Default)]
pub struct HttpSourceConnector {
    config: Config,
}

#[async_trait]
impl Connector for HttpSourceConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        keys::def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        keys::def().parse(&config)?;
        self.config = config;
        Ok(())
    }
    /// One feed, one task: two tasks polling the same URL would send everything twice.
    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone()])
    }
}

impl SourceConnector for HttpSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<HttpSourceTask>::default()
    }
}

/// The shortest wait between two fetches, whatever `http.timer.interval.millis` says: an unchanged feed
/// polled with 0 must not be asked without pause.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The task's settings, parsed once.
#[derive(Debug, Clone)]
struct Settings {
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
    params: String,
    body: String,
    conditional: bool,
    interval: Duration,
    format: Format,
    skip_lines: u64,
    list_pointer: String,
    record_pointer: String,
    offset_pointers: Vec<(String, String)>,
    initial_fields: serde_json::Map<String, Json>,
    dedup: bool,
    batch: usize,
    max_body: u64,
    topic: String,
    max_retries: i64,
}

enum Phase {
    /// Until the next fetch.
    Wait(Instant),
    Stream(Box<Stream>),
    Items(VecDeque<SourceRecord>),
}

/// A line-based response being read.
struct Stream {
    lines: Lines,
    /// This response's validators and how far it has been read.
    offset: FeedOffset,
    hasher: crc32fast::Hasher,
    /// Lines already sent from this content (by the offset restored or kept), passed over unsent...
    skip: u64,
    /// ...if their CRC is this one.
    expect_crc: u32,
    /// Where in the body this response starts (a `Range` answer's first byte, else 0).
    base: u64,
}

#[derive(Default)]
pub struct HttpSourceTask {
    settings: Option<Settings>,
    client: Option<HttpClient>,
    partition: Arc<SourceMap>,
    /// The feed as far as records were handed out (restored from the offset store at start).
    last: FeedOffset,
    /// The last content's lines did not match what `last` says was sent: fetch without skipping.
    from_start: bool,
    /// A `Range` request was not answered with the rest of the body: ask for whole bodies from now on.
    no_range: bool,
    phase: Option<Phase>,
    backoff: Option<Backoff>,
    /// Item hashes of the previous response and of the one being read (`http.response.dedup=item`).
    previous_items: HashSet<u64>,
    current_items: HashSet<u64>,
    /// Hashes for `dedup=item`, 64 bits so that millions of lines do not collide (kept in memory only).
    hasher: std::collections::hash_map::RandomState,
}

fn item_hash(hasher: &std::collections::hash_map::RandomState, bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    hasher.hash_one(bytes)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// An item's timestamp from its `timestamp` offset field: epoch milliseconds, or RFC 3339 text.
fn timestamp_of(fields: &serde_json::Map<String, Json>) -> Option<i64> {
    match fields.get("timestamp")? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()).or_else(|| s.parse().ok()),
        _ => None,
    }
}

fn key_of(fields: &serde_json::Map<String, Json>) -> Value {
    match fields.get("key") {
        None | Some(Json::Null) => Value::Null,
        Some(Json::String(s)) => Value::String(s.clone()),
        Some(other) => Value::String(other.to_string()),
    }
}

/// Order of two offset timestamps: numbers as numbers, RFC 3339 as instants, other text as text.
fn later(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() > y.as_f64(),
        (Json::String(x), Json::String(y)) => match (chrono::DateTime::parse_from_rfc3339(x), chrono::DateTime::parse_from_rfc3339(y)) {
            (Ok(x), Ok(y)) => x > y,
            _ => x > y,
        },
        _ => false,
    }
}

impl HttpSourceTask {
    fn settings(&self) -> &Settings {
        self.settings.as_ref().expect("started")
    }

    fn offset_fields(&self, item: &Json) -> serde_json::Map<String, Json> {
        self.settings()
            .offset_pointers
            .iter()
            .map(|(name, pointer)| (name.clone(), item.pointer(pointer).cloned().unwrap_or(Json::Null)))
            .collect()
    }

    fn record(&self, offset: &FeedOffset, key: Value, value: Value, timestamp: Option<i64>) -> SourceRecord {
        let schema = match value {
            Value::String(_) => Some(schemas::optional_string()),
            _ => None,
        };
        let data = RecordData::new(self.settings().topic.clone(), schema, value)
            .with_key(Some(schemas::optional_string()), key)
            .with_timestamp(Some(timestamp.unwrap_or_else(now_ms)));
        SourceRecord::new(self.partition.clone(), offset.to_map(), data)
    }

    fn unreadable(&self, offset: &FeedOffset, raw: Vec<u8>, why: String) -> SourceRecord {
        let data = RecordData::new(self.settings().topic.clone(), Some(schemas::optional_bytes()), Value::Bytes(raw.into()))
            .with_timestamp(Some(now_ms()));
        SourceRecord::unreadable(self.partition.clone(), offset.to_map(), data, why)
    }

    /// Try again after the server's `Retry-After` or our backoff; fail the task once `max.retries` is spent.
    fn retry_later(&mut self, what: String, server_delay: Option<Duration>) -> Result<()> {
        let backoff = self.backoff.as_mut().expect("started");
        let Some(delay) = backoff.next_delay_at_least(server_delay) else {
            return Err(ConnectError::fatal(format!(
                "{what}; giving up after {} attempts (http.response.max.retries)",
                backoff.attempts()
            )));
        };
        tracing::warn!(url = %self.settings().url, delay_ms = delay.as_millis() as u64, "{what}; fetching again later");
        self.phase = Some(Phase::Wait(Instant::now() + delay));
        Ok(())
    }

    fn request_url(&self) -> String {
        let s = self.settings();
        let fields = if self.last.fields.is_empty() { &s.initial_fields } else { &self.last.fields };
        let url = offset::render(&s.url, fields, true);
        let params = offset::render(&s.params, fields, true);
        if params.is_empty() {
            url
        } else if url.contains('?') {
            format!("{url}&{params}")
        } else {
            format!("{url}?{params}")
        }
    }

    /// One request; sets the next phase.
    async fn fetch(&mut self) -> Result<()> {
        let url = self.request_url();
        let s = self.settings().clone();
        let client = self.client.as_ref().expect("started");
        let mut request = client.request(s.method.clone(), &url).await.map_err(|e| ConnectError::fatal(e.to_string()))?;
        for (name, value) in &s.headers {
            request = request.header(name, value);
        }
        if s.method == Method::POST && !s.body.is_empty() {
            let fields = if self.last.fields.is_empty() { &s.initial_fields } else { &self.last.fields };
            request = request.body(offset::render(&s.body, fields, false));
        }
        // A body read part way, of bytes we can count, from a server with a validator that vouches for them: ask
        // for the rest only, if it is still the same content (`If-Range`); otherwise the server sends it all.
        let range = self.range_start();
        if let Some((start, validator)) = &range {
            request = request
                .header(reqwest::header::RANGE, format!("bytes={start}-"))
                .header(reqwest::header::IF_RANGE, validator)
                .header(reqwest::header::ACCEPT_ENCODING, "identity");
        }
        // Conditional only when what the validators stand for was read to its end.
        if s.conditional && self.last.complete && !self.from_start {
            if let Some(etag) = &self.last.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &self.last.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
            }
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.retry_later(format!("{} {url} failed: {e}", s.method), None),
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            self.backoff.as_mut().expect("started").reset();
            tracing::debug!(url, "not modified");
            self.phase = Some(Phase::Wait(Instant::now() + s.interval.max(MIN_INTERVAL)));
            return Ok(());
        }
        if matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error() {
            let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
            let delay = retry_after.as_deref().and_then(|v| backoff::parse_retry_after(v, SystemTime::now()));
            return self.retry_later(format!("{} {url} answered {status}", s.method), delay);
        }
        if range.is_some() && status == StatusCode::RANGE_NOT_SATISFIABLE {
            self.give_up_ranges(&url, "answered 416");
            return Ok(());
        }
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(ConnectError::fatal(format!(
                "{} {url} answered {status}: {}",
                s.method,
                connect_kit::http::quote_body(&body, 300)
            )));
        }
        let header = |name| response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
        let (mut etag, mut last_modified) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
        // The client drops Content-Length when it decodes a content coding: with it, the bytes are the body's own.
        let own_bytes = response.headers().contains_key(reqwest::header::CONTENT_LENGTH);
        let partial = match (&range, status) {
            (Some((start, _)), _) if status == StatusCode::PARTIAL_CONTENT => {
                let content_range = header(reqwest::header::CONTENT_RANGE).unwrap_or_default();
                // A 206 need not repeat the validators `If-Range` vouched for; one it repeats must be the same.
                etag = etag.or_else(|| self.last.etag.clone());
                last_modified = last_modified.or_else(|| self.last.last_modified.clone());
                let same = self.last.same_validators(etag.as_deref(), last_modified.as_deref()) != Some(false);
                // Only the whole rest will do: a server that caps open ranges would end the file early.
                let whole_rest =
                    matches!(range_answer(&content_range), Some((first, last, Some(total))) if first == *start && last + 1 == total);
                if !own_bytes || !same || !whole_rest {
                    let why = format!("answered the range request with {content_range:?} (content length given: {own_bytes})");
                    self.give_up_ranges(&url, &why);
                    return Ok(());
                }
                Some(*start)
            }
            _ => None,
        };
        let (reader, gunzipped) = match body::open(response, partial.is_none()).await {
            Ok(r) => r,
            Err(e) => return self.retry_later(format!("reading the answer of {url}: {e}"), None),
        };
        let byte = (own_bytes && !gunzipped).then_some(0);
        let fresh = FeedOffset { etag, last_modified, byte, fields: self.last.fields.clone(), ..Default::default() };
        match s.format {
            Format::Json => {
                let bytes = match body::read_all(reader, s.max_body).await {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("http.response.max.bytes") => {
                        return Err(ConnectError::fatal(format!("{url}: {e}")))
                    }
                    Err(e) => return self.retry_later(format!("reading the answer of {url}: {e}"), None),
                };
                self.backoff.as_mut().expect("started").reset();
                let items = self.items(fresh, bytes);
                self.phase = Some(Phase::Items(items));
            }
            Format::JsonLines | Format::Lines => {
                let lines = Lines::new(reader, s.max_body as usize);
                let from_start = std::mem::take(&mut self.from_start);
                self.current_items.clear();
                let stream = match partial {
                    // The rest of the body: go on where the last line sent ended, the CRC going on over it.
                    Some(start) => {
                        tracing::info!(
                            url,
                            byte = start,
                            line = self.last.line,
                            "resuming the feed where it was left, with a range request"
                        );
                        let offset = FeedOffset { line: self.last.line, crc: self.last.crc, byte: Some(start), ..fresh };
                        let hasher = crc32fast::Hasher::new_with_initial(self.last.crc);
                        Stream { lines, offset, hasher, skip: 0, expect_crc: 0, base: start }
                    }
                    // Pass over what was sent from this same content before (kept in memory or restored).
                    None => {
                        let resume = !from_start && self.last.line > 0 && fresh_matches(&self.last, &fresh) != Some(false);
                        let (skip, expect_crc) = if resume { (self.last.line, self.last.crc) } else { (0, 0) };
                        Stream { lines, offset: fresh, hasher: crc32fast::Hasher::new(), skip, expect_crc, base: 0 }
                    }
                };
                self.phase = Some(Phase::Stream(Box::new(stream)));
            }
        }
        Ok(())
    }

    /// Where to ask for the rest of a body read part way, and the `If-Range` validator: only for line formats,
    /// whose offset counts the body's own bytes, without `dedup=item` (which must see every line).
    fn range_start(&self) -> Option<(u64, String)> {
        let s = self.settings();
        let eligible = s.format != Format::Json && !s.dedup && !self.no_range && !self.from_start;
        if !eligible || self.last.complete || self.last.line == 0 {
            return None;
        }
        let start = self.last.byte.filter(|b| *b > 0)?;
        Some((start, self.last.range_validator()?.to_string()))
    }

    /// A range request was not answered with the rest of the same body: fetch it whole, at once, and pass over
    /// what was sent.
    fn give_up_ranges(&mut self, url: &str, why: &str) {
        tracing::warn!(url, "{why}; fetching the whole body instead");
        self.no_range = true;
        self.phase = Some(Phase::Wait(Instant::now()));
    }

    /// A json document's items as records, past the last one sent.
    fn items(&mut self, mut offset: FeedOffset, bytes: Vec<u8>) -> VecDeque<SourceRecord> {
        let s = self.settings().clone();
        offset.complete = true;
        let document: Json = match serde_json::from_slice(&bytes) {
            Ok(d) => d,
            Err(e) => {
                self.last = offset.clone();
                return VecDeque::from([self.unreadable(&offset, bytes, format!("the response of {} is not JSON: {e}", s.url))]);
            }
        };
        let mut document = document;
        let list = match document.pointer_mut(if s.list_pointer == "/" { "" } else { &s.list_pointer }).map(Json::take) {
            Some(Json::Array(items)) => items,
            Some(Json::Null) | None => Vec::new(),
            Some(other) => vec![other],
        };
        let fields: Vec<_> = list.iter().map(|item| self.offset_fields(item)).collect();
        // After a restart or between polls: only the items after the last one sent.
        let mut start = 0;
        if let Some(last_key) = self.last.fields.get("key").filter(|k| !k.is_null()) {
            if let Some(i) = fields.iter().position(|f| f.get("key") == Some(last_key)) {
                start = i + 1;
            }
        }
        let last_time = self.last.fields.get("timestamp").filter(|t| !t.is_null()).cloned();
        let previous_hashes = std::mem::take(&mut self.previous_items);
        let mut current = HashSet::new();
        let mut records = VecDeque::new();
        for (item, f) in list.iter().zip(&fields).skip(start) {
            // The last key is not in this response: what is not older than the last item sent is new (an item
            // with the same timestamp may be a sibling of it; one without a timestamp cannot be told).
            if let (Some(last), Some(t)) = (&last_time, f.get("timestamp").filter(|t| !t.is_null())) {
                if start == 0 && later(last, t) {
                    continue;
                }
            }
            let value = item.pointer(if s.record_pointer == "/" { "" } else { &s.record_pointer }).cloned().unwrap_or(Json::Null);
            if s.dedup {
                let hash = item_hash(&self.hasher, value.to_string().as_bytes());
                current.insert(hash);
                if previous_hashes.contains(&hash) {
                    continue;
                }
            }
            // Not complete until the last item: a restart with items still queued must fetch the document
            // again, not get a 304 for it.
            let o = FeedOffset { fields: f.clone(), complete: false, ..offset.clone() };
            records.push_back(self.record(&o, key_of(f), Value::from_json(&value), timestamp_of(f)));
        }
        self.previous_items = current;
        if let Some(last_record) = records.back_mut() {
            last_record.source_offset.insert("complete".into(), Json::Bool(true));
            self.last = FeedOffset::from_map(&last_record.source_offset);
        } else {
            self.last.etag = offset.etag.clone();
            self.last.last_modified = offset.last_modified.clone();
            self.last.complete = true;
        }
        records
    }

    /// Up to a batch of records from the line stream; at its end, wait for the next fetch.
    async fn read_lines(&mut self, mut stream: Box<Stream>) -> Result<Vec<SourceRecord>> {
        let s = self.settings().clone();
        // Some room up front (a big batch grew through a dozen copies from nothing), not a whole batch's.
        let mut records = Vec::with_capacity(s.batch.min(256));
        // Back to the runtime within about a second, even while passing over lines or on a slow download,
        // so acknowledgements and offset commits are not held up.
        let deadline = Instant::now() + Duration::from_secs(1);
        while records.len() < s.batch {
            if stream.offset.line.is_multiple_of(256) && Instant::now() >= deadline {
                break;
            }
            let (line, is_last, overlong) = match stream.lines.next().await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    if stream.offset.line < stream.skip {
                        tracing::info!(url = %s.url, "the feed is shorter than what was sent from it: fetching it again, from the start");
                        self.from_start = true;
                        self.phase = Some(Phase::Wait(Instant::now()));
                    } else {
                        // Read to its end: the next request may be conditional.
                        tracing::info!(url = %s.url, lines = stream.offset.line, "read the feed to its end");
                        self.backoff.as_mut().expect("started").reset();
                        stream.offset.complete = true;
                        self.no_range = false;
                        self.last = stream.offset.clone();
                        self.previous_items = std::mem::take(&mut self.current_items);
                        self.phase = Some(Phase::Wait(Instant::now() + s.interval.max(MIN_INTERVAL)));
                    }
                    return Ok(records);
                }
                Err(e) => {
                    // The connection broke mid-body: what was sent is in the offsets; fetch again and pass over it
                    // (while still passing over, what `last` says stands).
                    if stream.offset.line >= stream.skip {
                        self.last = stream.offset.clone();
                    }
                    self.retry_later(format!("reading {} broke off at line {}: {e}", s.url, stream.offset.line), None)?;
                    return Ok(records);
                }
            };
            stream.hasher.update(&line);
            stream.hasher.update(b"\n");
            stream.offset.line += 1;
            stream.offset.crc = stream.hasher.clone().finalize();
            if let Some(byte) = &mut stream.offset.byte {
                *byte = stream.base + stream.lines.consumed();
            }
            stream.offset.complete = is_last;
            let n = stream.offset.line;
            if s.dedup && n > s.skip_lines {
                // Lines passed over belong to this response too: the next one is compared with all of them.
                let hash = item_hash(&self.hasher, &line);
                if n > stream.skip && self.previous_items.contains(&hash) {
                    self.current_items.insert(hash);
                    continue;
                }
                self.current_items.insert(hash);
            }
            if n <= stream.skip {
                if n == stream.skip {
                    if stream.offset.crc != stream.expect_crc {
                        tracing::info!(url = %s.url, "the feed's content changed under the same validators: fetching it again, from the start");
                        self.from_start = true;
                        self.phase = Some(Phase::Wait(Instant::now()));
                        return Ok(records);
                    }
                    tracing::info!(url = %s.url, lines = n, "passed over the lines already sent from this content");
                }
                continue;
            }
            if n <= s.skip_lines || line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if overlong {
                let why = format!("line {n} of {} is longer than {} bytes (http.response.max.bytes); its start is kept", s.url, s.max_body);
                records.push(self.unreadable(&stream.offset, line, why));
                continue;
            }
            let record = match s.format {
                Format::Lines => match String::from_utf8(line) {
                    Ok(text) => self.record(&stream.offset, Value::Null, Value::String(text), None),
                    Err(e) => {
                        let why = format!("line {n} of {} is not UTF-8", s.url);
                        self.unreadable(&stream.offset, e.into_bytes(), why)
                    }
                },
                _ => match serde_json::from_slice::<Json>(&line) {
                    Ok(json) => {
                        if !s.offset_pointers.is_empty() {
                            stream.offset.fields = self.offset_fields(&json);
                        }
                        let fields = &stream.offset.fields;
                        let value = if s.record_pointer == "/" {
                            Value::from_json(&json)
                        } else {
                            json.pointer(&s.record_pointer).map_or(Value::Null, Value::from_json)
                        };
                        self.record(&stream.offset, key_of(fields), value, timestamp_of(fields))
                    }
                    Err(e) => {
                        let why = format!("line {n} of {} is not JSON: {e}", s.url);
                        self.unreadable(&stream.offset, line, why)
                    }
                },
            };
            records.push(record);
        }
        // What was handed out so far, for the next fetch's decisions (each record carries its own offset); while
        // still passing over, what `last` says stands.
        if stream.offset.line >= stream.skip {
            self.last = stream.offset.clone();
        }
        self.phase = Some(Phase::Stream(stream));
        Ok(records)
    }
}

/// The first and last byte and the length (`None`: `*`, unknown) of a `Content-Range: bytes FIRST-LAST/LENGTH`.
fn range_answer(content_range: &str) -> Option<(u64, u64, Option<u64>)> {
    let (unit, range) = content_range.trim().split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (span, length) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let length = match length.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, length))
}

/// Is a fresh response the content `last` was taken from, by the validators (`None`: no validators either
/// time, only the lines' CRC can tell)?
fn fresh_matches(last: &FeedOffset, fresh: &FeedOffset) -> Option<bool> {
    last.same_validators(fresh.etag.as_deref(), fresh.last_modified.as_deref())
}

#[async_trait]
impl SourceTask for HttpSourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = keys::def().parse(&config)?;
        let url = parsed.string(keys::URL);
        let pairs = |key| keys::parse_pairs(&parsed.string(key)).map_err(ConnectError::fatal);
        let settings = Settings {
            method: if parsed.string(keys::METHOD).eq_ignore_ascii_case("POST") { Method::POST } else { Method::GET },
            headers: keys::parse_headers(&parsed.string(keys::HEADERS)).map_err(ConnectError::fatal)?,
            params: parsed.string(keys::PARAMS),
            body: parsed.string(keys::BODY),
            conditional: parsed.boolean(keys::CONDITIONAL),
            interval: Duration::from_millis(parsed.int(keys::INTERVAL) as u64),
            format: Format::parse(&parsed.string(keys::FORMAT)).unwrap_or(Format::Json),
            skip_lines: parsed.int(keys::SKIP_LINES) as u64,
            list_pointer: parsed.string(keys::LIST_POINTER),
            record_pointer: parsed.string(keys::RECORD_POINTER),
            offset_pointers: pairs(keys::OFFSET_POINTER)?,
            initial_fields: pairs(keys::OFFSET_INITIAL)?.into_iter().map(|(k, v)| (k, Json::String(v))).collect(),
            dedup: parsed.string(keys::DEDUP).eq_ignore_ascii_case("item"),
            batch: parsed.int(keys::BATCH_SIZE) as usize,
            max_body: parsed.int(keys::MAX_BODY_BYTES) as u64,
            topic: parsed.string(keys::KAFKA_TOPIC),
            max_retries: parsed.int(keys::MAX_RETRIES),
            url: url.clone(),
        };
        let mut http = HttpSettings::new(url.clone());
        if parsed.string(keys::AUTH_TYPE).eq_ignore_ascii_case("Basic") {
            http.auth = Auth::Basic {
                user: parsed.string(keys::AUTH_USER),
                password: parsed.password(keys::AUTH_PASSWORD).map(|p| p.expose().to_string()).unwrap_or_default(),
            };
        }
        http.connect_timeout = Duration::from_millis(parsed.int(keys::CONNECT_TIMEOUT) as u64);
        // A daily file of hundreds of MB takes minutes: no limit on the whole request, only on silence.
        http.request_timeout = Duration::ZERO;
        http.read_timeout = Some(Duration::from_millis(parsed.int(keys::READ_TIMEOUT) as u64));
        http.follow_redirects = true;
        self.client = Some(HttpClient::new(http).map_err(|e| ConnectError::fatal(e.to_string()))?);
        let mut policy = BackoffPolicy::exponential(Duration::from_secs(1), Duration::from_secs(300));
        if settings.max_retries >= 0 {
            policy = policy.with_max_attempts(settings.max_retries as u32);
        }
        self.backoff = Some(Backoff::new(policy));
        let mut partition = SourceMap::new();
        partition.insert("url".into(), Json::String(url.clone()));
        self.partition = Arc::new(partition);
        if let Some(stored) = context.offsets.offset(&self.partition) {
            self.last = FeedOffset::from_map(&stored);
            tracing::info!(url, line = self.last.line, complete = self.last.complete, "resuming the feed from its stored offset");
        }
        self.settings = Some(settings);
        self.phase = Some(Phase::Wait(Instant::now()));
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.phase.take().unwrap_or(Phase::Wait(Instant::now())) {
                Phase::Wait(at) => {
                    let now = Instant::now();
                    if now < at {
                        self.phase = Some(Phase::Wait(at));
                        tokio::time::sleep((at - now).min(deadline.saturating_duration_since(now))).await;
                        return Ok(Vec::new());
                    }
                    self.fetch().await?;
                    if matches!(self.phase, Some(Phase::Wait(_))) && Instant::now() >= deadline {
                        return Ok(Vec::new());
                    }
                }
                Phase::Stream(stream) => return self.read_lines(stream).await,
                Phase::Items(mut queue) => {
                    let n = queue.len().min(self.settings().batch);
                    let batch: Vec<SourceRecord> = queue.drain(..n).collect();
                    let next = Instant::now() + self.settings().interval.max(MIN_INTERVAL);
                    self.phase = Some(if queue.is_empty() { Phase::Wait(next) } else { Phase::Items(queue) });
                    return Ok(batch);
                }
            }
        }
    }

    async fn stop(&mut self) -> Result<()> {
        self.phase = None;
        self.client = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn the_parts_of_a_content_range() {
        assert_eq!(range_answer("bytes 1000-1999/2000"), Some((1000, 1999, Some(2000))));
        assert_eq!(range_answer("Bytes 0-9/*"), Some((0, 9, None)));
        assert_eq!(range_answer("bytes */2000"), None);
        assert_eq!(range_answer("items 1-2/3"), None);
        assert_eq!(range_answer(""), None);
    }

    fn settings() -> Settings {
        Settings {
            url: "http://feed.test/schedule".into(),
            method: Method::GET,
            headers: Vec::new(),
            params: String::new(),
            body: String::new(),
            conditional: true,
            interval: Duration::from_secs(60),
            format: Format::Lines,
            skip_lines: 0,
            list_pointer: String::new(),
            record_pointer: "/".into(),
            offset_pointers: Vec::new(),
            initial_fields: Default::default(),
            dedup: false,
            batch: 100_000,
            max_body: 1 << 20,
            topic: "t".into(),
            max_retries: -1,
        }
    }

    fn numbered(lines: std::ops::RangeInclusive<u32>) -> String {
        lines.map(|i| format!("line {i}\n")).collect()
    }

    /// 600 lines were sent before a restart. The body comes again: 300 lines, a 2 s pause, 250 more, then the
    /// connection breaks, all while those lines are being passed over. The poll that ends on its one-second
    /// deadline (at line 512) must not make the offset say only 512 lines were sent: the next fetch would then
    /// send lines 513 to 600 again.
    #[tokio::test]
    async fn a_poll_that_ends_while_passing_over_keeps_what_was_sent() {
        let sent = numbered(1..=600);
        let mut task = HttpSourceTask {
            settings: Some(settings()),
            last: FeedOffset { line: 600, crc: crc32fast::hash(sent.as_bytes()), ..Default::default() },
            backoff: Some(Backoff::new(BackoffPolicy::exponential(Duration::from_secs(1), Duration::from_secs(300)))),
            ..Default::default()
        };
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(std::io::Cursor::new(numbered(1..=300).into_bytes()))])
            .chain(futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(std::io::Cursor::new(numbered(301..=550).into_bytes()))
            }))
            .chain(futures::stream::once(async { Err(std::io::Error::other("connection reset")) }));
        let reader: Box<dyn tokio::io::AsyncBufRead + Send + Unpin> =
            Box::new(tokio::io::BufReader::new(tokio_util::io::StreamReader::new(Box::pin(chunks))));
        let stream = Stream {
            lines: Lines::new(reader, 1 << 20),
            offset: FeedOffset::default(),
            hasher: crc32fast::Hasher::new(),
            skip: task.last.line,
            expect_crc: task.last.crc,
            base: 0,
        };
        let records = task.read_lines(Box::new(stream)).await.unwrap();
        assert!(records.is_empty(), "nothing new yet");
        assert_eq!(task.last.line, 600, "the offset still says 600 lines were sent");
        let Some(Phase::Stream(stream)) = task.phase.take() else { panic!("still reading") };
        assert!(stream.offset.line < 600, "the poll ended while passing over (at line {})", stream.offset.line);
        let records = task.read_lines(stream).await.unwrap();
        assert!(records.is_empty());
        assert!(matches!(task.phase, Some(Phase::Wait(_))), "the break is retried later");
        assert_eq!(task.last.line, 600, "after the break too");
    }
}
