//! The keys of Confluent's HTTP sink (`HttpSinkConfig`) and our own additions, parsed once at start.
//!
//! Connection, authentication, proxy, timeouts and TLS come from the kit ([`connect_kit::http`]); this file
//! adds the request, batching, body, retry and error keys.

use crate::render::{BodyTemplate, Placeholder, RegexRewrite};
use connect_core::config::ConfigValue;
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, ParsedConfig, Result, Validator};
use connect_kit::http::{self as kit_http, HttpSettings};
use connect_kit::{BackoffPolicy, Jitter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use std::time::Duration;

pub const REQUEST_METHOD: &str = "request.method";
pub const HEADERS: &str = "headers";
pub const HEADER_SEPARATOR: &str = "header.separator";
pub const BATCH_MAX_SIZE: &str = "batch.max.size";
pub const BATCH_PREFIX: &str = "batch.prefix";
pub const BATCH_SUFFIX: &str = "batch.suffix";
pub const BATCH_SEPARATOR: &str = "batch.separator";
pub const BATCH_JSON_AS_ARRAY: &str = "batch.json.as.array";
pub const BATCH_KEY_PATTERN: &str = "batch.key.pattern";
pub const BODY_FORMAT: &str = "request.body.format";
pub const BODY_TEMPLATE: &str = "request.body.template";
pub const REGEX_PATTERNS: &str = "regex.patterns";
pub const REGEX_REPLACEMENTS: &str = "regex.replacements";
pub const REGEX_SEPARATOR: &str = "regex.separator";
pub const RETRY_ON_STATUS_CODES: &str = "retry.on.status.codes";
pub const MAX_RETRIES: &str = "max.retries";
pub const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
pub const RETRY_BACKOFF_POLICY: &str = "retry.backoff.policy";
pub const RETRY_AFTER_BODY_POINTER: &str = "retry.after.body.pointer";
pub const NULL_VALUES: &str = "behavior.on.null.values";
pub const ON_ERROR: &str = "behavior.on.error";
pub const MAX_IN_FLIGHT: &str = "max.in.flight.requests";

/// Our default for `retry.on.status.codes`: the statuses that say "later" (timeouts, rate limits, server
/// errors). Confluent's default `400-` also retries 4xx answers about the record itself, which cannot succeed
/// and only delay the records behind it; set `400-` to get that behaviour back.
pub const DEFAULT_RETRY_CODES: &str = "408,425,429,500-";

/// The longest wait between retries when the backoff doubles.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// The record's string form (Java's `toString` for structs and maps), regexes applied.
    String,
    /// The record's value as JSON.
    Json,
}

/// `behavior.on.null.values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNull {
    Ignore,
    Log,
    Delete,
    Fail,
}

/// `behavior.on.error`: what happens to records the target refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// To the errant-record reporter (the DLQ with `errors.tolerance=all`; the task fails with `none`); without
    /// error reporting, the task fails.
    Fail,
    /// Skipped (a debug line).
    Ignore,
    /// Skipped with a warning naming the record and the response.
    Log,
}

/// Inclusive ranges of statuses; `500-` means 500 and above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCodes(Vec<(u16, u16)>);

impl StatusCodes {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let number =
                |s: &str| s.trim().parse::<u16>().map_err(|_| format!("{part:?} is not a status code or a range like 500-599 or 500-"));
            let range = match part.split_once('-') {
                None => (number(part)?, number(part)?),
                Some((from, "")) => (number(from)?, u16::MAX),
                Some((from, to)) => (number(from)?, number(to)?),
            };
            if range.0 > range.1 {
                return Err(format!("{part:?} is an empty range"));
            }
            ranges.push(range);
        }
        Ok(StatusCodes(ranges))
    }
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(from, to)| (*from..=*to).contains(&status))
    }
}

/// A parsed sink config.
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    pub http: HttpSettings,
    /// `http.api.url`, with `${topic}` / `${key}` if it names them.
    pub url: BodyTemplate,
    pub method: Method,
    pub headers: HeaderMap,
    pub batch_max_size: usize,
    pub batch_prefix: String,
    pub batch_suffix: String,
    pub batch_separator: String,
    pub batch_json_as_array: bool,
    pub batch_key: BodyTemplate,
    pub body_format: BodyFormat,
    pub body_template: Option<BodyTemplate>,
    pub regexes: Vec<RegexRewrite>,
    pub retry_codes: StatusCodes,
    pub max_retries: u32,
    pub retry_backoff: BackoffPolicy,
    /// Where a response body says how long to wait (Telegram: `/parameters/retry_after`).
    pub retry_after_pointer: Option<String>,
    pub on_null: OnNull,
    pub on_error: OnError,
    pub max_in_flight: usize,
}

