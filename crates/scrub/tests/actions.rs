//! Each action, VR dummy, key rule and marker of the scrub stage, on small data
//! sets built in the test.

use dicom_deid_profile::{Action, Profile};
use dicom_deid_scrub::key::Key;
use dicom_deid_scrub::{dummy, verify, Scrubber};
use dicom_deid_wire::testing::{dataset, seq, text};
use dicom_deid_wire::{encode_dataset, parse_dataset, DataSet, Element, Limits, Syntax, Value, Vr};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: [u8; 32] = [7; 32];

fn profile(extra: &str) -> Profile {
    Profile::from_toml(
        &format!("name = \"t\"\ndescription = \"test\"\nversion = \"1\"\n{extra}"),
        "test.toml",
    )
    .unwrap()
}

fn patient() -> Vec<Element<'static>> {
    vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7.8"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0010_0020, Vr::LO, "PID-0001"),
        text(0x0010_0030, Vr::DA, "19731121"),
        text(0x0020_000D, Vr::UI, "1.2.3.4.5"),
    ]
}

fn scrub(ds: &mut DataSet<'_>, p: &Profile) -> dicom_deid_scrub::Outcome {
    Scrubber::new(p, &Key::from_bytes(KEY)).scrub(ds)
}

fn bytes<'a>(ds: &'a DataSet<'_>, tag: u32) -> &'a [u8] {
    ds.get(tag)
        .and_then(|e| e.bytes())
        .unwrap_or_else(|| panic!("{tag:08X} missing"))
}

fn expected_uid(original: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&KEY).unwrap();
    m.update(original.as_bytes());
    let mac = m.finalize().into_bytes();
    format!(
        "2.25.{}",
        u128::from_be_bytes(mac[..16].try_into().unwrap())
    )
}

#[test]
fn remove_drops_the_element_at_every_depth() {
    // Image Comments (0020,4000) is X; nested inside a kept sequence too.
    let nested = dataset(vec![
        text(0x0020_4000, Vr::LT, "comment"),
        text(0x0008_1155, Vr::UI, "1.2.3.9"),
    ]);
    let mut ds = dataset(
        [
            patient(),
            vec![
                text(0x0020_4000, Vr::LT, "comment"),
                seq(0x0008_1140, vec![nested]),
            ],
        ]
        .concat(),
    );
    let out = scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert!(ds.get(0x0020_4000).is_none());
    let Value::Seq(items) = &ds.get(0x0008_1140).unwrap().value else {
        panic!("sequence kept (X/Z/U*)")
    };
    assert!(items[0].get(0x0020_4000).is_none(), "nested X removed");
    assert_eq!(
        items[0].str(0x0008_1155).unwrap(),
        expected_uid("1.2.3.9"),
        "nested reference remapped"
    );
    assert!(out
        .changes
        .iter()
        .any(|c| c.path == "(0008,1140)/(0020,4000)" && c.action == Action::Remove));
}

