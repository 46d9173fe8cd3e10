//! Tag de-identification of one DICOM data set under a profile.
//!
//! `dicom-deid-scrub` applies the actions a [`Profile`] resolves for every element,
//! at every nesting depth, and then checks its own work. It does not parse or
//! encode (that is `dicom-deid-wire`), touch pixel data, or do any I/O.
//!
//! ## What each action does
//!
//! | action | primitive value | sequence |
//! | --- | --- | --- |
//! | Remove (X) | element removed; removing Overlay Data removes its whole 60xx overlay group at that level | removed with its items |
//! | Empty (Z) | zero-length value, except Patient's Name (0010,0010), which gets the keyed pseudonym (Z allows a dummy) | zero items |
//! | Dummy (D) | a fixed value valid for the VR ([`dummy`]); Patient ID (0010,0020) gets the keyed pseudonym `DEID-<16 hex>`; UI values are remapped as for U | kept, items de-identified in *dummy mode*: nested free text the table would remove or keep is replaced by a dummy, so the items keep their structure and codes but none of their prose |
//! | Keep (K) | unchanged | kept, items de-identified |
//! | Clean (C) | free text: identifying values of this instance blanked ([`clean`]); Timezone Offset From UTC: `+0000`; DA/DT: shifted by the patient's keyed offset; TM: unchanged (whole-day shifts keep the time of day); AE: keyed pseudonym; UI: remapped; binary (overlay/curve bitmaps): removed — a bitmap cannot be cleaned without the pixel stage | kept, items de-identified in *clean mode*: nested free text the table would remove or keep is cleaned (names are dummied) |
//! | Uid (U) | each UID value → `2.25.` + decimal of the first 128 bits of HMAC-SHA256(key, UID); UIDs under the DICOM root `1.2.840.10008.` never change | — |
//!
//! Group lengths, command (0000) and directory (0004) groups and any stray file
//! meta (0002) elements in the data set are removed. Private creator elements
//! whose blocks end up empty are removed.
//!
//! ## Identifying values and verification
//!
//! Before changing anything, one pass gathers the *forbidden values*:
//!
//! - every original UID that is removed or replaced (UI values of any action but
//!   Keep), wherever it sits;
//! - every value of an *identifying* string attribute that the profile removes or
//!   replaces: person names (PN, and each name component), dates (DA and DT, with
//!   the written forms of a DA), and attributes whose keyword says they hold an
//!   ID, number, address, telephone, institution, station, location, mail address
//!   or issuer. Other removed values (a code meaning, "SIEMENS") are not watched:
//!   a kept attribute may legitimately share them.
//!
//! After encoding, [`verify`] re-reads the output and rejects it if a forbidden UID
//! is the value of any UI attribute or a token of any text, or a forbidden value
//! (at least 3 characters; 4 for pure digits) occurs as a whole token,
//! case-insensitively, in any AE, DA, DT, LO, LT, PN, SH, ST, UC, UT or UR value
//! at any depth. Exempt: a value that a kept attribute holds exactly, a word of a
//! kept vendor or coding attribute (Manufacturer, ManufacturerModelName,
//! SoftwareVersions, CodeValue, CodingSchemeDesignator, CodeMeaning), and our own
//! dummy vocabulary. The same identifying values drive Clean ([`clean`]).
//!
//! ```
//! use dicom_deid_scrub::{Scrubber, key::Key};
//! use dicom_deid_profile::Profile;
//! use dicom_deid_wire::{read_file, Limits};
//!
//! let bytes = dicom_deid_wire::testing::minimal_file();
//! let raw = read_file(&bytes, &Limits::default()).unwrap();
//! let mut ds = raw.parse(&Limits::default()).unwrap();
//! let profile = Profile::builtin("basic").unwrap();
//! let key = Key::from_bytes([7; 32]);
//! let outcome = Scrubber::new(&profile, &key).scrub(&mut ds);
//! assert_eq!(ds.str(0x0012_0062), Some("YES"));
//! assert!(!outcome.changes.is_empty());
//! ```

pub mod clean;
pub mod dates;
pub mod key;
mod verify;

use std::collections::{HashMap, HashSet};

use dicom_deid_profile::{tag_keyword, Action, Code, ElementCtx, Longitudinal, Profile, Source};
use dicom_deid_wire::{element, group, tag_str, trim, DataSet, Element, Tag, Value, Vr};

