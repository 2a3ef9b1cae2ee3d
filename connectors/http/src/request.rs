//! From a `put`'s records to request bodies: each record rendered (string form with regexes, JSON, or the body
//! template), grouped by URL and `batch.key.pattern`, `batch.max.size` records per request, joined with
//! `batch.prefix` / `batch.separator` / `batch.suffix` or as a JSON array.

use crate::config::{BodyFormat, HttpSinkConfig};
use crate::render::{java_string, json_text, key_text};
use connect_core::SinkRecord;
use reqwest::Method;

/// One request to send, and the records it carries (indices into the `put` batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub method: Method,
    pub url: String,
    /// `None` for a DELETE (a null value with `behavior.on.null.values=delete`).
    pub body: Option<String>,
    pub records: Vec<usize>,
}

/// One record's share of a body.
pub fn render_record(config: &HttpSinkConfig, record: &SinkRecord) -> String {
    if let Some(template) = &config.body_template {
        return template.render(record);
    }
    match config.body_format {
        BodyFormat::Json => json_text(&record.data.value),
        BodyFormat::String => {
            let mut text = java_string(&record.data.value);
            if !config.regexes.is_empty() {
                let key = key_text(record);
                for rewrite in &config.regexes {
                    text = rewrite.apply(&text, &key, record.topic());
                }
            }
            text
        }
    }
}

fn join(config: &HttpSinkConfig, pieces: &[String]) -> String {
    let as_array = config.body_format == BodyFormat::Json && config.batch_json_as_array;
    let (prefix, separator, suffix) = if as_array {
        ("[", ",", "]")
    } else {
        (config.batch_prefix.as_str(), config.batch_separator.as_str(), config.batch_suffix.as_str())
    };
    let len = prefix.len() + suffix.len() + pieces.iter().map(|p| p.len() + separator.len()).sum::<usize>();
    let mut body = String::with_capacity(len);
    body.push_str(prefix);
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            body.push_str(separator);
        }
        body.push_str(piece);
    }
    body.push_str(suffix);
    body
}

/// Records waiting for more of their kind: same URL and batch key.
#[derive(Debug)]
struct OpenGroup {
    url: String,
    batch_key: String,
    records: Vec<usize>,
    pieces: Vec<String>,
}

/// Groups records into requests in the order they fill: a group is sent when it holds `batch.max.size`
/// records, the rest at the end in the order their groups first appeared.
#[derive(Debug)]
pub struct Batcher<'a> {
    config: &'a HttpSinkConfig,
    open: Vec<OpenGroup>,
    ready: Vec<Prepared>,
}

impl<'a> Batcher<'a> {
    pub fn new(config: &'a HttpSinkConfig) -> Self {
        Batcher { config, open: Vec::new(), ready: Vec::new() }
    }