#[test]
fn empty_gives_zero_length_and_zero_items() {
    // Accession Number (0008,0050) is Z; Referring Physician's Name Z.
    let mut ds = dataset(
        [
            patient(),
            vec![
                text(0x0008_0050, Vr::SH, "ACC123"),
                text(0x0008_0090, Vr::PN, "Who^Doctor"),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert_eq!(bytes(&ds, 0x0008_0050), b"");
    assert_eq!(bytes(&ds, 0x0008_0090), b"");
    // Z on a sequence: Specimen Preparation Sequence (0040,0610) has zero items.
    let mut ds = dataset(
        [
            patient(),
            vec![seq(
                0x0040_0610,
                vec![dataset(vec![text(0x0040_0600, Vr::LO, "x")])],
            )],
        ]
        .concat(),
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert_eq!(ds.get(0x0040_0610).unwrap().value, Value::Seq(vec![]));
}

#[test]
fn patient_name_and_id_get_keyed_pseudonyms() {
    let p = Profile::builtin("basic").unwrap();
    let mut a = dataset(patient());
    let mut b = dataset(patient());
    b.put(text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7.9"));
    scrub(&mut a, &p);
    scrub(&mut b, &p);
    let (name, id) = (
        a.str(0x0010_0010).unwrap().to_string(),
        a.str(0x0010_0020).unwrap().to_string(),
    );
    assert!(
        name.starts_with("DEID^") && id.starts_with("DEID-"),
        "{name} {id}"
    );
    assert_eq!(name[5..], id[5..], "name and ID share the patient code");
    assert_eq!(
        (b.str(0x0010_0010).unwrap(), b.str(0x0010_0020).unwrap()),
        (name.as_str(), id.as_str()),
        "same patient, same pseudonym"
    );
    // Another patient, another pseudonym; another key, another pseudonym.
    let mut c = dataset(patient());
    c.put(text(0x0010_0020, Vr::LO, "PID-0002"));
    scrub(&mut c, &p);
    assert_ne!(c.str(0x0010_0020).unwrap(), id);
    let mut d = dataset(patient());
    Scrubber::new(&p, &Key::from_bytes([8; 32])).scrub(&mut d);
    assert_ne!(d.str(0x0010_0020).unwrap(), id);
}

#[test]
fn dummy_is_valid_for_every_vr() {
    for &vr in Vr::ALL {
        if vr == Vr::SQ {
            continue;
        }
        let Value::Bytes(b) = dummy(vr) else {
            panic!("{vr}")
        };
        assert!(b.len() % 2 == 0, "{vr}: odd length");
        assert!(!b.is_empty(), "{vr}: D must be non-empty");
        if let Some(size) = vr.fixed_size() {
            assert_eq!(b.len(), size, "{vr}: one value of the VR's size");
        }
        let t = std::str::from_utf8(&b)
            .unwrap_or("")
            .trim_end_matches([' ', '\0']);
        if vr == Vr::CS {
            assert!(t
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ' || c == b'_'));
        }
        match vr {
            Vr::AE | Vr::CS | Vr::SH | Vr::AS => {
                assert!(t.len() <= 16 && !t.is_empty(), "{vr}: {t}")
            }
            Vr::DA => assert_eq!(t.len(), 8),
            Vr::DS | Vr::IS => assert!(t.parse::<f64>().is_ok()),
            Vr::UI => assert!(t.bytes().all(|c| c.is_ascii_digit() || c == b'.')),
            _ => {}
        }
    }
    // D on a primitive: Institution Name (0008,0080) is X/Z/D → Dummy.
    let mut ds = dataset(
        [
            patient(),
            vec![text(0x0008_0080, Vr::LO, "General Hospital")],
        ]
        .concat(),
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert_eq!(ds.str(0x0008_0080), Some("ANONYMIZED"));
}

#[test]
fn dummy_sequence_keeps_structure_and_codes_but_no_prose() {
    // Content Sequence (0040,A730) is D: items stay, text is replaced, codes stay.
    let concept = dataset(vec![
        text(0x0008_0100, Vr::SH, "121071"),
        text(0x0008_0102, Vr::SH, "DCM"),
        text(0x0008_0104, Vr::LO, "Finding"),
    ]);
    // An unlisted sequence (kept by the table) nested in the item: its prose is
    // dummied too.
    let nested = dataset(vec![text(0x0040_A160, Vr::UT, "Jane Doe again")]);
    let item = dataset(vec![
        text(0x0040_A040, Vr::CS, "TEXT"),
        seq(0x0040_A043, vec![concept]),
        seq(0x0040_A504, vec![nested]),
        text(0x0040_A160, Vr::UT, "Jane Doe has a cough"),
        text(0x0040_A123, Vr::PN, "Observer^Olga"),
    ]);
    let mut ds = dataset([patient(), vec![seq(0x0040_A730, vec![item])]].concat());
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    let Value::Seq(items) = &ds.get(0x0040_A730).unwrap().value else {
        panic!()
    };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].str(0x0040_A040), Some("TEXT"));
    assert_eq!(
        items[0].str(0x0040_A160),
        Some("ANONYMIZED"),
        "Text Value (unlisted) dummied inside a D sequence"
    );
    assert_eq!(items[0].str(0x0040_A123), Some("ANONYMIZED"));
    let Value::Seq(codes) = &items[0].get(0x0040_A043).unwrap().value else {
        panic!()
    };
    assert_eq!(
        codes[0].str(0x0008_0104),
        Some("Finding"),
        "coded entries keep their meaning"
    );
    let Value::Seq(deeper) = &items[0].get(0x0040_A504).unwrap().value else {
        panic!()
    };
    assert_eq!(
        deeper[0].str(0x0040_A160),
        Some("ANONYMIZED"),
        "mode passed through kept sequences"
    );
}

#[test]
fn keep_leaves_values_and_recurses() {
    let p = profile("[[override]]\nkeyword = \"StudyDescription\"\naction = \"K\"\n");
    let mut ds = dataset([patient(), vec![text(0x0008_1030, Vr::LO, "CT HEAD")]].concat());
    scrub(&mut ds, &p);
    assert_eq!(ds.str(0x0008_1030), Some("CT HEAD"));
}

#[test]
fn uids_are_keyed_consistent_and_registry_uids_never_change() {
    let p = Profile::builtin("basic").unwrap();
    let refd = dataset(vec![
        text(0x0008_1150, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_1155, Vr::UI, "1.2.3.4.5.6.7.8"),
    ]);
    let mut ds = dataset(
        [
            patient(),
            vec![
                seq(0x0008_2112, vec![refd]),
                text(0x0020_000E, Vr::UI, "1.2.3.4.5\\1.2.3.4.6"),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &p);
    let sop = ds.str(0x0008_0018).unwrap().to_string();
    assert_eq!(
        sop,
        expected_uid("1.2.3.4.5.6.7.8"),
        "2.25 + first 128 bits of HMAC-SHA256(key, uid)"
    );
    assert!(sop.len() <= 64);
    assert_eq!(
        ds.str(0x0008_0016),
        Some("1.2.840.10008.5.1.4.1.1.2"),
        "SOP class unchanged"
    );
    let Value::Seq(items) = &ds.get(0x0008_2112).unwrap().value else {
        panic!()
    };
    assert_eq!(
        items[0].str(0x0008_1155).unwrap(),
        sop,
        "a reference maps like the instance it names"
    );
    assert_eq!(items[0].str(0x0008_1150), Some("1.2.840.10008.5.1.4.1.1.2"));
    let multi = ds.str(0x0020_000E).unwrap();
    assert_eq!(
        multi,
        format!(
            "{}\\{}",
            expected_uid("1.2.3.4.5"),
            expected_uid("1.2.3.4.6")
        )
    );
    // The same study UID maps identically (it is also 1.2.3.4.5 in 0020,000D).
    assert_eq!(ds.str(0x0020_000D).unwrap(), expected_uid("1.2.3.4.5"));
}

#[test]
fn modified_dates_shift_by_one_keyed_offset_per_patient() {
    let p = profile("options = [\"retain-long-modified-dates\"]\n[date_shift]\nmin_days = -100\nmax_days = -10\n");
    let mut ds = dataset(
        [
            patient(),
            vec![
                text(0x0008_0020, Vr::DA, "20240301"),
                text(0x0008_0021, Vr::DA, "20240305"),
                text(0x0008_002A, Vr::DT, "20240301120000"),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &p);
    let day = |t: u32| {
        let s = ds.str(t).unwrap();
        let (y, m, d) = dicom_deid_scrub::dates::parse_da(&s.as_bytes()[..8]).unwrap();
        dicom_deid_scrub::dates::days_from_civil(y, m, d)
    };
    let original = dicom_deid_scrub::dates::days_from_civil(2024, 3, 1);
    let offset = day(0x0008_0020) - original;
    assert!(
        (-100..=-10).contains(&offset),
        "offset {offset} within the profile's range"
    );
    assert_eq!(day(0x0008_0021) - day(0x0008_0020), 4, "intervals kept");
    assert_eq!(day(0x0008_002A), day(0x0008_0020));
    assert!(
        ds.str(0x0008_002A).unwrap().ends_with("120000"),
        "time of day kept"
    );
    assert_eq!(ds.str(0x0028_0303), Some("MODIFIED"));
    // The same patient in another instance gets the same offset.
    let mut again = dataset([patient(), vec![text(0x0008_0020, Vr::DA, "20240301")]].concat());
    scrub(&mut again, &p);
    assert_eq!(again.str(0x0008_0020), ds.str(0x0008_0020));
}

#[test]
fn without_a_date_option_dates_follow_their_codes() {
    // Study Date (0008,0020) is Z; Content Date (0008,0023) Z/D → dummy.
    let mut ds = dataset(
        [
            patient(),
            vec![
                text(0x0008_0020, Vr::DA, "20240301"),
                text(0x0008_0023, Vr::DA, "20240301"),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert_eq!(bytes(&ds, 0x0008_0020), b"");
    assert_eq!(ds.str(0x0008_0023), Some("19000101"));
    assert_eq!(ds.str(0x0028_0303), Some("REMOVED"));
    let p = profile("options = [\"retain-long-full-dates\"]\n");
    let mut ds = dataset([patient(), vec![text(0x0008_0020, Vr::DA, "20240301")]].concat());
    scrub(&mut ds, &p);
    assert_eq!(ds.str(0x0008_0020), Some("20240301"));
    assert_eq!(ds.str(0x0028_0303), Some("UNMODIFIED"));
}

#[test]
fn clean_descriptors_blank_this_instances_identifiers() {
    let p = profile("options = [\"clean-descriptors\"]\n");
    let mut ds = dataset(
        [
            patient(),
            vec![text(
                0x0008_1030,
                Vr::LO,
                "CT for Doe, id PID-0001, born 21.11.1973",
            )],
        ]
        .concat(),
    );
    scrub(&mut ds, &p);
    assert_eq!(
        ds.str(0x0008_1030),
        Some("CT for ***, id ********, born **********")
    );
}

#[test]
fn device_identity_cleans_ae_titles_to_keyed_pseudonyms() {
    let p = profile("options = [\"retain-device-identity\"]\n");
    let mut ds = dataset([patient(), vec![text(0x0008_0055, Vr::AE, "CT_SCANNER_3")]].concat());
    scrub(&mut ds, &p);
    let ae = ds.str(0x0008_0055).unwrap().to_string();
    assert!(ae.starts_with("AE") && ae.len() == 16, "{ae}");
    let mut again = dataset([patient(), vec![text(0x0008_0055, Vr::AE, "CT_SCANNER_3")]].concat());
    scrub(&mut again, &p);
    assert_eq!(again.str(0x0008_0055).unwrap(), ae);
}

#[test]
fn private_attributes_removed_unless_safe_and_retained() {
    let private = vec![
        text(0x7053_0010, Vr::LO, "Philips PET Private Group"),
        text(0x7053_1000, Vr::DS, "1.5"),
        text(0x7053_1055, Vr::LO, "unsafe"),
        text(0x0029_0010, Vr::LO, "SOME VENDOR"),
        text(0x0029_1001, Vr::LO, "secret"),
        text(0x0031_1001, Vr::LO, "orphan"),
    ];
    let mut basic = dataset([patient(), private.clone()].concat());
    scrub(&mut basic, &Profile::builtin("basic").unwrap());
    assert!(
        basic.elements.iter().all(|e| (e.tag >> 16) % 2 == 0),
        "basic removes every private element"
    );

    let mut safe = dataset([patient(), private].concat());
    scrub(&mut safe, &profile("options = [\"retain-safe-private\"]\n"));
    assert_eq!(safe.str(0x7053_1000), Some("1.5"), "E.3.10-1 row kept");
    assert_eq!(
        safe.str(0x7053_0010),
        Some("Philips PET Private Group"),
        "with its creator"
    );
    for gone in [0x7053_1055, 0x0029_0010, 0x0029_1001, 0x0031_1001] {
        assert!(safe.get(gone).is_none(), "{gone:08X} should be removed");
    }
}

#[test]
fn removing_overlay_data_removes_the_overlay_group() {
    let mut ds = dataset(
        [
            patient(),
            vec![
                Element::new(0x6000_0010, Vr::US, 4u16.to_le_bytes().to_vec()),
                Element::new(0x6000_0011, Vr::US, 4u16.to_le_bytes().to_vec()),
                Element::new(0x6000_3000, Vr::OW, vec![0u8; 2]),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    assert!(ds.elements.iter().all(|e| e.tag >> 16 != 0x6000));
}

#[test]
fn markers_name_profile_and_options_and_append_to_earlier_ones() {
    let p = profile("options = [\"retain-long-modified-dates\", \"clean-descriptors\"]\n");
    let earlier = dataset(vec![
        text(0x0008_0100, Vr::SH, "113100"),
        text(0x0008_0102, Vr::SH, "DCM"),
        text(
            0x0008_0104,
            Vr::LO,
            "Basic Application Confidentiality Profile",
        ),
    ]);
    let mut ds = dataset(
        [
            patient(),
            vec![
                text(0x0012_0063, Vr::LO, "Other tool"),
                seq(0x0012_0064, vec![earlier]),
            ],
        ]
        .concat(),
    );
    scrub(&mut ds, &p);
    assert_eq!(ds.str(0x0012_0062), Some("YES"));
    let method = ds.str(0x0012_0063).unwrap();
    assert!(
        method.starts_with("Other tool\\") && method.contains("2026d"),
        "{method}"
    );
    let Value::Seq(items) = &ds.get(0x0012_0064).unwrap().value else {
        panic!()
    };
    let codes: Vec<_> = items.iter().map(|i| i.str(0x0008_0100).unwrap()).collect();
    assert_eq!(
        codes,
        ["113100", "113105", "113107"],
        "no duplicate 113100; one code per option"
    );
}

#[test]
fn verification_catches_a_value_kept_elsewhere() {
    // An override keeps Image Comments, which repeats the patient's name: the
    // name was replaced, so the output must be refused, naming the tag.
    let p = profile("[[override]]\nkeyword = \"ImageComments\"\naction = \"K\"\n");
    let mut ds = dataset(
        [
            patient(),
            vec![text(0x0020_4000, Vr::LT, "patient DOE^JANE moved")],
        ]
        .concat(),
    );
    let out = scrub(&mut ds, &p);
    let mut bytes = Vec::new();
    encode_dataset(&mut bytes, &ds, Syntax::EXPLICIT_LE).unwrap();
    let reread = parse_dataset(&bytes, Syntax::EXPLICIT_LE, &Limits::default()).unwrap();
    let leak = verify(&reread, &out.forbidden).unwrap_err();
    assert_eq!(leak.tag, "(0020,4000)");
    assert!(
        !leak.to_string().contains("DOE"),
        "the error names the tag, not the value"
    );
    assert!(
        !format!("{:?}", out.forbidden).contains("DOE"),
        "Debug of forbidden values is redacted"
    );
    // Without the override the output verifies.
    let mut ds = dataset(
        [
            patient(),
            vec![text(0x0020_4000, Vr::LT, "patient DOE^JANE moved")],
        ]
        .concat(),
    );
    let out = scrub(&mut ds, &Profile::builtin("basic").unwrap());
    let mut bytes = Vec::new();
    encode_dataset(&mut bytes, &ds, Syntax::EXPLICIT_LE).unwrap();
    verify(
        &parse_dataset(&bytes, Syntax::EXPLICIT_LE, &Limits::default()).unwrap(),
        &out.forbidden,
    )
    .unwrap();
}

#[test]
fn sequences_hidden_in_un_are_scrubbed() {
    // A Referenced Patient Sequence item holding a name, encoded as UN with
    // undefined length (implicit VR little endian inside), three levels deep.
    let mut inner = Vec::new();
    encode_dataset(
        &mut inner,
        &dataset(vec![text(0x0010_0010, Vr::PN, "Hidden^Name")]),
        Syntax::IMPLICIT_LE,
    )
    .unwrap();
    let mut un = vec![
        0x08, 0x00, 0x15, 0x11, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    un.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    un.extend_from_slice(&inner);
    un.extend_from_slice(&[
        0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,
    ]);
    let mut body = Vec::new();
    encode_dataset(&mut body, &dataset(patient()), Syntax::EXPLICIT_LE).unwrap();
    body.extend_from_slice(&un);
    let mut ds = parse_dataset(&body, Syntax::EXPLICIT_LE, &Limits::default()).unwrap();
    assert_eq!(
        ds.get(0x0008_1115).unwrap().vr,
        Vr::SQ,
        "UN sequence parsed as SQ"
    );
    scrub(&mut ds, &Profile::builtin("basic").unwrap());
    let mut out = Vec::new();
    encode_dataset(&mut out, &ds, Syntax::EXPLICIT_LE).unwrap();
    assert!(
        !out.windows(6).any(|w| w == b"Hidden"),
        "name inside the UN sequence removed"
    );
}
