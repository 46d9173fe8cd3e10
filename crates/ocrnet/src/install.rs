//! Where the weights live, how they are checked, and how they get there.
//!
//! The weights are one file, `ch_PP-OCRv4_det_infer.onnx`, taken from the PyPI wheel
//! `rapidocr-onnxruntime==1.4.4` (Apache-2.0). Both the wheel and the file are pinned by
//! SHA-256; loading re-checks the file's hash every time, so a truncated, altered or
//! different model is refused rather than run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use snafu::{ResultExt, Snafu};

/// The environment variable that names the models directory (overrides the default).
pub const MODELS_DIR_ENV: &str = "DICOM_DEID_MODELS";

/// The file name of the weights inside the models directory.
pub const MODEL_FILE: &str = "ch_PP-OCRv4_det_infer.onnx";

/// SHA-256 of the weights (computed from the pinned wheel, 2026-11-23).
pub const MODEL_SHA256: &str = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9";

/// Size of the weights in bytes.
pub const MODEL_LEN: usize = 4_745_517;

/// The PyPI project and version whose wheel carries the weights.
pub const WHEEL_PROJECT: &str = "rapidocr-onnxruntime";
/// The wheel's file name on the index.
pub const WHEEL_FILE: &str = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl";
/// SHA-256 of that wheel, as PyPI lists it.
pub const WHEEL_SHA256: &str = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf";
/// Where the weights sit inside the wheel.
pub const WHEEL_MEMBER: &str = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx";

/// The wheel is about 15 MB; anything much larger is not the file we want.
const MAX_WHEEL_LEN: usize = 64 << 20;

/// The models directory: `$DICOM_DEID_MODELS` when set, else `$XDG_DATA_HOME/dicom-deid/models`,
/// else `$HOME/.local/share/dicom-deid/models`, else `./dicom-deid-models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(data).join("dicom-deid").join("models");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("dicom-deid")
            .join("models");
    }
    PathBuf::from("dicom-deid-models")
}

/// The path of the weights inside `models_dir`.
pub fn model_path(models_dir: &Path) -> PathBuf {
    models_dir.join(MODEL_FILE)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the weights could not be loaded.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum ModelError {
    /// The weights are not installed in that directory.
    #[snafu(display(
        "the PP-OCRv4 detection weights are not installed at {} (run `dicom-deid models install`)",
        path.display()
    ))]
    NotInstalled {
        /// Where they were looked for.
        path: PathBuf,
    },
    /// The weights file could not be read.
    #[snafu(display("cannot read {}: {source}", path.display()))]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is there but is not the pinned model.
    #[snafu(display(
        "{} is not the pinned PP-OCRv4 detection model (SHA-256 {actual}, expected {MODEL_SHA256}); \
         run `dicom-deid models install` to replace it",
        path.display()
    ))]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// Its SHA-256.
        actual: String,
    },
    /// rten refused the model.
    #[snafu(display("rten cannot load {}: {message}", path.display()))]
    Load {
        /// The file.
        path: PathBuf,
        /// rten's reason.
        message: String,
    },
}

/// Reads the weights from `models_dir` and checks their SHA-256.
pub fn read_verified(models_dir: &Path) -> Result<Vec<u8>, ModelError> {
    let path = model_path(models_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return NotInstalledSnafu { path }.fail()
        }
        Err(source) => return Err(ModelError::Read { path, source }),
    };
    let actual = sha256_hex(&bytes);
    if actual != MODEL_SHA256 {
        return HashMismatchSnafu { path, actual }.fail();
    }
    Ok(bytes)
}

/// What is in a models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The pinned weights are there and their hash matches.
    Installed {
        /// The weights file.
        path: PathBuf,
    },
    /// Nothing is there.
    Missing {
        /// Where they were looked for.
        path: PathBuf,
    },
    /// A file is there but it is not the pinned model (or cannot be read).
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why it is not usable.
        reason: String,
    },
}

