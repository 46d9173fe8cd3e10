//! The conformance set: every attribute of PS3.15 Table E.1-1, each with a marker value.
//!
//! Three instances of one study, one series, one frame of reference, one patient:
//!
//! | file | what | carries |
//! | --- | --- | --- |
//! | [`FILE_CT1`] | CT Image | every row of the table at the top level (sequences with one item holding a nested marked attribute), curves, overlays, private blocks |
//! | [`FILE_CT2`] | CT Image | the patient/study attributes of ct1 with the *same* values, its own dates, and Referenced/Source Image Sequences pointing at ct1 |
//! | [`FILE_SR`] | Comprehensive SR | Content Sequence nested three deep (Person Name, DateTime, UID at the bottom), IMAGE items and evidence referencing ct1 and ct2 |
//!
//! ct1's own Referenced/Source Image Sequences point at ct2, so references run both ways.

use std::collections::HashMap;
use std::sync::OnceLock;

use dicom_deid_profile::{TagPattern, TABLE_E1_1};
use dicom_deid_wire::{tag_str, write_file, DataSet, Element, FileMetaOut, Syntax, Value, Vr};

use crate::values::{dictionary_vr, marker_value, MarkerSeed, EMBED};

/// File name of the first CT image.
pub const FILE_CT1: &str = "ct1.dcm";
/// File name of the second CT image (references ct1).
pub const FILE_CT2: &str = "ct2.dcm";
/// File name of the structured report (references both).
pub const FILE_SR: &str = "sr.dcm";
/// The patient's family name, also embedded in the free-text markers of attributes that an
/// option cleans (so "clean" has an identifying value of the same instance to remove).
pub const PATIENT_FAMILY: &str = EMBED;

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const COMPREHENSIVE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.33";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const MEDIA_STORAGE_SOP_INSTANCE_UID: u32 = 0x0002_0003;
const REFERENCED_SOP_CLASS_UID: u32 = 0x0008_1150;
const REFERENCED_SOP_INSTANCE_UID: u32 = 0x0008_1155;
const REFERENCED_IMAGE_SEQUENCE: u32 = 0x0008_1140;
const SOURCE_IMAGE_SEQUENCE: u32 = 0x0008_2112;
const REFERENCED_SOP_SEQUENCE: u32 = 0x0008_1199;
const REFERENCED_SERIES_SEQUENCE: u32 = 0x0008_1115;
const CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: u32 = 0x0040_A375;
const CONTENT_SEQUENCE: u32 = 0x0040_A730;
const VALUE_TYPE: u32 = 0x0040_A040;
const RELATIONSHIP_TYPE: u32 = 0x0040_A010;
const PATIENT_NAME: u32 = 0x0010_0010;
const TIMEZONE_OFFSET_FROM_UTC: u32 = 0x0008_0201;
const PERSON_NAME: u32 = 0x0040_A123;
const DATE_TIME: u32 = 0x0040_A120;
const UID: u32 = 0x0040_A124;

/// Attributes ct2 and the SR repeat from ct1 with the same value (the same patient and study).
const SHARED: [u32; 14] = [
    0x0008_0020, // Study Date
    0x0008_0030, // Study Time
    0x0008_0050, // Accession Number
    0x0008_0080, // Institution Name
    0x0008_0090, // Referring Physician's Name
    0x0010_0010, // Patient's Name
    0x0010_0020, // Patient ID
    0x0010_0021, // Issuer of Patient ID
    0x0010_0030, // Patient's Birth Date
    0x0010_0040, // Patient's Sex
    0x0020_000D, // Study Instance UID
    0x0020_000E, // Series Instance UID
    0x0020_0010, // Study ID
    0x0020_0052, // Frame of Reference UID
];

/// Attributes ct2 and the SR carry with values of their own (dates that must shift alike).
const OWN: [u32; 5] = [
    0x0008_0012, // Instance Creation Date
    0x0008_0023, // Content Date
    0x0008_0033, // Content Time
    0x0008_002A, // Acquisition DateTime
    0x0018_1200, // Date of Last Calibration
];

/// The nested attribute put into the item of each sequence row, in turn.
const NESTED: [u32; 6] = [
    PERSON_NAME,
    DATE_TIME,
    UID,
    0x0008_0080, // Institution Name
    0x0008_1030, // Study Description
    0x0040_A121, // Date
];

