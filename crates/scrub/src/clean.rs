//! Cleaning free text (the C action on descriptors, comments and structured
//! content): what "clean" means here, exactly.
//!
//! 1. Every *identifying value of the same instance* is blanked where it occurs as
//!    a whole token (bounded by non-alphanumerics), case-insensitively. The values
//!    are those of attributes the profile removes or replaces that name a person
//!    (PN, each name component of 3+ characters), a date (DA/DT, in DICOM form and
//!    the written forms of [`crate::dates::written_forms`]), or an ID, number,
//!    address, telephone, institution, station, location or issuer.
//! 2. Anything that looks like a date is blanked too: `YYYYMMDD` with a plausible
//!    year (1900–2099), month and day, and digit groups separated by `.`, `/` or `-`
//!    shaped like a date (`2024-03-01`, `01/03/2024`, `1.3.24`).
//!
//! Blanking overwrites each character with `*` (with `X` in a CS value, whose
//! character set has no `*`), so the length, and hence validity for the VR, is
//! unchanged, and a reader sees that something was taken out.

use dicom_deid_wire::Vr;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Returns `text` with identifying terms (upper-cased) and date-like tokens blanked.
pub fn clean_text(text: &[u8], vr: Vr, terms: &[Vec<u8>]) -> Vec<u8> {
    let blank = if vr == Vr::CS { b'X' } else { b'*' };
    let upper = text.to_ascii_uppercase();
    let mut out = text.to_vec();
    for term in terms {
        for start in find_tokens(&upper, term) {
            out[start..start + term.len()].fill(blank);
        }
    }
    blank_dates(&mut out, blank);
    out
}

/// Start offsets of whole-token occurrences of `term` in `hay` (both upper-cased).
pub fn find_tokens(hay: &[u8], term: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    if term.is_empty() || term.len() > hay.len() {
        return found;
    }
    let mut i = 0;
    while i + term.len() <= hay.len() {
        if &hay[i..i + term.len()] == term {
            let before = i == 0 || !is_word(hay[i - 1]) || !is_word(term[0]);
            let end = i + term.len();
            let after = end == hay.len() || !is_word(hay[end]) || !is_word(term[term.len() - 1]);
            if before && after {
                found.push(i);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Whether `hay` contains `term` as a whole token.
pub fn contains_token(hay: &[u8], term: &[u8]) -> bool {
    !find_tokens(hay, term).is_empty()
}

fn blank_dates(text: &mut [u8], blank: u8) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        if !text[i].is_ascii_digit() || (i > 0 && is_word(text[i - 1])) {
            i += 1;
            continue;
        }
        // Digit groups joined by one kind of separator.
        let mut groups = Vec::new();
        let mut j = i;
        let mut sep = None;
        loop {
            let start = j;
            while j < n && text[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(j - start);
            if j < n
                && matches!(text[j], b'.' | b'/' | b'-')
                && sep.is_none_or(|s| s == text[j])
                && j + 1 < n
                && text[j + 1].is_ascii_digit()
                && groups.len() < 3
            {
                sep = Some(text[j]);
                j += 1;
                continue;
            }
            break;
        }
        let bounded = j == n || !is_word(text[j]);
        let date_like = bounded
            && match groups.as_slice() {
                [8] => plausible_yyyymmdd(&text[i..j]),
                [4, a, b] => (1..=2).contains(a) && (1..=2).contains(b),
                [a, b, c] => (1..=2).contains(a) && (1..=2).contains(b) && (*c == 2 || *c == 4),
                _ => false,
            };
        if date_like {
            text[i..j]
                .iter_mut()
                .filter(|b| b.is_ascii_digit())
                .for_each(|b| *b = blank);
        }
        i = j.max(i + 1);
    }
}

fn plausible_yyyymmdd(d: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| {
        std::str::from_utf8(&d[r])
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (1900..=2099).contains(&num(0..4))
        && (1..=12).contains(&num(4..6))
        && (1..=31).contains(&num(6..8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(t: &[&str]) -> Vec<Vec<u8>> {
        t.iter()
            .map(|s| s.as_bytes().to_ascii_uppercase())
            .collect()
    }

    #[test]
    fn blanks_identifying_tokens_case_insensitively() {
        let out = clean_text(
            b"CT head for Jane Doe, MRN PID-0001",
            Vr::LO,
            &terms(&["jane", "doe", "PID-0001"]),
        );
        assert_eq!(out, b"CT head for **** ***, MRN ********");
    }

    #[test]
    fn only_whole_tokens() {
        let out = clean_text(b"Doexyz Doe", Vr::LO, &terms(&["doe"]));
        assert_eq!(out, b"Doexyz ***");
    }

    #[test]
    fn blanks_date_like_tokens() {
        assert_eq!(
            clean_text(b"seen 2024-03-01 and 01/03/2024", Vr::LT, &[]),
            b"seen ****-**-** and **/**/****"
        );
        assert_eq!(
            clean_text(b"exam 20240301 v1.2", Vr::LT, &[]),
            b"exam ******** v1.2"
        );
        assert_eq!(
            clean_text(b"series 12345678", Vr::LT, &[]),
            b"series 12345678",
            "not a plausible date"
        );
    }

    #[test]
    fn keeps_length_and_cs_charset() {
        let out = clean_text(b"HOSP A", Vr::CS, &terms(&["hosp"]));
        assert_eq!(out, b"XXXX A");
    }
}
