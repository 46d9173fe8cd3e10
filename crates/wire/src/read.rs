//! Reading: file meta, transfer syntax detection, and the data set tree.

use std::borrow::Cow;
use std::io::Read;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

use crate::error::*;
use crate::tags::*;
use crate::{tag_str, DataSet, Element, Limits, Syntax, Tag, Value, Vr};

pub(crate) const UNDEFINED: u32 = 0xFFFF_FFFF;

/// What the file meta group of an input says, reduced to what the pipeline needs.
/// It holds no instance identifiers: those are taken from the data set itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMetaIn {
    /// Transfer Syntax UID (0002,0010), if present.
    pub transfer_syntax_uid: Option<String>,
    /// Media Storage SOP Class UID (0002,0002), if present.
    pub media_storage_sop_class_uid: Option<String>,
}

/// A DICOM stream whose meta has been read and whose data set encoding is known.
#[derive(Debug, Clone)]
pub struct RawFile<'a> {
    /// The input's file meta (absent in a bare data set).
    pub meta: FileMetaIn,
    /// Whether the input had a file meta group.
    pub had_meta: bool,
    /// Encoding of the data set.
    pub syntax: Syntax,
    /// The transfer syntax UID to write out: the declared one, or the one that
    /// names the sniffed encoding.
    pub transfer_syntax_uid: String,
    /// The data set bytes (still deflated when `syntax.deflated`).
    pub body: &'a [u8],
}

impl<'a> RawFile<'a> {
    /// Parses the data set. A deflated data set must first be inflated with
    /// [`RawFile::inflate`] and parsed with [`parse_dataset`].
    pub fn parse(&self, limits: &Limits) -> Result<DataSet<'a>> {
        if self.syntax.deflated {
            return InflateSnafu {
                reason: "inflate the data set before parsing it",
            }
            .fail();
        }
        parse_dataset(self.body, self.syntax, limits)
    }

    /// Inflates a deflated data set, refusing to grow beyond `limits.max_inflated`.
    pub fn inflate(&self, limits: &Limits) -> Result<Vec<u8>> {
        self.inflate_with_capacity(limits, 0)
    }

    /// How many bytes [`RawFile::inflate`] would give, found by inflating into nothing (so a
    /// caller can account for the memory before it is taken). Fails as `inflate` does.
    pub fn inflated_len(&self, limits: &Limits) -> Result<u64> {
        let cap = limits.max_inflated as u64;
        let n = std::io::copy(
            &mut flate2::read::DeflateDecoder::new(self.body).take(cap + 1),
            &mut std::io::sink(),
        )
        .map_err(|e| Error::Inflate {
            reason: e.to_string(),
        })?;
        if n > cap {
            return InflateSnafu {
                reason: format!("inflates beyond the {cap}-byte limit"),
            }
            .fail();
        }
        Ok(n)
    }

    /// [`RawFile::inflate`] into a buffer of `capacity` bytes reserved up front (the length
    /// from [`RawFile::inflated_len`] avoids regrowing it).
    pub fn inflate_with_capacity(&self, limits: &Limits, capacity: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(capacity);
        let cap = limits.max_inflated as u64;
        flate2::read::DeflateDecoder::new(self.body)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::Inflate {
                reason: e.to_string(),
            })?;
        if out.len() as u64 > cap {
            return InflateSnafu {
                reason: format!("inflates beyond the {cap}-byte limit"),
            }
            .fail();
        }
        Ok(out)
    }
}

