//! The detectors the stage runs: the classical detector always, and the PP-OCRv4
//! text-detection network when its weights are installed (`dicom-deid models install`;
//! `DICOM_DEID_MODELS` overrides the folder). The network's absence is not an error:
//! the classical detector then runs alone, and every cleaned instance's report lists the
//! detectors that ran.

use std::sync::{Arc, OnceLock};

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

    /// [`Detectors::default_set`], loaded once per process and shared: every engine built
    /// with the default detectors (the server builds one per profile) runs the same loaded
    /// network rather than reading and hashing the weights again. Weights installed after
    /// the first call are picked up by the next process.
    pub fn shared_default() -> Arc<Detectors> {
        static SET: OnceLock<Arc<Detectors>> = OnceLock::new();
        SET.get_or_init(|| Arc::new(Detectors::default_set()))
            .clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_set_is_loaded_once_per_process() {
        let a = Detectors::shared_default();
        let b = Detectors::shared_default();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.names()[0], "classical");
    }
}
