//! Helpers shared by the CLI's test files (each test file uses only some of them).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
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

#[allow(unused_imports)] // not every test file lists files
pub use dicom_deid_wire::testing::dcm_files;

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
