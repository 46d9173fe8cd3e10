//! Append-only, hash-chained audit log of the dicom-deid gateway, and its verifier.
//!
//! The gateway writes one [`Record`] per instance per event (received, rejected, queued,
//! delivered, dead-lettered) through an [`AuditLog`]; [`verify`] (and `dicom-deid audit
//! verify FILE`) reads a log back and names the first line that was altered, removed,
//! reordered or is malformed.
//!
//! What this crate does **not** do: it knows nothing of DICOM, and it cannot know whether a
//! value is patient data. The caller fills every field of a [`Record`] and must put only
//! keyed hashes, new (pseudonymous) UIDs, counts, codes and tag names in it — never a raw
//! identifier or element value (DESIGN.md §2, invariant 3). [`testing::assert_no_forbidden`]
//! helps tests prove it. The log does no locking: one writer per file (the server wraps its
//! `AuditLog` in a `Mutex`).
//!
//! ```
//! use dicom_deid_audit::{verify, AuditLog, Event, Record, SyncPolicy};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("audit.jsonl");
//! let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
//! let seq = log
//!     .append(&Record { event: Event::Received, instance: "spool-0001".into(), ..Record::default() })
//!     .unwrap();
//! assert_eq!(seq, 1);
//!
//! let summary = verify(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
//! assert_eq!((summary.lines, summary.last_seq), (1, 1));
//! assert_eq!(summary.last_hash.as_deref(), log.last_hash());
//! ```
//!
//! # Line format
//!
//! A log is a UTF-8 file of lines, each ended by one line feed (`\n`, byte 0x0A). Each line
//! is one compact JSON object (no whitespace between tokens) whose members come in this
//! order:
//!
//! ```text
//! {"seq":N,"time":"T","prev":"P","hash":"H",<record members>}
//! ```
//!
//! - `seq`: 1 on the first line of a file, then +1 per line (so in an intact file `seq` is
//!   the line number); decimal, no leading zeros.
//! - `time`: when the line was written, RFC 3339 UTC with milliseconds, always 24 characters:
//!   `2026-11-23T16:23:11.042Z`.
//! - `prev`: lowercase hex SHA-256 of the previous line's bytes (the whole line, its `hash`
//!   member included, without the line feed); 64 `0` on the first line.
//! - `hash`: lowercase hex SHA-256 of this line's *content*, defined below.
//! - then the [`Record`] members in the order its fields are declared, members whose value is
//!   absent (`None`) left out; maps (`actions`, `timings_ms`) with their keys in byte order.
//!
//! ## The content that `hash` covers
//!
//! The content of a line is the line's bytes with its hash member — the 74 bytes
//! `,"hash":"` + H + `"` that follow the `prev` member — removed:
//!
//! ```text
//! line:    {"seq":N,"time":"T","prev":"P","hash":"H","event":"received",...}
//! content: {"seq":N,"time":"T","prev":"P","event":"received",...}
//! hash  =  lowercase_hex(SHA-256(content))
//! prev  =  lowercase_hex(SHA-256(previous line without its "\n"))
//! ```
//!
//! Because the hash covers the bytes actually written, a verifier never re-serialises JSON
//! (so number and string formatting cannot disagree between implementations). To check a
//! line, a third party: parses it as JSON and reads `seq`, `time`, `prev` and `hash`;
//! checks that the line starts with exactly `{"seq":N,"time":"T","prev":"P","hash":"H"`
//! rebuilt from those values and continues with `,` or ends with `}` (otherwise the line is
//! *malformed*); removes the hash member as above and compares SHA-256 of the rest with H.
//!
//! # What [`verify`] reports
//!
//! The first problem, with its 1-based line number, checked in this order for each line:
//!
//! 1. **malformed** — not a complete line (a write cut short: the file does not end with a
//!    line feed), longer than [`MAX_LINE`] bytes, not JSON, missing `seq`/`time`/`prev`/`hash`,
//!    or not in the canonical form above;
//! 2. **altered** — the line's content does not match its `hash` (any byte of any field was
//!    changed, including `seq`, `prev` and `hash` themselves);
//! 3. **removed** / **reordered** — `seq` is not the previous line's `seq` + 1. If a line with
//!    one of the skipped numbers turns up later in the file, or the number is lower than
//!    expected (a line moved later, or duplicated), the line is *reordered*; otherwise lines
//!    were *removed* and the report names the line where the gap is and the missing numbers;
//! 4. **altered** — `prev` does not match the previous line: the previous line was edited and
//!    its `hash` recomputed (reported at the previous line), or, on line 1, `prev` is not
//!    64 zeros.
//!
//! **Limits.** The chain is not keyed: someone who rewrites every line from the edit to the
//! end, recomputing each hash, produces a file that verifies. And deleting the *last* lines
//! of a file (truncating it at a line boundary) cannot be detected from the file alone. For
//! both, anchor the log outside it: record [`VerifySummary::last_hash`] (or
//! [`AuditLog::last_hash`]) and `last_seq` somewhere the writer cannot change — a ticket, a
//! signed e-mail, another machine — and check later that the line with that `seq` still
//! carries that `hash`.
//!
//! # Crashes and recovery
//!
//! Each record is written with a single `write` of the whole line (and `fsync` under
//! [`SyncPolicy::EveryRecord`]). A crash can still leave a partial last line. [`AuditLog::open`]
//! refuses to continue such a file — or one whose last line is not a valid record — and its
//! error names the line. The operator's recovery: run `dicom-deid audit verify FILE`, which
//! names the incomplete line and the byte where the complete lines end; keep a copy of the
//! file, truncate it there (`truncate -s BYTES FILE`), verify again, and restart. The record
//! whose write was cut short was never acknowledged as written.

mod line;
mod log;
mod record;
pub mod testing;
mod time;
mod verify;

pub use line::{Entry, MAX_LINE};
pub use log::{AuditError, AuditLog, SyncPolicy, Syncer};
pub use record::{Event, NewUids, OriginalHashes, Record};
pub use time::rfc3339_utc;
pub use verify::{verify, VerifyError, VerifySummary};
