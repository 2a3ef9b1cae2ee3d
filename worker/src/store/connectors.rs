//! Standalone connector state: every connector's config and target state (RUNNING, PAUSED, STOPPED),
//! kept next to the offsets file and rewritten atomically on every change, so connectors created,
//! changed, paused, stopped or deleted over REST come back after a restart (Kafka Connect's standalone
//! mode forgets them).

use connect_core::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::store::offsets::write_atomically;

/// What the user asked a connector to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    #[default]
    Running,
    Paused,
    Stopped,
}

impl TargetState {
    /// `initial_state` of `POST /connectors`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RUNNING" => Some(TargetState::Running),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConnector {
    pub config: Config,
    #[serde(default)]
    pub state: TargetState,
    /// Topics the connector used (KIP-558 topic tracking).
    #[serde(default)]
    pub topics: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read connector state {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("connector state {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write connector state {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

pub struct ConnectorStore {
    path: PathBuf,
}

impl ConnectorStore {
    /// The store in `dir` (the directory of the offsets file).
    pub fn in_dir(dir: &Path) -> Self {
        ConnectorStore { path: dir.join("connect-rs-connectors.json") }
    }

    pub fn load(&self) -> Result<BTreeMap<String, StoredConnector>, StateError> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.is_empty() => Ok(BTreeMap::new()),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path: self.path.clone(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(StateError::Read { path: self.path.clone(), source }),
        }
    }

    pub fn save(&self, connectors: &BTreeMap<String, StoredConnector>) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(connectors).expect("plain JSON");
        write_atomically(&self.path, &bytes).map_err(|source| StateError::Write { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConnectorStore::in_dir(dir.path());
        assert!(store.load().unwrap().is_empty());
        let mut all = BTreeMap::new();
        all.insert(
            "a".to_string(),
            StoredConnector {
                config: [("name".to_string(), "a".to_string())].into_iter().collect(),
                state: TargetState::Paused,
                topics: vec!["t".into()],
            },
        );
        store.save(&all).unwrap();
        assert_eq!(store.load().unwrap(), all);
        assert_eq!(TargetState::parse("STOPPED"), Some(TargetState::Stopped));
        assert_eq!(TargetState::parse("stopped"), None);
    }
}
