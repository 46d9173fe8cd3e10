//! A small, strict DICOM Part 10 reader and writer for de-identification.
//!
//! `dicom-deid-wire` turns the bytes of a DICOM file into a tree of elements that
//! *borrows* from those bytes, and writes such a tree back out. It is built for a
//! pipeline that changes a few header attributes and must leave everything else
//! (pixel data above all) byte for byte as it came:
//!
//! - **Zero copy.** Primitive values and pixel data fragments are slices of the
//!   input until something replaces them ([`Value::Bytes`] holds a `Cow`).
//! - **Bounded.** Nesting deeper than [`Limits::max_depth`] is rejected before it
//!   can exhaust the stack, a length field is checked against the bytes that are
//!   really there before anything is sliced, and nothing is ever allocated from a
//!   length read in the header. Deflated data sets inflate up to a cap.
//! - **Where, never what.** Errors name a tag and a byte offset, never a value.
//! - **Streamable.** [`PixelDataScan`] finds the top-level Pixel Data element header in
//!   a stream that is still arriving, so a receiver can handle the header before the
//!   pixels are in.
//!
//! What it does not do: interpret values (character sets, numbers), decode pixel
//! data, or know anything about de-identification. The data dictionary of dicom-rs
//! supplies VRs for implicit VR data sets.
//!
//! ```
//! use dicom_deid_wire::{read_file, write_file, FileMetaOut, Syntax, Limits};
//! # let bytes = dicom_deid_wire::testing::minimal_file();
//! let file = read_file(&bytes, &Limits::default()).unwrap();
//! let parsed = file.parse(&Limits::default()).unwrap();
//! let mut out = Vec::new();
//! let meta = FileMetaOut::for_dataset(&parsed, &file.transfer_syntax_uid, "1.2.3", "TEST");
//! write_file(&mut out, &meta, &parsed, file.syntax).unwrap();
//! ```

mod error;
mod read;
mod scan;
pub mod tags;
pub mod testing;
mod vr;
mod write;

pub use error::{Error, Result};
pub use read::{parse_dataset, read_file, sniff, FileMetaIn, RawFile};
pub use scan::{find_pixel_data, PixelDataAt, PixelDataHeader, PixelDataScan};
pub use vr::Vr;
pub use write::{encode_dataset, write_file, FileMetaOut};

use std::borrow::Cow;

/// A DICOM tag, `(group << 16) | element`.
pub type Tag = u32;

/// Formats a tag the way DICOM people read it: `(0010,0010)`.
pub fn tag_str(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

/// The group number of a tag.
pub const fn group(tag: Tag) -> u16 {
    (tag >> 16) as u16
}

/// The element number of a tag.
pub const fn element(tag: Tag) -> u16 {
    (tag & 0xFFFF) as u16
}

/// How the data set is encoded. Compressed pixel data uses explicit VR little
/// endian with encapsulated pixel data, which needs nothing else here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// VR written in every element header.
    pub explicit: bool,
    /// Retired Explicit VR Big Endian.
    pub big_endian: bool,
    /// The data set (not the meta) is deflated on disk.
    pub deflated: bool,
}

impl Syntax {
    /// Implicit VR Little Endian.
    pub const IMPLICIT_LE: Syntax = Syntax {
        explicit: false,
        big_endian: false,
        deflated: false,
    };
    /// Explicit VR Little Endian (and every encapsulated syntax).
    pub const EXPLICIT_LE: Syntax = Syntax {
        explicit: true,
        big_endian: false,
        deflated: false,
    };
    /// Explicit VR Big Endian (retired).
    pub const EXPLICIT_BE: Syntax = Syntax {
        explicit: true,
        big_endian: true,
        deflated: false,
    };
    /// Deflated Explicit VR Little Endian.
    pub const DEFLATED_LE: Syntax = Syntax {
        explicit: true,
        big_endian: false,
        deflated: true,
    };

    /// The encoding of the data set for a transfer syntax UID, or `None` when we
    /// do not know it (a private transfer syntax).
    pub fn from_uid(uid: &str) -> Option<Syntax> {
        match uid {
            "1.2.840.10008.1.2" => Some(Self::IMPLICIT_LE),
            "1.2.840.10008.1.2.1" => Some(Self::EXPLICIT_LE),
            "1.2.840.10008.1.2.2" => Some(Self::EXPLICIT_BE),
            "1.2.840.10008.1.2.1.99" => Some(Self::DEFLATED_LE),
            // Encapsulated (compressed, or encapsulated uncompressed) syntaxes and
            // the video syntaxes all use explicit VR little endian for the data set.
            u if u.starts_with("1.2.840.10008.1.2.4.")
                || u == "1.2.840.10008.1.2.5"
                || u == "1.2.840.10008.1.2.1.98" =>
            {
                Some(Self::EXPLICIT_LE)
            }
            _ => None,
        }
    }

