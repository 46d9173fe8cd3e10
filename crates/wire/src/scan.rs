//! Finding the top-level Pixel Data element in a Part 10 stream that is still arriving.

use crate::error::Error;
use crate::read::{meta_start, read_file, read_meta, syntax_settled, Parser, UNDEFINED};
use crate::tags::*;
use crate::{Limits, Syntax, Vr};

/// Where the top-level Pixel Data element (7FE0,0010) of a stream sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelDataHeader {
    /// Offset of its element header (the tag) from the start of the stream.
    pub header_start: usize,
    /// Offset of its first value byte: `stream[..value_start]` is everything up to and
    /// including the element header.
    pub value_start: usize,
    /// The defined length of the value, in bytes.
    pub value_len: u64,
    /// The encoding of the data set; the length field (the 4 bytes before
    /// `value_start`) is in its byte order.
    pub syntax: Syntax,
}

impl PixelDataHeader {
    /// Writes `len` into the length field of this element header in `stream` (the 4 bytes
    /// before the value, in the data set's byte order): 0 to make the head of an instance
    /// whole with an empty value, or the real length back into an output made from that.
    pub fn set_len(&self, stream: &mut [u8], len: u32) {
        let field = if self.syntax.big_endian {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        };
        stream[self.value_start - 4..self.value_start].copy_from_slice(&field);
    }
}

/// What a prefix of a Part 10 stream says about its top-level Pixel Data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelDataAt {
    /// Not known yet: the prefix ends before the element header of Pixel Data has
    /// arrived (or before something that decides whether it can be found has).
    NeedMore,
    /// The element header has arrived, here, with a defined length and VR OB or OW.
    /// Whatever more arrives, a parse of the whole stream that succeeds finds it at the
    /// same place (this is not a promise that it succeeds, nor that nothing follows the
    /// value).
    Found(PixelDataHeader),
    /// Its value can never be streamed, whatever more arrives: no file meta or no
    /// Transfer Syntax UID, a deflated data set, encapsulated (undefined-length) Pixel
    /// Data or a VR other than OB or OW, a declared encoding that the data set
    /// contradicts, or a structural error in what has arrived.
    Never,
}

/// Finds the top-level Pixel Data element of a Part 10 stream (preamble, file meta and
/// data set) from a prefix of it, resuming each call where the previous one stopped.
///
/// Top-level elements are walked as [`crate::parse_dataset`] reads them: defined lengths
/// are skipped, undefined-length sequences and items are read to their delimiters within
/// [`Limits::max_depth`]. Nothing in the values is searched for, so a Pixel Data tag inside
/// a value or a sequence (an icon image) is never taken for the top-level one. No input
/// makes it panic.
///
/// Pass the same stream each time, longer or as long as before: a shorter prefix than the
/// last one starts the walk again from the beginning.
///
/// ```
/// use dicom_deid_wire::{Limits, PixelDataAt, PixelDataScan};
/// let file = dicom_deid_wire::testing::minimal_file();
/// let mut scan = PixelDataScan::default();
/// assert_eq!(scan.scan(&file[..200], &Limits::default()), PixelDataAt::NeedMore);
/// let PixelDataAt::Found(at) = scan.scan(&file, &Limits::default()) else { panic!() };
/// assert_eq!((at.value_start, at.value_len), (file.len() - 8, 8));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PixelDataScan {
    resume: Option<Resume>,
    seen: usize,
}

/// Where a walk stopped: the data set's start and encoding, and the first top-level
/// element not yet passed (offsets from the start of the stream).
#[derive(Debug, Clone, Copy)]
struct Resume {
    body_start: usize,
    syntax: Syntax,
    next: usize,
}

/// Where the top-level Pixel Data element of the Part 10 stream that begins with `prefix`
/// sits, as far as `prefix` tells: [`PixelDataScan::scan`] from the beginning, for one call.
/// Nothing is said about what follows the Pixel Data value.
pub fn find_pixel_data(prefix: &[u8], limits: &Limits) -> PixelDataAt {
    PixelDataScan::default().scan(prefix, limits)
}

