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
use dicom_deid_profile::pixel::{
    uid_under, Signature, USUAL_IMAGE_TYPE_WORDS, USUAL_MODALITIES, USUAL_SOP_CLASSES,
};
use dicom_deid_profile::{DetectionMode, PixelConfig};

/// What the stage knows of an instance before reading any pixel.
#[derive(Debug, Clone, Default)]
pub struct Instance<'a> {
    /// Modality, manufacturer, model, SOP class, rows, columns.
    pub signature: Signature<'a>,
    /// BurnedInAnnotation (0028,0301), trimmed.
    pub burned_in: Option<&'a str>,
    /// ImageType (0008,0008), all values as stored (backslash-separated).
    pub image_type: Option<&'a str>,
    /// ConversionType (0008,0064), trimmed.
    pub conversion_type: Option<&'a str>,
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
    /// Why `usual` detection runs ("modality US", "Secondary Capture SOP class", …);
    /// `None` when detection does not run or the mode is `always`.
    pub usual_because: Option<String>,
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
            DetectionMode::Usual => usual_because(inst).is_some(),
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
        let usual_because = match self.config.detection {
            DetectionMode::Usual => usual_because(inst),
            _ => None,
        };
        Decision {
            burned_in: inst.burned_in_yes(),
            rules,
            outside_ultrasound,
            detect: self.wants_detection(inst),
            usual_because,
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

/// Why `usual` detection searches an instance, from its header (see
/// [`DetectionMode::Usual`]), or `None` when it does not. Names attributes and the kind of
/// value, never a value that could identify anyone.
pub fn usual_because(inst: &Instance<'_>) -> Option<String> {
    if inst.burned_in_yes() {
        return Some("BurnedInAnnotation YES".into());
    }
    if let Some(m) = inst.signature.modality.map(str::trim) {
        if let Some(u) = USUAL_MODALITIES.iter().find(|u| u.eq_ignore_ascii_case(m)) {
            return Some(format!("modality {u}"));
        }
    }
    if let Some(class) = inst
        .signature
        .sop_class
        .map(|c| c.trim_end_matches(['\0', ' ']))
    {
        if let Some((_, name)) = USUAL_SOP_CLASSES.iter().find(|(p, _)| uid_under(class, p)) {
            return Some((*name).to_string());
        }
    }
    if let Some(it) = inst.image_type {
        let values: Vec<String> = it
            .split('\\')
            .map(|v| v.trim().to_ascii_uppercase())
            .collect();
        if values
            .iter()
            .any(|v| USUAL_IMAGE_TYPE_WORDS.iter().any(|w| v.contains(w)))
        {
            return Some("ImageType screen save".into());
        }
    }
    if inst.conversion_type.is_some_and(|c| !c.trim().is_empty()) {
        return Some("ConversionType present".into());
    }
    None
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

    const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
    const SC_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.7";

    fn inst<'a>(
        modality: &'a str,
        class: &'a str,
        image_type: Option<&'a str>,
        conversion_type: Option<&'a str>,
    ) -> Instance<'a> {
        Instance {
            signature: Signature {
                modality: Some(modality),
                sop_class: Some(class),
                rows: 512,
                columns: 512,
                ..Signature::default()
            },
            image_type,
            conversion_type,
            ..Instance::default()
        }
    }

    #[test]
    fn usual_searches_captures_whatever_the_modality_says() {
        let because = |i: &Instance<'_>| usual_because(i);
        // The two corpus cases that `usual` used to pass through: a CT workstation's
        // secondary capture and a digitised film sheet, both filed with Modality CT.
        assert_eq!(
            because(&inst("CT", SC_IMAGE, Some("DERIVED\\PRIMARY"), Some("DF"))).as_deref(),
            Some("Secondary Capture SOP class")
        );
        // Multi-frame SC classes lie under the SC UID; the VL classes (…77.1.x) do not.
        assert!(because(&inst("CT", "1.2.840.10008.5.1.4.1.1.7.4", None, None)).is_some());
        assert_eq!(
            because(&inst("", "1.2.840.10008.5.1.4.1.1.77.1.4", None, None)).as_deref(),
            Some("Visible Light SOP class")
        );
        assert_eq!(
            because(&inst("us", CT_IMAGE, None, None)).as_deref(),
            Some("modality US")
        );
        // A reformat (MPR, MIP) of an acquired series is SECONDARY too, but made by a
        // workstation from pixels, not a capture of a screen: it passes through.
        assert_eq!(
            because(&inst(
                "MR",
                "1.2.840.10008.5.1.4.1.1.4",
                Some("DERIVED\\SECONDARY\\MPR"),
                None
            )),
            None
        );
        assert_eq!(
            because(&inst(
                "CT",
                CT_IMAGE,
                Some("DERIVED\\PRIMARY\\SCREEN SAVE"),
                None
            ))
            .as_deref(),
            Some("ImageType screen save")
        );
        assert_eq!(
            because(&inst(
                "RTIMAGE",
                "1.2.840.10008.5.1.4.1.1.481.1",
                None,
                Some("DI")
            ))
            .as_deref(),
            Some("ConversionType present")
        );
        // Acquired CT, MR, CR: not searched (pass through undecoded).
        assert_eq!(
            because(&inst(
                "CT",
                CT_IMAGE,
                Some("ORIGINAL\\PRIMARY\\AXIAL"),
                None
            )),
            None
        );
        assert_eq!(
            because(&inst(
                "CT",
                CT_IMAGE,
                Some("DERIVED\\PRIMARY\\MPR"),
                Some(" ")
            )),
            None
        );
        assert_eq!(
            because(&inst("CR", "1.2.840.10008.5.1.4.1.1.1", None, None)),
            None
        );
        let yes = Instance {
            burned_in: Some("YES"),
            ..inst("CR", "1.2.840.10008.5.1.4.1.1.1", None, None)
        };
        assert_eq!(because(&yes).as_deref(), Some("BurnedInAnnotation YES"));
    }

    #[test]
    fn the_mode_decides_whether_usual_reasons_count() {
        let ct = inst("CT", CT_IMAGE, Some("ORIGINAL\\PRIMARY\\AXIAL"), None);
        let sc = inst("CT", SC_IMAGE, None, Some("WSD"));
        for (mode, ct_detect, sc_detect) in [
            (DetectionMode::Always, true, true),
            (DetectionMode::Usual, false, true),
            (DetectionMode::Never, false, false),
        ] {
            let config = PixelConfig {
                detection: mode,
                ..PixelConfig::default()
            };
            let stage = Stage::new(&config, Vec::new());
            assert_eq!(stage.decide(&ct).detect, ct_detect, "{mode:?}");
            let d = stage.decide(&sc);
            assert_eq!(d.detect, sc_detect, "{mode:?}");
            assert_eq!(
                d.usual_because.is_some(),
                mode == DetectionMode::Usual,
                "{mode:?}"
            );
        }
    }

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
