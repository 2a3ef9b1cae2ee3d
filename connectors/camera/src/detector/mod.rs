//! The object detector: one ONNX model run on a frame (by tract, or by ONNX Runtime with the `ort` feature:
//! [`engine`]), its raw outputs decoded into labelled boxes (anchors or distance bins, score threshold,
//! per-class NMS).
//!
//! Two model families, both without NMS in the graph (see `docs/camera.md`):
//! - [`ssd`]: SSD-MobileNetV2 on Open Images v4 (24 labels), 300 px NHWC RGB; bundled in the binary and
//!   the default;
//! - [`nanodet`]: NanoDet on COCO-80, 416 px NCHW BGR, from a file (`detector.model`).
//!
//! A frame goes through in two steps that run on different threads, so decoding the next frame overlaps
//! inference of this one: [`Detector::prepare`] (decode, crop to the region of interest, resize,
//! normalise) and [`Detector::detect`] (infer and decode boxes).

mod engine;
mod nanodet;
mod prepare;
mod ssd;

use std::path::PathBuf;
use std::sync::Arc;
use tract_onnx::prelude::*;

use engine::Engine;
pub use engine::EngineKind;
pub use prepare::Prepared;

/// The bundled default model and its labels (Apache-2.0, see `models/NOTICE.md`).
const BUNDLED_SSD: &[u8] = include_bytes!("../../models/ssd_mobilenetv2_oidv4_fp16w.onnx");
const BUNDLED_SSD_LABELS: &str = include_str!("../../models/oidv4_labelmap.txt");

/// A rectangle in fractions of the frame (0..1), origin top left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Region {
    pub const WHOLE: Region = Region { x: 0.0, y: 0.0, w: 1.0, h: 1.0 };

    /// `x,y,w,h` in 0..1, inside the frame.
    pub fn parse(text: &str) -> Result<Region, String> {
        let parts: Vec<f32> = text
            .split(',')
            .map(|p| p.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", p.trim())))
            .collect::<Result<_, _>>()?;
        let [x, y, w, h] = parts[..] else {
            return Err(format!("'{text}' is not x,y,w,h"));
        };
        let inside = |v: f32| (0.0..=1.0).contains(&v);
        if !(inside(x) && inside(y) && w > 0.0 && h > 0.0 && x + w <= 1.0 + 1e-6 && y + h <= 1.0 + 1e-6) {
            return Err(format!("'{text}' is not a region inside the frame (fractions 0..1, w and h > 0)"));
        }
        Ok(Region { x, y, w, h })
    }

    /// A box in fractions of this region, as fractions of the whole frame.
    fn project(&self, b: Region) -> Region {
        Region { x: self.x + b.x * self.w, y: self.y + b.y * self.h, w: b.w * self.w, h: b.h * self.h }
    }
}

/// One object found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: Arc<str>,
    pub score: f32,
    /// In fractions of the whole frame.
    pub bbox: Region,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Ssd,
    NanoDet,
}

impl ModelKind {
    pub fn parse(text: &str) -> Option<ModelKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ssd" => Some(ModelKind::Ssd),
            "nanodet" => Some(ModelKind::NanoDet),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            ModelKind::Ssd => "ssd",
            ModelKind::NanoDet => "nanodet",
        }
    }
}

/// What to load and how to run it.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    pub kind: ModelKind,
    /// `None`: the bundled SSD model (kind `ssd` only).
    pub model: Option<PathBuf>,
    /// `None`: the bundled SSD labels (kind `ssd` only).
    pub labels: Option<PathBuf>,
    /// Threads of one inference; 1 leaves the other cores to decoding.
    pub threads: usize,
    pub engine: EngineKind,
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// Labels to report (empty: all), and labels never to report.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub roi: Region,
}

impl Default for DetectorSpec {
    /// The bundled SSD model with the keys' defaults: score 0.5, IoU 0.5, every label, the whole frame, one thread.
    fn default() -> Self {
        DetectorSpec {
            kind: ModelKind::Ssd,
            model: None,
            labels: None,
            threads: 1,
            engine: EngineKind::Tract,
            score_threshold: 0.5,
            nms_iou: 0.5,
            include: vec![],
            exclude: vec![],
            roi: Region::WHOLE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("cannot read {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Model(String),
    #[error("the frame is not an image: {0}")]
    NotAnImage(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A candidate box before NMS: class index, score, corners (x1, y1, x2, y2) in fractions of the input.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    class: usize,
    score: f32,
    corners: [f32; 4],
}

enum Decoder {
    Ssd(ssd::Anchors),
    NanoDet,
}

/// A loaded model, shareable across threads.
pub struct Detector {
    spec: DetectorSpec,
    engine: Engine,
    labels: Vec<Arc<str>>,
    /// Per class: report it (include/exclude applied once here).
    wanted: Vec<bool>,
    side: u32,
    decoder: Decoder,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("kind", &self.spec.kind).field("side", &self.side).finish()
    }
}

fn read_labels(spec: &DetectorSpec) -> Result<Vec<Arc<str>>, DetectorError> {
    let text = match &spec.labels {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|source| DetectorError::Read { what: "the labels", path: path.clone(), source })?
        }
        None if spec.kind == ModelKind::Ssd => BUNDLED_SSD_LABELS.to_string(),
        None => return Err(DetectorError::Model("detector.labels is required with detector.model.kind=nanodet".into())),
    };
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(Arc::from).collect())
}