    /// The record's URL, rendered only when `http.api.url` names `${topic}` or `${key}`.
    fn url(&self, record: &SinkRecord) -> std::borrow::Cow<'a, str> {
        if self.config.url.is_constant() {
            std::borrow::Cow::Borrowed(self.config.http.api_url.as_str())
        } else {
            std::borrow::Cow::Owned(self.config.url.render_text(record))
        }
    }

    /// The record's batch key; a constant pattern (the default `someKey`) is not rendered per record.
    fn batch_key(&self, record: &SinkRecord) -> std::borrow::Cow<'a, str> {
        if self.config.batch_key.is_constant() {
            std::borrow::Cow::Borrowed("")
        } else {
            std::borrow::Cow::Owned(self.config.batch_key.render_text(record))
        }
    }

    /// Add record `index` with a value.
    pub fn push(&mut self, index: usize, record: &SinkRecord) {
        let (url, batch_key) = (self.url(record), self.batch_key(record));
        let piece = render_record(self.config, record);
        let position = match self.open.iter().position(|g| g.url == url && g.batch_key == batch_key) {
            Some(p) => p,
            None => {
                self.open.push(OpenGroup {
                    url: url.into_owned(),
                    batch_key: batch_key.into_owned(),
                    records: Vec::new(),
                    pieces: Vec::new(),
                });
                self.open.len() - 1
            }
        };
        let group = &mut self.open[position];
        group.records.push(index);
        group.pieces.push(piece);
        if group.records.len() >= self.config.batch_max_size {
            let group = self.open.remove(position);
            self.close(group);
        }
    }

    /// Add a DELETE for record `index` (a tombstone with `behavior.on.null.values=delete`): a request of its own,
    /// after what was already full.
    pub fn push_delete(&mut self, index: usize, record: &SinkRecord) {
        let url = self.url(record).into_owned();
        self.ready.push(Prepared { method: Method::DELETE, url, body: None, records: vec![index] });
    }

    fn close(&mut self, group: OpenGroup) {
        let body = join(self.config, &group.pieces);
        self.ready.push(Prepared { method: self.config.method.clone(), url: group.url, body: Some(body), records: group.records });
    }

    pub fn finish(mut self) -> Vec<Prepared> {
        for group in std::mem::take(&mut self.open) {
            self.close(group);
        }
        self.ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{Config, RecordData, TimestampType, Value};

    fn config(pairs: &[(&str, &str)]) -> HttpSinkConfig {
        let mut c: Config = [("http.api.url", "http://127.0.0.1:1/in")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        HttpSinkConfig::parse(&c).unwrap()
    }

    fn record(topic: &str, key: &str, value: serde_json::Value, offset: i64) -> SinkRecord {
        let data = RecordData::new(topic, None, Value::from_json(&value)).with_key(None, Value::from(key));
        SinkRecord::new(data, 0, offset, TimestampType::CreateTime)
    }

    fn bodies(config: &HttpSinkConfig, records: &[SinkRecord]) -> Vec<(String, String, Vec<usize>)> {
        let mut batcher = Batcher::new(config);
        for (i, r) in records.iter().enumerate() {
            batcher.push(i, r);
        }
        batcher.finish().into_iter().map(|p| (p.url, p.body.unwrap(), p.records)).collect()
    }

    #[test]
    fn the_telegram_config_gives_one_body_per_record() {
        let c = config(&[
            ("batch.max.size", "1"),
            ("batch.prefix", r#"{"chat_id":"-364377679","parse_mode": "markdown","#),
            ("batch.suffix", "}"),
            ("regex.patterns", r".*\{MESSAGE=(.*)\}.*"),
            ("regex.replacements", r#""text":"$1""#),
        ]);
        let records: Vec<SinkRecord> =
            (0..2).map(|i| record("TRAINS_DELAYED_ALERT_TG", "k", serde_json::json!({"MESSAGE": format!("late {i}")}), i)).collect();
        let got = bodies(&c, &records);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, r#"{"chat_id":"-364377679","parse_mode": "markdown","text":"late 1"}"#);
        serde_json::from_str::<serde_json::Value>(&got[0].1).unwrap();
    }

    #[test]
    fn batches_json_arrays_and_groups_by_key_pattern() {
        let c = config(&[("batch.max.size", "2"), ("request.body.format", "json"), ("batch.key.pattern", "${key}")]);
        let records = vec![
            record("t", "a", serde_json::json!({"n": 0}), 0),
            record("t", "b", serde_json::json!({"n": 1}), 1),
            record("t", "a", serde_json::json!({"n": 2}), 2),
            record("t", "b", serde_json::json!({"n": 3}), 3),
            record("t", "a", serde_json::json!({"n": 4}), 4),
        ];
        let got = bodies(&c, &records);
        let summary: Vec<(&str, &[usize])> = got.iter().map(|(_, b, r)| (b.as_str(), r.as_slice())).collect();
        assert_eq!(summary, vec![(r#"[{"n":0},{"n":2}]"#, &[0, 2][..]), (r#"[{"n":1},{"n":3}]"#, &[1, 3][..]), (r#"[{"n":4}]"#, &[4][..])]);
        let c = config(&[("batch.max.size", "3"), ("batch.prefix", "<"), ("batch.separator", "|"), ("batch.suffix", ">")]);
        let got = bodies(&c, &records[..2]);
        assert_eq!(got[0].1, "<{n=0}|{n=1}>");
    }

    #[test]
    fn urls_with_topic_and_key_split_requests() {
        let c = config(&[("http.api.url", "http://127.0.0.1:1/${topic}/${key}"), ("batch.max.size", "10")]);
        let records = vec![record("t", "a", serde_json::json!(1), 0), record("t", "b", serde_json::json!(2), 1)];
        let got = bodies(&c, &records);
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["http://127.0.0.1:1/t/a", "http://127.0.0.1:1/t/b"]);
    }
}
