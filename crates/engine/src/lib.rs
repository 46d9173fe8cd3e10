//! The de-identification pipeline for one instance: bytes in, verified
//! de-identified Part 10 bytes out, or a rejection that says why.
//!
//! This is the one path that `dicom-deid batch` and (later) the gateway share:
//!
//! 1. **parse** the Part 10 stream (`dicom-deid-wire`), inflating deflated data
//!    sets; bad input is [`Rejection::NotDicom`] or [`Rejection::Unreadable`];
//! 2. **check** what cannot be de-identified here: a DICOMDIR, an instance with no
//!    SOP Instance UID ([`Rejection::Unsupported`], fail closed);
//! 3. **pixels** (`dicom-deid-pixel`): from the header alone, decide whether the
//!    instance needs a pixel clean (BurnedInAnnotation YES, a region rule of the
//!    profile matches, or the profile's `[pixel] detection` mode asks for text
//!    detection on it: `usual` looks at Modality, SOP class, ImageType and
//!    ConversionType). If not, pixel data passes through byte for byte, never
//!    decoded. If so: decode, run the rules and the detectors, mask the padded boxes
//!    on every frame, re-encode; a clean that cannot be done completely is a
//!    [`Rejection::Unsupported`] naming the reason (nothing half-clean is written);
//! 4. **scrub** the tags under the profile (`dicom-deid-scrub`); after a clean,
//!    BurnedInAnnotation becomes NO, code 113101 (Clean Pixel Data) joins
//!    DeidentificationMethodCodeSequence, and the image pixel attributes and the file
//!    meta transfer syntax describe the new pixel data;
//! 5. **encode** with a new file meta, in the input's transfer syntax (deflated
//!    input is written as explicit VR little endian; cleaned pixel data as the pixel
//!    stage says);
//! 6. **verify**: re-read the encoded bytes and scan them for any original value
//!    that was removed or replaced ([`Rejection::Leak`] names the tag).
//!
//! It does no I/O and keeps no state between instances: the same input, profile
//! and key always give the same bytes.
//!
//! [`Engine::process_head`] runs the same pipeline on the head of an instance (everything
//! before the value of its top-level Pixel Data) so that a receiver can write the output
//! while the pixels are still arriving; it declines whenever the output of the whole
//! instance could differ from that head followed by the pixel value as it came.
//!
//! ```
//! use dicom_deid_engine::{Engine, Key, Profile};
//! let engine = Engine::new(Profile::builtin("basic").unwrap(), Key::from_bytes([1; 32]));
//! let out = engine.process(&dicom_deid_wire::testing::minimal_file()).unwrap();
//! assert!(out.report.new_sop_instance_uid.starts_with("2.25."));
//! ```

pub mod batch;
pub mod memory;

use dicom_deid_pixel::detectors::Detectors;
use dicom_deid_pixel::stage::{Instance, Stage};
use dicom_deid_scrub::{verify, Scrubber};
use dicom_deid_wire::{
    find_pixel_data, parse_dataset, read_file, tag_str, tags as wt, write_file, DataSet,
    FileMetaOut, Limits, PixelDataAt, Syntax,
};
use memory::{MemoryBudget, Share};
use snafu::Snafu;
use std::sync::Arc;

pub use dicom_deid_pixel::detect::Found;
pub use dicom_deid_profile::{Action, Code, DeidOption, Profile, Source};
pub use dicom_deid_scrub::key::{Key, KeyError, KEY_FILE_ENV};
pub use dicom_deid_scrub::Change;

/// Our Implementation Class UID, written in every file meta.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.148352299918640930336870243227122027155";
/// Our Implementation Version Name (SH, at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DICOMDEID_", env!("CARGO_PKG_VERSION"));

const BURNED_IN_ANNOTATION: u32 = 0x0028_0301;
const MODALITY: u32 = 0x0008_0060;
const MANUFACTURER: u32 = 0x0008_0070;
const MANUFACTURER_MODEL_NAME: u32 = 0x0008_1090;
const IMAGE_TYPE: u32 = 0x0008_0008;
const CONVERSION_TYPE: u32 = 0x0008_0064;
const SEQUENCE_OF_ULTRASOUND_REGIONS: u32 = 0x0018_6011;
const CLEAN_PIXEL_DATA: &str = "113101";
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
    /// What the pixel stage did.
    pub pixel: PixelReport,
}

