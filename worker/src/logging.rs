//! Logging set-up and run-time log levels (`GET/PUT /admin/loggers`): loggers are tracing targets
//! (module paths such as `connect_worker::runtime::sink`), `root` is the default level.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing_subscriber::{reload, EnvFilter, Registry};

type Handle = reload::Handle<EnvFilter, Registry>;

pub struct LogControl {
    handle: Handle,
    state: Mutex<LogState>,
}

struct LogState {
    root: String,
    /// logger → (level, last modified in epoch ms)
    loggers: BTreeMap<String, (String, Option<u64>)>,
    root_modified: Option<u64>,
}

static CONTROL: OnceLock<LogControl> = OnceLock::new();

/// How log lines look: Kafka Connect's usual text, or one JSON object a line for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// `{"timestamp":..,"level":..,"target":..,"message":..,"connector":..,"task":..,...}`: the event's
    /// fields (connector, task, a failed record's coordinates) at the top level, with the current span's.
    Json,
}

impl LogFormat {
    /// `log.format` / `CONNECT_LOG_FORMAT`: `text` or `json` (any case).
    pub fn parse(value: &str) -> Option<LogFormat> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Install the global subscriber: `RUST_LOG` if set, else `info` with librdkafka at `warn`.
pub fn init(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (root, loggers) = match std::env::var("RUST_LOG") {
        Ok(spec) => parse_spec(&spec),
        Err(_) => (
            "info".to_string(),
            [("librdkafka", "warn"), ("rdkafka", "warn")].iter().map(|(k, v)| (k.to_string(), (v.to_string(), None))).collect(),
        ),
    };
    let filter = build_filter(&root, &loggers);
    let (layer, handle) = reload::Layer::new(filter);
    let (text, json) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(|| RedactingWriter(std::io::stderr()))
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(|| RedactingWriter(std::io::stderr())),
            ),
        ),
    };
    let _ = tracing_subscriber::registry().with(layer).with(text).with(json).try_init();
    let _ = CONTROL.set(LogControl { handle, state: Mutex::new(LogState { root, loggers, root_modified: None }) });
}

/// Values resolved from config-provider placeholders: no log line and no status trace shows them.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Hide these values from every later log line and status trace (they stay hidden for the process's life:
/// a secret that was once in use must not show up in a late error either).
pub fn hide_secrets(secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for s in secrets {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
}

/// `text` with every hidden secret replaced by `[hidden]`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    connect_core::config_provider::redact(text, &secrets)
}

/// stderr, with secrets replaced. The fmt layer writes each event with one `write_all` of the whole
/// formatted line, so a secret is never split across two writes.
struct RedactingWriter(std::io::Stderr);

impl std::io::Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let empty = SECRETS.read().map(|s| s.is_empty()).unwrap_or(false);
        if empty {
            return self.0.write(buf);
        }
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The run-time control, when [`init`] ran (not in unit tests).
pub fn control() -> Option<&'static LogControl> {
    CONTROL.get()
}

fn parse_spec(spec: &str) -> (String, BTreeMap<String, (String, Option<u64>)>) {
    let mut root = "info".to_string();
    let mut loggers = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((target, level)) => {
                loggers.insert(target.to_string(), (level.to_string(), None));
            }
            None => root = part.to_string(),
        }
    }
    (root, loggers)
}

fn build_filter(root: &str, loggers: &BTreeMap<String, (String, Option<u64>)>) -> EnvFilter {
    let mut spec = root.to_string();
    for (target, (level, _)) in loggers {
        spec.push_str(&format!(",{target}={level}"));
    }
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// A logger name a filter directive can hold: a module path (letters, digits, `_`, `:`, `.`, `-`).
pub fn valid_logger(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))
}

/// Kafka Connect's level names to tracing's; `None` for an unknown level.
pub fn level_name(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

impl LogControl {
    /// `{"<logger>": {"level": "INFO", "last_modified": ms|null}}`, with `root` first.
    pub fn list(&self) -> serde_json::Value {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = serde_json::Map::new();
        out.insert("root".into(), serde_json::json!({"level": s.root.to_uppercase(), "last_modified": s.root_modified}));
        for (name, (level, modified)) in &s.loggers {
            out.insert(name.clone(), serde_json::json!({"level": level.to_uppercase(), "last_modified": modified}));
        }
        serde_json::Value::Object(out)
    }

    /// The level of one logger (its own, or the root's).
    pub fn get(&self, name: &str) -> serde_json::Value {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.loggers.get(name) {
            Some((level, modified)) => serde_json::json!({"level": level.to_uppercase(), "last_modified": modified}),
            None => serde_json::json!({"level": s.root.to_uppercase(), "last_modified": s.root_modified}),
        }
    }

    /// Set a logger's level (`root`: the default); returns the loggers affected.
    pub fn set(&self, name: &str, level: &'static str) -> Result<Vec<String>, String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let affected = if name == "root" {
            s.root = level.to_string();
            s.root_modified = Some(now);
            std::iter::once("root".to_string()).chain(s.loggers.keys().cloned()).collect()
        } else {
            s.loggers.insert(name.to_string(), (level.to_string(), Some(now)));
            s.loggers.keys().filter(|k| k.starts_with(name)).cloned().collect()
        };
        self.handle.reload(build_filter(&s.root, &s.loggers)).map_err(|e| e.to_string())?;
        Ok(affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_levels() {
        let (root, loggers) = parse_spec("warn,connect_worker=debug");
        assert_eq!(root, "warn");
        assert_eq!(loggers["connect_worker"].0, "debug");
        assert_eq!(level_name("fatal"), Some("error"));
        assert_eq!(level_name("LOUD"), None);
    }
}
