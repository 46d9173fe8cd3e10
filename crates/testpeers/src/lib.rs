//! Test-only helpers that start and talk to the real peers of the interop tests, so that every
//! test does it the same way. Not published; used as a dev-dependency only.
//!
//! - [`Orthanc`]: finds `/usr/sbin/Orthanc` and the DICOMweb plugin, writes a configuration
//!   with free loopback ports (HTTP and DICOM), a temporary storage folder, and optionally its
//!   AE title, DICOMweb servers and DICOM modalities (`DicomModalities`, for
//!   `/modalities/{name}/store`) to send to; starts it, waits until `GET /system` answers,
//!   offers small REST helpers, and kills it (by its PID) on drop.
//! - [`Python`]: the interpreter with pydicom named by `DICOM_DEID_PYTHON` (`scripts/test`
//!   makes the venv and sets it).
//! - [`http`]: a tiny blocking HTTP/1.1 client over `std::net::TcpStream` for loopback peers
//!   (no async runtime needed, so it works from sync and async tests alike).
//! - [`absent`]: the one rule for a missing peer — a loud skip on a developer machine, a
//!   failure under `CI=true`.
//!
//! What it does not do: download or install anything, or reach beyond 127.0.0.1.
//!
//! ```no_run
//! let Some(orthanc) = dicom_deid_testpeers::Orthanc::start() else { return };
//! assert!(orthanc.instances().is_empty());
//! ```

pub mod http;
mod orthanc;
mod python;

pub use orthanc::{Orthanc, OrthancBuilder, ORTHANC, PLUGIN};
pub use python::Python;

/// Whether the tests run under CI (`CI=true`), where a missing peer is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says that `peer` is missing and how to get it: panics under `CI=true`, otherwise prints a
/// loud skip message on stderr (the caller then returns without testing).
pub fn absent(peer: &str, how: &str) {
    let msg = format!("{peer} is not available: {how}");
    assert!(!under_ci(), "{msg} (required under CI=true)");
    eprintln!("\n*** SKIPPING: {msg} ***\n");
}

/// A free TCP port on 127.0.0.1 (bound, then released: another process could take it in
/// between, which on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
