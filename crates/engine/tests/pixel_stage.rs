//! The pixel stage inside the engine, on images made here: what passes through untouched,
//! what a region rule and a detector mask (and nothing else), the attributes a clean sets,
//! and the rejections of a clean that cannot be done.

use std::sync::Arc;

use dicom_deid_engine::{Engine, Key, PixelReport, Profile, Rejection};
use dicom_deid_pixel::detect::{Detector, Image, Rect, TextBox};
use dicom_deid_pixel::detectors::Detectors;
use dicom_deid_wire::testing::{dataset, mono8_pixel_module, text};
use dicom_deid_wire::{read_file, write_file, Element, FileMetaOut, Limits, Syntax, Value, Vr};

const W: u16 = 40;
const H: u16 = 30;

/// An 8-bit MONOCHROME2 image: background 7, a bright "text" block at (5..15, 2..6); a
/// CT Image Storage instance for Modality CT, a Secondary Capture otherwise.
fn image(modality: &str, burned_in: Option<&str>, syntax: &str) -> Vec<u8> {
    let class = if modality == "CT" {
        "1.2.840.10008.5.1.4.1.1.2"
    } else {
        "1.2.840.10008.5.1.4.1.1.7"
    };
    image_of_class(class, modality, burned_in, syntax)
}

fn image_of_class(class: &str, modality: &str, burned_in: Option<&str>, syntax: &str) -> Vec<u8> {
    let mut px = vec![7u8; W as usize * H as usize];
    for y in 2..6 {
        for x in 5..15 {
            px[y * W as usize + x] = 250;
        }
    }
    for (i, v) in px.iter_mut().enumerate().skip(600) {
        *v = (i % 97) as u8; // "anatomy"
    }
    let mut elements = vec![
        text(0x0008_0016, Vr::UI, class),
        text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7.8"),
        text(0x0008_0060, Vr::CS, modality),
        text(0x0008_0070, Vr::LO, "ACME Imaging"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0020_000D, Vr::UI, "1.2.3.4.5"),
        text(0x0020_000E, Vr::UI, "1.2.3.4.5.6"),
        Element::new(0x7FE0_0010, Vr::OB, px),
    ];
    elements.extend(mono8_pixel_module(H, W, false));
    if let Some(b) = burned_in {
        elements.push(text(0x0028_0301, Vr::CS, b));
    }
    let ds = dataset(elements);
    let meta = FileMetaOut::for_dataset(&ds, syntax, "1.2.3", "TEST");
    let mut out = Vec::new();
    let s = Syntax::from_uid(syntax).unwrap();
    write_file(&mut out, &meta, &ds, s).unwrap();
    out
}

fn pixels(bytes: &[u8]) -> (Vec<u8>, Option<String>, Vec<String>, String) {
    let l = Limits::default();
    let raw = read_file(bytes, &l).unwrap();
    let ts = raw.transfer_syntax_uid.clone();
    let ds = raw.parse(&l).unwrap();
    let px = match &ds.get(0x7FE0_0010).unwrap().value {
        Value::Bytes(b) => b.to_vec(),
        _ => panic!("expected native pixel data"),
    };
    let codes = match ds.get(0x0012_0064).map(|e| &e.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.str(0x0008_0100).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    (px, ds.str(0x0028_0301).map(str::to_string), codes, ts)
}

fn profile(extra: &str) -> Profile {
    Profile::from_toml(&format!("name = \"t\"\n{extra}"), "t.toml").unwrap()
}

/// Finds the bright block of [`image`] (a stand-in with a known answer).
struct Bright;
impl Detector for Bright {
    fn name(&self) -> &'static str {
        "bright"
    }
    fn detect(&self, frame: &Image) -> Vec<TextBox> {
        let w = frame.width as usize;
        let hits: Vec<(usize, usize)> = frame
            .data
            .iter()
            .enumerate()
            .filter(|(_, &v)| v > 240)
            .map(|(i, _)| (i % w, i / w))
            .collect();
        if hits.is_empty() {
            return Vec::new();
        }
        let x0 = hits.iter().map(|h| h.0).min().unwrap() as u32;
        let x1 = hits.iter().map(|h| h.0).max().unwrap() as u32;
        let y0 = hits.iter().map(|h| h.1).min().unwrap() as u32;
        let y1 = hits.iter().map(|h| h.1).max().unwrap() as u32;
        vec![TextBox {
            rect: Rect {
                x: x0,
                y: y0,
                width: x1 - x0 + 1,
                height: y1 - y0 + 1,
            },
            score: 1.0,
        }]
    }
}

