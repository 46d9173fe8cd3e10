//! Scores any set of detectors on generated samples (feature `synth`).
//!
//! For each sample the detectors run through [`detect_frames`] (so cine loops are judged the
//! way the pixel stage runs them), each found rectangle is padded by [`Options::pad`] (the
//! stage's padding) and masked, and then:
//!
//! - a text box counts as **hidden** when, on every frame, at least [`Options::cover`]
//!   (95 %) of its text pixels are masked;
//! - an image counts as **PHI-clean** when every PHI-like box on it is hidden;
//! - on text-free images, the **masked area** is the share of the image's pixels masked (all
//!   of it is outside text); on images with text, the share masked outside the padded truth
//!   boxes is reported too, as over-masking.
//!
//! ```no_run
//! use dicom_deid_detect::{score, synth, Classical, Detector};
//! let set = synth::standard_set(2, 1);
//! let report = score::evaluate(&[&Classical::new() as &dyn Detector], &set, score::Options::default());
//! println!("{report}");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::synth::{Kind, Sample};
use crate::{detect_frames, Detector, Rect};

/// How masks are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Pixels added on every side of a found rectangle before masking (the stage's padding).
    pub pad: u32,
    /// Share of a box's text pixels that must be masked on every frame.
    pub cover: f32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pad: 0,
            cover: 0.95,
        }
    }
}

/// Counts for one group of samples or boxes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Images in the group.
    pub images: usize,
    /// Text boxes.
    pub boxes: usize,
    /// Text boxes hidden.
    pub hidden: usize,
    /// PHI-like boxes.
    pub phi_boxes: usize,
    /// PHI-like boxes hidden.
    pub phi_hidden: usize,
    /// Images with at least one PHI-like box.
    pub phi_images: usize,
    /// Of those, images with every PHI-like box hidden.
    pub phi_clean_images: usize,
    /// Sum over images of the share of pixels masked outside text (outside the padded truth
    /// boxes; on text-free images, everything masked).
    pub masked_outside: f64,
    /// The largest such share on one image.
    pub masked_outside_max: f64,
}

impl Tally {
    /// Hidden share of all text boxes (1 when there are none).
    pub fn recall(&self) -> f64 {
        ratio(self.hidden, self.boxes)
    }
    /// Hidden share of PHI-like boxes.
    pub fn phi_recall(&self) -> f64 {
        ratio(self.phi_hidden, self.phi_boxes)
    }
    /// Share of PHI-bearing images with every PHI box hidden.
    pub fn phi_clean(&self) -> f64 {
        ratio(self.phi_clean_images, self.phi_images)
    }
    /// Mean share of pixels masked outside text.
    pub fn masked_mean(&self) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            self.masked_outside / self.images as f64
        }
    }
    fn add(&mut self, o: &Tally) {
        self.images += o.images;
        self.boxes += o.boxes;
        self.hidden += o.hidden;
        self.phi_boxes += o.phi_boxes;
        self.phi_hidden += o.phi_hidden;
        self.phi_images += o.phi_images;
        self.phi_clean_images += o.phi_clean_images;
        self.masked_outside += o.masked_outside;
        self.masked_outside_max = self.masked_outside_max.max(o.masked_outside_max);
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// A box that was not hidden (for diagnosis; names the sample and the box, no pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// Sample name.
    pub sample: String,
    /// The truth box.
    pub rect: Rect,
    /// PHI-like or not.
    pub phi: bool,
    /// Font size.
    pub size: u32,
    /// Rotation.
    pub rotation: u16,
    /// Lowest share of its text pixels masked over the frames.
    pub covered: f32,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone)]
pub struct Report {
    /// Detector names, joined with `+`.
    pub detectors: String,
    /// The options used.
    pub options: Options,
    /// Per scene.
    pub by_kind: BTreeMap<Kind, Tally>,
    /// Boxes by font size band (`8-11`, `12-19`, `20-40` px), rotation (`rot 90/270`) and
    /// background (`over texture`).
    pub by_trait: BTreeMap<&'static str, Tally>,
    /// All images with text.
    pub text: Tally,
    /// Text-free images.
    pub text_free: Tally,
    /// Boxes not hidden.
    pub misses: Vec<Miss>,
}

