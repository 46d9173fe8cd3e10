//! `dicom-deid audit verify` as an auditor runs it on intact and tampered logs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dicom_deid_audit::{AuditLog, Event, Record, SyncPolicy};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dicom-deid"))
}

/// Runs `dicom-deid audit verify FILES…`: (exit code, stdout, stderr).
fn verify(files: &[&Path]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = bin()
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(!stderr.contains("panic"), "the binary panicked:\n{stderr}");
    (
        status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    )
}

/// A log of `n` records; returns its path and last hash.
fn log_of(dir: &Path, name: &str, n: u32) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut log = AuditLog::open(&path, SyncPolicy::Never).unwrap();
    for i in 1..=n {
        let record = Record {
            event: Event::Queued,
            instance: format!("spool-{i}"),
            destination_status: Some(200),
            ..Record::default()
        };
        log.append(&record).unwrap();
    }
    let last = log.last_hash().unwrap_or("none").to_string();
    (path, last)
}

/// An edit of a log's lines.
type Edit = fn(&mut Vec<String>);

fn rewrite_lines(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    edit(&mut lines);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, text).unwrap();
}

#[test]
fn an_intact_log_is_ok_with_its_count_and_last_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (path, last) = log_of(dir.path(), "audit.jsonl", 3);
    let (code, stdout, stderr) = verify(&[&path]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}: ok, 3 records, last hash {last}\n", path.display())
    );
    assert_eq!(stderr, "");
}

#[test]
fn an_empty_log_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jsonl");
    fs::write(&path, "").unwrap();
    let (code, stdout, _) = verify(&[&path]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        format!("{}: ok, 0 records, last hash none\n", path.display())
    );
}

#[test]
fn each_kind_of_tampering_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Edit, &str); 4] = [
        (
            "altered",
            |l| {
                l[1] = l[1].replacen(
                    r#""destination_status":200"#,
                    r#""destination_status":201"#,
                    1,
                )
            },
            ":2: altered: its content does not match its hash",
        ),
        (
            "removed",
            |l| {
                l.remove(1);
            },
            ":2: removed: expected seq 2, found 3",
        ),
        (
            "reordered",
            |l| l.swap(2, 3),
            ":3: reordered: expected seq 3, found 4",
        ),
        (
            "malformed",
            |l| l.insert(0, "{}".to_string()),
            ":1: malformed: not an audit record",
        ),
    ];
    for (name, edit, expected) in cases {
        let (path, _) = log_of(dir.path(), &format!("{name}.jsonl"), 5);
        rewrite_lines(&path, edit);
        let (code, stdout, stderr) = verify(&[&path]);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert_eq!(stdout, "", "{name}");
        let line = stderr.lines().next().unwrap_or_default();
        assert!(
            line.starts_with(&format!("{}{expected}", path.display())),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_log_cut_mid_line_says_where_to_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_of(dir.path(), "audit.jsonl", 2);
    let good = fs::metadata(&path).unwrap().len();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":3,"ti"#);
    fs::write(&path, bytes).unwrap();
    let (code, _, stderr) = verify(&[&path]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("{}:3: malformed: incomplete", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("end at byte {good}")), "{stderr}");
}

#[test]
fn several_files_are_each_reported_and_the_worst_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (good, _) = log_of(dir.path(), "good.jsonl", 2);
    let (bad, _) = log_of(dir.path(), "bad.jsonl", 3);
    rewrite_lines(&bad, |l| {
        l.remove(0);
    });
    let missing = dir.path().join("missing.jsonl");

    let (code, stdout, stderr) = verify(&[&good, &bad]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with(&format!("{}: ok, 2 records", good.display())));
    assert!(
        stderr.starts_with(&format!("{}:1: removed", bad.display())),
        "{stderr}"
    );

    let (code, stdout, stderr) = verify(&[&good, &bad, &missing]);
    assert_eq!(code, 2);
    assert!(stdout.contains("good.jsonl: ok"));
    assert!(
        stderr.contains(&format!("{}: cannot read:", missing.display())),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = verify(&[&dir.path().join("nope.jsonl")]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(stderr.contains("nope.jsonl: cannot read:"), "{stderr}");
    // A folder opens but cannot be read.
    let (code, _, stderr) = verify(&[dir.path()]);
    assert_eq!(code, 2, "{stderr}");
}
