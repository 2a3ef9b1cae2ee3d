//! Kafka's built-in config providers, set up from the worker config as Kafka sets them up:
//!
//! ```properties
//! config.providers=file,dir,env
//! config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
//! config.providers.file.param.allowed.paths=/etc/connect/secrets
//! config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
//! config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
//! config.providers.env.param.allowlist.pattern=^CONNECT_.*
//! ```

use connect_core::config::{parse_list, with_prefix};
use connect_core::config_provider::{ConfigProvider, ConfigProviderError, ConfigTransformer};
use connect_core::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const FILE_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
pub const DIRECTORY_PROVIDER: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";
pub const ENV_PROVIDER: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";

/// The providers named by `config.providers` in a worker config.
pub fn from_worker_config(worker: &Config) -> Result<ConfigTransformer, String> {
    let mut providers: BTreeMap<String, Arc<dyn ConfigProvider>> = BTreeMap::new();
    for name in parse_list(worker.get("config.providers").map(String::as_str).unwrap_or("")) {
        let class_key = format!("config.providers.{name}.class");
        let class = worker
            .get(&class_key)
            .ok_or_else(|| format!("config provider '{name}' is listed in config.providers but {class_key} is not set"))?;
        let params = with_prefix(worker, &format!("config.providers.{name}.param."));
        let provider: Arc<dyn ConfigProvider> = match short_name(class) {
            "FileConfigProvider" => Arc::new(FileConfigProvider { allowed: AllowedPaths::from_params(&params)? }),
            "DirectoryConfigProvider" => Arc::new(DirectoryConfigProvider { allowed: AllowedPaths::from_params(&params)? }),
            "EnvVarConfigProvider" => Arc::new(EnvVarConfigProvider::from_params(&params)?),
            _ => {
                return Err(format!(
                    "Invalid value {class} for configuration {class_key}: unknown config provider; known are {FILE_PROVIDER}, {DIRECTORY_PROVIDER} and {ENV_PROVIDER}"
                ))
            }
        };
        providers.insert(name, provider);
    }
    Ok(ConfigTransformer::new(providers))
}

fn short_name(class: &str) -> &str {
    class.trim().rsplit('.').next().unwrap_or(class)
}

/// `allowed.paths`: when set, only files under these directories (after resolving `..` and symlinks) can be read.
#[derive(Debug, Clone, Default)]
struct AllowedPaths(Option<Vec<PathBuf>>);

impl AllowedPaths {
    fn from_params(params: &Config) -> Result<Self, String> {
        let Some(list) = params.get("allowed.paths").filter(|v| !v.trim().is_empty()) else { return Ok(AllowedPaths(None)) };
        let mut paths = Vec::new();
        for p in parse_list(list) {
            let path = Path::new(&p);
            if !path.is_absolute() {
                return Err(format!("Invalid value {p} for configuration allowed.paths: Path {p} is not absolute"));
            }
            paths.push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
        }
        Ok(AllowedPaths(Some(paths)))
    }

    /// The canonical path, if it may be read.
    fn check(&self, path: &str) -> Result<PathBuf, ConfigProviderError> {
        let canonical = Path::new(path).canonicalize().map_err(|e| ConfigProviderError::Unreadable(format!("cannot read {path}: {e}")))?;
        match &self.0 {
            Some(allowed) if !allowed.iter().any(|a| canonical.starts_with(a)) => {
                Err(ConfigProviderError::NotAllowed(format!("{path} is not allowed: it is not under allowed.paths")))
            }
            _ => Ok(canonical),
        }
    }
}

/// `${file:/path/to/file.properties:key}`: a key of a properties file.
struct FileConfigProvider {
    allowed: AllowedPaths,
}

impl ConfigProvider for FileConfigProvider {
    fn get(&self, path: &str, keys: &BTreeSet<String>) -> Result<BTreeMap<String, String>, ConfigProviderError> {
        if path.is_empty() {
            return Err(ConfigProviderError::Invalid("the file provider needs a path: ${file:/path/to/file.properties:key}".into()));
        }
        let file = self.allowed.check(path)?;
        let text = std::fs::read(&file).map_err(|e| ConfigProviderError::Unreadable(format!("cannot read {path}: {e}")))?;
        let all = java_properties::read(text.as_slice()).map_err(|e| ConfigProviderError::Invalid(format!("{path}: {e}")))?;
        Ok(all.into_iter().filter(|(k, _)| keys.contains(k)).collect())
    }
}

/// `${dir:/path/to/dir:file}`: the content of a file in a directory (Kubernetes secrets are mounted so).
struct DirectoryConfigProvider {
    allowed: AllowedPaths,
}