/// Runs `detectors` on every sample and scores the masks.
pub fn evaluate(detectors: &[&dyn Detector], samples: &[Sample], options: Options) -> Report {
    let mut report = Report {
        detectors: detectors
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join("+"),
        options,
        by_kind: BTreeMap::new(),
        by_trait: BTreeMap::new(),
        text: Tally::default(),
        text_free: Tally::default(),
        misses: Vec::new(),
    };
    for sample in samples {
        let found = detect_frames(detectors, &sample.frames);
        let (w, h) = (sample.frames[0].width, sample.frames[0].height);
        let masks: Vec<Vec<bool>> = found
            .iter()
            .map(|rects| {
                let padded: Vec<Rect> = rects
                    .iter()
                    .map(|f| f.rect.padded(options.pad, w, h))
                    .collect();
                paint(&padded, w, h)
            })
            .collect();
        let mut t = Tally {
            images: 1,
            ..Tally::default()
        };
        let mut phi_all = true;
        for b in &sample.boxes {
            let covered = b
                .pixels
                .iter()
                .zip(&masks)
                .map(|(px, m)| {
                    let n = px.iter().filter(|&&p| m[p as usize]).count();
                    n as f32 / px.len().max(1) as f32
                })
                .fold(1.0f32, f32::min);
            let hidden = covered >= options.cover;
            let mut bt = Tally {
                boxes: 1,
                hidden: hidden as usize,
                phi_boxes: b.phi as usize,
                phi_hidden: (b.phi && hidden) as usize,
                ..Tally::default()
            };
            t.add(&bt);
            bt.images = 0;
            let band = match b.size {
                0..=11 => "size 8-11 px",
                12..=19 => "size 12-19 px",
                _ => "size 20-40 px",
            };
            report.by_trait.entry(band).or_default().add(&bt);
            if b.rotation != 0 {
                report
                    .by_trait
                    .entry("rotated 90/270")
                    .or_default()
                    .add(&bt);
            }
            if b.over_texture {
                report.by_trait.entry("over texture").or_default().add(&bt);
            }
            if b.phi && !hidden {
                phi_all = false;
            }
            if !hidden {
                report.misses.push(Miss {
                    sample: sample.name.clone(),
                    rect: b.rect,
                    phi: b.phi,
                    size: b.size,
                    rotation: b.rotation,
                    covered,
                });
            }
        }
        if t.phi_boxes > 0 {
            t.phi_images = 1;
            t.phi_clean_images = phi_all as usize;
        }
        // Masked outside the (padded) truth boxes, worst frame.
        let truth: Vec<Rect> = sample
            .boxes
            .iter()
            .map(|b| b.rect.padded(options.pad.max(2), w, h))
            .collect();
        let allowed = paint(&truth, w, h);
        let area = (w as f64) * (h as f64);
        let outside = masks
            .iter()
            .map(|m| m.iter().zip(&allowed).filter(|(&m, &a)| m && !a).count() as f64 / area)
            .fold(0.0f64, f64::max);
        t.masked_outside = outside;
        t.masked_outside_max = outside;
        report.by_kind.entry(sample.kind).or_default().add(&t);
        if sample.text_free() {
            report.text_free.add(&t);
        } else {
            report.text.add(&t);
        }
    }
    report
}

