//! Time of the PP-OCRv4 detector on one core, on a 640×480 ultrasound-like frame and a
//! 2048×2048 CR-like frame (both with text drawn in), median of N runs after one warm-up.
//!
//! ```text
//! cargo run --release -p dicom-deid-ocrnet --example ocrnet_speed [-- REPS]
//! ```
//!
//! Uses the weights in the default models directory (`dicom-deid models install`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use dicom_deid_detect::{Detector, Image};
use dicom_deid_ocrnet::{default_models_dir, PpOcrDet};

fn median_ms(det: &PpOcrDet, frame: &Image, reps: usize) -> (f64, usize) {
    let boxes = det.detect(frame).len();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(det.detect(frame));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], boxes)
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = default_models_dir();
    let t = Instant::now();
    let det = match PpOcrDet::load(&dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ocrnet_speed: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "load (hash check + parse): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let mut us = common::ultrasound(640, 480, 7);
    common::draw_text(&mut us, 10, 8, "DOE^JOHN 1961-04-12", 12, 230);
    common::draw_text(&mut us, 420, 440, "MRN 0048213", 10, 200);
    let mut cr = common::radiograph(2048, 2048, 11);
    common::draw_text(&mut cr, 40, 40, "ST MARY HOSPITAL", 32, 255);
    common::draw_text(&mut cr, 1500, 1960, "R", 48, 255);

    for (name, frame) in [("640x480 US", &us), ("2048x2048 CR", &cr)] {
        let (ms, boxes) = median_ms(&det, frame, reps);
        println!("ppocr-v4-det {name}: {ms:.1} ms median of {reps} (1 thread), {boxes} boxes");
    }
}
