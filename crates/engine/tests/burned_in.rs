//! Real burned-in text: the files of `../shared/corpus/BURNED_IN.csv` go through the engine
//! (profile `basic`, default detectors) and each PHI-like box of the answer key is scored two
//! ways, on every frame the key names:
//!
//! - by **text pixels**, the criterion of the issue and of the generated set's scorer: the box
//!   counts as hidden when at least 95 % of its text pixels are inside the masked rectangles.
//!   The answer key gives boxes, not glyphs, so a text pixel is estimated from the original
//!   image the detectors see: a pixel of the box whose value differs from the box's most
//!   common value (its background) by more than [`TEXT_CONTRAST`] of 255 in some channel. On a
//!   textured background this also counts texture as text, which only makes the test harder.
//! - by **area**, stricter: at least 95 % of the box's pixels masked. Hand-drawn key boxes
//!   include the space between words and margins around them, which no detector should
//!   have to mask.
//!
//! Prints both recalls (PHI-like and all boxes) and every PHI-like box missed with the share of
//! its text pixels and of its area masked, and asserts a floor on each. A file that is
//! rejected hides nothing (and leaks nothing): its boxes count as missed here, and the
//! rejection is listed.

use std::collections::{BTreeMap, HashMap};

use dicom_deid_engine::{Engine, Found, Key, PixelReport, Profile};
use dicom_deid_pixel::{dataset, decode};
use dicom_deid_wire::{parse_dataset, read_file, Limits, Syntax};

/// How far (of 255, in any channel) a pixel must be from its box's background to count as text.
const TEXT_CONTRAST: i32 = 48;

struct KeyBox {
    frame: Option<usize>, // None = every frame
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    phi: bool,
}

/// An original frame as the detectors see it (8-bit grey or RGB, interleaved).
struct Frame {
    width: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Frame {
    fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let at = (y as usize * self.width as usize + x as usize) * self.channels;
        &self.data[at..at + self.channels]
    }
}

/// The original frames of `input` as detection images; empty when they cannot be decoded
/// (the boxes of such a file are then scored by area only).
fn original_frames(input: &[u8]) -> Vec<Frame> {
    let limits = Limits::default();
    let Ok(raw) = read_file(input, &limits) else {
        return Vec::new();
    };
    let inflated;
    let (body, syntax, ts) = if raw.syntax.deflated {
        let Ok(bytes) = raw.inflate(&limits) else {
            return Vec::new();
        };
        inflated = bytes;
        (
            inflated.as_slice(),
            Syntax::EXPLICIT_LE,
            dicom_deid_pixel::EXPLICIT_LE.to_string(),
        )
    } else {
        (raw.body, raw.syntax, raw.transfer_syntax_uid.clone())
    };
    let Ok(ds) = parse_dataset(body, syntax, &limits) else {
        return Vec::new();
    };
    let Ok(Some((desc, data))) = dataset::describe(&ds, &ts) else {
        return Vec::new();
    };
    let Ok(decoded) = decode(&desc, &data) else {
        return Vec::new();
    };
    (0..decoded.frames())
        .map(|i| {
            let image = decoded.detection_image(i);
            Frame {
                width: image.width,
                channels: usize::from(image.channels),
                data: image.data,
            }
        })
        .collect()
}

/// The text pixels of box `b` in `frame`: those farther than [`TEXT_CONTRAST`] from the box's
/// most common value. Every pixel of the box when none stands out (or the box leaves the image).
fn text_pixels(frame: &Frame, b: &KeyBox) -> Vec<(u32, u32)> {
    let height = frame.data.len() / frame.channels / frame.width.max(1) as usize;
    let all: Vec<(u32, u32)> = (b.y..b.y + b.h)
        .flat_map(|y| (b.x..b.x + b.w).map(move |x| (x, y)))
        .collect();
    if b.x + b.w > frame.width || (b.y + b.h) as usize > height {
        return all;
    }
    let mut counts: HashMap<&[u8], u32> = HashMap::new();
    for &(x, y) in &all {
        *counts.entry(frame.pixel(x, y)).or_default() += 1;
    }
    let background = counts
        .iter()
        .max_by_key(|(value, n)| (**n, value.to_vec()))
        .map(|(value, _)| value.to_vec())
        .unwrap_or_default();
    let text: Vec<(u32, u32)> = all
        .iter()
        .copied()
        .filter(|&(x, y)| {
            frame
                .pixel(x, y)
                .iter()
                .zip(&background)
                .any(|(&v, &bg)| (i32::from(v) - i32::from(bg)).abs() > TEXT_CONTRAST)
        })
        .collect();
    if text.is_empty() {
        all
    } else {
        text
    }
}

fn masked(found: &[Found], x: u32, y: u32) -> bool {
    found.iter().any(|m| {
        x >= m.rect.x
            && x < m.rect.x + m.rect.width
            && y >= m.rect.y
            && y < m.rect.y + m.rect.height
    })
}

/// The percentage of `pixels` masked in `found`.
fn share(found: &[Found], pixels: &[(u32, u32)]) -> u64 {
    let hit = pixels.iter().filter(|&&(x, y)| masked(found, x, y)).count() as u64;
    hit * 100 / (pixels.len() as u64).max(1)
}