fn paint(rects: &[Rect], w: u32, h: u32) -> Vec<bool> {
    let mut m = vec![false; w as usize * h as usize];
    for r in rects {
        let r = r.padded(0, w, h);
        for y in r.y..r.y + r.height {
            let row = &mut m[(y * w) as usize..((y + 1) * w) as usize];
            row[r.x as usize..(r.x + r.width) as usize].fill(true);
        }
    }
    m
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "detectors: {}; a box is hidden when >= {:.0} % of its text pixels are masked on every frame; pad {} px",
            self.detectors,
            self.options.cover * 100.0,
            self.options.pad
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| set | images | text boxes | hidden | PHI boxes | PHI hidden | images with all PHI hidden | masked outside text (mean / max) |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, t: &Tally| {
            writeln!(
                f,
                "| {} | {} | {} | {:.1} % | {} | {:.1} % | {} | {:.2} % / {:.2} % |",
                name,
                t.images,
                t.boxes,
                t.recall() * 100.0,
                t.phi_boxes,
                t.phi_recall() * 100.0,
                if t.phi_images > 0 {
                    format!("{:.1} % of {}", t.phi_clean() * 100.0, t.phi_images)
                } else {
                    "–".to_string()
                },
                t.masked_mean() * 100.0,
                t.masked_outside_max * 100.0
            )
        };
        for (k, t) in &self.by_kind {
            row(f, k.label(), t)?;
        }
        row(f, "**all with text**", &self.text)?;
        row(f, "**text-free**", &self.text_free)?;
        writeln!(f)?;
        writeln!(
            f,
            "| boxes by trait | boxes | hidden | PHI boxes | PHI hidden |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        for (k, t) in &self.by_trait {
            writeln!(
                f,
                "| {} | {} | {:.1} % | {} | {:.1} % |",
                k,
                t.boxes,
                t.recall() * 100.0,
                t.phi_boxes,
                t.phi_recall() * 100.0
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, TextBox};

    struct Everything;
    impl Detector for Everything {
        fn name(&self) -> &'static str {
            "everything"
        }
        fn detect(&self, frame: &Image) -> Vec<TextBox> {
            vec![TextBox {
                rect: Rect {
                    x: 0,
                    y: 0,
                    width: frame.width,
                    height: frame.height,
                },
                score: 1.0,
            }]
        }
    }
    struct Nothing;
    impl Detector for Nothing {
        fn name(&self) -> &'static str {
            "nothing"
        }
        fn detect(&self, _: &Image) -> Vec<TextBox> {
            Vec::new()
        }
    }

    #[test]
    fn the_scorer_tells_a_full_mask_from_none() {
        let set = vec![
            crate::synth::sample(Kind::Xa, 0, 3),
            crate::synth::control(7, 4),
        ];
        let all = evaluate(&[&Everything], &set, Options::default());
        assert_eq!(all.text.recall(), 1.0);
        assert_eq!(all.text.phi_clean(), 1.0);
        assert_eq!(all.text_free.masked_mean(), 1.0);
        assert!(all.misses.is_empty());
        let none = evaluate(&[&Nothing], &set, Options::default());
        assert_eq!(none.text.hidden, 0);
        assert_eq!(none.text.phi_clean_images, 0);
        assert_eq!(none.text_free.masked_mean(), 0.0);
        assert_eq!(none.misses.len(), set[0].boxes.len());
        assert!(none.to_string().contains("| XA | 1 |"));
    }
}

#[cfg(test)]
mod cover_tests {
    use super::*;
    use crate::{Image, TextBox};

    /// Returns fixed rectangles whatever the frame.
    struct Fixed(Vec<Rect>);
    impl Detector for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn detect(&self, _: &Image) -> Vec<TextBox> {
            self.0
                .iter()
                .map(|&rect| TextBox { rect, score: 1.0 })
                .collect()
        }
    }

    #[test]
    fn a_box_needs_95_percent_of_its_text_pixels_masked_on_every_frame() {
        let s = crate::synth::sample(Kind::Cine, 1, 21);
        let truth: Vec<Rect> = s.boxes.iter().map(|b| b.rect).collect();
        let exact = evaluate(
            &[&Fixed(truth.clone())],
            std::slice::from_ref(&s),
            Options::default(),
        );
        assert_eq!(exact.text.recall(), 1.0, "{exact}");
        // The left half of every box: far under 95 % of the text pixels.
        let halves: Vec<Rect> = truth
            .iter()
            .map(|r| Rect {
                width: r.width / 2,
                ..*r
            })
            .collect();
        let half = evaluate(
            &[&Fixed(halves)],
            std::slice::from_ref(&s),
            Options::default(),
        );
        assert_eq!(half.text.hidden, 0, "{half}");
        assert!(half
            .misses
            .iter()
            .all(|m| m.covered < 0.95 && m.covered > 0.2));
        // Padding is applied before judging: boxes one pixel short on each side pass with pad 1.
        let shrunk: Vec<Rect> = truth
            .iter()
            .map(|r| Rect {
                x: r.x + 1,
                y: r.y + 1,
                width: r.width - 2,
                height: r.height - 2,
            })
            .collect();
        let tight = evaluate(
            &[&Fixed(shrunk.clone())],
            std::slice::from_ref(&s),
            Options::default(),
        );
        let padded = evaluate(
            &[&Fixed(shrunk)],
            std::slice::from_ref(&s),
            Options {
                pad: 1,
                ..Options::default()
            },
        );
        assert!(tight.text.hidden < tight.text.boxes);
        assert_eq!(padded.text.recall(), 1.0);
    }
}
