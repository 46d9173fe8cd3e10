//! The generator's own checks: its output is valid Part 10 that dicom-rs reads, every row
//! of Table E.1-1 is planted, and every marker sits where its record says.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{find, parse, unpadded};
use dicom_deid_profile::{TagPattern, TABLE_E1_1};
use dicom_deid_synth::{
    bench_instance, conformance, conformance_set, row_of, Kind, PrivateKind, FILE_CT1, FILE_SR,
};
use dicom_deid_wire::{Value, Vr};

fn dicom_object_reads(bytes: &[u8]) -> dicom_object::DefaultDicomObject {
    dicom_object::OpenFileOptions::new()
        .from_reader(&bytes[128..])
        .expect("dicom-object reads the file")
}

#[test]
fn every_row_of_the_table_is_planted() {
    let set = conformance(0);
    assert_eq!(TABLE_E1_1.len(), 657);
    let rows: BTreeSet<usize> = set.markers.iter().map(|m| m.row).collect();
    let missing: Vec<String> = (0..TABLE_E1_1.len())
        .filter(|r| !rows.contains(r))
        .map(|r| format!("{} {}", TABLE_E1_1[r].pattern, TABLE_E1_1[r].name))
        .collect();
    assert!(missing.is_empty(), "rows without a marker: {missing:?}");
    // Each row at the top level of ct1.
    let top: BTreeSet<usize> = set
        .markers
        .iter()
        .filter(|m| m.file == FILE_CT1 && m.path.is_empty())
        .map(|m| m.row)
        .collect();
    assert_eq!(top.len(), 657);
}

#[test]
fn markers_sit_where_recorded_with_their_bytes() {
    let set = conformance(0);
    let files: HashMap<&str, &[u8]> = set
        .files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let parsed: HashMap<&str, _> = files.iter().map(|(n, b)| (*n, parse(b))).collect();
    for m in &set.markers {
        if m.tag == 0x0002_0003 {
            let obj = dicom_object_reads(files[m.file]);
            assert_eq!(
                obj.meta().media_storage_sop_instance_uid().as_bytes(),
                &m.marker_bytes[..]
            );
            continue;
        }
        let e = find(&parsed[m.file], m)
            .unwrap_or_else(|| panic!("{} {} not found", m.file, m.path_string()));
        assert_eq!(e.vr, m.vr, "{}", m.path_string());
        match &e.value {
            Value::Bytes(b) => assert_eq!(
                unpadded(b),
                unpadded(&m.marker_bytes),
                "{}",
                m.path_string()
            ),
            Value::Seq(items) => assert!(!items.is_empty(), "{}", m.path_string()),
            Value::Fragments(_) => panic!("no fragments planted"),
        }
        assert_eq!(row_of(m.tag), Some(m.row), "{}", m.path_string());
    }
}

#[test]
fn marker_values_are_unique_and_fit_their_vr() {
    let set = conformance(0);
    // One value, one meaning: the same bytes only where the same attribute is repeated
    // (shared patient/study values, references to an instance's SOP Instance UID).
    let mut by_value: HashMap<&[u8], BTreeSet<u32>> = HashMap::new();
    for m in set.markers.iter().filter(|m| m.searchable) {
        by_value.entry(&m.marker_bytes).or_default().insert(m.tag);
    }
    for (value, tags) in &by_value {
        let uid_family: BTreeSet<u32> = [0x0008_0018, 0x0002_0003, 0x0008_1155].into();
        assert!(
            tags.len() == 1 || tags.is_subset(&uid_family),
            "{} used for {tags:x?}",
            String::from_utf8_lossy(value)
        );
        // No searchable marker hides inside another.
        for other in by_value.keys() {
            if other != value && other.len() > value.len() {
                assert!(
                    !other.windows(value.len()).any(|w| w == *value),
                    "{:?} inside {:?}",
                    String::from_utf8_lossy(value),
                    String::from_utf8_lossy(other)
                );
            }
        }
    }
    for m in &set.markers {
        let max = match &m.vr.0 {
            b"AE" | b"CS" | b"SH" | b"DS" => 16,
            b"IS" => 12,
            b"LO" | b"UI" => 64,
            b"DA" => 8,
            b"TM" => 14,
            b"DT" => 26,
            _ => usize::MAX,
        };
        assert!(
            m.marker_bytes.len() <= max,
            "{} {:?} too long for {}",
            m.path_string(),
            m.text(),
            m.vr
        );
        if let Some(size) = m.vr.fixed_size() {
            assert_eq!(m.marker_bytes.len() % size, 0, "{}", m.path_string());
        }
    }
}

