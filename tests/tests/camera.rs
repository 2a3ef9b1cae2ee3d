//! The camera detector source against local cameras: an MJPEG stream with a frame that is not an image, a
//! snapshot URL, a directory across a restart, a video file made by ffmpeg (and a clear failure without
//! ffmpeg), and the garden pipeline: cat frames → Kafka → Confluent's Filter on `objects.Cat` → the HTTP
//! sink posting an alert to a stand-in for Telegram.

use connect_e2e::camera_server::{photo, photo_path, CameraServer};
use connect_e2e::http_target::HttpTarget;
use connect_e2e::*;
use serde_json::{json, Value as Json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn camera_config(url: &str, topic: &str) -> Json {
    json!({
        "connector.class": "CameraDetectorSource", "camera.url": url, "kafka.topic": topic,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
    })
}

fn with_dlq(config: Json, dlq: &str) -> Json {
    merge_json(
        config,
        json!({"errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
               "errors.deadletterqueue.context.headers.enable": true, "errors.deadletterqueue.topic.replication.factor": 1}),
    )
}

fn values(records: &[ReadRecord]) -> Vec<Json> {
    records.iter().map(|r| serde_json::from_slice(r.3.as_deref().unwrap()).unwrap()).collect()
}

fn objects(v: &Json) -> Json {
    v["objects"].clone()
}

/// ffmpeg is needed for video; `scripts/services ffmpeg-bin` installs it (Debian's package).
fn ffmpeg() -> String {
    let ffmpeg = std::env::var("CONNECT_TEST_FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    let runs = Command::new(&ffmpeg).arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(runs, "the video tests need ffmpeg ({ffmpeg}): run scripts/services ffmpeg-bin, or set CONNECT_TEST_FFMPEG");
    ffmpeg
}

#[test]
fn an_mjpeg_stream_gives_a_record_per_frame_with_its_counts_and_a_frame_that_is_not_an_image_goes_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    // Frame n of the stream (from 1) and what the detector must see in it.
    let frames = vec![
        photo("chelsea.png"),
        photo("eagle.jpg"),
        photo("coffee.png"),
        b"<html>sensor error</html>".to_vec(),
        photo("chelsea.png"),
        photo("dog.jpg"),
    ];
    let camera = CameraServer::start(frames, Duration::from_millis(1000), photo("chelsea.png"));
    let (topic, dlq) = (unique("e2e-camera-mjpeg"), unique("e2e-camera-mjpeg-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("garden", with_dlq(camera_config(&camera.url("/stream"), &topic), &dlq));
    let worker = setup.start();
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!(dead.len(), 1, "the frame that is not an image; log:\n{}", tail(&worker.log_text(), 30));
    assert_eq!(dead[0].value.as_deref(), Some(&b"<html>sensor error</html>"[..]), "the frame's bytes as they came");
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("not an image") && message.contains("garden"), "{message}");
    // Wait for the last frame's record (or for every frame to be accounted for as skipped).
    let records = wait_for_or_explain(
        "every frame accounted for",
        Duration::from_secs(60),
        || {
            let records = read_topic(&topic, 5, Duration::from_secs(2));
            let vs = values(&records);
            let skipped: i64 = vs.iter().map(|v| v["skipped"].as_i64().unwrap()).sum();
            (vs.len() as i64 + skipped + 1 == 6).then_some(records)
        },
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(topic_count(&topic), records.len() as i64, "nothing after the last frame");
    let expected = |frame: i64| -> Json {
        match frame {
            1 | 5 => json!({"Cat": 1}),
            2 => json!({}),
            3 => json!({"Coffee cup": 1}),
            other => panic!("no record expected for frame {other}"),
        }
    };
    for (record, value) in records.iter().zip(values(&records)) {
        assert_eq!(record.2.as_deref(), Some(&b"garden"[..]), "key = the camera's name");
        assert_eq!(value["camera"], "garden");
        let frame = value["frame"].as_i64().unwrap();
        if frame == 6 {
            let seen = objects(&value);
            for label in ["Dog", "Bicycle", "Car"] {
                assert!(seen.get(label).is_some(), "{label} in frame 6: {value}");
            }
        } else {
            assert_eq!(objects(&value), expected(frame), "frame {frame}: {value}");
        }
        let detections = value["detections"].as_array().unwrap();
        let counted: i64 = objects(&value).as_object().unwrap().values().map(|n| n.as_i64().unwrap()).sum();
        assert_eq!(detections.len() as i64, counted, "a detection per counted object: {value}");
        for d in detections {
            assert!(d["score"].as_f64().unwrap() >= 0.5 && d["box"]["w"].as_f64().unwrap() > 0.0, "{d}");
        }
    }
    assert_eq!(worker.get("/connectors/garden/status").1["tasks"][0]["state"], "RUNNING");
}

#[test]
fn a_snapshot_url_is_asked_once_per_interval() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let camera = CameraServer::start(vec![], Duration::ZERO, photo("chelsea.png"));
    let topic = unique("e2e-camera-snapshot");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("porch", merge_json(camera_config(&camera.url("/snapshot"), &topic), json!({"frame.interval.ms": 500})));
    let worker = setup.start();
    // Records keep coming (a snapshot every 500 ms), so count them by the task's metric: topic_count reads
    // until the topic is quiet.
    let written = || worker.records_written("porch");
    wait_for_or_explain(
        "3 snapshots analysed",
        Duration::from_secs(60),
        || (written() >= 3).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let started = std::time::Instant::now();
    let before = camera.snapshots_served();
    std::thread::sleep(Duration::from_secs(3));
    let asked = camera.snapshots_served() - before;
    let elapsed_half_seconds = (started.elapsed().as_millis() / 500) as usize;
    assert!(asked <= elapsed_half_seconds + 1, "{asked} requests in {:?}: at most one per 500 ms", started.elapsed());
    for value in values(&read_topic(&topic, 3, Duration::from_secs(10))) {
        assert_eq!(objects(&value), json!({"Cat": 1}), "{value}");
    }
}

fn copy_photo(dir: &Path, photo_name: &str, as_name: &str) {
    std::fs::copy(photo_path(photo_name), dir.join(as_name)).unwrap();
}

#[test]
fn a_directory_is_read_in_name_order_and_a_restart_reads_only_new_files() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("uploads");
    std::fs::create_dir(&images).unwrap();
    copy_photo(&images, "chelsea.png", "0001.png");
    copy_photo(&images, "eagle.jpg", "0002.jpg");
    std::fs::write(images.join("0003.txt"), "not a picture").unwrap();
    let (topic, dlq) = (unique("e2e-camera-dir"), unique("e2e-camera-dir-dlq"));
    let url = format!("file://{}/", images.display());
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("feeder", with_dlq(camera_config(&url, &topic), &dlq));
    let mut worker = setup.start();
    wait_for_or_explain("2 records", Duration::from_secs(60), || (topic_count(&topic) >= 2).then_some(()), || tail(&worker.log_text(), 30));
    assert_eq!(read_topic_full(&dlq, 1, Duration::from_secs(30)).len(), 1, "the text file");
    assert_eq!(worker.stop(), Some(0));

    copy_photo(&images, "coffee.png", "0004.png");
    let worker = setup.start();
    wait_for_or_explain(
        "the new file's record",
        Duration::from_secs(60),
        || (topic_count(&topic) >= 3).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_secs(2));
    let vs = values(&read_topic(&topic, 3, Duration::from_secs(10)));
    assert_eq!(vs.len(), 3, "each file once across the restart: {vs:?}");
    assert_eq!(topic_count(&dlq), 1, "the text file was not read again");
    let seen: Vec<(i64, Json)> = vs.iter().map(|v| (v["frame"].as_i64().unwrap(), objects(v))).collect();
    assert_eq!(seen, vec![(1, json!({"Cat": 1})), (2, json!({})), (4, json!({"Coffee cup": 1}))]);
}

/// A clip of `seconds_each` seconds of each photo at 5 frames a second.
fn make_video(ffmpeg: &str, path: &Path, photos: &[&str], seconds_each: u32) {
    let mut args: Vec<String> = vec!["-y".into(), "-loglevel".into(), "error".into()];
    for p in photos {
        args.extend(["-loop", "1", "-t", &seconds_each.to_string(), "-i", &photo_path(p).display().to_string()].map(String::from));
    }
    let scaled: String = (0..photos.len()).map(|i| format!("[{i}]scale=640:480,setsar=1,fps=5[v{i}];")).collect();
    let inputs: String = (0..photos.len()).map(|i| format!("[v{i}]")).collect();
    args.extend([
        "-filter_complex".into(),
        format!("{scaled}{inputs}concat=n={}:v=1[out]", photos.len()),
        "-map".into(),
        "[out]".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        path.display().to_string(),
    ]);
    let out = Command::new(ffmpeg).args(&args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_video_file_gives_a_record_per_frame_and_a_restart_does_not_analyse_it_again() {
    require_broker();
    let ffmpeg = ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("garden.mp4");
    make_video(&ffmpeg, &video, &["chelsea.png", "eagle.jpg"], 1);
    let topic = unique("e2e-camera-video");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "clip",
        merge_json(camera_config(&format!("file://{}", video.display()), &topic), json!({"camera.ffmpeg.path": ffmpeg})),
    );
    let mut worker = setup.start();
    wait_for_or_explain(
        "10 frames",
        Duration::from_secs(60),
        || (topic_count(&topic) >= 10).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_secs(1));
    let vs = values(&read_topic(&topic, 10, Duration::from_secs(10)));
    assert_eq!(vs.len(), 10, "2 s at 5 fps");
    for v in &vs {
        let frame = v["frame"].as_i64().unwrap();
        let expected = if frame <= 5 { json!({"Cat": 1}) } else { json!({}) };
        assert_eq!(objects(v), expected, "frame {frame}: {v}");
    }
    assert_eq!(vs.iter().map(|v| v["frame"].as_i64().unwrap()).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>(), "every frame, in order");
    assert_eq!(worker.stop(), Some(0));
    let worker = setup.start();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(topic_count(&topic), 10, "nothing analysed twice after the restart; log:\n{}", tail(&worker.log_text(), 20));
    assert_eq!(worker.get("/connectors/clip/status").1["tasks"][0]["state"], "RUNNING");
}

#[test]
fn without_ffmpeg_a_video_camera_fails_its_task_saying_what_to_install() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enabled", "false")]);
    let config = merge_json(
        camera_config("rtsp://127.0.0.1:1/stream", &unique("e2e-camera-noffmpeg")),
        json!({"camera.ffmpeg.path": "/nonexistent/ffmpeg"}),
    );
    setup.connector("rtsp-cam", config);
    let worker = setup.start();
    let trace = wait_for_or_explain(
        "the task FAILED",
        Duration::from_secs(30),
        || {
            let task = worker.get("/connectors/rtsp-cam/status").1["tasks"][0].clone();
            (task["state"] == "FAILED").then(|| task["trace"].as_str().unwrap_or_default().to_string())
        },
        || tail(&worker.log_text(), 20),
    );
    assert!(trace.contains("/nonexistent/ffmpeg") && trace.contains("apt install ffmpeg"), "{trace}");
}

#[test]
fn cat_frames_alert_through_the_http_sink_and_other_frames_do_not() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("garden");
    std::fs::create_dir(&images).unwrap();
    for (i, p) in ["chelsea.png", "eagle.jpg", "chelsea.png", "coffee.png", "dog.jpg", "chelsea.png"].iter().enumerate() {
        copy_photo(&images, p, &format!("{i:04}-{p}"));
    }
    let target = HttpTarget::start();
    let topic = unique("e2e-camera-garden");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("garden-camera", camera_config(&format!("file://{}/", images.display()), &topic));
    setup.connector(
        "cat-alerts",
        json!({
            "connector.class": "io.confluent.connect.http.HttpSinkConnector", "topics": topic,
            "http.api.url": target.url("/bot123:abc/sendMessage"), "request.method": "post",
            "headers": "Content-Type: application/json", "batch.max.size": "1",
            "request.body.template": "{\"chat_id\":\"-364377679\",\"text\":\"A cat in ${value.camera}, frame ${value.frame}\"}",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "transforms": "onlyCats",
            "transforms.onlyCats.type": "io.confluent.connect.transforms.Filter$Value",
            "transforms.onlyCats.filter.condition": "$[?(@.objects.Cat > 0)]",
            "transforms.onlyCats.filter.type": "include",
            "transforms.onlyCats.missing.or.null.behavior": "exclude",
        }),
    );
    let worker = setup.start();
    wait_for_or_explain(
        "6 frames analysed",
        Duration::from_secs(60),
        || (topic_count(&topic) >= 6).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    wait_for_or_explain(
        "3 alerts",
        Duration::from_secs(60),
        || (target.delivered().len() >= 3).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    std::thread::sleep(Duration::from_secs(2));
    let alerts: Vec<Json> = target.delivered().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    let texts: Vec<&str> = alerts.iter().map(|a| a["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        vec!["A cat in garden-camera, frame 1", "A cat in garden-camera, frame 3", "A cat in garden-camera, frame 6"],
        "one alert per cat frame, none for the others"
    );
}

/// ONNX Runtime's library for the `ort` engine (the onnxruntime wheel's).
fn ort_library() -> String {
    service_tool("CONNECT_TEST_ORT_LIB", "onnxruntime-lib")
}

#[test]
fn the_ort_engine_counts_the_same_objects_and_a_missing_library_fails_the_task_saying_so() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("uploads");
    std::fs::create_dir(&images).unwrap();
    copy_photo(&images, "chelsea.png", "0001.png");
    copy_photo(&images, "coffee.png", "0002.png");
    copy_photo(&images, "astronaut.png", "0003.png");
    let topic = unique("e2e-camera-ort");
    let url = format!("file://{}/", images.display());
    let mut setup = WorkerSetup::new(dir.path(), &[("auto.restart.enabled", "false")]);
    let ort = json!({"detector.engine": "ort", "detector.ort.library": ort_library()});
    setup.connector("ort-cam", merge_json(camera_config(&url, &topic), ort));
    let mut worker = setup.start();
    wait_for_or_explain("3 records", Duration::from_secs(60), || (topic_count(&topic) >= 3).then_some(()), || tail(&worker.log_text(), 30));
    let seen: Vec<Json> = values(&read_topic(&topic, 3, Duration::from_secs(10))).iter().map(objects).collect();
    assert_eq!(seen, vec![json!({"Cat": 1}), json!({"Coffee cup": 1}), json!({"Person": 1})]);
    assert_eq!(worker.stop(), Some(0));

    // A worker of its own: a process loads one ONNX Runtime, so in the same worker this would fail for that reason.
    let other = tempfile::tempdir().unwrap();
    let mut setup = WorkerSetup::new(other.path(), &[("auto.restart.enabled", "false")]);
    let broken = json!({"detector.engine": "ort", "detector.ort.library": "/nonexistent/libonnxruntime.so"});
    setup.connector("ort-cam-without-library", merge_json(camera_config(&url, &unique("e2e-camera-ort-none")), broken));
    let worker = setup.start();
    let trace = wait_for_or_explain(
        "the task without a library FAILED",
        Duration::from_secs(30),
        || {
            let task = worker.get("/connectors/ort-cam-without-library/status").1["tasks"][0].clone();
            (task["state"] == "FAILED").then(|| task["trace"].as_str().unwrap_or_default().to_string())
        },
        || tail(&worker.log_text(), 20),
    );
    assert!(trace.contains("cannot load ONNX Runtime (/nonexistent/libonnxruntime.so)"), "{trace}");
}

#[test]
fn a_camera_that_drops_is_reconnected_and_the_task_stays_running() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let camera = CameraServer::start(vec![], Duration::ZERO, photo("chelsea.png"));
    let topic = unique("e2e-camera-outage");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let config = merge_json(
        camera_config(&camera.url("/snapshot"), &topic),
        json!({"frame.interval.ms": 300, "camera.reconnect.backoff.ms": 200, "camera.reconnect.backoff.max.ms": 1000}),
    );
    setup.connector("porch", config);
    let worker = setup.start();
    let written = || worker.records_written("porch");
    let state = || worker.get("/connectors/porch/status").1["tasks"][0]["state"].clone();
    wait_for_or_explain(
        "2 snapshots analysed",
        Duration::from_secs(60),
        || (written() >= 2).then_some(()),
        || tail(&worker.log_text(), 30),
    );

    camera.set_down(true);
    // Whatever was in flight when it went down is written; then nothing while it stays down.
    std::thread::sleep(Duration::from_secs(1));
    let during = written();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(written(), during, "no records while the camera is down");
    assert_eq!(state(), "RUNNING", "an unreachable camera does not fail the task");
    assert!(worker.log_text().contains("camera unavailable"), "the outage is logged:\n{}", tail(&worker.log_text(), 20));

    camera.set_down(false);
    wait_for_or_explain(
        "snapshots again after the outage",
        Duration::from_secs(30),
        || (written() >= during + 2).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    assert_eq!(state(), "RUNNING");
    for value in values(&read_topic(&topic, during + 2, Duration::from_secs(10))) {
        assert_eq!(objects(&value), json!({"Cat": 1}), "{value}");
    }
}

#[test]
fn with_schemas_enabled_the_records_carry_the_detections_schema() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("uploads");
    std::fs::create_dir(&images).unwrap();
    copy_photo(&images, "chelsea.png", "0001.png");
    let topic = unique("e2e-camera-schemas");
    let url = format!("file://{}/", images.display());
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("schemas-cam", merge_json(camera_config(&url, &topic), json!({"value.converter.schemas.enable": "true"})));
    let worker = setup.start();
    wait_for_or_explain(
        "the record",
        Duration::from_secs(60),
        || (topic_count(&topic) >= 1).then_some(()),
        || tail(&worker.log_text(), 30),
    );
    let value = &values(&read_topic(&topic, 1, Duration::from_secs(10)))[0];
    assert_eq!(value["schema"]["name"], "io.connectrs.camera.Detections", "{value}");
    let fields: Vec<&str> = value["schema"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    for field in ["camera", "ts", "frame", "objects", "detections"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    assert_eq!(value["payload"]["objects"], json!({"Cat": 1}), "{value}");
    assert_eq!(value["payload"]["camera"], "schemas-cam");
}

#[test]
fn a_live_rtmp_stream_through_ffmpeg_gives_its_frames_and_the_task_outlives_the_stream() {
    require_broker();
    let ffmpeg = ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("garden.mp4");
    make_video(&ffmpeg, &video, &["chelsea.png", "eagle.jpg"], 1);
    // ffmpeg as the camera: an RTMP server that plays the clip at its own pace to the first client.
    let url = format!("rtmp://127.0.0.1:{}/live/garden", free_port());
    let mut camera = Command::new(&ffmpeg)
        .args(["-loglevel", "error", "-re", "-i"])
        .arg(&video)
        .args(["-c", "copy", "-f", "flv", "-listen", "1", &url])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let topic = unique("e2e-camera-rtmp");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    let config = merge_json(camera_config(&url, &topic), json!({"camera.ffmpeg.path": ffmpeg, "camera.reconnect.backoff.max.ms": 1000}));
    setup.connector("live", config);
    let worker = setup.start();
    // The stream is 2 s at 5 fps: every frame is analysed or counted as skipped.
    let vs = wait_for_or_explain(
        "the stream's 10 frames accounted for",
        Duration::from_secs(60),
        || {
            let n = topic_count(&topic) as usize;
            let vs = values(&read_topic(&topic, n, Duration::from_secs(10)));
            let accounted: i64 = vs.iter().map(|v| 1 + v["skipped"].as_i64().unwrap()).sum();
            (accounted >= 10).then_some(vs)
        },
        || tail(&worker.log_text(), 30),
    );
    let _ = camera.wait();
    let accounted: i64 = vs.iter().map(|v| 1 + v["skipped"].as_i64().unwrap()).sum();
    assert_eq!(accounted, 10, "{vs:?}");
    let seen: Vec<Json> = vs.iter().map(objects).collect();
    assert_eq!(seen.first(), Some(&json!({"Cat": 1})), "the clip starts with the cat: {seen:?}");
    assert_eq!(seen.last(), Some(&json!({})), "and ends with the eagle (no Open Images label): {seen:?}");
    // The stream ended and the camera is gone: the task keeps trying, RUNNING.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(worker.get("/connectors/live/status").1["tasks"][0]["state"], "RUNNING");
    assert_eq!(topic_count(&topic) as usize, vs.len(), "nothing more without a camera");
}
