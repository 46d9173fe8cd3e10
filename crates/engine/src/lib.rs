//! The de-identification pipeline for one instance: bytes in, verified
//! de-identified Part 10 bytes out, or a rejection that says why.
//!
//! This is the one path that `dicom-deid batch` and (later) the gateway share:
//!
//! 1. **parse** the Part 10 stream (`dicom-deid-wire`), inflating deflated data
//!    sets; bad input is [`Rejection::NotDicom`] or [`Rejection::Unreadable`];
//! 2. **check** what cannot be de-identified here: a DICOMDIR, an instance with no
//!    SOP Instance UID, or BurnedInAnnotation = YES while no pixel clean exists
//!    ([`Rejection::Unsupported`], fail closed);
//! 3. **scrub** the tags under the profile (`dicom-deid-scrub`);
//! 4. **encode** with a new file meta, in the input's transfer syntax (deflated
//!    input is written as explicit VR little endian); pixel data is copied byte for
//!    byte, never decoded;
//! 5. **verify**: re-read the encoded bytes and scan them for any original value
//!    that was removed or replaced ([`Rejection::Leak`] names the tag).
//!
//! It does no I/O and keeps no state between instances: the same input, profile
//! and key always give the same bytes.
//!
//! ```
//! use dicom_deid_engine::{Engine, Key, Profile};
//! let engine = Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([1; 32]));
//! let out = engine.process(&dicom_deid_wire::testing::minimal_file()).unwrap();
//! assert!(out.report.new_sop_instance_uid.starts_with("2.25."));
//! ```

pub mod batch;

use dicom_deid_scrub::{verify, Scrubber};
use dicom_deid_wire::{
    parse_dataset, read_file, tags as wt, write_file, DataSet, FileMetaOut, Limits, Syntax,
};
use snafu::Snafu;

pub use dicom_deid_profile::{Action, Code, DeidOption, Profile, Source};
pub use dicom_deid_scrub::key::{Key, KeyError, KEY_FILE_ENV};
pub use dicom_deid_scrub::Change;

/// Our Implementation Class UID, written in every file meta.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.148352299918640930336870243227122027155";
/// Our Implementation Version Name (SH, at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DICOMDEID_", env!("CARGO_PKG_VERSION"));

const BURNED_IN_ANNOTATION: u32 = 0x0028_0301;
const DIRECTORY_RECORD_SEQUENCE: u32 = 0x0004_1220;
const MEDIA_DIRECTORY_STORAGE: &str = "1.2.840.10008.1.3.10";

/// Why an instance was not written. The text names tags and reasons, never values.
#[derive(Debug, Snafu, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a DICOM stream at all
    #[snafu(display("not DICOM"))]
    NotDicom,
    /// The stream could not be read
    #[snafu(display("unreadable: {reason}"))]
    Unreadable {
        /// What the reader said (tags and offsets only).
        reason: String,
    },
    /// Readable, but not something this pipeline can fully de-identify
    #[snafu(display("cannot de-identify: {reason}"))]
    Unsupported {
        /// Why.
        reason: String,
    },
    /// Verification found an original value in the output
    #[snafu(display("verification failed: an original identifying value survives in {tag} (at {path}); nothing was written"))]
    Leak {
        /// The attribute.
        tag: String,
        /// Its path.
        path: String,
    },
}

impl Rejection {
    /// Whether the input was simply not DICOM (a batch run skips it).
    pub fn is_not_dicom(&self) -> bool {
        matches!(self, Rejection::NotDicom)
    }
}

impl From<dicom_deid_wire::Error> for Rejection {
    fn from(e: dicom_deid_wire::Error) -> Self {
        match e {
            dicom_deid_wire::Error::NotDicom => Rejection::NotDicom,
            other => Rejection::Unreadable {
                reason: other.to_string(),
            },
        }
    }
}

/// What was done to one instance.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every element not kept as it was.
    pub changes: Vec<Change>,
    /// Transfer syntax of the input.
    pub transfer_syntax_in: String,
    /// Transfer syntax written.
    pub transfer_syntax_out: String,
    /// SOP Class UID (never changed).
    pub sop_class_uid: String,
    /// New Study Instance UID.
    pub new_study_uid: String,
    /// New Series Instance UID.
    pub new_series_uid: String,
    /// New SOP Instance UID.
    pub new_sop_instance_uid: String,
}

/// A de-identified, verified instance.
#[derive(Debug)]
pub struct Processed {
    /// The Part 10 bytes to store or send.
    pub bytes: Vec<u8>,
    /// What was done.
    pub report: Report,
}

/// One profile, one key, the limits for untrusted input. Cheap to share
/// (`Send + Sync`); put it in an `Arc` for worker threads.
#[derive(Debug)]
pub struct Engine {
    profile: Profile,
    key: Key,
    limits: Limits,
}

impl Engine {
    /// An engine with default limits.
    pub fn new(profile: Profile, key: Key) -> Engine {
        Engine {
            profile,
            key,
            limits: Limits::default(),
        }
    }

    /// Replaces the parsing limits.
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.limits = limits;
        self
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The public id of the key.
    pub fn key_id(&self) -> String {
        self.key.id()
    }