/// One step of the path to a nested element: a sequence and the index of the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathStep {
    /// The sequence's tag.
    pub tag: u32,
    /// The item index in that sequence.
    pub item: usize,
}

/// How a marker relates to PS3.15 E.3.10 (only for elements of odd groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKind {
    /// A Private Creator element; `safe` when Table E.3.10-1 lists elements of its block.
    Creator {
        /// Whether the creator reserves a block with safe elements.
        safe: bool,
    },
    /// A private element listed in Table E.3.10-1 (kept under Retain Safe Private).
    Safe,
    /// A private element not listed (always removed).
    Unsafe,
}

/// One planted value: where it is, which table row governs it, and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// The file of the set it is in.
    pub file: &'static str,
    /// Index into [`TABLE_E1_1`] of the row that governs the element.
    pub row: usize,
    /// The element's tag (`0002,0003` for the file meta's Media Storage SOP Instance UID).
    pub tag: u32,
    /// Enclosing sequences, outermost first; empty at the top level.
    pub path: Vec<PathStep>,
    /// The VR written.
    pub vr: Vr,
    /// The value as written, without padding (empty for a sequence).
    pub marker_bytes: Vec<u8>,
    /// Long and distinctive enough to be searched for in the raw output bytes. Values shared
    /// by several elements (the same patient, cross-file references) are searchable too.
    pub searchable: bool,
    /// For elements of odd groups: what Table E.3.10-1 says about it.
    pub private: Option<PrivateKind>,
}

impl Marker {
    /// The path as the engine's reports write it: `(0040,A730)[0]/(0040,A123)`.
    pub fn path_string(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            s.push_str(&format!("{}[{}]/", tag_str(step.tag), step.item));
        }
        s.push_str(&tag_str(self.tag));
        s
    }

    /// The marker value as text (lossy for binary values).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.marker_bytes).into_owned()
    }
}

/// The files of a conformance study and every marker planted in them.
#[derive(Debug, Clone)]
pub struct ConformanceSet {
    /// `(file name, Part 10 bytes)`, in the order ct1, ct2, SR.
    pub files: Vec<(String, Vec<u8>)>,
    /// Every planted marker, of every file.
    pub markers: Vec<Marker>,
}

/// The conformance study number `study` (vary it for distinct patients and UIDs).
pub fn conformance_set(study: usize) -> Vec<(String, Vec<u8>)> {
    conformance(study).files
}

/// The index in [`TABLE_E1_1`] of the row that governs `tag`: its exact row, else a
/// repeating-group row (`50xx,xxxx`, `60xx,3000`, `60xx,4000`), else `gggg,eeee` for an odd
/// group. `None` for attributes the table does not list.
pub fn row_of(tag: u32) -> Option<usize> {
    /// Exact tags, then patterns in the order they are tried.
    type Index = (HashMap<u32, usize>, Vec<(TagPattern, usize)>);
    static INDEX: OnceLock<Index> = OnceLock::new();
    let (exact, patterns) = INDEX.get_or_init(|| {
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (i, row) in TABLE_E1_1.iter().enumerate() {
            match row.pattern {
                TagPattern::Exact(t) => {
                    exact.insert(t, i);
                }
                TagPattern::Mask { .. } => patterns.push((row.pattern, i)),
                TagPattern::AnyPrivate => {}
            }
        }
        // The private row goes last: a mask is more specific.
        for (i, row) in TABLE_E1_1.iter().enumerate() {
            if row.pattern == TagPattern::AnyPrivate {
                patterns.push((row.pattern, i));
            }
        }
        (exact, patterns)
    });
    exact.get(&tag).copied().or_else(|| {
        patterns
            .iter()
            .find(|(p, _)| p.matches(tag))
            .map(|&(_, i)| i)
    })
}

fn row_or_panic(tag: u32) -> usize {
    row_of(tag).unwrap_or_else(|| panic!("{} is a row of Table E.1-1", tag_str(tag)))
}

