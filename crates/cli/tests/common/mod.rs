//! Helpers shared by the CLI's test files (each test file uses only some of them).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `cmd` to the end: exit code, stdout, stderr. Fails the test if it panicked or was killed.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(!stderr.contains("panic"), "the binary panicked:\n{stderr}");
    (status.code().expect("exited, not killed"), stdout, stderr)
}

/// Every `.dcm` file under `dir` (none when it does not exist).
pub fn dcm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dcm_files(&p));
        } else if p.extension().is_some_and(|x| x == "dcm") {
            out.push(p);
        }
    }
    out
}

/// Reads `serve`'s stdout up to its `listening on http://ADDR` line; returns ADDR. Every line
/// read is appended to `printed`. Keep using `stdout` for the rest: it may have buffered the
/// lines that follow.
pub fn listening_addr<R: Read>(stdout: &mut BufReader<R>, printed: &mut String) -> String {
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no listening line: {printed}"
        );
        printed.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("dicom-deid: listening on http://") {
            return rest.to_string();
        }
    }
}
