//! What ingest stores beside each instance in the spool.

use std::collections::BTreeMap;

use dicom_deid_audit::OriginalHashes;
use serde::{Deserialize, Serialize};

/// What ingest stores beside each instance in the spool:
/// `Spool::put(destination, group, meta, data)` with `meta = serde_json::to_vec(&SpoolMeta)` and
/// `group = study_uid` (the **new** Study Instance UID), so that one leased group is one study.
///
/// Holds no PHI: new UIDs, keyed hashes, counts, codes. The forwarder copies it into the audit
/// records of the instance.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SpoolMeta {
    /// SOP Class UID (well-known, unchanged by de-identification).
    pub sop_class_uid: String,
    /// The new SOP Instance UID.
    pub sop_instance_uid: String,
    /// The new Study Instance UID.
    pub study_uid: String,
    /// The new Series Instance UID.
    pub series_uid: String,
    /// The route the instance came in on.
    pub route: String,
    /// The de-identification profile's name.
    pub profile: String,
    /// The profile's version.
    pub profile_version: String,
    /// The id of the pseudonymisation key (not the key).
    pub key_id: String,
    /// Keyed hashes of the original UIDs and patient ID.
    pub original: OriginalHashes,
    /// Transfer syntax UID of the input.
    pub transfer_syntax_in: String,
    /// Transfer syntax UID of the output.
    pub transfer_syntax_out: String,
    /// How many times each action was applied.
    pub actions: BTreeMap<String, u32>,
    /// How many rectangles the pixel stage masked, over all frames (0 when pixel data passed
    /// through). Entries spooled before this field existed read as 0.
    #[serde(default)]
    pub masked_regions: u32,
    /// When the instance was received, in milliseconds since the Unix epoch (for the delivery
    /// latency).
    pub received_at_ms: u64,
}

/// Whether `uid` is a DICOM UID safe to use as a path component: 1 to 64 characters, digits in
/// non-empty components separated by single dots (so never `.`, `..` or anything with a `/`).
pub fn is_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid
            .split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_that_are_safe_path_components() {
        for ok in [
            "1",
            "1.2.840.10008.5.1.4.1.1.2",
            "2.25.123456789012345678901234567890",
        ] {
            assert!(is_uid(ok), "{ok}");
        }
        let long = "1.".repeat(32) + "1"; // 65 characters
        for bad in [
            "", ".", "..", "1..2", ".1", "1.", "1/2", "../1", "1.2a", "1.2 ", &long,
        ] {
            assert!(!is_uid(bad), "{bad:?}");
        }
        assert!(is_uid(&"1".repeat(64)), "64 characters are allowed");
    }

    #[test]
    fn meta_round_trips_through_json() {
        let meta = SpoolMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "2.25.3".into(),
            study_uid: "2.25.1".into(),
            series_uid: "2.25.2".into(),
            route: "default".into(),
            profile: "basic".into(),
            profile_version: "1".into(),
            key_id: "k1".into(),
            original: OriginalHashes {
                study_uid: Some("ab".into()),
                ..OriginalHashes::default()
            },
            transfer_syntax_in: "1.2.840.10008.1.2.1".into(),
            transfer_syntax_out: "1.2.840.10008.1.2.1".into(),
            actions: BTreeMap::from([("remove".into(), 3)]),
            masked_regions: 2,
            received_at_ms: 1_700_000_000_000,
        };
        let json = serde_json::to_vec(&meta).unwrap();
        assert_eq!(serde_json::from_slice::<SpoolMeta>(&json).unwrap(), meta);
    }
}
