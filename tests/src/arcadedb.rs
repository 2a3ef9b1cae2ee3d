//! A graph database with a Bolt server for the Neo4j sink's tests: ArcadeDB 26.10 with its Bolt plugin (no Neo4j
//! server is packaged in the registries), a server of a test's own on free ports (`scripts/services
//! arcadedb-run`), so a test may stop and restart it. The graph is read back over ArcadeDB's HTTP API, not
//! over Bolt, so the tests do not check the sink's driver against itself.

use crate::{free_port, wait_for};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Stopped when dropped.
pub struct ArcadeDb {
    pub bolt_port: u16,
    pub http_port: u16,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// The root user's password `scripts/services arcadedb-run` sets.
pub const PASSWORD: &str = "password123";

impl ArcadeDb {
    /// A server on free ports with a database `neo4j`.
    pub fn start(dir: &Path) -> Self {
        let base = dir.join("arcadedb");
        std::fs::create_dir_all(&base).unwrap();
        let mut db = ArcadeDb { bolt_port: free_port(), http_port: free_port(), log: dir.join("arcadedb.log"), dir: base, child: None };
        db.restart();
        db
    }

    pub fn uri(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.bolt_port)
    }

    /// Start (again) on the same ports and data; returns once the database and the Bolt port answer.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services"))
            .arg("arcadedb-run")
            .arg(&self.dir)
            .arg(self.bolt_port.to_string())
            .arg(self.http_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ArcadeDB (scripts/services arcadedb-run)");
        self.child = Some(child);
        let bolt = self.bolt_port;
        wait_for("ArcadeDB's database and Bolt port", Duration::from_secs(120), || {
            let ready = self.request("GET", "/api/v1/exists/neo4j", None).ok()?;
            (ready["result"] == true && std::net::TcpStream::connect(("127.0.0.1", bolt)).is_ok()).then_some(())
        });
    }

    /// Stop the server cleanly (SIGTERM), as an operator does; its data stays for a restart.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            for _ in 0..300 {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run a Cypher command over the HTTP API; the rows of its result.
    pub fn cypher(&self, command: &str) -> Result<Vec<serde_json::Value>, String> {
        let body = serde_json::json!({"language": "cypher", "command": command});
        let answer = self.request("POST", "/api/v1/command/neo4j", Some(&body))?;
        match answer["result"].as_array() {
            Some(rows) => Ok(rows.clone()),
            None => Err(format!("{command}: {answer}")),
        }
    }

    /// The single number a `... RETURN count(x) AS c` query returns.
    pub fn count(&self, command: &str) -> i64 {
        let rows = self.cypher(command).unwrap_or_else(|e| panic!("{e}"));
        rows.first().and_then(|r| r["c"].as_i64()).unwrap_or_else(|| panic!("{command}: no count in {rows:?}"))
    }

    /// Nodes with a label.
    pub fn nodes(&self, label: &str) -> i64 {
        self.count(&format!("MATCH (n:`{label}`) RETURN count(n) AS c"))
    }

    /// Relationships of a type.
    pub fn relationships(&self, kind: &str) -> i64 {
        self.count(&format!("MATCH ()-[r:`{kind}`]->() RETURN count(r) AS c"))
    }

    /// A blocking HTTP/1.1 request with root's basic authentication.
    fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<serde_json::Value, String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        // base64("root:password123")
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic cm9vdDpwYXNzd29yZDEyMw==\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        if head.contains("Transfer-Encoding: chunked") || head.contains("transfer-encoding: chunked") {
            return Err(format!("chunked answers are not read here: {head}"));
        }
        serde_json::from_str(body).map_err(|e| format!("{head}\n{body}: {e}"))
    }
}

impl Drop for ArcadeDb {
    fn drop(&mut self) {
        self.stop();
    }
}
