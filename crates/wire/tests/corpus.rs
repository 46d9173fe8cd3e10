//! Every file of the shared corpus either parses and round-trips (write, re-read,
//! same tree; dicom-rs reads our output) or fails with an error, never a panic.

use std::path::PathBuf;

use dicom_deid_wire::{parse_dataset, read_file, write_file, FileMetaOut, Limits, Syntax};

fn corpus() -> Option<PathBuf> {
    dicom_deid_wire::testing::shared_corpus()
}

#[test]
fn corpus_round_trips() {
    let Some(dir) = corpus() else { return };
    let limits = Limits::default();
    let (mut ok, mut failed, mut unreadable) = (0, Vec::new(), Vec::new());
    for path in dicom_deid_wire::testing::corpus_files(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        let rel = path.strip_prefix(&dir).unwrap().display().to_string();
        let raw = match read_file(&bytes, &limits) {
            Ok(raw) => raw,
            Err(e) => {
                failed.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let inflated;
        let (body, syntax) = if raw.syntax.deflated {
            inflated = raw.inflate(&limits).unwrap();
            (&inflated[..], Syntax::EXPLICIT_LE)
        } else {
            (raw.body, raw.syntax)
        };
        let ds = match parse_dataset(body, syntax, &limits) {
            Ok(ds) => ds,
            Err(e) => {
                failed.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let ts = if raw.syntax.deflated {
            Syntax::EXPLICIT_LE.native_uid().to_string()
        } else {
            raw.transfer_syntax_uid.clone()
        };
        let meta = FileMetaOut::for_dataset(&ds, &ts, "1.2.3", "TEST");
        let mut out = Vec::new();
        if let Err(e) = write_file(&mut out, &meta, &ds, syntax) {
            failed.push(format!("{rel}: write: {e}"));
            continue;
        }
        let again = read_file(&out, &limits)
            .unwrap_or_else(|e| panic!("{rel}: our output does not re-read: {e}"));
        let ds2 = again
            .parse(&limits)
            .unwrap_or_else(|e| panic!("{rel}: our output does not re-parse: {e}"));
        assert_eq!(
            ds2.elements.len(),
            ds.elements.len(),
            "{rel}: element count changed"
        );
        for (a, b) in ds.elements.iter().zip(&ds2.elements) {
            assert_eq!(a.tag, b.tag, "{rel}");
            if let (Some(x), Some(y)) = (a.bytes(), b.bytes()) {
                // Odd values are padded by one byte; everything else is identical.
                assert_eq!(&y[..x.len()], x, "{rel}: value of {:08X} changed", a.tag);
            }
        }
        // Our output must be readable by dicom-rs wherever the input was.
        // (An invalid SOP Instance UID, as in bad_sequence.dcm, is refused by
        // dicom-rs in the meta; after de-identification the UID is a new one.)
        let valid_uid = ds
            .str(0x0008_0018)
            .is_some_and(|u| u.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        if valid_uid && dicom_object::open_file(&path).is_ok() {
            if let Err(e) = dicom_object::from_reader(&out[128..]) {
                unreadable.push(format!("{rel}: {e}"));
            }
        }
        ok += 1;
    }
    eprintln!(
        "{ok} corpus files round-tripped; {} rejected:",
        failed.len()
    );
    for f in &failed {
        eprintln!("  {f}");
    }
    assert!(ok >= 330, "only {ok} corpus files parsed");
    assert!(
        unreadable.is_empty(),
        "dicom-rs reads the input but not our output:\n{}",
        unreadable.join("\n")
    );
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let limits = Limits::default();
    let good = dicom_deid_wire::testing::minimal_file();
    // Every truncation of a valid file: an error or a shorter data set, no panic.
    for cut in 0..good.len() {
        if let Ok(raw) = read_file(&good[..cut], &limits) {
            let _ = raw.parse(&limits);
        }
    }
    assert!(matches!(
        read_file(b"", &limits),
        Err(dicom_deid_wire::Error::NotDicom)
    ));
    assert!(matches!(
        read_file(b"hello, this is not a DICOM file at all", &limits),
        Err(dicom_deid_wire::Error::NotDicom)
    ));
    // An absurd length: 0xFFFFFFF0 bytes claimed, a few present.
    let mut absurd = good[..good.len() - 20].to_vec();
    absurd.extend_from_slice(&[
        0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
    ]);
    let raw = read_file(&absurd, &limits).unwrap();
    let err = raw.parse(&limits).unwrap_err().to_string();
    assert!(
        err.contains("truncated") && err.contains("(7FE0,0010)"),
        "{err}"
    );
    // Nesting 10 000 deep: rejected at the limit, no stack overflow.
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend_from_slice(&[
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    let err = parse_dataset(&deep, Syntax::EXPLICIT_LE, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("deeper than 64"), "{err}");
}
