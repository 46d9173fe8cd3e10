//! Writes a generated sample as a PPM with the truth boxes (green) and the classical
//! detector's boxes (red) outlined, for looking at what the detector does.
//!
//! `cargo run --release -p dicom-deid-detect --features synth --example dump KIND INDEX SEED OUT.ppm`
//! KIND: us-grey us-colour cine screenshot document xa cr cr-inv endoscopy control;
//! or `set NAME SEED OUT.ppm` for the sample NAME of `standard_set(6, SEED)`.

use dicom_deid_detect::{detect_frames, synth, Classical, Detector, Rect};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        eprintln!("usage: dump KIND INDEX SEED OUT.ppm");
        std::process::exit(2);
    }
    // `set NAME SEED OUT`: a sample of standard_set(6, SEED) by name.
    let s = match a[0].as_str() {
        "set" => synth::standard_set(6, a[2].parse().expect("SEED"))
            .into_iter()
            .find(|s| s.name == a[1])
            .expect("no such sample"),
        _ => pick(&a),
    };
    draw(&s, &a[3]);
}

fn pick(a: &[String]) -> synth::Sample {
    use synth::Kind::*;
    let index: usize = a[1].parse().expect("INDEX");
    let seed: u64 = a[2].parse().expect("SEED");
    match a[0].as_str() {
        "control" => synth::control(index, seed),
        k => {
            let kind = match k {
                "us-grey" => UsGrey,
                "us-colour" => UsColour,
                "cine" => Cine,
                "screenshot" => Screenshot,
                "document" => Document,
                "xa" => Xa,
                "cr" => Cr,
                "cr-inv" => CrInverted,
                "endoscopy" => Endoscopy,
                _ => panic!("unknown kind"),
            };
            synth::sample(kind, index, seed)
        }
    }
}

fn draw(s: &synth::Sample, out_path: &str) {
    let c = Classical::new();
    let found = detect_frames(&[&c as &dyn Detector], &s.frames);
    let f = &s.frames[0];
    let (w, h) = (f.width as usize, f.height as usize);
    let mut rgb: Vec<u8> = if f.channels == 3 {
        f.data.clone()
    } else {
        f.data.iter().flat_map(|&v| [v, v, v]).collect()
    };
    let mut outline = |r: Rect, col: [u8; 3]| {
        for y in r.y..r.y + r.height {
            for x in r.x..r.x + r.width {
                if y == r.y || y + 1 == r.y + r.height || x == r.x || x + 1 == r.x + r.width {
                    let i = (y as usize * w + x as usize) * 3;
                    rgb[i..i + 3].copy_from_slice(&col);
                }
            }
        }
    };
    for b in &s.boxes {
        outline(b.rect, [0, 255, 0]);
    }
    for fd in &found[0] {
        outline(fd.rect, [255, 0, 0]);
    }
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    out.extend_from_slice(&rgb);
    std::fs::write(out_path, out).expect("write");
    println!("{} boxes, {} found", s.boxes.len(), found[0].len());
}