pub fn def() -> ConfigDef {
    let key = |name: &str, kind, default: Option<&str>, doc: &str| ConfigKey::new(name, kind, default, Importance::Medium, doc);
    kit_http::config_def()
        .define(
            key(REQUEST_METHOD, ConfigType::String, Some("POST"), "POST, PUT or PATCH (any case).")
                .validator(Validator::OneOf(vec!["POST", "PUT", "PATCH"])),
        )
        .define(key(HEADERS, ConfigType::String, Some(""), "Request headers, `Name: value`, separated by header.separator."))
        .define(key(HEADER_SEPARATOR, ConfigType::String, Some("|"), "Separator of the headers list."))
        .define(
            key(BATCH_MAX_SIZE, ConfigType::Int, Some("1"), "Records per request (1: one request per record).")
                .validator(Validator::at_least(1.0)),
        )
        .define(key(BATCH_PREFIX, ConfigType::String, Some(""), "Text before the records of a request body."))
        .define(key(BATCH_SUFFIX, ConfigType::String, Some(""), "Text after the records of a request body."))
        .define(key(BATCH_SEPARATOR, ConfigType::String, Some(","), "Text between the records of a request body."))
        .define(key(
            BATCH_JSON_AS_ARRAY,
            ConfigType::Boolean,
            Some("true"),
            "With request.body.format=json: send the records of a request as a JSON array.",
        ))
        .define(key(
            BATCH_KEY_PATTERN,
            ConfigType::String,
            Some("someKey"),
            "Records go in one request only if this pattern (with ${key}, ${topic}) gives the same text.",
        ))
        .define(
            key(BODY_FORMAT, ConfigType::String, Some("string"), "string: the record's string form; json: its value as JSON.")
                .validator(Validator::OneOf(vec!["string", "json"])),
        )
        .define(key(
            BODY_TEMPLATE,
            ConfigType::String,
            None,
            "Our own: each record's body from a template with ${topic}, ${key}, ${value}, ${value.FIELD.SUB}, \
             ${partition}, ${offset}, ${timestamp}; inside a JSON string the text is JSON-escaped, outside it is JSON.",
        ))
        .define(key(REGEX_PATTERNS, ConfigType::String, Some(""), "Regexes applied to each record's string form, in order."))
        .define(key(REGEX_REPLACEMENTS, ConfigType::String, Some(""), "Their replacements ($1 for a group; ${key}, ${topic})."))
        .define(key(REGEX_SEPARATOR, ConfigType::String, Some("~"), "Separator of regex.patterns and regex.replacements."))
        .define(
            key(
                RETRY_ON_STATUS_CODES,
                ConfigType::String,
                Some(DEFAULT_RETRY_CODES),
                "Statuses retried: codes and ranges, e.g. 404,408,500- (500 and above). Others fail the records at once.",
            )
            .validator(
                Validator::custom(|v| match v {
                    ConfigValue::String(s) => StatusCodes::parse(s).map(|_| ()),
                    _ => Ok(()),
                })
                .described("status codes and ranges, comma-separated (`429`, `500-599`, `500-`)"),
            ),
        )
        .define(
            key(MAX_RETRIES, ConfigType::Int, Some("5"), "Retries of a failing request before behavior.on.error decides.")
                .validator(Validator::at_least(0.0)),
        )
        .define(
            key(RETRY_BACKOFF_MS, ConfigType::Int, Some("3000"), "Wait before the first retry (doubling after, see retry.backoff.policy).")
                .validator(Validator::at_least(0.0)),
        )
        .define(
            key(
                RETRY_BACKOFF_POLICY,
                ConfigType::String,
                Some("EXPONENTIAL_WITH_JITTER"),
                "CONSTANT_VALUE or EXPONENTIAL_WITH_JITTER (doubling up to 5 minutes, ±20%).",
            )
            .validator(Validator::OneOf(vec!["CONSTANT_VALUE", "EXPONENTIAL_WITH_JITTER"])),
        )
        .define(key(
            RETRY_AFTER_BODY_POINTER,
            ConfigType::String,
            Some("/parameters/retry_after"),
            "Our own: JSON pointer to a delay in seconds in a 429/503 body (Telegram's); empty to ignore bodies.",
        ))
        .define(
            key(
                NULL_VALUES,
                ConfigType::String,
                Some("ignore"),
                "Records with a null value: ignore, log, delete (an HTTP DELETE) or fail.",
            )
            .validator(Validator::OneOf(vec!["ignore", "log", "delete", "fail"])),
        )
        .define(
            key(
                ON_ERROR,
                ConfigType::String,
                Some("fail"),
                "Records the target refused for good: fail (to the errant-record reporter; without one the task fails), \
                 ignore or log (skipped).",
            )
            .validator(Validator::OneOf(vec!["fail", "ignore", "log"])),
        )
        .define(
            key(
                MAX_IN_FLIGHT,
                ConfigType::Int,
                Some("1"),
                "Our own: requests open at once per task. 1 keeps the target's order; more may reorder records.",
            )
            .validator(Validator::between(1.0, 1000.0)),
        )
}

