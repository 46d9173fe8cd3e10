//! RFC 3339 timestamps in UTC, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T16:23:11.042Z` (always
/// 24 characters for years 0000–9999; sub-millisecond parts are truncated).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => {
            // Before 1970: round towards the past, like the clock reading it was.
            let d = e.duration();
            -(d.as_millis() as i128) - i128::from(d.subsec_nanos() % 1_000_000 != 0)
        }
    };
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Whether `s` has the shape [`rfc3339_utc`] writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub(crate) fn is_rfc3339_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i128::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_234_567_890, 0), "2009-02-13T23:31:30.000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.001Z");
        assert_eq!(at(951_868_799, 999), "2000-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_164_800, 500), "2024-02-29T00:00:00.500Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z"); // 2100 is no leap year
        assert_eq!(at(1_795_451_591, 42), "2026-11-23T16:33:11.042Z");
        assert_eq!(at(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn sub_millisecond_parts_are_truncated() {
        let t = UNIX_EPOCH + Duration::new(1, 999_999_999);
        assert_eq!(rfc3339_utc(t), "1970-01-01T00:00:01.999Z");
    }

    #[test]
    fn instants_before_1970() {
        let before = |d: Duration| rfc3339_utc(UNIX_EPOCH - d);
        assert_eq!(before(Duration::from_millis(1)), "1969-12-31T23:59:59.999Z");
        assert_eq!(before(Duration::from_nanos(1)), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            before(Duration::from_secs(86_400)),
            "1969-12-31T00:00:00.000Z"
        );
        assert_eq!(
            before(Duration::from_secs(2_208_988_800)),
            "1900-01-01T00:00:00.000Z"
        );
    }

    /// The inverse (`days_from_civil`) by counting days, for every day of 1600–2400.
    #[test]
    fn every_day_of_eight_centuries() {
        fn leap(y: i128) -> bool {
            (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        }
        let month_len = |y: i128, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // 1600-01-01 is 135140 days before 1970-01-01.
        let mut days = -135_140;
        for y in 1600..2400 {
            for m in 1..=12 {
                for d in 1..=month_len(y, m) {
                    assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn the_shape_check_accepts_what_is_written_and_nothing_else() {
        assert!(is_rfc3339_millis(&rfc3339_utc(SystemTime::now())));
        assert!(is_rfc3339_millis("2026-11-23T16:23:11.042Z"));
        for bad in [
            "",
            "2026-11-23T16:23:11Z",
            "2026-11-23T16:23:11.042+00:00",
            "2026-11-23 16:23:11.042Z",
            "2026-11-23T16:23:11.04xZ",
            "2026-11-23T16:23:11.042\"",
        ] {
            assert!(!is_rfc3339_millis(bad), "{bad}");
        }
    }
}
