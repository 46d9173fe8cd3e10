//! One line of the log: encoding, the canonical-form and hash check, and reading lines
//! with a length bound. The format is documented in the crate docs.

use std::io::{self, BufRead};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::time::is_rfc3339_millis;
use crate::Record;

/// The longest line, in bytes without the line feed, that the log writes or the verifier
/// reads (1 MiB). Real records are a few hundred bytes.
pub const MAX_LINE: usize = 1 << 20;

/// `prev` of the first line.
pub(crate) const ZERO_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One parsed line: the chain fields and the record.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the line was written (RFC 3339 UTC).
    pub time: String,
    /// Hex SHA-256 of the previous line.
    pub prev: String,
    /// Hex SHA-256 of this line's content.
    pub hash: String,
    /// What the line records.
    #[serde(flatten)]
    pub record: Record,
}

impl Entry {
    /// Parses one line (with or without its line feed). This reads the record; it does not
    /// check the chain — that is [`verify`](crate::verify)'s job.
    pub fn parse(line: &str) -> Result<Entry, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// The chain fields of a line; other members are not looked at here.
#[derive(Deserialize, Debug)]
pub(crate) struct Header {
    pub seq: u64,
    pub time: String,
    pub prev: String,
    pub hash: String,
}

/// Only `seq`, for looking ahead past a gap.
#[derive(Deserialize)]
pub(crate) struct SeqOnly {
    pub seq: u64,
}

/// Why a line fails [`check`].
#[derive(Debug, PartialEq)]
pub(crate) enum Fault {
    /// Not a record in canonical form; the text never quotes the line.
    Malformed(String),
    /// Its content does not match its `hash`.
    Altered,
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn is_hash_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn head(seq: u64, time: &str, prev: &str) -> String {
    format!(r#"{{"seq":{seq},"time":"{time}","prev":"{prev}""#)
}

fn hash_member(hash: &str) -> String {
    format!(r#","hash":"{hash}""#)
}

/// The line (without its line feed) and its `hash` for `record` at `seq`.
pub(crate) fn encode(
    seq: u64,
    time: &str,
    prev: &str,
    record: &Record,
) -> Result<(Vec<u8>, String), serde_json::Error> {
    let body = serde_json::to_vec(record)?; // `{...}`, members in declaration order
    let head = head(seq, time, prev);
    // The record's members follow the chain fields: `,"event":...}`, or just `}`.
    let tail: &[u8] = if body.len() > 2 { &body[1..] } else { b"}" };
    let mut content = Vec::with_capacity(head.len() + 1 + tail.len());
    content.extend_from_slice(head.as_bytes());
    if body.len() > 2 {
        content.push(b',');
    }
    content.extend_from_slice(tail);
    let hash = sha256_hex(&content);

    let mut line = Vec::with_capacity(content.len() + 74);
    line.extend_from_slice(head.as_bytes());
    line.extend_from_slice(hash_member(&hash).as_bytes());
    line.extend_from_slice(&content[head.len()..]);
    Ok((line, hash))
}

/// Checks one line (without its line feed): canonical form, then `hash`.
pub(crate) fn check(line: &[u8]) -> Result<Header, Fault> {
    let header: Header = serde_json::from_slice(line).map_err(|e| {
        // serde_json's messages can quote the offending value: describe it ourselves.
        Fault::Malformed(match e.classify() {
            serde_json::error::Category::Data => {
                "not an audit record: `seq`, `time`, `prev` or `hash` is missing, repeated or \
                 of the wrong type"
                    .to_string()
            }
            _ if std::str::from_utf8(line).is_err() => "not UTF-8".to_string(),
            _ => format!("not a JSON object (column {})", e.column()),
        })
    })?;
    if !is_rfc3339_millis(&header.time) {
        return Err(Fault::Malformed(
            "`time` is not RFC 3339 UTC with milliseconds".to_string(),
        ));
    }
    if !is_hash_hex(&header.prev) || !is_hash_hex(&header.hash) {
        return Err(Fault::Malformed(
            "`prev` or `hash` is not 64 lowercase hex digits".to_string(),
        ));
    }
    let head = head(header.seq, &header.time, &header.prev);
    let member = hash_member(&header.hash);
    let rest = line
        .strip_prefix(head.as_bytes())
        .and_then(|l| l.strip_prefix(member.as_bytes()))
        .filter(|rest| *rest == b"}" || (rest.starts_with(b",") && rest.ends_with(b"}")))
        .ok_or_else(|| {
            Fault::Malformed(
                "not in canonical form (compact JSON starting with seq, time, prev, hash)"
                    .to_string(),
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(head.as_bytes());
    hasher.update(rest);
    if hex(&hasher.finalize()) != header.hash {
        return Err(Fault::Altered);
    }
    Ok(header)
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Read {
    /// End of input, nothing read.
    Eof,
    /// A line ended by `\n`; the buffer holds it without the `\n`.
    Complete,
    /// Bytes at the end of the input without a `\n`; the buffer holds them.
    Incomplete,
    /// More than `max` bytes before the `\n` (or the end); they were skipped, and the
    /// buffer holds the first `max`. `ended` says whether a `\n` was found; `len` is the
    /// line's length without it.
    TooLong { ended: bool, len: u64 },
}

/// Reads one line into `buf` (cleared first), keeping at most `max` bytes.
pub(crate) fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Read> {
    buf.clear();
    let mut too_long = false;
    let mut len = 0u64;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Read::TooLong { ended: false, len },
                (false, true) => Read::Eof,
                (false, false) => Read::Incomplete,
            });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        len += chunk.len() as u64;
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        if found {
            return Ok(if too_long {
                Read::TooLong { ended: true, len }
            } else {
                Read::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn record() -> Record {
        Record {
            event: Event::Delivered,
            instance: "spool-1".into(),
            destination_status: Some(200),
            ..Record::default()
        }
    }

    #[test]
    fn an_encoded_line_checks_and_the_hash_covers_the_line_without_its_hash_member() {
        let time = "2026-11-23T16:23:11.042Z";
        let (line, hash) = encode(7, time, ZERO_HASH, &record()).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        let expected_content = format!(
            r#"{{"seq":7,"time":"{time}","prev":"{ZERO_HASH}","event":"delivered","instance":"spool-1","destination_status":200}}"#
        );
        assert_eq!(hash, sha256_hex(expected_content.as_bytes()));
        assert_eq!(
            text,
            expected_content.replacen(r#","event""#, &format!(r#","hash":"{hash}","event""#), 1)
        );
        let header = check(&line).unwrap();
        assert_eq!((header.seq, header.hash), (7, hash));
    }

    #[test]
    fn check_refuses_non_canonical_lines_without_quoting_them() {
        let time = "2026-11-23T16:23:11.042Z";
        let (line, _) = encode(1, time, ZERO_HASH, &record()).unwrap();
        let text = String::from_utf8(line).unwrap();
        let spaced = text.replacen(r#""seq":1"#, r#""seq": 1"#, 1);
        let cases = [
            spaced.as_str(),
            "",
            "{",
            r#"{"seq":1}"#,
            r#"{"seq":"secret-value","time":"x","prev":"y","hash":"z"}"#,
        ];
        for case in cases {
            match check(case.as_bytes()) {
                Err(Fault::Malformed(reason)) => {
                    assert!(!reason.contains("secret-value"), "{reason}")
                }
                other => panic!("{case:?}: {other:?}"),
            }
        }
        assert!(matches!(check(b"\xff\xfe"), Err(Fault::Malformed(r)) if r == "not UTF-8"));
    }

    #[test]
    fn read_line_distinguishes_complete_incomplete_and_too_long_lines() {
        let mut input: &[u8] = b"abc\n\nabcdefgh\nxy";
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Read::Complete);
        assert_eq!(buf, b"abc");
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Read::Complete);
        assert_eq!(buf, b"");
        assert_eq!(
            read_line(&mut input, &mut buf, 4).unwrap(),
            Read::TooLong {
                ended: true,
                len: 8
            }
        );
        assert_eq!(buf, b"abcd");
        assert_eq!(
            read_line(&mut input, &mut buf, 4).unwrap(),
            Read::Incomplete
        );
        assert_eq!(buf, b"xy");
        assert_eq!(read_line(&mut input, &mut buf, 4).unwrap(), Read::Eof);
        // Past the reader's buffer size: the length still counts every byte.
        let mut long = std::io::BufReader::with_capacity(3, &b"abcdefghij"[..]);
        assert_eq!(
            read_line(&mut long, &mut buf, 4).unwrap(),
            Read::TooLong {
                ended: false,
                len: 10
            }
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