fn config_error(key: &str, message: impl std::fmt::Display) -> ConnectError {
    ConnectError::fatal(format!("{key}: {message}"))
}

fn headers(text: &str, separator: &str) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    if text.trim().is_empty() {
        return Ok(headers);
    }
    let pieces: Vec<&str> = if separator.is_empty() { vec![text] } else { text.split(separator).collect() };
    for piece in pieces.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = piece.split_once(':').ok_or_else(|| config_error(HEADERS, format!("{piece:?} is not `Name: value`")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| config_error(HEADERS, format!("{name:?}: {e}")))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|e| config_error(HEADERS, format!("{value:?}: {e}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn regexes(parsed: &ParsedConfig) -> Result<Vec<RegexRewrite>> {
    let separator = parsed.string(REGEX_SEPARATOR);
    let split = |text: String| -> Vec<String> {
        if text.is_empty() {
            Vec::new()
        } else if separator.is_empty() {
            vec![text]
        } else {
            text.split(separator.as_str()).map(str::to_string).collect()
        }
    };
    let patterns = split(parsed.string(REGEX_PATTERNS));
    let mut replacements = split(parsed.string(REGEX_REPLACEMENTS));
    if replacements.len() > patterns.len() {
        return Err(config_error(
            REGEX_REPLACEMENTS,
            format!("{} replacements for {} patterns (separated by {separator:?})", replacements.len(), patterns.len()),
        ));
    }
    // A pattern without a replacement deletes what it matches, as an empty replacement would.
    replacements.resize(patterns.len(), String::new());
    patterns
        .iter()
        .zip(&replacements)
        .map(|(pattern, replacement)| RegexRewrite::new(pattern, replacement).map_err(|e| config_error(REGEX_PATTERNS, e)))
        .collect()
}

impl HttpSinkConfig {
    pub fn parse(config: &Config) -> Result<Self> {
        let parsed = def().parse(config).map_err(|e| ConnectError::fatal(e.to_string()))?;
        let http = HttpSettings::from_config(&parsed)?;
        let url = BodyTemplate::parse_text(&http.api_url, &[Placeholder::Topic, Placeholder::Key])
            .map_err(|e| config_error(kit_http::API_URL, e))?;
        reqwest::Url::parse(&http.api_url.replace("${topic}", "t").replace("${key}", "k"))
            .map_err(|e| config_error(kit_http::API_URL, format!("{:?}: {e}", http.api_url)))?;
        let method = Method::from_bytes(parsed.string(REQUEST_METHOD).trim().to_ascii_uppercase().as_bytes())
            .map_err(|e| config_error(REQUEST_METHOD, e))?;
        let body_template = match parsed.optional_string(BODY_TEMPLATE).filter(|t| !t.is_empty()) {
            Some(text) => Some(BodyTemplate::parse_json(&text).map_err(|e| config_error(BODY_TEMPLATE, e))?),
            None => None,
        };
        let backoff = Duration::from_millis(parsed.int(RETRY_BACKOFF_MS) as u64);
        let max_retries = parsed.int(MAX_RETRIES) as u32;
        let retry_backoff = if parsed.string(RETRY_BACKOFF_POLICY).eq_ignore_ascii_case("CONSTANT_VALUE") {
            BackoffPolicy::constant(backoff)
        } else {
            BackoffPolicy::exponential(backoff, MAX_RETRY_BACKOFF.max(backoff)).with_jitter(Jitter::Symmetric(0.2))
        }
        .with_max_attempts(max_retries);
        let lower = |key: &str| parsed.string(key).trim().to_ascii_lowercase();
        Ok(HttpSinkConfig {
            url,
            method,
            headers: headers(&parsed.string(HEADERS), &parsed.string(HEADER_SEPARATOR))?,
            batch_max_size: parsed.int(BATCH_MAX_SIZE).max(1) as usize,
            batch_prefix: parsed.string(BATCH_PREFIX),
            batch_suffix: parsed.string(BATCH_SUFFIX),
            batch_separator: parsed.string(BATCH_SEPARATOR),
            batch_json_as_array: parsed.boolean(BATCH_JSON_AS_ARRAY),
            batch_key: BodyTemplate::parse_text(&parsed.string(BATCH_KEY_PATTERN), &[Placeholder::Topic, Placeholder::Key])
                .map_err(|e| config_error(BATCH_KEY_PATTERN, e))?,
            body_format: if lower(BODY_FORMAT) == "json" { BodyFormat::Json } else { BodyFormat::String },
            body_template,
            regexes: regexes(&parsed)?,
            retry_codes: StatusCodes::parse(&parsed.string(RETRY_ON_STATUS_CODES)).map_err(|e| config_error(RETRY_ON_STATUS_CODES, e))?,
            max_retries,
            retry_backoff,
            retry_after_pointer: parsed.optional_string(RETRY_AFTER_BODY_POINTER).filter(|p| !p.is_empty()),
            on_null: match lower(NULL_VALUES).as_str() {
                "log" => OnNull::Log,
                "delete" => OnNull::Delete,
                "fail" => OnNull::Fail,
                _ => OnNull::Ignore,
            },
            on_error: match lower(ON_ERROR).as_str() {
                "ignore" => OnError::Ignore,
                "log" => OnError::Log,
                _ => OnError::Fail,
            },
            max_in_flight: parsed.int(MAX_IN_FLIGHT).max(1) as usize,
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn status_code_ranges() {
        let codes = StatusCodes::parse("404,408,500-").unwrap();
        assert!(codes.contains(404) && codes.contains(408) && codes.contains(500) && codes.contains(599));
        assert!(!codes.contains(400) && !codes.contains(409) && !codes.contains(499));
        let default = StatusCodes::parse(DEFAULT_RETRY_CODES).unwrap();
        assert!(default.contains(429) && default.contains(503) && !default.contains(400));
        assert!(StatusCodes::parse("400-").unwrap().contains(400));
        assert!(StatusCodes::parse("500-400").is_err());
        assert!(StatusCodes::parse("abc").is_err());
    }

    #[test]
    fn the_telegram_config_parses() {
        let c = HttpSinkConfig::parse(&config(&[
            ("http.api.url", "https://api.telegram.org/bot123:abc/sendMessage"),
            ("request.method", "post"),
            ("headers", "Content-Type: application/json"),
            ("batch.max.size", "1"),
            ("batch.prefix", r#"{"chat_id":"-364377679","parse_mode": "markdown","#),
            ("batch.suffix", "}"),
            ("regex.patterns", r".*\{MESSAGE=(.*)\}.*"),
            ("regex.replacements", r#""text":"$1""#),
            ("regex.separator", "~"),
        ]))
        .unwrap();
        assert_eq!(c.method, Method::POST);
        assert_eq!(c.headers.get("content-type").unwrap(), "application/json");
        assert_eq!(c.regexes.len(), 1);
        assert_eq!(c.body_format, BodyFormat::String);
        assert_eq!(c.on_error, OnError::Fail);
        assert_eq!(c.max_retries, 5);
    }

    #[test]
    fn mistakes_are_named() {
        let base = [("http.api.url", "http://127.0.0.1/x")];
        let err = |extra: &[(&str, &str)]| {
            let mut c = config(&base);
            c.extend(config(extra));
            HttpSinkConfig::parse(&c).unwrap_err().to_string()
        };
        assert!(err(&[("headers", "no colon here")]).contains("headers"));
        assert!(err(&[("regex.patterns", "a~b"), ("regex.replacements", "x~y~z")]).contains("regex.replacements"));
        assert!(err(&[("regex.patterns", "(")]).contains("regex.patterns"));
        assert!(err(&[("request.method", "GET")]).contains("request.method"));
        assert!(err(&[("request.body.template", "${nope}")]).contains("request.body.template"));
        assert!(HttpSinkConfig::parse(&config(&[("http.api.url", "not a url")])).is_err());
        let c = HttpSinkConfig::parse(&config(&[("http.api.url", "http://h/x"), ("headers", "A: 1|B: two: parts")])).unwrap();
        assert_eq!(c.headers.get("b").unwrap(), "two: parts");
    }
}
