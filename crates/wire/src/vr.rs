//! Value representations, as the two ASCII bytes of the standard.

use std::fmt;

/// A value representation: the two upper-case letters of PS3.5 Table 6.2-1.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vr(pub [u8; 2]);

macro_rules! vrs {
    ($($name:ident),* $(,)?) => {
        impl Vr {
            $(
                #[allow(missing_docs)]
                pub const $name: Vr = Vr(*stringify!($name).as_bytes().first_chunk::<2>().unwrap());
            )*
            /// Every VR defined by PS3.5.
            pub const ALL: &'static [Vr] = &[$(Vr::$name),*];
        }
    };
}

vrs!(
    AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST,
    SV, TM, UC, UI, UL, UN, UR, US, UT, UV,
);

impl Vr {
    /// The VR for two bytes read from an explicit VR header, if they name one.
    pub fn from_bytes(b: [u8; 2]) -> Option<Vr> {
        let vr = Vr(b);
        Vr::ALL.contains(&vr).then_some(vr)
    }

    /// Whether explicit VR headers of this VR carry a 4-byte length (after two
    /// reserved bytes) rather than a 2-byte one.
    pub fn has_long_length(self) -> bool {
        matches!(
            &self.0,
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        )
    }

    /// Whether values of this VR are character strings.
    pub fn is_string(self) -> bool {
        matches!(
            &self.0,
            b"AE"
                | b"AS"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"ST"
                | b"TM"
                | b"UC"
                | b"UI"
                | b"UR"
                | b"UT"
        )
    }

    /// Whether values of this VR are free text a person typed (may carry names).
    pub fn is_free_text(self) -> bool {
        matches!(
            &self.0,
            b"LO" | b"LT" | b"PN" | b"SH" | b"ST" | b"UC" | b"UT"
        )
    }

    /// Whether this is a date or time VR.
    pub fn is_temporal(self) -> bool {
        matches!(&self.0, b"DA" | b"DT" | b"TM")
    }

    /// Byte used to pad a value to even length: NUL for UI and binary VRs, space
    /// for text.
    pub fn padding(self) -> u8 {
        if self.is_string() && self != Vr::UI {
            b' '
        } else {
            0
        }
    }

    /// The VR as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Size in bytes of one value of a fixed-size binary VR.
    pub fn fixed_size(self) -> Option<usize> {
        match &self.0 {
            b"SS" | b"US" => Some(2),
            b"AT" | b"FL" | b"SL" | b"UL" => Some(4),
            b"FD" | b"SV" | b"UV" => Some(8),
            _ => None,
        }
    }
}

impl fmt::Debug for Vr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Vr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_vrs() {
        assert_eq!(Vr::from_bytes(*b"PN"), Some(Vr::PN));
        assert_eq!(Vr::from_bytes(*b"ZZ"), None);
        assert_eq!(Vr::from_bytes([0, 0]), None);
        assert!(Vr::OB.has_long_length());
        assert!(!Vr::LO.has_long_length());
        assert_eq!(Vr::UI.padding(), 0);
        assert_eq!(Vr::LO.padding(), b' ');
        assert_eq!(Vr::ALL.len(), 34);
    }
}
