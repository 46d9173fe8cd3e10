//! De-identify one file with a throwaway key: `one IN OUT [PROFILE]` (development aid).
use dicom_deid_engine::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let profile = Profile::load(a.get(3).map(String::as_str).unwrap_or("basic")).unwrap();
    let engine = Engine::new(profile, Key::from_bytes([9; 32]));
    match engine.process(&std::fs::read(&a[1]).unwrap()) {
        Ok(p) => {
            for c in &p.report.changes {
                println!(
                    "{} {:?} {} {:?} {:?}",
                    c.path, c.keyword, c.code, c.action, c.source
                );
            }
            std::fs::write(&a[2], p.bytes).unwrap();
        }
        Err(e) => println!("rejected: {e}"),
    }
}