fn engine(p: Profile, detectors: Vec<Box<dyn Detector>>) -> Engine {
    Engine::new(p, Key::from_bytes([5; 32]))
        .with_detectors(Arc::new(Detectors::from_list(detectors)))
}

fn inside(x: usize, y: usize, r: (usize, usize, usize, usize)) -> bool {
    x >= r.0 && x < r.0 + r.2 && y >= r.1 && y < r.1 + r.3
}

#[test]
fn a_ct_without_burned_in_annotation_passes_through_byte_for_byte() {
    // No detector at all: pass-through never needs one, and never decodes.
    let e = engine(profile(""), Vec::new());
    let input = image("CT", None, "1.2.840.10008.1.2.1");
    let out = e.process(&input).unwrap();
    assert_eq!(out.report.pixel, PixelReport::PassThrough);
    assert_eq!(pixels(&out.bytes).0, pixels(&input).0);
    assert_eq!(pixels(&out.bytes).1, None);
}

#[test]
fn burned_in_yes_is_searched_masked_marked_and_reported() {
    let e = engine(profile("[pixel]\npadding = 1\n"), vec![Box::new(Bright)]);
    for syntax in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"] {
        let input = image("CT", Some("YES"), syntax);
        let out = e.process(&input).unwrap();
        let PixelReport::Cleaned {
            reasons,
            detectors,
            frames,
        } = &out.report.pixel
        else {
            panic!("not cleaned: {:?}", out.report.pixel)
        };
        assert!(
            reasons.iter().any(|r| r == "BurnedInAnnotation YES"),
            "{reasons:?}"
        );
        assert_eq!(detectors, &["bright"]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 1);
        assert_eq!(frames[0][0].by, "bright");
        // Found (5,2) 10x4, padded by 1.
        assert_eq!(
            frames[0][0].rect,
            Rect {
                x: 4,
                y: 1,
                width: 12,
                height: 6
            }
        );
        let (before, _, _, _) = pixels(&input);
        let (after, burned, codes, ts) = pixels(&out.bytes);
        assert_eq!(ts, syntax, "native input keeps its syntax");
        assert_eq!(burned.as_deref(), Some("NO"));
        assert!(codes.contains(&"113101".to_string()), "{codes:?}");
        assert!(codes.contains(&"113100".to_string()), "{codes:?}");
        for y in 0..H as usize {
            for x in 0..W as usize {
                let i = y * W as usize + x;
                if inside(x, y, (4, 1, 12, 6)) {
                    assert_eq!(after[i], 7, "({x},{y}) not filled with the background");
                } else {
                    assert_eq!(after[i], before[i], "({x},{y}) changed outside the mask");
                }
            }
        }
    }
}

#[test]
fn a_region_rule_masks_its_rectangles_without_any_detector() {
    let rule = "[pixel]\ndetection = \"never\"\npadding = 0\n[[pixel.region]]\nid = \"acme-banner\"\nmanufacturer = \"acme\"\ncolumns = 40\nrects = [[0, 0, 40, 8]]\n";
    let e = engine(profile(rule), Vec::new());
    let input = image("US", Some("YES"), "1.2.840.10008.1.2.1");
    let out = e.process(&input).unwrap();
    let PixelReport::Cleaned {
        frames, detectors, ..
    } = &out.report.pixel
    else {
        panic!("not cleaned")
    };
    assert!(detectors.is_empty());
    assert_eq!(frames[0].len(), 1);
    assert_eq!(frames[0][0].by, "rule:acme-banner");
    let (before, _, _, _) = pixels(&input);
    let (after, burned, _, _) = pixels(&out.bytes);
    assert_eq!(burned.as_deref(), Some("NO"));
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        if i < 8 * W as usize {
            assert_eq!(*a, 7);
        } else {
            assert_eq!(a, b);
        }
    }
    // Another manufacturer: the rule does not match, detection is off, BurnedInAnnotation
    // is YES: nothing can clean it, so it is refused, not written.
    let mut other = image("US", Some("YES"), "1.2.840.10008.1.2.1");
    let at = other
        .windows(12)
        .position(|w| w == b"ACME Imaging")
        .unwrap();
    other[at..at + 12].copy_from_slice(b"Other Corp  ");
    let err = e.process(&other).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unsupported { reason } if reason.contains("no text detector")),
        "{err}"
    );
}