/// The VR of a table row's attribute: the dictionary's, else a guess from its name (for the
/// rows newer than the dictionary, e.g. `3004,007F` Dose Calculation Model Name).
fn row_vr(tag: u32) -> Vr {
    if let Some(vr) = dictionary_vr(tag) {
        return vr;
    }
    let name = row_of(tag).map(|i| TABLE_E1_1[i].name).unwrap_or_default();
    if name.contains("Sequence") {
        Vr::SQ
    } else if name.ends_with("UID") {
        Vr::UI
    } else if name.ends_with("DateTime") {
        Vr::DT
    } else if name.ends_with("Date") {
        Vr::DA
    } else if name.ends_with("Time") {
        Vr::TM
    } else {
        Vr::LO
    }
}

/// Whether the free-text marker of a row embeds the patient's name: when some option cleans
/// the row and none keeps it (a kept value must not carry a removed name).
fn embeds_name(row: usize) -> bool {
    let r = &TABLE_E1_1[row];
    let code = |c: &str| r.options.iter().flatten().any(|o| o.as_str() == c);
    code("C") && !code("K")
}

struct Gen {
    study: usize,
    serial: usize,
    markers: Vec<Marker>,
    nested_turn: usize,
    /// Values of ct1 that the other files repeat.
    shared: HashMap<u32, Vec<u8>>,
    sop_uids: [String; 3],
}

impl Gen {
    fn next_serial(&mut self) -> usize {
        self.serial += 1;
        self.serial
    }

