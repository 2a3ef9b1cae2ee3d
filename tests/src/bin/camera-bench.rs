//! camera-bench: frames per second of the camera detector source (read, decode, resize, infer, decode boxes,
//! produce to Kafka) against the bare model run (inference only) on the same frames, decoded beforehand, in
//! the same run, one inference thread each; once with tract, once with ONNX Runtime (the `ort` feature, its
//! library from the onnxruntime wheel: `scripts/services onnxruntime-lib`). Frames are 640×480 JPEGs made by ffmpeg from the
//! labelled photos, read from a directory, so that the camera is never the bound.
//!
//! Usage: camera-bench [FRAMES] (default 200). Needs tansu on 127.0.0.1:9092 and ffmpeg
//! (`scripts/bench camera` provides both).

use connect_camera::detector::{Detector, DetectorSpec, EngineKind};
use connect_e2e::camera_server::photo_path;
use connect_e2e::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PHOTOS: [&str; 4] = ["chelsea.png", "dog.jpg", "coffee.png", "eagle.jpg"];

/// `frames` JPEGs of 640×480 in `dir`, cycling through the photos.
fn make_frames(dir: &Path, frames: usize) -> Vec<Vec<u8>> {
    let ffmpeg = std::env::var("CONNECT_TEST_FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    let mut made = Vec::new();
    for (i, photo) in PHOTOS.iter().enumerate() {
        let out = dir.join(format!("photo-{i}.jpg"));
        let status = Command::new(&ffmpeg)
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(photo_path(photo))
            .args(["-vf", "scale=640:480", "-q:v", "3"])
            .arg(&out)
            .status()
            .expect("ffmpeg (scripts/services ffmpeg-bin)");
        assert!(status.success());
        made.push(std::fs::read(&out).unwrap());
        std::fs::remove_file(&out).unwrap();
    }
    (0..frames).map(|i| made[i % made.len()].clone()).collect()
}

/// The limit: inference alone on frames decoded beforehand, with `engine`. Frames/s.
fn bare_model(frames: &[Vec<u8>], engine: &EngineKind) -> f64 {
    let detector = Detector::load(DetectorSpec { engine: engine.clone(), ..DetectorSpec::default() }).unwrap();
    let inputs: Vec<_> = frames.iter().map(|f| detector.prepare(f).unwrap().tensor).collect();
    // One warm-up run, as the connector's first frame also pays for it before the clock starts.
    detector.infer(inputs[0].clone()).unwrap();
    let started = Instant::now();
    for input in inputs {
        detector.infer(input).unwrap();
    }
    frames.len() as f64 / started.elapsed().as_secs_f64()
}

/// One engine's run: the bare model before and after, and the connector between, on the frames in `images`.
fn measure(dir: &Path, images: &Path, frames: &[Vec<u8>], engine: &EngineKind) {
    let n = frames.len();
    let before = bare_model(frames, engine);
    let topic = unique("camera_bench");
    let name = unique("bench-camera");
    let mut config = json!({
        "connector.class": "CameraDetectorSource", "camera.url": format!("file://{}/", images.display()), "kafka.topic": topic,
        "detector.threads": 1,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
    });
    let label = match engine {
        EngineKind::Tract => "tract",
        EngineKind::Ort { library } => {
            config["detector.engine"] = json!("ort");
            config["detector.ort.library"] = json!(library);
            "ort"
        }
    };
    let mut setup = WorkerSetup::new(dir, &[]);
    setup.connector(&name, config);
    let mut worker = setup.start();
    let written = || worker.records_written(&name);
    // From the first record to the last: the model's loading is not throughput.
    let first = wait_for("the first records", Duration::from_secs(120), || (written() > 0).then(Instant::now));
    let first_count = written();
    wait_for("every frame", Duration::from_secs(1800), || (written() >= n).then_some(()));
    let connector = (n - first_count.min(n - 1)) as f64 / first.elapsed().as_secs_f64();
    let (peak, rss) = memory_kib(worker.pid()).unwrap_or((0, 0));
    worker.stop();
    assert_eq!(topic_count(&topic) as usize, n, "a record per frame");
    let after = bare_model(frames, engine);
    let limit = (before + after) / 2.0;
    println!("{:<64} {:>10} {:>10}", format!("measure ({label})"), "frames/s", "ms/frame");
    println!(
        "{:<64} {:>10.1} {:>10.1}",
        format!("bare model run ({label}, 1 thread), frames decoded beforehand, before"),
        before,
        1000.0 / before
    );
    println!("{:<64} {:>10.1} {:>10.1}", "the same after the connector's run", after, 1000.0 / after);
    println!("{:<64} {:>10.1} {:>10.1}", "the limit: their mean", limit, 1000.0 / limit);
    println!(
        "{:<64} {:>10.1} {:>10.1}",
        format!("camera source ({label}): read, decode, resize, infer, boxes, produce"),
        connector,
        1000.0 / connector
    );
    println!(
        "ratio connector / bare model ({label}): {:.2} (aim >= 0.9); worker RSS {} MiB (peak {} MiB)",
        connector / limit,
        rss / 1024,
        peak / 1024
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("frames");
    std::fs::create_dir(&images).unwrap();
    let frames = make_frames(dir.path(), n);
    println!("camera-bench: {n} frames of 640x480 JPEG ({} KiB each on average)", frames.iter().map(Vec::len).sum::<usize>() / n / 1024);
    // Written under a temporary name and renamed, as a camera's upload would be, so each is whole when seen.
    for (i, frame) in frames.iter().enumerate() {
        let part = images.join(format!("{i:06}.jpg.part"));
        std::fs::write(&part, frame).unwrap();
        std::fs::rename(&part, images.join(format!("{i:06}.jpg"))).unwrap();
    }
    measure(dir.path(), &images, &frames, &EngineKind::Tract);
    // The `ort` feature: ONNX Runtime, loaded from the onnxruntime wheel's library.
    measure(dir.path(), &images, &frames, &EngineKind::Ort { library: service_tool("CONNECT_TEST_ORT_LIB", "onnxruntime-lib").into() });
}
