//! Reading a log back and naming the first line that breaks the chain.

use std::io::{self, BufRead};

use snafu::{ResultExt, Snafu};

use crate::line::{check, read_line, sha256_hex, Fault, Read, SeqOnly, MAX_LINE, ZERO_HASH};

/// What an intact log ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// How many lines (records) the log has.
    pub lines: u64,
    /// The `seq` of the last line (0 for an empty log).
    pub last_seq: u64,
    /// The `hash` of the last line (`None` for an empty log). Deleting the last lines of a
    /// log cannot be seen in the file: record this value elsewhere to anchor the log.
    pub last_hash: Option<String>,
}

/// The first problem [`verify`] found. Line numbers count from 1. The messages name lines,
/// sequence numbers and byte offsets, never the content of a line.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum VerifyError {
    /// The line was changed after it was written.
    #[snafu(display("line {line}: altered: {why}"))]
    Altered {
        /// The line that was changed.
        line: u64,
        /// How it shows.
        why: &'static str,
    },
    /// Lines before this one were deleted.
    #[snafu(display(
        "line {line}: removed: expected seq {expected_seq}, found {found_seq} (records \
         {expected_seq} to {} are missing before this line)",
        found_seq - 1
    ))]
    Removed {
        /// The first line after the gap.
        line: u64,
        /// The `seq` this line should have.
        expected_seq: u64,
        /// The `seq` it has.
        found_seq: u64,
    },
    /// The line is out of order (moved, swapped or duplicated).
    #[snafu(display(
        "line {line}: reordered: expected seq {expected_seq}, found {found_seq} (lines were \
         moved, swapped or duplicated)"
    ))]
    Reordered {
        /// The first line out of order.
        line: u64,
        /// The `seq` this line should have.
        expected_seq: u64,
        /// The `seq` it has.
        found_seq: u64,
    },
    /// The line is not a complete audit record in canonical form.
    #[snafu(display("line {line}: malformed: {reason}"))]
    Malformed {
        /// The bad line.
        line: u64,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The log could not be read.
    #[snafu(display("line {line}: could not read: {source}"))]
    Io {
        /// The line being read.
        line: u64,
        /// The cause.
        source: io::Error,
    },
}

impl VerifyError {
    /// The 1-based line number the problem is reported at.
    pub fn line(&self) -> u64 {
        match self {
            VerifyError::Altered { line, .. }
            | VerifyError::Removed { line, .. }
            | VerifyError::Reordered { line, .. }
            | VerifyError::Malformed { line, .. }
            | VerifyError::Io { line, .. } => *line,
        }
    }
}

/// Reads a whole log and checks every line and the chain between them (see the crate docs
/// for the format and the order of the checks). Returns the first problem, or a summary
/// whose `last_hash` can anchor the log. Memory stays bounded by [`MAX_LINE`].
pub fn verify(mut reader: impl BufRead) -> Result<VerifySummary, VerifyError> {
    let mut buf = Vec::new();
    let mut lines = 0u64;
    let mut offset = 0u64; // where the complete, checked lines end
    let mut prev = ZERO_HASH.to_string();
    let mut last_seq = 0u64;
    let mut last_hash = None;
    loop {
        let line = lines + 1;
        match read_line(&mut reader, &mut buf, MAX_LINE).context(IoSnafu { line })? {
            Read::Eof => break,
            Read::Complete => {}
            Read::Incomplete => {
                return MalformedSnafu {
                    line,
                    reason: format!(
                        "incomplete (no line feed at the end of the file: a write was cut \
                         short); the complete lines before it end at byte {offset}"
                    ),
                }
                .fail()
            }
            Read::TooLong { .. } => {
                return MalformedSnafu {
                    line,
                    reason: format!("longer than {MAX_LINE} bytes"),
                }
                .fail()
            }
        }
        let header = match check(&buf) {
            Ok(header) => header,
            Err(Fault::Malformed(reason)) => return MalformedSnafu { line, reason }.fail(),
            Err(Fault::Altered) => {
                return AlteredSnafu {
                    line,
                    why: "its content does not match its hash",
                }
                .fail()
            }
        };
        let expected_seq = last_seq + 1;
        if header.seq != expected_seq {
            let found_seq = header.seq;
            let reordered =
                found_seq < expected_seq || seen_later(&mut reader, line, expected_seq..found_seq)?;
            return if reordered {
                ReorderedSnafu {
                    line,
                    expected_seq,
                    found_seq,
                }
                .fail()
            } else {
                RemovedSnafu {
                    line,
                    expected_seq,
                    found_seq,
                }
                .fail()
            };
        }
        if header.prev != prev {
            return if line == 1 {
                AlteredSnafu {
                    line,
                    why: "the first line's prev is not 64 zeros",
                }
                .fail()
            } else {
                AlteredSnafu {
                    line: line - 1,
                    why: "the next line's prev does not match this line (its hash was \
                          recomputed after an edit, or the next line's prev was changed)",
                }
                .fail()
            };
        }
        prev = sha256_hex(&buf);
        last_seq = header.seq;
        last_hash = Some(header.hash);
        lines = line;
        offset += buf.len() as u64 + 1;
    }
    Ok(VerifySummary {
        lines,
        last_seq,
        last_hash,
    })
}

/// Whether a line after `line` carries a `seq` in `missing`: then the gap at `line` is a
/// move, not a deletion. Unreadable lines are skipped; only an I/O error stops the search.
fn seen_later(
    reader: &mut impl BufRead,
    mut line: u64,
    missing: std::ops::Range<u64>,
) -> Result<bool, VerifyError> {
    let mut buf = Vec::new();
    loop {
        line += 1;
        match read_line(reader, &mut buf, MAX_LINE).context(IoSnafu { line })? {
            Read::Complete | Read::Incomplete => {}
            Read::TooLong { ended: true, .. } => continue,
            Read::Eof | Read::TooLong { ended: false, .. } => return Ok(false),
        }
        if let Ok(SeqOnly { seq }) = serde_json::from_slice::<SeqOnly>(&buf) {
            if missing.contains(&seq) {
                return Ok(true);
            }
        }
    }
}