/// Checks what `models_dir` holds, without loading the network.
pub fn status(models_dir: &Path) -> Status {
    let path = model_path(models_dir);
    match read_verified(models_dir) {
        Ok(_) => Status::Installed { path },
        Err(ModelError::NotInstalled { path }) => Status::Missing { path },
        Err(e) => Status::Invalid {
            path,
            reason: e.to_string(),
        },
    }
}

/// Where `install` takes the wheel from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A wheel file already on disk (for machines without access to PyPI).
    Wheel(PathBuf),
    /// A Python package index's "simple" API (PEP 503), e.g. `https://pypi.org/simple/`
    /// or a local mirror. Needs the `download` feature.
    Index(String),
}

/// The public PyPI index.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple/";

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The pinned weights were already there; nothing was fetched or written.
    AlreadyPresent(PathBuf),
    /// The weights were written (replacing a file with a different hash, if `replaced`).
    Written {
        /// The weights file.
        path: PathBuf,
        /// A file that was not the pinned model was there before.
        replaced: bool,
    },
}

/// Why `install` failed. Nothing is left half-written in the models directory.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum InstallError {
    /// The wheel file could not be read.
    #[snafu(display("cannot read the wheel {}: {source}", path.display()))]
    ReadWheel {
        /// The wheel.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The index or the wheel could not be fetched.
    #[snafu(display(
        "cannot download {WHEEL_FILE} from {index}: {reason} (no network? a wheel fetched \
         elsewhere can be installed with --wheel FILE)"
    ))]
    Download {
        /// The index URL.
        index: String,
        /// What went wrong.
        reason: String,
    },
    /// This build has no HTTP client.
    #[snafu(display(
        "this build cannot download (crate feature `download` is off); use --wheel FILE"
    ))]
    NoDownload,
    /// The wheel is not the pinned one.
    #[snafu(display(
        "the wheel's SHA-256 is {actual}, expected {WHEEL_SHA256} ({WHEEL_FILE}); refusing it"
    ))]
    WheelHash {
        /// Its SHA-256.
        actual: String,
    },
    /// The file is far larger than the pinned wheel (about 15 MB).
    #[snafu(display("the wheel file has {len} bytes, far more than {WHEEL_FILE}; refusing it"))]
    WheelTooLarge {
        /// Its size.
        len: u64,
    },
    /// The model could not be taken out of the wheel.
    #[snafu(display("cannot extract {WHEEL_MEMBER} from the wheel: {reason}"))]
    Extract {
        /// What went wrong.
        reason: String,
    },
    /// The extracted model is not the pinned one.
    #[snafu(display(
        "the extracted model's SHA-256 is {actual}, expected {MODEL_SHA256}; refusing it"
    ))]
    ModelHash {
        /// Its SHA-256.
        actual: String,
    },
    /// Writing into the models directory failed.
    #[snafu(display("cannot write {}: {source}", path.display()))]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Puts the pinned weights into `models_dir` (created if missing): takes the wheel from
/// `source`, checks the wheel's and the model's SHA-256, and writes the file atomically
/// (temporary file, fsync, rename, fsync of the directory). Idempotent: when the pinned
/// weights are already there nothing is fetched.
pub fn install(models_dir: &Path, source: &Source) -> Result<Installed, InstallError> {
    let path = model_path(models_dir);
    let replaced = match status(models_dir) {
        Status::Installed { path } => return Ok(Installed::AlreadyPresent(path)),
        Status::Missing { .. } => false,
        Status::Invalid { .. } => true,
    };
    let wheel = match source {
        Source::Wheel(wheel) => read_wheel(wheel)?,
        Source::Index(index) => fetch_wheel(index)?,
    };
    let model = model_from_wheel(&wheel)?;
    write_atomically(models_dir, &path, &model)?;
    Ok(Installed::Written { path, replaced })
}

