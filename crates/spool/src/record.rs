//! The on-disk record: a checksummed header (group, meta, data length and data checksum) followed
//! by the data, in a file of its own or in a segment; and the streamed record of a segment, whose
//! data checksum is in a commit trailer after its data. See the crate docs for the byte layout.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// First bytes of every entry file and of a segment record written whole; the trailing digit is
/// the format version.
pub(crate) const MAGIC: &[u8; 8] = b"DDSPOOL1";
/// First bytes of a streamed segment record ([`encode_streamed_prefix`]): its data checksum is in
/// the trailer, and it exists only once the trailer is valid.
pub(crate) const MAGIC_STREAMED: &[u8; 8] = b"DDSPOOL2";
/// Last bytes of a committed streamed record: magic, data checksum, and a checksum binding both
/// to the record's header.
pub(crate) const COMMIT_MAGIC: &[u8; 8] = b"DDCOMMIT";
/// Length of a streamed record's trailer.
pub(crate) const TRAILER_LEN: u64 = 16;
/// The defect of a streamed record whose trailer would lie beyond the end of its segment: the
/// stream was under way when the process stopped (nothing after it in the file).
pub(crate) const UNFINISHED: Defect = "a streamed record not finished";
/// magic + header length + header checksum.
pub(crate) const PREFIX_LEN: usize = 16;
/// Largest meta blob accepted by `put`.
pub const MAX_META_LEN: usize = 1 << 20;
/// Longest destination or group name.
pub const MAX_NAME_LEN: usize = 128;
/// Fixed part of the header body: data length, data checksum, group length, meta length.
const HEADER_FIXED: usize = 8 + 4 + 2 + 4;
/// No valid header body is longer than this; a larger length field means a corrupt file.
const MAX_HEADER_LEN: usize = HEADER_FIXED + MAX_NAME_LEN + MAX_META_LEN;

/// The decoded header of an entry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub group: String,
    pub meta: Vec<u8>,
    pub data_len: u64,
    pub data_crc: u32,
    /// Offset of the first data byte in the file.
    pub data_offset: u64,
    /// Bytes after the data: the trailer of a streamed record, 0 otherwise.
    pub trailer: u64,
    /// Whether the record exists: always for a record written whole; for a streamed one, whether
    /// its trailer is valid (`data_crc` is then the trailer's).
    pub committed: bool,
}

impl Header {
    /// Where the record this header describes ends (the length of an entry file).
    pub fn file_len(&self) -> u64 {
        self.data_offset + self.data_len + self.trailer
    }
}

/// Why a file is not a valid entry. Static strings only: never file content.
pub(crate) type Defect = &'static str;

/// Length of the file `encode_prefix` + data will produce.
pub(crate) fn file_len(group: &str, meta: &[u8], data: &[u8]) -> u64 {
    (PREFIX_LEN + HEADER_FIXED + group.len() + meta.len()) as u64 + data.len() as u64
}

/// Everything that precedes the data in an entry file. The caller has checked the name and meta
/// lengths against their limits.
pub(crate) fn encode_prefix(group: &str, meta: &[u8], data: &[u8]) -> Vec<u8> {
    entry_prefix(group, meta, data.len() as u64, crc32fast::hash(data))
}

/// [`encode_prefix`] for data of `data_len` bytes whose checksum is `data_crc`.
pub(crate) fn entry_prefix(group: &str, meta: &[u8], data_len: u64, data_crc: u32) -> Vec<u8> {
    prefix(MAGIC, group, meta, data_len, data_crc)
}

/// Everything that precedes the data of a streamed segment record of `data_len` bytes, whose
/// data is not known yet: its data checksum field is 0, the checksum is in the trailer
/// ([`encode_trailer`]). Also returns the header checksum the trailer is bound to.
pub(crate) fn encode_streamed_prefix(group: &str, meta: &[u8], data_len: u64) -> (Vec<u8>, u32) {
    let out = prefix(MAGIC_STREAMED, group, meta, data_len, 0);
    let header_crc = u32::from_le_bytes(out[12..16].try_into().expect("4 bytes"));
    (out, header_crc)
}

/// The trailer that commits a streamed record: its data's checksum, bound to its header.
pub(crate) fn encode_trailer(header_crc: u32, data_crc: u32) -> [u8; TRAILER_LEN as usize] {
    let mut out = [0u8; TRAILER_LEN as usize];
    out[..8].copy_from_slice(COMMIT_MAGIC);
    out[8..12].copy_from_slice(&data_crc.to_le_bytes());
    out[12..].copy_from_slice(&trailer_crc(header_crc, data_crc).to_le_bytes());
    out
}

fn trailer_crc(header_crc: u32, data_crc: u32) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header_crc.to_le_bytes());
    h.update(&data_crc.to_le_bytes());
    h.finalize()
}