/// What the pixel stage did to one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PixelReport {
    /// Nothing was needed: pixel data (if any) passed through byte for byte.
    #[default]
    PassThrough,
    /// A clean was needed but the instance has no Pixel Data.
    NoPixelData,
    /// The pixels were decoded, searched and masked, and re-encoded.
    Cleaned {
        /// Why: "BurnedInAnnotation YES", "rule:<id>", "detection (usual): modality US", …
        reasons: Vec<String>,
        /// The detectors that ran.
        detectors: Vec<String>,
        /// Per frame: the masked rectangles (padded) and what found each.
        frames: Vec<Vec<Found>>,
    },
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
    detectors: Arc<Detectors>,
    memory: Option<Arc<MemoryBudget>>,
}

/// Working memory an instance still holds from the engine's [`MemoryBudget`] (its output
/// beyond the input's size): keep it until the output is written, then drop it.
#[derive(Debug, Default)]
#[must_use = "dropping it gives the memory back while the output may still be held"]
pub struct Held(Vec<Share>);

impl Held {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.0.iter().map(Share::bytes).sum()
    }
}

/// Working memory a pixel clean may hold beyond the decoded frames, for the detection
/// network's tensors and the codecs' buffers.
const DETECTION_WORKING_BYTES: u64 = 64 << 20;

impl Engine {
    /// An engine with default limits and the default text detectors (the classical
    /// detector, plus the PP-OCRv4 network when its weights are installed), loaded once
    /// per process and shared by every engine ([`Detectors::shared_default`]).
    pub fn new(profile: Profile, key: Key) -> Engine {
        Engine {
            profile,
            key,
            limits: Limits::default(),
            detectors: Detectors::shared_default(),
            memory: None,
        }
    }

    /// Takes the memory that inflating a deflated data set and cleaning pixels need from
    /// `budget` (shared by the engines of one service) before allocating it; an instance that
    /// needs more than the whole budget is refused ([`Rejection::Unsupported`]). Without a
    /// budget (the default) that memory is not bounded beyond the parsing limits.
    pub fn with_memory_budget(mut self, budget: Arc<MemoryBudget>) -> Engine {
        self.memory = Some(budget);
        self
    }

    /// Replaces the text detectors (share one set between engines with the `Arc`).
    pub fn with_detectors(mut self, detectors: Arc<Detectors>) -> Engine {
        self.detectors = detectors;
        self
    }