pub use verify::{verify, Leak};

use crate::key::Key;

/// Tags this crate writes or reads by name.
pub mod tags {
    #![allow(missing_docs)]
    use dicom_deid_wire::Tag;
    pub const PATIENT_NAME: Tag = 0x0010_0010;
    pub const TIMEZONE_OFFSET_FROM_UTC: Tag = 0x0008_0201;
    pub const PATIENT_ID: Tag = 0x0010_0020;
    pub const ISSUER_OF_PATIENT_ID: Tag = 0x0010_0021;
    pub const PATIENT_BIRTH_DATE: Tag = 0x0010_0030;
    pub const PATIENT_IDENTITY_REMOVED: Tag = 0x0012_0062;
    pub const DEIDENTIFICATION_METHOD: Tag = 0x0012_0063;
    pub const DEIDENTIFICATION_METHOD_CODE_SEQUENCE: Tag = 0x0012_0064;
    pub const LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED: Tag = 0x0028_0303;
    pub const CODE_VALUE: Tag = 0x0008_0100;
    pub const CODING_SCHEME_DESIGNATOR: Tag = 0x0008_0102;
    pub const CODE_MEANING: Tag = 0x0008_0104;
    pub const STUDY_INSTANCE_UID: Tag = 0x0020_000D;
    pub const SERIES_INSTANCE_UID: Tag = 0x0020_000E;
    pub const SOP_INSTANCE_UID: Tag = 0x0008_0018;
}
use tags::*;

/// One element that was not kept as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Where: `(0040,A730)[0]/(0040,A123)`, or just the tag at the top level.
    pub path: String,
    /// The element's tag.
    pub tag: Tag,
    /// Its keyword, when the dictionary knows it.
    pub keyword: Option<&'static str>,
    /// The PS3.15 code in force for it.
    pub code: Code,
    /// What was done.
    pub action: Action,
    /// Which rule decided.
    pub source: Source,
}

/// What scrubbing did, and what verification must look for.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every element not kept as it was, in data set order.
    pub changes: Vec<Change>,
    /// Values that must not appear in the output.
    pub forbidden: Forbidden,
}

/// Original values that must not survive. Holds PHI in memory only; its `Debug`
/// shows counts, never contents.
#[derive(Default)]
pub struct Forbidden {
    /// Upper-cased text values and name parts.
    pub(crate) terms: HashSet<Vec<u8>>,
    /// Original UIDs that were remapped.
    pub(crate) uids: HashSet<Vec<u8>>,
}

impl std::fmt::Debug for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Forbidden {{ {} terms, {} uids, **REDACTED** }}",
            self.terms.len(),
            self.uids.len()
        )
    }
}

/// Applies one profile with one key.
pub struct Scrubber<'p> {
    profile: &'p Profile,
    key: &'p Key,
}

/// How items of a sequence are treated (see the crate docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    /// Inside a sequence replaced by a dummy (D).
    Dummy,
    /// Inside a sequence being cleaned (C).
    Clean,
    /// Inside a removed or emptied sequence: everything here is going away.
    Gone,
}

/// Per-instance facts gathered before any change.
struct Instance {
    /// Keyed code of the patient (from Patient ID + issuer, else name + birth date).
    patient_code: String,
    /// Days to add to every date under the Modified Dates option.
    day_offset: i64,
    /// Identifying values to blank from free text under Clean.
    clean_terms: Vec<Vec<u8>>,
}

/// Kept attributes whose words are the vendor's or a coding system's vocabulary:
/// a removed value that is one of those words ("TOSHIBA" as an institution name
/// beside the manufacturer "TOSHIBA_MEC") is not a leak where it appears.
const VOCABULARY: &[Tag] = &[
    0x0008_0070, // Manufacturer
    0x0008_1090, // ManufacturerModelName
    0x0018_1020, // SoftwareVersions
    0x0008_0100, // CodeValue
    0x0008_0102, // CodingSchemeDesignator
    0x0008_0104, // CodeMeaning
];

/// Text we write ourselves: never counted as a leak.
const OWN_VOCABULARY: &[&[u8]] = &[
    b"ANONYMIZED",
    b"ANONYMOUS",
    b"DEIDENTIFIED",
    b"REMOVED",
    b"DEID",
    b"YES",
    b"NO",
    b"DCM",
    b"19000101",
    b"19000101000000",
    b"1900-01-01",
    b"01/01/1900",
    b"1900/01/01",
    b"01.01.1900",
    b"01-01-1900",
    b"1900.01.01",
];

