//! Config providers (Kafka's `ConfigProvider`, KIP-297): values such as `${file:/etc/secrets.properties:db.password}`
//! are placeholders that a provider resolves when a connector or task starts, so configs that REST serves and the
//! worker stores hold the placeholder, never the secret.
//!
//! The placeholder syntax is Kafka's: `${provider:[path:]key}`.

use crate::Config;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// Why a provider could not give a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProviderError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Unreadable(String),
    #[error("{0}")]
    Invalid(String),
}

/// A source of configuration values, looked up by path and keys.
pub trait ConfigProvider: Send + Sync {
    /// Values of `keys` under `path` (empty for providers without paths). A key that is not there is left
    /// out of the answer; the caller reports it.
    fn get(&self, path: &str, keys: &BTreeSet<String>) -> Result<BTreeMap<String, String>, ConfigProviderError>;
}

/// One `${provider:path:key}` in a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub provider: String,
    pub path: String,
    pub key: String,
}

fn pattern() -> &'static Regex {
    // Kafka's ConfigTransformer.DEFAULT_PATTERN.
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").expect("valid pattern"))
}

/// The placeholders in one value, in order.
pub fn placeholders(value: &str) -> Vec<Placeholder> {
    pattern()
        .captures_iter(value)
        .map(|c| Placeholder {
            provider: c[1].to_string(),
            path: c.get(3).map(|m| m.as_str().to_string()).unwrap_or_default(),
            key: c[4].to_string(),
        })
        .collect()
}

/// Whether any value of `config` holds a placeholder.
pub fn has_placeholders(config: &Config) -> bool {
    config.values().any(|v| pattern().is_match(v))
}

/// A config with its placeholders resolved, plus the resolved values to hide from logs and traces.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub config: Config,
    /// Every value a placeholder resolved to.
    pub secrets: Vec<String>,
}

/// The providers a worker has (`config.providers`), by name.
#[derive(Clone, Default)]
pub struct ConfigTransformer {
    providers: BTreeMap<String, Arc<dyn ConfigProvider>>,
}

impl std::fmt::Debug for ConfigTransformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigTransformer").field("providers", &self.providers.keys().collect::<Vec<_>>()).finish()
    }
}

impl ConfigTransformer {
    pub fn new(providers: BTreeMap<String, Arc<dyn ConfigProvider>>) -> Self {
        ConfigTransformer { providers }
    }

    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// Resolve every placeholder of `config`. Unlike Kafka, which passes an unresolvable placeholder on as
    /// literal text, any placeholder that cannot be resolved is an error for its key, so a missing secret is
    /// a validation error rather than a password of `${file:...}`.
    pub fn transform(&self, config: &Config) -> Result<Resolved, BTreeMap<String, String>> {
        // One lookup per (provider, path), as Kafka does.
        let mut wanted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for value in config.values() {
            for p in placeholders(value) {
                wanted.entry((p.provider, p.path)).or_default().insert(p.key);
            }
        }
        if wanted.is_empty() {
            return Ok(Resolved { config: config.clone(), secrets: Vec::new() });
        }
        let mut found: BTreeMap<(String, String), Result<BTreeMap<String, String>, String>> = BTreeMap::new();
        for ((provider, path), keys) in wanted {
            let answer = match self.providers.get(&provider) {
                None => Err(format!(
                    "no config provider named '{provider}' is configured (set config.providers and config.providers.{provider}.class in the worker config)"
                )),
                Some(p) => p.get(&path, &keys).map_err(|e| e.to_string()),
            };
            found.insert((provider, path), answer);
        }
        let mut errors = BTreeMap::new();
        let mut secrets = BTreeSet::new();
        let mut out = Config::new();
        for (key, value) in config {
            let mut failure = None;
            let resolved = pattern().replace_all(value, |c: &regex::Captures| {
                let provider = c[1].to_string();
                let path = c.get(3).map(|m| m.as_str().to_string()).unwrap_or_default();
                let wanted_key = &c[4];
                match found.get(&(provider.clone(), path.clone())).expect("looked up above") {
                    Err(e) => {
                        failure.get_or_insert_with(|| e.clone());
                        String::new()
                    }
                    Ok(values) => match values.get(wanted_key) {
                        Some(v) => {
                            secrets.insert(v.clone());
                            v.clone()
                        }
                        None => {
                            let at = if path.is_empty() { String::new() } else { format!(" in {path}") };
                            failure.get_or_insert_with(|| format!("config provider '{provider}' has no value for '{wanted_key}'{at}"));
                            String::new()
                        }
                    },
                }
            });
            match failure {
                Some(e) => {
                    errors.insert(key.clone(), format!("Invalid value {value} for configuration {key}: {e}"));
                }
                None => {
                    out.insert(key.clone(), resolved.into_owned());
                }
            }
        }
        if errors.is_empty() {
            Ok(Resolved { config: out, secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect() })
        } else {
            Err(errors)
        }
    }
}