/// Checks the wheel's hash and returns the verified model bytes inside it.
pub fn model_from_wheel(wheel: &[u8]) -> Result<Vec<u8>, InstallError> {
    let actual = sha256_hex(wheel);
    if actual != WHEEL_SHA256 {
        return WheelHashSnafu { actual }.fail();
    }
    let model =
        crate::zip::extract(wheel, WHEEL_MEMBER, MODEL_LEN).map_err(|e| InstallError::Extract {
            reason: e.to_string(),
        })?;
    let actual = sha256_hex(&model);
    if actual != MODEL_SHA256 {
        return ModelHashSnafu { actual }.fail();
    }
    Ok(model)
}

fn read_wheel(path: &Path) -> Result<Vec<u8>, InstallError> {
    let len = fs::metadata(path).context(ReadWheelSnafu { path })?.len();
    if len > MAX_WHEEL_LEN as u64 {
        return WheelTooLargeSnafu { len }.fail();
    }
    fs::read(path).context(ReadWheelSnafu { path })
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    fs::create_dir_all(dir).context(WriteSnafu { path: dir })?;
    let tmp = dir.join(format!(".{MODEL_FILE}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename durable; some file systems refuse to fsync a directory.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.context(WriteSnafu { path })
}

#[cfg(not(feature = "download"))]
fn fetch_wheel(_index: &str) -> Result<Vec<u8>, InstallError> {
    NoDownloadSnafu.fail()
}

#[cfg(feature = "download")]
fn fetch_wheel(index: &str) -> Result<Vec<u8>, InstallError> {
    crate::download::fetch_wheel(index).map_err(|reason| InstallError::Download {
        index: index.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_directory_follows_the_environment_variable() {
        // Only this test touches the variable in this test binary.
        std::env::set_var(MODELS_DIR_ENV, "/somewhere/models");
        assert_eq!(default_models_dir(), PathBuf::from("/somewhere/models"));
        std::env::remove_var(MODELS_DIR_ENV);
        assert!(
            default_models_dir().ends_with("dicom-deid/models")
                || default_models_dir() == Path::new("dicom-deid-models")
        );
    }

    #[test]
    fn a_wrong_wheel_or_model_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        let fake = crate::zip::tests::build(&[(WHEEL_MEMBER, b"not the model", true)]);
        let wheel = dir.path().join(WHEEL_FILE);
        fs::write(&wheel, &fake).unwrap();
        let err = install(&models, &Source::Wheel(wheel)).unwrap_err();
        assert!(matches!(err, InstallError::WheelHash { .. }), "{err}");
        assert!(err.to_string().contains(WHEEL_SHA256));
        assert!(!model_path(&models).exists());
        assert_eq!(
            status(&models),
            Status::Missing {
                path: model_path(&models)
            }
        );
        let missing = install(&models, &Source::Wheel(dir.path().join("absent.whl")));
        assert!(matches!(missing, Err(InstallError::ReadWheel { .. })));
        // A huge file is refused before it is read (sparse: costs no disk).
        let huge = dir.path().join("huge.whl");
        fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_WHEEL_LEN as u64 + 1)
            .unwrap();
        let err = install(&models, &Source::Wheel(huge)).unwrap_err();
        assert!(matches!(err, InstallError::WheelTooLarge { .. }), "{err}");
        assert!(!model_path(&models).exists());
    }

    #[test]
    fn a_file_that_is_not_the_pinned_model_is_reported_and_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(model_path(dir.path()), b"something else").unwrap();
        let Status::Invalid { reason, .. } = status(dir.path()) else {
            panic!("not invalid")
        };
        assert!(reason.contains(&sha256_hex(b"something else")), "{reason}");
        assert!(matches!(
            read_verified(dir.path()),
            Err(ModelError::HashMismatch { .. })
        ));
        assert!(matches!(
            read_verified(&dir.path().join("nothing-here")),
            Err(ModelError::NotInstalled { .. })
        ));
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
