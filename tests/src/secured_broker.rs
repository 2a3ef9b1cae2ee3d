//! A nisshi broker of a test's own (tansu's successor; `scripts/services nisshi-bin` builds it once per
//! machine). For the Kafka security tests it requires SASL SCRAM logins (tansu 0.6.0 from PyPI keeps SCRAM
//! users only in memory, so they are gone by the time it restarts with `--authentication`): users are created
//! on SQLite storage while the broker does not require logins yet, then it restarts requiring them. For the
//! distributed-mode tests it runs open ([`SecuredBroker::start_open`]): its group coordinator has the fixes
//! made after tansu 0.6.0. For the OAUTHBEARER and PLAIN tests it runs open behind the harness's login gate
//! ([`SecuredBroker::start_open_behind`], [`crate::sasl_gate`]).

use crate::{free_port, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SecuredBroker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn nisshi_bin() -> String {
    crate::service_tool("CONNECT_TEST_NISSHI", "nisshi-bin")
}

impl SecuredBroker {
    /// A broker in `dir` with these SCRAM users (`(name, password, "scram256" | "scram512")`), requiring logins.
    pub fn start(dir: &Path, users: &[(&str, &str, &str)]) -> Self {
        Self::start_on(dir, free_port(), users, None)
    }

    /// [`SecuredBroker::start`] on `port`, advertising `advertised_port` (a proxy in front of it) when given.
    pub fn start_on(dir: &Path, port: u16, users: &[(&str, &str, &str)], advertised_port: Option<u16>) -> Self {
        let mut broker = SecuredBroker { port, dir: dir.to_path_buf(), child: None };
        broker.run(false, None);
        for (name, password, mechanism) in users {
            let out = Command::new(nisshi_bin())
                .args(["user", "create", "--broker", &format!("tcp://127.0.0.1:{}", broker.port), name, password, "--mechanism", mechanism])
                .current_dir(&broker.dir)
                .output()
                .expect("nisshi user create");
            assert!(out.status.success(), "nisshi user create: {}", String::from_utf8_lossy(&out.stderr));
        }
        broker.stop();
        broker.run(true, advertised_port);
        broker
    }

    /// A broker in `dir` that requires no login.
    pub fn start_open(dir: &Path) -> Self {
        let mut broker = SecuredBroker { port: free_port(), dir: dir.to_path_buf(), child: None };
        broker.run(false, None);
        broker
    }

    /// A broker in `dir` on `port` that requires no login and advertises `advertised_port`, where a gate in
    /// front of it asks for one.
    pub fn start_open_behind(dir: &Path, port: u16, advertised_port: u16) -> Self {
        let mut broker = SecuredBroker { port, dir: dir.to_path_buf(), child: None };
        broker.run(false, Some(advertised_port));
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("nisshi.log")).unwrap_or_default()
    }

    fn run(&mut self, authentication: bool, advertised_port: Option<u16>) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("nisshi.log")).unwrap();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(self.port));
        // A path relative to the working directory: nisshi joins an absolute one onto it.
        let mut args =
            vec!["broker", "--listener-url", &url, "--advertised-listener-url", &advertised, "--storage-engine", "sqlite://broker.db"];
        if authentication {
            args.push("--authentication");
        }
        let child =
            Command::new(nisshi_bin()).args(args).current_dir(&self.dir).stdout(Stdio::null()).stderr(log).spawn().expect("start nisshi");
        self.child = Some(child);
        wait_for("the secured broker's port", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok().then_some(())
        });
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM, so SQLite is closed cleanly; SIGKILL if it lingers.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SecuredBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
