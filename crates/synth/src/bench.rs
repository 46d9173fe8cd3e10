//! Benchmark instances: CT-like images with a realistic (entirely invented) PHI header.

use std::borrow::Cow;

use dicom_deid_wire::{write_file, DataSet, Element, FileMetaOut, Syntax, Value, Vr};

use crate::rng::SplitMix64;

/// Instances per study (and per series) in a benchmark set.
pub const INSTANCES_PER_STUDY: usize = 200;

/// The size of a benchmark instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 512 × 512 pixels, 16 bits allocated (≈ 512 KiB).
    Ct,
    /// 64 × 64 pixels, 16 bits allocated (≈ 8 KiB).
    Small,
}

impl Kind {
    /// Rows and columns.
    pub fn size(self) -> u16 {
        match self {
            Kind::Ct => 512,
            Kind::Small => 64,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Kind::Ct => "ct",
            Kind::Small => "small",
        }
    }
}

const FAMILY: [&str; 12] = [
    "HARTMANN",
    "OKONKWO",
    "LINDQVIST",
    "MORENO",
    "TANAKA",
    "OYELARAN",
    "FITZGERALD",
    "NOVAK",
    "DELACROIX",
    "SANTOS",
    "KOWALCZYK",
    "ABERNATHY",
];
const GIVEN: [&str; 12] = [
    "ELEANOR",
    "TOBIAS",
    "MARGUERITE",
    "IDRIS",
    "KEIKO",
    "RAFAEL",
    "GRETA",
    "AMARA",
    "SILAS",
    "BEATRIZ",
    "JONAS",
    "PRIYA",
];
const INSTITUTIONS: [&str; 4] = [
    "ST. BARTHOLOMEW GENERAL HOSPITAL",
    "RIVERSIDE UNIVERSITY MEDICAL CENTER",
    "NORTHGATE IMAGING CLINIC",
    "LAKESHORE CHILDREN'S HOSPITAL",
];
const STREETS: [&str; 4] = [
    "12 Harbour Road",
    "400 Elm Street",
    "7 Kingsway",
    "88 Lakeshore Drive",
];
const CITIES: [&str; 4] = ["Springfield", "Eastbridge", "Northgate", "Port Alder"];

/// Where the benchmark writer puts instance `i`: `study-NNNN/KIND-NNNNNN.dcm`.
pub fn bench_path(kind: Kind, i: usize) -> String {
    format!(
        "study-{:04}/{}-{i:06}.dcm",
        i / INSTANCES_PER_STUDY,
        kind.tag()
    )
}

