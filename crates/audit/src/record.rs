//! What one audit line says about one instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One audit event about one instance. The caller fills the fields; [`AuditLog::append`]
/// adds `seq`, `time`, `prev` and `hash`.
///
/// **No PHI.** Every field is written to disk as given. Put in it only: spool or
/// request-part ids, route/profile/destination names, keyed hashes of original identifiers
/// (computed with the pseudonymisation key), the *new* UIDs, counts, transfer syntax UIDs,
/// HTTP status codes, and reasons made of tags, codes and fixed text. Never an original
/// UID, a patient name or ID, a date or any other element value — not even inside `reason`.
///
/// Absent (`None`) fields are left out of the line.
///
/// [`AuditLog::append`]: crate::AuditLog::append
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// What happened.
    pub event: Event,
    /// The spool id or request-part id of the instance (never a UID).
    pub instance: String,
    /// The route the instance came in on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The calling AE title of the association, for instances received by DIMSE C-STORE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_ae: Option<String>,
    /// The de-identification profile's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The profile's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_version: Option<String>,
    /// The id of the pseudonymisation key (not the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Keyed hashes of the original identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<OriginalHashes>,
    /// The UIDs after de-identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_uids: Option<NewUids>,
    /// How many times each action (remove, replace, …) was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<BTreeMap<String, u32>>,
    /// How many pixel regions were masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_regions: Option<u32>,
    /// The transfer syntax UID of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_syntax_in: Option<String>,
    /// The transfer syntax UID of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_syntax_out: Option<String>,
    /// The destination's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The destination's HTTP status for this instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_status: Option<u16>,
    /// Why the instance was rejected or dead-lettered: tags, codes and fixed text only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Durations of the stages in milliseconds, by stage name. Must be finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<BTreeMap<String, f64>>,
}

/// The events of an instance's life in the gateway (`snake_case` in the line).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The instance arrived.
    #[default]
    Received,
    /// The instance was refused (could not be fully de-identified, bad input, …).
    Rejected,
    /// The de-identified instance is durable in the spool.
    Queued,
    /// The destination stored the instance.
    Delivered,
    /// The destination refused the instance for good; it went to the dead-letter folder.
    DeadLettered,
}

/// Keyed hashes (lowercase hex, computed by the caller with the pseudonymisation key) of an
/// instance's original identifiers. Never the identifiers themselves.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginalHashes {
    /// Keyed hash of the original Study Instance UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_uid: Option<String>,
    /// Keyed hash of the original Series Instance UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_uid: Option<String>,
    /// Keyed hash of the original SOP Instance UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop_uid: Option<String>,
    /// Keyed hash of the original Patient ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
}

/// The UIDs of an instance after de-identification.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUids {
    /// The new Study Instance UID.
    pub study_uid: String,
    /// The new Series Instance UID.
    pub series_uid: String,
    /// The new SOP Instance UID.
    pub sop_uid: String,
}
