//! NanoDet decoding (generalised focal loss heads): per stride 8, 16 and 32, class scores `[1, N, classes]`
//! (already through a sigmoid) and distances `[1, N, 4 × bins]` as a distribution over bins for each side
//! (left, top, right, bottom): softmax, expected bin, times the stride, from the cell's centre. The
//! output names are opaque, so outputs are matched by shape.

use super::Candidate;

const STRIDES: [u32; 3] = [8, 16, 32];
const SIDES: usize = 4;

/// The class and distance outputs of each stride: their cell counts and the bins per side.
fn heads<'a>(outputs: &'a [(Vec<usize>, &'a [f32])], side: u32, classes: usize) -> Vec<(u32, &'a [f32], &'a [f32], usize)> {
    let mut found = Vec::new();
    for stride in STRIDES {
        let cells = ((side / stride) * (side / stride)) as usize;
        let with =
            |pred: &dyn Fn(usize) -> bool| outputs.iter().find(|(s, _)| matches!(s.as_slice(), [1, n, l] if *n == cells && pred(*l)));
        let cls = with(&|l| l == classes);
        let reg = with(&|l| l != classes && l % SIDES == 0);
        if let (Some((_, cls)), Some((shape, reg))) = (cls, reg) {
            found.push((stride, *cls, *reg, shape[2] / SIDES));
        }
    }
    found
}

pub fn check_outputs(shapes: &[Vec<usize>], side: u32, classes: usize) -> Result<(), String> {
    let fake: Vec<(Vec<usize>, &[f32])> = shapes.iter().map(|s| (s.clone(), &[][..])).collect();
    if heads(&fake, side, classes).len() == STRIDES.len() {
        Ok(())
    } else {
        Err(format!(
            "the model's outputs {shapes:?} are not those of a NanoDet detector with {classes} labels on a {side} px input \
             (class scores [1, N, {classes}] and distances [1, N, 4×bins] for strides 8, 16, 32): check detector.model.kind and detector.labels"
        ))
    }
}

/// The expected bin of one side's distribution (softmax over its logits).
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0, 0.0);
    for (i, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

pub(super) fn decode(outputs: &[(Vec<usize>, &[f32])], side: u32, threshold: f32, wanted: &[bool]) -> Vec<Candidate> {
    let classes = wanted.len();
    let size = side as f32;
    let mut found = Vec::new();
    for (stride, cls, reg, bins) in heads(outputs, side, classes) {
        let grid = (side / stride) as usize;
        for cell in 0..grid * grid {
            let scores = &cls[cell * classes..(cell + 1) * classes];
            let mut distances: Option<[f32; 4]> = None;
            for (class, &score) in scores.iter().enumerate() {
                if score < threshold || !wanted[class] {
                    continue;
                }
                let d = *distances.get_or_insert_with(|| {
                    let r = &reg[cell * SIDES * bins..(cell + 1) * SIDES * bins];
                    std::array::from_fn(|s| expected_bin(&r[s * bins..(s + 1) * bins]) * stride as f32)
                });
                let cx = ((cell % grid) as f32 + 0.5) * stride as f32;
                let cy = ((cell / grid) as f32 + 0.5) * stride as f32;
                found.push(Candidate {
                    class,
                    score,
                    corners: [(cx - d[0]) / size, (cy - d[1]) / size, (cx + d[2]) / size, (cy + d[3]) / size],
                });
            }
        }
    }
    found
}
