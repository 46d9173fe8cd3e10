//! The detectors the stage runs: the classical detector always, and the PP-OCRv4
//! text-detection network when its weights are installed (`dicom-deid models install`;
//! `DICOM_DEID_MODELS` overrides the folder). The network's absence is not an error:
//! the classical detector then runs alone, and every cleaned instance's report lists the
//! detectors that ran.

use dicom_deid_detect::{Classical, Detector};

/// A set of detectors, shared by every instance an engine processes.
pub struct Detectors {
    list: Vec<Box<dyn Detector>>,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Detectors {
    /// The default: classical, plus the network when its weights load from
    /// [`dicom_deid_ocrnet::default_models_dir`].
    pub fn default_set() -> Detectors {
        let mut list: Vec<Box<dyn Detector>> = vec![Box::new(Classical::new())];
        let dir = dicom_deid_ocrnet::default_models_dir();
        match dicom_deid_ocrnet::PpOcrDet::load(&dir) {
            Ok(net) => list.push(Box::new(net)),
            // Not installed is a normal set-up; weights that are there but unreadable or not
            // the pinned model (damaged, replaced) deserve the operator's attention.
            Err(e @ dicom_deid_ocrnet::ModelError::NotInstalled { .. }) => tracing::info!(
                message = "Text-detection network not installed; the classical detector runs alone.",
                models_dir = %dir.display(),
                reason = %e
            ),
            Err(e) => tracing::warn!(
                message = "Text-detection network not loaded; the classical detector runs alone.",
                models_dir = %dir.display(),
                reason = %e
            ),
        }
        Detectors { list }
    }

    /// The classical detector alone.
    pub fn classical_only() -> Detectors {
        Detectors {
            list: vec![Box::new(Classical::new())],
        }
    }

    /// Exactly these detectors (none: instances that must be searched are rejected).
    pub fn from_list(list: Vec<Box<dyn Detector>>) -> Detectors {
        Detectors { list }
    }

    /// The detectors, for [`crate::stage::Stage::new`].
    pub fn as_refs(&self) -> Vec<&dyn Detector> {
        self.list.iter().map(|d| d.as_ref()).collect()
    }

    /// Their names.
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|d| d.name()).collect()
    }
}
