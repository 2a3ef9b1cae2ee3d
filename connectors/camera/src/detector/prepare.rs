//! From an encoded frame to the model's input: decode (JPEG, PNG), crop to the region of interest and
//! stretch to the model's square (as both models were trained), then normalise into the layout the model
//! wants. Resizing is bilinear with fast_image_resize's SIMD kernels (the image crate's filters cost 7-24
//! ms a frame, more than a third of inference).

use super::{DetectorError, ModelKind, Region};
use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
// The pixels' vector becomes the tensor's storage (no copy).
use tract_onnx::prelude::{tract_ndarray, IntoTensor, Tensor};

/// A frame made ready for the model.
#[derive(Debug)]
pub struct Prepared {
    pub tensor: Tensor,
    /// The decoded frame's size in pixels.
    pub width: u32,
    pub height: u32,
}

/// NanoDet's per-channel mean and scale, in its BGR order.
const NANODET_MEAN: [f32; 3] = [103.53, 116.28, 123.675];
const NANODET_STD: [f32; 3] = [57.375, 57.12, 58.395];

pub(super) fn prepare(encoded: &[u8], roi: Region, side: u32, kind: ModelKind) -> Result<Prepared, DetectorError> {
    let decoded = image::load_from_memory(encoded).map_err(|e| DetectorError::NotAnImage(e.to_string()))?;
    let (width, height) = (decoded.width(), decoded.height());
    if width == 0 || height == 0 {
        return Err(DetectorError::NotAnImage("an image of no pixels".into()));
    }
    let rgb = decoded.into_rgb8().into_raw();
    let source = Image::from_vec_u8(width, height, rgb, PixelType::U8x3).map_err(|e| DetectorError::NotAnImage(e.to_string()))?;
    let mut square = Image::new(side, side, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
        (roi.x * width as f32) as f64,
        (roi.y * height as f32) as f64,
        ((roi.w * width as f32) as f64).max(1.0),
        ((roi.h * height as f32) as f64).max(1.0),
    );
    Resizer::new().resize(&source, &mut square, &options).map_err(|e| DetectorError::Inference(format!("resize: {e}")))?;
    let pixels = square.buffer();
    let s = side as usize;
    let tensor = match kind {
        ModelKind::Ssd => {
            // NHWC, RGB, px/127.5 - 1.
            let data: Vec<f32> = pixels.iter().map(|&p| p as f32 / 127.5 - 1.0).collect();
            tract_ndarray::Array4::from_shape_vec((1, s, s, 3), data).map(IntoTensor::into_tensor)
        }
        ModelKind::NanoDet => {
            // NCHW, BGR, (px - mean) / std.
            let plane = s * s;
            let mut data = vec![0f32; 3 * plane];
            for (i, px) in pixels.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = (px[2 - c] as f32 - NANODET_MEAN[c]) / NANODET_STD[c];
                }
            }
            tract_ndarray::Array4::from_shape_vec((1, 3, s, s), data).map(IntoTensor::into_tensor)
        }
    }
    .map_err(|e| DetectorError::Inference(format!("{e:#}")))?;
    Ok(Prepared { tensor, width, height })
}
