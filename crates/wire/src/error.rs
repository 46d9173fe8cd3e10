//! Errors of the reader and writer. Each says where (tag, byte offset), never
//! what the value was.

use snafu::Snafu;

/// What went wrong reading or writing a DICOM stream.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// Not DICOM: no DICM prefix and no recognisable data set at the start
    #[snafu(display("not DICOM: no DICM prefix and no recognisable data set at the start"))]
    NotDicom,
    /// A file meta without a transfer syntax, and a data set we cannot recognise
    #[snafu(display(
        "the file meta has no Transfer Syntax UID and the data set encoding is not recognisable"
    ))]
    NoSyntax,
    /// The stream ends inside an element
    #[snafu(display(
        "truncated: {what} at byte {offset} needs {needed} bytes, {available} remain"
    ))]
    Truncated {
        /// What was being read.
        what: String,
        /// Byte offset in the data set (or file, for the meta).
        offset: usize,
        /// Bytes the header asks for.
        needed: u64,
        /// Bytes actually left.
        available: usize,
    },
    /// An explicit VR header names no VR
    #[snafu(display(
        "invalid VR bytes {b0:#04x} {b1:#04x} in the header of {tag} at byte {offset}"
    ))]
    InvalidVr {
        /// The element.
        tag: String,
        /// First byte.
        b0: u8,
        /// Second byte.
        b1: u8,
        /// Where.
        offset: usize,
    },
    /// Sequences nested deeper than the limit
    #[snafu(display("sequence nesting deeper than {limit} levels at {tag}"))]
    TooDeep {
        /// The sequence that went too deep.
        tag: String,
        /// The configured limit.
        limit: usize,
    },
    /// A structural error in sequences, items or fragments
    #[snafu(display("malformed {what} in {tag} at byte {offset}"))]
    Malformed {
        /// What was wrong.
        what: &'static str,
        /// The enclosing element.
        tag: String,
        /// Where.
        offset: usize,
    },
    /// A transfer syntax this reader cannot parse
    #[snafu(display("unsupported transfer syntax {uid}"))]
    UnsupportedSyntax {
        /// The transfer syntax UID (a registry value, never patient data).
        uid: String,
    },
    /// The deflated data set could not be inflated
    #[snafu(display("deflated data set: {reason}"))]
    Inflate {
        /// Why.
        reason: String,
    },
    /// A value too long for the 2-byte length of its VR
    #[snafu(display("value of {tag} is {len} bytes, too long for VR {vr}"))]
    ValueTooLong {
        /// Element.
        tag: String,
        /// VR.
        vr: String,
        /// Length.
        len: usize,
    },
}

/// Result with the wire [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
