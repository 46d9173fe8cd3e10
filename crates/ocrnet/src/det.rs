//! [`PpOcrDet`]: preprocessing, one inference with rten, DB post-processing, boxes back in
//! image coordinates.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use dicom_deid_detect::{Detector, Image, Rect, TextBox};
use rten::{Model, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::NdTensor;

use crate::db::{self, DbParams};
use crate::install::{model_path, read_verified, ModelError};

/// Settings of the detector. The defaults are the ones the crate documents and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Every frame is scaled by this factor before inference (at most 1: never upscaled);
    /// the network's cost grows with the pixel count. Default 1 ([`DEFAULT_SCALE`], which
    /// says what smaller values cost in recall).
    pub scale: f32,
    /// Frames whose longer side, after `scale`, would still exceed this are downscaled to
    /// it.
    pub max_side: u32,
    /// Boxes whose shorter side, on the network's input at `scale` 1, exceeds this many
    /// pixels are dropped (at a smaller `scale` the limit shrinks with it): the network also
    /// fires on large filled areas (a colour-Doppler box), while a text line of that height
    /// would need glyphs over about 80 px tall at input scale.
    pub max_short_side: u32,
    /// DB post-processing thresholds.
    pub db: DbParams,
    /// Run the network's 3×3 convolutions with many inputs and few outputs in an equivalent
    /// form that rten runs faster (a 1×1 convolution per kernel tap, shifted and summed; the
    /// same outputs to float rounding). Default true; false runs the graph as shipped.
    pub fast_graph: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            scale: DEFAULT_SCALE,
            max_side: DEFAULT_MAX_SIDE,
            max_short_side: DEFAULT_MAX_SHORT_SIDE,
            db: DbParams::default(),
            fast_graph: true,
        }
    }
}

/// The default [`Params::scale`]: full resolution. Smaller inputs are faster (0.85 runs a
/// 640×480 frame at 544×416, 74 % of the pixels; 0.8 at 512×384) but on the generated set
/// they lose PHI boxes the full-resolution input finds and mask rulers as text (README,
/// "Text-detection network").
pub const DEFAULT_SCALE: f32 = 1.0;

/// The default [`Params::max_side`].
pub const DEFAULT_MAX_SIDE: u32 = 1024;

/// The default [`Params::max_short_side`].
pub const DEFAULT_MAX_SHORT_SIDE: u32 = 128;

/// The PP-OCRv4 text-detection network (PaddleOCR's DB detector, mobile size) as a
/// [`Detector`] named `"ppocr-v4-det"`. Load it once and share it (it is `Send + Sync`);
/// each call runs on the calling thread's own single-thread rten pool, so concurrent
/// callers run in parallel and one call uses one core.
pub struct PpOcrDet {
    model: Model,
    params: Params,
}

impl std::fmt::Debug for PpOcrDet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PpOcrDet")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// One single-thread rten pool per calling thread (created on first use).
    static POOL: RefCell<Option<Arc<ThreadPool>>> = const { RefCell::new(None) };
}

fn single_thread_pool() -> Arc<ThreadPool> {
    POOL.with(|p| {
        p.borrow_mut()
            .get_or_insert_with(|| Arc::new(ThreadPool::with_num_threads(1)))
            .clone()
    })
}

/// Per-channel normalisation of PaddleOCR's detector: `(v / 255 − 0.5) / 0.5`.
fn normalise(v: f32) -> f32 {
    v / 127.5 - 1.0
}

/// The network's input size for a `width × height` frame: scaled by `scale`, or further so
/// the longer side is at most `max_side`, each side rounded to a multiple of 32 (at least
/// 32).
pub(crate) fn input_size(width: u32, height: u32, scale: f32, max_side: u32) -> (u32, u32) {
    let longer = width.max(height).max(1) as f64;
    let scale = (max_side.max(32) as f64 / longer)
        .min(f64::from(scale))
        .min(1.0);
    let round32 = |v: u32| (((v as f64 * scale) / 32.0).round() as u32).max(1) * 32;
    (round32(width), round32(height))
}

