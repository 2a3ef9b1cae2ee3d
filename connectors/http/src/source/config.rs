//! Keys of the HTTP feed source: those of the most used open HTTP source
//! (`com.github.castorm.kafka.connect.http.HttpSourceConnector`) that fit a feed, plus ours for line-based
//! and compressed feeds (`http.response.format`, `http.response.skip.lines`, `http.response.dedup`).

use connect_core::config::ConfigValue;
use connect_core::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

pub const URL: &str = "http.request.url";
pub const METHOD: &str = "http.request.method";
pub const HEADERS: &str = "http.request.headers";
pub const PARAMS: &str = "http.request.params";
pub const BODY: &str = "http.request.body";
pub const AUTH_TYPE: &str = "http.auth.type";
pub const AUTH_USER: &str = "http.auth.user";
pub const AUTH_PASSWORD: &str = "http.auth.password";
pub const INTERVAL: &str = "http.timer.interval.millis";
pub const CONNECT_TIMEOUT: &str = "http.client.connection.timeout.millis";
pub const READ_TIMEOUT: &str = "http.client.read.timeout.millis";
pub const KAFKA_TOPIC: &str = "kafka.topic";
pub const LIST_POINTER: &str = "http.response.list.pointer";
pub const RECORD_POINTER: &str = "http.response.record.pointer";
pub const OFFSET_POINTER: &str = "http.response.record.offset.pointer";
pub const OFFSET_INITIAL: &str = "http.offset.initial";
pub const FORMAT: &str = "http.response.format";
pub const SKIP_LINES: &str = "http.response.skip.lines";
pub const DEDUP: &str = "http.response.dedup";
pub const CONDITIONAL: &str = "http.request.conditional";
pub const BATCH_SIZE: &str = "batch.size";
pub const MAX_BODY_BYTES: &str = "http.response.max.bytes";
pub const MAX_RETRIES: &str = "http.response.max.retries";

/// How a response body becomes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document; the items are the array at `http.response.list.pointer`.
    Json,
    /// One JSON document a line.
    JsonLines,
    /// One string record a non-empty line (CSV for the ParseCsv transform, logs).
    Lines,
}

impl Format {
    pub fn parse(value: &str) -> Option<Format> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" | "json-lines" => Some(Format::JsonLines),
            "lines" | "text" | "csv" => Some(Format::Lines),
            _ => None,
        }
    }
}

/// `key=/id, timestamp=/date`: offset field names and the JSON pointers they are read from, in order.
pub fn parse_pairs(value: &str) -> Result<Vec<(String, String)>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, pointer) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not name=value"))?;
            Ok((name.trim().to_string(), pointer.trim().to_string()))
        })
        .collect()
}