    /// The working-memory budget, when the engine has one.
    pub fn memory_budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.memory.as_ref()
    }

    /// The names of the text detectors this engine runs.
    pub fn detector_names(&self) -> Vec<&'static str> {
        self.detectors.names()
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
        self.process_held(input, out).map(|(report, _)| report)
    }

    /// [`Engine::process_into`], also handing back the share of the memory budget that still
    /// covers `out` (an inflated or decompressed output is larger than its input): the caller
    /// drops it once it has written `out` away.
    pub fn process_held(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(Report, Held), Rejection> {
        let mut held = Held::default();
        let result = self.run(input, Some(&mut *out), &mut held, Input::Whole);
        match result {
            Ok(report) => Ok((report, held)),
            Err(e) => {
                // Never leave the bytes of a refused instance in the caller's buffer.
                out.clear();
                out.shrink_to_fit();
                Err(e)
            }
        }
    }

    /// A dry run: what would change, without encoding.
    pub fn plan(&self, input: &[u8]) -> Result<Report, Rejection> {
        self.run(input, None, &mut Held::default(), Input::Whole)
    }

    /// De-identifies the head of an instance whose Pixel Data is still arriving: `head` is
    /// the Part 10 stream up to and including the element header of its top-level Pixel
    /// Data (`prefix[..value_start]` of a [`PixelDataHeader`] that
    /// [`dicom_deid_wire::find_pixel_data`] found) and `pixel_len` the value length that
    /// header declares.
    ///
    /// When it returns `Some((report, out))`, then for every `pixels` of `pixel_len` bytes,
    /// **if nothing follows Pixel Data in the instance**,
    /// `process(head ‖ pixels)` succeeds with `out ‖ pixels` as its bytes and `report` as its
    /// report. The output can so be written while the pixel value is still arriving: `out`
    /// first, then the value bytes as they come, untouched.
    ///
    /// It declines (`None`) whenever that cannot be promised from the head alone, and the
    /// caller then runs [`Engine::process`] on the whole instance (which writes it or says
    /// why not): a stream with no file meta or a deflated data set, encapsulated or odd-length
    /// Pixel Data (odd values are padded on output), a head that does not end at the Pixel
    /// Data value or declares another length, an instance whose pixels need a clean
    /// (BurnedInAnnotation YES, a region rule, text detection), a profile that does not keep
    /// Pixel Data as it is, and any head that `process` would reject. It takes nothing from
    /// the memory budget and never waits for it, as `process` takes nothing for an instance
    /// whose data set is not deflated and whose pixels pass through.
    ///
    /// The caller must check that the instance ends right after the pixel value (at
    /// `head.len() + pixel_len` bytes) and otherwise throw `out` away and fall back: whatever
    /// follows Pixel Data (trailing padding, a digital signature, any element) is
    /// de-identified and written by `process` after the pixel value, which `out` cannot
    /// hold. The head alone cannot tell.
    pub fn process_head(&self, head: &[u8], pixel_len: u64) -> Option<(Report, Vec<u8>)> {
        let PixelDataAt::Found(at) = find_pixel_data(head, &self.limits) else {
            return None;
        };
        // An odd length is padded on output, so the value would not be written verbatim.
        if at.value_start != head.len() || at.value_len != pixel_len || pixel_len % 2 == 1 {
            return None;
        }
        // The same instance with an empty Pixel Data value: every stage but the clean (which
        // is declined) reads only the other elements, so its output differs from that of the
        // whole instance in the value and its length field alone.
        let mut empty = head.to_vec();
        at.set_len(&mut empty, 0);
        let mut out = Vec::new();
        let report = self
            .run(&empty, Some(&mut out), &mut Held::default(), Input::Head)
            .ok()?;
        let top_pixel_data = tag_str(wt::PIXEL_DATA);
        if report.pixel != PixelReport::PassThrough
            || report.transfer_syntax_out != report.transfer_syntax_in
            || report
                .changes
                .iter()
                .any(|c| c.tag == wt::PIXEL_DATA && c.path == top_pixel_data)
        {
            return None;
        }
        // The output must end with the top-level Pixel Data header, as the input did.
        match find_pixel_data(&out, &self.limits) {
            PixelDataAt::Found(o)
                if o.value_start == out.len() && o.value_len == 0 && o.syntax == at.syntax =>
            {
                o.set_len(&mut out, u32::try_from(pixel_len).ok()?);
                Some((report, out))
            }
            _ => None,
        }
    }

    /// Takes `bytes` of working memory from the budget, if there is one.
    fn take_memory(&self, bytes: u64, what: &str, held: &mut Held) -> Result<(), Rejection> {
        let Some(budget) = &self.memory else {
            return Ok(());
        };
        let share = budget.take(bytes).map_err(|e| Rejection::Unsupported {
            reason: format!("{what} {e} (the service's working-memory limit)"),
        })?;
        held.0.push(share);
        Ok(())
    }

    /// Decides and, when needed, performs the pixel clean (before scrubbing: the
    /// signature attributes are read as they came).
    fn clean_pixels(
        &self,
        ds: &DataSet<'_>,
        class: &str,
        transfer_syntax: &str,
        held: &mut Held,
        input: Input,
    ) -> Result<(PixelReport, Option<dicom_deid_pixel::Encoded>), Rejection> {
        let config = self.profile.pixel();
        let refs = self.detectors.as_refs();
        let stage = Stage::new(config, refs);
        let be = transfer_syntax == dicom_deid_pixel::EXPLICIT_BE;
        let us = |tag| -> u16 {
            ds.get(tag)
                .and_then(|e| e.bytes())
                .and_then(|b| b.get(..2))
                .map_or(0, |b| {
                    if be {
                        u16::from_be_bytes([b[0], b[1]])
                    } else {
                        u16::from_le_bytes([b[0], b[1]])
                    }
                })
        };
        let inst = Instance {
            signature: dicom_deid_profile::pixel::Signature {
                modality: ds.str(MODALITY),
                manufacturer: ds.str(MANUFACTURER),
                model: ds.str(MANUFACTURER_MODEL_NAME),
                sop_class: Some(class),
                rows: us(dicom_deid_pixel::dataset::tags::ROWS),
                columns: us(dicom_deid_pixel::dataset::tags::COLUMNS),
            },
            burned_in: ds.str(BURNED_IN_ANNOTATION),
            image_type: ds.str(IMAGE_TYPE),
            conversion_type: ds.str(CONVERSION_TYPE),
            ultrasound_regions: if config.ultrasound_regions {
                ultrasound_regions(ds, be)
            } else {
                Vec::new()
            },
        };
        let decision = stage.decide(&inst);
        if !decision.needs_clean() {
            return Ok((PixelReport::PassThrough, None));
        }
        if input == Input::Head {
            return UnsupportedSnafu {
                reason: "the pixels need a clean, which needs their value",
            }
            .fail();
        }
        let mut reasons = Vec::new();
        if decision.burned_in {
            reasons.push("BurnedInAnnotation YES".to_string());
        }
        reasons.extend(decision.rules.iter().map(|(id, _)| format!("rule:{id}")));
        if !decision.outside_ultrasound.is_empty() {
            reasons.push("rule:ultrasound-regions".to_string());
        }
        if decision.detect {
            let mode = config.detection.as_str();
            reasons.push(match &decision.usual_because {
                Some(why) => format!("detection ({mode}): {why}"),
                None => format!("detection ({mode})"),
            });
        }
        let fail = |e: dicom_deid_pixel::PixelError| Rejection::Unsupported {
            reason: format!(
                "the pixels need a clean ({}) that cannot be done: {e}",
                reasons.join(", ")
            ),
        };
        let Some((desc, data)) =
            dicom_deid_pixel::dataset::describe(ds, transfer_syntax).map_err(fail)?
        else {
            return Ok((PixelReport::NoPixelData, None));
        };
        // Decoded frames and their detection images, then the re-encoded pixel data and the
        // output's growth beyond the input: about twice the decoded size at the peak.
        let frame = decoded_frame_bytes(&desc);
        let working = frame
            .saturating_mul(u64::from(desc.number_of_frames.max(1)))
            .saturating_mul(2)
            .saturating_add(frame.saturating_mul(4))
            .saturating_add(if decision.detect {
                DETECTION_WORKING_BYTES
            } else {
                0
            });
        self.take_memory(working, "the pixel clean", held)?;
        let cleaned = stage.clean(&decision, &desc, &data).map_err(fail)?;
        Ok((
            PixelReport::Cleaned {
                reasons: reasons.clone(),
                detectors: cleaned.detectors,
                frames: cleaned.frames,
            },
            Some(cleaned.encoded),
        ))
    }

    fn run(
        &self,
        input: &[u8],
        encode: Option<&mut Vec<u8>>,
        held: &mut Held,
        given: Input,
    ) -> Result<Report, Rejection> {
        let raw = read_file(input, &self.limits)?;
        let inflated;
        let (body, syntax, ts_out) = if raw.syntax.deflated {
            // The inflated data set and the output made from it.
            let len = if self.memory.is_some() {
                let len = raw.inflated_len(&self.limits)?;
                self.take_memory(len.saturating_mul(2), "the inflated data set", held)?;
                len
            } else {
                0
            };
            inflated =
                raw.inflate_with_capacity(&self.limits, usize::try_from(len).unwrap_or(0))?;
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
        let pixel_ts = if raw.syntax.deflated {
            Syntax::EXPLICIT_LE.native_uid().to_string()
        } else {
            raw.transfer_syntax_uid.clone()
        };
        let (pixel_report, cleaned) = self.clean_pixels(&ds, &class, &pixel_ts, held, given)?;
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
            pixel: pixel_report,
        };
        let mut pixels = 0;
        let (syntax, ts_out, mut report) = match cleaned {
            None => (syntax, ts_out, report),
            Some(encoded) => {
                pixels = match &encoded.pixel_data {
                    dicom_deid_pixel::EncodedPixels::Native(v) => v.len(),
                    dicom_deid_pixel::EncodedPixels::Encapsulated(f) => {
                        f.iter().map(|f| f.len() + 16).sum()
                    }
                };
                let ts = encoded.transfer_syntax.clone();
                let out_syntax = Syntax::from_uid(&ts).unwrap_or(Syntax::EXPLICIT_LE);
                dicom_deid_pixel::dataset::apply(&mut ds, encoded, out_syntax.big_endian);
                mark_clean_pixels(&mut ds);
                (out_syntax, ts, report)
            }
        };
        report.transfer_syntax_out = ts_out.clone();
        let Some(out) = encode else { return Ok(report) };
        out.clear();

        let meta = FileMetaOut {
            sop_class_uid: class,
            sop_instance_uid: report.new_sop_instance_uid.clone(),
            transfer_syntax_uid: ts_out,
            implementation_class_uid: IMPLEMENTATION_CLASS_UID.to_string(),
            implementation_version_name: IMPLEMENTATION_VERSION_NAME.to_string(),
        };
        // Room for the output up front (regrowing would copy it): the input's size, or the
        // inflated data set's, plus the new pixel data when it was re-encoded.
        out.reserve(body.len() + pixels + 4096);
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

/// What [`Engine::run`] is given: a whole instance, or the head of one with an empty Pixel
/// Data value ([`Engine::process_head`]), whose pixels cannot be cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Whole,
    Head,
}

/// After a clean: BurnedInAnnotation NO, and 113101 (Clean Pixel Data) in
/// DeidentificationMethodCodeSequence (the scrubber has put the profile's codes there).
fn mark_clean_pixels(ds: &mut DataSet<'_>) {
    use dicom_deid_scrub::tags::{
        CODE_MEANING, CODE_VALUE, CODING_SCHEME_DESIGNATOR, DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
    };
    use dicom_deid_wire::{Element, Value, Vr};
    ds.put(Element::text(BURNED_IN_ANNOTATION, Vr::CS, "NO"));
    let mut items = match ds
        .remove(DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .map(|e| e.value)
    {
        Some(Value::Seq(items)) => items,
        _ => Vec::new(),
    };
    if !items
        .iter()
        .any(|i| i.str(CODE_VALUE) == Some(CLEAN_PIXEL_DATA))
    {
        let mut item = DataSet::default();
        item.put(Element::text(CODE_VALUE, Vr::SH, CLEAN_PIXEL_DATA));
        item.put(Element::text(CODING_SCHEME_DESIGNATOR, Vr::SH, "DCM"));
        item.put(Element::text(
            CODE_MEANING,
            Vr::LO,
            dicom_deid_profile::cid_meaning(CLEAN_PIXEL_DATA).unwrap_or("Clean Pixel Data Option"),
        ));
        items.push(item);
    }
    ds.put(Element {
        tag: DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        vr: Vr::SQ,
        value: Value::Seq(items),
    });
}

/// The regions of SequenceOfUltrasoundRegions (0018,6011): RegionLocationMinX0,
/// MinY0, MaxX1, MaxY1 (UL, inclusive bounds).
fn ultrasound_regions(ds: &DataSet<'_>, be: bool) -> Vec<dicom_deid_pixel::detect::Rect> {
    let Some(dicom_deid_wire::Value::Seq(items)) =
        ds.get(SEQUENCE_OF_ULTRASOUND_REGIONS).map(|e| &e.value)
    else {
        return Vec::new();
    };
    let ul = |item: &DataSet<'_>, tag| -> Option<u32> {
        let b: [u8; 4] = item.get(tag)?.bytes()?.get(..4)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    items
        .iter()
        .filter_map(|item| {
            let x0 = ul(item, 0x0018_6018)?;
            let y0 = ul(item, 0x0018_601A)?;
            let x1 = ul(item, 0x0018_601C)?;
            let y1 = ul(item, 0x0018_601E)?;
            (x1 >= x0 && y1 >= y0).then(|| dicom_deid_pixel::detect::Rect {
                x: x0,
                y: y0,
                width: x1 - x0 + 1,
                height: y1 - y0 + 1,
            })
        })
        .collect()
}

/// Bytes of one decoded frame (what the pixel stage holds per frame before detection).
fn decoded_frame_bytes(desc: &dicom_deid_pixel::PixelDescription) -> u64 {
    let samples =
        u64::from(desc.rows) * u64::from(desc.columns) * u64::from(desc.samples_per_pixel.max(1));
    if desc.bits_allocated == 1 {
        samples.div_ceil(8)
    } else {
        samples * u64::from(desc.bits_allocated.div_ceil(8).max(1))
    }
}
