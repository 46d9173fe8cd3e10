//! The glue the engine calls: decide from the header whether an instance needs a pixel
//! clean ([`Stage::decide`], no pixel is read), and if so decode, find text, mask every
//! frame and re-encode ([`Stage::clean`]).
//!
//! An instance needs a clean when BurnedInAnnotation is YES, when a region rule of the
//! profile matches it, when the profile blanks outside the ultrasound regions of a US
//! image, or when the detection mode says text is to be looked for
//! ([`DetectionMode`]). Otherwise its pixel data passes through untouched.
//!
//! Fail closed: a clean that is needed but cannot be done (no detector for an instance
//! that must be searched, or pixel data that does not decode or encode) is an error,
//! never a half-clean output.

use crate::{decode, encode, Encoded, PixelData, PixelDescription, PixelError};
use dicom_deid_detect::{detect_frames, Detector, Found, Rect};
use dicom_deid_profile::pixel::{Signature, USUAL_MODALITIES};
use dicom_deid_profile::{DetectionMode, PixelConfig};

/// What the stage knows of an instance before reading any pixel.
#[derive(Debug, Clone, Default)]
pub struct Instance<'a> {
    /// Modality, manufacturer, model, SOP class, rows, columns.
    pub signature: Signature<'a>,
    /// BurnedInAnnotation (0028,0301), trimmed.
    pub burned_in: Option<&'a str>,
    /// The regions of SequenceOfUltrasoundRegions (0018,6011), if any.
    pub ultrasound_regions: Vec<Rect>,
}

impl Instance<'_> {
    fn burned_in_yes(&self) -> bool {
        self.burned_in
            .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
    }
}

/// Why an instance is cleaned, decided from the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// BurnedInAnnotation is YES.
    pub burned_in: bool,
    /// Region rules that match: (id, rectangles).
    pub rules: Vec<(String, Vec<Rect>)>,
    /// Rectangles outside the ultrasound regions, when the profile blanks them.
    pub outside_ultrasound: Vec<Rect>,
    /// Detection is to run.
    pub detect: bool,
}

impl Decision {
    /// Whether anything is to be done to the pixels.
    pub fn needs_clean(&self) -> bool {
        self.burned_in
            || self.detect
            || !self.rules.is_empty()
            || !self.outside_ultrasound.is_empty()
    }
}

/// A cleaned instance.
#[derive(Debug, Clone)]
pub struct Cleaned {
    /// The re-encoded pixel data and the attributes that describe it.
    pub encoded: Encoded,
    /// Per frame: what was masked (padded, clipped) and what found it.
    pub frames: Vec<Vec<Found>>,
    /// The detectors that ran (empty when only rules applied).
    pub detectors: Vec<String>,
}

/// The pixel stage of one profile with its detectors.
pub struct Stage<'a> {
    config: &'a PixelConfig,
    detectors: Vec<&'a dyn Detector>,
}