/// Reads the preamble and file meta of a Part 10 file, or recognises a bare data
/// set by its first element. Fails with [`Error::NotDicom`] for anything else.
pub fn read_file<'a>(bytes: &'a [u8], _limits: &Limits) -> Result<RawFile<'a>> {
    let Some(start) = meta_start(bytes) else {
        let syntax = sniff(bytes).ok_or(Error::NotDicom)?;
        return Ok(RawFile {
            meta: FileMetaIn::default(),
            had_meta: false,
            syntax,
            transfer_syntax_uid: syntax.native_uid().to_string(),
            body: bytes,
        });
    };
    let (meta, body_start) = read_meta(bytes, start)?;
    let body = &bytes[body_start..];
    let (syntax, uid) = match &meta.transfer_syntax_uid {
        Some(uid) => {
            let declared = Syntax::from_uid(uid)
                .ok_or_else(|| Error::UnsupportedSyntax { uid: uid.clone() })?;
            (correct_syntax(body, declared), uid.clone())
        }
        None => {
            let s = if body.is_empty() {
                Syntax::EXPLICIT_LE
            } else {
                sniff(body).ok_or(Error::NoSyntax)?
            };
            (s, s.native_uid().to_string())
        }
    };
    // A declared syntax that the data set plainly contradicts is corrected (as
    // other toolkits do); the written transfer syntax then names what we found.
    let uid = if syntax != Syntax::from_uid(&uid).unwrap_or(syntax) {
        syntax.native_uid().to_string()
    } else {
        uid
    };
    Ok(RawFile {
        meta,
        had_meta: true,
        syntax,
        transfer_syntax_uid: uid,
        body,
    })
}

/// Where the file meta group begins, if there is one (decided by the first 134 bytes).
pub(crate) fn meta_start(bytes: &[u8]) -> Option<usize> {
    // "DICM" at 128 is a preamble only if the meta group follows it: a bare data
    // set can hold those four bytes by chance.
    if bytes.len() >= 134 && &bytes[128..132] == b"DICM" && bytes[132..134] == [0x02, 0x00] {
        Some(132)
    } else if bytes.len() >= 8 && u16::from_le_bytes([bytes[0], bytes[1]]) == 0x0002 {
        // Meta group without the 128-byte preamble.
        Some(0)
    } else {
        None
    }
}

/// Reads group 0002 from `start`; returns the meta and where the data set begins.
pub(crate) fn read_meta(bytes: &[u8], start: usize) -> Result<(FileMetaIn, usize)> {
    let mut meta = FileMetaIn::default();
    let mut pos = start;
    while pos + 8 <= bytes.len() && u16::from_le_bytes([bytes[pos], bytes[pos + 1]]) == 0x0002 {
        let tag = ((0x0002u32) << 16) | u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]) as u32;
        // The meta is explicit VR little endian; a few writers got that wrong and
        // used implicit VR, which we accept.
        let (header, len) = match Vr::from_bytes([bytes[pos + 4], bytes[pos + 5]]) {
            Some(vr) if vr.has_long_length() => {
                need(bytes, pos, 12, "file meta element header")?;
                (
                    12,
                    u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()),
                )
            }
            Some(_) => (
                8,
                u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as u32,
            ),
            None => (
                8,
                u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()),
            ),
        };
        if len == UNDEFINED {
            return MalformedSnafu {
                what: "undefined length in the file meta",
                tag: tag_str(tag),
                offset: pos,
            }
            .fail();
        }
        let vstart = pos + header;
        need(
            bytes,
            vstart,
            len as u64,
            &format!("value of {}", tag_str(tag)),
        )?;
        let value = &bytes[vstart..vstart + len as usize];
        let text = || {
            std::str::from_utf8(crate::trim(value))
                .ok()
                .map(str::to_string)
        };
        match tag {
            TRANSFER_SYNTAX_UID => meta.transfer_syntax_uid = text(),
            MEDIA_STORAGE_SOP_CLASS_UID => meta.media_storage_sop_class_uid = text(),
            _ => {}
        }
        pos = vstart + len as usize;
    }
    Ok((meta, pos))
}

/// Guesses the encoding of a bare data set from its first element header:
/// the group must be a plausible first group (0002–0030) and the length must fit.
pub fn sniff(bytes: &[u8]) -> Option<Syntax> {
    if bytes.len() < 8 {
        return None;
    }
    let plausible = |g: u16| (0x0002..=0x0030).contains(&g) && g % 2 == 0;
    let vr = Vr::from_bytes([bytes[4], bytes[5]]);
    let g_le = u16::from_le_bytes([bytes[0], bytes[1]]);
    let g_be = u16::from_be_bytes([bytes[0], bytes[1]]);
    let fits = |len: u64, header: usize| {
        len == UNDEFINED as u64 || header as u64 + len <= bytes.len() as u64
    };
    if plausible(g_le) {
        if let Some(vr) = vr {
            let (len, header) = explicit_len(bytes, 0, vr, false)?;
            if fits(len as u64, header) {
                return Some(Syntax::EXPLICIT_LE);
            }
        }
        let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        if fits(len as u64, 8) {
            return Some(Syntax::IMPLICIT_LE);
        }
    }
    if plausible(g_be) {
        if let Some(vr) = vr {
            let (len, header) = explicit_len(bytes, 0, vr, true)?;
            if fits(len as u64, header) {
                return Some(Syntax::EXPLICIT_BE);
            }
        }
    }
    None
}