impl PixelDataScan {
    /// Looks at `prefix`, the bytes of the stream that have arrived so far.
    pub fn scan(&mut self, prefix: &[u8], limits: &Limits) -> PixelDataAt {
        if prefix.len() < self.seen {
            self.resume = None;
        }
        self.seen = prefix.len();
        let r = match self.resume {
            Some(r) => r,
            None => match start(prefix, limits) {
                Ok(r) => r,
                Err(at) => return at,
            },
        };
        let p = Parser {
            buf: &prefix[r.body_start..],
            limits,
            partial: true,
        };
        let mut pos = r.next - r.body_start;
        loop {
            self.resume = Some(Resume {
                next: r.body_start + pos,
                ..r
            });
            if pos >= p.buf.len() {
                return PixelDataAt::NeedMore;
            }
            let at = pos;
            let h = match p.header(&mut pos, r.syntax) {
                Ok(h) => h,
                Err(e) => return pending(e),
            };
            match h.tag {
                PIXEL_DATA if h.len == UNDEFINED || !matches!(h.vr, Vr::OB | Vr::OW) => {
                    return PixelDataAt::Never
                }
                PIXEL_DATA => {
                    return PixelDataAt::Found(PixelDataHeader {
                        header_start: r.body_start + at,
                        value_start: r.body_start + pos,
                        value_len: u64::from(h.len),
                        syntax: r.syntax,
                    })
                }
                // The reader refuses these at the top level.
                ITEM | ITEM_DELIMITER | SEQUENCE_DELIMITER => return PixelDataAt::Never,
                _ if h.len == UNDEFINED => {
                    if let Err(e) = p.value(&mut pos, &h, None, 0, r.syntax) {
                        return pending(e);
                    }
                }
                _ => match pos.checked_add(h.len as usize) {
                    Some(next) => pos = next,
                    None => return PixelDataAt::Never,
                },
            }
        }
    }
}

/// Reads the file meta and decides the data set's encoding, once enough has arrived for
/// that decision to be the one [`read_file`] makes on the whole stream.
fn start(prefix: &[u8], limits: &Limits) -> Result<Resume, PixelDataAt> {
    // `read_file` tells a preamble from a bare meta group by the first 134 bytes.
    if prefix.len() < 134 {
        return Err(PixelDataAt::NeedMore);
    }
    // A bare data set's encoding is guessed from lengths that more bytes can change.
    let meta = meta_start(prefix).ok_or(PixelDataAt::Never)?;
    // The meta ends at the first element of another group; with fewer than 8 bytes after
    // it, the reader has not looked yet.
    let (_, body_start) = read_meta(prefix, meta).map_err(pending)?;
    if prefix.len() - body_start < 8 {
        return Err(PixelDataAt::NeedMore);
    }
    let raw = read_file(prefix, limits).map_err(pending)?;
    let declared = raw
        .meta
        .transfer_syntax_uid
        .as_deref()
        .and_then(Syntax::from_uid);
    match declared {
        Some(s) if s == raw.syntax && !s.deflated && syntax_settled(raw.body, s) => Ok(Resume {
            body_start: prefix.len() - raw.body.len(),
            syntax: s,
            next: prefix.len() - raw.body.len(),
        }),
        _ => Err(PixelDataAt::Never),
    }
}

