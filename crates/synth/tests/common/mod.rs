//! Helpers shared by the synth tests: reading files and finding markers in them.
#![allow(dead_code)]

use dicom_deid_synth::{Marker, PathStep};
use dicom_deid_wire::{read_file, DataSet, Element, Limits, Value};

/// Parses a Part 10 file with dicom-deid-wire.
pub fn parse(bytes: &[u8]) -> DataSet<'_> {
    let raw = read_file(bytes, &Limits::default()).expect("a Part 10 file");
    raw.parse(&Limits::default()).expect("a parseable data set")
}

/// The item at `path` (every step's sequence and item must exist).
pub fn item_at<'d, 'a>(ds: &'d DataSet<'a>, path: &[PathStep]) -> Option<&'d DataSet<'a>> {
    let mut at = ds;
    for step in path {
        match &at.get(step.tag)?.value {
            Value::Seq(items) => at = items.get(step.item)?,
            _ => return None,
        }
    }
    Some(at)
}

/// The element a marker was planted as, if it is still there.
pub fn find<'d, 'a>(ds: &'d DataSet<'a>, m: &Marker) -> Option<&'d Element<'a>> {
    item_at(ds, &m.path)?.get(m.tag)
}

/// A value without DICOM padding (trailing NUL or space).
pub fn unpadded(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && (bytes[end - 1] == 0 || bytes[end - 1] == b' ') {
        end -= 1;
    }
    &bytes[..end]
}

/// A value as compared with its marker: string values without padding, binary ones as they are.
pub fn value_of(vr: dicom_deid_wire::Vr, bytes: &[u8]) -> &[u8] {
    if vr.is_string() {
        unpadded(bytes)
    } else {
        bytes
    }
}

/// Whether `needle` occurs in `hay` as a token: for values that look like numbers, dates or
/// UIDs, a match inside a longer run of digits and dots does not count.
pub fn contains_token(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    let numeric = needle
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b'-');
    let glued = |b: u8| b.is_ascii_digit() || b == b'.';
    let mut from = 0;
    while let Some(pos) = hay[from..].windows(needle.len()).position(|w| w == needle) {
        let at = from + pos;
        let end = at + needle.len();
        let before = at.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(end).copied();
        if !numeric || (!before.is_some_and(glued) && !after.is_some_and(glued)) {
            return true;
        }
        from = at + 1;
    }
    false
}
