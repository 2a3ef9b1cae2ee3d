//! SMT cost per record on a 1 KB schemaless JSON record, next to the cost of JsonConverter decode + encode of
//! the same record, so a chain's overhead reads as a ratio. Run: `cargo bench -p connect-transforms`.

use connect_core::converter::{Converter, JsonConverter};
use connect_core::transform::{TransformChain, TransformStep, Transformation};
use connect_core::{Config, RecordData};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// Percentage full, as a double.
const COMPUTE_PCT: &[(&str, &str)] =
    &[("field", "PCT"), ("expression", "(capacity - empty_places) / capacity * 100"), ("field.type", "float64")];

/// The car-park timestamp: date and time fields, London time.
const PARSE_TS: &[(&str, &str)] =
    &[("field", "TS"), ("date.field", "date"), ("time.field", "time"), ("format", "yyyy-MM-dd HH:mm"), ("timezone", "Europe/London")];

fn cfg(pairs: &[(&str, &str)]) -> Config {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A car-park-like record padded to about 1 KB of JSON.
fn json_1kb() -> Vec<u8> {
    let mut v = serde_json::json!({
        "date": "2020-10-06", "time": "14:41", "name": "Westgate", "capacity": 116, "empty_places": 89,
        "status": "Spaces", "latitude": 53.796291, "longitude": -1.759143,
        "directions_url": "https://maps.google.com/?daddr=53.796291,-1.759143",
        "line": "2020-10-06,14:41,Westgate,116,89,Spaces,53.796291,-1.759143,x", "ts_text": "2020-10-06 14:41:00",
        "secret": "hunter2", "header": {"msg_type": "0003", "source_dev_id": "", "user_id": "", "original_data_source": "SMART"},
    });
    for i in 0..12 {
        v[format!("pad_{i}")] = serde_json::json!("x".repeat(40));
    }
    let bytes = serde_json::to_vec(&v).unwrap();
    assert!((900..1200).contains(&bytes.len()), "{} bytes", bytes.len());
    bytes
}

fn wasm_fixture(name: &str) -> String {
    format!("{}/tests/wasm/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn plugin(class: &str, config: &[(&str, &str)]) -> Box<dyn Transformation> {
    let p = connect_transforms::transformation_plugins().into_iter().find(|p| p.class == class || p.aliases.contains(&class)).expect(class);
    let mut t = (p.create)();
    t.configure(&cfg(config)).unwrap_or_else(|e| panic!("{class}: {e}"));
    t
}

fn benches(c: &mut Criterion) {
    let bytes = json_1kb();
    let mut converter = JsonConverter::default();
    converter.configure(&cfg(&[("schemas.enable", "false")]), false).unwrap();
    let (schema, value) = converter.to_connect("t", Some(&bytes)).unwrap();
    let record = RecordData { topic: "t".into(), value_schema: schema, value, timestamp: Some(1_601_991_660_000), ..Default::default() };

    c.bench_function("json decode+encode (1 KB)", |b| {
        b.iter(|| {
            let (s, v) = converter.to_connect("t", Some(black_box(&bytes))).unwrap();
            black_box(converter.from_connect("t", s.as_ref(), &v).unwrap().map(|c| c.len()));
        })
    });
    c.bench_function("record clone (baseline of each SMT below)", |b| b.iter(|| black_box(record.clone())));

    let singles: Vec<(&str, Box<dyn Transformation>)> = vec![
        ("ReplaceField exclude", plugin("ReplaceField$Value", &[("exclude", "secret,header")])),
        ("InsertField static", plugin("InsertField$Value", &[("static.field", "SOURCE"), ("static.value", "v2")])),
        ("MaskField", plugin("MaskField$Value", &[("fields", "secret")])),
        ("Cast", plugin("Cast$Value", &[("spec", "capacity:float64,empty_places:int32")])),
        ("ValueToKey", plugin("ValueToKey", &[("fields", "name")])),
        ("ExtractField", plugin("ExtractField$Value", &[("field", "name")])),
        ("HoistField", plugin("HoistField$Value", &[("field", "wrapped")])),
        ("Flatten", plugin("Flatten$Value", &[])),
        (
            "TimestampConverter",
            plugin("TimestampConverter$Value", &[("field", "ts_text"), ("target.type", "unix"), ("format", "yyyy-MM-dd HH:mm:ss")]),
        ),
        ("RegexRouter", plugin("RegexRouter", &[("regex", "(.*)"), ("replacement", "$1-out")])),
        ("TimestampRouter", plugin("TimestampRouter", &[])),
        (
            "ParseCsv (field)",
            plugin("ParseCsv$Value", &[("field", "line"), ("columns", "d,t,n,c:int32,e:int32,s,lat:float64,lon:float64,u")]),
        ),
        ("ParseTimestamp Europe/London", plugin("ParseTimestamp$Value", PARSE_TS)),
        ("ComputeField", plugin("ComputeField$Value", COMPUTE_PCT)),
        ("BuildStruct", plugin("BuildStruct$Value", &[("field", "LOCATION"), ("fields", "lat=latitude,lon=longitude")])),
        // WASM transforms (ABI v1): a filter that keeps the record (handed back unchanged, so nothing is parsed)
        // and a module that rewrites a field (upper-cases `status`: the host parses the answer).
        ("Wasm filter (record kept)", plugin("Wasm", &[("module.path", &wasm_fixture("filter.wat")), ("module.cache.dir", "")])),
        (
            "Wasm rewrite (status upper-cased)",
            plugin("Wasm", &[("module.path", &wasm_fixture("upper-status.wat")), ("module.cache.dir", "")]),
        ),
    ];
    for (name, t) in &singles {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut r = record.clone();
                black_box(t.apply(&mut r).unwrap());
                black_box(r);
            })
        });
    }

    let step = |alias: &str, class: &str, config: &[(&str, &str)]| TransformStep {
        alias: alias.into(),
        class: class.into(),
        transform: plugin(class, config),
        predicate: None,
    };
    let chain = TransformChain::new(vec![
        step("drop", "ReplaceField$Value", &[("exclude", "secret,header")]),
        step("ts", "ParseTimestamp$Value", PARSE_TS),
        step("pct", "ComputeField$Value", COMPUTE_PCT),
        step("loc", "BuildStruct$Value", &[("field", "LOCATION"), ("fields", "lat=latitude,lon=longitude")]),
        step("src", "InsertField$Value", &[("static.field", "SOURCE"), ("static.value", "v2")]),
    ]);
    let mut out = Vec::with_capacity(1);
    // The native counterpart of the WASM filter: Filter with a predicate that does not match, so the record goes on.
    let mut keeps = connect_transforms::TopicNameMatches::default();
    connect_core::transform::Predicate::configure(&mut keeps, &cfg(&[("pattern", "other-.*")])).unwrap();
    let filter = TransformChain::new(vec![TransformStep {
        alias: "filter".into(),
        class: "Filter".into(),
        transform: plugin("Filter", &[]),
        predicate: Some((Box::new(keeps), false)),
    }]);
    c.bench_function("Filter with a predicate (record kept)", |b| {
        b.iter(|| {
            out.clear();
            filter.apply(record.clone(), &mut out).unwrap();
            black_box(&out);
        })
    });
    c.bench_function("chain of five (drop, ts, pct, loc, src)", |b| {
        b.iter(|| {
            out.clear();
            chain.apply(record.clone(), &mut out).unwrap();
            black_box(&out);
        })
    });
}

criterion_group!(smt, benches);
criterion_main!(smt);
