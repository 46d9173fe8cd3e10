//! Scores the classical detector, the network, and their union (the default detector) on the
//! detect crate's generated set, with the detect crate's scorer.
//!
//! ```text
//! cargo run --release -p dicom-deid-ocrnet --example score-union [-- PER_KIND [SEED]] [--misses] [--max-side=N]
//! ```
//!
//! `--max-side=N` runs the network with [`Params::max_side`] = N instead of the default (to
//! see what downscaling costs in recall).
//!
//! Defaults: 6 images per scene and seed 1, the set of the README's figures. Uses the weights
//! in the default models directory (`dicom-deid models install`).

use dicom_deid_detect::{score, synth, Classical, Detector};
use dicom_deid_ocrnet::{default_models_dir, Params, PpOcrDet};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let misses = args.iter().any(|a| a == "--misses");
    let mut params = Params::default();
    if let Some(v) = args.iter().find_map(|a| a.strip_prefix("--max-side=")) {
        params.max_side = v.parse().expect("--max-side=N");
    }
    if let Some(v) = args.iter().find_map(|a| a.strip_prefix("--scale=")) {
        params.scale = v.parse().expect("--scale=F");
    }
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let per_kind = nums.first().copied().unwrap_or(6) as usize;
    let seed = nums.get(1).copied().unwrap_or(1);
    if !synth::fonts_available() {
        eprintln!(
            "warning: DejaVu fonts not found in {}: the set differs from the README's",
            synth::font_dir().display()
        );
    }
    let det = match PpOcrDet::load_with(&default_models_dir(), params) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("score-union: {e}");
            std::process::exit(2);
        }
    };
    let classical = Classical::new();
    let set = synth::standard_set(per_kind, seed);
    println!(
        "set: standard_set({per_kind}, {seed}), {} images; network scale {} max_side {}\n",
        set.len(),
        params.scale,
        params.max_side
    );
    let runs: [&[&dyn Detector]; 3] = [&[&classical], &[&det], &[&classical, &det]];
    for detectors in runs {
        let report = score::evaluate(detectors, &set, score::Options::default());
        println!("{report}");
        if misses {
            for m in &report.misses {
                println!(
                    "miss: {} {:?} phi={} size={} rot={} covered={:.2}",
                    m.sample, m.rect, m.phi, m.size, m.rotation, m.covered
                );
            }
            println!();
        }
    }
}
