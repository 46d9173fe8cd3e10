//! Burned-in text detection on decoded frames. Knows nothing of DICOM: the pixel stage
//! (`dicom-deid-pixel`) turns each frame into an 8-bit [`Image`] for detection and masks,
//! in the frame's native representation, the [`Rect`]s found here.
//!
//! The types below are the contract between the crates of the pixel stage (see
//! `docs/pixel-api.md`): `dicom-deid-pixel` (decode, mask, re-encode, the glue),
//! this crate (shared types, the classical detector, multi-frame logic) and
//! `dicom-deid-ocrnet` (the PP-OCRv4 text-detection network run with `rten`).
//!
//! What is here:
//!
//! - [`Classical`]: the pure-Rust detector (top-hats of both polarities on the grey image or on
//!   each colour channel, glyph components, horizontal and 90°-rotated lines, a two-class test
//!   per line). Its module docs say how it works and what it misses.
//! - [`detect_frames`]: runs detectors over a frame or a multi-frame (cine) image; static
//!   overlays of a cine loop are found on its temporal minimum and maximum images.
//! - `synth` (feature `synth`): a deterministic generator of test images with known text boxes
//!   and text pixel masks, and [`score`] (same feature): recall of text boxes, share of images
//!   with every PHI box hidden, area masked on text-free images, for any set of detectors.
//!
//! What is not: decoding DICOM, masking, logging (nothing here logs, least of all pixels).
//!
//! ```
//! use dicom_deid_detect::{detect_frames, Classical, Detector, Image};
//! // A dark frame with a bright bar of "text-like" strokes would be found; a flat one is not.
//! let frame = Image::gray(64, 32, vec![10; 64 * 32]);
//! assert!(Classical::new().detect(&frame).is_empty());
//! let found = detect_frames(&[&Classical::new()], &[frame.clone(), frame]);
//! assert_eq!(found.len(), 2);
//! ```

mod classical;
mod morph;
#[cfg(feature = "synth")]
pub mod score;
#[cfg(feature = "synth")]
pub mod synth;

pub use classical::{Classical, Params};

/// An 8-bit image for detection: `channels` is 1 (grey) or 3 (RGB, interleaved), rows top to
/// bottom, no padding: `data.len() == width * height * channels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// 1 or 3.
    pub channels: u8,
    /// Samples, row-major, interleaved.
    pub data: Vec<u8>,
}

impl Image {
    /// A grey image.
    pub fn gray(width: u32, height: u32, data: Vec<u8>) -> Image {
        assert_eq!(
            data.len(),
            width as usize * height as usize,
            "gray image size"
        );
        Image {
            width,
            height,
            channels: 1,
            data,
        }
    }

    /// An interleaved RGB image.
    pub fn rgb(width: u32, height: u32, data: Vec<u8>) -> Image {
        assert_eq!(
            data.len(),
            width as usize * height as usize * 3,
            "rgb image size"
        );
        Image {
            width,
            height,
            channels: 3,
            data,
        }
    }
}

/// A rectangle in pixel coordinates: top-left corner, width and height (exclusive extent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Columns covered.
    pub width: u32,
    /// Rows covered.
    pub height: u32,
}

impl Rect {
    /// Whether it covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Grown by `pad` on every side, clipped to a `width` × `height` image.
    pub fn padded(&self, pad: u32, width: u32, height: u32) -> Rect {
        let x0 = self.x.saturating_sub(pad).min(width);
        let y0 = self.y.saturating_sub(pad).min(height);
        let x1 = self
            .x
            .saturating_add(self.width)
            .saturating_add(pad)
            .min(width);
        let y1 = self
            .y
            .saturating_add(self.height)
            .saturating_add(pad)
            .min(height);
        Rect {
            x: x0,
            y: y0,
            width: x1.saturating_sub(x0),
            height: y1.saturating_sub(y0),
        }
    }
}

/// A box a detector believes holds text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// Where.
    pub rect: Rect,
    /// Confidence in 0..=1 (detectors that have none say 1).
    pub score: f32,
}

