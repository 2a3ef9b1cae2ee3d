//! STOMP brokers for the tests: an ActiveMQ 5.17 of a test's own (Debian's, run by `scripts/services
//! activemq-run` on free ports, so a test may restart it), RabbitMQ's STOMP plugin on 61613 (shared; `scripts/
//! services up rabbitmq-stomp`), and a minimal publishing client written from the STOMP 1.2 spec, apart from
//! the connector's codec, so the tests do not check the codec against itself.

use crate::{free_port, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Stopped when dropped.
pub struct ActiveMq {
    pub stomp_port: u16,
    pub openwire_port: u16,
    dir: PathBuf,
    log: PathBuf,
    persistent: bool,
    child: Option<Child>,
}

fn services_script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services"))
}

impl ActiveMq {
    /// A broker on free ports; `persistent`: messages kept on disk (KahaDB) across restarts.
    pub fn start(dir: &Path, persistent: bool) -> Self {
        let base = dir.join("activemq");
        std::fs::create_dir_all(&base).unwrap();
        let mut b = ActiveMq {
            stomp_port: free_port(),
            openwire_port: free_port(),
            log: dir.join("activemq.log"),
            dir: base,
            persistent,
            child: None,
        };
        b.restart();
        b
    }

    pub fn url(&self) -> String {
        format!("stomp://127.0.0.1:{}", self.stomp_port)
    }

    /// Start (again) on the same ports and data directory; returns once STOMP answers CONNECT.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(services_script())
            .arg("activemq-run")
            .arg(&self.dir)
            .arg(self.stomp_port.to_string())
            .arg(self.openwire_port.to_string())
            .arg(self.persistent.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ActiveMQ (scripts/services activemq-run)");
        self.child = Some(child);
        let port = self.stomp_port;
        wait_for("ActiveMQ's STOMP port to answer CONNECT", Duration::from_secs(120), || {
            StompClient::try_connect(port, None).ok().map(|_| ())
        });
    }

    /// Stop the broker at once (SIGKILL: what a crash or a pulled cable looks like to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ActiveMq {
    fn drop(&mut self) {
        self.kill();
    }
}

/// RabbitMQ's STOMP port (the plugin's default); `scripts/services up rabbitmq-stomp` enables it.
pub const RABBITMQ_STOMP_PORT: u16 = 61613;

/// Fail with a hint when RabbitMQ's STOMP plugin is not listening.
pub fn require_rabbitmq_stomp() {
    if StompClient::try_connect(RABBITMQ_STOMP_PORT, Some(("guest", "guest"))).is_err() {
        panic!("no RabbitMQ STOMP on 127.0.0.1:{RABBITMQ_STOMP_PORT}: run `scripts/services up rabbitmq-stomp`");
    }
}

/// A frame as the test client reads it.
#[derive(Debug)]
pub struct RawFrame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A blocking STOMP 1.2 client for publishing test messages.
pub struct StompClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    receipts: u64,
}