/// The frame as the network's input: `1 × 3 × th × tw`, BGR plane order (PaddleOCR reads
/// images with OpenCV), bilinear resampling with pixel centres aligned (as `cv2.resize`),
/// grey replicated to the three planes.
pub(crate) fn to_input(frame: &Image, tw: u32, th: u32) -> NdTensor<f32, 4> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (tw, th) = (tw as usize, th as usize);
    let plane = tw * th;
    let mut data = vec![0f32; 3 * plane];
    let c = frame.channels as usize;
    if (w, h) == (tw, th) {
        // No resampling: the common case of frames up to the size limit whose sides are
        // already multiples of 32 (640×480, 512×512, 1024×768).
        for (i, px) in frame.data.chunks_exact(c).enumerate() {
            let (b, g, r) = if c == 1 {
                (px[0], px[0], px[0])
            } else {
                (px[2], px[1], px[0])
            };
            data[i] = normalise(b as f32);
            data[plane + i] = normalise(g as f32);
            data[2 * plane + i] = normalise(r as f32);
        }
        return NdTensor::from_data([1, 3, th, tw], data);
    }
    let taps = |src: usize, dst: usize| -> Vec<(usize, usize, f32)> {
        let ratio = src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let s = ((d as f32 + 0.5) * ratio - 0.5).clamp(0.0, (src - 1) as f32);
                let i0 = s.floor() as usize;
                (i0, (i0 + 1).min(src - 1), s - i0 as f32)
            })
            .collect()
    };
    let xs = taps(w, tw);
    let ys = taps(h, th);
    for (ty, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (tx, &(x0, x1, fx)) in xs.iter().enumerate() {
            let at = |x: usize, y: usize, ch: usize| frame.data[(y * w + x) * c + ch] as f32;
            let sample = |ch: usize| {
                let top = at(x0, y0, ch) * (1.0 - fx) + at(x1, y0, ch) * fx;
                let bottom = at(x0, y1, ch) * (1.0 - fx) + at(x1, y1, ch) * fx;
                normalise(top * (1.0 - fy) + bottom * fy)
            };
            let i = ty * tw + tx;
            if c == 1 {
                let v = sample(0);
                data[i] = v;
                data[plane + i] = v;
                data[2 * plane + i] = v;
            } else {
                data[i] = sample(2);
                data[plane + i] = sample(1);
                data[2 * plane + i] = sample(0);
            }
        }
    }
    NdTensor::from_data([1, 3, th, tw], data)
}

impl PpOcrDet {
    /// Loads the weights from `models_dir` (see [`crate::default_models_dir`]) after checking
    /// their SHA-256, with the default [`Params`].
    pub fn load(models_dir: &Path) -> Result<PpOcrDet, ModelError> {
        Self::load_with(models_dir, Params::default())
    }

    /// Like [`PpOcrDet::load`] with explicit settings.
    pub fn load_with(models_dir: &Path, params: Params) -> Result<PpOcrDet, ModelError> {
        let mut bytes = read_verified(models_dir)?;
        if params.fast_graph {
            // The model is the pinned one (its hash was checked), so this cannot fail short of
            // a defect; should it, the graph as shipped runs (slower, same boxes).
            match crate::rewrite::faster_graph(&bytes) {
                Ok((faster, rewritten)) => {
                    tracing::debug!(
                        message = "Text-detection network: convolutions run in their faster equivalent form.",
                        rewritten
                    );
                    bytes = faster;
                }
                Err(reason) => tracing::warn!(
                    message = "Text-detection network: the faster equivalent graph could not be made; running the graph as shipped.",
                    reason
                ),
            }
        }
        let model = Model::load(bytes).map_err(|e| ModelError::Load {
            path: model_path(models_dir),
            message: e.to_string(),
        })?;
        Ok(PpOcrDet { model, params })
    }

    /// The settings in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The text-probability map for `frame` (values 0..=1, `tw × th`, row-major), as the
    /// network outputs it before post-processing.
    pub fn probability_map(&self, frame: &Image) -> Result<(Vec<f32>, u32, u32), String> {
        if frame.channels != 1 && frame.channels != 3 {
            return Err(format!("{} channels (1 or 3 expected)", frame.channels));
        }
        let expected = frame.width as usize * frame.height as usize * frame.channels as usize;
        if frame.width == 0 || frame.height == 0 || frame.data.len() != expected {
            return Err("the frame's size does not match its data".into());
        }
        let (tw, th) = input_size(
            frame.width,
            frame.height,
            self.params.scale,
            self.params.max_side,
        );
        let input = to_input(frame, tw, th);
        let opts = RunOptions::default().with_thread_pool(Some(single_thread_pool()));
        let output = self
            .model
            .run_one(input.into(), Some(opts))
            .map_err(|e| format!("inference failed: {e}"))?;
        let map: NdTensor<f32, 4> = output
            .try_into()
            .map_err(|e| format!("unexpected output: {e:?}"))?;
        if map.shape() != [1, 1, th as usize, tw as usize] {
            return Err(format!("unexpected output shape {:?}", map.shape()));
        }
        Ok((map.into_data(), tw, th))
    }
}

