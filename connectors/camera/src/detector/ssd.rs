//! SSD decoding as the TensorFlow Object Detection API and MediaPipe do it: 1917 anchors on six feature
//! maps (19, 10, 5, 3, 2, 1) of a 300 px input, box encodings (ty, tx, th, tw) scaled by (10, 10, 5, 5),
//! class logits through a sigmoid, index 0 the background.

use super::Candidate;

const FEATURE_MAPS: [usize; 6] = [19, 10, 5, 3, 2, 1];
const MIN_SCALE: f32 = 0.2;
const MAX_SCALE: f32 = 0.95;
const ASPECT_RATIOS: [f32; 5] = [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0];

/// An anchor's centre and size in fractions of the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

pub struct Anchors(Vec<Anchor>);

impl Anchors {
    /// The anchors in the model's output order: layer, row, column, box.
    pub fn new() -> Anchors {
        let layers = FEATURE_MAPS.len();
        let scale = |i: usize| MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i as f32 / (layers - 1) as f32;
        let mut anchors = Vec::with_capacity(1917);
        for (layer, &size) in FEATURE_MAPS.iter().enumerate() {
            let s = scale(layer);
            // (aspect ratio, scale) of each box of a cell.
            let boxes: Vec<(f32, f32)> = if layer == 0 {
                // The lowest layer's reduced set.
                vec![(1.0, 0.1), (2.0, s), (0.5, s)]
            } else {
                let next = if layer + 1 < layers { scale(layer + 1) } else { 1.0 };
                ASPECT_RATIOS.iter().map(|&ar| (ar, s)).chain(std::iter::once((1.0, (s * next).sqrt()))).collect()
            };
            for row in 0..size {
                for col in 0..size {
                    for &(ratio, box_scale) in &boxes {
                        let r = ratio.sqrt();
                        anchors.push(Anchor {
                            cx: (col as f32 + 0.5) / size as f32,
                            cy: (row as f32 + 0.5) / size as f32,
                            w: box_scale * r,
                            h: box_scale / r,
                        });
                    }
                }
            }
        }
        Anchors(anchors)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The output whose last dimension is `last` and middle dimension `rows`.
fn find<'a>(outputs: &'a [(Vec<usize>, &'a [f32])], rows: usize, last: usize) -> Option<&'a [f32]> {
    outputs.iter().find(|(shape, _)| matches!(shape.as_slice(), [1, r, l] if *r == rows && *l == last)).map(|(_, data)| *data)
}

/// The model's outputs must be boxes `[1, anchors, 4]` and logits `[1, anchors, labels]`.
pub fn check_outputs(shapes: &[Vec<usize>], anchors: usize, labels: usize) -> Result<(), String> {
    let has = |last: usize| shapes.iter().any(|s| matches!(s.as_slice(), [1, r, l] if *r == anchors && *l == last));
    if has(4) && has(labels) {
        Ok(())
    } else {
        Err(format!(
            "the model's outputs {shapes:?} are not those of an SSD detector with {anchors} anchors and {labels} labels \
             (box encodings [1, {anchors}, 4] and class logits [1, {anchors}, {labels}]): check detector.model.kind and detector.labels"
        ))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn decode(anchors: &Anchors, outputs: &[(Vec<usize>, &[f32])], threshold: f32, wanted: &[bool]) -> Vec<Candidate> {
    let n = anchors.len();
    let classes = wanted.len();
    let (Some(boxes), Some(logits)) = (find(outputs, n, 4), find(outputs, n, classes)) else {
        return Vec::new(); // shapes were checked at load
    };
    // sigmoid(x) >= t  ⇔  x >= logit(t): compare logits, and take the exponential only for the few above.
    let t = threshold.clamp(1e-6, 1.0 - 1e-6);
    let min_logit = (t / (1.0 - t)).ln();
    let mut found = Vec::new();
    for (i, anchor) in anchors.0.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        for (class, &logit) in row.iter().enumerate().skip(1) {
            if logit < min_logit || !wanted[class] {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let (ty, tx, th, tw) = (b[0], b[1], b[2], b[3]);
            let cx = tx / 10.0 * anchor.w + anchor.cx;
            let cy = ty / 10.0 * anchor.h + anchor.cy;
            let w = (tw / 5.0).exp() * anchor.w;
            let h = (th / 5.0).exp() * anchor.h;
            found.push(Candidate { class, score: sigmoid(logit), corners: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0] });
        }
    }
    found
}
