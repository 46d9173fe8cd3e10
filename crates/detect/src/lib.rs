//! Burned-in text detection on decoded frames. Knows nothing of DICOM: the pixel stage
//! (`dicom-deid-pixel`) turns each frame into an 8-bit [`Image`] for detection and masks,
//! in the frame's native representation, the [`Rect`]s found here.
//!
//! The types below are the contract between the crates of the pixel stage (see
//! `docs/pixel-api.md`): `dicom-deid-pixel` (decode, mask, re-encode, the glue),
//! this crate (shared types, the classical detector, multi-frame logic) and
//! `dicom-deid-ocrnet` (the PP-OCRv4 text-detection network run with `rten`).

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

/// Runs every detector on every frame; `result[i]` lists what was found on frame `i`.
pub fn detect_frames(detectors: &[&dyn Detector], frames: &[Image]) -> Vec<Vec<Found>> {
    frames
        .iter()
        .map(|frame| {
            detectors
                .iter()
                .flat_map(|d| {
                    d.detect(frame).into_iter().map(move |b| Found {
                        rect: b.rect,
                        by: d.name().to_string(),
                    })
                })
                .collect()
        })
        .collect()
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
