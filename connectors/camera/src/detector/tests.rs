//! The shipped models on the labelled photos (`tests/images/`, see `models/NOTICE.md`), with the margins
//! `docs/camera.md` gives: what each detector must see, and must not.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images").join(name)).unwrap()
}

pub(crate) fn ssd_spec() -> DetectorSpec {
    DetectorSpec::default()
}

pub(crate) fn nanodet_spec() -> DetectorSpec {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    DetectorSpec {
        kind: ModelKind::NanoDet,
        model: Some(models.join("nanodet_coco80_fp16w.onnx")),
        labels: Some(models.join("coco80_labels.txt")),
        score_threshold: 0.4,
        ..ssd_spec()
    }
}

fn counts(detector: &Detector, name: &str) -> BTreeMap<String, usize> {
    let found = detector.detect(detector.prepare(&photo(name)).unwrap()).unwrap();
    let mut counts = BTreeMap::new();
    for d in &found {
        assert!(d.score >= detector.spec.score_threshold, "{d:?}");
        assert!(d.bbox.x >= 0.0 && d.bbox.y >= 0.0 && d.bbox.x + d.bbox.w <= 1.0001 && d.bbox.y + d.bbox.h <= 1.0001, "{d:?}");
        *counts.entry(d.label.to_string()).or_default() += 1;
    }
    counts
}

fn map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn ssd_anchors_are_the_1917_of_the_model() {
    let anchors = ssd::Anchors::new();
    assert_eq!(anchors.len(), 1917);
}

#[test]
fn ssd_sees_the_cat_the_person_the_cup_and_the_dog_scene() {
    let detector = Detector::load(ssd_spec()).unwrap();
    assert_eq!(counts(&detector, "chelsea.png"), map(&[("Cat", 1)]));
    assert_eq!(counts(&detector, "astronaut.png"), map(&[("Person", 1)]));
    assert_eq!(counts(&detector, "coffee.png"), map(&[("Coffee cup", 1)]));
    let dog = counts(&detector, "dog.jpg");
    for label in ["Dog", "Bicycle", "Car"] {
        assert!(dog.contains_key(label), "{label} not in {dog:?}");
    }
    assert!(counts(&detector, "eagle.jpg").is_empty(), "Open Images' 24 labels have no bird");
}

#[test]
fn nanodet_sees_the_bird_the_giraffe_and_the_zebra() {
    let detector = Detector::load(nanodet_spec()).unwrap();
    assert!(counts(&detector, "eagle.jpg").contains_key("bird"));
    let giraffe = counts(&detector, "giraffe.jpg");
    assert!(giraffe.contains_key("giraffe") && giraffe.contains_key("zebra"), "{giraffe:?}");
}

#[test]
fn labels_include_and_exclude_filter_before_counting() {
    let only_dogs = Detector::load(DetectorSpec { include: vec!["dog".into()], ..ssd_spec() }).unwrap();
    assert_eq!(counts(&only_dogs, "dog.jpg").keys().collect::<Vec<_>>(), vec!["Dog"]);
    let no_cars = Detector::load(DetectorSpec { exclude: vec!["Car".into()], ..ssd_spec() }).unwrap();
    let seen = counts(&no_cars, "dog.jpg");
    assert!(!seen.contains_key("Car") && seen.contains_key("Dog"), "{seen:?}");
}

#[test]
fn a_region_of_interest_hides_what_lies_outside_and_boxes_stay_in_frame_coordinates() {
    let whole = Detector::load(ssd_spec()).unwrap();
    let found = whole.detect(whole.prepare(&photo("dog.jpg")).unwrap()).unwrap();
    let car = found.iter().find(|d| &*d.label == "Car").expect("a car in dog.jpg");
    // The car is in the top right of the photo: a region of the left half does not see it.
    assert!(car.bbox.x > 0.5, "{car:?}");
    let left = Detector::load(DetectorSpec { roi: Region::parse("0,0,0.5,1").unwrap(), ..ssd_spec() }).unwrap();
    let seen = left.detect(left.prepare(&photo("dog.jpg")).unwrap()).unwrap();
    assert!(seen.iter().all(|d| &*d.label != "Car"), "{seen:?}");
    assert!(seen.iter().all(|d| d.bbox.x + d.bbox.w <= 0.5001), "boxes in frame coordinates, inside the region: {seen:?}");
}

#[test]
fn what_is_not_an_image_is_a_clear_error() {
    let detector = Detector::load(ssd_spec()).unwrap();
    let err = detector.prepare(b"{\"not\": \"a jpeg\"}").unwrap_err();
    assert!(matches!(err, DetectorError::NotAnImage(_)), "{err}");
    let mut truncated = photo("dog.jpg");
    truncated.truncate(2000);
    assert!(detector.prepare(&truncated).is_err());
}