/// A text detector working on one frame. Implementations must be deterministic and must not
/// log pixel content.
pub trait Detector: Send + Sync {
    /// A short stable name that reports carry ("classical", "ppocr-v4-det").
    fn name(&self) -> &'static str;
    /// Boxes of text in `frame`.
    fn detect(&self, frame: &Image) -> Vec<TextBox>;
}

/// A rectangle to mask on one frame and what found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where.
    pub rect: Rect,
    /// The detector's name, or `rule:<id>` for a region rule.
    pub by: String,
}

/// Runs every detector over `frames`; `result[i]` lists what was found on frame `i`.
///
/// - One frame, or frames of different sizes or channel counts: every detector runs on every
///   frame.
/// - Two or more frames of one size (a cine loop, a multi-frame image): every detector runs on
///   the per-pixel temporal **minimum** and **maximum** images and what it finds is reported on
///   every frame. A static bright overlay keeps its value in the minimum image while moving
///   anatomy and speckle darken there (and a static dark overlay likewise in the maximum
///   image), so static text stands out better than on any single frame; text whose digits
///   change in place (frame counters, clocks) shows as the union of its strokes in the maximum
///   (bright text) or minimum (dark text) image. Text that moves across the frames is only
///   found where its union still looks like text: such images are not expected in DICOM and
///   are out of scope. The cost is two detections whatever the number of frames.
pub fn detect_frames(detectors: &[&dyn Detector], frames: &[Image]) -> Vec<Vec<Found>> {
    let run = |frame: &Image| -> Vec<Found> {
        detectors
            .iter()
            .flat_map(|d| {
                d.detect(frame).into_iter().map(move |b| Found {
                    rect: b.rect,
                    by: d.name().to_string(),
                })
            })
            .collect()
    };
    let uniform = frames.len() >= 2
        && frames.iter().all(|f| {
            f.width == frames[0].width
                && f.height == frames[0].height
                && f.channels == frames[0].channels
                && f.data.len() == frames[0].data.len()
        });
    if !uniform {
        return frames.iter().map(run).collect();
    }
    let (lo, hi) = temporal_extremes(frames);
    let mut found = run(&lo);
    for f in run(&hi) {
        if !found.contains(&f) {
            found.push(f);
        }
    }
    vec![found; frames.len()]
}

/// Per-pixel (per-sample) minimum and maximum over frames of one size.
pub fn temporal_extremes(frames: &[Image]) -> (Image, Image) {
    let mut lo = frames[0].clone();
    let mut hi = frames[0].clone();
    for f in &frames[1..] {
        for ((l, h), &v) in lo.data.iter_mut().zip(hi.data.iter_mut()).zip(&f.data) {
            *l = (*l).min(v);
            *h = (*h).max(v);
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_clipped_to_the_image() {
        let r = Rect {
            x: 2,
            y: 3,
            width: 10,
            height: 4,
        };
        assert_eq!(
            r.padded(5, 14, 100),
            Rect {
                x: 0,
                y: 0,
                width: 14,
                height: 12
            }
        );
        assert!(Rect {
            x: 1,
            y: 1,
            width: 0,
            height: 3
        }
        .is_empty());
    }

    struct Fixed;
    impl Detector for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn detect(&self, frame: &Image) -> Vec<TextBox> {
            vec![TextBox {
                rect: Rect {
                    x: 0,
                    y: 0,
                    width: frame.width,
                    height: 1,
                },
                score: 1.0,
            }]
        }
    }

    #[test]
    fn every_detector_runs_on_every_frame() {
        let frames = vec![Image::gray(4, 2, vec![0; 8]), Image::rgb(3, 1, vec![0; 9])];
        let found = detect_frames(&[&Fixed, &Fixed], &frames);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[1],
            vec![
                Found {
                    rect: Rect {
                        x: 0,
                        y: 0,
                        width: 3,
                        height: 1
                    },
                    by: "fixed".into()
                };
                2
            ]
        );
    }
}
