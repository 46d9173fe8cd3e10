//! The action codes of PS3.15 Table E.1-1a and the one [`Action`] each resolves to.

use std::fmt;
use std::str::FromStr;

/// An action code as printed in PS3.15 Table E.1-1 (legend: Table E.1-1a).
///
/// `Display` and `FromStr` use the standard's own spelling, e.g. `X/Z/U*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// `D`: replace with a non-empty dummy value valid for the VR.
    D,
    /// `Z`: replace with an empty value (or a valid dummy value).
    Z,
    /// `X`: remove (a sequence with all its items).
    X,
    /// `K`: keep (a sequence is kept and the profile applied inside its items).
    K,
    /// `C`: clean: replace with values of similar meaning carrying no identifying information.
    C,
    /// `U`: replace the UID with a non-empty UID mapped consistently across the set.
    U,
    /// `Z/D`: Z unless the IOD makes the attribute Type 1, then D.
    ZD,
    /// `X/Z`: X unless the IOD makes the attribute Type 2, then Z.
    XZ,
    /// `X/D`: X unless the IOD makes the attribute Type 1, then D.
    XD,
    /// `X/Z/D`: X, Z if Type 2, D if Type 1.
    XZD,
    /// `X/Z/U*`: X, Z if Type 2; a Type 1 sequence of references is kept with its instance UIDs replaced.
    XZU,
}

impl Code {
    /// Every code, in the order of Table E.1-1a.
    pub const ALL: [Code; 11] = [
        Code::D,
        Code::Z,
        Code::X,
        Code::K,
        Code::C,
        Code::U,
        Code::ZD,
        Code::XZ,
        Code::XD,
        Code::XZD,
        Code::XZU,
    ];

    /// The code as the standard prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::D => "D",
            Code::Z => "Z",
            Code::X => "X",
            Code::K => "K",
            Code::C => "C",
            Code::U => "U",
            Code::ZD => "Z/D",
            Code::XZ => "X/Z",
            Code::XD => "X/D",
            Code::XZD => "X/Z/D",
            Code::XZU => "X/Z/U*",
        }
    }

    /// The one action taken for this code on an element, `is_sequence` when its VR is SQ.
    ///
    /// The IOD type of an attribute is not known here (the same attribute is Type 1 in one
    /// IOD and Type 3 in another), so a combined code resolves to the value that is valid
    /// whatever type the attribute has, and carries no information:
    ///
    /// | code | action |
    /// |---|---|
    /// | `D` | [`Action::Dummy`] |
    /// | `Z` | [`Action::Empty`] |
    /// | `X` | [`Action::Remove`] |
    /// | `K` | [`Action::Keep`], [`Action::KeepRecurse`] for a sequence |
    /// | `C` | [`Action::Clean`] |
    /// | `U` | [`Action::Uid`] |
    /// | `Z/D`, `X/D`, `X/Z/D` | [`Action::Dummy`] |
    /// | `X/Z` | [`Action::Empty`] |
    /// | `X/Z/U*` | [`Action::KeepRecurse`] for a sequence (references kept, their UIDs remapped inside), else [`Action::Empty`] |
    pub const fn action(self, is_sequence: bool) -> Action {
        match self {
            Code::D | Code::ZD | Code::XD | Code::XZD => Action::Dummy,
            Code::Z | Code::XZ => Action::Empty,
            Code::X => Action::Remove,
            Code::K if is_sequence => Action::KeepRecurse,
            Code::K => Action::Keep,
            Code::C => Action::Clean,
            Code::U => Action::Uid,
            Code::XZU if is_sequence => Action::KeepRecurse,
            Code::XZU => Action::Empty,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The text is not one of the codes of Table E.1-1a.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCodeError;

impl fmt::Display for ParseCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an action code (expected one of D Z X K C U Z/D X/Z X/D X/Z/D X/Z/U*)")
    }
}

impl std::error::Error for ParseCodeError {}

impl FromStr for Code {
    type Err = ParseCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(ParseCodeError)
    }
}

/// What scrub does to one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Remove the element (a sequence with all its items).
    Remove,
    /// Replace the value with an empty value.
    Empty,
    /// Replace the value with a non-empty dummy value valid for the VR.
    Dummy,
    /// Keep the value as it is.
    Keep,
    /// Replace the value with one of similar meaning that identifies no one.
    Clean,
    /// Replace the UID with its keyed pseudonym.
    Uid,
    /// Keep the sequence and apply the profile to every element of its items.
    KeepRecurse,
}

impl Action {
    /// A short lower-case name, for tables and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Empty => "empty",
            Action::Dummy => "dummy",
            Action::Keep => "keep",
            Action::Clean => "clean",
            Action::Uid => "uid",
            Action::KeepRecurse => "keep-recurse",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_prints_as_the_standard_and_parses_back() {
        let printed: Vec<String> = Code::ALL.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            printed,
            ["D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"]
        );
        for c in Code::ALL {
            assert_eq!(c.to_string().parse::<Code>(), Ok(c));
        }
    }

    #[test]
    fn malformed_codes_are_rejected() {
        for bad in ["", "x", "XZ", "X/Z/U", "Z/X", " K", "K ", "KEEP"] {
            assert_eq!(bad.parse::<Code>(), Err(ParseCodeError), "{bad:?}");
        }
    }

    #[test]
    fn combined_codes_resolve_to_a_value_valid_for_any_type() {
        use Action::*;
        let expected = [
            (Code::D, Dummy, Dummy),
            (Code::Z, Empty, Empty),
            (Code::X, Remove, Remove),
            (Code::K, Keep, KeepRecurse),
            (Code::C, Clean, Clean),
            (Code::U, Uid, Uid),
            (Code::ZD, Dummy, Dummy),
            (Code::XZ, Empty, Empty),
            (Code::XD, Dummy, Dummy),
            (Code::XZD, Dummy, Dummy),
            (Code::XZU, Empty, KeepRecurse),
        ];
        for (code, plain, sequence) in expected {
            assert_eq!(code.action(false), plain, "{code} on a non-sequence");
            assert_eq!(code.action(true), sequence, "{code} on a sequence");
        }
    }
}