impl<'p> Scrubber<'p> {
    /// A scrubber for this profile and key.
    pub fn new(profile: &'p Profile, key: &'p Key) -> Self {
        Scrubber { profile, key }
    }

    /// De-identifies `ds` in place and adds the marker attributes.
    pub fn scrub(&self, ds: &mut DataSet<'_>) -> Outcome {
        let mut out = Outcome::default();
        let instance = self.survey(ds, &mut out.forbidden);
        let mut path = Vec::new();
        self.apply(ds, &mut path, Mode::Normal, &instance, &mut out.changes);
        self.add_markers(ds);
        out
    }

    // ---- survey: what identifies this instance -------------------------------

    fn survey(&self, ds: &DataSet<'_>, forbidden: &mut Forbidden) -> Instance {
        let text = |tag| {
            ds.get(tag)
                .and_then(|e| e.bytes())
                .map(trim)
                .unwrap_or_default()
        };
        let mut identity = Vec::new();
        if !text(PATIENT_ID).is_empty() {
            identity.extend_from_slice(b"id\0");
            identity.extend_from_slice(text(PATIENT_ID));
            identity.push(0);
            identity.extend_from_slice(text(ISSUER_OF_PATIENT_ID));
        } else {
            identity.extend_from_slice(b"name\0");
            identity.extend_from_slice(text(PATIENT_NAME));
            identity.push(0);
            identity.extend_from_slice(text(PATIENT_BIRTH_DATE));
        }
        let patient_code = hex16(&self.key.mac_labeled("patient", &identity));
        let shift = self.profile.date_shift();
        let span = (shift.max_days as i64 - shift.min_days as i64 + 1).max(1) as u64;
        let mac = self.key.mac_labeled("date-offset", &identity);
        let day_offset = shift.min_days as i64
            + (u64::from_be_bytes(mac[..8].try_into().unwrap()) % span) as i64;

        let mut kept = HashSet::new();
        let mut clean_terms = HashSet::new();
        let mut path = Vec::new();
        self.collect(
            ds,
            &mut path,
            Mode::Normal,
            forbidden,
            &mut clean_terms,
            &mut kept,
        );
        // A value an attribute legitimately keeps is not a leak elsewhere.
        forbidden
            .terms
            .retain(|t| !kept.contains(t) && !OWN_VOCABULARY.contains(&t.as_slice()));
        forbidden.uids.retain(|u| !kept.contains(u));
        let mut clean_terms: Vec<Vec<u8>> = clean_terms
            .into_iter()
            .filter(|t| !kept.contains(t))
            .collect();
        // Longest first, so "DOE^JANE" is blanked before "DOE".
        clean_terms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Instance {
            patient_code,
            day_offset,
            clean_terms,
        }
    }

