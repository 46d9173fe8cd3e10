//! Engine CPU throughput on one core, files preloaded: `throughput DIR [PROFILE]`.
//! (The end-to-end benchmark, with I/O and all cores, is `scripts/bench`.)
use dicom_deid_engine::*;
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let files: Vec<Vec<u8>> = walkdir::WalkDir::new(&a[1])
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    let engine = Engine::new(
        Profile::load(a.get(2).map(String::as_str).unwrap_or("basic")).unwrap(),
        Key::from_bytes([1; 32]),
    );
    let bytes: usize = files.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut ok = 0;
    for f in &files {
        ok += engine.process(f).is_ok() as usize;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{ok}/{} ok, {:.0} instances/s, {:.0} MB/s on one core",
        files.len(),
        files.len() as f64 / s,
        bytes as f64 / s / 1e6
    );
}
