//! Times of the network detector and of the default detector (classical ∪ network) on the
//! images `scripts/bench-pixel` writes (one thread), in the format of its classical line.
//!
//! ```text
//! cargo run --release -p dicom-deid-ocrnet --example bench-ocrnet -- IMG_DIR [REPS]
//! ```
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
use dicom_deid_ocrnet::{default_models_dir, PpOcrDet};

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

/// Median and minimum wall time, and median CPU time, in ms.
fn time(detectors: &[&dyn Detector], frames: &[Image], reps: usize) -> (f64, f64, Option<f64>) {
    let _ = detect_frames(detectors, frames); // warm-up
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..reps {
        let c0 = process_cpu_ns();
        let t = Instant::now();
        std::hint::black_box(detect_frames(detectors, frames));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if let (Some(a), Some(b)) = (c0, process_cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (
        times[times.len() / 2],
        times[0],
        cpu.get(cpu.len() / 2).copied(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: bench-ocrnet IMG_DIR [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7).max(1);
    let det = match PpOcrDet::load(&default_models_dir()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bench-ocrnet: {e}");
            std::process::exit(2);
        }
    };
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
        for (label, detectors) in [
            ("ppocr-v4-det", vec![&det as &dyn Detector]),
            ("union", vec![&classical as &dyn Detector, &det]),
        ] {
            let (median, min, cpu) = time(&detectors, &frames, reps);
            let cpu = cpu.map(|c| format!(" {c:.1}")).unwrap_or_default();
            println!("{label} {name} {} {median:.1} {min:.1}{cpu}", frames.len());
        }
    }
}
