//! An Elasticsearch 8 API of a test's own: noida-db (an emulator; no real Elasticsearch is packaged in the
//! registries), on a free port with a fresh data directory, so a test may stop and restart it.

use crate::{free_port, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Stopped when dropped.
pub struct Elasticsearch {
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

fn noida_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CONNECT_TEST_NOIDA") {
        return PathBuf::from(path);
    }
    let out = Command::new("scripts/services").arg("noida-bin").current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).output();
    let path = out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    assert!(!path.is_empty(), "noida-db not found: set CONNECT_TEST_NOIDA to `scripts/services noida-bin`");
    PathBuf::from(path)
}

impl Elasticsearch {
    pub fn start(dir: &Path) -> Self {
        let data = dir.join("noida-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut es = Elasticsearch { port: free_port(), data, log: dir.join("noida.log"), child: None };
        es.restart();
        es
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(noida_binary())
            .args(["start", "--host", "127.0.0.1", "--only", "elasticsearch", "--elasticsearch-port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start noida-db");
        self.child = Some(child);
        wait_for("noida-db's Elasticsearch API", Duration::from_secs(30), || self.get("/").map(|_| ()));
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the kernel but nothing answers, as with a
    /// cluster that hangs. (noida-db keeps its documents in memory, so a restart would lose them.)
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaw a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub fn stop(&mut self) {
        if self.child.is_some() {
            self.thaw();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `GET path` as JSON, `None` when it does not answer 2xx.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        self.call("GET", path, None)
    }

    /// A request with curl (installed by scripts/test-all), answering the body when the status is 2xx.
    pub fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Option<serde_json::Value> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-f", "--max-time", "10", "-X", method, "-H", "Content-Type: application/json"])
            .arg(format!("{}{path}", self.url()));
        if let Some(b) = body {
            cmd.args(["-d", &b.to_string()]);
        }
        let out = cmd.output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok().or(Some(serde_json::Value::Null))
    }

    /// Documents in `index` after a refresh.
    pub fn count(&self, index: &str) -> Option<u64> {
        self.call("POST", &format!("/{index}/_refresh"), None)?;
        self.get(&format!("/{index}/_count"))?["count"].as_u64()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Elasticsearch {
    fn drop(&mut self) {
        self.stop();
    }
}
