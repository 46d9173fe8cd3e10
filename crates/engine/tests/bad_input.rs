//! Hostile and broken input through the whole engine: clear rejections, no panic,
//! and memory bounded by the bytes actually present, never by a length field.

use dicom_deid_engine::{Engine, Key, Profile, Rejection};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn engine() -> Engine {
    Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([3; 32]))
}

#[test]
fn empty_and_non_dicom_input_is_not_dicom() {
    let e = engine();
    for input in [&b""[..], b"GIF89a....", b"%PDF-1.7\n", &[0u8; 4096][..]] {
        assert_eq!(e.process(input).unwrap_err(), Rejection::NotDicom);
    }
}

#[test]
fn every_truncation_is_rejected_cleanly() {
    let e = engine();
    let good = dicom_deid_wire::testing::minimal_file();
    assert!(e.process(&good).is_ok());
    for cut in 0..good.len() {
        match e.process(&good[..cut]) {
            Ok(out) => {
                // A cut exactly between elements is a shorter but valid data set;
                // the output must still be a verified, de-identified file.
                assert!(
                    out.report.new_sop_instance_uid.starts_with("2.25."),
                    "cut {cut}"
                );
            }
            Err(r) => {
                let text = r.to_string();
                assert!(
                    !text.contains("Doe") && !text.contains("PID-0001"),
                    "cut {cut}: a value in the error: {text}"
                );
            }
        }
    }
}

#[test]
fn absurd_lengths_allocate_nothing_near_what_they_claim() {
    let e = engine();
    let good = dicom_deid_wire::testing::minimal_file();
    // Replace the 8-byte pixel data element by one that claims 4 GiB - 16.
    let mut absurd = good[..good.len() - 20].to_vec();
    absurd.extend_from_slice(&[
        0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
    ]);
    let region = Region::new(GLOBAL);
    let err = e.process(&absurd).unwrap_err();
    let stats = region.change();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(
        stats.bytes_allocated < 1 << 20,
        "allocated {} bytes for a {}-byte input",
        stats.bytes_allocated,
        absurd.len()
    );
}

#[test]
fn nesting_thousands_deep_is_rejected_without_overflow() {
    let e = engine();
    let good = dicom_deid_wire::testing::minimal_file();
    let mut deep = good.clone();
    for _ in 0..5_000 {
        deep.extend_from_slice(&[
            0x09, 0x00, 0x10, 0x10, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    let err = e.process(&deep).unwrap_err();
    assert!(err.to_string().contains("deeper than 64"), "{err}");
}

fn file_with(extra: Vec<dicom_deid_wire::Element<'static>>, drop_tag: Option<u32>) -> Vec<u8> {
    use dicom_deid_wire::{read_file, write_file, FileMetaOut, Limits};
    let good = dicom_deid_wire::testing::minimal_file();
    let raw = read_file(&good, &Limits::default()).unwrap();
    let mut ds = raw.parse(&Limits::default()).unwrap();
    for e in extra {
        ds.put(e);
    }
    if let Some(tag) = drop_tag {
        ds.remove(tag);
    }
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, raw.syntax).unwrap();
    out
}

#[test]
fn refuses_what_it_cannot_fully_deidentify() {
    use dicom_deid_wire::{testing::text, Vr};
    let e = engine();
    // Burned-in text in pixels the stage cannot decode (no BitsAllocated): refused
    // with the pixel reason, never written unmasked.
    let burned = file_with(vec![text(0x0028_0301, Vr::CS, "YES")], None);
    let err = e.process(&burned).unwrap_err().to_string();
    assert!(
        err.contains("the pixels need a clean (BurnedInAnnotation YES")
            && err.contains("BitsAllocated (0028,0100)"),
        "{err}"
    );
    // NO is fine.
    assert!(e
        .process(&file_with(vec![text(0x0028_0301, Vr::CS, "NO")], None))
        .is_ok());
    let dicomdir = file_with(
        vec![text(0x0008_0016, Vr::UI, "1.2.840.10008.1.3.10")],
        None,
    );
    assert!(e
        .process(&dicomdir)
        .unwrap_err()
        .to_string()
        .contains("DICOMDIR"));
    let no_instance = file_with(vec![], Some(0x0008_0018));
    assert!(e
        .process(&no_instance)
        .unwrap_err()
        .to_string()
        .contains("SOP Instance UID (0008,0018)"));
}
