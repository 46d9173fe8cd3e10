//! The project's own generator of synthetic DICOM: deterministic, seeded, no randomness from
//! the operating system, no patient data from anywhere.
//!
//! Two kinds of output:
//!
//! - [`conformance()`] (and [`conformance_set`]): a small study of three instances (two CT
//!   images and a Comprehensive SR) that together carry **every attribute of PS3.15 Table
//!   E.1-1**, each with a unique *marker* value valid for its VR. Sequences hold one item with
//!   a nested attribute (with its own marker); the SR nests Content Sequences three deep; the
//!   instances reference each other by SOP Instance UID; private blocks (safe and unsafe, with
//!   a private sequence), curves (`50xx`) and overlays (`60xx`) are there. Every planted value
//!   is described by a [`Marker`], so a test can check what a de-identifier did to it.
//! - [`bench_instance`]: CT-like instances (512×512 or 64×64, 16-bit, explicit VR little
//!   endian) with a realistic PHI header, 200 instances per study, for benchmarks.
//!
//! What it does not do: produce valid IODs in every detail (the conformance instances carry
//! attributes no real CT would), compress pixel data, or read anything.
//!
//! ```
//! let set = dicom_deid_synth::conformance(0);
//! assert_eq!(set.files.len(), 3);
//! let rows: std::collections::BTreeSet<usize> = set.markers.iter().map(|m| m.row).collect();
//! assert_eq!(rows.len(), dicom_deid_profile::TABLE_E1_1.len());
//! let ct = dicom_deid_synth::bench_instance(dicom_deid_synth::Kind::Small, 0);
//! assert_eq!(&ct[128..132], b"DICM");
//! ```

mod bench;
mod conformance;
mod rng;
mod values;

pub use bench::{bench_instance, bench_path, Kind, INSTANCES_PER_STUDY};
pub use conformance::{
    conformance, conformance_set, row_of, ConformanceSet, Marker, PathStep, PrivateKind, FILE_CT1,
    FILE_CT2, FILE_SR, PATIENT_FAMILY,
};
pub use rng::SplitMix64;
pub use values::{civil_from_days, days_from_civil, dictionary_vr, format_da, parse_da};
