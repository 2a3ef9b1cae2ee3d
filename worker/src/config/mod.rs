//! Worker and connector configuration files: Java `.properties` or JSON, with Kafka Connect's keys.

pub mod connector;
pub mod providers;

use connect_core::config::{config_from_json, with_prefix};
use connect_core::config_provider::ConfigTransformer;
use connect_core::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path} is not a valid properties file: {source}")]
    Properties { path: PathBuf, source: java_properties::PropertiesError },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Read a flat config from `.properties` or JSON (chosen by content: JSON starts with `{`).
pub fn read_config_file(path: &Path) -> Result<Config, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read { path: path.into(), source })?;
    if text.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|source| ConfigFileError::Json { path: path.into(), source })?;
        let obj =
            json.as_object().ok_or_else(|| ConfigFileError::Invalid { path: path.into(), message: "expected a JSON object".into() })?;
        return flatten_connector_json(obj).map_err(|message| ConfigFileError::Invalid { path: path.into(), message });
    }
    let map = java_properties::read(text.as_bytes()).map_err(|source| ConfigFileError::Properties { path: path.into(), source })?;
    Ok(map.into_iter().map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect())
}

/// Accept both connector JSON shapes: `{"name":..,"config":{..}}` (POST /connectors) and a flat map.
fn flatten_connector_json(obj: &serde_json::Map<String, serde_json::Value>) -> Result<Config, String> {
    match obj.get("config") {
        Some(serde_json::Value::Object(inner)) => {
            let mut config = config_from_json(inner)?;
            if let Some(name) = obj.get("name").and_then(|n| n.as_str()) {
                match config.get("name") {
                    Some(existing) if existing != name => {
                        return Err(format!("connector name '{name}' does not match config.name '{existing}'"));
                    }
                    _ => {
                        config.insert("name".into(), name.to_string());
                    }
                }
            }
            Ok(config)
        }
        _ => config_from_json(obj),
    }
}

/// The worker's settings. Unknown keys are kept in `raw` (client overrides read them from there).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub raw: Config,
    pub bootstrap_servers: String,
    pub offsets_file: PathBuf,
    pub offset_flush_interval: Duration,
    pub listeners: Vec<String>,
    pub task_shutdown_timeout: Duration,
    /// `worker.shutdown.timeout.ms` (connect-rs): after a stop signal the process exits within this, whatever
    /// state Kafka or a target is in (default: the task timeout + 10 s).
    pub shutdown_timeout: Duration,
    /// `config.providers`: resolves `${provider:path:key}` in connector configs (and in this config).
    pub providers: ConfigTransformer,
}

impl WorkerConfig {
    pub fn from_config(raw: Config) -> Result<Self, String> {
        // As in Kafka, the worker config's own placeholders are resolved too (e.g. a REST password).
        let providers = crate::config::providers::from_worker_config(&raw)?;
        let resolved = providers.transform(&raw).map_err(|errors| errors.into_values().collect::<Vec<_>>().join("; "))?;
        crate::logging::hide_secrets(&resolved.secrets);
        let raw = resolved.config;
        let ms = |key: &str, default: u64| -> Result<Duration, String> {
            match raw.get(key) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("Invalid value {v} for configuration {key}: Not a number of type LONG")),
            }
        };
        if raw.contains_key("plugin.path") {
            tracing::info!("plugin.path is accepted and ignored: connect-rs plugins are compiled in");
        }
        Ok(WorkerConfig {
            bootstrap_servers: raw.get("bootstrap.servers").cloned().unwrap_or_else(|| "localhost:9092".into()),
            offsets_file: PathBuf::from(raw.get("offset.storage.file.filename").cloned().unwrap_or_else(|| "/tmp/connect.offsets".into())),
            offset_flush_interval: ms("offset.flush.interval.ms", 60_000)?,
            listeners: connect_core::config::parse_list(raw.get("listeners").map(String::as_str).unwrap_or("http://127.0.0.1:8083")),
            task_shutdown_timeout: ms("task.shutdown.graceful.timeout.ms", 5_000)?,
            shutdown_timeout: ms(
                "worker.shutdown.timeout.ms",
                ms("task.shutdown.graceful.timeout.ms", 5_000)?.as_millis() as u64 + 10_000,
            )?,
            providers,
            raw,
        })
    }

    /// The directory holding standalone state: the one the offsets file lives in.
    pub fn state_dir(&self) -> PathBuf {
        match self.offsets_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Worker-level converter setting for `key` or `value` (class and its `key.converter.*` keys).
    pub fn converter(&self, side: &str) -> (String, Config) {
        let key = format!("{side}.converter");
        let class = self.raw.get(&key).cloned().unwrap_or_else(|| connect_core::converter::JSON_CONVERTER.to_string());
        (class, with_prefix(&self.raw, &format!("{key}.")))
    }

    /// `producer.*` / `consumer.*` / `admin.*` client settings.
    pub fn client_overrides(&self, prefix: &str) -> Config {
        with_prefix(&self.raw, &format!("{prefix}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_properties() {
        let f = file("# comment\nbootstrap.servers=127.0.0.1:9092\nkey.converter = org.apache.kafka.connect.storage.StringConverter\nkey.converter.schemas.enable=false\noffset.storage.file.filename=/tmp/x/connect.offsets\noffset.flush.interval.ms=1000\nproducer.linger.ms=5\n");
        let w = WorkerConfig::from_config(read_config_file(f.path()).unwrap()).unwrap();
        assert_eq!(w.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(w.offset_flush_interval, Duration::from_secs(1));
        assert_eq!(w.state_dir(), PathBuf::from("/tmp/x"));
        let (class, cfg) = w.converter("key");
        assert_eq!(class, "org.apache.kafka.connect.storage.StringConverter");
        assert_eq!(cfg["schemas.enable"], "false");
        assert_eq!(w.client_overrides("producer")["linger.ms"], "5");
    }

    #[test]
    fn reads_both_connector_json_shapes() {
        let a =
            read_config_file(file(r#"{"name":"s","config":{"connector.class":"FileStreamSource","tasks.max":1,"file":"/tmp/in"}}"#).path())
                .unwrap();
        let b =
            read_config_file(file(r#"{"name":"s","connector.class":"FileStreamSource","tasks.max":"1","file":"/tmp/in"}"#).path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["tasks.max"], "1");
        let err = read_config_file(file(r#"{"name":"a","config":{"name":"b"}}"#).path()).unwrap_err();
        assert!(err.to_string().contains("does not match"));
    }
}