impl StompClient {
    pub fn connect(port: u16, login: Option<(&str, &str)>) -> Self {
        Self::try_connect(port, login).unwrap_or_else(|e| panic!("STOMP connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_connect(port: u16, login: Option<(&str, &str)>) -> Result<Self, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut client = StompClient { writer: stream.try_clone().unwrap(), reader: BufReader::new(stream), receipts: 0 };
        let mut connect = String::from("CONNECT\naccept-version:1.2\nhost:/\n");
        if let Some((user, pass)) = login {
            connect.push_str(&format!("login:{user}\npasscode:{pass}\n"));
        }
        connect.push_str("\n\0");
        client.writer.write_all(connect.as_bytes()).map_err(|e| e.to_string())?;
        let frame = client.read_frame().map_err(|e| e.to_string())?;
        if frame.command != "CONNECTED" {
            return Err(format!("answered {} {:?}", frame.command, String::from_utf8_lossy(&frame.body)));
        }
        Ok(client)
    }

    fn read_frame(&mut self) -> std::io::Result<RawFrame> {
        let mut line = String::new();
        // Skip heart-beats.
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            if !line.trim_end().is_empty() {
                break;
            }
        }
        let command = line.trim_end().to_string();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.to_string(), v.to_string()));
            }
        }
        let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
        let body = match length {
            Some(n) => {
                let mut body = vec![0; n + 1];
                self.reader.read_exact(&mut body)?;
                body.pop();
                body
            }
            None => {
                let mut body = Vec::new();
                self.reader.read_until(0, &mut body)?;
                body.pop();
                body
            }
        };
        Ok(RawFrame { command, headers, body })
    }

    /// Send each body as a text message (no content-length, so ActiveMQ makes a TextMessage; bodies must not
    /// hold NULs) with `headers`, all in one write, and wait for the broker's receipt of the last.
    pub fn send_texts(&mut self, destination: &str, bodies: &[String], headers: &[(&str, &str)]) {
        let mut wire = Vec::with_capacity(bodies.iter().map(|b| b.len() + 96).sum());
        self.receipts += 1;
        let receipt = format!("r{}", self.receipts);
        for (i, body) in bodies.iter().enumerate() {
            assert!(!body.contains('\0'), "text bodies carry no NUL");
            wire.extend_from_slice(format!("SEND\ndestination:{destination}\n").as_bytes());
            for (k, v) in headers {
                wire.extend_from_slice(format!("{k}:{v}\n").as_bytes());
            }
            if i + 1 == bodies.len() {
                wire.extend_from_slice(format!("receipt:{receipt}\n").as_bytes());
            }
            wire.extend_from_slice(b"\n");
            wire.extend_from_slice(body.as_bytes());
            wire.push(0);
        }
        self.writer.write_all(&wire).expect("send to the STOMP broker");
        loop {
            let frame = self.read_frame().expect("the broker's receipt");
            match frame.command.as_str() {
                "RECEIPT" if frame.headers.iter().any(|(k, v)| k == "receipt-id" && *v == receipt) => return,
                "ERROR" => panic!("the broker refused a SEND: {:?} {}", frame.headers, String::from_utf8_lossy(&frame.body)),
                _ => {}
            }
        }
    }

    /// Remove a durable topic subscription (RabbitMQ keeps its queue until then): subscribe with its id,
    /// then UNSUBSCRIBE with `durable:true`.
    pub fn remove_durable_subscription(&mut self, destination: &str, id: &str) {
        let frames = format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\ndurable:true\nauto-delete:false\nack:auto\n\n\0UNSUBSCRIBE\nid:{id}\ndurable:true\nreceipt:unsub\n\n\0"
        );
        self.writer.write_all(frames.as_bytes()).unwrap();
        loop {
            match self.read_frame() {
                Ok(f) if f.command == "RECEIPT" => return,
                Ok(f) if f.command == "ERROR" => panic!("removing {id}: {}", String::from_utf8_lossy(&f.body)),
                Ok(_) => {}
                Err(e) => panic!("removing {id}: {e}"),
            }
        }
    }

    /// Send one message with a body that may hold any bytes (content-length set: ActiveMQ makes a BytesMessage).
    pub fn send_bytes(&mut self, destination: &str, body: &[u8]) {
        self.receipts += 1;
        let receipt = format!("r{}", self.receipts);
        let mut wire = format!("SEND\ndestination:{destination}\ncontent-length:{}\nreceipt:{receipt}\n\n", body.len()).into_bytes();
        wire.extend_from_slice(body);
        wire.push(0);
        self.writer.write_all(&wire).unwrap();
        loop {
            let frame = self.read_frame().expect("the broker's receipt");
            if frame.command == "RECEIPT" {
                return;
            }
            assert_ne!(frame.command, "ERROR", "{:?}", String::from_utf8_lossy(&frame.body));
        }
    }
}