/// A reader error on a prefix: truncation may be only the end of what has arrived.
fn pending(e: Error) -> PixelDataAt {
    match e {
        Error::Truncated { .. } => PixelDataAt::NeedMore,
        _ => PixelDataAt::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dataset, seq, text};
    use crate::{write_file, DataSet, Element, FileMetaOut};

    /// A file whose data set has an undefined-length sequence holding an icon image
    /// (its own Pixel Data, nested twice) before the top-level Pixel Data.
    fn file(syntax: Syntax, uid: &str) -> Vec<u8> {
        let be = syntax.big_endian;
        let us = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() }.to_vec();
        let icon = dataset(vec![
            Element::new(0x0028_0010, Vr::US, us(1)),
            Element::new(PIXEL_DATA, Vr::OW, vec![9u8; 4]),
        ]);
        let ds = dataset(vec![
            text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.7"),
            text(0x0008_0018, Vr::UI, "1.2.3.4"),
            seq(
                0x0008_1140,
                vec![
                    dataset(vec![seq(0x0088_0200, vec![icon.clone()])]),
                    DataSet::default(),
                ],
            ),
            seq(0x0088_0200, vec![icon]),
            Element::new(0x0028_0010, Vr::US, us(2)),
            Element::new(PIXEL_DATA, Vr::OW, vec![7u8; 8]),
        ]);
        let meta = FileMetaOut::for_dataset(&ds, uid, "1.2.3", "TEST");
        let mut out = Vec::new();
        write_file(&mut out, &meta, &ds, syntax).unwrap();
        out
    }

    /// Every prefix says NeedMore until the header has arrived, then where it is; so does
    /// one scan fed the same prefixes.
    fn check(bytes: &[u8], header_len: usize, syntax: Syntax) {
        let limits = Limits::default();
        let value_start = bytes.len() - 8;
        let want = PixelDataHeader {
            header_start: value_start - header_len,
            value_start,
            value_len: 8,
            syntax,
        };
        let mut scan = PixelDataScan::default();
        for n in 0..=bytes.len() {
            let expected = if n < value_start {
                PixelDataAt::NeedMore
            } else {
                PixelDataAt::Found(want)
            };
            assert_eq!(find_pixel_data(&bytes[..n], &limits), expected, "{n}");
            assert_eq!(scan.scan(&bytes[..n], &limits), expected, "resumed, {n}");
        }
    }

    #[test]
    fn finds_pixel_data_in_each_syntax() {
        check(
            &file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1"),
            12,
            Syntax::EXPLICIT_LE,
        );
        check(
            &file(Syntax::IMPLICIT_LE, "1.2.840.10008.1.2"),
            8,
            Syntax::IMPLICIT_LE,
        );
        check(
            &file(Syntax::EXPLICIT_BE, "1.2.840.10008.1.2.2"),
            12,
            Syntax::EXPLICIT_BE,
        );
        // Blanks where the VR of SOP Instance UID belongs: the reader takes the
        // dictionary's UI once the value is there, so a prefix that cuts the value waits.
        let mut blank = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let at = blank
            .windows(6)
            .position(|w| w == [0x08, 0x00, 0x18, 0x00, b'U', b'I'])
            .unwrap();
        blank[at + 4..at + 6].copy_from_slice(b"  ");
        check(&blank, 12, Syntax::EXPLICIT_LE);
    }

    #[test]
    fn a_shorter_prefix_starts_again() {
        let bytes = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let other = file(Syntax::IMPLICIT_LE, "1.2.840.10008.1.2");
        let limits = Limits::default();
        let mut scan = PixelDataScan::default();
        assert!(matches!(
            scan.scan(&bytes, &limits),
            PixelDataAt::Found(PixelDataHeader {
                syntax: Syntax::EXPLICIT_LE,
                ..
            })
        ));
        assert_eq!(scan.scan(&other[..300], &limits), PixelDataAt::NeedMore);
        assert_eq!(scan.scan(&other, &limits), find_pixel_data(&other, &limits));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_never_streamable() {
        let bytes = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let shallow = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        assert_eq!(find_pixel_data(&bytes, &shallow), PixelDataAt::Never);
        assert!(matches!(
            find_pixel_data(&bytes, &Limits::default()),
            PixelDataAt::Found(_)
        ));
    }

    #[test]
    fn what_cannot_be_streamed_says_so() {
        let limits = Limits::default();
        // Deflated.
        let deflated = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1.99");
        assert_eq!(find_pixel_data(&deflated, &limits), PixelDataAt::Never);
        // Encapsulated: undefined length.
        let ds = dataset(vec![
            text(0x0008_0018, Vr::UI, "1.2.3.4"),
            Element {
                tag: PIXEL_DATA,
                vr: Vr::OB,
                value: crate::Value::Fragments(vec![Vec::new().into(), vec![1u8, 2].into()]),
            },
        ]);
        let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.4.50", "1.2.3", "TEST");
        let mut jpeg = Vec::new();
        write_file(&mut jpeg, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();
        let header_end = jpeg.len() - 8 - 10 - 8; // before the items and the delimiter
        assert_eq!(
            find_pixel_data(&jpeg[..header_end - 1], &limits),
            PixelDataAt::NeedMore
        );
        assert_eq!(
            find_pixel_data(&jpeg[..header_end], &limits),
            PixelDataAt::Never
        );
        // A bare data set (no meta).
        let bytes = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let body = read_file(&bytes, &limits).unwrap().body;
        assert_eq!(find_pixel_data(body, &limits), PixelDataAt::Never);
        // A stray delimiter at the top level.
        let mut stray = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let at = stray.len() - 20;
        let mut broken = stray[..at].to_vec();
        broken.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        broken.extend_from_slice(&stray.split_off(at));
        assert_eq!(find_pixel_data(&broken, &limits), PixelDataAt::Never);
    }

    #[test]
    fn a_declared_explicit_syntax_that_the_data_contradicts_is_never_streamable() {
        // Implicit VR data set, meta says explicit: the reader corrects it only once the
        // first value is seen to fit, which depends on how much has arrived.
        let bytes = file(Syntax::IMPLICIT_LE, "1.2.840.10008.1.2.1");
        let limits = Limits::default();
        let body = bytes.len() - read_file(&bytes, &limits).unwrap().body.len();
        for n in [body + 8, body + 40, bytes.len()] {
            assert_eq!(find_pixel_data(&bytes[..n], &limits), PixelDataAt::Never);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let limits = Limits::default();
        let good = file(Syntax::EXPLICIT_LE, "1.2.840.10008.1.2.1");
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let cut = (next() % (bytes.len() as u64 + 1)) as usize;
            let _ = find_pixel_data(&bytes[..cut], &limits);
        }
    }
}