    fn collect(
        &self,
        ds: &DataSet<'_>,
        path: &mut Vec<Tag>,
        mode: Mode,
        forbidden: &mut Forbidden,
        clean_terms: &mut HashSet<Vec<u8>>,
        kept: &mut HashSet<Vec<u8>>,
    ) {
        let creators = private_creators(ds);
        for e in &ds.elements {
            let resolved = self.resolve(e, path, &creators);
            let action = effective(mode, resolved.action, e.tag, e.vr);
            match &e.value {
                Value::Seq(items) => {
                    let inner = inner_mode(mode, action);
                    path.push(e.tag);
                    for item in items {
                        self.collect(item, path, inner, forbidden, clean_terms, kept);
                    }
                    path.pop();
                }
                Value::Bytes(bytes) => {
                    if !is_watched(e.vr) {
                        continue;
                    }
                    let values = split_values(bytes);
                    match action {
                        Action::Keep | Action::KeepRecurse => {
                            for v in values {
                                kept.insert(v.to_ascii_uppercase());
                                if VOCABULARY.contains(&e.tag) {
                                    for word in v
                                        .split(|b| !b.is_ascii_alphanumeric())
                                        .filter(|w| !w.is_empty())
                                    {
                                        kept.insert(word.to_ascii_uppercase());
                                    }
                                }
                            }
                        }
                        Action::Uid if e.vr == Vr::UI => {
                            for v in values {
                                if !v.is_empty() && !is_registry_uid(v) {
                                    forbidden.uids.insert(v.to_vec());
                                }
                            }
                        }
                        // A cleaned value keeps its non-identifying words; the
                        // identifying ones come from the attributes below.
                        Action::Clean => {}
                        _ if e.vr == Vr::UI => {
                            for v in values {
                                if !v.is_empty() && !is_registry_uid(v) {
                                    forbidden.uids.insert(v.to_vec());
                                }
                            }
                        }
                        // Only values that identify someone or somewhere are
                        // watched: a removed attribute may share a harmless value
                        // ("SIEMENS", a code meaning) with one that is kept.
                        _ if is_identifying(e.tag, e.vr) => {
                            for v in values {
                                for term in terms_of(v, e.vr) {
                                    clean_terms.insert(term.clone());
                                    forbidden.terms.insert(term);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Value::Fragments(_) => {}
            }
        }
    }

    fn resolve(
        &self,
        e: &Element<'_>,
        path: &[Tag],
        creators: &HashMap<(u16, u8), String>,
    ) -> dicom_deid_profile::Resolved {
        let private_creator = private_creator_of(e, creators);
        self.profile.resolve(&ElementCtx {
            tag: e.tag,
            vr: e.vr.0,
            private_creator: private_creator.as_deref(),
            path,
        })
    }

    // ---- apply ----------------------------------------------------------------

    fn apply(
        &self,
        ds: &mut DataSet<'_>,
        path: &mut Vec<Tag>,
        mode: Mode,
        inst: &Instance,
        changes: &mut Vec<Change>,
    ) {
        let creators = private_creators(ds);
        let elements = std::mem::take(&mut ds.elements);
        let mut kept = Vec::with_capacity(elements.len());
        let mut dropped_overlays: Vec<u16> = Vec::new();
        for mut e in elements {
            let g = group(e.tag);
            if matches!(g, 0x0000 | 0x0002 | 0x0004) {
                changes.push(self.change(path, &e, Code::X, Action::Remove, Source::GroupLength));
                continue;
            }
            let resolved = self.resolve(&e, path, &creators);
            let action = effective(mode, resolved.action, e.tag, e.vr);
            let keep = match action {
                Action::Keep | Action::KeepRecurse => {
                    if let Value::Seq(items) = &mut e.value {
                        self.recurse(items, e.tag, path, inner_mode(mode, action), inst, changes);
                    }
                    true
                }
                Action::Remove => false,
                Action::Empty => {
                    e.value = match &e.value {
                        Value::Seq(_) => Value::Seq(Vec::new()),
                        _ if e.tag == PATIENT_NAME && path.is_empty() => {
                            text_value(&format!("DEID^{}", inst.patient_code), e.vr)
                        }
                        _ => Value::Bytes(Vec::new().into()),
                    };
                    true
                }
                Action::Dummy => {
                    match &mut e.value {
                        Value::Seq(items) => self.recurse(
                            items,
                            e.tag,
                            path,
                            inner_mode(mode, action),
                            inst,
                            changes,
                        ),
                        _ => e.value = self.dummy_value(&e, path, inst),
                    }
                    true
                }
                Action::Uid => {
                    if let Value::Bytes(b) = &e.value {
                        e.value = if e.vr == Vr::UI {
                            Value::Bytes(self.remap_uids(b).into())
                        } else {
                            dummy(e.vr)
                        };
                    }
                    true
                }
                Action::Clean => match &mut e.value {
                    Value::Seq(items) => {
                        self.recurse(items, e.tag, path, inner_mode(mode, action), inst, changes);
                        true
                    }
                    Value::Bytes(b) => match self.clean_value(e.tag, e.vr, b, inst) {
                        Some(v) => {
                            e.value = v;
                            true
                        }
                        None => false,
                    },
                    Value::Fragments(_) => false,
                },
            };
            if action != Action::Keep && action != Action::KeepRecurse {
                let action = if keep { action } else { Action::Remove };
                changes.push(self.change(path, &e, resolved.code, action, resolved.source));
            }
            if keep {
                kept.push(e);
            } else if (0x6000..=0x601E).contains(&g) && element(e.tag) == 0x3000 {
                dropped_overlays.push(g);
            }
        }
        if !dropped_overlays.is_empty() {
            // An overlay plane without its data is invalid: drop the whole group.
            kept.retain(|e| !dropped_overlays.contains(&group(e.tag)));
        }
        drop_orphan_creators(&mut kept);
        ds.elements = kept;
        ds.sort();
    }

    fn recurse(
        &self,
        items: &mut [DataSet<'_>],
        tag: Tag,
        path: &mut Vec<Tag>,
        mode: Mode,
        inst: &Instance,
        changes: &mut Vec<Change>,
    ) {
        path.push(tag);
        for item in items.iter_mut() {
            self.apply(item, path, mode, inst, changes);
        }
        path.pop();
    }

    fn change(
        &self,
        path: &[Tag],
        e: &Element<'_>,
        code: Code,
        action: Action,
        source: Source,
    ) -> Change {
        let mut p = String::new();
        for t in path {
            p.push_str(&tag_str(*t));
            p.push('/');
        }
        p.push_str(&tag_str(e.tag));
        Change {
            path: p,
            tag: e.tag,
            keyword: tag_keyword(e.tag),
            code,
            action,
            source,
        }
    }

    fn dummy_value<'a>(&self, e: &Element<'a>, path: &[Tag], inst: &Instance) -> Value<'a> {
        match (e.tag, e.vr) {
            (PATIENT_ID, _) if path.is_empty() => {
                text_value(&format!("DEID-{}", inst.patient_code), e.vr)
            }
            (PATIENT_ID, _) => {
                let original = e.bytes().map(trim).unwrap_or_default();
                text_value(
                    &format!(
                        "DEID-{}",
                        hex16(
                            &self
                                .key
                                .mac_labeled("patient", &[b"id\0", original, b"\0"].concat())
                        )
                    ),
                    e.vr,
                )
            }
            (PATIENT_NAME, _) if path.is_empty() => {
                text_value(&format!("DEID^{}", inst.patient_code), e.vr)
            }
            (_, Vr::UI) => Value::Bytes(self.remap_uids(e.bytes().unwrap_or_default()).into()),
            (_, vr) => dummy(vr),
        }
    }

    fn clean_value<'a>(
        &self,
        tag: Tag,
        vr: Vr,
        bytes: &[u8],
        inst: &Instance,
    ) -> Option<Value<'a>> {
        Some(match vr {
            // A UTC offset tells where the instance was made; cleaned, it says UTC.
            _ if tag == TIMEZONE_OFFSET_FROM_UTC => text_value("+0000", vr),
            Vr::DA | Vr::DT => match dates::shift_value(bytes, vr, inst.day_offset) {
                Some(v) => Value::Bytes(v.into()),
                None => dummy(vr),
            },
            Vr::TM => Value::Bytes(bytes.to_vec().into()),
            Vr::AE => {
                let original = trim(bytes);
                if original.is_empty() {
                    Value::Bytes(Vec::new().into())
                } else {
                    text_value(
                        &format!("AE{}", &hex16(&self.key.mac_labeled("ae", original))[..14]),
                        vr,
                    )
                }
            }
            Vr::UI => Value::Bytes(self.remap_uids(bytes).into()),
            vr if vr.is_string() => {
                Value::Bytes(clean::clean_text(bytes, vr, &inst.clean_terms).into())
            }
            // A bitmap or binary value cannot be cleaned here: remove it.
            _ => return None,
        })
    }

    /// Remaps each value of a (possibly multi-valued) UI element.
    pub fn remap_uids(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        for (i, v) in split_values(bytes).enumerate() {
            if i > 0 {
                out.push(b'\\');
            }
            if v.is_empty() || is_registry_uid(v) {
                out.extend_from_slice(v);
            } else {
                out.extend_from_slice(self.new_uid(v).as_bytes());
            }
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    /// The pseudonymous UID for an original UID: `2.25.` and the decimal of the
    /// first 128 bits of HMAC-SHA256(key, original).
    pub fn new_uid(&self, original: &[u8]) -> String {
        let mac = self.key.mac(original);
        format!(
            "2.25.{}",
            u128::from_be_bytes(mac[..16].try_into().unwrap())
        )
    }

    // ---- markers ----------------------------------------------------------------

    fn add_markers(&self, ds: &mut DataSet<'_>) {
        ds.put(Element::text(PATIENT_IDENTITY_REMOVED, Vr::CS, "YES"));
        let ours = self.profile.method_text();
        let mut method = ds
            .str(DEIDENTIFICATION_METHOD)
            .map(str::to_string)
            .filter(|m| !m.is_empty())
            .unwrap_or_default();
        if !method.split('\\').any(|m| m == ours) {
            if !method.is_empty() {
                method.push('\\');
            }
            method.push_str(&ours);
        }
        ds.put(Element::text(DEIDENTIFICATION_METHOD, Vr::LO, &method));
        let mut items = match ds
            .remove(DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .map(|e| e.value)
        {
            Some(Value::Seq(items)) => items,
            _ => Vec::new(),
        };
        for (code, meaning) in self.profile.method_codes() {
            let present = items.iter().any(|i| {
                i.str(CODE_VALUE) == Some(code) && i.str(CODING_SCHEME_DESIGNATOR) == Some("DCM")
            });
            if !present {
                let mut item = DataSet::default();
                item.put(Element::text(CODE_VALUE, Vr::SH, code));
                item.put(Element::text(CODING_SCHEME_DESIGNATOR, Vr::SH, "DCM"));
                item.put(Element::text(CODE_MEANING, Vr::LO, meaning));
                items.push(item);
            }
        }
        ds.put(Element {
            tag: DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            vr: Vr::SQ,
            value: Value::Seq(items),
        });
        let longitudinal = match self.profile.longitudinal() {
            Longitudinal::Removed => "REMOVED",
            Longitudinal::Unmodified => "UNMODIFIED",
            Longitudinal::Modified => "MODIFIED",
        };
        ds.put(Element::text(
            LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            Vr::CS,
            longitudinal,
        ));
    }
}

/// What happens to an element given the mode of its enclosing sequence.
///
/// Inside a sequence replaced by a dummy or cleaned, free text that the table
/// would remove *or keep* (e.g. Text Value (0040,A160), which E.1-1 does not list)
/// is dummied or cleaned, so the items keep their structure and none of their
/// prose. Coded entries (code value, scheme, meaning) are what give structured
/// content its meaning and stay as the table says.
fn effective(mode: Mode, action: Action, tag: Tag, vr: Vr) -> Action {
    let text_to_replace = vr.is_free_text()
        && matches!(action, Action::Remove | Action::Keep)
        && !CODE_ATTRIBUTES.contains(&tag);
    match mode {
        Mode::Normal => action,
        Mode::Gone => Action::Remove,
        Mode::Dummy if text_to_replace => Action::Dummy,
        // A name is replaced, never cleaned: its own parts are what cleaning removes.
        Mode::Clean if text_to_replace && vr == Vr::PN => Action::Dummy,
        Mode::Clean if text_to_replace => Action::Clean,
        _ => action,
    }
}

/// Attributes of a coded entry (PS3.3 Table 8.8-1): kept inside dummied and
/// cleaned sequences.
const CODE_ATTRIBUTES: &[Tag] = &[
    0x0008_0100, // CodeValue
    0x0008_0102, // CodingSchemeDesignator
    0x0008_0103, // CodingSchemeVersion
    0x0008_0104, // CodeMeaning
    0x0008_0119, // LongCodeValue
    0x0008_0120, // URNCodeValue
];

/// The mode of the items of a sequence: removed and emptied sequences take
/// everything with them; a dummied or cleaned sequence passes its mode down, also
/// through nested sequences it keeps, so no prose survives anywhere beneath it.
/// The survey and the apply pass both use this, so they always agree.
fn inner_mode(mode: Mode, action: Action) -> Mode {
    match action {
        Action::Remove | Action::Empty => Mode::Gone,
        _ if mode == Mode::Gone => Mode::Gone,
        Action::Dummy => Mode::Dummy,
        Action::Clean => Mode::Clean,
        _ if matches!(mode, Mode::Dummy | Mode::Clean) => mode,
        _ => Mode::Normal,
    }
}

/// String VRs whose values we watch for and scan (see the crate docs).
fn is_watched(vr: Vr) -> bool {
    matches!(
        &vr.0,
        b"AE"
            | b"DA"
            | b"DT"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"ST"
            | b"UC"
            | b"UT"
            | b"UR"
            | b"UI"
    )
}

/// Attributes whose values identify someone or somewhere: person names, dates,
/// and IDs, numbers, addresses, institutions, stations and locations.
fn is_identifying(tag: Tag, vr: Vr) -> bool {
    if matches!(vr, Vr::PN | Vr::DA | Vr::DT) {
        return true;
    }
    if vr == Vr::UI {
        return false;
    }
    let Some(k) = tag_keyword(tag) else {
        return false;
    };
    [
        "ID",
        "Number",
        "Address",
        "Telephone",
        "Institution",
        "Station",
        "Name",
        "Location",
        "Mail",
        "Issuer",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// The values of a multi-valued string, trimmed.
pub(crate) fn split_values(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\\').map(trim)
}

/// Terms to watch for in one value: the whole value, the written forms of a
/// date, and for person names each component group and component (not single
/// words: "Last Name" must not make "NAME" forbidden). Upper-cased; too-short terms are skipped (see the crate docs).
pub(crate) fn terms_of(value: &[u8], vr: Vr) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |t: &[u8]| {
        let t = trim(t);
        let digits = t.iter().all(|b| b.is_ascii_digit());
        if t.len() >= 3 && !(digits && t.len() < 4) {
            out.push(t.to_ascii_uppercase());
        }
    };
    push(value);
    if vr == Vr::DA {
        for form in dates::written_forms(value) {
            push(&form);
        }
    }
    if vr == Vr::PN {
        for group in value.split(|&b| b == b'=') {
            push(group);
            for part in group.split(|&b| b == b'^') {
                push(part);
            }
        }
    }
    out
}

/// Whether a UID is under the DICOM root (SOP classes, transfer syntaxes, coding
/// schemes, frames of reference of the registry, …): those never change.
pub fn is_registry_uid(uid: &[u8]) -> bool {
    uid.starts_with(b"1.2.840.10008.")
}

/// The fixed dummy for a VR (D): valid for the VR, carries no information.
pub fn dummy<'a>(vr: Vr) -> Value<'a> {
    let text = match &vr.0 {
        b"AE" => "DEIDENTIFIED",
        b"AS" => "000Y",
        b"CS" => "ANONYMIZED",
        b"DA" => "19000101",
        b"DT" => "19000101000000",
        b"TM" => "000000",
        b"DS" | b"IS" => "0",
        b"LO" | b"LT" | b"SH" | b"ST" | b"UC" | b"UT" | b"PN" => "ANONYMIZED",
        b"UR" => "urn:x-dicom-deid:removed",
        b"UI" => "2.25.0",
        _ => {
            let size = vr.fixed_size().unwrap_or(2);
            return Value::Bytes(vec![0u8; size].into());
        }
    };
    text_value(text, vr)
}

fn text_value<'a>(text: &str, vr: Vr) -> Value<'a> {
    let mut b = text.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(vr.padding());
    }
    Value::Bytes(b.into())
}

fn hex16(mac: &[u8; 32]) -> String {
    mac[..8].iter().map(|b| format!("{b:02X}")).collect()
}

/// Private creators at one level: (group, block) → creator text, trimmed.
fn private_creators(ds: &DataSet<'_>) -> HashMap<(u16, u8), String> {
    let mut map = HashMap::new();
    for e in &ds.elements {
        let (g, el) = (group(e.tag), element(e.tag));
        if g % 2 == 1 && (0x0010..=0x00FF).contains(&el) {
            if let Some(b) = e.bytes() {
                map.insert((g, el as u8), String::from_utf8_lossy(trim(b)).into_owned());
            }
        }
    }
    map
}

fn private_creator_of(e: &Element<'_>, creators: &HashMap<(u16, u8), String>) -> Option<String> {
    let (g, el) = (group(e.tag), element(e.tag));
    if g % 2 == 0 {
        return None;
    }
    if (0x0010..=0x00FF).contains(&el) {
        return e
            .bytes()
            .map(|b| String::from_utf8_lossy(trim(b)).into_owned());
    }
    if el >= 0x1000 {
        return creators.get(&(g, (el >> 8) as u8)).cloned();
    }
    None
}

/// Removes private creator elements whose block has no element left.
fn drop_orphan_creators(elements: &mut Vec<Element<'_>>) {
    let used: HashSet<(u16, u8)> = elements
        .iter()
        .filter(|e| group(e.tag) % 2 == 1 && element(e.tag) >= 0x1000)
        .map(|e| (group(e.tag), (element(e.tag) >> 8) as u8))
        .collect();
    elements.retain(|e| {
        let (g, el) = (group(e.tag), element(e.tag));
        !(g % 2 == 1 && (0x0010..=0x00FF).contains(&el)) || used.contains(&(g, el as u8))
    });
}
