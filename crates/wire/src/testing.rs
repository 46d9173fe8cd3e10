//! Builders of small DICOM streams for tests and examples in this workspace.

use crate::{write_file, DataSet, Element, FileMetaOut, Syntax, Value, Vr};

/// Shorthand for a text element.
pub fn text(tag: u32, vr: Vr, s: &str) -> Element<'static> {
    Element::text(tag, vr, s)
}

/// Shorthand for a sequence element.
pub fn seq(tag: u32, items: Vec<DataSet<'static>>) -> Element<'static> {
    Element {
        tag,
        vr: Vr::SQ,
        value: Value::Seq(items),
    }
}

/// A data set from elements (sorted by tag).
pub fn dataset(elements: Vec<Element<'static>>) -> DataSet<'static> {
    let mut ds = DataSet { elements };
    ds.sort();
    ds
}

/// The Image Pixel attributes of a `rows` × `cols` single-sample MONOCHROME2 image of unsigned
/// 8-bit pixels, their US values in big-endian byte order when `big_endian` (Pixel Data not
/// included).
pub fn mono8_pixel_module(rows: u16, cols: u16, big_endian: bool) -> Vec<Element<'static>> {
    let us = |tag, v: u16| {
        let b = if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        Element::new(tag, Vr::US, b.to_vec())
    };
    vec![
        us(0x0028_0002, 1),
        text(0x0028_0004, Vr::CS, "MONOCHROME2"),
        us(0x0028_0010, rows),
        us(0x0028_0011, cols),
        us(0x0028_0100, 8),
        us(0x0028_0101, 8),
        us(0x0028_0102, 7),
        us(0x0028_0103, 0),
    ]
}

/// A small CT-like Part 10 file (explicit VR little endian, 2×2 16-bit pixels).
pub fn minimal_file() -> Vec<u8> {
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7"),
        text(0x0008_0060, Vr::CS, "CT"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0010_0020, Vr::LO, "PID-0001"),
        text(0x0020_000D, Vr::UI, "1.2.3.4.5"),
        text(0x0020_000E, Vr::UI, "1.2.3.4.5.6"),
        Element::new(0x0028_0010, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0011, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x7FE0_0010, Vr::OW, vec![1u8, 0, 2, 0, 3, 0, 4, 0]),
    ]);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).expect("a small data set encodes");
    out
}

/// The shared corpus of real DICOM files (`../shared/corpus` beside the
/// checkout), or `None`, said loudly, on a developer machine without it. Under
/// `CI=true` a missing corpus is a failure, not a skip.
pub fn shared_corpus() -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if path.join("MANIFEST.csv").is_file() {
        return Some(
            path.canonicalize()
                .expect("an existing folder canonicalizes"),
        );
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the shared corpus is missing at {}",
        path.display()
    );
    eprintln!(
        "\n!!! SKIPPED: no shared corpus at {} !!!\n",
        path.display()
    );
    None
}

/// Every `.dcm` file under `dir`, recursively, in directory order (none when `dir` does not
/// exist).
pub fn dcm_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dcm_files(&p));
        } else if p.extension().is_some_and(|x| x == "dcm") {
            out.push(p);
        }
    }
    out
}

/// Every file under `dir` but the corpus's own `.csv` and `.md` files, recursively, sorted by
/// path: the files of the shared corpus, for the tests that walk it.
pub fn corpus_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.extension().is_some_and(|e| e == "csv" || e == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
