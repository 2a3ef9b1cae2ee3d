//! A frame's detections as a record: key = the camera's name; value
//! `{camera, ts, frame, skipped, objects: {label: count}, detections: [{label, score, box: {x, y, w, h}}]}`
//! with a schema, so JsonConverter with or without schemas, Avro, and every SMT work on it. The trailing
//! window (`detector.window.ms`) and `frame.emit=on_change` are applied here, per camera.

use crate::detector::Detection;
use connect_core::{Schema, SchemaRef, SchemaType, Struct, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;
use std::time::Duration;

pub const VALUE_SCHEMA_NAME: &str = "io.connectrs.camera.Detections";

fn req(kind: SchemaType) -> SchemaRef {
    Schema::new(kind).into_ref()
}

fn structure(name: &str, fields: Vec<(&str, SchemaRef)>) -> SchemaRef {
    Schema::structure(fields.into_iter().map(|(n, s)| (n.to_string(), s))).named(name).into_ref()
}

pub fn key_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| req(SchemaType::String)).clone()
}

pub fn value_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let bbox = structure("io.connectrs.camera.Box", ["x", "y", "w", "h"].into_iter().map(|f| (f, req(SchemaType::Float64))).collect());
        let detection = structure(
            "io.connectrs.camera.Detection",
            vec![("label", req(SchemaType::String)), ("score", req(SchemaType::Float64)), ("box", bbox)],
        );
        structure(
            VALUE_SCHEMA_NAME,
            vec![
                ("camera", req(SchemaType::String)),
                ("ts", req(SchemaType::Int64)),
                ("frame", req(SchemaType::Int64)),
                ("skipped", req(SchemaType::Int64)),
                ("objects", Schema::map(req(SchemaType::String), req(SchemaType::Int32)).into_ref()),
                ("detections", Schema::array(detection).into_ref()),
            ],
        )
    })
    .clone()
}

/// Counts per label.
pub type Counts = BTreeMap<String, i32>;

pub fn counts(detections: &[Detection]) -> Counts {
    let mut counts = Counts::new();
    for d in detections {
        *counts.entry(d.label.to_string()).or_default() += 1;
    }
    counts
}

/// Four decimals: scores and boxes are not more precise than that, and JSON stays short.
fn round(v: f32) -> f64 {
    (v as f64 * 10_000.0).round() / 10_000.0
}

pub struct FrameRecord<'a> {
    pub camera: &'a str,
    pub ts: i64,
    pub frame: i64,
    pub skipped: u64,
    pub objects: &'a Counts,
    pub detections: &'a [Detection],
}

impl FrameRecord<'_> {
    pub fn value(&self) -> Value {
        let detections = self
            .detections
            .iter()
            .map(|d| {
                let mut b = Struct::with_capacity(4);
                b.put("x", Value::Float64(round(d.bbox.x)))
                    .put("y", Value::Float64(round(d.bbox.y)))
                    .put("w", Value::Float64(round(d.bbox.w)))
                    .put("h", Value::Float64(round(d.bbox.h)));
                let mut s = Struct::with_capacity(3);
                s.put("label", Value::String(d.label.to_string()))
                    .put("score", Value::Float64(round(d.score)))
                    .put("box", Value::Struct(b));
                Value::Struct(s)
            })
            .collect();
        let objects = self.objects.iter().map(|(label, n)| (Value::String(label.clone()), Value::Int32(*n))).collect();
        let mut v = Struct::with_capacity(6);
        v.put("camera", Value::String(self.camera.to_string()))
            .put("ts", Value::Int64(self.ts))
            .put("frame", Value::Int64(self.frame))
            .put("skipped", Value::Int64(self.skipped as i64))
            .put("objects", Value::Map(objects))
            .put("detections", Value::Array(detections));
        Value::Struct(v)
    }
}

/// The largest count of each label over the frames of a trailing window of time.
#[derive(Debug)]
pub struct Window {
    span: Duration,
    frames: VecDeque<(i64, Counts)>,
}

impl Window {
    pub fn new(span: Duration) -> Window {
        Window { span, frames: VecDeque::new() }
    }

    /// Add a frame's counts (at `ts`, epoch ms) and return the window's maxima.
    pub fn add(&mut self, ts: i64, counts: Counts) -> Counts {
        self.frames.push_back((ts, counts));
        let oldest = ts - self.span.as_millis() as i64;
        while self.frames.front().is_some_and(|(t, _)| *t <= oldest) {
            self.frames.pop_front();
        }
        let mut max = Counts::new();
        for (_, c) in &self.frames {
            for (label, n) in c {
                let m = max.entry(label.clone()).or_default();
                *m = (*m).max(*n);
            }
        }
        max
    }
}

/// `{"Cat":1}`: how the last emitted counts are kept in the source offset (for `on_change` after a restart).
pub fn counts_text(counts: &Counts) -> String {
    serde_json::to_string(counts).unwrap_or_default()
}

pub fn counts_from_text(text: &str) -> Option<Counts> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Region;

    fn counts_of(pairs: &[(&str, i32)]) -> Counts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_value_matches_its_schema_and_reads_as_the_issue_shows() {
        let d = Detection { label: "Cat".into(), score: 0.847_123, bbox: Region { x: 0.1, y: 0.2, w: 0.3, h: 0.4 } };
        let objects = counts(std::slice::from_ref(&d));
        let value =
            FrameRecord { camera: "garden", ts: 1_700_000_000_000, frame: 7, skipped: 2, objects: &objects, detections: &[d] }.value();
        value_schema().validate_value(&value).unwrap();
        let json = value.to_json();
        assert_eq!(json["objects"], serde_json::json!({"Cat": 1}));
        assert_eq!(json["detections"][0]["score"], serde_json::json!(0.8471));
        assert_eq!(json["detections"][0]["box"]["w"], serde_json::json!(0.3));
        assert_eq!(json["camera"], "garden");
    }

    #[test]
    fn the_window_holds_the_largest_count_of_each_label() {
        let mut w = Window::new(Duration::from_millis(1000));
        assert_eq!(w.add(0, counts_of(&[("Cat", 2)])), counts_of(&[("Cat", 2)]));
        assert_eq!(w.add(500, counts_of(&[("Cat", 1), ("Dog", 1)])), counts_of(&[("Cat", 2), ("Dog", 1)]));
        // At 1000 the frame of 0 has left the window.
        assert_eq!(w.add(1000, counts_of(&[])), counts_of(&[("Cat", 1), ("Dog", 1)]));
        assert_eq!(w.add(2000, counts_of(&[])), counts_of(&[]));
    }

    #[test]
    fn counts_round_trip_through_the_offset_text() {
        let c = counts_of(&[("Coffee cup", 1), ("Person", 3)]);
        assert_eq!(counts_from_text(&counts_text(&c)), Some(c));
    }
}
