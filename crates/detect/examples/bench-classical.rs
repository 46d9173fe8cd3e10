//! Per-frame times of the classical detector on generated images (one thread), and the images
//! themselves written as PGM/PPM so other tools (Tesseract, the network detector) can be timed
//! on exactly the same pixels. `scripts/bench-pixel` runs it; by hand:
//!
//! `cargo run --release -p dicom-deid-detect --features synth --example bench-classical -- OUT_DIR [REPS]`
//!
//! Prints one line per image set: `classical <set> <frames> <median ms> <min ms> <cpu ms>`:
//! wall-clock median and minimum over REPS runs, and the median CPU time of the thread (from
//! /proc/thread-self/schedstat, so a loaded machine inflates it less; absent elsewhere), each
//! for the whole set through `detect_frames` (a cine is 10 frames in one call).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use dicom_deid_detect::{detect_frames, synth, Classical, Detector, Image};

fn write_pnm(path: &Path, img: &Image) {
    let magic = if img.channels == 3 { "P6" } else { "P5" };
    let mut f = std::fs::File::create(path).expect("create image file");
    write!(f, "{magic}\n{} {}\n255\n", img.width, img.height).expect("write header");
    f.write_all(&img.data).expect("write pixels");
}

/// CPU time of this thread in nanoseconds (Linux), if readable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: bench-classical OUT_DIR [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7);
    let out = Path::new(out);
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    let sets: Vec<(&str, Vec<Image>)> = vec![
        (
            "us-640x480",
            synth::sample(synth::Kind::UsGrey, 1, 11).frames,
        ),
        (
            "us-colour-640x480",
            synth::sample(synth::Kind::UsColour, 1, 12).frames,
        ),
        ("cr-2048x2048", synth::sample(synth::Kind::Cr, 0, 13).frames),
        (
            "cine-10x640x480",
            synth::sample(synth::Kind::Cine, 1, 14).frames,
        ),
    ];
    let classical = Classical::new();
    let detectors: [&dyn Detector; 1] = [&classical];
    for (name, frames) in &sets {
        for (i, f) in frames.iter().enumerate() {
            let ext = if f.channels == 3 { "ppm" } else { "pgm" };
            let file = if frames.len() == 1 {
                format!("{name}.{ext}")
            } else {
                format!("{name}-{i:02}.{ext}")
            };
            write_pnm(&out.join(file), f);
        }
        let _ = detect_frames(&detectors, frames); // warm-up
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..reps {
            let c0 = thread_cpu_ns();
            let t = Instant::now();
            let found = detect_frames(&detectors, frames);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
                cpu.push(b.saturating_sub(a) as f64 / 1e6);
            }
            assert_eq!(found.len(), frames.len());
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let cpu = cpu
            .get(cpu.len() / 2)
            .map(|c| format!(" {c:.1}"))
            .unwrap_or_default();
        println!(
            "classical {name} {} {:.1} {:.1}{cpu}",
            frames.len(),
            times[times.len() / 2],
            times[0]
        );
    }
}
