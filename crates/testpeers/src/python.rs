//! The Python with pydicom that the interop tests re-read outputs with.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter named by `DICOM_DEID_PYTHON` (scripts/test creates a venv with pydicom
/// and sets it).
#[derive(Debug, Clone)]
pub struct Python {
    path: PathBuf,
}

impl Python {
    /// The interpreter, checked to import pydicom; `None` (after a loud message) when
    /// `DICOM_DEID_PYTHON` is unset on a developer machine. Panics under `CI=true` when it is
    /// unset, and anywhere when it is set but cannot import pydicom.
    pub fn find() -> Option<Python> {
        let Some(path) = std::env::var_os("DICOM_DEID_PYTHON") else {
            crate::absent(
                "pydicom (DICOM_DEID_PYTHON)",
                "run the tests with scripts/test, or export DICOM_DEID_PYTHON=<a python with pydicom>",
            );
            return None;
        };
        let python = Python {
            path: PathBuf::from(path),
        };
        python.run("import pydicom\nprint(pydicom.__version__)", &[]);
        Some(python)
    }

    /// The interpreter's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `script` (Python source) with `args` (`sys.argv[1:]`) and returns its stdout;
    /// panics with stdout and stderr when it exits non-zero.
    pub fn run(&self, script: &str, args: &[&std::ffi::OsStr]) -> String {
        let out = Command::new(&self.path)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.path.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{} exited with {}:\n{stdout}\n{}",
            self.path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs `script` and parses its stdout as JSON.
    pub fn run_json(&self, script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
        let out = self.run(script, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}
