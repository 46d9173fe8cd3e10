//! Marker values: one unique, VR-valid value per planted attribute, and the date arithmetic
//! that tests need to check shifted dates.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_deid_wire::Vr;
use dicom_dictionary_std::StandardDataDictionary;

/// The VR of `tag` in the standard dictionary (dicom-dictionary-std), choosing the first
/// alternative where the dictionary gives several (`US or SS` → US, `OB or OW` → OW).
/// `None` for tags the dictionary does not know.
pub fn dictionary_vr(tag: u32) -> Option<Vr> {
    let entry = StandardDataDictionary.by_tag(dicom_core::Tag((tag >> 16) as u16, tag as u16))?;
    let vr = match entry.vr() {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => dicom_core::VR::US,
        _ => dicom_core::VR::OW,
    };
    let text = vr.to_string();
    Vr::from_bytes(text.as_bytes().try_into().ok()?)
}

/// The first day of the marker calendar (1900-01-01) as days since 1970-01-01.
const DAY0: i64 = -25_567;
/// Days between two consecutive date markers: far apart, so that a shifted date of one
/// marker is unlikely to equal another marker.
const DATE_STEP: i64 = 53;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
///
/// Deliberately not shared with `dicom_deid_scrub::dates`: the conformance test
/// checks the engine's date shifts with this independent arithmetic.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a DA value `YYYYMMDD` (also the first 8 characters of a DT), if valid.
pub fn parse_da(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 8 || !b[..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let y: i64 = text[..4].parse().ok()?;
    let m: u32 = text[4..6].parse().ok()?;
    let d: u32 = text[6..8].parse().ok()?;
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// `YYYYMMDD` of a day number.
pub fn format_da(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}")
}

/// What is known about one marker value.
pub(crate) struct MarkerValue {
    pub bytes: Vec<u8>,
    /// Long and distinctive enough to be searched for in raw output bytes.
    pub searchable: bool,
}

/// Everything a marker value is made from.
pub(crate) struct MarkerSeed {
    pub study: usize,
    pub row: usize,
    pub tag: u32,
    /// Unique within one conformance set.
    pub serial: usize,
    /// Append the patient's family name, so that a "clean" has something identifying to remove.
    pub embed_name: bool,
}

/// The patient family name embedded in free-text markers of cleanable attributes.
pub(crate) const EMBED: &str = "MKPATIENT";

fn text(s: String) -> MarkerValue {
    MarkerValue {
        searchable: s.len() >= 6,
        bytes: s.into_bytes(),
    }
}

/// A unique value for `seed`, valid for `vr`.
pub(crate) fn marker_value(vr: Vr, seed: &MarkerSeed) -> MarkerValue {
    let g = seed.tag >> 16;
    let e = seed.tag & 0xFFFF;
    let n = seed.serial;
    assert!(n < 10_000, "marker serials are four digits");
    let core = format!("MK{g:04X}_{e:04X}_{n:04}");
    match &vr.0 {
        b"AE" | b"CS" => text(core),
        b"SH" if seed.embed_name => text(format!("MK{n:04} {EMBED}")),
        b"SH" => text(core),
        b"LO" | b"LT" | b"ST" | b"UT" | b"UC" if seed.embed_name => text(format!("{core} {EMBED}")),
        b"LO" | b"LT" | b"ST" | b"UT" | b"UC" => text(core),
        b"PN" => text(format!("MKPN^{g:04X}_{e:04X}_{n:04}")),
        b"UR" => text(format!("http://mk.invalid/{g:04X}_{e:04X}_{n:04}")),
        b"UI" => text(format!(
            "1.2.826.0.1.3680043.10.999.{}.{}.{n:04}",
            seed.study, seed.row
        )),
        b"DA" => text(format_da(marker_day(n))),
        b"DT" => text(format!("{}121314.{n:06}", format_da(marker_day(n)))),
        b"TM" => text(format!("101112.{n:06}")),
        b"DS" => text(format!("{}.{:03}", 5000 + n, seed.row % 1000)),
        b"IS" => text(format!("{}", 2_100_000_000 + n)),
        b"AS" => MarkerValue {
            bytes: format!("{:03}D", n % 1000).into_bytes(),
            searchable: false,
        },
        b"AT" => {
            let mut b = 0x0011u16.to_le_bytes().to_vec();
            b.extend_from_slice(&(n as u16).to_le_bytes());
            MarkerValue {
                bytes: b,
                searchable: false,
            }
        }
        b"US" => binary(((1000 + n) as u16).to_le_bytes().to_vec()),
        b"SS" => binary((-(1000 + n as i32) as i16).to_le_bytes().to_vec()),
        b"UL" => binary((3_000_000 + n as u32).to_le_bytes().to_vec()),
        b"SL" => binary((-3_000_000 - n as i32).to_le_bytes().to_vec()),
        b"FL" => binary((1000.5f32 + n as f32).to_le_bytes().to_vec()),
        b"FD" => binary((100_000.25f64 + n as f64).to_le_bytes().to_vec()),
        b"SV" => binary((-7_000_000_000i64 - n as i64).to_le_bytes().to_vec()),
        b"UV" => binary((7_000_000_000u64 + n as u64).to_le_bytes().to_vec()),
        // OB OD OF OL OV OW UN: ASCII that shows up in a hex dump, padded to whole 8 bytes.
        _ => {
            let mut b = format!("MKBIN{g:04X}{e:04X}_{n:04}").into_bytes();
            while b.len() % 8 != 0 {
                b.push(b'#');
            }
            MarkerValue {
                bytes: b,
                searchable: true,
            }
        }
    }
}

fn binary(bytes: Vec<u8>) -> MarkerValue {
    MarkerValue {
        searchable: bytes.len() >= 8,
        bytes,
    }
}

fn marker_day(serial: usize) -> i64 {
    DAY0 + 1000 + serial as i64 * DATE_STEP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1900, 1, 1), DAY0);
        assert_eq!(format_da(days_from_civil(2000, 2, 29)), "20000229");
        assert_eq!(parse_da("20000229"), Some(days_from_civil(2000, 2, 29)));
        assert_eq!(parse_da("20010229"), None);
        assert_eq!(parse_da("1973112"), None);
        for z in [-100_000, -1, 0, 1, 59, 60, 10_000, 40_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn dictionary_vrs() {
        assert_eq!(dictionary_vr(0x0010_0010), Some(Vr::PN));
        assert_eq!(dictionary_vr(0x0028_0106), Some(Vr::US));
        assert_eq!(dictionary_vr(0x6000_3000), Some(Vr::OW));
        assert_eq!(dictionary_vr(0x0040_A730), Some(Vr::SQ));
    }

    #[test]
    fn text_markers_fit_their_vr() {
        let seed = MarkerSeed {
            study: 3,
            row: 656,
            tag: 0x300C_0127,
            serial: 9999,
            embed_name: true,
        };
        assert_eq!(marker_value(Vr::CS, &seed).bytes.len(), 16);
        assert!(marker_value(Vr::SH, &seed).bytes.len() <= 16);
        assert!(marker_value(Vr::UI, &seed).bytes.len() <= 64);
        assert!(marker_value(Vr::DS, &seed).bytes.len() <= 16);
        assert!(marker_value(Vr::IS, &seed).bytes.len() <= 12);
        assert!(
            parse_da(std::str::from_utf8(&marker_value(Vr::DA, &seed).bytes).unwrap()).is_some()
        );
        assert_eq!(marker_value(Vr::TM, &seed).bytes, b"101112.009999");
    }
}
