//! Date arithmetic for the Retain Longitudinal Temporal Information with Modified
//! Dates option: whole-day shifts of DA and DT values, in the proleptic Gregorian
//! calendar, and the written forms of a date that cleaning looks for.

use dicom_deid_wire::{trim, Vr};

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses `YYYYMMDD` (or the retired `YYYY.MM.DD`) into a valid date.
pub fn parse_da(v: &[u8]) -> Option<(i64, u32, u32)> {
    let (y, m, d) = match v.len() {
        8 => (digits(&v[0..4])?, digits(&v[4..6])?, digits(&v[6..8])?),
        10 if v[4] == b'.' && v[7] == b'.' => {
            (digits(&v[0..4])?, digits(&v[5..7])?, digits(&v[8..10])?)
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&m)
        && d >= 1
        && civil_from_days(days_from_civil(y as i64, m, d)) == (y as i64, m, d);
    valid.then_some((y as i64, m, d))
}

fn shift_date(v: &[u8], days: i64) -> Option<String> {
    let (y, m, d) = parse_da(v)?;
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) + days);
    (0..=9999)
        .contains(&y)
        .then(|| format!("{y:04}{m:02}{d:02}"))
}

/// Shifts every value of a DA or DT element by `days`. DT keeps its time, fraction
/// and offset; a DT with only a year or year and month is shifted as if it were the
/// first day of that period and keeps its precision. `None` when a value is not a
/// valid date (the caller then writes a dummy rather than keep it).
pub fn shift_value(bytes: &[u8], vr: Vr, days: i64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    for (i, v) in bytes.split(|&b| b == b'\\').map(trim).enumerate() {
        if i > 0 {
            out.push(b'\\');
        }
        if v.is_empty() {
            continue;
        }
        match vr {
            Vr::DA => out.extend_from_slice(shift_date(v, days)?.as_bytes()),
            _ => {
                // DT: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]
                let date_len = v.iter().take(8).take_while(|b| b.is_ascii_digit()).count();
                let (date, rest) = v.split_at(date_len);
                let full = match date.len() {
                    4 => [date, b"0101"].concat(),
                    6 => [date, b"01"].concat(),
                    8 => date.to_vec(),
                    _ => return None,
                };
                let shifted = shift_date(&full, days)?;
                out.extend_from_slice(&shifted.as_bytes()[..date.len()]);
                out.extend_from_slice(rest);
            }
        }
    }
    if out.len() % 2 == 1 {
        out.push(b' ');
    }
    Some(out)
}

/// Ways a date is commonly written in free text: ISO, with dots and slashes, day
/// first and month first.
pub fn written_forms(v: &[u8]) -> Vec<Vec<u8>> {
    let Some((y, m, d)) = parse_da(trim(v)) else {
        return Vec::new();
    };
    [
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{y:04}/{m:02}/{d:02}"),
        format!("{y:04}.{m:02}.{d:02}"),
        format!("{d:02}/{m:02}/{y:04}"),
        format!("{m:02}/{d:02}/{y:04}"),
        format!("{d:02}.{m:02}.{y:04}"),
        format!("{d:02}-{m:02}-{y:04}"),
        format!("{m:02}-{d:02}-{y:04}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_centuries() {
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            civil_from_days(days_from_civil(2000, 2, 29) + 1),
            (2000, 3, 1)
        );
    }

    #[test]
    fn shifts_da_and_keeps_intervals() {
        let a = shift_value(b"20240301", Vr::DA, -400).unwrap();
        let b = shift_value(b"20240228", Vr::DA, -400).unwrap();
        let (ya, ma, da) = parse_da(&a).unwrap();
        let (yb, mb, db) = parse_da(&b).unwrap();
        assert_eq!(
            days_from_civil(ya, ma, da) - days_from_civil(yb, mb, db),
            2,
            "a leap day lies between"
        );
        assert_eq!(
            shift_value(b"20240301\\20240302", Vr::DA, 1).unwrap(),
            b"20240302\\20240303 " // padded to even length
        );
        assert_eq!(shift_value(b"1999.12.31", Vr::DA, 1).unwrap(), b"20000101");
        assert!(shift_value(b"20241301", Vr::DA, 1).is_none(), "month 13");
        assert!(shift_value(b"2024", Vr::DA, 1).is_none());
        assert_eq!(shift_value(b"", Vr::DA, 5).unwrap(), b"");
    }

    #[test]
    fn shifts_dt_keeping_time_and_precision() {
        assert_eq!(
            shift_value(b"20240301123000.5+0100", Vr::DT, -1).unwrap(),
            b"20240229123000.5+0100 "
        );
        assert_eq!(shift_value(b"2024", Vr::DT, -1).unwrap(), b"2023");
        assert_eq!(shift_value(b"202403", Vr::DT, -1).unwrap(), b"202402");
        assert!(shift_value(b"20", Vr::DT, 1).is_none());
    }

    #[test]
    fn written_forms_of_a_date() {
        let forms = written_forms(b"19731121");
        assert!(forms.contains(&b"1973-11-21".to_vec()));
        assert!(forms.contains(&b"21.11.1973".to_vec()));
        assert!(forms.contains(&b"11/21/1973".to_vec()));
        assert!(written_forms(b"not a date").is_empty());
    }
}
