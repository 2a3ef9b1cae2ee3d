//! What a record's source offset remembers of the feed, so a restart neither sends a snapshot again nor
//! starts a half-read file from the beginning: the response's validators (ETag, Last-Modified), for line
//! formats the lines consumed and a CRC-32 of them (the same content is recognised even from a server
//! without validators), the bytes of the body they took (when those are the file's own, for a `Range` request),
//! whether the response was read to its end, and for json items the last item's offset fields
//! (`http.response.record.offset.pointer`).

use connect_core::SourceMap;
use serde_json::Value as Json;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedOffset {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Lines of the response consumed so far (emitted, skipped as header, or blank).
    pub line: u64,
    /// CRC-32 of those lines' bytes, each followed by `\n`.
    pub crc: u32,
    /// Bytes of the body consumed through `line`, kept when the body is the representation's own bytes (no
    /// content coding, not a gzip file), so that a restart can ask for the rest with `Range`.
    pub byte: Option<u64>,
    /// The response was read to its end.
    pub complete: bool,
    /// The last emitted item's offset fields.
    pub fields: serde_json::Map<String, Json>,
}

impl FeedOffset {
    pub fn to_map(&self) -> SourceMap {
        let mut m = SourceMap::new();
        if let Some(e) = &self.etag {
            m.insert("etag".into(), Json::from(e.as_str()));
        }
        if let Some(l) = &self.last_modified {
            m.insert("last_modified".into(), Json::from(l.as_str()));
        }
        if self.line > 0 {
            m.insert("line".into(), Json::from(self.line));
            m.insert("crc".into(), Json::from(self.crc));
            if let Some(byte) = self.byte {
                m.insert("byte".into(), Json::from(byte));
            }
        }
        m.insert("complete".into(), Json::from(self.complete));
        for (k, v) in &self.fields {
            m.insert(format!("offset.{k}"), v.clone());
        }
        m
    }

    pub fn from_map(m: &SourceMap) -> Self {
        let text = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_string);
        FeedOffset {
            etag: text("etag"),
            last_modified: text("last_modified"),
            line: m.get("line").and_then(Json::as_u64).unwrap_or(0),
            crc: m.get("crc").and_then(Json::as_u64).unwrap_or(0) as u32,
            byte: m.get("byte").and_then(Json::as_u64),
            complete: m.get("complete").and_then(Json::as_bool).unwrap_or(false),
            fields: m.iter().filter_map(|(k, v)| k.strip_prefix("offset.").map(|k| (k.to_string(), v.clone()))).collect(),
        }
    }

    /// The validator for `If-Range`: a strong ETag, else Last-Modified if there is no ETag at all (RFC 9110
    /// §13.1.5; a weak ETag cannot vouch for bytes, so then no range is asked for).
    pub fn range_validator(&self) -> Option<&str> {
        match self.etag.as_deref() {
            Some(etag) if etag.starts_with("W/") => None,
            Some(etag) => Some(etag),
            None => self.last_modified.as_deref(),
        }
    }

    /// Do a response's validators say it is the content this offset was taken from? `None`: the server
    /// gave none either time, so only the content can tell.
    pub fn same_validators(&self, etag: Option<&str>, last_modified: Option<&str>) -> Option<bool> {
        match (self.etag.as_deref(), etag) {
            (Some(a), Some(b)) => return Some(a == b),
            (None, None) => {}
            _ => return Some(false),
        }
        match (self.last_modified.as_deref(), last_modified) {
            (Some(a), Some(b)) => Some(a == b),
            (None, None) => None,
            _ => Some(false),
        }
    }
}

/// What stays as it is in a query value: RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `${offset.NAME}` in a URL, parameter or body, replaced by the offset field's value (strings bare);
/// `in_url`: percent-encoded, so a `+01:00` or `&` in a value cannot change the request.
pub fn render(template: &str, fields: &serde_json::Map<String, Json>, in_url: bool) -> String {
    if !template.contains("${offset.") {
        return template.to_string();
    }
    let mut out = template.to_string();
    for (name, value) in fields {
        let text = match value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let text = if in_url { percent_encoding::utf8_percent_encode(&text, QUERY_VALUE).to_string() } else { text };
        out = out.replace(&format!("${{offset.{name}}}"), &text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validators() {
        let mut o = FeedOffset { etag: Some("\"v1\"".into()), line: 7, crc: 42, byte: Some(300), complete: true, ..Default::default() };
        o.fields.insert("key".into(), Json::from("item-9"));
        assert_eq!(FeedOffset::from_map(&o.to_map()), o);
        assert_eq!(o.same_validators(Some("\"v1\""), None), Some(true));
        assert_eq!(o.same_validators(Some("\"v2\""), None), Some(false));
        assert_eq!(o.same_validators(None, Some("Tue")), Some(false));
        assert_eq!(FeedOffset::default().same_validators(None, None), None);
    }

    #[test]
    fn templates() {
        let mut f = serde_json::Map::new();
        f.insert("timestamp".into(), Json::from("2026-12-06T10:00:00Z"));
        f.insert("n".into(), Json::from(5));
        assert_eq!(render("/items?since=${offset.timestamp}&after=${offset.n}", &f, true), "/items?since=2026-12-06T10%3A00%3A00Z&after=5");
        f.insert("timestamp".into(), Json::from("2026-12-06T10:00:00+01:00"));
        assert_eq!(render("since=${offset.timestamp}", &f, true), "since=2026-12-06T10%3A00%3A00%2B01%3A00");
        assert_eq!(render("{\"since\":\"${offset.timestamp}\"}", &f, false), "{\"since\":\"2026-12-06T10:00:00+01:00\"}");
    }
}
