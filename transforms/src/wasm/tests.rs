use super::*;
use connect_core::{ErrorKind, Value};

fn fixture(name: &str) -> String {
    format!("{}/tests/wasm/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A scratch file for an inline module.
fn module_file(name: &str, wat: &str) -> String {
    let dir = std::env::temp_dir().join(format!("connect-rs-wasm-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, wat).unwrap();
    path.display().to_string()
}

/// A module whose every answer is `answer` (a constant in its data segment).
fn constant_module(name: &str, answer: &str) -> String {
    let escaped: String = answer.bytes().map(|b| format!("\\{b:02x}")).collect();
    module_file(
        name,
        &format!(
            r#"(module (memory (export "memory") 1) (data (i32.const 16) "{escaped}")
                (func (export "alloc") (param i32) (result i32) (i32.const 4096))
                (func (export "transform") (param i32 i32) (result i64) (i64.const {})))"#,
            (16i64 << 32) | answer.len() as i64
        ),
    )
}

fn config(pairs: &[(&str, &str)]) -> Config {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn wasm(pairs: &[(&str, &str)]) -> Result<Wasm> {
    let mut t = Wasm::with_cache_dir(None);
    t.configure(&config(pairs))?;
    Ok(t)
}

fn record(value: &str) -> RecordData {
    RecordData::new("t", None, Value::String(value.into())).with_key(None, Value::Bytes(vec![1, 2].into()))
}

#[test]
fn the_filter_drops_marked_records_and_hands_back_the_rest_as_they_were() {
    let t = wasm(&[(MODULE_PATH, &fixture("filter.wat"))]).unwrap();
    let mut kept = record("an ordinary line");
    let before = kept.clone();
    assert_eq!(t.apply(&mut kept).unwrap(), Transformed::Keep);
    assert_eq!(kept, before, "bytes stay bytes, nothing changes");
    assert_eq!(t.apply(&mut record("a line with DROP-ME in it")).unwrap(), Transformed::Drop);
    // A record bigger than the module's first page makes it grow; it still goes through.
    let mut big = record(&"x".repeat(200_000));
    assert_eq!(t.apply(&mut big).unwrap(), Transformed::Keep);
}

#[test]
fn a_module_that_rewrites_the_record_in_place_changes_only_that_field() {
    let t = wasm(&[(MODULE_PATH, &fixture("upper-status.wat"))]).unwrap();
    let value = Value::Map(vec![
        (Value::String("name".into()), Value::String("Westgate".into())),
        (Value::String("status".into()), Value::String("Spaces".into())),
    ]);
    let mut r = RecordData::new("t", None, value).with_key(None, Value::Bytes(vec![9].into()));
    assert_eq!(t.apply(&mut r).unwrap(), Transformed::Keep);
    assert_eq!(r.value.get_field("status"), Some(&Value::String("SPACES".into())));
    assert_eq!(r.value.get_field("name"), Some(&Value::String("Westgate".into())));
    assert_eq!(r.key, Value::Bytes(vec![9].into()), "the key is untouched");
}

#[test]
fn answers_patch_split_or_drop_the_record() {
    let t = wasm(&[(MODULE_PATH, &constant_module("patch.wat", r#"{"value":"new","topic":"other"}"#))]).unwrap();
    let mut r = record("old");
    assert_eq!(t.apply(&mut r).unwrap(), Transformed::Keep);
    assert_eq!((r.topic.as_str(), &r.value, &r.key), ("other", &Value::String("new".into()), &Value::Bytes(vec![1, 2].into())));

    let t = wasm(&[(MODULE_PATH, &constant_module("split.wat", r#"[{"value":"a"},{"value":"b"}]"#))]).unwrap();
    match t.apply(&mut record("old")).unwrap() {
        Transformed::Split(parts) => {
            let values: Vec<_> = parts.iter().map(|p| p.value.clone()).collect();
            assert_eq!(values, [Value::String("a".into()), Value::String("b".into())]);
        }
        other => panic!("expected a split, got {other:?}"),
    }
    let t = wasm(&[(MODULE_PATH, &constant_module("drop.wat", "[]"))]).unwrap();
    assert_eq!(t.apply(&mut record("old")).unwrap(), Transformed::Drop);
}

#[test]
fn unusable_answers_are_data_errors() {
    for (name, answer, expected) in [
        ("notjson.wat", "{nope", "not JSON"),
        ("number.wat", "42", "a number"),
        ("mixed.wat", r#"[{"value":1}, 2]"#, "other than record objects"),
        ("badfield.wat", r#"{"partition":"x"}"#, "`partition`"),
    ] {
        let t = wasm(&[(MODULE_PATH, &constant_module(name, answer))]).unwrap();
        let err = t.apply(&mut record("x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data, "{name}");
        assert!(err.message().contains(expected), "{name}: {err}");
    }
    let outside = module_file(
        "outside.wat",
        r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 0))
            (func (export "transform") (param i32 i32) (result i64) (i64.const 0x0000ffff00001000)))"#,
    );
    let err = wasm(&[(MODULE_PATH, &outside)]).unwrap().apply(&mut record("x")).unwrap_err();
    assert!(err.message().contains("outside the module's memory"), "{err}");
}

#[test]
fn faults_fail_the_record_and_the_next_record_goes_through() {
    let t = wasm(&[(MODULE_PATH, &fixture("misbehave.wat")), (FUEL, "1000000"), (MEMORY_MAX, "4194304")]).unwrap();
    for (marker, expected) in [
        ("LOOP", "ran out of fuel"),
        ("GROW", "more memory than memory.max.bytes=4194304"),
        ("TRAP", "trapped"),
        ("FAIL", "returned an error: the record holds FAIL"),
    ] {
        let err = t.apply(&mut record(&format!("a {marker} record"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data, "{marker}");
        assert!(err.message().contains(expected), "{marker}: {err}");
        let mut fine = record("a fine record");
        assert_eq!(t.apply(&mut fine).unwrap(), Transformed::Keep, "after {marker}");
        assert_eq!(fine, record("a fine record"));
    }
}

#[test]
fn a_loop_with_plenty_of_fuel_is_stopped_by_the_timeout() {
    let t = wasm(&[(MODULE_PATH, &fixture("misbehave.wat")), (FUEL, "1000000000000000"), (TIMEOUT, "300")]).unwrap();
    let started = std::time::Instant::now();
    let err = t.apply(&mut record("LOOP")).unwrap_err();
    assert!(err.message().contains("timeout.ms=300"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "stopped after {:?}", started.elapsed());
    assert_eq!(t.apply(&mut record("fine")).unwrap(), Transformed::Keep);
}

#[test]
fn modules_that_cannot_run_are_refused_at_configure_naming_why() {
    let cases = [
        ("missing.wat", r#"(module (memory (export "memory") 1))"#, "does not export `alloc`"),
        (
            "wrongsig.wat",
            r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 0))
                (func (export "transform") (param i32 i32) (result i32) (i32.const 0)))"#,
            "exports `transform` as (i32, i32) -> (i32), not (i32, i32) -> (i64)",
        ),
        (
            "imports.wat",
            r#"(module (import "env" "log" (func)) (memory (export "memory") 1)
                (func (export "alloc") (param i32) (result i32) (i32.const 0))
                (func (export "transform") (param i32 i32) (result i64) (i64.const 0)))"#,
            "env",
        ),
        ("broken.wat", "(module (func (export \"x\") (result i32)))", "does not compile"),
    ];
    for (name, wat, expected) in cases {
        let err = wasm(&[(MODULE_PATH, &module_file(name, wat))]).err().unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(err.kind(), ErrorKind::Fatal);
        assert!(err.message().contains(expected), "{name}: {err}");
    }
    let err = wasm(&[(MODULE_PATH, "/nonexistent/x.wasm")]).err().unwrap();
    assert!(err.message().contains("cannot read WASM module /nonexistent/x.wasm"), "{err}");
}

#[test]
fn configure_gets_the_config_keys_and_may_refuse_them() {
    let path = fixture("refuse-config.wat");
    wasm(&[(MODULE_PATH, &path)]).expect("no config.* keys: accepted");
    let err = wasm(&[(MODULE_PATH, &path), ("config.mode", "strict")]).err().unwrap();
    assert!(err.message().contains("refused its configuration") && err.message().contains("takes no config.* keys"), "{err}");
}

#[test]
fn compiled_code_is_cached_and_a_second_start_loads_it() {
    let dir = std::env::temp_dir().join(format!("connect-rs-wasm-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let filter = config(&[(MODULE_PATH, &fixture("filter.wat"))]);
    let start = || {
        let mut t = Wasm::with_cache_dir(Some(dir.clone()));
        t.configure(&filter).unwrap();
        t
    };
    start();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"));
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let t = start();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written, "loaded, not compiled and written again");
    assert_eq!(t.apply(&mut record("DROP-ME")).unwrap(), Transformed::Drop);
    // A damaged cache file is replaced, not trusted.
    std::fs::write(&files[0], b"garbage").unwrap();
    let t = start();
    assert_eq!(t.apply(&mut record("DROP-ME")).unwrap(), Transformed::Drop);
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 100);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A module that remembers, across calls, that a call did not finish: a trapped instance that were reused
/// would refuse every record after the trap, so only a rebuilt one lets the next record through.
const REMEMBERS_TRAPS: &str = r#"(module (memory (export "memory") 1) (global $busy (mut i32) (i32.const 0))
    (data (i32.const 16) "a call did not finish")
    (func (export "alloc") (param i32) (result i32) (i32.const 1024))
    (func (export "transform") (param $ptr i32) (param $len i32) (result i64)
      (if (global.get $busy) (then (return (i64.const -1))))
      (global.set $busy (i32.const 1))
      (if (i32.gt_u (local.get $len) (i32.const 200)) (then unreachable))
      (global.set $busy (i32.const 0))
      (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
    (func (export "last_error") (result i64) (i64.const 0x0000001000000015)))"#;

#[test]
fn an_instance_that_trapped_is_replaced_before_the_next_record() {
    let t = wasm(&[(MODULE_PATH, &module_file("remembers.wat", REMEMBERS_TRAPS))]).unwrap();
    let err = t.apply(&mut record(&"x".repeat(300))).unwrap_err();
    assert!(err.message().contains("trapped"), "{err}");
    assert_eq!(t.apply(&mut record("short")).unwrap(), Transformed::Keep, "a fresh instance took the next record");
}
