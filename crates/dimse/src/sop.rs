//! What the SCP negotiates: the storage SOP classes, Verification, and the transfer syntaxes
//! the engine reads.
//!
//! [`STORAGE_SOP_CLASSES`] is generated from dicom-dictionary-std's registry of UIDs by
//! `cargo run -p dicom-deid-dimse --example gen-storage-classes` (`examples/`; the test
//! `tests/storage_classes.rs` checks that the committed table is what it writes today).

#[path = "storage_classes.rs"]
mod storage_classes;

pub use storage_classes::STORAGE_SOP_CLASSES;

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// Transfer syntaxes accepted, in the SCP's order of preference (the SCP takes the first the
/// requestor proposed that is in this list).
///
/// The engine reads every data set encoding (implicit / explicit VR little endian, explicit
/// VR big endian (retired), deflate) and copies encapsulated pixel data byte for byte, so the
/// compressed syntaxes below are accepted as they come: the JPEG family, JPEG-LS, JPEG 2000,
/// High-Throughput JPEG 2000, RLE, JPEG XL and encapsulated uncompressed. Video syntaxes are
/// not offered.
pub const TRANSFER_SYNTAXES: &[(&str, &str)] = &[
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    (
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
    ),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian (retired)"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless (Process 14)"),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless SV1 (Process 14, selection value 1)",
    ),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    (
        "1.2.840.10008.1.2.4.92",
        "JPEG 2000 Part 2 Multi-component Lossless",
    ),
    ("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component"),
    (
        "1.2.840.10008.1.2.4.201",
        "High-Throughput JPEG 2000 Lossless",
    ),
    (
        "1.2.840.10008.1.2.4.202",
        "High-Throughput JPEG 2000 RPCL Lossless",
    ),
    ("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
    ("1.2.840.10008.1.2.4.112", "JPEG XL"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
    (
        "1.2.840.10008.1.2.1.98",
        "Encapsulated Uncompressed Explicit VR Little Endian",
    ),
];

/// Whether `uid` is a storage SOP class the SCP accepts.
pub fn is_storage(uid: &str) -> bool {
    STORAGE_SOP_CLASSES.iter().any(|(u, _, _)| *u == uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_what_the_corpus_needs() {
        for uid in [
            "1.2.840.10008.5.1.4.1.1.2",     // CT Image Storage
            "1.2.840.10008.5.1.4.1.1.4",     // MR Image Storage
            "1.2.840.10008.5.1.4.1.1.3.1",   // Ultrasound Multi-frame Image Storage
            "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR Storage
            "1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF Storage
            "1.2.840.10008.5.1.4.1.1.66.7",  // Label Map Segmentation Storage
            "1.2.840.10008.5.1.4.1.1.88.1",  // Text SR Storage - Trial (retired)
            "1.2.840.10008.5.1.4.38.1",      // Hanging Protocol Storage
        ] {
            assert!(is_storage(uid), "{uid}");
        }
        for uid in [
            VERIFICATION,
            "1.2.840.10008.1.20.1",        // Storage Commitment Push Model
            "1.2.840.10008.1.3.10",        // Media Storage Directory Storage (DICOMDIR)
            "1.2.840.10008.5.1.4.1.2.2.1", // Study Root Q/R FIND
            "1.3.46.670589.5.0.1.1",       // a private SOP class
        ] {
            assert!(!is_storage(uid), "{uid}");
        }
        assert!(STORAGE_SOP_CLASSES.len() > 150);
        let mut uids: Vec<_> = STORAGE_SOP_CLASSES.iter().map(|e| e.0).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), STORAGE_SOP_CLASSES.len(), "no duplicates");
    }
}