/// Percentages of box `b` masked in its worst frame: (of its text pixels, of its area). Both 0
/// when nothing was cleaned; by area twice when the original frames could not be decoded.
fn shares(masks: &[Vec<Found>], originals: &[Frame], b: &KeyBox) -> (u64, u64) {
    let area: Vec<(u32, u32)> = (b.y..b.y + b.h)
        .flat_map(|y| (b.x..b.x + b.w).map(move |x| (x, y)))
        .collect();
    let frame_shares = |i: usize| -> (u64, u64) {
        let Some(found) = masks.get(i) else {
            return (0, 0);
        };
        let by_area = share(found, &area);
        match originals.get(i) {
            Some(original) => (share(found, &text_pixels(original, b)), by_area),
            None => (by_area, by_area),
        }
    };
    let frames: Vec<usize> = match b.frame {
        Some(i) => vec![i],
        None => (0..masks.len()).collect(),
    };
    frames
        .into_iter()
        .map(frame_shares)
        .reduce(|(t, a), (t2, a2)| (t.min(t2), a.min(a2)))
        .unwrap_or((0, 0))
}

#[test]
fn burned_in_phi_boxes_of_the_corpus_are_masked() {
    let Some(corpus) = dicom_deid_wire::testing::shared_corpus() else {
        return;
    };
    let mut reader = csv::Reader::from_path(corpus.join("BURNED_IN.csv")).unwrap();
    let mut boxes: BTreeMap<String, Vec<KeyBox>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        let n = |i: usize| row[i].trim().parse::<u32>().unwrap();
        boxes.entry(row[0].to_string()).or_default().push(KeyBox {
            frame: (row[1].trim() != "all").then(|| n(1) as usize),
            x: n(2),
            y: n(3),
            w: n(4),
            h: n(5),
            phi: row[7].trim() == "yes",
        });
    }
    let engine = Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([7; 32]));
    eprintln!("detectors: {:?}", engine.detector_names());
    let (mut phi, mut phi_hit, mut phi_area_hit, mut all, mut all_hit) = (0, 0, 0, 0, 0);
    for (file, key) in &boxes {
        let input = std::fs::read(corpus.join(file)).unwrap();
        let frames = match engine.process(&input) {
            Ok(p) => match p.report.pixel {
                PixelReport::Cleaned { frames, .. } => frames,
                other => {
                    eprintln!("{file}: not cleaned ({other:?})");
                    Vec::new()
                }
            },
            Err(e) => {
                eprintln!("{file}: rejected: {e}");
                Vec::new()
            }
        };
        let originals = original_frames(&input);
        let (mut p, mut ph, mut pa) = (0, 0, 0);
        for b in key {
            let (by_text, by_area) = shares(&frames, &originals, b);
            let (hit_text, hit_area) = (by_text >= 95, by_area >= 95);
            all += 1;
            all_hit += usize::from(hit_text);
            if b.phi {
                p += 1;
                ph += usize::from(hit_text);
                pa += usize::from(hit_area);
                if !hit_area {
                    eprintln!(
                        "  PHI-like box at ({}, {}) {}x{}: {by_text} % of its text pixels and {by_area} % of its area masked",
                        b.x, b.y, b.w, b.h
                    );
                }
            }
        }
        phi += p;
        phi_hit += ph;
        phi_area_hit += pa;
        eprintln!("{file}: PHI-like boxes hidden {ph}/{p} (by area {pa}/{p})");
    }
    let recall = phi_hit as f64 / phi.max(1) as f64;
    let recall_area = phi_area_hit as f64 / phi.max(1) as f64;
    eprintln!(
        "BURNED_IN.csv: PHI-like recall {phi_hit}/{phi} = {:.1} % by text pixels, {phi_area_hit}/{phi} = {:.1} % by area; all boxes {all_hit}/{all} = {:.1} % by text pixels",
        100.0 * recall,
        100.0 * recall_area,
        100.0 * all_hit as f64 / all.max(1) as f64
    );
    assert!(phi > 0, "the answer key lists no PHI-like box");
    assert!(
        recall >= RECALL_FLOOR,
        "PHI-like recall by text pixels {:.3} below the floor {RECALL_FLOOR}",
        recall
    );
    assert!(
        recall_area >= AREA_RECALL_FLOOR,
        "PHI-like recall by area {:.3} below the floor {AREA_RECALL_FLOOR}",
        recall_area
    );
}

/// The floor on the PHI-like recall by text pixels under `basic` (detection `usual`): 143 of 145
/// (98.6 %) on 2026-11-24 (session 4); one box fewer fails. The two below 95 % are the same
/// box on the two ALOKA files, ": M" (85 %): the "M" is masked, the left half of the colon
/// before it is not. The three boxes on visible-light photographs that fail by area have all
/// their text pixels masked (the key's boxes include the gap between "M" and "49" and a margin).
const RECALL_FLOOR: f64 = 0.98;

/// The floor on the PHI-like recall by area: 140 of 145 PHI-like boxes (96.6 %) on 2026-11-23
/// (session 3) with the classical detector and the network — up from 83 (57 %) once `usual`
/// searched Secondary Capture SOP classes whatever the Modality (a CT screen save and a film
/// sheet: 51 boxes) and segmented palettes were read (16-bit ALOKA ultrasound: 6 boxes). One box
/// fewer fails. The 5 below 95 % by area: 2 + 1 on visible-light photographs, 1 on each ALOKA
/// file (see the README).
const AREA_RECALL_FLOOR: f64 = 0.96;
