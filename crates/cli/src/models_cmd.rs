//! `dicom-deid models install | status`: the weights of the PP-OCRv4 text detector.

use std::path::PathBuf;

use dicom_deid_ocrnet as ocrnet;

/// Model weights for burned-in text detection.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Download the PP-OCRv4 text-detection weights (from the PyPI wheel
    /// rapidocr-onnxruntime 1.4.4), check their SHA-256 and install them.
    ///
    /// Does nothing when the pinned weights are already there.
    Install {
        /// The models directory. Default: $DICOM_DEID_MODELS, else
        /// $XDG_DATA_HOME/dicom-deid/models, else ~/.local/share/dicom-deid/models.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Install from this wheel file instead of downloading it (for machines without
        /// access to PyPI; get it elsewhere with
        /// `pip download rapidocr-onnxruntime==1.4.4 --no-deps`).
        #[arg(long, value_name = "FILE", conflicts_with = "index_url")]
        wheel: Option<PathBuf>,
        /// A Python package index (its "simple" API) to download from, e.g. a local mirror.
        #[arg(long, value_name = "URL", default_value = ocrnet::PYPI_SIMPLE)]
        index_url: String,
    },
    /// Say whether the weights are installed and intact. Exit code 0 when they are, 1 when not.
    Status {
        /// The models directory (default as for `install`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs a `models` subcommand; returns the exit code.
pub fn run(command: ModelsCommand) -> u8 {
    match command {
        ModelsCommand::Install {
            dir,
            wheel,
            index_url,
        } => {
            let dir = dir.unwrap_or_else(ocrnet::default_models_dir);
            let source = match wheel {
                Some(wheel) => ocrnet::Source::Wheel(wheel),
                None => ocrnet::Source::Index(index_url),
            };
            match ocrnet::install(&dir, &source) {
                Ok(ocrnet::Installed::AlreadyPresent(path)) => {
                    println!(
                        "already installed: {} (PP-OCRv4 text detection, SHA-256 {})",
                        path.display(),
                        ocrnet::MODEL_SHA256
                    );
                    0
                }
                Ok(ocrnet::Installed::Written { path, replaced }) => {
                    if replaced {
                        println!("replaced a file that was not the pinned model");
                    }
                    println!(
                        "installed: {} (PP-OCRv4 text detection from {}, SHA-256 {})",
                        path.display(),
                        ocrnet::WHEEL_FILE,
                        ocrnet::MODEL_SHA256
                    );
                    0
                }
                Err(e) => crate::fail(e),
            }
        }
        ModelsCommand::Status { dir } => {
            let dir = dir.unwrap_or_else(ocrnet::default_models_dir);
            match ocrnet::status(&dir) {
                ocrnet::Status::Installed { path } => {
                    println!(
                        "ppocr-v4-det: installed at {} (SHA-256 verified); burned-in text \
                         detection uses the classical detector and the network",
                        path.display()
                    );
                    0
                }
                ocrnet::Status::Missing { path } => {
                    println!(
                        "ppocr-v4-det: not installed (looked for {}); burned-in text detection \
                         uses the classical detector alone. Run `dicom-deid models install`.",
                        path.display()
                    );
                    1
                }
                ocrnet::Status::Invalid { path, reason } => {
                    println!(
                        "ppocr-v4-det: unusable file at {}: {reason}; burned-in text detection \
                         uses the classical detector alone.",
                        path.display()
                    );
                    1
                }
            }
        }
    }
}