#[test]
fn a_model_of_the_wrong_kind_or_labels_is_refused_at_load() {
    let wrong_kind = Detector::load(DetectorSpec { kind: ModelKind::NanoDet, ..nanodet_spec_with_model_of_ssd() }).unwrap_err();
    assert!(wrong_kind.to_string().contains("NanoDet") || wrong_kind.to_string().contains("nanodet"), "{wrong_kind}");
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "a\nb\n").unwrap();
    let wrong_labels = Detector::load(DetectorSpec { labels: Some(labels), ..ssd_spec() }).unwrap_err();
    assert!(wrong_labels.to_string().contains("2 labels"), "{wrong_labels}");
    let missing = Detector::load(DetectorSpec { model: Some(dir.path().join("none.onnx")), ..ssd_spec() }).unwrap_err();
    assert!(missing.to_string().contains("none.onnx"), "{missing}");
}

fn nanodet_spec_with_model_of_ssd() -> DetectorSpec {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    DetectorSpec { model: Some(models.join("ssd_mobilenetv2_oidv4_fp16w.onnx")), ..nanodet_spec() }
}

#[test]
fn regions_parse_and_refuse_what_leaves_the_frame() {
    assert_eq!(Region::parse("0.1, 0.2, 0.5, 0.5").unwrap(), Region { x: 0.1, y: 0.2, w: 0.5, h: 0.5 });
    for bad in ["0,0,1", "0,0,1,1,1", "a,0,1,1", "0.6,0,0.5,1", "0,0,0,1", "-0.1,0,0.5,0.5"] {
        assert!(Region::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn nms_keeps_the_best_of_overlapping_boxes_of_a_class_only() {
    let c = |class, score, x| Candidate { class, score, corners: [x, 0.0, x + 0.5, 0.5] };
    let kept = nms(vec![c(1, 0.6, 0.0), c(1, 0.9, 0.05), c(2, 0.7, 0.0), c(1, 0.8, 0.5)], 0.5);
    let summary: Vec<(usize, f32)> = kept.iter().map(|k| (k.class, k.score)).collect();
    assert_eq!(summary, vec![(1, 0.9), (1, 0.8), (2, 0.7)]);
}

/// Scores as onnxruntime gives them for the same models and photos (docs/camera.md): the decoding and
/// the preprocessing agree with the reference run to about 0.01, not only on which labels pass.
#[test]
fn scores_match_the_onnxruntime_reference_run() {
    scores_match_the_reference(EngineKind::Tract);
}

/// The library of the `ort` engine's tests: `CONNECT_TEST_ORT_LIB`, else `scripts/services onnxruntime-lib`.
#[cfg(feature = "ort")]
fn ort_engine() -> EngineKind {
    let library = std::env::var("CONNECT_TEST_ORT_LIB").unwrap_or_else(|_| {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services"))
            .arg("onnxruntime-lib")
            .output()
            .expect("scripts/services onnxruntime-lib");
        assert!(out.status.success(), "scripts/services onnxruntime-lib: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    EngineKind::Ort { library: library.into() }
}

/// ONNX Runtime runs the same models on the same prepared frames: the same objects, the reference's scores.
#[cfg(feature = "ort")]
#[test]
fn the_ort_engine_sees_what_tract_sees_with_the_reference_scores() {
    scores_match_the_reference(ort_engine());
    let detector = Detector::load(DetectorSpec { engine: ort_engine(), threads: 2, ..ssd_spec() }).unwrap();
    assert_eq!(counts(&detector, "chelsea.png"), map(&[("Cat", 1)]));
    assert_eq!(counts(&detector, "coffee.png"), map(&[("Coffee cup", 1)]));
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.onnx");
    std::fs::write(&broken, b"not a model").unwrap();
    let err = Detector::load(DetectorSpec { engine: ort_engine(), model: Some(broken), ..ssd_spec() }).unwrap_err().to_string();
    assert!(err.contains("broken.onnx") && err.contains("ONNX Runtime"), "{err}");
}

fn scores_match_the_reference(engine: EngineKind) {
    let score = |d: &Detector, photo_name: &str, label: &str| -> f32 {
        let found = d.detect(d.prepare(&photo(photo_name)).unwrap()).unwrap();
        found.iter().find(|x| &*x.label == label).map(|x| x.score).unwrap_or_else(|| panic!("no {label} in {photo_name}: {found:?}"))
    };
    let ssd = Detector::load(DetectorSpec { engine: engine.clone(), ..ssd_spec() }).unwrap();
    for (photo_name, label, expected) in [
        ("chelsea.png", "Cat", 0.847),
        ("astronaut.png", "Person", 0.593),
        ("coffee.png", "Coffee cup", 0.565),
        ("dog.jpg", "Dog", 0.736),
        ("dog.jpg", "Car", 0.665),
    ] {
        let got = score(&ssd, photo_name, label);
        assert!((got - expected).abs() < 0.01, "SSD {photo_name} {label}: {got}, reference {expected}");
    }
    let nanodet = Detector::load(DetectorSpec { engine, ..nanodet_spec() }).unwrap();
    for (photo_name, label, expected) in [("eagle.jpg", "bird", 0.738), ("giraffe.jpg", "giraffe", 0.824), ("giraffe.jpg", "zebra", 0.681)]
    {
        let got = score(&nanodet, photo_name, label);
        assert!((got - expected).abs() < 0.01, "NanoDet {photo_name} {label}: {got}, reference {expected}");
    }
}
