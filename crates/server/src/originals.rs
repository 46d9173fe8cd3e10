//! The original identifiers of an incoming instance, read before de-identification and held in
//! memory only: for the study UID check of `/studies/{uid}`, the keyed hashes in the audit, and
//! the UIDs echoed to the sender in its own response. Never logged, stored or audited as such.

use std::fmt;

use dicom_deid_audit::OriginalHashes;
use dicom_deid_engine::{Key, Rejection};
use dicom_deid_wire::{parse_dataset, read_file, Limits, Syntax};

const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const PATIENT_ID: u32 = 0x0010_0020;
const STUDY_UID: u32 = 0x0020_000D;
const SERIES_UID: u32 = 0x0020_000E;

/// Original identifiers of one instance. `Debug` shows nothing.
#[derive(Default)]
pub struct Originals {
    pub sop_class: String,
    pub sop_instance: String,
    pub study: Option<String>,
    series: Option<String>,
    patient_id: Option<String>,
}

impl fmt::Debug for Originals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Originals(**REDACTED**)")
    }
}

impl Originals {
    /// Reads the identifiers (the same reader and limits as the engine, so an input this
    /// refuses, the engine refuses too).
    pub fn read(input: &[u8]) -> Result<Originals, Rejection> {
        let limits = Limits::default();
        let raw = read_file(input, &limits)?;
        let inflated;
        let (body, syntax) = if raw.syntax.deflated {
            inflated = raw.inflate(&limits)?;
            (&inflated[..], Syntax::EXPLICIT_LE)
        } else {
            (raw.body, raw.syntax)
        };
        let ds = parse_dataset(body, syntax, &limits)?;
        let get = |tag| {
            ds.str(tag)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Originals {
            sop_class: get(SOP_CLASS_UID)
                .or_else(|| raw.meta.media_storage_sop_class_uid.clone())
                .unwrap_or_default(),
            sop_instance: get(SOP_INSTANCE_UID).unwrap_or_default(),
            study: get(STUDY_UID),
            series: get(SERIES_UID),
            patient_id: get(PATIENT_ID),
        })
    }

    /// Keyed hashes (HMAC-SHA256 under the pseudonymisation key, one label per kind) for the audit.
    pub fn hashes(&self, key: &Key) -> OriginalHashes {
        let h = |label: &str, v: &Option<String>| {
            v.as_deref()
                .map(|v| hex(&key.mac_labeled(label, v.as_bytes())))
        };
        let sop = (!self.sop_instance.is_empty()).then(|| self.sop_instance.clone());
        OriginalHashes {
            study_uid: h("audit study uid", &self.study),
            series_uid: h("audit series uid", &self.series),
            sop_uid: h("audit sop instance uid", &sop),
            patient_id: h("audit patient id", &self.patient_id),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hashes_and_never_shows_originals() {
        let o = Originals::read(&dicom_deid_wire::testing::minimal_file()).unwrap();
        assert_eq!(o.study.as_deref(), Some("1.2.3.4.5"));
        assert_eq!(o.sop_instance, "1.2.3.4.5.6.7");
        assert_eq!(format!("{o:?}"), "Originals(**REDACTED**)");
        let h = o.hashes(&Key::from_bytes([7; 32]));
        let text = format!("{h:?}");
        assert!(
            !text.contains("1.2.3.4.5") && !text.contains("PID-0001"),
            "{text}"
        );
        assert_eq!(h.study_uid.unwrap().len(), 64);
        assert!(Originals::read(b"not dicom at all").is_err());
    }
}
