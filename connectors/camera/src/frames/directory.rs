//! A directory camera: image files that appear in a directory (a camera's FTP upload folder, a motion
//! detector's output), analysed once each in name order. A file is taken once its size stayed the same
//! across two scans, so one still being written is not read half. After a restart, files up to the last
//! one sent are passed over (the source offset holds its name); names sorting before it that appear later
//! are still read while the task runs, but not after a restart.

use super::{Ended, Frame, FrameSlot, Position, ReadError, Resume};
use std::collections::{HashMap, HashSet};

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// How often the directory is listed.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(250);

/// Files that are not frames: hidden, temporary and partial files.
fn ignored(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") || name.ends_with('~')
}

pub async fn read(dir: &Path, slot: &FrameSlot, resume: &mut Resume) -> Result<Ended, ReadError> {
    // Sizes seen at the previous scan, of files not yet taken.
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut ticker = tokio::time::interval(SCAN_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let mut listing = tokio::fs::read_dir(dir).await.map_err(|e| ReadError::Camera(format!("cannot list {}: {e}", dir.display())))?;
        let mut ready = Vec::new();
        let mut seen = HashMap::new();
        let mut present = HashSet::new();
        while let Some(entry) = listing.next_entry().await.map_err(|e| ReadError::Camera(format!("cannot list {}: {e}", dir.display())))? {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if ignored(&name) || resume.after_file.as_ref().is_some_and(|last| &name <= last) {
                continue;
            }
            if resume.done.contains(&name) {
                present.insert(name);
                continue;
            }
            let Ok(meta) = entry.metadata().await else { continue };
            if !meta.is_file() {
                continue;
            }
            let size = meta.len();
            if size > 0 && sizes.get(&name) == Some(&size) {
                let taken = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64);
                ready.push((name.clone(), taken));
            }
            seen.insert(name, size);
        }
        sizes = seen;
        // Forget files that are gone, so a camera writing for months does not grow this set.
        resume.done.retain(|name| present.contains(name));
        ready.sort();
        for (name, taken) in ready {
            let path = dir.join(&name);
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => return Err(ReadError::Camera(format!("cannot read {}: {e}", path.display()))),
            };
            sizes.remove(&name);
            resume.done.insert(name.clone());
            slot.put(Frame { bytes: bytes.into(), time_ms: taken.unwrap_or_else(super::now_ms), position: Position::File(name) }).await;
        }
    }
}
