//! Helpers for tests that prove no patient data reaches the audit.
//!
//! ```
//! use dicom_deid_audit::testing::assert_no_forbidden;
//!
//! let line = r#"{"seq":1,"event":"received","instance":"spool-1"}"#;
//! assert_no_forbidden(line, &["Doe^Jane", "1.2.840.99999.1"]);
//! ```

use std::path::Path;

/// Panics if `line` contains any of `forbidden` (original UIDs, names, patient IDs, …),
/// as written or as JSON would escape it.
pub fn assert_no_forbidden(line: &str, forbidden: &[&str]) {
    for value in forbidden {
        assert!(
            !value.is_empty(),
            "an empty forbidden string matches everything"
        );
        let escaped = serde_json::to_string(value).expect("a string serialises");
        let escaped = &escaped[1..escaped.len() - 1];
        assert!(
            !line.contains(value) && !line.contains(escaped),
            "forbidden value {value:?} found in audit line: {line}"
        );
    }
}

/// Panics unless the file at `path` can be read and none of its lines contains any of
/// `forbidden` (see [`assert_no_forbidden`]).
pub fn assert_file_has_no(path: &Path, forbidden: &[&str]) {
    let text = std::fs::read(path)
        .unwrap_or_else(|e| panic!("cannot read the audit log {}: {e}", path.display()));
    for line in String::from_utf8_lossy(&text).lines() {
        assert_no_forbidden(line, forbidden);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_lines_pass() {
        assert_no_forbidden(r#"{"instance":"spool-1"}"#, &["Doe^Jane", "PID-0001"]);
        assert_no_forbidden("", &["x"]);
    }

    #[test]
    #[should_panic(expected = "forbidden value \"PID-0001\"")]
    fn a_raw_value_fails() {
        assert_no_forbidden(r#"{"reason":"bad PID-0001"}"#, &["Doe^Jane", "PID-0001"]);
    }

    #[test]
    #[should_panic(expected = "forbidden value")]
    fn an_escaped_value_fails() {
        assert_no_forbidden(r#"{"reason":"O\"Brien"}"#, &["O\"Brien"]);
    }

    #[test]
    #[should_panic(expected = "forbidden value")]
    fn a_file_with_a_value_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":\"Doe^Jane\"}\n").unwrap();
        assert_file_has_no(&path, &["Doe^Jane"]);
    }
}