/// Benchmark instance number `i`: explicit VR little endian CT Image Storage, 16-bit
/// pixels, a header with names, IDs, dates, institution, physicians, accession number,
/// Referenced Study and Request Attributes Sequences and a 20-element private block.
/// Instances `200·k … 200·k+199` share patient, study, series and frame of reference.
pub fn bench_instance(kind: Kind, i: usize) -> Vec<u8> {
    let study = i / INSTANCES_PER_STUDY;
    let number = i % INSTANCES_PER_STUDY + 1;
    // Per study: the same patient and header; per instance: position and pixels.
    let mut r = SplitMix64::new(0x5EED_0000 ^ study as u64);
    let family = *r.pick(&FAMILY);
    let given = *r.pick(&GIVEN);
    let middle = *r.pick(&GIVEN);
    let institution_i = r.below(INSTITUTIONS.len() as u64) as usize;
    let birth_year = 1930 + r.below(80);
    let birth = format!("{birth_year}{:02}{:02}", 1 + r.below(12), 1 + r.below(28));
    let study_date = format!(
        "{}{:02}{:02}",
        2015 + r.below(10),
        1 + r.below(12),
        1 + r.below(28)
    );
    let age = 2020 - birth_year.min(2019);
    let patient_id = format!("{:08}", r.below(100_000_000));
    let accession = format!("ACC{:09}", r.below(1_000_000_000));
    let referring = format!("{}^{}^^DR", r.pick(&FAMILY), r.pick(&GIVEN));
    let performing = format!("{}^{}", r.pick(&FAMILY), r.pick(&GIVEN));
    let operator = format!("{}^{}", r.pick(&FAMILY), r.pick(&GIVEN));
    let root = format!("1.2.826.0.1.3680043.10.998.{}", study + 1);
    let study_uid = format!("{root}.1");
    let series_uid = format!("{root}.1.1");
    let instance_uid = format!("{root}.1.1.{number}");
    let frame_uid = format!("{root}.2");
    let hour = 8 + r.below(9);
    let study_time = format!("{hour:02}{:02}{:02}", r.below(60), r.below(60));
    let acq_time = format!(
        "{hour:02}{:02}{:02}.{:06}",
        (number / 60) % 60,
        number % 60,
        number * 1000
    );
    let slice = -300.0 + number as f64 * 1.25;

    let t = Element::text;
    let mut ds = DataSet::default();
    for e in [
        t(0x0008_0005, Vr::CS, "ISO_IR 100"),
        t(0x0008_0008, Vr::CS, "ORIGINAL\\PRIMARY\\AXIAL"),
        t(0x0008_0012, Vr::DA, &study_date),
        t(0x0008_0013, Vr::TM, &study_time),
        t(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        t(0x0008_0018, Vr::UI, &instance_uid),
        t(0x0008_0020, Vr::DA, &study_date),
        t(0x0008_0021, Vr::DA, &study_date),
        t(0x0008_0022, Vr::DA, &study_date),
        t(0x0008_0023, Vr::DA, &study_date),
        t(0x0008_0030, Vr::TM, &study_time),
        t(0x0008_0031, Vr::TM, &study_time),
        t(0x0008_0032, Vr::TM, &acq_time),
        t(0x0008_0033, Vr::TM, &acq_time),
        t(0x0008_0050, Vr::SH, &accession),
        t(0x0008_0060, Vr::CS, "CT"),
        t(0x0008_0070, Vr::LO, "SYNTHETIC MEDICAL SYSTEMS"),
        t(0x0008_0080, Vr::LO, INSTITUTIONS[institution_i]),
        t(
            0x0008_0081,
            Vr::ST,
            &format!("{}, {}", STREETS[institution_i], CITIES[institution_i]),
        ),
        t(0x0008_0090, Vr::PN, &referring),
        t(
            0x0008_0092,
            Vr::ST,
            &format!(
                "{}, {}",
                STREETS[(institution_i + 1) % 4],
                CITIES[(institution_i + 2) % 4]
            ),
        ),
        t(0x0008_0094, Vr::SH, &format!("555-01{:02}", r.below(100))),
        t(
            0x0008_1010,
            Vr::SH,
            &format!("CTSTATION{}", institution_i + 1),
        ),
        t(
            0x0008_1030,
            Vr::LO,
            &format!("CT CHEST ABDOMEN PELVIS {family}"),
        ),
        t(0x0008_103E, Vr::LO, "AXIAL 1.25MM STANDARD"),
        t(0x0008_1040, Vr::LO, "RADIOLOGY"),
        t(0x0008_1050, Vr::PN, &performing),
        t(0x0008_1070, Vr::PN, &operator),
        t(0x0008_1090, Vr::LO, "SYNTHSCAN 64"),
        t(0x0010_0010, Vr::PN, &format!("{family}^{given}^{middle}")),
        t(0x0010_0020, Vr::LO, &patient_id),
        t(0x0010_0021, Vr::LO, "HOSPITAL MRN"),
        t(0x0010_0030, Vr::DA, &birth),
        t(0x0010_0040, Vr::CS, if study % 2 == 0 { "F" } else { "M" }),
        t(0x0010_1000, Vr::LO, &format!("OLD{patient_id}")),
        t(0x0010_1001, Vr::PN, &format!("{family}^{given}")),
        t(0x0010_1010, Vr::AS, &format!("{:03}Y", age.min(999))),
        t(0x0010_1020, Vr::DS, "1.72"),
        t(0x0010_1030, Vr::DS, "81.5"),
        t(
            0x0010_1040,
            Vr::LO,
            &format!(
                "{}, {}",
                STREETS[(institution_i + 3) % 4],
                CITIES[institution_i]
            ),
        ),
        t(0x0010_2154, Vr::SH, &format!("555-02{:02}", r.below(100))),
        t(
            0x0010_4000,
            Vr::LT,
            &format!("Patient {given} {family} referred after fall on {study_date}."),
        ),
        t(0x0018_0015, Vr::CS, "CHEST"),
        t(0x0018_0050, Vr::DS, "1.25"),
        t(0x0018_0060, Vr::DS, "120"),
        t(0x0018_1000, Vr::LO, &format!("SN{:06}", r.below(1_000_000))),
        t(0x0018_1020, Vr::LO, "SYNTH 4.2.1"),
        t(0x0018_1030, Vr::LO, "CAP ROUTINE"),
        t(0x0018_5100, Vr::CS, "HFS"),
        t(0x0020_000D, Vr::UI, &study_uid),
        t(0x0020_000E, Vr::UI, &series_uid),
        t(0x0020_0010, Vr::SH, &format!("{}", 1000 + study)),
        t(0x0020_0011, Vr::IS, "1"),
        t(0x0020_0013, Vr::IS, &number.to_string()),
        t(0x0020_0032, Vr::DS, &format!("-250\\-250\\{slice:.2}")),
        t(0x0020_0037, Vr::DS, "1\\0\\0\\0\\1\\0"),
        t(0x0020_0052, Vr::UI, &frame_uid),
        t(0x0020_1041, Vr::DS, &format!("{slice:.2}")),
        t(0x0028_0004, Vr::CS, "MONOCHROME2"),
        t(0x0028_0030, Vr::DS, "0.7\\0.7"),
        t(0x0028_1050, Vr::DS, "40"),
        t(0x0028_1051, Vr::DS, "400"),
        t(0x0028_1052, Vr::DS, "-1024"),
        t(0x0028_1053, Vr::DS, "1"),
        t(0x0032_1060, Vr::LO, "CT CHEST ABDOMEN PELVIS W CONTRAST"),
    ] {
        ds.put(e);
    }
    let us = |tag, v: u16| Element::new(tag, Vr::US, v.to_le_bytes().to_vec());
    for e in [
        us(0x0028_0002, 1),
        us(0x0028_0010, kind.size()),
        us(0x0028_0011, kind.size()),
        us(0x0028_0100, 16),
        us(0x0028_0101, 12),
        us(0x0028_0102, 11),
        us(0x0028_0103, 0),
    ] {
        ds.put(e);
    }
    ds.put(sequence(
        0x0008_1110,
        vec![vec![
            t(0x0008_1150, Vr::UI, "1.2.840.10008.3.1.2.3.1"),
            t(0x0008_1155, Vr::UI, &format!("{root}.3")),
        ]],
    ));
    ds.put(sequence(
        0x0040_0275,
        vec![vec![
            t(0x0008_0050, Vr::SH, &accession),
            t(0x0032_1060, Vr::LO, "CT CHEST ABDOMEN PELVIS W CONTRAST"),
            t(0x0040_0007, Vr::LO, &format!("CAP FOR {family}")),
            t(
                0x0040_0009,
                Vr::SH,
                &format!("SPS{:06}", r.below(1_000_000)),
            ),
            t(0x0040_1001, Vr::SH, &format!("RP{:06}", r.below(1_000_000))),
        ]],
    ));
    for e in private_block(&mut r, &patient_id, &study_date) {
        ds.put(e);
    }
    ds.put(Element::new(0x7FE0_0010, Vr::OW, pixels(kind, i)));

    let meta = FileMetaOut::for_dataset(
        &ds,
        "1.2.840.10008.1.2.1",
        "1.2.826.0.1.3680043.10.999.1",
        "DEID_SYNTH",
    );
    let mut out = Vec::with_capacity(usize::from(kind.size()).pow(2) * 2 + 8192);
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).expect("synthetic data sets encode");
    out
}