impl std::fmt::Debug for Stage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("config", self.config)
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'a> Stage<'a> {
    /// A stage for a profile's `[pixel]` section and the detectors to run.
    pub fn new(config: &'a PixelConfig, detectors: Vec<&'a dyn Detector>) -> Stage<'a> {
        Stage { config, detectors }
    }

    /// Whether detection would run on this instance under the profile's mode.
    pub fn wants_detection(&self, inst: &Instance<'_>) -> bool {
        match self.config.detection {
            DetectionMode::Never => false,
            DetectionMode::Always => true,
            DetectionMode::Usual => {
                inst.burned_in_yes()
                    || inst
                        .signature
                        .modality
                        .is_some_and(|m| USUAL_MODALITIES.iter().any(|u| u.eq_ignore_ascii_case(m)))
            }
        }
    }

    /// Decides from the header alone what the instance needs.
    pub fn decide(&self, inst: &Instance<'_>) -> Decision {
        let (w, h) = (
            u32::from(inst.signature.columns),
            u32::from(inst.signature.rows),
        );
        let rules = self
            .config
            .regions
            .iter()
            .filter(|r| r.matches(&inst.signature))
            .map(|r| {
                let rects = r
                    .rects
                    .iter()
                    .map(|&[x, y, width, height]| {
                        Rect {
                            x,
                            y,
                            width,
                            height,
                        }
                        .padded(0, w, h)
                    })
                    .filter(|r| !r.is_empty())
                    .collect();
                (r.id.clone(), rects)
            })
            .collect();
        let is_us = inst
            .signature
            .modality
            .is_some_and(|m| m.eq_ignore_ascii_case("US"));
        let outside_ultrasound =
            if self.config.ultrasound_regions && is_us && !inst.ultrasound_regions.is_empty() {
                complement(&inst.ultrasound_regions, w, h)
            } else {
                Vec::new()
            };
        Decision {
            burned_in: inst.burned_in_yes(),
            rules,
            outside_ultrasound,
            detect: self.wants_detection(inst),
        }
    }

    /// Decodes, finds and masks text, and re-encodes. Errors when the clean cannot be
    /// done completely (see the module docs).
    pub fn clean(
        &self,
        decision: &Decision,
        desc: &PixelDescription,
        data: &PixelData<'_>,
    ) -> Result<Cleaned, PixelError> {
        let detect = decision.detect || (decision.burned_in && !self.detectors.is_empty());
        if decision.burned_in && self.detectors.is_empty() && decision.rules.is_empty() {
            return Err(PixelError::Unsupported {
                reason: "BurnedInAnnotation (0028,0301) is YES, no region rule matches and no text detector is available".into(),
            });
        }
        if detect && self.detectors.is_empty() {
            return Err(PixelError::Unsupported {
                reason: format!(
                    "the profile's pixel.detection ({}) asks for text detection on this instance and no text detector is available",
                    self.config.detection.as_str()
                ),
            });
        }
        let mut decoded = decode(desc, data)?;
        let n = decoded.frames();
        let (w, h) = (u32::from(desc.columns), u32::from(desc.rows));
        let mut frames: Vec<Vec<Found>> = vec![Vec::new(); n];
        for (id, rects) in &decision.rules {
            for f in frames.iter_mut() {
                f.extend(rects.iter().map(|&rect| Found {
                    rect,
                    by: format!("rule:{id}"),
                }));
            }
        }
        for f in frames.iter_mut() {
            f.extend(decision.outside_ultrasound.iter().map(|&rect| Found {
                rect,
                by: "rule:ultrasound-regions".into(),
            }));
        }
        let mut detectors = Vec::new();
        if detect {
            let images: Vec<_> = (0..n).map(|i| decoded.detection_image(i)).collect();
            let found = detect_frames(&self.detectors, &images);
            for (f, more) in frames.iter_mut().zip(found) {
                f.extend(more);
            }
            detectors = self
                .detectors
                .iter()
                .map(|d| d.name().to_string())
                .collect();
        }
        for (i, f) in frames.iter_mut().enumerate() {
            for found in f.iter_mut() {
                found.rect = found.rect.padded(self.config.padding, w, h);
            }
            f.retain(|found| !found.rect.is_empty());
            let rects: Vec<Rect> = f.iter().map(|found| found.rect).collect();
            decoded.mask(i, &rects);
        }
        let encoded = encode(&decoded)?;
        Ok(Cleaned {
            encoded,
            frames,
            detectors,
        })
    }
}

/// Rectangles covering every pixel of a `w` × `h` frame outside `keep` (rows with the same
/// uncovered runs merged).
pub fn complement(keep: &[Rect], w: u32, h: u32) -> Vec<Rect> {
    let keep: Vec<Rect> = keep.iter().map(|r| r.padded(0, w, h)).collect();
    let mut out: Vec<Rect> = Vec::new();
    let mut open: Vec<Rect> = Vec::new();
    for y in 0..h {
        let mut covered: Vec<(u32, u32)> = keep
            .iter()
            .filter(|r| y >= r.y && y < r.y + r.height)
            .map(|r| (r.x, r.x + r.width))
            .collect();
        covered.sort_unstable();
        let mut runs = Vec::new();
        let mut x = 0;
        for (a, b) in covered {
            if a > x {
                runs.push((x, a));
            }
            x = x.max(b);
        }
        if x < w {
            runs.push((x, w));
        }
        let mut next = Vec::new();
        for (a, b) in runs {
            if let Some(i) = open
                .iter()
                .position(|r| r.x == a && r.x + r.width == b && r.y + r.height == y)
            {
                let mut r = open.swap_remove(i);
                r.height += 1;
                next.push(r);
            } else {
                next.push(Rect {
                    x: a,
                    y,
                    width: b - a,
                    height: 1,
                });
            }
        }
        out.append(&mut open);
        open = next;
    }
    out.append(&mut open);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complement_covers_exactly_the_outside() {
        let keep = [Rect {
            x: 2,
            y: 1,
            width: 3,
            height: 2,
        }];
        let out = complement(&keep, 6, 4);
        let mut grid = [[0u8; 6]; 4];
        for r in keep.iter().chain(&out) {
            for y in r.y..r.y + r.height {
                for x in r.x..r.x + r.width {
                    grid[y as usize][x as usize] += 1;
                }
            }
        }
        assert!(grid.iter().flatten().all(|&c| c == 1), "{grid:?}");
        assert!(out.len() <= 4);
    }
}
