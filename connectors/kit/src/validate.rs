//! Cross-key validation for `Connector::validate`: what a connector's typed config parser refuses once every key
//! passed its own check, filed under the key the message names.

use connect_core::{Config, ConfigDef};
use std::collections::BTreeMap;
use std::fmt::Display;

/// Runs `parse` when `def` accepts every key on its own, and files its error under the key its message starts
/// with (`"headers: ..."`), else under `fallback`. Per-key errors are the runtime's to report (from `def`).
pub fn cross_key_errors<E: Display>(
    def: &ConfigDef,
    config: &Config,
    fallback: &str,
    parse: impl FnOnce(&Config) -> Result<(), E>,
) -> BTreeMap<String, Vec<String>> {
    let mut errors = BTreeMap::new();
    if def.parse(config).is_err() {
        return errors;
    }
    if let Err(e) = parse(config) {
        let message = e.to_string();
        let key = def.keys().iter().map(|k| k.name.as_str()).find(|k| message.strip_prefix(k).is_some_and(|rest| rest.starts_with(':')));
        errors.insert(key.unwrap_or(fallback).to_string(), vec![message]);
    }
    errors
}

/// Confluent's proprietary connectors (MQTT, ActiveMQ) take `confluent.license` and `confluent.topic.*` for
/// their license topic; configs people copy carry them. Accept them and say once that they are ignored.
pub fn note_confluent_license_keys(config: &Config) {
    if config.keys().any(|k| k.starts_with("confluent.topic") || k.starts_with("confluent.license")) {
        tracing::info!("confluent.topic.* and confluent.license are accepted and ignored: connect-rs needs no license topic");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{ConfigKey, ConfigType, Importance};

    #[test]
    fn errors_are_filed_under_the_key_they_name() {
        let def = ConfigDef::new().define(ConfigKey::required("url", ConfigType::String, Importance::High, "u")).define(ConfigKey::new(
            "headers",
            ConfigType::String,
            Some(""),
            Importance::Low,
            "h",
        ));
        let config: Config = [("url".to_string(), "x".to_string())].into();
        let got = cross_key_errors(&def, &config, "url", |_| Err("headers: not `Name: value`"));
        assert_eq!(got["headers"], ["headers: not `Name: value`"]);
        assert_eq!(cross_key_errors(&def, &config, "url", |_| Err("something else")).keys().collect::<Vec<_>>(), ["url"]);
        assert!(cross_key_errors(&def, &Config::new(), "url", |_| Err("never run")).is_empty(), "per-key errors are not repeated");
        assert!(cross_key_errors::<String>(&def, &config, "url", |_| Ok(())).is_empty());
    }
}
