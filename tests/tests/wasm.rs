//! WASM transforms (`io.connectrs.transforms.Wasm`) in real pipelines: a WAT filter between a file source and a
//! file sink, an AssemblyScript module that rewrites a field next to a module that loops, grows memory and traps
//! on marked records (each of those in the DLQ, the task RUNNING, every other record through), and modules that
//! cannot run refused at create with a 400 naming why.

use connect_e2e::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> String {
    format!("{}/../transforms/tests/wasm/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Build tests/wasm/rewrite.ts with AssemblyScript's compiler (`scripts/services asc-bin`).
fn build_rewrite_module(dir: &Path) -> PathBuf {
    let asc = std::env::var("CONNECT_TEST_ASC").unwrap_or_else(|_| {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services"))
            .arg("asc-bin")
            .output()
            .expect("scripts/services");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let out = dir.join("rewrite.wasm");
    // From the source's folder: `--use abort=rewrite/abort` names the function by the file's path.
    let run = std::process::Command::new(&asc)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/wasm"))
        .args(["rewrite.ts", "--runtime", "stub", "--use", "abort=rewrite/abort", "-O3", "-o"])
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("running {asc}: {e}"));
    assert!(run.status.success(), "asc failed on tests/wasm/rewrite.ts: {}", String::from_utf8_lossy(&run.stderr));
    out
}

#[test]
fn a_wat_filter_drops_marked_lines_and_the_rest_arrive_byte_identical() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    let lines: Vec<String> = (0..2000)
        .map(|i| if i % 10 == 3 { format!("line {i} DROP-ME \"quoted\" ünïcode") } else { format!("line {i} \"quoted\" \\ ünïcode\ttab") })
        .collect();
    std::fs::write(&input, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let topic = unique("e2e-wasm-filter");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "wasm-source",
        json!({
            "connector.class": "FileStreamSource", "file": input, "topic": topic,
            "transforms": "filter",
            "transforms.filter.type": "io.connectrs.transforms.Wasm",
            "transforms.filter.module.path": fixture("filter.wat"),
        }),
    );
    setup.connector("wasm-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let cache = dir.path().join("wasm-cache");
    setup.env("CONNECT_WASM_CACHE_DIR", cache.to_str().unwrap());
    let mut worker = setup.start();
    let kept: Vec<&String> = lines.iter().filter(|l| !l.contains("DROP-ME")).collect();
    wait_for_or_explain(
        "the sink to write every kept line",
        Duration::from_secs(60),
        || (line_count(&output) >= kept.len()).then_some(()),
        || format!("{} of {} lines; worker log:\n{}", line_count(&output), kept.len(), tail(&worker.log_text(), 30)),
    );
    std::thread::sleep(Duration::from_millis(500));
    let written = read_lines(&output);
    assert_eq!(written.len(), 1800, "2,000 lines in, 200 dropped by the module");
    assert!(written.iter().zip(&kept).all(|(w, k)| w == *k), "every kept line byte-identical and in order");
    let cached: Vec<_> = std::fs::read_dir(&cache).map(|d| d.filter_map(|e| e.ok()).collect()).unwrap_or_default();
    assert_eq!(cached.len(), 1, "the compiled module is cached in CONNECT_WASM_CACHE_DIR");
    let (_, status) = worker.get("/connectors/wasm-source/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn faulting_records_go_to_the_dlq_and_the_task_keeps_running() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let rewrite = build_rewrite_module(dir.path());
    let input = dir.path().join("carparks.jsonl");
    // 300 car-park readings; records 10, 20, ... carry a marker that makes the second module misbehave.
    let markers = ["LOOP", "GROW", "TRAP"];
    let lines: Vec<String> = (0..300)
        .map(|i| {
            let note = if i % 10 == 0 && i > 0 { markers[(i / 10) % 3] } else { "" };
            json!({"name": format!("park {i}"), "capacity": 100 + i, "status": "Spaces", "note": note}).to_string()
        })
        .collect();
    std::fs::write(&input, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let (topic, dlq) = (unique("e2e-wasm-rewrite"), unique("e2e-wasm-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "wasm-faults",
        json!({
            "connector.class": "FileStreamSource", "file": input, "topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "transforms": "parse,upper,misbehave",
            "transforms.parse.type": "io.connectrs.transforms.ParseJson$Value",
            "transforms.upper.type": "Wasm",
            "transforms.upper.module.path": rewrite,
            "transforms.misbehave.type": "Wasm",
            "transforms.misbehave.module.path": fixture("misbehave.wat"),
            "transforms.misbehave.fuel": "2000000",
            "transforms.misbehave.memory.max.bytes": "8388608",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": 1,
            "errors.deadletterqueue.context.headers.enable": true,
        }),
    );
    let mut worker = setup.start();
    let records = read_topic_full(&topic, 271, Duration::from_secs(60));
    let dead = read_topic_full(&dlq, 29, Duration::from_secs(60));
    assert_eq!((records.len(), dead.len()), (271, 29), "300 in = 271 delivered + 29 in the DLQ");

    let values: Vec<serde_json::Value> = records.iter().map(|r| serde_json::from_slice(r.value.as_ref().unwrap()).unwrap()).collect();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v["status"], "SPACES", "record {i}: the AssemblyScript module upper-cased the field: {v}");
        assert!(v["note"].as_str().is_some_and(str::is_empty), "no marked record delivered: {v}");
    }
    assert_eq!(values[0], json!({"name": "park 0", "capacity": 100, "status": "SPACES", "note": ""}), "other fields as they were");

    let mut reasons = std::collections::BTreeMap::new();
    for record in &dead {
        assert_eq!(record.header("__connect.errors.stage").as_deref(), Some("TRANSFORMATION"));
        let message = record.header("__connect.errors.exception.message").unwrap_or_default();
        let kind = ["ran out of fuel", "memory.max.bytes=8388608", "trapped"]
            .into_iter()
            .find(|k| message.contains(k))
            .unwrap_or_else(|| panic!("unexpected DLQ message: {message}"));
        *reasons.entry(kind).or_insert(0) += 1;
    }
    assert_eq!(reasons.values().sum::<i32>(), 29);
    assert_eq!(reasons.len(), 3, "each fault seen: {reasons:?}");
    let (_, status) = worker.get("/connectors/wasm-faults/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn modules_that_cannot_run_are_refused_at_create_with_a_400_naming_why() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let no_exports = dir.path().join("no-exports.wat");
    std::fs::write(&no_exports, "(module (memory (export \"memory\") 1))").unwrap();
    let worker = WorkerSetup::new(dir.path(), &[]).start();
    let create = |name: &str, module: &str, extra: serde_json::Value| {
        let config = merge_json(
            json!({
                "connector.class": "FileStreamSource", "file": dir.path().join("in.txt"), "topic": unique("e2e-wasm-refused"),
                "transforms": "w", "transforms.w.type": "Wasm", "transforms.w.module.path": module,
            }),
            extra,
        );
        http("POST", worker.port, "/connectors", Some(&json!({"name": name, "config": config})))
    };
    let (code, body) = create("refuses", &fixture("refuse-config.wat"), json!({"transforms.w.config.mode": "strict"}));
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused its configuration") && message.contains("takes no config.* keys"), "{body}");

    let (code, body) = create("no-exports", &no_exports.display().to_string(), json!({}));
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("does not export `alloc`"), "{body}");

    let (code, body) = create("accepted", &fixture("refuse-config.wat"), json!({}));
    assert_eq!(code, 201, "without config.* keys the same module is accepted: {body}");
}
