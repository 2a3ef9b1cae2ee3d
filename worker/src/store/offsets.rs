//! Standalone source-offset storage: one JSON file, rewritten atomically (temp file, fsync, rename,
//! fsync of the directory), so a crash leaves either the old or the new offsets, never a torn file.

use connect_core::{OffsetReader, SourceMap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    #[error("cannot read offsets file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("offsets file {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write offsets file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// One stored `{"partition": {...}, "offset": {...}}` pair, the shape of `GET /connectors/{name}/offsets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionOffset {
    pub partition: SourceMap,
    pub offset: SourceMap,
}

type ConnectorOffsets = BTreeMap<String, PartitionOffset>;

/// All connectors' source offsets, keyed by connector name and the partition's canonical JSON.
pub struct OffsetStore {
    path: PathBuf,
    data: Mutex<BTreeMap<String, ConnectorOffsets>>,
    /// Serialises writers so two flushes never race on the temp file.
    write_lock: Mutex<()>,
}

/// Canonical text of a partition map, so equal maps are one key whatever their key order.
fn partition_key(partition: &SourceMap) -> String {
    let sorted: BTreeMap<&String, &serde_json::Value> = partition.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

impl OffsetStore {
    /// Open the store at `path`, reading what is there (a missing file is an empty store).
    pub fn open(path: &Path) -> Result<Arc<Self>, OffsetStoreError> {
        let data = match std::fs::read(path) {
            Ok(bytes) if bytes.is_empty() => BTreeMap::new(),
            Ok(bytes) => {
                let stored: BTreeMap<String, Vec<PartitionOffset>> =
                    serde_json::from_slice(&bytes).map_err(|source| OffsetStoreError::Corrupt { path: path.into(), source })?;
                stored
                    .into_iter()
                    .map(|(name, list)| (name, list.into_iter().map(|po| (partition_key(&po.partition), po)).collect()))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(OffsetStoreError::Read { path: path.into(), source }),
        };
        Ok(Arc::new(OffsetStore { path: path.to_path_buf(), data: Mutex::new(data), write_lock: Mutex::new(()) }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ConnectorOffsets>> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, connector: &str, partition: &SourceMap) -> Option<SourceMap> {
        self.lock().get(connector)?.get(&partition_key(partition)).map(|po| po.offset.clone())
    }

    pub fn list(&self, connector: &str) -> Vec<PartitionOffset> {
        self.lock().get(connector).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Record offsets in memory; [`OffsetStore::flush`] makes them durable.
    pub fn put(&self, connector: &str, offsets: impl IntoIterator<Item = (SourceMap, SourceMap)>) {
        let mut data = self.lock();
        let entry = data.entry(connector.to_string()).or_default();
        for (partition, offset) in offsets {
            entry.insert(partition_key(&partition), PartitionOffset { partition, offset });
        }
    }

    pub fn remove_partition(&self, connector: &str, partition: &SourceMap) {
        if let Some(m) = self.lock().get_mut(connector) {
            m.remove(&partition_key(partition));
        }
    }

    pub fn remove_connector(&self, connector: &str) {
        self.lock().remove(connector);
    }

    /// Write everything to disk atomically.
    pub fn flush(&self) -> Result<(), OffsetStoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot: BTreeMap<String, Vec<PartitionOffset>> =
            self.lock().iter().map(|(k, v)| (k.clone(), v.values().cloned().collect())).collect();
        let bytes = serde_json::to_vec_pretty(&snapshot).expect("offsets are plain JSON");
        write_atomically(&self.path, &bytes).map_err(|source| OffsetStoreError::Write { path: self.path.clone(), source })
    }
}

/// Write `bytes` to `path` so that readers and crashes see the old content or the new, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// An [`OffsetReader`] for one connector.
pub struct ConnectorOffsetReader {
    pub store: Arc<OffsetStore>,
    pub connector: String,
}

impl OffsetReader for ConnectorOffsetReader {
    fn offset(&self, partition: &SourceMap) -> Option<SourceMap> {
        self.store.get(&self.connector, partition)
    }
}

/// Offsets acknowledged by Kafka but not yet handed to the store, latest per partition.
///
/// Called once per acknowledged record, so the common case (the same partition as the previous record)
/// compares maps instead of serialising a key.
#[derive(Default)]
pub struct PendingOffsets {
    by_key: HashMap<String, (Arc<SourceMap>, SourceMap)>,
    last_key: Option<String>,
}

impl PendingOffsets {
    pub fn record(&mut self, partition: Arc<SourceMap>, offset: SourceMap) {
        if partition.is_empty() {
            return; // e.g. stdin: nothing to resume from
        }
        if let Some(key) = &self.last_key {
            if let Some(entry) = self.by_key.get_mut(key) {
                if Arc::ptr_eq(&entry.0, &partition) || entry.0 == partition {
                    entry.1 = offset;
                    return;
                }
            }
        }
        let key = partition_key(&partition);
        self.by_key.insert(key.clone(), (partition, offset));
        self.last_key = Some(key);
    }
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = (SourceMap, SourceMap)> + '_ {
        self.last_key = None;
        self.by_key.drain().map(|(_, (p, o))| (Arc::unwrap_or_clone(p), o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(k: &str, v: serde_json::Value) -> SourceMap {
        let mut m = SourceMap::new();
        m.insert(k.into(), v);
        m
    }

    #[test]
    fn survives_reopen_and_ignores_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/connect.offsets");
        let store = OffsetStore::open(&path).unwrap();
        let mut p = map("filename", "/a".into());
        p.insert("x".into(), 1.into());
        store.put("src", [(p.clone(), map("position", 10.into()))]);
        store.put("src", [(p.clone(), map("position", 20.into()))]);
        store.flush().unwrap();
        let reopened = OffsetStore::open(&path).unwrap();
        let mut reordered = map("x", 1.into());
        reordered.insert("filename".into(), "/a".into());
        assert_eq!(reopened.get("src", &reordered), Some(map("position", 20.into())));
        assert_eq!(reopened.list("src").len(), 1);
        assert!(reopened.get("other", &p).is_none());
    }

    #[test]
    fn pending_keeps_the_latest_offset_per_partition() {
        let mut pending = PendingOffsets::default();
        let (a, b) = (Arc::new(map("filename", "/a".into())), Arc::new(map("filename", "/b".into())));
        pending.record(a.clone(), map("position", 1.into()));
        pending.record(Arc::new(map("filename", "/a".into())), map("position", 2.into()));
        pending.record(b.clone(), map("position", 7.into()));
        pending.record(a.clone(), map("position", 3.into()));
        pending.record(Arc::new(SourceMap::new()), map("position", 9.into()));
        let (a, b) = (Arc::unwrap_or_clone(a), Arc::unwrap_or_clone(b));
        let mut drained: Vec<(SourceMap, SourceMap)> = pending.drain().collect();
        drained.sort_by_key(|(p, _)| p["filename"].as_str().unwrap().to_string());
        assert_eq!(drained, vec![(a, map("position", 3.into())), (b, map("position", 7.into()))]);
        assert!(pending.is_empty());
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        std::fs::write(&path, "{garbage").unwrap();
        assert!(matches!(OffsetStore::open(&path), Err(OffsetStoreError::Corrupt { .. })));
    }
}
