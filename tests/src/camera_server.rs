//! A local camera for the camera-source tests: `/stream` is an MJPEG stream (`multipart/x-mixed-replace`)
//! of a given list of frames at a given pace, sent once (later connections get 503, as a camera that went
//! away); `/snapshot` answers each GET with one image. [`CameraServer::set_down`] makes it drop every
//! connection unanswered, as a camera that lost power. Plain threads and std's TCP: a camera is that simple.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The labelled photos of the camera crate (`connectors/camera/tests/images`).
pub fn photo_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/camera/tests/images").join(name)
}

pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(photo_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Shared {
    frames: Vec<(String, Vec<u8>)>,
    pace: Duration,
    snapshot: Mutex<(String, Vec<u8>)>,
    streams: AtomicUsize,
    snapshots: AtomicUsize,
    down: AtomicBool,
}

pub struct CameraServer {
    port: u16,
    shared: Arc<Shared>,
}

fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    if shared.down.load(Ordering::SeqCst) {
        // Dropped unanswered.
        return Ok(());
    }
    let mut request = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut request)?;
    // Headers up to the empty line.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    match path.as_str() {
        "/stream" if shared.streams.fetch_add(1, Ordering::SeqCst) == 0 => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")?;
            for (content_type, body) in &shared.frames {
                write!(stream, "--frame\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len())?;
                stream.write_all(body)?;
                stream.write_all(b"\r\n")?;
                stream.flush()?;
                std::thread::sleep(shared.pace);
            }
            // The camera stays connected and silent, as one whose sensor stopped.
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        }
        "/snapshot" => {
            shared.snapshots.fetch_add(1, Ordering::SeqCst);
            let (content_type, body) = shared.snapshot.lock().unwrap().clone();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        _ => stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

fn content_type_of(body: &[u8]) -> &'static str {
    if body.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else if body.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "text/plain"
    }
}

impl CameraServer {
    /// A camera whose stream sends `frames` one every `pace`, and whose snapshot is `snapshot`.
    pub fn start(frames: Vec<Vec<u8>>, pace: Duration, snapshot: Vec<u8>) -> CameraServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            frames: frames.into_iter().map(|f| (content_type_of(&f).to_string(), f)).collect(),
            pace,
            snapshot: Mutex::new((content_type_of(&snapshot).to_string(), snapshot)),
            streams: AtomicUsize::new(0),
            snapshots: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let for_thread = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = for_thread.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        CameraServer { port, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn snapshots_served(&self) -> usize {
        self.shared.snapshots.load(Ordering::SeqCst)
    }

    /// Down: every connection is dropped unanswered until it is up again.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }
}
