//! The PS3.15 Annex E options that have a column in Table E.1-1.

use std::fmt;
use std::str::FromStr;

use crate::ps315_generated::CID_7050;

/// One option of the Basic Application Level Confidentiality Profile with a column in Table E.1-1.
///
/// The order of the variants is the order of the table's option columns. Clean Pixel Data and
/// Clean Recognizable Visual Features act on pixel data and have no column; they are not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeidOption {
    /// Retain Safe Private Option (113111).
    RetainSafePrivate,
    /// Retain UIDs Option (113110).
    RetainUids,
    /// Retain Device Identity Option (113109).
    RetainDeviceIdentity,
    /// Retain Institution Identity Option (113112).
    RetainInstitutionIdentity,
    /// Retain Patient Characteristics Option (113108).
    RetainPatientCharacteristics,
    /// Retain Longitudinal Temporal Information Full Dates Option (113106).
    RetainLongFullDates,
    /// Retain Longitudinal Temporal Information Modified Dates Option (113107).
    RetainLongModifiedDates,
    /// Clean Descriptors Option (113105).
    CleanDescriptors,
    /// Clean Structured Content Option (113104).
    CleanStructuredContent,
    /// Clean Graphics Option (113103).
    CleanGraphics,
}

impl DeidOption {
    /// Every option, in the order of the table's columns.
    pub const ALL: [DeidOption; 10] = [
        DeidOption::RetainSafePrivate,
        DeidOption::RetainUids,
        DeidOption::RetainDeviceIdentity,
        DeidOption::RetainInstitutionIdentity,
        DeidOption::RetainPatientCharacteristics,
        DeidOption::RetainLongFullDates,
        DeidOption::RetainLongModifiedDates,
        DeidOption::CleanDescriptors,
        DeidOption::CleanStructuredContent,
        DeidOption::CleanGraphics,
    ];

    /// The name used in TOML profiles, e.g. `retain-safe-private`.
    pub const fn name(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "retain-safe-private",
            DeidOption::RetainUids => "retain-uids",
            DeidOption::RetainDeviceIdentity => "retain-device-identity",
            DeidOption::RetainInstitutionIdentity => "retain-institution-identity",
            DeidOption::RetainPatientCharacteristics => "retain-patient-characteristics",
            DeidOption::RetainLongFullDates => "retain-long-full-dates",
            DeidOption::RetainLongModifiedDates => "retain-long-modified-dates",
            DeidOption::CleanDescriptors => "clean-descriptors",
            DeidOption::CleanStructuredContent => "clean-structured-content",
            DeidOption::CleanGraphics => "clean-graphics",
        }
    }

    /// The option's code value in PS3.16 CID 7050 (coding scheme DCM).
    pub const fn cid_code(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "113111",
            DeidOption::RetainUids => "113110",
            DeidOption::RetainDeviceIdentity => "113109",
            DeidOption::RetainInstitutionIdentity => "113112",
            DeidOption::RetainPatientCharacteristics => "113108",
            DeidOption::RetainLongFullDates => "113106",
            DeidOption::RetainLongModifiedDates => "113107",
            DeidOption::CleanDescriptors => "113105",
            DeidOption::CleanStructuredContent => "113104",
            DeidOption::CleanGraphics => "113103",
        }
    }

    /// The option's code meaning in PS3.16 CID 7050, e.g. "Retain UIDs Option".
    pub fn meaning(self) -> &'static str {
        cid_meaning(self.cid_code()).expect("every option has a CID 7050 code")
    }

    /// The index of the option's column among the ten option columns of Table E.1-1
    /// (the index into [`TableRow::options`](crate::TableRow::options)).
    pub const fn column(self) -> usize {
        self as usize
    }
}

/// The code meaning of a CID 7050 code value, if it is one.
pub fn cid_meaning(code_value: &str) -> Option<&'static str> {
    CID_7050
        .iter()
        .find(|c| c.code_value == code_value)
        .map(|c| c.code_meaning)
}

impl fmt::Display for DeidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The text is not the name of an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptionError;

impl fmt::Display for ParseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an option name")
    }
}

impl std::error::Error for ParseOptionError {}

impl FromStr for DeidOption {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeidOption::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or(ParseOptionError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_meanings_come_from_cid_7050() {
        for o in DeidOption::ALL {
            assert_eq!(o.name().parse::<DeidOption>(), Ok(o));
            assert!(o.meaning().ends_with("Option"), "{o}: {}", o.meaning());
        }
        assert_eq!(DeidOption::RetainUids.meaning(), "Retain UIDs Option");
        assert_eq!(
            DeidOption::RetainLongModifiedDates.meaning(),
            "Retain Longitudinal Temporal Information Modified Dates Option"
        );
        assert_eq!("retain-uid".parse::<DeidOption>(), Err(ParseOptionError));
    }

    #[test]
    fn columns_follow_the_table() {
        let columns: Vec<usize> = DeidOption::ALL.iter().map(|o| o.column()).collect();
        assert_eq!(columns, (0..10).collect::<Vec<_>>());
    }
}
