//! The audit log as the gateway and an auditor use it: append, reopen, verify, and every
//! kind of tampering found at the right line.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use dicom_deid_audit::testing::{assert_file_has_no, assert_no_forbidden};
use dicom_deid_audit::{
    verify, AuditError, AuditLog, Entry, Event, NewUids, OriginalHashes, Record, SyncPolicy,
    VerifyError, VerifySummary,
};
use sha2::{Digest, Sha256};

/// A record with every field set, as the server would write for a delivered instance.
fn full(instance: &str) -> Record {
    Record {
        event: Event::Delivered,
        instance: instance.to_string(),
        route: Some("research".into()),
        profile: Some("basic".into()),
        profile_version: Some("3".into()),
        key_id: Some("k-5f3a".into()),
        original: Some(OriginalHashes {
            study_uid: Some("a1".repeat(16)),
            series_uid: Some("b2".repeat(16)),
            sop_uid: Some("c3".repeat(16)),
            patient_id: Some("d4".repeat(16)),
        }),
        new_uids: Some(NewUids {
            study_uid: "2.25.1".into(),
            series_uid: "2.25.2".into(),
            sop_uid: "2.25.3".into(),
        }),
        actions: Some(BTreeMap::from([
            ("remove".into(), 12),
            ("replace_uid".into(), 3),
        ])),
        masked_regions: Some(2),
        calling_ae: Some("MODALITY".into()),
        transfer_syntax_in: Some("1.2.840.10008.1.2.4.50".into()),
        transfer_syntax_out: Some("1.2.840.10008.1.2.1".into()),
        destination: Some("orthanc".into()),
        destination_status: Some(200),
        reason: None,
        timings_ms: Some(BTreeMap::from([
            ("scrub".into(), 1.25),
            ("total".into(), 7.5),
        ])),
    }
}

fn simple(event: Event, instance: &str) -> Record {
    Record {
        event,
        instance: instance.to_string(),
        ..Record::default()
    }
}

/// A log of `n` records in a fresh folder.
fn log_of(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
    for i in 1..=n {
        let record = if i % 2 == 0 {
            full(&format!("spool-{i}"))
        } else {
            simple(Event::Queued, &format!("spool-{i}"))
        };
        assert_eq!(log.append(&record).unwrap(), i as u64);
    }
    (dir, path)
}

fn check(path: &Path) -> Result<VerifySummary, VerifyError> {
    verify(BufReader::new(fs::File::open(path).unwrap()))
}

fn check_bytes(bytes: &[u8]) -> Result<VerifySummary, VerifyError> {
    verify(bytes)
}

