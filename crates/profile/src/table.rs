//! The row types of the generated PS3.15 tables and lookups over them.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::code::Code;
use crate::ps315_generated::SAFE_PRIVATE;
use crate::Tag;

/// The tag column of a Table E.1-1 row, also used by tag-mask overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagPattern {
    /// One tag, e.g. `0010,0010`.
    Exact(Tag),
    /// A tag with hex digits left open (`x`), e.g. `60xx,3000` or `50xx,xxxx`:
    /// matches `tag` when `tag & mask == value`.
    Mask {
        /// The fixed digits (open digits are zero).
        value: Tag,
        /// One bits on the fixed digits.
        mask: Tag,
    },
    /// `gggg,eeee`: any element of an odd (private) group.
    AnyPrivate,
}

impl TagPattern {
    /// Whether `tag` matches the pattern.
    pub const fn matches(self, tag: Tag) -> bool {
        match self {
            TagPattern::Exact(t) => t == tag,
            TagPattern::Mask { value, mask } => tag & mask == value,
            TagPattern::AnyPrivate => (tag >> 16) & 1 == 1,
        }
    }

    /// The single tag when the pattern is exact.
    pub const fn exact(self) -> Option<Tag> {
        match self {
            TagPattern::Exact(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TagPattern::Exact(t) => write!(f, "{:04X},{:04X}", t >> 16, t & 0xFFFF),
            TagPattern::Mask { value, mask } => {
                let mut s = String::with_capacity(9);
                for i in (0..8).rev() {
                    if i == 3 {
                        s.push(',');
                    }
                    let shift = i * 4;
                    if (mask >> shift) & 0xF == 0 {
                        s.push('x');
                    } else {
                        let digit = (value >> shift) & 0xF;
                        s.push(char::from_digit(digit, 16).unwrap().to_ascii_uppercase());
                    }
                }
                f.pad(&s)
            }
            TagPattern::AnyPrivate => f.pad("gggg,eeee"),
        }
    }
}

/// The text is not a tag (`gggg,eeee` in hex, `x` for an open digit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTagError;

impl fmt::Display for ParseTagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a tag (expected GGGG,EEEE in hex, x for an open digit, e.g. 0010,0010 or 60xx,3000)")
    }
}

impl std::error::Error for ParseTagError {}

impl FromStr for TagPattern {
    type Err = ParseTagError;

    /// Parses `GGGG,EEEE` (hex, any case, optional parentheses), `x` for an open digit,
    /// and `gggg,eeee` for any private element.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(s);
        if s.eq_ignore_ascii_case("gggg,eeee") {
            return Ok(TagPattern::AnyPrivate);
        }
        let (g, e) = s.split_once(',').ok_or(ParseTagError)?;
        if g.len() != 4 || e.len() != 4 {
            return Err(ParseTagError);
        }
        let mut value: Tag = 0;
        let mut mask: Tag = 0;
        for c in g.chars().chain(e.chars()) {
            value <<= 4;
            mask <<= 4;
            if c == 'x' || c == 'X' {
                continue;
            }
            value |= c.to_digit(16).ok_or(ParseTagError)?;
            mask |= 0xF;
        }
        Ok(if mask == 0xFFFF_FFFF {
            TagPattern::Exact(value)
        } else {
            TagPattern::Mask { value, mask }
        })
    }
}

/// Parses an exact tag `GGGG,EEEE` (hex, optional parentheses).
pub fn parse_tag(s: &str) -> Option<Tag> {
    s.parse::<TagPattern>().ok().and_then(TagPattern::exact)
}

/// One row of PS3.15 Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRow {
    /// The attribute's tag or tag pattern.
    pub pattern: TagPattern,
    /// The attribute name as the table prints it.
    pub name: &'static str,
    /// "Retd." column: retired in PS3.6.
    pub retired: bool,
    /// "In Std. Comp. IOD" column: used in a standard composite IOD (PS3.3).
    pub in_std_iod: bool,
    /// The Basic Profile action.
    pub basic: Code,
    /// The option columns, indexed by [`DeidOption::column`](crate::DeidOption::column);
    /// `None` leaves the Basic Profile action unchanged.
    pub options: [Option<Code>; 10],
}