/// Put placeholders back: every key of `shown` whose value equals what the same key of `raw` resolved to gets
/// `raw`'s placeholder text again. Task configs a connector derives from its resolved config are shown this way.
pub fn unresolve(shown: &Config, raw: &Config, resolved: &Config) -> Config {
    shown
        .iter()
        .map(|(k, v)| match (raw.get(k), resolved.get(k)) {
            (Some(r), Some(res)) if res == v && r != res => (k.clone(), r.clone()),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Replace every occurrence of a secret in `text` with `[hidden]`, longest first so that one secret containing
/// another is hidden whole.
pub fn redact(text: &str, secrets: &[String]) -> String {
    if secrets.is_empty() {
        return text.to_string();
    }
    let mut sorted: Vec<&String> = secrets.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[hidden]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl ConfigProvider for Fixed {
        fn get(&self, path: &str, keys: &BTreeSet<String>) -> Result<BTreeMap<String, String>, ConfigProviderError> {
            if path == "/forbidden" {
                return Err(ConfigProviderError::NotAllowed("path /forbidden is not allowed".into()));
            }
            Ok(keys.iter().filter(|k| k.as_str() != "missing").map(|k| (k.clone(), format!("{path}|{k}"))).collect())
        }
    }

    fn transformer() -> ConfigTransformer {
        ConfigTransformer::new([("file".to_string(), Arc::new(Fixed) as Arc<dyn ConfigProvider>)].into())
    }

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_kafka_placeholder_syntax() {
        assert_eq!(
            placeholders("${file:/etc/x.properties:db.password}"),
            vec![Placeholder { provider: "file".into(), path: "/etc/x.properties".into(), key: "db.password".into() }]
        );
        assert_eq!(placeholders("${env:HOME}"), vec![Placeholder { provider: "env".into(), path: "".into(), key: "HOME".into() }]);
        // TimestampRouter's and the JDBC sink's own templates are no placeholders.
        assert!(placeholders("${topic}-${timestamp}").is_empty());
    }

    #[test]
    fn resolves_inside_text_and_collects_secrets() {
        let r = transformer().transform(&cfg(&[("url", "jdbc:x?password=${file:/p:pw}&u=${file:/p:user}"), ("plain", "x")])).unwrap();
        assert_eq!(r.config["url"], "jdbc:x?password=/p|pw&u=/p|user");
        assert_eq!(r.config["plain"], "x");
        assert_eq!(r.secrets, vec!["/p|pw".to_string(), "/p|user".to_string()]);
    }

    #[test]
    fn unresolvable_placeholders_are_errors_naming_the_key() {
        let errors = transformer()
            .transform(&cfg(&[("a", "${file:/p:missing}"), ("b", "${vault:/x:y}"), ("c", "${file:/forbidden:k}"), ("d", "ok")]))
            .unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(errors["a"].contains("has no value for 'missing' in /p"), "{}", errors["a"]);
        assert!(errors["b"].contains("no config provider named 'vault'"), "{}", errors["b"]);
        assert!(errors["c"].contains("not allowed"), "{}", errors["c"]);
    }

    #[test]
    fn unresolve_and_redact() {
        let raw = cfg(&[("pw", "${file:/p:pw}"), ("file", "/data")]);
        let resolved = transformer().transform(&raw).unwrap();
        let task = cfg(&[("pw", "/p|pw"), ("file", "/data"), ("task.id", "0")]);
        let shown = unresolve(&task, &raw, &resolved.config);
        assert_eq!(shown["pw"], "${file:/p:pw}");
        assert_eq!(shown["task.id"], "0");
        assert_eq!(redact("failed to log in with /p|pw", &resolved.secrets), "failed to log in with [hidden]");
    }
}