impl ConfigProvider for DirectoryConfigProvider {
    fn get(&self, path: &str, keys: &BTreeSet<String>) -> Result<BTreeMap<String, String>, ConfigProviderError> {
        if path.is_empty() {
            return Err(ConfigProviderError::Invalid("the directory provider needs a path: ${dir:/path/to/dir:file}".into()));
        }
        let dir = self.allowed.check(path)?;
        if !dir.is_dir() {
            return Err(ConfigProviderError::Invalid(format!("{path} is not a directory")));
        }
        let mut out = BTreeMap::new();
        for key in keys {
            // Only plain file names: a key must not walk out of the directory.
            if key.contains('/') || key == ".." || key == "." {
                continue;
            }
            let file = dir.join(key);
            if file.is_file() {
                let value = std::fs::read_to_string(&file)
                    .map_err(|e| ConfigProviderError::Unreadable(format!("cannot read {}: {e}", file.display())))?;
                out.insert(key.clone(), value);
            }
        }
        Ok(out)
    }
}

/// `${env:NAME}`: an environment variable of the worker, if its name matches `allowlist.pattern`.
struct EnvVarConfigProvider {
    allowlist: regex::Regex,
}

impl EnvVarConfigProvider {
    fn from_params(params: &Config) -> Result<Self, String> {
        let pattern = params.get("allowlist.pattern").map(String::as_str).unwrap_or(".*");
        let allowlist = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("Invalid value {pattern} for configuration allowlist.pattern: {e}"))?;
        Ok(EnvVarConfigProvider { allowlist })
    }
}

impl ConfigProvider for EnvVarConfigProvider {
    fn get(&self, path: &str, keys: &BTreeSet<String>) -> Result<BTreeMap<String, String>, ConfigProviderError> {
        if !path.is_empty() {
            return Err(ConfigProviderError::Invalid(format!("the env provider takes no path (got '{path}'): ${{env:NAME}}")));
        }
        let mut out = BTreeMap::new();
        for key in keys {
            if !self.allowlist.is_match(key) {
                return Err(ConfigProviderError::NotAllowed(format!("environment variable {key} does not match allowlist.pattern")));
            }
            if let Ok(v) = std::env::var(key) {
                out.insert(key.clone(), v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn file_dir_and_env_providers_resolve_with_their_limits() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(allowed.path().join("db.properties"), "user=connect\npassword = s3cr3t\n").unwrap();
        std::fs::write(outside.path().join("db.properties"), "password=other\n").unwrap();
        std::fs::create_dir(allowed.path().join("k8s")).unwrap();
        std::fs::write(allowed.path().join("k8s/token"), "tok-123").unwrap();
        let worker = cfg(&[
            ("config.providers", "file, dir,env"),
            ("config.providers.file.class", FILE_PROVIDER),
            ("config.providers.file.param.allowed.paths", allowed.path().to_str().unwrap()),
            ("config.providers.dir.class", "DirectoryConfigProvider"),
            ("config.providers.env.class", ENV_PROVIDER),
            ("config.providers.env.param.allowlist.pattern", "CONNECT_RS_TEST_.*|PATH"),
        ]);
        let t = from_worker_config(&worker).unwrap();
        let props = allowed.path().join("db.properties");
        let r = t
            .transform(&cfg(&[
                ("connection.password", &format!("${{file:{}:password}}", props.display())),
                ("token", &format!("${{dir:{}/k8s:token}}", allowed.path().display())),
                ("path", "${env:PATH}"),
            ]))
            .unwrap();
        assert_eq!(r.config["connection.password"], "s3cr3t");
        assert_eq!(r.config["token"], "tok-123");
        assert_eq!(r.config["path"], std::env::var("PATH").unwrap());

        let outside_name = outside.path().file_name().unwrap().to_str().unwrap();
        let escaping = format!("${{file:{}/../{outside_name}/db.properties:password}}", allowed.path().display());
        let errors = t
            .transform(&cfg(&[
                ("a", &escaping),
                ("b", "${env:HOME}"),
                ("c", &format!("${{file:{}:nope}}", props.display())),
                ("d", &format!("${{file:{}/missing.properties:x}}", allowed.path().display())),
            ]))
            .unwrap_err();
        assert!(errors["a"].contains("not under allowed.paths"), "{}", errors["a"]);
        assert!(errors["b"].contains("does not match allowlist.pattern"), "{}", errors["b"]);
        assert!(errors["c"].contains("has no value for 'nope'"), "{}", errors["c"]);
        assert!(errors["d"].contains("cannot read"), "{}", errors["d"]);
    }

    #[test]
    fn bad_provider_setup_is_a_worker_config_error() {
        assert!(from_worker_config(&cfg(&[("config.providers", "file")])).unwrap_err().contains("config.providers.file.class is not set"));
        let e = from_worker_config(&cfg(&[("config.providers", "v"), ("config.providers.v.class", "com.example.Vault")])).unwrap_err();
        assert!(e.contains("unknown config provider"), "{e}");
    }
}