/// When the first element plainly contradicts the declared VR encoding
/// (explicit declared, no VR present; or implicit declared, a VR present and the
/// implicit length impossible), use the encoding the data shows.
fn correct_syntax(body: &[u8], declared: Syntax) -> Syntax {
    if body.len() < 8 || declared.deflated {
        return declared;
    }
    let vr_present = Vr::from_bytes([body[4], body[5]]).is_some();
    if declared.explicit && !vr_present && !declared.big_endian {
        let len = u32::from_le_bytes(body[4..8].try_into().unwrap()) as u64;
        if len == UNDEFINED as u64 || 8 + len <= body.len() as u64 {
            return Syntax::IMPLICIT_LE;
        }
    }
    if !declared.explicit && vr_present {
        let len = u32::from_le_bytes(body[4..8].try_into().unwrap()) as u64;
        if len != UNDEFINED as u64 && 8 + len > body.len() as u64 {
            return Syntax::EXPLICIT_LE;
        }
    }
    declared
}

/// Whether [`correct_syntax`] keeps `declared` for every data set that begins with
/// `body` (at least 8 bytes), however long: its corrections depend on whether the
/// first value fits in what is there, so a prefix may be corrected differently from
/// the whole stream.
pub(crate) fn syntax_settled(body: &[u8], declared: Syntax) -> bool {
    let Some(vr) = body.get(4..6) else {
        return false;
    };
    let vr_present = Vr::from_bytes([vr[0], vr[1]]).is_some();
    if declared.explicit {
        declared.big_endian || vr_present
    } else {
        !vr_present
    }
}

fn explicit_len(bytes: &[u8], pos: usize, vr: Vr, be: bool) -> Option<(u32, usize)> {
    if vr.has_long_length() {
        let b: [u8; 4] = bytes.get(pos + 8..pos + 12)?.try_into().ok()?;
        Some((
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            },
            12,
        ))
    } else {
        let b: [u8; 2] = bytes.get(pos + 6..pos + 8)?.try_into().ok()?;
        Some((
            (if be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }) as u32,
            8,
        ))
    }
}

fn need(bytes: &[u8], pos: usize, n: u64, what: &str) -> Result<()> {
    let available = bytes.len().saturating_sub(pos);
    if (available as u64) < n {
        return TruncatedSnafu {
            what: what.to_string(),
            offset: pos,
            needed: n,
            available,
        }
        .fail();
    }
    Ok(())
}

/// Parses a data set encoded with `syntax` (not deflated) into a tree that borrows
/// from `bytes`.
pub fn parse_dataset<'a>(bytes: &'a [u8], syntax: Syntax, limits: &Limits) -> Result<DataSet<'a>> {
    let p = Parser {
        buf: bytes,
        limits,
        partial: false,
    };
    let mut pos = 0;
    p.dataset(&mut pos, None, 0, syntax, 0)
}

pub(crate) struct Parser<'a, 'l> {
    pub(crate) buf: &'a [u8],
    pub(crate) limits: &'l Limits,
    /// `buf` is a prefix of the stream, not all of it: a check that more bytes could
    /// pass fails as [`Error::Truncated`] (see [`crate::PixelDataScan`]).
    pub(crate) partial: bool,
}

pub(crate) struct Header {
    pub(crate) tag: Tag,
    pub(crate) vr: Vr,
    pub(crate) len: u32,
}

impl<'a, 'l> Parser<'a, 'l> {
    /// A parser of `buf[..end]`: what a defined length encloses is read within it, so
    /// an undefined-length item or sequence inside never reads past the enclosing end
    /// (the bytes there belong to the next element). All of it has arrived.
    fn within(&self, end: usize) -> Parser<'a, 'l> {
        Parser {
            buf: &self.buf[..end],
            limits: self.limits,
            partial: false,
        }
    }