fn sequence(tag: u32, items: Vec<Vec<Element<'static>>>) -> Element<'static> {
    let items = items
        .into_iter()
        .map(|elements| {
            let mut ds = DataSet { elements };
            ds.sort();
            ds
        })
        .collect();
    Element {
        tag,
        vr: Vr::SQ,
        value: Value::Seq(items),
    }
}

/// Group 0019, creator "SYNTH SCANNER PRIVATE": 20 elements of mixed VRs, some holding PHI.
fn private_block(r: &mut SplitMix64, patient_id: &str, date: &str) -> Vec<Element<'static>> {
    let mut v = vec![Element::text(0x0019_0010, Vr::LO, "SYNTH SCANNER PRIVATE")];
    let t = |e: u32, vr, s: &str| Element::text(0x0019_1000 | e, vr, s);
    let n = |e: u32, vr, b: Vec<u8>| Element::new(0x0019_1000 | e, vr, b);
    v.extend([
        t(0x00, Vr::LO, "SCAN PROTOCOL V7"),
        t(0x01, Vr::LO, patient_id),
        t(0x02, Vr::DA, date),
        t(0x03, Vr::SH, "RECON-B30F"),
        t(
            0x04,
            Vr::DS,
            &format!("{:.3}", r.below(100_000) as f64 / 1000.0),
        ),
        t(0x05, Vr::IS, &r.below(10_000).to_string()),
        t(0x06, Vr::CS, "HELICAL"),
        t(0x07, Vr::LT, "Technologist note: patient cooperative"),
        n(0x08, Vr::US, 7u16.to_le_bytes().to_vec()),
        n(
            0x09,
            Vr::UL,
            (r.below(u32::MAX as u64) as u32).to_le_bytes().to_vec(),
        ),
        n(0x0A, Vr::FL, 0.5f32.to_le_bytes().to_vec()),
        n(0x0B, Vr::FD, 1.25f64.to_le_bytes().to_vec()),
        t(
            0x0C,
            Vr::UI,
            &format!("1.2.826.0.1.3680043.10.998.0.{}", r.below(1_000_000)),
        ),
        t(0x0D, Vr::TM, "101500"),
        t(0x0E, Vr::SH, "DOSE-MOD"),
        n(0x0F, Vr::OB, (0..64u8).collect()),
        t(0x10, Vr::LO, "KERNEL B30F"),
        n(0x11, Vr::SS, (-5i16).to_le_bytes().to_vec()),
        t(0x12, Vr::DS, "0.984"),
        t(0x13, Vr::LO, "GANTRY TILT 0"),
    ]);
    v
}

/// Deterministic smooth-ish 12-bit pixels: a disc on a gradient, varying with `i`.
fn pixels(kind: Kind, i: usize) -> Cow<'static, [u8]> {
    let n = usize::from(kind.size());
    let mut out = Vec::with_capacity(n * n * 2);
    let c = n as i64 / 2;
    let radius2 = (n as i64 * 3 / 8).pow(2);
    let mut r = SplitMix64::new(i as u64);
    let mut noise = r.next_u64();
    for y in 0..n as i64 {
        for x in 0..n as i64 {
            noise = noise.rotate_left(5) ^ 0x9E37_79B9;
            let d2 = (x - c).pow(2) + (y - c).pow(2);
            let base = if d2 < radius2 {
                1000 + (i as i64 % 50) * 4
            } else {
                24 + (x + y) / 8
            };
            let v = (base + (noise & 0x1F) as i64).clamp(0, 4095) as u16;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Cow::Owned(out)
}