/// `Name: value, Other: value` request headers.
pub fn parse_headers(value: &str) -> Result<Vec<(String, String)>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let (name, v) = h.split_once(':').ok_or_else(|| format!("header '{h}' is not 'Name: value'"))?;
            Ok((name.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn pointer_ok(v: &ConfigValue) -> Result<(), String> {
    match v {
        ConfigValue::String(p) if !p.is_empty() && !p.starts_with('/') => Err(format!("'{p}' is not a JSON pointer (it starts with /)")),
        _ => Ok(()),
    }
}

pub fn def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::required(URL, ConfigType::String, Importance::High, "The feed's URL; ${offset.NAME} is replaced by the last record's offset field NAME.")
                .validator(Validator::custom(|v| match v {
                    ConfigValue::String(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                        Err(format!("'{u}' is not an http:// or https:// URL"))
                    }
                    _ => Ok(()),
                })
                .described("an http:// or https:// URL"))
                .group("Request", 1),
        )
        .define(
            ConfigKey::new(METHOD, ConfigType::String, Some("GET"), Importance::Medium, "GET or POST.")
                .validator(Validator::OneOf(vec!["GET", "POST"]))
                .group("Request", 2),
        )
        .define(
            ConfigKey::new(HEADERS, ConfigType::String, Some(""), Importance::Medium, "Request headers, 'Name: value' separated by commas.")
                .validator(Validator::custom(|v| match v {
                    ConfigValue::String(h) => parse_headers(h).map(|_| ()),
                    _ => Ok(()),
                })
                .described("Name: value, ..."))
                .group("Request", 3),
        )
        .define(
            ConfigKey::new(PARAMS, ConfigType::String, Some(""), Importance::Medium, "Query parameters, name=value separated by '&' (${offset.NAME} is replaced).")
                .group("Request", 4),
        )
        .define(ConfigKey::new(BODY, ConfigType::String, Some(""), Importance::Low, "The body of a POST (${offset.NAME} is replaced).").group("Request", 5))
        .define(
            ConfigKey::new(AUTH_TYPE, ConfigType::String, Some("None"), Importance::Medium, "None or Basic.")
                .validator(Validator::OneOf(vec!["None", "Basic"]))
                .group("Request", 6),
        )
        .define(ConfigKey::new(AUTH_USER, ConfigType::String, Some(""), Importance::Medium, "User for Basic auth.").group("Request", 7))
        .define(ConfigKey::new(AUTH_PASSWORD, ConfigType::Password, Some(""), Importance::Medium, "Password for Basic auth.").group("Request", 8))
        .define(
            ConfigKey::new(
                CONDITIONAL,
                ConfigType::Boolean,
                Some("true"),
                Importance::Medium,
                "Conditional requests: If-None-Match / If-Modified-Since from the last response's ETag / Last-Modified, so an unchanged feed (304) emits nothing.",
            )
            .group("Request", 9),
        )
        .define(
            ConfigKey::new(INTERVAL, ConfigType::Long, Some("60000"), Importance::High, "How long to wait between the end of one fetch and the next (ms).")
                .validator(Validator::at_least(0.0))
                .group("Request", 10),
        )
        .define(
            ConfigKey::new(CONNECT_TIMEOUT, ConfigType::Long, Some("2000"), Importance::Low, "Connect timeout (ms).")
                .validator(Validator::at_least(1.0))
                .group("Request", 11),
        )
        .define(
            ConfigKey::new(
                READ_TIMEOUT,
                ConfigType::Long,
                Some("30000"),
                Importance::Low,
                "The longest wait for the next bytes of a response (ms); a long download is fine as long as it moves.",
            )
            .validator(Validator::at_least(1.0))
            .group("Request", 12),
        )
        .define(
            ConfigKey::new(
                MAX_RETRIES,
                ConfigType::Int,
                Some("-1"),
                Importance::Low,
                "How many times in a row an unreachable feed, 408, 425, 429 or 5xx is retried (Retry-After honoured, else doubling to 5 min) before the task fails; -1: forever.",
            )
            .validator(Validator::at_least(-1.0))
            .group("Request", 13),
        )
        .define(
            ConfigKey::required(KAFKA_TOPIC, ConfigType::String, Importance::High, "The Kafka topic to write to.")
                .validator(Validator::NonEmptyString)
                .group("Response", 1),
        )
        .define(
            ConfigKey::new(FORMAT, ConfigType::String, Some("json"), Importance::High, "json: one document whose items are at http.response.list.pointer; jsonl: a JSON document a line; lines: a string record a non-empty line.")
                .validator(Validator::custom(|v| match v {
                    ConfigValue::String(f) if Format::parse(f).is_none() => Err(format!("unknown format {f}: use json, jsonl or lines")),
                    _ => Ok(()),
                })
                .described("json, jsonl or lines"))
                .group("Response", 2),
        )
        .define(
            ConfigKey::new(SKIP_LINES, ConfigType::Int, Some("0"), Importance::Medium, "Lines to drop at the start of each response (a CSV header) for lines and jsonl.")
                .validator(Validator::at_least(0.0))
                .group("Response", 3),
        )
        .define(
            ConfigKey::new(LIST_POINTER, ConfigType::String, Some("/"), Importance::Medium, "JSON pointer to the array of items in a json response ('/': the document; an object there is one item).")
                .validator(Validator::custom(pointer_ok).described("a JSON pointer"))
                .group("Response", 4),
        )
        .define(
            ConfigKey::new(RECORD_POINTER, ConfigType::String, Some("/"), Importance::Low, "JSON pointer to the record value within an item.")
                .validator(Validator::custom(pointer_ok).described("a JSON pointer"))
                .group("Response", 5),
        )
        .define(
            ConfigKey::new(
                OFFSET_POINTER,
                ConfigType::String,
                Some(""),
                Importance::Medium,
                "An item's offset fields: name=/pointer, separated by commas (key=/id, timestamp=/updated). 'key' becomes the record key, 'timestamp' its timestamp; after a restart only items after the last one sent are emitted.",
            )
            .validator(Validator::custom(|v| match v {
                ConfigValue::String(p) => parse_pairs(p).map(|_| ()),
                _ => Ok(()),
            })
            .described("name=/pointer, ..."))
            .group("Response", 6),
        )
        .define(
            ConfigKey::new(OFFSET_INITIAL, ConfigType::String, Some(""), Importance::Low, "Offset fields before the first record: name=value, separated by commas (for ${offset.NAME} in the request).")
                .validator(Validator::custom(|v| match v {
                    ConfigValue::String(p) => parse_pairs(p).map(|_| ()),
                    _ => Ok(()),
                })
                .described("name=value, ..."))
                .group("Response", 7),
        )
        .define(
            ConfigKey::new(DEDUP, ConfigType::String, Some("none"), Importance::Medium, "none, or item: skip items (lines) identical to one in the previous response, for feeds that cannot answer 304.")
                .validator(Validator::OneOf(vec!["none", "item"]))
                .group("Response", 8),
        )
        .define(
            ConfigKey::new(BATCH_SIZE, ConfigType::Int, Some("2000"), Importance::Low, "Most records one poll returns.")
                .validator(Validator::at_least(1.0))
                .group("Response", 9),
        )
        .define(
            ConfigKey::new(
                MAX_BODY_BYTES,
                ConfigType::Long,
                Some("104857600"),
                Importance::Low,
                "The largest json document read whole (jsonl and lines stream, whatever their size).",
            )
            .validator(Validator::at_least(1.0))
            .group("Response", 10),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_headers() {
        assert_eq!(
            parse_pairs("key=/id, timestamp=/updated").unwrap(),
            vec![("key".into(), "/id".into()), ("timestamp".into(), "/updated".into())]
        );
        assert!(parse_pairs("key").is_err());
        assert_eq!(parse_headers("Accept: text/csv, X-Api-Key: a:b").unwrap()[1], ("X-Api-Key".into(), "a:b".into()));
        assert_eq!(Format::parse("CSV"), Some(Format::Lines));
    }

    #[test]
    fn the_car_park_config_validates() {
        let c: connect_core::Config =
            [(URL, "https://datamillnorth.org/download/car-parks.csv"), (KAFKA_TOPIC, "carparks"), (FORMAT, "lines"), (SKIP_LINES, "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(def().validate("http-source", &c).error_count, 0);
        let bad: connect_core::Config =
            [(URL, "ftp://x"), (KAFKA_TOPIC, "t"), (LIST_POINTER, "items")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(def().validate("http-source", &bad).error_count, 2);
    }
}