    fn u16(&self, pos: usize, be: bool) -> u16 {
        let b = [self.buf[pos], self.buf[pos + 1]];
        if be {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, pos: usize, be: bool) -> u32 {
        let b: [u8; 4] = self.buf[pos..pos + 4].try_into().unwrap();
        if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn tag(&self, pos: usize, be: bool) -> Result<Tag> {
        need(self.buf, pos, 4, "tag")?;
        Ok(((self.u16(pos, be) as u32) << 16) | self.u16(pos + 2, be) as u32)
    }

    /// Reads an element header at `pos`, advancing past it.
    pub(crate) fn header(&self, pos: &mut usize, syntax: Syntax) -> Result<Header> {
        let be = syntax.big_endian;
        let at = *pos;
        need(self.buf, at, 8, "element header")?;
        let tag = self.tag(at, be)?;
        if tag >> 16 == 0xFFFE {
            *pos += 8;
            return Ok(Header {
                tag,
                vr: Vr::UN,
                len: self.u32(at + 4, be),
            });
        }
        if !syntax.explicit {
            *pos += 8;
            return Ok(Header {
                tag,
                vr: implicit_vr(tag),
                len: self.u32(at + 4, be),
            });
        }
        let Some(vr) = Vr::from_bytes([self.buf[at + 4], self.buf[at + 5]]) else {
            // Some writers put blanks or garbage where the VR belongs. When the
            // dictionary knows a short-length VR for the tag and the value fits, read
            // it as that; anything else is an error.
            let known = implicit_vr(tag);
            let len = self.u16(at + 6, be) as usize;
            if known != Vr::UN && !known.has_long_length() {
                if at + 8 + len <= self.buf.len() {
                    *pos += 8;
                    return Ok(Header {
                        tag,
                        vr: known,
                        len: len as u32,
                    });
                }
                if self.partial {
                    // The value may fit once the rest of the stream has arrived.
                    return TruncatedSnafu {
                        what: format!("value of {}", tag_str(tag)),
                        offset: at + 8,
                        needed: len as u64,
                        available: self.buf.len() - (at + 8).min(self.buf.len()),
                    }
                    .fail();
                }
            }
            return InvalidVrSnafu {
                tag: tag_str(tag),
                b0: self.buf[at + 4],
                b1: self.buf[at + 5],
                offset: at,
            }
            .fail();
        };
        if vr.has_long_length() {
            need(self.buf, at, 12, "element header")?;
            *pos += 12;
            Ok(Header {
                tag,
                vr,
                len: self.u32(at + 8, be),
            })
        } else {
            *pos += 8;
            Ok(Header {
                tag,
                vr,
                len: self.u16(at + 6, be) as u32,
            })
        }
    }

    /// Reads elements until `end` (defined length), an item delimiter (undefined
    /// length item, `depth > 0`) or the end of the buffer (top level).
    fn dataset(
        &self,
        pos: &mut usize,
        end: Option<usize>,
        depth: usize,
        syntax: Syntax,
        parent: Tag,
    ) -> Result<DataSet<'a>> {
        let mut ds = DataSet::default();
        loop {
            match end {
                Some(end) if *pos >= end => break,
                None if *pos >= self.buf.len() => {
                    if depth == 0 {
                        break;
                    }
                    return TruncatedSnafu {
                        what: format!("item of {} (no item delimiter)", tag_str(parent)),
                        offset: *pos,
                        needed: 8u64,
                        available: 0usize,
                    }
                    .fail();
                }
                _ => {}
            }
            let at = *pos;
            let h = self.header(pos, syntax)?;
            match h.tag {
                ITEM_DELIMITER if end.is_none() && depth > 0 => return Ok(ds),
                ITEM_DELIMITER | SEQUENCE_DELIMITER | ITEM => {
                    // Stray delimiters where elements belong. A sequence delimiter
                    // with zero length right at the end of the top level is
                    // tolerated (some writers leave one); anything else is malformed.
                    if depth == 0
                        && h.tag == SEQUENCE_DELIMITER
                        && h.len == 0
                        && *pos == self.buf.len()
                    {
                        break;
                    }
                    let tag = if depth == 0 {
                        "the top level".to_string()
                    } else {
                        tag_str(parent)
                    };
                    return MalformedSnafu {
                        what: "item or delimiter where an element belongs",
                        tag,
                        offset: at,
                    }
                    .fail();
                }
                _ => {}
            }
            let value = self.value(pos, &h, end, depth, syntax)?;
            // A sequence that arrived as UN (a standard tag the sender did not
            // know, or a private sequence) is written back as SQ in the output
            // syntax: valid, and readable by toolkits that reject UN sequences.
            let vr = if matches!(value, Value::Seq(_)) {
                Vr::SQ
            } else {
                h.vr
            };
            ds.elements.push(Element {
                tag: h.tag,
                vr,
                value,
            });
        }
        Ok(ds)
    }

    pub(crate) fn value(
        &self,
        pos: &mut usize,
        h: &Header,
        end: Option<usize>,
        depth: usize,
        syntax: Syntax,
    ) -> Result<Value<'a>> {
        let limit = end.unwrap_or(self.buf.len());
        if h.len == UNDEFINED {
            if h.tag == PIXEL_DATA && h.vr != Vr::SQ {
                return self.fragments(pos, syntax);
            }
            return match h.vr {
                Vr::SQ => self.items(pos, None, depth, syntax, h.tag).map(Value::Seq),
                // PS3.5 6.2.2: UN of undefined length is a sequence encoded as
                // implicit VR little endian whatever the transfer syntax.
                Vr::UN => self
                    .items(pos, None, depth, Syntax::IMPLICIT_LE, h.tag)
                    .map(Value::Seq),
                _ => MalformedSnafu {
                    what: "undefined length on a non-sequence element",
                    tag: tag_str(h.tag),
                    offset: *pos,
                }
                .fail(),
            };
        }
        let len = h.len as usize;
        if *pos as u64 + h.len as u64 > limit as u64 {
            return TruncatedSnafu {
                what: format!("value of {}", tag_str(h.tag)),
                offset: *pos,
                needed: h.len as u64,
                available: limit.saturating_sub(*pos),
            }
            .fail();
        }
        let start = *pos;
        let stop = start + len;
        // In an implicit VR data set the dictionary may call an element SQ that an
        // older edition (or a careless writer) stored as text: keep it opaque.
        if h.vr == Vr::SQ && !syntax.explicit && len > 0 && !self.looks_like_items(start) {
            *pos = stop;
            return Ok(Value::Bytes(Cow::Borrowed(&self.buf[start..stop])));
        }
        if h.vr == Vr::SQ {
            *pos = stop;
            let mut p = start;
            return self
                .within(stop)
                .items(&mut p, Some(stop), depth, syntax, h.tag)
                .map(Value::Seq);
        }
        if h.vr == Vr::UN && len >= 8 && self.looks_like_items(start) {
            // A sequence hidden in UN (standard tag unknown to the sender, or a
            // private sequence): its content is implicit VR little endian. If it
            // does not parse as items, it stays opaque bytes.
            let mut p = start;
            let items =
                self.within(stop)
                    .items(&mut p, Some(stop), depth, Syntax::IMPLICIT_LE, h.tag);
            if let Ok(items) = items {
                *pos = stop;
                return Ok(Value::Seq(items));
            }
        }
        *pos = stop;
        Ok(Value::Bytes(Cow::Borrowed(&self.buf[start..stop])))
    }