impl Detector for PpOcrDet {
    fn name(&self) -> &'static str {
        "ppocr-v4-det"
    }

    /// Text boxes in image coordinates. Never fails open: a frame the network cannot run on
    /// (which a well-formed [`Image`] does not produce) comes back as one box covering the
    /// whole frame, with score 0.
    fn detect(&self, frame: &Image) -> Vec<TextBox> {
        if frame.width == 0 || frame.height == 0 {
            return Vec::new();
        }
        let (prob, tw, th) = match self.probability_map(frame) {
            Ok(m) => m,
            Err(reason) => {
                tracing::warn!(
                    message = "PP-OCRv4 detection could not run on a frame; masking the whole frame.",
                    reason = %reason,
                    width = frame.width,
                    height = frame.height
                );
                return vec![TextBox {
                    rect: Rect {
                        x: 0,
                        y: 0,
                        width: frame.width,
                        height: frame.height,
                    },
                    score: 0.0,
                }];
            }
        };
        let sx = frame.width as f32 / tw as f32;
        let sy = frame.height as f32 / th as f32;
        db::boxes(&prob, tw as usize, th as usize, &self.params.db)
            .into_iter()
            .filter_map(|b| {
                // The short side of the grown rotated box: in frame pixels PaddleOCR drops
                // boxes of 3 px or less; on the input, big filled areas are dropped.
                let limit = self.params.max_short_side as f32 * self.params.scale.min(1.0);
                if b.short_side * sx.min(sy) <= 3.0 || b.short_side > limit {
                    return None;
                }
                let x0 = (b.x0 * sx).floor().clamp(0.0, frame.width as f32) as u32;
                let y0 = (b.y0 * sy).floor().clamp(0.0, frame.height as f32) as u32;
                let x1 = (b.x1 * sx).ceil().clamp(0.0, frame.width as f32) as u32;
                let y1 = (b.y1 * sy).ceil().clamp(0.0, frame.height as f32) as u32;
                let rect = Rect {
                    x: x0,
                    y: y0,
                    width: x1.saturating_sub(x0),
                    height: y1.saturating_sub(y0),
                };
                (!rect.is_empty()).then_some(TextBox {
                    rect,
                    score: b.score,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_are_multiples_of_32_within_the_limit() {
        assert_eq!(input_size(640, 480, 1.0, 1024), (640, 480));
        assert_eq!(input_size(2048, 2048, 1.0, 1024), (1024, 1024));
        assert_eq!(input_size(600, 800, 1.0, 1024), (608, 800));
        assert_eq!(input_size(2500, 1200, 1.0, 1024), (1024, 480));
        assert_eq!(input_size(10, 3, 1.0, 1024), (32, 32));
        // The default scale: 640×480 runs at 512×384; the size limit still caps large
        // frames; a scale above 1 never upscales.
        assert_eq!(input_size(640, 480, 0.85, 1024), (544, 416));
        assert_eq!(input_size(1024, 768, 0.85, 1024), (864, 640));
        assert_eq!(input_size(2048, 2048, 0.85, 1024), (1024, 1024));
        assert_eq!(input_size(640, 480, 2.0, 1024), (640, 480));
    }

    #[test]
    fn grey_is_replicated_and_colour_is_reordered_to_bgr() {
        let grey = Image::gray(32, 32, vec![255; 32 * 32]);
        let t = to_input(&grey, 32, 32);
        assert!(t.to_vec().iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let mut rgb = vec![0u8; 32 * 32 * 3];
        for px in rgb.chunks_mut(3) {
            px.copy_from_slice(&[255, 0, 0]);
        }
        let t = to_input(&Image::rgb(32, 32, rgb), 32, 32).to_vec();
        let plane = 32 * 32;
        // Plane 0 is blue (-1), plane 2 is red (+1).
        assert!((t[0] + 1.0).abs() < 1e-6 && (t[2 * plane] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn frames_of_the_input_size_are_copied_without_resampling() {
        let data: Vec<u8> = (0..64 * 32 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let img = Image::rgb(64, 32, data);
        let direct = to_input(&img, 64, 32).to_vec();
        // Each sample lands in its plane (B, G, R), normalised, with no resampling.
        for (i, px) in img.data.chunks(3).enumerate() {
            assert_eq!(direct[i], normalise(px[2] as f32));
            assert_eq!(direct[64 * 32 + i], normalise(px[1] as f32));
            assert_eq!(direct[2 * 64 * 32 + i], normalise(px[0] as f32));
        }
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // Columns alternate 0 and 255: halving gives the mean (127.5 → 0) everywhere.
        let data: Vec<u8> = (0..64 * 64)
            .map(|i| if i % 2 == 0 { 0 } else { 255 })
            .collect();
        let t = to_input(&Image::gray(64, 64, data), 32, 32).to_vec();
        assert!(t.iter().all(|v| v.abs() < 1e-5), "{:?}", &t[..4]);
    }
}