fn prefix(magic: &[u8; 8], group: &str, meta: &[u8], data_len: u64, data_crc: u32) -> Vec<u8> {
    debug_assert!(group.len() <= MAX_NAME_LEN && meta.len() <= MAX_META_LEN);
    let mut body = Vec::with_capacity(HEADER_FIXED + group.len() + meta.len());
    body.extend_from_slice(&data_len.to_le_bytes());
    body.extend_from_slice(&data_crc.to_le_bytes());
    body.extend_from_slice(&(group.len() as u16).to_le_bytes());
    body.extend_from_slice(group.as_bytes());
    body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(meta);

    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads and verifies the header of an open entry file, and checks that the file length matches
/// it. Leaves the file position at the first data byte. `Ok(Err(_))` is a corrupt file;
/// `Err(_)` an I/O error.
pub(crate) fn read_header(file: &mut File) -> std::io::Result<Result<Header, Defect>> {
    let actual_len = file.metadata()?.len();
    let header = match read_header_at(file, 0, actual_len)? {
        // Streamed records exist only in segments.
        Ok(h) if h.trailer != 0 => return Ok(Err("bad magic")),
        Ok(h) => h,
        Err(defect) => return Ok(Err(defect)),
    };
    if header.file_len() != actual_len {
        return Ok(Err("file length does not match its header"));
    }
    Ok(Ok(header))
}

/// Reads and verifies the header of an entry that starts at `start` in a file of `file_len`
/// bytes (an entry file at 0, or a record of a segment), and checks that its data ends within
/// the file. `data_offset` is absolute. For a streamed record it also reads the trailer:
/// [`UNFINISHED`] when the trailer would lie beyond the file, otherwise `committed` says whether
/// the trailer is valid. Leaves the file position at the first data byte.
pub(crate) fn read_header_at(
    file: &mut File,
    start: u64,
    file_len: u64,
) -> std::io::Result<Result<Header, Defect>> {
    file.seek(SeekFrom::Start(start))?;
    let mut prefix = [0u8; PREFIX_LEN];
    if !read_full(file, &mut prefix)? {
        return Ok(Err("shorter than its header"));
    }
    let streamed = match &prefix[..8] {
        m if m == MAGIC => false,
        m if m == MAGIC_STREAMED => true,
        _ => return Ok(Err("bad magic")),
    };
    let header_len = u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes")) as usize;
    let header_crc = u32::from_le_bytes(prefix[12..16].try_into().expect("4 bytes"));
    if !(HEADER_FIXED..=MAX_HEADER_LEN).contains(&header_len) {
        return Ok(Err("header length out of range"));
    }
    if start + (PREFIX_LEN + header_len) as u64 > file_len {
        return Ok(Err("shorter than its header"));
    }
    let mut body = vec![0u8; header_len];
    if !read_full(file, &mut body)? {
        return Ok(Err("shorter than its header"));
    }
    if crc32fast::hash(&body) != header_crc {
        return Ok(Err("header checksum mismatch"));
    }
    let mut header = match parse_body(&body) {
        Some(h) => Header {
            data_offset: start + (PREFIX_LEN + header_len) as u64,
            trailer: if streamed { TRAILER_LEN } else { 0 },
            committed: !streamed,
            ..h
        },
        None => return Ok(Err("malformed header")),
    };
    let Some(end) = header
        .data_offset
        .checked_add(header.data_len)
        .and_then(|end| end.checked_add(header.trailer))
    else {
        return Ok(Err("data length out of range"));
    };
    if end > file_len {
        return Ok(Err(if streamed {
            UNFINISHED
        } else {
            "data truncated"
        }));
    }
    if streamed {
        let mut trailer = [0u8; TRAILER_LEN as usize];
        file.seek(SeekFrom::Start(end - TRAILER_LEN))?;
        if !read_full(file, &mut trailer)? {
            return Ok(Err(UNFINISHED));
        }
        let data_crc = u32::from_le_bytes(trailer[8..12].try_into().expect("4 bytes"));
        let bound = u32::from_le_bytes(trailer[12..].try_into().expect("4 bytes"));
        header.committed =
            &trailer[..8] == COMMIT_MAGIC && bound == trailer_crc(header_crc, data_crc);
        header.data_crc = data_crc;
        file.seek(SeekFrom::Start(header.data_offset))?;
    }
    Ok(Ok(header))
}

/// Reads the data that follows a header returned by [`read_header`] and verifies its checksum.
pub(crate) fn read_data(
    file: &mut File,
    header: &Header,
) -> std::io::Result<Result<Vec<u8>, Defect>> {
    if !header.committed {
        return Ok(Err("streamed record not committed"));
    }
    let Ok(len) = usize::try_from(header.data_len) else {
        return Ok(Err("data length out of range"));
    };
    file.seek(SeekFrom::Start(header.data_offset))?;
    let mut data = vec![0u8; len];
    if !read_full(file, &mut data)? {
        return Ok(Err("data truncated"));
    }
    if crc32fast::hash(&data) != header.data_crc {
        return Ok(Err("data checksum mismatch"));
    }
    Ok(Ok(data))
}

fn parse_body(body: &[u8]) -> Option<Header> {
    let mut rest = body;
    let data_len = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let data_crc = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?);
    let group_len = u16::from_le_bytes(take(&mut rest, 2)?.try_into().ok()?) as usize;
    let group = std::str::from_utf8(take(&mut rest, group_len)?)
        .ok()?
        .to_owned();
    let meta_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    let meta = take(&mut rest, meta_len)?.to_vec();
    if !rest.is_empty() {
        return None;
    }
    Some(Header {
        group,
        meta,
        data_len,
        data_crc,
        data_offset: 0,
        trailer: 0,
        committed: true,
    })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

/// `read_exact` that reports a short file as `Ok(false)` instead of an error.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<bool> {
    match file.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_entry(
        dir: &std::path::Path,
        group: &str,
        meta: &[u8],
        data: &[u8],
    ) -> std::path::PathBuf {
        let path = dir.join("e");
        let mut f = File::create(&path).unwrap();
        f.write_all(&encode_prefix(group, meta, data)).unwrap();
        f.write_all(data).unwrap();
        path
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_entry(dir.path(), "study-1", b"{\"a\":1}", b"payload bytes");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            file_len("study-1", b"{\"a\":1}", b"payload bytes")
        );
        let mut f = File::open(&path).unwrap();
        let h = read_header(&mut f).unwrap().unwrap();
        assert_eq!(h.group, "study-1");
        assert_eq!(h.meta, b"{\"a\":1}");
        assert_eq!(h.data_len, 13);
        assert_eq!(read_data(&mut f, &h).unwrap().unwrap(), b"payload bytes");
    }

    #[test]
    fn empty_meta_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_entry(dir.path(), "g", b"", b"");
        let mut f = File::open(&path).unwrap();
        let h = read_header(&mut f).unwrap().unwrap();
        assert_eq!(read_data(&mut f, &h).unwrap().unwrap(), b"");
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_entry(dir.path(), "grp", b"meta", b"some data here");
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let mut f = File::open(&path).unwrap();
            let detected = match read_header(&mut f).unwrap() {
                Err(_) => true,
                Ok(h) => read_data(&mut f, &h).unwrap().is_err(),
            };
            assert!(detected, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_streamed_record_exists_only_with_its_trailer_and_every_flip_in_it_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let data = b"streamed data";
        let (prefix, header_crc) = encode_streamed_prefix("grp", b"meta", data.len() as u64);
        let trailer = encode_trailer(header_crc, crc32fast::hash(data));
        let read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            let mut f = File::open(&path).unwrap();
            let len = bytes.len() as u64;
            let header = read_header_at(&mut f, 0, len).unwrap();
            let data = header.as_ref().ok().map(|h| read_data(&mut f, h).unwrap());
            (header, data)
        };

        let whole = [&prefix[..], data, &trailer].concat();
        let (header, got) = read(&whole);
        let header = header.unwrap();
        assert!(header.committed);
        assert_eq!(header.file_len(), whole.len() as u64);
        assert_eq!(got.unwrap().unwrap(), data);

        // No trailer yet (or not all of it): unfinished, not a defect of the file.
        for cut in prefix.len() + data.len()..whole.len() {
            assert_eq!(read(&whole[..cut]).0, Err(UNFINISHED), "cut at {cut}");
        }
        // Room for the trailer but not a valid one: not committed, its data not handed out.
        let mut zeroed = whole.clone();
        zeroed[prefix.len() + data.len()..].fill(0);
        let (header, got) = read(&zeroed);
        assert!(!header.unwrap().committed);
        assert!(got.unwrap().is_err());
        for i in prefix.len() + data.len()..whole.len() {
            let mut bad = whole.clone();
            bad[i] ^= 0x20;
            assert!(!read(&bad).0.unwrap().committed, "flip at {i} unnoticed");
        }
        // A trailer bound to another header does not commit this one.
        let (_, other_crc) = encode_streamed_prefix("other", b"meta", data.len() as u64);
        let foreign = [
            &prefix[..],
            data,
            &encode_trailer(other_crc, crc32fast::hash(data)),
        ]
        .concat();
        assert!(!read(&foreign).0.unwrap().committed);
        // Data changed under a valid trailer: caught by the data checksum, as for any record.
        let mut bad = whole.clone();
        bad[prefix.len()] ^= 1;
        assert!(read(&bad).1.unwrap().is_err());
        // And an entry file is never a streamed record.
        std::fs::write(&path, &whole).unwrap();
        assert!(read_header(&mut File::open(&path).unwrap())
            .unwrap()
            .is_err());
    }

    #[test]
    fn truncation_and_extension_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_entry(dir.path(), "grp", b"meta", b"some data here");
        let good = std::fs::read(&path).unwrap();
        for len in 0..good.len() {
            std::fs::write(&path, &good[..len]).unwrap();
            let mut f = File::open(&path).unwrap();
            assert!(read_header(&mut f).unwrap().is_err(), "truncated to {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        let mut f = File::open(&path).unwrap();
        assert!(read_header(&mut f).unwrap().is_err());
    }
}
