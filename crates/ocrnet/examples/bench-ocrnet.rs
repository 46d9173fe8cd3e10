//! Times of the network detector and of the default detector (classical ∪ network) on the
//! images `scripts/bench-pixel` writes (one thread), in the format of its classical line.
//!
//! ```text
//! cargo run --release -p dicom-deid-ocrnet --example bench-ocrnet -- IMG_DIR [REPS [SCALE...]]
//! ```
//!
//! Besides the default [`Params`] (full resolution, the faster equivalent graph), the network
//! runs with the graph as shipped ([`Params::fast_graph`] false) as `ppocr-v4-det@shipped` and
//! `union@shipped`, and at each SCALE given ([`Params::scale`]; default: `0.85 0.8`) as
//! `ppocr-v4-det@SCALE` and `union@SCALE`. All take turns within each repetition, so the
//! comparison does not depend on how loaded the machine was.
//!
//! IMG_DIR holds PGM (grey) / PPM (RGB) files: `<set>.p?m` for a single frame, `<set>-NN.p?m`
//! for the frames of a multi-frame set. Prints, per set, `ppocr-v4-det <set> <frames> <median
//! ms> <min ms> <cpu ms>` and `union <set> ...`: wall-clock median and minimum over REPS runs
//! and the median CPU time of the process's threads (from /proc/self/task/*/schedstat, as rten
//! runs inference on a pool thread of its own; a loaded machine inflates it less), for the
//! whole set through `detect_frames` (a cine: the temporal minimum and maximum images, two
//! detections). Uses the weights in the default models directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use dicom_deid_detect::{detect_frames, Classical, Detector, Image};
use dicom_deid_ocrnet::{default_models_dir, Params, PpOcrDet, DEFAULT_SCALE};

/// Reads a binary PGM (P5) or PPM (P6) with maxval 255.
fn read_pnm(path: &Path) -> Image {
    let bytes = std::fs::read(path).expect("read image");
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if bytes[at] == b'#' {
            while bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    let data = bytes[at + 1..].to_vec();
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert_eq!(fields[3], "255", "8-bit images only");
    match fields[0].as_str() {
        "P5" => Image::gray(w, h, data),
        "P6" => Image::rgb(w, h, data),
        other => panic!("not a binary PGM/PPM: {other}"),
    }
}

/// CPU time of all threads of this process in nanoseconds (Linux), if readable.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Per detector set: median and minimum wall time, and median CPU time, in ms. The sets
/// take turns within each repetition, so a change in the machine's load hits them alike.
fn time(
    sets: &[Vec<&dyn Detector>],
    frames: &[Image],
    reps: usize,
) -> Vec<(f64, f64, Option<f64>)> {
    let mut times = vec![Vec::new(); sets.len()];
    let mut cpu = vec![Vec::new(); sets.len()];
    for detectors in sets {
        let _ = detect_frames(detectors, frames); // warm-up
    }
    for _ in 0..reps {
        for (i, detectors) in sets.iter().enumerate() {
            let c0 = process_cpu_ns();
            let t = Instant::now();
            std::hint::black_box(detect_frames(detectors, frames));
            times[i].push(t.elapsed().as_secs_f64() * 1000.0);
            if let (Some(a), Some(b)) = (c0, process_cpu_ns()) {
                cpu[i].push(b.saturating_sub(a) as f64 / 1e6);
            }
        }
    }
    times
        .iter_mut()
        .zip(cpu.iter_mut())
        .map(|(times, cpu)| {
            times.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            (
                times[times.len() / 2],
                times[0],
                cpu.get(cpu.len() / 2).copied(),
            )
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: bench-ocrnet IMG_DIR [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7).max(1);
    let mut scales: Vec<f32> = args[2.min(args.len())..]
        .iter()
        .map(|s| s.parse().expect("SCALE is a number"))
        .collect();
    if args.len() <= 2 {
        scales.extend([0.85, 0.8]);
    }
    scales.retain(|&s| s != DEFAULT_SCALE);
    let load = |params: Params| match PpOcrDet::load_with(&default_models_dir(), params) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bench-ocrnet: {e}");
            std::process::exit(2);
        }
    };
    let det = load(Params::default());
    let shipped = load(Params {
        fast_graph: false,
        ..Params::default()
    });
    let others: Vec<(String, PpOcrDet)> = std::iter::once(("shipped".to_string(), shipped))
        .chain(scales.iter().map(|&scale| {
            (
                format!("{scale}"),
                load(Params {
                    scale,
                    ..Params::default()
                }),
            )
        }))
        .collect();
    let classical = Classical::new();

    // Group files into sets: "<set>.pgm" or "<set>-NN.pgm".
    let mut sets: BTreeMap<String, Vec<(String, Image)>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read IMG_DIR") {
        let path = entry.expect("dir entry").path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if ext != "pgm" && ext != "ppm" {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let set = match stem.rsplit_once('-') {
            Some((set, n)) if n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()) => {
                set.to_string()
            }
            _ => stem.clone(),
        };
        sets.entry(set).or_default().push((stem, read_pnm(&path)));
    }
    for (name, mut frames) in sets {
        frames.sort_by(|a, b| a.0.cmp(&b.0));
        let frames: Vec<Image> = frames.into_iter().map(|(_, f)| f).collect();
        // Fewer repetitions on the big radiograph: each takes about a second.
        let reps = if frames[0].width * frames[0].height > 2_000_000 {
            reps.min(3)
        } else {
            reps
        };
        let mut runs = vec![
            ("ppocr-v4-det".to_string(), vec![&det as &dyn Detector]),
            ("union".to_string(), vec![&classical as &dyn Detector, &det]),
        ];
        for (scale, other) in &others {
            runs.push((
                format!("ppocr-v4-det@{scale}"),
                vec![other as &dyn Detector],
            ));
            runs.push((
                format!("union@{scale}"),
                vec![&classical as &dyn Detector, other],
            ));
        }
        let sets: Vec<Vec<&dyn Detector>> = runs.iter().map(|(_, d)| d.clone()).collect();
        for ((label, _), (median, min, cpu)) in runs.iter().zip(time(&sets, &frames, reps)) {
            let cpu = cpu.map(|c| format!(" {c:.1}")).unwrap_or_default();
            println!("{label} {name} {} {median:.1} {min:.1}{cpu}", frames.len());
        }
    }
}
