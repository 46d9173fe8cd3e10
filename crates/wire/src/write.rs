//! Writing: a new file meta and the data set in a given encoding.
//!
//! Sequences and items are always written with undefined length and delimiters,
//! so nothing has to be measured before it is written and a changed value never
//! invalidates a length further up. Values of odd length are padded as their VR
//! requires, so the output is valid even where the input was not.

use crate::error::*;
use crate::tags::*;
use crate::{tag_str, DataSet, Element, Syntax, Value, Vr};

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// The file meta information written in front of every output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetaOut {
    /// Media Storage SOP Class UID.
    pub sop_class_uid: String,
    /// Media Storage SOP Instance UID (the *new* instance UID).
    pub sop_instance_uid: String,
    /// Transfer Syntax UID of the written data set.
    pub transfer_syntax_uid: String,
    /// Our Implementation Class UID.
    pub implementation_class_uid: String,
    /// Our Implementation Version Name (at most 16 characters).
    pub implementation_version_name: String,
}

impl FileMetaOut {
    /// A meta for `ds`, taking the SOP class and instance from the data set.
    pub fn for_dataset(
        ds: &DataSet<'_>,
        transfer_syntax_uid: &str,
        implementation_class_uid: &str,
        implementation_version_name: &str,
    ) -> Self {
        FileMetaOut {
            sop_class_uid: ds.str(SOP_CLASS_UID).unwrap_or_default().to_string(),
            sop_instance_uid: ds.str(SOP_INSTANCE_UID).unwrap_or_default().to_string(),
            transfer_syntax_uid: transfer_syntax_uid.to_string(),
            implementation_class_uid: implementation_class_uid.to_string(),
            implementation_version_name: implementation_version_name.to_string(),
        }
    }
}

/// Writes preamble, `DICM`, the file meta group and the data set.
pub fn write_file(
    out: &mut Vec<u8>,
    meta: &FileMetaOut,
    ds: &DataSet<'_>,
    syntax: Syntax,
) -> Result<()> {
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    let mut group = DataSet::default();
    group.put(Element::new(FILE_META_VERSION, Vr::OB, &[0u8, 1][..]));
    group.put(Element::text(
        MEDIA_STORAGE_SOP_CLASS_UID,
        Vr::UI,
        &meta.sop_class_uid,
    ));
    group.put(Element::text(
        MEDIA_STORAGE_SOP_INSTANCE_UID,
        Vr::UI,
        &meta.sop_instance_uid,
    ));
    group.put(Element::text(
        TRANSFER_SYNTAX_UID,
        Vr::UI,
        &meta.transfer_syntax_uid,
    ));
    group.put(Element::text(
        IMPLEMENTATION_CLASS_UID,
        Vr::UI,
        &meta.implementation_class_uid,
    ));
    group.put(Element::text(
        IMPLEMENTATION_VERSION_NAME,
        Vr::SH,
        &meta.implementation_version_name,
    ));
    let mut body = Vec::with_capacity(256);
    encode_dataset(&mut body, &group, Syntax::EXPLICIT_LE)?;
    encode_element(
        out,
        &Element::new(
            FILE_META_GROUP_LENGTH,
            Vr::UL,
            (body.len() as u32).to_le_bytes().to_vec(),
        ),
        Syntax::EXPLICIT_LE,
    )?;
    out.extend_from_slice(&body);
    let syntax = Syntax {
        deflated: false,
        ..syntax
    };
    encode_dataset(out, ds, syntax)
}

/// Encodes the elements of a data set (no meta) in `syntax` (never deflated).
pub fn encode_dataset(out: &mut Vec<u8>, ds: &DataSet<'_>, syntax: Syntax) -> Result<()> {
    for e in &ds.elements {
        encode_element(out, e, syntax)?;
    }
    Ok(())
}

fn put_u16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put_u32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put_tag(out: &mut Vec<u8>, tag: u32, be: bool) {
    put_u16(out, (tag >> 16) as u16, be);
    put_u16(out, tag as u16, be);
}

fn header(out: &mut Vec<u8>, tag: u32, vr: Vr, len: u32, syntax: Syntax) -> Result<()> {
    let be = syntax.big_endian;
    put_tag(out, tag, be);
    if !syntax.explicit {
        put_u32(out, len, be);
    } else if vr.has_long_length() {
        out.extend_from_slice(&vr.0);
        out.extend_from_slice(&[0, 0]);
        put_u32(out, len, be);
    } else {
        if len > 0xFFFF {
            return ValueTooLongSnafu {
                tag: tag_str(tag),
                vr: vr.to_string(),
                len: len as usize,
            }
            .fail();
        }
        out.extend_from_slice(&vr.0);
        put_u16(out, len as u16, be);
    }
    Ok(())
}

fn encode_element(out: &mut Vec<u8>, e: &Element<'_>, syntax: Syntax) -> Result<()> {
    let be = syntax.big_endian;
    match &e.value {
        Value::Bytes(b) => {
            let odd = b.len() % 2;
            let len = u32::try_from(b.len() + odd).map_err(|_| Error::ValueTooLong {
                tag: tag_str(e.tag),
                vr: e.vr.to_string(),
                len: b.len(),
            })?;
            header(out, e.tag, e.vr, len, syntax)?;
            out.extend_from_slice(b);
            if odd == 1 {
                out.push(e.vr.padding());
            }
        }
        Value::Seq(items) => {
            let inner = syntax;
            header(out, e.tag, Vr::SQ, UNDEFINED, syntax)?;
            for item in items {
                put_tag(out, ITEM, inner.big_endian);
                put_u32(out, UNDEFINED, inner.big_endian);
                encode_dataset(out, item, inner)?;
                put_tag(out, ITEM_DELIMITER, inner.big_endian);
                put_u32(out, 0, inner.big_endian);
            }
            put_tag(out, SEQUENCE_DELIMITER, inner.big_endian);
            put_u32(out, 0, inner.big_endian);
        }
        Value::Fragments(frags) => {
            header(
                out,
                e.tag,
                if e.vr == Vr::OW { Vr::OW } else { Vr::OB },
                UNDEFINED,
                syntax,
            )?;
            for f in frags {
                let odd = f.len() % 2;
                put_tag(out, ITEM, be);
                put_u32(out, (f.len() + odd) as u32, be);
                out.extend_from_slice(f);
                if odd == 1 {
                    out.push(0);
                }
            }
            put_tag(out, SEQUENCE_DELIMITER, be);
            put_u32(out, 0, be);
        }
    }
    Ok(())
}