/// The model's ONNX bytes, and what to call it in errors.
fn read_model(spec: &DetectorSpec) -> Result<(std::borrow::Cow<'static, [u8]>, String), DetectorError> {
    match &spec.model {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| DetectorError::Read { what: "the model", path: path.clone(), source })?;
            Ok((bytes.into(), path.display().to_string()))
        }
        None if spec.kind == ModelKind::Ssd => Ok((BUNDLED_SSD.into(), "the bundled model".to_string())),
        None => Err(DetectorError::Model("detector.model is required with detector.model.kind=nanodet".into())),
    }
}

impl Detector {
    /// Load and optimise the model (about a second), and check its inputs and outputs against its kind and
    /// the label list.
    pub fn load(spec: DetectorSpec) -> Result<Detector, DetectorError> {
        let labels = read_labels(&spec)?;
        let (model, what) = read_model(&spec)?;
        let engine::Loaded { engine, input, outputs } = Engine::load(&spec.engine, &model, &what, spec.threads)?;
        let kind = spec.kind.name();
        let side = match (spec.kind, input.as_slice()) {
            (ModelKind::Ssd, [1, h, w, 3]) if h == w => *h as u32,
            (ModelKind::NanoDet, [1, 3, h, w]) if h == w => *h as u32,
            (_, shape) => {
                return Err(DetectorError::Model(format!(
                    "the model's input {shape:?} is not that of a {kind} detector ({})",
                    match spec.kind {
                        ModelKind::Ssd => "[1, S, S, 3], RGB",
                        ModelKind::NanoDet => "[1, 3, S, S], BGR",
                    }
                )))
            }
        };
        let decoder = match spec.kind {
            ModelKind::Ssd => {
                let anchors = ssd::Anchors::new();
                ssd::check_outputs(&outputs, anchors.len(), labels.len()).map_err(DetectorError::Model)?;
                Decoder::Ssd(anchors)
            }
            ModelKind::NanoDet => {
                nanodet::check_outputs(&outputs, side, labels.len()).map_err(DetectorError::Model)?;
                Decoder::NanoDet
            }
        };
        let wanted = labels
            .iter()
            .map(|l| {
                let named = |list: &[String]| list.iter().any(|n| n.eq_ignore_ascii_case(l));
                (spec.include.is_empty() || named(&spec.include)) && !named(&spec.exclude)
            })
            .collect();
        Ok(Detector { spec, engine, labels, wanted, side, decoder })
    }

    pub fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    /// Decode an encoded frame (JPEG, PNG) and make the model's input from its region of interest.
    pub fn prepare(&self, encoded: &[u8]) -> Result<Prepared, DetectorError> {
        prepare::prepare(encoded, self.spec.roi, self.side, self.spec.kind)
    }

    /// Run the model on a prepared frame: the objects above the score threshold, after NMS, in fractions of
    /// the whole frame, best first.
    pub fn detect(&self, input: Prepared) -> Result<Vec<Detection>, DetectorError> {
        let threshold = self.spec.score_threshold;
        let candidates = self.engine.run(input.tensor, |views| match &self.decoder {
            Decoder::Ssd(anchors) => ssd::decode(anchors, views, threshold, &self.wanted),
            Decoder::NanoDet => nanodet::decode(views, self.side, threshold, &self.wanted),
        })?;
        let kept = nms(candidates, self.spec.nms_iou);
        Ok(kept
            .into_iter()
            .map(|c| {
                let [x1, y1, x2, y2] = c.corners.map(|v| v.clamp(0.0, 1.0));
                let local = Region { x: x1, y: y1, w: (x2 - x1).max(0.0), h: (y2 - y1).max(0.0) };
                Detection { label: self.labels[c.class].clone(), score: c.score, bbox: self.spec.roi.project(local) }
            })
            .collect())
    }

    /// The bare model run (what the benchmark compares the connector with).
    pub fn infer(&self, tensor: Tensor) -> Result<(), DetectorError> {
        self.engine.run(tensor, |_| ())
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy non-maximum suppression per class: the best box of a class suppresses that class's boxes that
/// overlap it by more than `threshold` IoU. The result is ordered by score, best first.
fn nms(mut candidates: Vec<Candidate>, threshold: f32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.class != c.class || iou(&k.corners, &c.corners) <= threshold) {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