#[test]
fn structure_covers_nesting_references_and_private_blocks() {
    let set = conformance(0);
    let deepest = set.markers.iter().map(|m| m.path.len()).max().unwrap();
    assert!(deepest >= 3, "sequences nested three deep");
    let three_deep: BTreeSet<u32> = set
        .markers
        .iter()
        .filter(|m| {
            m.file == FILE_SR && m.path.len() == 3 && m.path.iter().all(|s| s.tag == 0x0040_A730)
        })
        .map(|m| m.tag)
        .collect();
    assert_eq!(three_deep, [0x0040_A120, 0x0040_A123, 0x0040_A124].into());
    // Every SQ row's item holds a nested marker.
    for m in set.markers.iter().filter(|m| m.vr == Vr::SQ) {
        let mut inner = m.path.clone();
        inner.push(dicom_deid_synth::PathStep {
            tag: m.tag,
            item: 0,
        });
        assert!(
            set.markers
                .iter()
                .any(|n| n.file == m.file && n.path == inner),
            "{} has no nested marker",
            m.path_string()
        );
    }
    // ct1's SOP Instance UID is referenced from ct2 and the SR.
    let ct1_uid = &set
        .markers
        .iter()
        .find(|m| m.file == FILE_CT1 && m.tag == 0x0008_0018)
        .unwrap()
        .marker_bytes;
    let refs: BTreeSet<&str> = set
        .markers
        .iter()
        .filter(|m| m.tag == 0x0008_1155 && &m.marker_bytes == ct1_uid)
        .map(|m| m.file)
        .collect();
    assert_eq!(refs, ["ct2.dcm", "sr.dcm"].into());
    let kinds: Vec<PrivateKind> = set.markers.iter().filter_map(|m| m.private).collect();
    for k in [
        PrivateKind::Safe,
        PrivateKind::Unsafe,
        PrivateKind::Creator { safe: true },
        PrivateKind::Creator { safe: false },
    ] {
        assert!(kinds.contains(&k), "{k:?}");
    }
    assert!(
        set.markers
            .iter()
            .any(|m| m.private.is_some() && m.vr == Vr::SQ),
        "a private sequence"
    );
    for pattern in ["50xx,xxxx", "60xx,3000", "60xx,4000", "gggg,eeee"] {
        let p: TagPattern = pattern.parse().unwrap();
        let row = TABLE_E1_1.iter().position(|r| r.pattern == p).unwrap();
        assert!(
            set.markers.iter().filter(|m| m.row == row).count() >= 1,
            "{pattern}"
        );
    }
}

#[test]
fn files_read_with_dicom_object_and_are_deterministic() {
    let a = conformance_set(0);
    assert_eq!(a, conformance_set(0));
    assert_ne!(a, conformance_set(1));
    for (name, bytes) in &a {
        let obj = dicom_object_reads(bytes);
        let sop = obj
            .element(dicom_core::Tag(0x0008, 0x0018))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            sop.to_str().unwrap().trim_end_matches('\0'),
            obj.meta().media_storage_sop_instance_uid(),
            "{name}"
        );
    }
}

#[test]
fn bench_instances_are_valid_and_grouped_by_study() {
    for (kind, size) in [(Kind::Small, 64usize), (Kind::Ct, 512)] {
        let first = bench_instance(kind, 0);
        assert_eq!(first, bench_instance(kind, 0));
        let ds = parse(&first);
        let pixels = ds.get(0x7FE0_0010).and_then(|e| e.bytes()).unwrap();
        assert_eq!(pixels.len(), size * size * 2);
        let obj = dicom_object_reads(&first);
        let name = obj
            .element_by_name("PatientName")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(name.contains('^'), "{name}");
        let same = parse(&bench_instance(kind, 199))
            .str(0x0020_000D)
            .map(str::to_string);
        let next = parse(&bench_instance(kind, 200))
            .str(0x0020_000D)
            .map(str::to_string);
        assert_eq!(ds.str(0x0020_000D).map(str::to_string), same);
        assert_ne!(same, next);
        assert!(ds.get(0x0019_1013).is_some(), "a 20-element private block");
        assert!(matches!(
            ds.get(0x0040_0275).map(|e| &e.value),
            Some(Value::Seq(_))
        ));
    }
}