/// The file's lines, each without its line feed.
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Recomputes a line's `hash` from the crate docs alone: drop the 74-byte hash member that
/// follows `prev`, hash the rest.
fn rehash(line: &str) -> String {
    let start = line.find(r#","hash":""#).unwrap();
    let content = format!("{}{}", &line[..start], &line[start + 74..]);
    let old = &line[start + 9..start + 73];
    line.replacen(old, &sha256_hex(content.as_bytes()), 1)
}

#[test]
fn appends_then_reopens_and_continues_the_chain() {
    let (_dir, path) = log_of(3);
    let mut log = AuditLog::open(&path, SyncPolicy::Never).unwrap();
    assert_eq!(log.last_seq(), 3);
    assert_eq!(log.append(&simple(Event::Delivered, "spool-4")).unwrap(), 4);
    assert_eq!(log.append(&simple(Event::Rejected, "part-2")).unwrap(), 5);
    log.sync().unwrap();
    let last_hash = log.last_hash().map(str::to_string);
    drop(log);

    let summary = check(&path).unwrap();
    assert_eq!(summary.lines, 5);
    assert_eq!(summary.last_seq, 5);
    assert_eq!(summary.last_hash, last_hash);

    let reopened = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
    assert_eq!(reopened.last_seq(), 5);
    assert_eq!(reopened.last_hash(), last_hash.as_deref());
}

#[test]
fn the_line_format_is_the_documented_one() {
    let (_dir, path) = log_of(2);
    let lines = lines(&path);
    let zeros = "0".repeat(64);
    assert!(lines[0].starts_with(r#"{"seq":1,"time":""#), "{}", lines[0]);
    assert!(lines[0].contains(&format!(r#""prev":"{zeros}","hash":""#)));
    assert!(lines[0].ends_with(r#","event":"queued","instance":"spool-1"}"#));
    assert!(lines[1].contains(&format!(r#""prev":"{}""#, sha256_hex(lines[0].as_bytes()))));

    // Hashes recomputed from the docs alone match the file: a third party can verify.
    for line in &lines {
        assert_eq!(&rehash(line), line);
    }

    let entry = Entry::parse(&lines[1]).unwrap();
    assert_eq!(entry.seq, 2);
    assert_eq!(entry.record, full("spool-2"));
    assert_eq!(entry.time.len(), 24);
    assert!(entry.time.ends_with('Z'));
    let first = Entry::parse(&lines[0]).unwrap();
    assert_eq!(first.prev, zeros);
    assert_eq!(first.record, simple(Event::Queued, "spool-1"));

    // Events are snake_case.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("a.jsonl");
    let mut log = AuditLog::open(&other, SyncPolicy::Never).unwrap();
    log.append(&simple(Event::DeadLettered, "spool-9")).unwrap();
    assert!(fs::read_to_string(&other)
        .unwrap()
        .contains(r#""event":"dead_lettered""#));
}

#[test]
fn an_empty_or_new_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
    assert_eq!((log.last_seq(), log.last_hash()), (0, None));
    drop(log);
    let empty = VerifySummary {
        lines: 0,
        last_seq: 0,
        last_hash: None,
    };
    assert_eq!(check(&path).unwrap(), empty);
    assert_eq!(check_bytes(b"").unwrap(), empty);
    // Reopening an empty file starts at 1.
    let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
    assert_eq!(log.append(&simple(Event::Received, "spool-1")).unwrap(), 1);
}

#[test]
fn changing_any_byte_of_a_line_is_found_at_that_line() {
    let (_dir, path) = log_of(3);
    let lines = lines(&path);
    let target = &lines[1];
    let chain_fields_end = target.find(r#","event""#).unwrap();
    for (i, b) in target.bytes().enumerate() {
        let replacement = match b {
            b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => b + 1,
            b'9' => b'0',
            b'z' | b'Z' => b - 1,
            _ => continue,
        };
        let mut tampered = lines.clone();
        let mut bytes = target.clone().into_bytes();
        bytes[i] = replacement;
        tampered[1] = String::from_utf8(bytes).unwrap();
        match check_bytes(&join(&tampered)) {
            Err(VerifyError::Altered { line: 2, .. }) => {}
            // A chain field that no longer parses (`seq` → `teq`, a non-hex digit in
            // `prev`, a broken `time`) is malformed rather than altered.
            Err(VerifyError::Malformed { line: 2, .. }) if i < chain_fields_end => {}
            other => panic!("byte {i} of line 2: {other:?}"),
        }
    }
}

#[test]
fn each_field_changed_is_altered() {
    let (_dir, path) = log_of(3);
    let lines = lines(&path);
    for (from, to) in [
        (r#""destination_status":200"#, r#""destination_status":500"#),
        (r#""masked_regions":2"#, r#""masked_regions":0"#),
        (r#""event":"delivered""#, r#""event":"rejected""#),
        (r#""remove":12"#, r#""remove":1"#),
        (r#""seq":2"#, r#""seq":9"#),
        (r#""total":7.5"#, r#""total":1.0"#),
        (r#""reason""#, r#""reason""#), // absent: no change, no error
    ] {
        let mut tampered = lines.clone();
        tampered[1] = tampered[1].replacen(from, to, 1);
        let result = check_bytes(&join(&tampered));
        if from == to {
            assert!(result.is_ok());
            continue;
        }
        assert!(
            matches!(result, Err(VerifyError::Altered { line: 2, .. })),
            "{from} -> {to}: {result:?}"
        );
    }
    // A field added to the record is an alteration too.
    let mut tampered = lines.clone();
    tampered[2] = tampered[2].replacen('}', r#","reason":"x"}"#, 1);
    let result = check_bytes(&join(&tampered));
    assert!(
        matches!(result, Err(VerifyError::Altered { line: 3, .. })),
        "{result:?}"
    );
}

#[test]
fn an_edit_with_a_recomputed_hash_is_found_through_the_next_line() {
    let (_dir, path) = log_of(4);
    let mut lines = lines(&path);
    lines[1] = rehash(&lines[1].replacen(
        r#""destination_status":200"#,
        r#""destination_status":201"#,
        1,
    ));
    let err = check_bytes(&join(&lines)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Altered { line: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("line 2: altered: the next line's prev"),
        "{err}"
    );

    // On line 1 the only anchor is the zero prev.
    let (_dir, path) = log_of(2);
    let mut lines = self::lines(&path);
    lines[0] = rehash(&lines[0].replacen(&"0".repeat(64), &"1".repeat(64), 1));
    let err = check_bytes(&join(&lines)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Altered { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn a_deleted_line_is_removed_at_the_gap() {
    let (_dir, path) = log_of(5);
    let all = lines(&path);

    let mut without_third = all.clone();
    without_third.remove(2);
    let err = check_bytes(&join(&without_third)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Removed {
                line: 3,
                expected_seq: 3,
                found_seq: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "line 3: removed: expected seq 3, found 4 (records 3 to 3 are missing before this line)"
    );

    let mut without_first_two = all.clone();
    without_first_two.drain(..2);
    let err = check_bytes(&join(&without_first_two)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Removed {
                line: 1,
                expected_seq: 1,
                found_seq: 3
            }
        ),
        "{err:?}"
    );
}

#[test]
fn swapped_moved_and_duplicated_lines_are_reordered() {
    let (_dir, path) = log_of(6);
    let all = lines(&path);

    let mut swapped = all.clone();
    swapped.swap(2, 3);
    let err = check_bytes(&join(&swapped)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Reordered {
                line: 3,
                expected_seq: 3,
                found_seq: 4
            }
        ),
        "{err:?}"
    );

    // Line 2 moved to the end: the gap at line 2 is closed by a later line.
    let mut moved = all.clone();
    let second = moved.remove(1);
    moved.push(second);
    let err = check_bytes(&join(&moved)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Reordered { line: 2, .. }),
        "{err:?}"
    );

    // The last line moved to the front.
    let mut to_front = all.clone();
    let last = to_front.pop().unwrap();
    to_front.insert(0, last);
    let err = check_bytes(&join(&to_front)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Reordered { line: 1, .. }),
        "{err:?}"
    );

    let mut duplicated = all.clone();
    duplicated.insert(4, all[3].clone());
    let err = check_bytes(&join(&duplicated)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Reordered {
                line: 5,
                expected_seq: 5,
                found_seq: 4
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncation_mid_line_and_junk_are_malformed() {
    let (_dir, path) = log_of(3);
    let bytes = fs::read(&path).unwrap();
    let two_lines: usize = lines(&path)[..2].iter().map(|l| l.len() + 1).sum();

    let cut = &bytes[..bytes.len() - 10];
    let err = check_bytes(cut).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { line: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("complete lines before it end at byte {two_lines}")),
        "{err}"
    );

    // Cut just before the final line feed: still incomplete.
    let err = check_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { line: 3, .. }),
        "{err:?}"
    );

    let mut all = lines(&path);
    all.insert(1, "not json".to_string());
    let err = check_bytes(&join(&all)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { line: 2, .. }),
        "{err:?}"
    );

    let mut blank = lines(&path);
    blank.insert(3, String::new());
    let err = check_bytes(&join(&blank)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { line: 4, .. }),
        "{err:?}"
    );

    let long = vec![b'x'; dicom_deid_audit::MAX_LINE + 1];
    let err = check_bytes(&long).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn deleting_the_last_line_shows_only_against_an_anchor() {
    let (_dir, path) = log_of(4);
    let anchor = check(&path).unwrap();
    let mut all = lines(&path);
    all.pop();
    let summary = check_bytes(&join(&all)).unwrap();
    assert_eq!(summary.lines, 3);
    assert_ne!(summary.last_hash, anchor.last_hash);
    assert_eq!(anchor.last_seq, 4);
}

#[test]
fn a_crash_mid_line_is_refused_on_open_and_recovered_by_truncation() {
    let (_dir, path) = log_of(3);
    let good_len = fs::metadata(&path).unwrap().len();
    // A crash halfway through the fourth write.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":4,"time":"2026-11-23T16:2"#);
    fs::write(&path, &bytes).unwrap();

    let err = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap_err();
    assert!(
        matches!(err, AuditError::IncompleteTail { line: 4, keep_bytes, .. } if keep_bytes == good_len),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("incomplete line 4"), "{message}");
    assert!(
        message.contains(&format!("truncate -s {good_len}")),
        "{message}"
    );
    // The verifier points at the same line and byte.
    let err = check(&path).unwrap_err();
    assert!(
        err.to_string().contains(&format!("end at byte {good_len}")),
        "{err}"
    );
    // Nothing was appended by the refused open.
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // The operator's recovery: truncate to the last good line, verify, restart.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good_len)
        .unwrap();
    assert_eq!(check(&path).unwrap().lines, 3);
    let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
    assert_eq!(log.append(&simple(Event::Queued, "spool-4")).unwrap(), 4);
    assert_eq!(check(&path).unwrap().last_seq, 4);
}

#[test]
fn an_invalid_last_line_is_refused_on_open_with_its_number() {
    let (_dir, path) = log_of(3);
    let mut all = lines(&path);

    all.push("garbage".to_string());
    fs::write(&path, join(&all)).unwrap();
    let err = AuditLog::open(&path, SyncPolicy::Never).unwrap_err();
    assert!(
        matches!(err, AuditError::BadTail { line: 4, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("garbage"), "{err}");

    all.pop();
    all[2] = all[2].replacen("spool-3", "spool-X", 1);
    fs::write(&path, join(&all)).unwrap();
    let err = AuditLog::open(&path, SyncPolicy::Never).unwrap_err();
    assert!(
        matches!(err, AuditError::BadTail { line: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("altered"), "{err}");
}

#[test]
fn non_finite_timings_are_refused_and_the_chain_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path, SyncPolicy::Never).unwrap();
    let mut record = simple(Event::Received, "spool-1");
    record.timings_ms = Some(BTreeMap::from([("parse".into(), f64::NAN)]));
    let err = log.append(&record).unwrap_err();
    assert!(
        matches!(err, AuditError::NotFinite { seq: 1, .. }),
        "{err:?}"
    );
    assert_eq!(log.append(&simple(Event::Received, "spool-1")).unwrap(), 1);
    assert_eq!(check(&path).unwrap().lines, 1);
}

#[test]
fn lines_hold_only_what_the_caller_gave() {
    let (_dir, path) = log_of(4);
    // Values a careless caller could leak; the records above hold none of them.
    let phi = ["Doe^Jane", "PID-0001", "1.2.3.4.5", "19700101"];
    assert_file_has_no(&path, &phi);
    for line in lines(&path) {
        assert_no_forbidden(&line, &phi);
    }
}

#[test]
fn an_overlong_line_is_refused_on_open_and_counted_in_the_bytes_to_keep() {
    let (_dir, path) = log_of(2);
    let long = "x".repeat(dicom_deid_audit::MAX_LINE + 10);

    let mut all = lines(&path);
    all.push(long.clone());
    fs::write(&path, join(&all)).unwrap();
    let err = AuditLog::open(&path, SyncPolicy::Never).unwrap_err();
    assert!(
        matches!(err, AuditError::BadTail { line: 3, .. }),
        "{err:?}"
    );

    // An overlong line, then a cut-off one: keep everything before the cut.
    let keep = fs::metadata(&path).unwrap().len();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4");
    fs::write(&path, bytes).unwrap();
    let err = AuditLog::open(&path, SyncPolicy::Never).unwrap_err();
    assert!(
        matches!(err, AuditError::IncompleteTail { line: 4, keep_bytes, .. } if keep_bytes == keep),
        "{err:?}"
    );
}