    // One argument per field of the record; a builder would only hide that.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        file: &'static str,
        row: usize,
        tag: u32,
        path: &[PathStep],
        vr: Vr,
        bytes: Vec<u8>,
        searchable: bool,
        private: Option<PrivateKind>,
    ) {
        self.markers.push(Marker {
            file,
            row,
            tag,
            path: path.to_vec(),
            vr,
            marker_bytes: bytes,
            searchable,
            private,
        });
    }

    /// A new marker element for `tag` (VR from the dictionary unless given).
    fn leaf(
        &mut self,
        file: &'static str,
        path: &[PathStep],
        tag: u32,
        vr: Option<Vr>,
        private: Option<PrivateKind>,
    ) -> Element<'static> {
        let row = row_or_panic(tag);
        let vr = vr.unwrap_or_else(|| row_vr(tag));
        let serial = self.next_serial();
        let seed = MarkerSeed {
            study: self.study,
            row,
            tag,
            serial,
            embed_name: vr.is_free_text() && embeds_name(row),
        };
        let mut v = marker_value(vr, &seed);
        match tag {
            PATIENT_NAME => {
                v.bytes = format!("{EMBED}^{:04X}_{:04X}_{serial:04}", tag >> 16, tag & 0xFFFF)
                    .into_bytes()
            }
            TIMEZONE_OFFSET_FROM_UTC => {
                // An SH with a fixed form (&ZZXX): a real offset, too short to search for.
                v = crate::values::MarkerValue {
                    bytes: format!("+{:02}30", serial % 12).into_bytes(),
                    searchable: false,
                };
            }
            _ => {}
        }
        self.record(
            file,
            row,
            tag,
            path,
            vr,
            v.bytes.clone(),
            v.searchable,
            private,
        );
        element(tag, vr, v.bytes)
    }

    /// An element with a given value (shared with another element or file).
    fn known(
        &mut self,
        file: &'static str,
        path: &[PathStep],
        tag: u32,
        vr: Vr,
        bytes: Vec<u8>,
    ) -> Element<'static> {
        let row = row_or_panic(tag);
        let searchable = bytes.len() >= 6 && vr.is_string();
        self.record(file, row, tag, path, vr, bytes.clone(), searchable, None);
        element(tag, vr, bytes)
    }

    /// A sequence row with one item holding the next nested attribute of [`NESTED`].
    fn sequence(&mut self, file: &'static str, path: &[PathStep], tag: u32) -> Element<'static> {
        let row = row_or_panic(tag);
        self.record(file, row, tag, path, Vr::SQ, Vec::new(), false, None);
        let inner = step(path, tag, 0);
        let item = match tag {
            REFERENCED_IMAGE_SEQUENCE | SOURCE_IMAGE_SEQUENCE => {
                let target = if file == FILE_CT1 {
                    self.sop_uids[1].clone()
                } else {
                    self.sop_uids[0].clone()
                };
                self.reference(file, &inner, CT_IMAGE_STORAGE, &target)
            }
            _ => {
                let nested = NESTED[self.nested_turn % NESTED.len()];
                self.nested_turn += 1;
                vec![self.leaf(file, &inner, nested, None, None)]
            }
        };
        seq(tag, vec![dataset(item)])
    }

    /// The elements of one reference item: Referenced SOP Class and Instance UIDs.
    fn reference(
        &mut self,
        file: &'static str,
        path: &[PathStep],
        class: &str,
        instance: &str,
    ) -> Vec<Element<'static>> {
        vec![
            Element::text(REFERENCED_SOP_CLASS_UID, Vr::UI, class),
            self.known(
                file,
                path,
                REFERENCED_SOP_INSTANCE_UID,
                Vr::UI,
                instance.as_bytes().to_vec(),
            ),
        ]
    }

    /// Every row of the table, at the top level of ct1.
    fn ct1(&mut self) -> DataSet<'static> {
        let file = FILE_CT1;
        let mut ds = DataSet::default();
        for (row, r) in TABLE_E1_1.iter().enumerate() {
            match r.pattern {
                TagPattern::Exact(MEDIA_STORAGE_SOP_INSTANCE_UID) => {
                    // Lives in the file meta; it is the SOP Instance UID.
                    let uid = self.sop_uids[0].clone().into_bytes();
                    self.record(
                        file,
                        row,
                        MEDIA_STORAGE_SOP_INSTANCE_UID,
                        &[],
                        Vr::UI,
                        uid,
                        true,
                        None,
                    );
                }
                TagPattern::Exact(SOP_INSTANCE_UID) => {
                    let uid = self.sop_uids[0].clone().into_bytes();
                    ds.put(self.known(file, &[], SOP_INSTANCE_UID, Vr::UI, uid));
                }
                TagPattern::Exact(tag) if row_vr(tag) == Vr::SQ => {
                    ds.put(self.sequence(file, &[], tag))
                }
                TagPattern::Exact(tag) => ds.put(self.leaf(file, &[], tag, None, None)),
                TagPattern::Mask {
                    value: 0x5000_0000, ..
                } => self.curve(&mut ds),
                TagPattern::Mask { value, .. } => {
                    // 60xx,3000 Overlay Data and 60xx,4000 Overlay Comments, in overlay 6000.
                    let tag = 0x6000_0000 | (value & 0xFFFF);
                    let mut e = self.leaf(file, &[], tag, None, None);
                    if tag == 0x6000_3000 {
                        // 16 × 16 one-bit overlay: 32 bytes, the marker padded.
                        if let Value::Bytes(b) = &mut e.value {
                            b.to_mut().resize(32, b'#');
                            self.markers.last_mut().expect("just recorded").marker_bytes =
                                b.to_vec();
                        }
                        self.overlay_plane(&mut ds);
                    }
                    ds.put(e);
                }
                TagPattern::AnyPrivate => self.private(&mut ds),
            }
        }
        for &tag in &SHARED {
            let value = ds
                .get(tag)
                .and_then(Element::bytes)
                .expect("shared attribute planted")
                .to_vec();
            self.shared.insert(tag, value);
        }
        self.image(&mut ds, CT_IMAGE_STORAGE, 1);
        ds
    }

    /// The curve group 5000: the elements of a curve, each a marker of row `50xx,xxxx`.
    fn curve(&mut self, ds: &mut DataSet<'static>) {
        for (tag, vr) in [
            (0x5000_0005, Vr::US), // Curve Dimensions
            (0x5000_0010, Vr::US), // Number of Points
            (0x5000_0020, Vr::CS), // Type of Data
            (0x5000_0022, Vr::LO), // Curve Description
            (0x5000_3000, Vr::OW), // Curve Data
        ] {
            ds.put(self.leaf(FILE_CT1, &[], tag, Some(vr), None));
        }
    }

    /// The overlay 6000 attributes that the table does not list (plain values).
    fn overlay_plane(&mut self, ds: &mut DataSet<'static>) {
        ds.put(element(0x6000_0010, Vr::US, 16u16.to_le_bytes().to_vec()));
        ds.put(element(0x6000_0011, Vr::US, 16u16.to_le_bytes().to_vec()));
        ds.put(Element::text(0x6000_0040, Vr::CS, "G"));
        ds.put(element(
            0x6000_0050,
            Vr::SS,
            [1i16.to_le_bytes(), 1i16.to_le_bytes()].concat(),
        ));
        ds.put(element(0x6000_0100, Vr::US, 1u16.to_le_bytes().to_vec()));
        ds.put(element(0x6000_0102, Vr::US, 0u16.to_le_bytes().to_vec()));
    }

    /// Private blocks: a safe block of Table E.3.10-1 (Philips PET, group 7053) with two safe
    /// elements and an unlisted one, and an unsafe block (group 0029) with text, binary and a
    /// private sequence holding a standard attribute.
    fn private(&mut self, ds: &mut DataSet<'static>) {
        let file = FILE_CT1;
        let row = row_or_panic(0x7053_1000);
        let creator = b"Philips PET Private Group".to_vec();
        self.record(
            file,
            row,
            0x7053_0010,
            &[],
            Vr::LO,
            creator.clone(),
            false,
            Some(PrivateKind::Creator { safe: true }),
        );
        ds.put(element(0x7053_0010, Vr::LO, creator));
        ds.put(self.leaf(
            file,
            &[],
            0x7053_1000,
            Some(Vr::DS),
            Some(PrivateKind::Safe),
        ));
        ds.put(self.leaf(
            file,
            &[],
            0x7053_1009,
            Some(Vr::DS),
            Some(PrivateKind::Safe),
        ));
        ds.put(self.leaf(
            file,
            &[],
            0x7053_1050,
            Some(Vr::LO),
            Some(PrivateKind::Unsafe),
        ));

        ds.put(self.leaf(
            file,
            &[],
            0x0029_0010,
            Some(Vr::LO),
            Some(PrivateKind::Creator { safe: false }),
        ));
        ds.put(self.leaf(
            file,
            &[],
            0x0029_1001,
            Some(Vr::LO),
            Some(PrivateKind::Unsafe),
        ));
        ds.put(self.leaf(
            file,
            &[],
            0x0029_1002,
            Some(Vr::OB),
            Some(PrivateKind::Unsafe),
        ));
        self.record(
            file,
            row,
            0x0029_1003,
            &[],
            Vr::SQ,
            Vec::new(),
            false,
            Some(PrivateKind::Unsafe),
        );
        let inner = step(&[], 0x0029_1003, 0);
        let nested = vec![
            self.leaf(file, &inner, PERSON_NAME, None, None),
            self.leaf(file, &inner, 0x0029_1001, Some(Vr::LO), None),
        ];
        // The private element inside the item needs its creator there too.
        let mut item = dataset(nested);
        item.put(Element::text(0x0029_0010, Vr::LO, "MK SYNTH PRIVATE ITEM"));
        self.markers.last_mut().expect("just recorded").private = Some(PrivateKind::Unsafe);
        ds.put(seq(0x0029_1003, vec![item]));
    }

    /// The image and SOP common attributes the table does not list, where not planted.
    fn image(&self, ds: &mut DataSet<'static>, class: &str, instance_number: u32) {
        let mut put = |e: Element<'static>| {
            if ds.get(e.tag).is_none() {
                ds.put(e);
            }
        };
        put(Element::text(SOP_CLASS_UID, Vr::UI, class));
        put(Element::text(
            0x0020_0013,
            Vr::IS,
            &instance_number.to_string(),
        ));
        if class == CT_IMAGE_STORAGE {
            put(Element::text(
                0x0008_0008,
                Vr::CS,
                "ORIGINAL\\PRIMARY\\AXIAL",
            ));
            put(Element::text(0x0008_0060, Vr::CS, "CT"));
            put(element(0x0028_0002, Vr::US, 1u16.to_le_bytes().to_vec()));
            put(Element::text(0x0028_0004, Vr::CS, "MONOCHROME2"));
            put(element(0x0028_0010, Vr::US, 8u16.to_le_bytes().to_vec()));
            put(element(0x0028_0011, Vr::US, 8u16.to_le_bytes().to_vec()));
            put(element(0x0028_0100, Vr::US, 16u16.to_le_bytes().to_vec()));
            put(element(0x0028_0101, Vr::US, 12u16.to_le_bytes().to_vec()));
            put(element(0x0028_0102, Vr::US, 11u16.to_le_bytes().to_vec()));
            put(element(0x0028_0103, Vr::US, 0u16.to_le_bytes().to_vec()));
            let pixels: Vec<u8> = (0..64u16).flat_map(|i| (i * 64).to_le_bytes()).collect();
            put(element(0x7FE0_0010, Vr::OW, pixels));
        } else {
            put(Element::text(0x0008_0060, Vr::CS, "SR"));
        }
    }

    /// The patient and study attributes of ct1, then this file's own ones.
    fn common(&mut self, file: &'static str, index: usize, ds: &mut DataSet<'static>) {
        for &tag in &SHARED {
            let bytes = self.shared[&tag].clone();
            ds.put(self.known(file, &[], tag, row_vr(tag), bytes));
        }
        for &tag in &OWN {
            ds.put(self.leaf(file, &[], tag, None, None));
        }
        let uid = self.sop_uids[index].clone().into_bytes();
        self.record(
            file,
            row_or_panic(MEDIA_STORAGE_SOP_INSTANCE_UID),
            MEDIA_STORAGE_SOP_INSTANCE_UID,
            &[],
            Vr::UI,
            uid.clone(),
            true,
            None,
        );
        ds.put(self.known(file, &[], SOP_INSTANCE_UID, Vr::UI, uid));
    }

    fn ct2(&mut self) -> DataSet<'static> {
        let mut ds = DataSet::default();
        self.common(FILE_CT2, 1, &mut ds);
        ds.put(self.sequence(FILE_CT2, &[], REFERENCED_IMAGE_SEQUENCE));
        ds.put(self.sequence(FILE_CT2, &[], SOURCE_IMAGE_SEQUENCE));
        self.image(&mut ds, CT_IMAGE_STORAGE, 2);
        ds
    }

    fn sr(&mut self) -> DataSet<'static> {
        let file = FILE_SR;
        let mut ds = DataSet::default();
        self.common(file, 2, &mut ds);
        ds.put(Element::text(VALUE_TYPE, Vr::CS, "CONTAINER"));

        // Content Sequence > Content Sequence > Content Sequence > PN, DT, UID.
        let l1 = step(&[], CONTENT_SEQUENCE, 0);
        let l2 = step(&l1, CONTENT_SEQUENCE, 0);
        let l3 = step(&l2, CONTENT_SEQUENCE, 0);
        let mut deepest = vec![
            Element::text(RELATIONSHIP_TYPE, Vr::CS, "CONTAINS"),
            Element::text(VALUE_TYPE, Vr::CS, "PNAME"),
        ];
        for tag in [PERSON_NAME, DATE_TIME, UID] {
            deepest.push(self.leaf(file, &l3, tag, None, None));
        }
        self.record(
            file,
            row_or_panic(CONTENT_SEQUENCE),
            CONTENT_SEQUENCE,
            &l2,
            Vr::SQ,
            Vec::new(),
            false,
            None,
        );
        let level2 = dataset(vec![
            Element::text(RELATIONSHIP_TYPE, Vr::CS, "CONTAINS"),
            Element::text(VALUE_TYPE, Vr::CS, "CONTAINER"),
            seq(CONTENT_SEQUENCE, vec![dataset(deepest)]),
        ]);
        self.record(
            file,
            row_or_panic(CONTENT_SEQUENCE),
            CONTENT_SEQUENCE,
            &l1,
            Vr::SQ,
            Vec::new(),
            false,
            None,
        );
        let level1 = dataset(vec![
            Element::text(RELATIONSHIP_TYPE, Vr::CS, "CONTAINS"),
            Element::text(VALUE_TYPE, Vr::CS, "CONTAINER"),
            seq(CONTENT_SEQUENCE, vec![level2]),
        ]);
        let mut items = vec![level1];
        // IMAGE content items referencing ct1 and ct2.
        for (i, target) in [0usize, 1].into_iter().enumerate() {
            let at = step(
                &step(&[], CONTENT_SEQUENCE, i + 1),
                REFERENCED_SOP_SEQUENCE,
                0,
            );
            let uid = self.sop_uids[target].clone();
            let reference = self.reference(file, &at, CT_IMAGE_STORAGE, &uid);
            items.push(dataset(vec![
                Element::text(RELATIONSHIP_TYPE, Vr::CS, "CONTAINS"),
                Element::text(VALUE_TYPE, Vr::CS, "IMAGE"),
                seq(REFERENCED_SOP_SEQUENCE, vec![dataset(reference)]),
            ]));
        }
        self.record(
            file,
            row_or_panic(CONTENT_SEQUENCE),
            CONTENT_SEQUENCE,
            &[],
            Vr::SQ,
            Vec::new(),
            false,
            None,
        );
        ds.put(seq(CONTENT_SEQUENCE, items));

        // Evidence: study > series > both instances.
        let series_at = step(&[], CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, 0);
        let sop_at = step(&series_at, REFERENCED_SERIES_SEQUENCE, 0);
        let study_uid = self.shared[&0x0020_000D].clone();
        let series_uid = self.shared[&0x0020_000E].clone();
        let mut sops = Vec::new();
        for target in 0..2 {
            let uid = self.sop_uids[target].clone();
            sops.push(dataset(self.reference(
                file,
                &step(&sop_at, REFERENCED_SOP_SEQUENCE, target),
                CT_IMAGE_STORAGE,
                &uid,
            )));
        }
        let series_item = dataset(vec![
            self.known(file, &sop_at, 0x0020_000E, Vr::UI, series_uid),
            seq(REFERENCED_SOP_SEQUENCE, sops),
        ]);
        let study_item = dataset(vec![
            self.known(file, &series_at, 0x0020_000D, Vr::UI, study_uid),
            seq(REFERENCED_SERIES_SEQUENCE, vec![series_item]),
        ]);
        ds.put(seq(
            CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![study_item],
        ));
        ds.put(Element::text(0x0040_A491, Vr::CS, "COMPLETE")); // Completion Flag
        ds.put(Element::text(0x0040_A493, Vr::CS, "UNVERIFIED")); // Verification Flag
        self.image(&mut ds, COMPREHENSIVE_SR_STORAGE, 3);
        ds
    }
}