    /// The transfer syntax UID of an uncompressed syntax (used when the input had
    /// no file meta and we had to sniff its encoding).
    pub fn native_uid(self) -> &'static str {
        match (self.explicit, self.big_endian, self.deflated) {
            (false, _, _) => "1.2.840.10008.1.2",
            (true, true, _) => "1.2.840.10008.1.2.2",
            (true, false, true) => "1.2.840.10008.1.2.1.99",
            (true, false, false) => "1.2.840.10008.1.2.1",
        }
    }
}

/// Resource limits applied while parsing untrusted input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest sequence nesting accepted (top level items are depth 1).
    pub max_depth: usize,
    /// Largest inflated size of a deflated data set, in bytes.
    pub max_inflated: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_inflated: 2 << 30,
        }
    }
}

/// An ordered list of elements: the top level data set or one sequence item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataSet<'a> {
    /// Elements in the order they were read (ascending tags in a valid file).
    pub elements: Vec<Element<'a>>,
}

/// One data element.
#[derive(Debug, Clone, PartialEq)]
pub struct Element<'a> {
    /// The tag.
    pub tag: Tag,
    /// The VR as read (explicit) or looked up (implicit; `UN` when unknown).
    pub vr: Vr,
    /// The value.
    pub value: Value<'a>,
}

/// The value of an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A primitive value, bytes exactly as stored (file byte order, padding kept).
    Bytes(Cow<'a, [u8]>),
    /// A sequence of items. Sequences read from `UN` elements (implicit VR little
    /// endian inside, PS3.5 6.2.2) are parsed too, and written back as `SQ`.
    Seq(Vec<DataSet<'a>>),
    /// Encapsulated pixel data: the basic offset table item followed by the
    /// fragments, each kept as stored.
    Fragments(Vec<Cow<'a, [u8]>>),
}

impl<'a> Element<'a> {
    /// A primitive element.
    pub fn new(tag: Tag, vr: Vr, bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Element {
            tag,
            vr,
            value: Value::Bytes(bytes.into()),
        }
    }

    /// A text element; pads to even length as the VR requires.
    pub fn text(tag: Tag, vr: Vr, text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        if bytes.len() % 2 == 1 {
            bytes.push(vr.padding());
        }
        Element::new(tag, vr, bytes)
    }

    /// The raw bytes of a primitive value, if it is one.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value as text with padding and surrounding spaces removed, when it is a
    /// primitive value of a string VR. Bytes that are not UTF-8 are left to the
    /// caller ([`Element::bytes`]).
    pub fn trimmed_str(&self) -> Option<&str> {
        if !self.vr.is_string() {
            return None;
        }
        std::str::from_utf8(trim(self.bytes()?)).ok()
    }
}

/// Strips leading spaces and trailing spaces and NULs (DICOM padding).
pub fn trim(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |p| p + 1);
    let start = bytes[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    &bytes[start..end]
}

impl<'a> DataSet<'a> {
    /// The element with this tag at this level.
    pub fn get(&self, tag: Tag) -> Option<&Element<'a>> {
        self.elements.iter().find(|e| e.tag == tag)
    }

    /// The mutable element with this tag at this level.
    pub fn get_mut(&mut self, tag: Tag) -> Option<&mut Element<'a>> {
        self.elements.iter_mut().find(|e| e.tag == tag)
    }

    /// The trimmed text value of an element at this level.
    pub fn str(&self, tag: Tag) -> Option<&str> {
        self.get(tag).and_then(Element::trimmed_str)
    }

    /// Inserts or replaces an element, keeping tags in ascending order.
    pub fn put(&mut self, element: Element<'a>) {
        match self.elements.binary_search_by_key(&element.tag, |e| e.tag) {
            Ok(i) => self.elements[i] = element,
            Err(i) => self.elements.insert(i, element),
        }
    }

    /// Removes the element with this tag, returning it.
    pub fn remove(&mut self, tag: Tag) -> Option<Element<'a>> {
        let i = self.elements.iter().position(|e| e.tag == tag)?;
        Some(self.elements.remove(i))
    }

    /// Sorts the elements of this level by tag (stable, so duplicates keep order).
    pub fn sort(&mut self) {
        if !self.elements.windows(2).all(|w| w[0].tag <= w[1].tag) {
            self.elements.sort_by_key(|e| e.tag);
        }
    }
}
