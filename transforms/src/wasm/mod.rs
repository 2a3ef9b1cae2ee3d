//! `io.connectrs.transforms.Wasm`: a user's own transform as a sandboxed WebAssembly module (ABI v1, see
//! docs/wasm-abi.md). The module sees each record as JSON and answers with a record, several, or none.
//!
//! One instance per task, reused across records; fuel, a memory cap and a deadline bound every record, and a
//! record the module fails on is a data error (the DLQ and `errors.tolerance` decide), never the task's end.

mod envelope;
mod runtime;

use connect_core::transform::{Transformation, Transformed};
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Validator};
use runtime::{Guest, Limits};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::sync::Mutex;

const MODULE_PATH: &str = "module.path";
const FUEL: &str = "fuel";
/// ABI v1 packs an answer's address into the upper half of an i64 whose sign means "error".
const MEMORY_MAX_LIMIT: i64 = 1 << 31;
const MEMORY_MAX: &str = "memory.max.bytes";
const TIMEOUT: &str = "timeout.ms";
/// The operator's choice of cache directory (empty: no cache). Not a connector key: the worker runs the cached
/// code natively, so only whoever starts the worker may say where it comes from.
pub const CACHE_DIR_ENV: &str = "CONNECT_WASM_CACHE_DIR";
/// Keys under this prefix go to the module's `configure`, without it.
const CONFIG_PREFIX: &str = "config.";

#[derive(Default)]
pub struct Wasm {
    running: Option<Mutex<Running>>,
    /// Set by tests: the cache directory instead of the environment's (`Some(None)`: no cache).
    cache_dir: Option<Option<PathBuf>>,
}

/// The guest and the buffer the record's JSON is written into, reused across records.
struct Running {
    guest: Guest,
    input: Vec<u8>,
}

/// Where compiled modules are cached: `$CONNECT_WASM_CACHE_DIR` (empty: nowhere), else
/// `$XDG_CACHE_HOME/connect-rs/wasm`, else `~/.cache/connect-rs/wasm`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("connect-rs").join("wasm"))
}

impl Transformation for Wasm {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::required(
                MODULE_PATH,
                ConfigType::String,
                Importance::High,
                "The module: a `.wasm` file, or WebAssembly text (`.wat`). It must export ABI v1's `memory`, `alloc` and `transform` (docs/wasm-abi.md).",
            ))
            .define(
                ConfigKey::new(
                    FUEL,
                    ConfigType::Long,
                    Some("10000000"),
                    Importance::Medium,
                    "Fuel per record (about one unit per WebAssembly instruction). A module that runs out fails that record, not the task.",
                )
                .validator(Validator::at_least(1.0)),
            )
            .define(
                ConfigKey::new(
                    MEMORY_MAX,
                    ConfigType::Long,
                    Some("67108864"),
                    Importance::Medium,
                    "Largest linear memory the module may grow to, in bytes (at most 2 GiB: ABI v1 answers lie below address 2^31). Growing past it fails that record.",
                )
                .validator(Validator::between(65536.0, MEMORY_MAX_LIMIT as f64)),
            )
            .define(
                ConfigKey::new(
                    TIMEOUT,
                    ConfigType::Long,
                    Some("1000"),
                    Importance::Medium,
                    "Wall-clock bound per record, a second guard beside fuel (checked every 50 ms). A record past it fails.",
                )
                .validator(Validator::at_least(1.0)),
            )
    }

    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        let path = PathBuf::from(parsed.string(MODULE_PATH));
        let limits = Limits {
            fuel: parsed.int(FUEL) as u64,
            memory_max_bytes: usize::try_from(parsed.int(MEMORY_MAX)).unwrap_or(usize::MAX),
            timeout_ms: parsed.int(TIMEOUT) as u64,
        };
        let cache_dir = self.cache_dir.clone().unwrap_or_else(cache_dir);
        // The `config.*` keys as one JSON object of strings, for the module's `configure`.
        let module_config: serde_json::Map<String, Json> = config
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(CONFIG_PREFIX).map(|name| (name.to_string(), Json::String(v.clone()))))
            .collect();
        let module_config = serde_json::to_vec(&module_config).expect("a map of strings serializes");
        let fatal = |e: runtime::LoadError| ConnectError::fatal(e.to_string());

        let module = runtime::load_module(&path, cache_dir.as_deref()).map_err(fatal)?;
        let guest = Guest::start(&module, &path, limits, module_config).map_err(fatal)?;
        self.running = Some(Mutex::new(Running { guest, input: Vec::new() }));
        Ok(())
    }

    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let running = self.running.as_ref().ok_or_else(|| ConnectError::fatal("the Wasm transform was not configured"))?;
        // One task applies its chain from one thread; the lock is only ever contended by a misuse.
        let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
        let Running { guest, input } = &mut *running;
        envelope::encode(record, input);
        let answer = guest.call(input).map_err(|fault| match fault {
            runtime::Fault::Unusable(_) => ConnectError::fatal(fault.to_string()),
            other => ConnectError::data(other.to_string()),
        })?;
        if answer == input.as_slice() {
            // Handed back as it came: the record goes on as it was, typed values and schemas included.
            return Ok(Transformed::Keep);
        }
        let answer: Json =
            serde_json::from_slice(answer).map_err(|e| ConnectError::data(format!("the module's answer is not JSON: {e}")))?;
        match answer {
            Json::Object(fields) => {
                envelope::apply(fields, record)?;
                Ok(Transformed::Keep)
            }
            Json::Array(items) if items.is_empty() => Ok(Transformed::Drop),
            Json::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    let Json::Object(fields) = item else {
                        return Err(ConnectError::data("the module's answer is an array holding something other than record objects"));
                    };
                    let mut part = record.clone();
                    envelope::apply(fields, &mut part)?;
                    parts.push(part);
                }
                Ok(Transformed::Split(parts))
            }
            other => Err(ConnectError::data(format!(
                "the module's answer must be a record object or an array of them, not {}",
                match other {
                    Json::Null => "null",
                    Json::Bool(_) => "a boolean",
                    Json::Number(_) => "a number",
                    _ => "a string",
                }
            ))),
        }
    }
}

#[cfg(test)]
impl Wasm {
    /// A transform that caches compiled code in `dir` (`None`: nowhere), whatever the environment says.
    fn with_cache_dir(dir: Option<PathBuf>) -> Self {
        Wasm { running: None, cache_dir: Some(dir) }
    }
}

#[cfg(test)]
mod tests;