fn step(path: &[PathStep], tag: u32, item: usize) -> Vec<PathStep> {
    let mut p = path.to_vec();
    p.push(PathStep { tag, item });
    p
}

fn element(tag: u32, vr: Vr, bytes: Vec<u8>) -> Element<'static> {
    Element::new(tag, vr, bytes)
}

fn seq(tag: u32, items: Vec<DataSet<'static>>) -> Element<'static> {
    Element {
        tag,
        vr: Vr::SQ,
        value: Value::Seq(items),
    }
}

fn dataset(elements: Vec<Element<'static>>) -> DataSet<'static> {
    let mut ds = DataSet { elements };
    ds.sort();
    ds
}

fn encode(ds: &DataSet<'_>, class: &str, instance: &str) -> Vec<u8> {
    let meta = FileMetaOut {
        sop_class_uid: class.to_string(),
        sop_instance_uid: instance.to_string(),
        transfer_syntax_uid: EXPLICIT_VR_LE.to_string(),
        implementation_class_uid: "1.2.826.0.1.3680043.10.999.1".to_string(),
        implementation_version_name: "DEID_SYNTH".to_string(),
    };
    let mut out = Vec::new();
    write_file(&mut out, &meta, ds, Syntax::EXPLICIT_LE).expect("synthetic data sets encode");
    out
}

/// The conformance study number `study`, with its markers.
pub fn conformance(study: usize) -> ConformanceSet {
    let mut g = Gen {
        study,
        serial: 0,
        markers: Vec::new(),
        nested_turn: 0,
        shared: HashMap::new(),
        sop_uids: Default::default(),
    };
    let sop_row = row_or_panic(SOP_INSTANCE_UID);
    for i in 0..3 {
        let serial = g.next_serial();
        let seed = MarkerSeed {
            study,
            row: sop_row,
            tag: SOP_INSTANCE_UID,
            serial,
            embed_name: false,
        };
        g.sop_uids[i] =
            String::from_utf8(marker_value(Vr::UI, &seed).bytes).expect("UIDs are ASCII");
    }
    let ct1 = g.ct1();
    let ct2 = g.ct2();
    let sr = g.sr();
    let files = vec![
        (
            FILE_CT1.to_string(),
            encode(&ct1, CT_IMAGE_STORAGE, &g.sop_uids[0]),
        ),
        (
            FILE_CT2.to_string(),
            encode(&ct2, CT_IMAGE_STORAGE, &g.sop_uids[1]),
        ),
        (
            FILE_SR.to_string(),
            encode(&sr, COMPREHENSIVE_SR_STORAGE, &g.sop_uids[2]),
        ),
    ];
    ConformanceSet {
        files,
        markers: g.markers,
    }
}