    /// De-identifies one instance.
    pub fn process(&self, input: &[u8]) -> Result<Processed, Rejection> {
        let mut bytes = Vec::new();
        let report = self.process_into(input, &mut bytes)?;
        Ok(Processed { bytes, report })
    }

    /// De-identifies one instance into `out` (cleared first), so a caller that
    /// handles many instances reuses one buffer. After a rejection `out` holds
    /// nothing to use.
    pub fn process_into(&self, input: &[u8], out: &mut Vec<u8>) -> Result<Report, Rejection> {
        let result = self.run(input, Some(&mut *out));
        if result.is_err() {
            // Never leave the bytes of a refused instance in the caller's buffer.
            out.clear();
        }
        result
    }

    /// A dry run: what would change, without encoding.
    pub fn plan(&self, input: &[u8]) -> Result<Report, Rejection> {
        self.run(input, None)
    }

    fn run(&self, input: &[u8], encode: Option<&mut Vec<u8>>) -> Result<Report, Rejection> {
        let raw = read_file(input, &self.limits)?;
        let inflated;
        let (body, syntax, ts_out) = if raw.syntax.deflated {
            inflated = raw.inflate(&self.limits)?;
            (
                &inflated[..],
                Syntax::EXPLICIT_LE,
                Syntax::EXPLICIT_LE.native_uid().to_string(),
            )
        } else {
            (raw.body, raw.syntax, raw.transfer_syntax_uid.clone())
        };
        let mut ds = parse_dataset(body, syntax, &self.limits)?;

        let class = ds
            .str(wt::SOP_CLASS_UID)
            .map(str::to_string)
            .or_else(|| raw.meta.media_storage_sop_class_uid.clone())
            .unwrap_or_default();
        if class == MEDIA_DIRECTORY_STORAGE || ds.get(DIRECTORY_RECORD_SEQUENCE).is_some() {
            return UnsupportedSnafu { reason: "a DICOMDIR is a media index, not an instance; rebuild it from the de-identified files" }.fail();
        }
        if class.is_empty() {
            return UnsupportedSnafu {
                reason: "no SOP Class UID (0008,0016) in the data set or file meta",
            }
            .fail();
        }
        if ds.str(wt::SOP_INSTANCE_UID).is_none_or(str::is_empty) {
            return UnsupportedSnafu {
                reason: "no SOP Instance UID (0008,0018)",
            }
            .fail();
        }
        if ds
            .str(BURNED_IN_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
        {
            return UnsupportedSnafu { reason: "BurnedInAnnotation (0028,0301) is YES and no pixel clean is applied (the pixel stage is not available yet)" }.fail();
        }
        if ds.get(wt::SOP_CLASS_UID).is_none() {
            ds.put(dicom_deid_wire::Element::text(
                wt::SOP_CLASS_UID,
                dicom_deid_wire::Vr::UI,
                &class,
            ));
        }

        let outcome = Scrubber::new(&self.profile, &self.key).scrub(&mut ds);
        let uid = |ds: &DataSet<'_>, tag| ds.str(tag).unwrap_or_default().to_string();
        let report = Report {
            transfer_syntax_in: raw.transfer_syntax_uid.clone(),
            transfer_syntax_out: ts_out.clone(),
            sop_class_uid: class.clone(),
            new_study_uid: uid(&ds, dicom_deid_scrub::tags::STUDY_INSTANCE_UID),
            new_series_uid: uid(&ds, dicom_deid_scrub::tags::SERIES_INSTANCE_UID),
            new_sop_instance_uid: uid(&ds, wt::SOP_INSTANCE_UID),
            changes: outcome.changes,
        };
        let Some(out) = encode else { return Ok(report) };
        out.clear();

        let meta = FileMetaOut {
            sop_class_uid: class,
            sop_instance_uid: report.new_sop_instance_uid.clone(),
            transfer_syntax_uid: ts_out,
            implementation_class_uid: IMPLEMENTATION_CLASS_UID.to_string(),
            implementation_version_name: IMPLEMENTATION_VERSION_NAME.to_string(),
        };
        out.reserve(input.len() + 1024);
        write_file(out, &meta, &ds, syntax).map_err(|e| Rejection::Unsupported {
            reason: format!("cannot encode the output: {e}"),
        })?;
        drop(ds);

        // Verify what was actually encoded, not the tree we meant to encode.
        let reread = read_file(out, &self.limits)
            .and_then(|r| r.parse(&self.limits))
            .map_err(|e| Rejection::Unsupported {
                reason: format!("our output does not re-read: {e}"),
            })?;
        verify(&reread, &outcome.forbidden).map_err(|leak| Rejection::Leak {
            tag: leak.tag,
            path: leak.path,
        })?;
        if reread.str(dicom_deid_scrub::tags::PATIENT_IDENTITY_REMOVED) != Some("YES") {
            return UnsupportedSnafu {
                reason: "PatientIdentityRemoved (0012,0062) missing from the output",
            }
            .fail();
        }
        drop(reread);
        Ok(report)
    }
}