    fn looks_like_items(&self, pos: usize) -> bool {
        self.buf.get(pos..pos + 4) == Some(&[0xFE, 0xFF, 0x00, 0xE0])
    }

    fn items(
        &self,
        pos: &mut usize,
        end: Option<usize>,
        depth: usize,
        syntax: Syntax,
        seq: Tag,
    ) -> Result<Vec<DataSet<'a>>> {
        if depth + 1 > self.limits.max_depth {
            return TooDeepSnafu {
                tag: tag_str(seq),
                limit: self.limits.max_depth,
            }
            .fail();
        }
        let be = syntax.big_endian;
        let mut items = Vec::new();
        loop {
            if let Some(end) = end {
                if *pos >= end {
                    break;
                }
            }
            need(
                self.buf,
                *pos,
                8,
                &format!("item header in {}", tag_str(seq)),
            )?;
            let at = *pos;
            let tag = self.tag(at, be)?;
            let len = self.u32(at + 4, be);
            *pos += 8;
            match tag {
                SEQUENCE_DELIMITER if end.is_none() => break,
                ITEM if len == UNDEFINED => {
                    items.push(self.dataset(pos, None, depth + 1, syntax, seq)?)
                }
                ITEM => {
                    let limit = end.unwrap_or(self.buf.len());
                    if *pos as u64 + len as u64 > limit as u64 {
                        return TruncatedSnafu {
                            what: format!("item of {}", tag_str(seq)),
                            offset: *pos,
                            needed: len as u64,
                            available: limit.saturating_sub(*pos),
                        }
                        .fail();
                    }
                    let stop = *pos + len as usize;
                    items.push(self.within(stop).dataset(
                        pos,
                        Some(stop),
                        depth + 1,
                        syntax,
                        seq,
                    )?);
                    *pos = stop;
                }
                _ => {
                    return MalformedSnafu {
                        what: "sequence content that is not an item",
                        tag: tag_str(seq),
                        offset: at,
                    }
                    .fail()
                }
            }
        }
        Ok(items)
    }

    fn fragments(&self, pos: &mut usize, syntax: Syntax) -> Result<Value<'a>> {
        let mut frags = Vec::new();
        loop {
            need(self.buf, *pos, 8, "pixel data fragment header")?;
            let at = *pos;
            let tag = self.tag(at, syntax.big_endian)?;
            let len = self.u32(at + 4, syntax.big_endian);
            *pos += 8;
            match tag {
                SEQUENCE_DELIMITER => break,
                ITEM if len != UNDEFINED => {
                    need(self.buf, *pos, len as u64, "pixel data fragment")?;
                    frags.push(Cow::Borrowed(&self.buf[*pos..*pos + len as usize]));
                    *pos += len as usize;
                }
                _ => {
                    return MalformedSnafu {
                        what: "encapsulated pixel data",
                        tag: tag_str(PIXEL_DATA),
                        offset: at,
                    }
                    .fail()
                }
            }
        }
        Ok(Value::Fragments(frags))
    }
}

