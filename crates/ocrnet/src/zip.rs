//! Just enough of the ZIP format to take one member out of a Python wheel held in memory:
//! the end-of-central-directory record, the central directory, one local header, and the
//! "stored" or "deflate" methods. No ZIP64, no encryption, no spanning (a wheel of the size
//! pinned here needs none of them). Every offset is checked against the buffer, so a
//! truncated or hostile archive gives an error, never a panic.

use std::io::Read;

/// Why a member could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZipError {
    /// The archive is not a ZIP file, or a structure is cut short or points outside it.
    Malformed(&'static str),
    /// The archive has no member of that name.
    Missing,
    /// The member uses a method or an extension this reader does not implement.
    Unsupported(&'static str),
    /// The member is larger than the caller allows.
    TooLarge,
}

impl std::fmt::Display for ZipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZipError::Malformed(what) => write!(f, "not a valid ZIP archive ({what})"),
            ZipError::Missing => write!(f, "the archive has no such member"),
            ZipError::Unsupported(what) => write!(f, "unsupported ZIP feature: {what}"),
            ZipError::TooLarge => write!(f, "the member is larger than allowed"),
        }
    }
}

const EOCD_SIG: u32 = 0x0605_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;

fn u16_at(buf: &[u8], at: usize) -> Result<u16, ZipError> {
    buf.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(ZipError::Malformed("truncated structure"))
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, ZipError> {
    buf.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(ZipError::Malformed("truncated structure"))
}

/// The uncompressed bytes of the member called `name`, at most `max_len` of them.
pub(crate) fn extract(archive: &[u8], name: &str, max_len: usize) -> Result<Vec<u8>, ZipError> {
    if archive.len() < EOCD_LEN {
        return Err(ZipError::Malformed("too short"));
    }
    // The end record sits in the last 22 bytes plus up to 65535 bytes of comment.
    let earliest = archive.len().saturating_sub(EOCD_LEN + 0xFFFF);
    let eocd = (earliest..=archive.len() - EOCD_LEN)
        .rev()
        .find(|&at| u32_at(archive, at) == Ok(EOCD_SIG))
        .ok_or(ZipError::Malformed("no end of central directory"))?;
    let entries = u16_at(archive, eocd + 10)?;
    let cd_offset = u32_at(archive, eocd + 16)?;
    if entries == 0xFFFF || cd_offset == 0xFFFF_FFFF {
        return Err(ZipError::Unsupported("ZIP64"));
    }
    let mut at = cd_offset as usize;
    for _ in 0..entries {
        if u32_at(archive, at)? != CDH_SIG {
            return Err(ZipError::Malformed("bad central directory entry"));
        }
        let flags = u16_at(archive, at + 8)?;
        let method = u16_at(archive, at + 10)?;
        let compressed = u32_at(archive, at + 20)?;
        let uncompressed = u32_at(archive, at + 24)?;
        let name_len = u16_at(archive, at + 28)? as usize;
        let extra_len = u16_at(archive, at + 30)? as usize;
        let comment_len = u16_at(archive, at + 32)? as usize;
        let local = u32_at(archive, at + 42)? as usize;
        let entry_name = archive
            .get(at + 46..at + 46 + name_len)
            .ok_or(ZipError::Malformed("truncated file name"))?;
        at += 46 + name_len + extra_len + comment_len;
        if entry_name != name.as_bytes() {
            continue;
        }
        if flags & 1 != 0 {
            return Err(ZipError::Unsupported("encryption"));
        }
        if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF {
            return Err(ZipError::Unsupported("ZIP64"));
        }
        if uncompressed as usize > max_len {
            return Err(ZipError::TooLarge);
        }
        if u32_at(archive, local)? != LFH_SIG {
            return Err(ZipError::Malformed("bad local header"));
        }
        let data_at = local
            + 30
            + u16_at(archive, local + 26)? as usize
            + u16_at(archive, local + 28)? as usize;
        let data = archive
            .get(data_at..data_at + compressed as usize)
            .ok_or(ZipError::Malformed("member data outside the archive"))?;
        let out = match method {
            0 => data.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(uncompressed as usize);
                flate2::read::DeflateDecoder::new(data)
                    .take(max_len as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|_| ZipError::Malformed("corrupt deflate stream"))?;
                out
            }
            _ => return Err(ZipError::Unsupported("compression method")),
        };
        if out.len() != uncompressed as usize {
            return Err(ZipError::Malformed(
                "member size differs from the directory",
            ));
        }
        return Ok(out);
    }
    Err(ZipError::Missing)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A ZIP archive with the given (name, content, deflate?) members, written by hand.
    pub(crate) fn build(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in members {
            let data = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(content).unwrap();
                e.finish().unwrap()
            } else {
                content.to_vec()
            };
            let mut crc = flate2::Crc::new();
            crc.update(content);
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend_from_slice(&LFH_SIG.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(content.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&data);
            central.extend_from_slice(&CDH_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&crc.sum().to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(content.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn stored_and_deflated_members_come_out_whole() {
        let big: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let zip = build(&[("a/one.txt", b"first", false), ("a/two.bin", &big, true)]);
        assert_eq!(extract(&zip, "a/one.txt", 100).unwrap(), b"first");
        assert_eq!(extract(&zip, "a/two.bin", 60_000).unwrap(), big);
        assert_eq!(extract(&zip, "a/three", 100), Err(ZipError::Missing));
        assert_eq!(extract(&zip, "a/two.bin", 10), Err(ZipError::TooLarge));
    }

    #[test]
    fn truncated_or_foreign_input_is_an_error_not_a_panic() {
        let zip = build(&[("m", &[7u8; 3000], true)]);
        assert!(matches!(
            extract(b"not a zip at all, just text", "m", 10_000),
            Err(ZipError::Malformed(_))
        ));
        for cut in [1, 10, 40, 100, zip.len() / 2] {
            let mut broken = zip.clone();
            // Remove bytes from the start: every offset now points to the wrong place.
            broken.drain(..cut);
            assert!(extract(&broken, "m", 10_000).is_err(), "cut {cut}");
        }
        let mut corrupt = zip.clone();
        for b in &mut corrupt[35..60] {
            *b ^= 0x5a;
        }
        assert!(extract(&corrupt, "m", 10_000).is_err());
    }
}