/// One row of PS3.15 Table E.3.10-1 "Safe Private Attributes".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafePrivateRow {
    /// The Private Creator value that reserves the block.
    pub creator: &'static str,
    /// The (odd) group.
    pub group: u16,
    /// The low byte of the element (`xxEE`): the offset inside the reserved block.
    pub element_offset: u8,
    /// The VR, empty where the standard gives none.
    pub vr: &'static str,
    /// The VM.
    pub vm: &'static str,
    /// The meaning.
    pub meaning: &'static str,
}

/// One code of PS3.16 CID 7050 "De-identification Method".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidCode {
    /// Code value, e.g. `113100`.
    pub code_value: &'static str,
    /// Coding scheme designator (`DCM`).
    pub scheme: &'static str,
    /// Code meaning.
    pub code_meaning: &'static str,
}

/// (group, creator, offset), sorted, for binary search.
fn safe_index() -> &'static [(u16, &'static str, u8)] {
    static INDEX: OnceLock<Vec<(u16, &'static str, u8)>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut v: Vec<_> = SAFE_PRIVATE
            .iter()
            .map(|r| (r.group, r.creator, r.element_offset))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

/// Trims the padding of a Private Creator value (spaces and NULs, both ends).
pub(crate) fn trim_creator(creator: &str) -> &str {
    creator.trim_matches(|c| c == ' ' || c == '\0')
}

/// Whether Table E.3.10-1 lists the element at `element_offset` (the low byte of `xxEE`) of the
/// block reserved by `creator` in `group` as safe. The creator must match exactly after
/// trimming its padding.
pub fn is_safe_private(group: u16, creator: &str, element_offset: u8) -> bool {
    let creator = trim_creator(creator);
    safe_index()
        .binary_search_by(|&(g, c, e)| (g, c, e).cmp(&(group, creator, element_offset)))
        .is_ok()
}

/// Whether Table E.3.10-1 lists at least one safe element for `creator` in `group`.
pub fn has_safe_private(group: u16, creator: &str) -> bool {
    let creator = trim_creator(creator);
    let index = safe_index();
    let at = index.partition_point(|&(g, c, _)| (g, c) < (group, creator));
    index
        .get(at)
        .is_some_and(|&(g, c, _)| g == group && c == creator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_print() {
        for (text, printed) in [
            ("0010,0010", "0010,0010"),
            ("(0010,0010)", "0010,0010"),
            ("300c,0127", "300C,0127"),
            ("60xx,3000", "60xx,3000"),
            ("50xx,xxxx", "50xx,xxxx"),
            ("gggg,eeee", "gggg,eeee"),
        ] {
            let p: TagPattern = text.parse().unwrap();
            assert_eq!(p.to_string(), printed);
        }
        for bad in [
            "0010",
            "0010,001",
            "001G,0010",
            "0010;0010",
            "",
            "00100,010",
        ] {
            assert_eq!(bad.parse::<TagPattern>(), Err(ParseTagError), "{bad:?}");
        }
    }

    #[test]
    fn masks_match_repeating_groups() {
        let overlay: TagPattern = "60xx,3000".parse().unwrap();
        assert!(overlay.matches(0x6000_3000));
        assert!(overlay.matches(0x601E_3000));
        assert!(!overlay.matches(0x6000_4000));
        assert!(!overlay.matches(0x7000_3000));
        let curve: TagPattern = "50xx,xxxx".parse().unwrap();
        assert!(curve.matches(0x5002_0030));
        assert!(!curve.matches(0x6002_0030));
        assert!(TagPattern::AnyPrivate.matches(0x0029_1010));
        assert!(!TagPattern::AnyPrivate.matches(0x0028_1010));
    }

    #[test]
    fn safe_private_lookup() {
        assert!(is_safe_private(0x7053, "Philips PET Private Group", 0x00));
        assert!(is_safe_private(0x7053, "Philips PET Private Group  ", 0x09));
        assert!(!is_safe_private(0x7053, "Philips PET Private Group", 0x55));
        assert!(!is_safe_private(0x7053, "philips pet private group", 0x00));
        assert!(!is_safe_private(0x7055, "Philips PET Private Group", 0x00));
        // Printed in lower case in the table: 2001,xx0a.
        assert!(is_safe_private(0x2001, "Philips Imaging DD 001", 0x0A));
        assert!(has_safe_private(0x7053, "Philips PET Private Group"));
        assert!(!has_safe_private(0x0029, "SIEMENS CSA HEADER"));
    }
}