#[test]
fn usual_detection_without_a_detector_is_refused_not_written() {
    let e = engine(profile(""), Vec::new());
    let err = e
        .process(&image("US", None, "1.2.840.10008.1.2.1"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("detection (usual)") && text.contains("no text detector is available"),
        "{text}"
    );
    assert!(!text.contains("Doe"), "{text}");
}

#[test]
fn a_secondary_capture_is_searched_whatever_its_modality() {
    // A CT workstation's screen save: Secondary Capture with Modality CT. `usual` searches
    // it and says why; with no detector that is a refusal, never a pass-through.
    let e = engine(profile(""), Vec::new());
    let input = image_of_class(
        "1.2.840.10008.5.1.4.1.1.7",
        "CT",
        None,
        "1.2.840.10008.1.2.1",
    );
    let text = e.process(&input).unwrap_err().to_string();
    assert!(
        text.contains("detection (usual): Secondary Capture SOP class"),
        "{text}"
    );
    let e = engine(profile(""), vec![Box::new(Bright)]);
    let out = e.process(&input).unwrap();
    assert!(
        matches!(&out.report.pixel, PixelReport::Cleaned { reasons, .. }
            if reasons == &["detection (usual): Secondary Capture SOP class"]),
        "{:?}",
        out.report.pixel
    );
}

#[test]
fn a_dry_run_reports_the_clean_too() {
    let e = engine(profile(""), vec![Box::new(Bright)]);
    let report = e.plan(&image("US", None, "1.2.840.10008.1.2.1")).unwrap();
    assert!(matches!(report.pixel, PixelReport::Cleaned { .. }));
}

#[test]
fn a_clean_takes_its_working_memory_from_the_budget_and_gives_it_back() {
    use dicom_deid_engine::memory::MemoryBudget;
    let rule = "[pixel]\ndetection = \"never\"\npadding = 0\n[[pixel.region]]\nid = \"acme-banner\"\nmodality = \"US\"\nmanufacturer = \"acme\"\nrects = [[0, 0, 40, 8]]\n";
    let input = image("US", Some("YES"), "1.2.840.10008.1.2.1");
    // One 40×30 8-bit frame (1200 bytes): twice the decoded frames plus four frames of
    // codec room, no detection network.
    let needed = 2 * 1200 + 4 * 1200;

    let budget = Arc::new(MemoryBudget::new(needed - 1));
    let e = engine(profile(rule), Vec::new()).with_memory_budget(budget.clone());
    let err = e.process(&input).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unsupported { reason }
            if reason.contains("working memory") && reason.contains(&needed.to_string())),
        "{err}"
    );
    assert_eq!(budget.in_use(), 0);

    let budget = Arc::new(MemoryBudget::new(needed));
    let e = engine(profile(rule), Vec::new()).with_memory_budget(budget.clone());
    let mut out = Vec::new();
    let (report, held) = e.process_held(&input, &mut out).unwrap();
    assert!(matches!(report.pixel, PixelReport::Cleaned { .. }));
    assert_eq!(held.bytes(), needed);
    assert_eq!(budget.in_use(), needed);
    drop(held);
    assert_eq!(budget.in_use(), 0);

    // Pass-through takes nothing.
    let ct = image("CT", None, "1.2.840.10008.1.2.1");
    let (_, held) = e.process_held(&ct, &mut out).unwrap();
    assert_eq!(held.bytes(), 0);
}

#[test]
fn a_deflated_data_set_takes_twice_its_inflated_size() {
    use dicom_deid_engine::memory::MemoryBudget;
    let Some(corpus) = dicom_deid_wire::testing::shared_corpus() else {
        return;
    };
    let input = std::fs::read(corpus.join("dcm4che/report_dfl")).unwrap();
    let l = Limits::default();
    let inflated = read_file(&input, &l).unwrap().inflate(&l).unwrap().len() as u64;
    assert!(inflated > input.len() as u64);

    let budget = Arc::new(MemoryBudget::new(2 * inflated - 1));
    let e = Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([5; 32]))
        .with_memory_budget(budget.clone());
    let err = e.process(&input).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unsupported { reason } if reason.contains("inflated")),
        "{err}"
    );

    let budget = Arc::new(MemoryBudget::new(2 * inflated));
    let e = Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([5; 32]))
        .with_memory_budget(budget.clone());
    let mut out = Vec::new();
    let (_, held) = e.process_held(&input, &mut out).unwrap();
    assert_eq!(held.bytes(), 2 * inflated);
    drop(held);
    assert_eq!(budget.in_use(), 0);
}