/// The VR of a tag in an implicit VR data set: the dictionary's, `LO` for private
/// creators, `UL` for group lengths, `UN` when unknown.
pub(crate) fn implicit_vr(tag: Tag) -> Vr {
    let (g, e) = ((tag >> 16) as u16, (tag & 0xFFFF) as u16);
    if e == 0 {
        return Vr::UL;
    }
    if g % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&e) {
            Vr::LO
        } else {
            Vr::UN
        };
    }
    match StandardDataDictionary
        .by_tag(dicom_core::Tag(g, e))
        .map(|entry| entry.vr())
    {
        Some(VirtualVr::Exact(vr)) => Vr(vr.to_bytes()),
        Some(VirtualVr::Xs) => Vr::US,
        Some(VirtualVr::Ox | VirtualVr::Px | VirtualVr::Lt) => Vr::OW,
        _ => Vr::UN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence sent as UN with a defined length whose item has no delimiter within it:
    /// the item is not read past the length (into the elements that follow), so the value
    /// stays opaque and what follows is read once, at the top level.
    #[test]
    fn an_item_does_not_overrun_the_length_that_encloses_it() {
        let mut body = vec![0x28, 0x00, 0x00, 0x30, b'U', b'N', 0, 0, 16, 0, 0, 0];
        body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        body.extend_from_slice(&[0x08, 0x00, 0x04, 0x01, 0, 0, 0, 0]);
        // What follows. Read as part of the item (implicit VR), its header is an element
        // whose length is "OB\0\0", after which its value holds an item delimiter.
        let mut value = vec![0u8; 16984];
        let close = 0x424F - 4;
        value[close..close + 8].copy_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        body.extend_from_slice(&[0x28, 0x00, 0x01, 0x30, b'O', b'B', 0, 0]);
        body.extend_from_slice(&(value.len() as u32).to_le_bytes());
        body.extend_from_slice(&value);
        let ds = parse_dataset(&body, Syntax::EXPLICIT_LE, &Limits::default()).unwrap();
        let tags: Vec<_> = ds.elements.iter().map(|e| (e.tag, e.vr)).collect();
        assert_eq!(tags, [(0x0028_3000, Vr::UN), (0x0028_3001, Vr::OB)]);
        assert_eq!(ds.elements[0].bytes().map(<[u8]>::len), Some(16));
    }
}
