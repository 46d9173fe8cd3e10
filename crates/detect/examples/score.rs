//! Prints the scorer's table for the classical detector on the standard generated set.
//!
//! `cargo run --release -p dicom-deid-detect --features synth --example score [PER_KIND] [SEED] [--pad N] [--misses]`
//! (defaults: 6 images per scene, 12 text-free controls, seed 1, pad 0: the README's figures;
//! the pixel stage pads found boxes by the profile's `padding`, 3 px by default).

use dicom_deid_detect::{score, synth, Classical, Detector};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let misses = args.iter().any(|a| a == "--misses");
    let pad: u32 = args
        .iter()
        .position(|a| a == "--pad")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--pad N"))
        .unwrap_or(0);
    let nums: Vec<u64> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || args[i - 1] != "--pad")
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let per_kind = nums.first().copied().unwrap_or(6) as usize;
    let seed = nums.get(1).copied().unwrap_or(1);
    if !synth::fonts_available() {
        eprintln!(
            "warning: DejaVu fonts not found in {} (apt-get install fonts-dejavu-core): \
             every face falls back to the bitmap font and the set differs from the README's",
            synth::font_dir().display()
        );
    }
    let set = synth::standard_set(per_kind, seed);
    let mut classical = Classical::new();
    // Tuning experiments: DETECT_<FIELD>=value overrides a parameter (not for production).
    let env = |k: &str| std::env::var(format!("DETECT_{k}")).ok();
    let p = &mut classical.params;
    if let Some(v) = env("ON") {
        p.on = v.parse().expect("DETECT_ON");
    }
    if let Some(v) = env("ON_STRONG") {
        p.on_strong = v.parse().expect("DETECT_ON_STRONG");
    }
    if let Some(v) = env("MEAN_ON") {
        p.mean_on = v.parse().expect("DETECT_MEAN_ON");
    }
    if let Some(v) = env("FLAT") {
        p.max_flatness = v.parse().expect("DETECT_FLAT");
    }
    if let Some(v) = env("FLAT1") {
        p.max_flatness_single = v.parse().expect("DETECT_FLAT1");
    }
    if let Some(v) = env("SHARE") {
        p.max_text_share = v.parse().expect("DETECT_SHARE");
    }
    if let Some(v) = env("MAXH") {
        p.max_height = v.parse().expect("DETECT_MAXH");
    }
    if let Some(v) = env("SEP") {
        p.min_separation = v.parse().expect("DETECT_SEP");
    }
    let report = score::evaluate(
        &[&classical as &dyn Detector],
        &set,
        score::Options {
            pad,
            ..score::Options::default()
        },
    );
    println!(
        "set: standard_set({per_kind}, {seed}), {} images",
        set.len()
    );
    println!("{report}");
    if misses {
        for m in &report.misses {
            println!(
                "miss: {} {:?} phi={} size={} rot={} covered={:.2}",
                m.sample, m.rect, m.phi, m.size, m.rotation, m.covered
            );
        }
    }
}
