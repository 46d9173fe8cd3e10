//! Real burned-in text: the files of `../shared/corpus/BURNED_IN.csv` go through the engine
//! (profile `basic`, default detectors) and each PHI-like box of the answer key counts as
//! hidden when the rectangles the pixel stage masked cover at least 95 % of it on every
//! frame the key names. Prints the recall (PHI-like and all boxes) and asserts a floor.
//! A file that is rejected hides nothing (and leaks nothing): its boxes count as missed
//! here, and the rejection is listed.

use std::collections::BTreeMap;

use dicom_deid_engine::{Engine, Key, PixelReport, Profile};

struct KeyBox {
    frame: Option<usize>, // None = every frame
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    phi: bool,
}

fn covered(frames: &[Vec<dicom_deid_engine::Found>], b: &KeyBox) -> bool {
    let check = |f: &[dicom_deid_engine::Found]| {
        let mut hit = 0u64;
        for y in b.y..b.y + b.h {
            for x in b.x..b.x + b.w {
                if f.iter().any(|m| {
                    x >= m.rect.x
                        && x < m.rect.x + m.rect.width
                        && y >= m.rect.y
                        && y < m.rect.y + m.rect.height
                }) {
                    hit += 1;
                }
            }
        }
        hit * 100 >= u64::from(b.w) * u64::from(b.h) * 95
    };
    match b.frame {
        Some(i) => frames.get(i).is_some_and(|f| check(f)),
        None => !frames.is_empty() && frames.iter().all(|f| check(f)),
    }
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
    let (mut phi, mut phi_hit, mut all, mut all_hit) = (0, 0, 0, 0);
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
        let (mut p, mut ph) = (0, 0);
        for b in key {
            let hit = covered(&frames, b);
            all += 1;
            all_hit += usize::from(hit);
            if b.phi {
                p += 1;
                ph += usize::from(hit);
            }
        }
        phi += p;
        phi_hit += ph;
        eprintln!("{file}: PHI-like boxes hidden {ph}/{p}");
    }
    let recall = phi_hit as f64 / phi.max(1) as f64;
    eprintln!(
        "BURNED_IN.csv: PHI-like recall {phi_hit}/{phi} = {:.1} %, all boxes {all_hit}/{all} = {:.1} %",
        100.0 * recall,
        100.0 * all_hit as f64 / all.max(1) as f64
    );
    assert!(phi > 0, "the answer key lists no PHI-like box");
    assert!(
        recall >= RECALL_FLOOR,
        "PHI-like recall {:.3} below the floor {RECALL_FLOOR}",
        recall
    );
}

/// The floor asserted on the corpus answer key under `basic` (detection `usual`): 140 of
/// 145 PHI-like boxes (96.6 %) on 2026-11-23 (session 3) with the classical detector and the
/// network — up from 83 (57 %) once `usual` searched Secondary Capture SOP classes whatever
/// the Modality (a CT screen save and a film sheet: 51 boxes) and segmented palettes were
/// read (16-bit ALOKA ultrasound: 6 boxes). One box fewer fails. The 5 missed: 2 + 1 on
/// visible-light photographs, 1 on each ALOKA file (see the README).
const RECALL_FLOOR: f64 = 0.96;
