//! The pixel stage of dicom-deid: decode pixel data, mask rectangles in every frame with
//! the frame's background value, and encode the result without degrading it.
//!
//! - [`decode`] turns native or encapsulated pixel data ([`PixelDescription`] +
//!   [`PixelData`]) into [`Decoded`] frames: native little-endian samples, one buffer per
//!   frame. A codec that fails, or panics on a corrupt stream, gives a
//!   [`PixelError::Corrupt`]; a syntax or layout this stage cannot handle gives
//!   [`PixelError::Unsupported`]. Errors name attributes and frame numbers, never pixels.
//! - [`Decoded::detection_image`] is the 8-bit grey or RGB view the detectors
//!   (`dicom-deid-detect`) look at; [`Decoded::mask`] fills rectangles with the frame's
//!   most common pixel value, written in the frame's own representation (every sample,
//!   MONOCHROME1 or 2, palette index, YBR triple, 1 to 32 bits).
//! - [`encode`] writes the frames back ([`Encoded`]); [`dataset`] reads the description
//!   from, and writes the result into, a `dicom-deid-wire` data set.
//! - [`stage`] is the glue the engine calls: it decides from the header alone whether an
//!   instance needs a clean, and runs rules, detectors, masking and re-encoding.
//!
//! What it does not do: read files, log pixel content, or touch anything but the image
//! pixel module's attributes.
//!
//! # What each transfer syntax becomes
//!
//! | input | decoded by | written back as |
//! |---|---|---|
//! | Implicit VR LE, Explicit VR LE, Explicit VR BE (native) | this crate | the same syntax, same layout (planar stays planar); native YBR_FULL_422 becomes YBR_FULL (chroma repeated, exact) |
//! | RLE Lossless `1.2.5` | this crate (PS3.5 Annex G) | RLE Lossless (this crate's encoder), planar configuration 0 |
//! | JPEG-LS Lossless `.4.80` | CharLS (dicom-rs `charls`) | monochrome: JPEG-LS Lossless (CharLS), or Explicit VR LE if CharLS refuses the frame; colour: Explicit VR LE (the dicom-rs writer codes colour in separate scans, which pydicom misreads) |
//! | JPEG Lossless `.4.57`, `.4.70` | jpeg-decoder (dicom-rs `jpeg`) | Explicit VR LE (no lossless JPEG encoder exists in dicom-rs) |
//! | JPEG 2000 Lossless `.4.90` | OpenJPEG port (dicom-rs `openjp2`) | Explicit VR LE (no JPEG 2000 encoder) |
//! | JPEG Baseline `.4.50`, Extended `.4.51` (8-bit) | jpeg-decoder | Explicit VR LE, RGB for colour, LossyImageCompression kept `01` |
//! | JPEG-LS near-lossless `.4.81`, JPEG 2000 `.4.91` | CharLS / OpenJPEG | Explicit VR LE, LossyImageCompression kept `01` |
//! | anything else (JPEG XL, MPEG/HEVC video, 12-bit JPEG Extended, deflated pixel data, private) | — | [`PixelError::Unsupported`] |
//!
//! Lossy input is never compressed a second time: it goes out uncompressed with
//! LossyImageCompression `01` (DCT-domain masking of JPEG Baseline is not implemented).
//! Colour is written as what the samples really are: JPEG Baseline colour decodes to RGB
//! and says RGB; RLE and JPEG-LS keep their samples (YBR_FULL stays YBR_FULL).
//!
//! ```
//! use dicom_deid_pixel::{decode, encode, EncodedPixels, PixelData, PixelDescription};
//! use dicom_deid_detect::Rect;
//! let desc = PixelDescription::mono8(4, 4, "1.2.840.10008.1.2.1");
//! let pixels: Vec<u8> = (0..16).map(|i| if i < 12 { 10 } else { 200 }).collect();
//! let mut decoded = decode(&desc, &PixelData::Native(&pixels)).unwrap();
//! decoded.mask(0, &[Rect { x: 0, y: 3, width: 4, height: 1 }]);
//! let out = encode(&decoded).unwrap();
//! assert_eq!(out.pixel_data, EncodedPixels::Native(vec![10; 16]));
//! ```

mod codec;
pub mod dataset;
pub mod detectors;
mod image;
mod rle;
pub mod stage;

pub use codec::{syntax_plan, Plan, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, JPEG_LS_LOSSLESS, RLE};
pub use dicom_deid_detect as detect;

/// The image pixel attributes the stage needs, read by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelDescription {
    /// Transfer syntax of the pixel data (after any inflation of a deflated data set).
    pub transfer_syntax: String,
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
    /// SamplesPerPixel (0028,0002).
    pub samples_per_pixel: u16,
    /// BitsAllocated (0028,0100).
    pub bits_allocated: u16,
    /// BitsStored (0028,0101).
    pub bits_stored: u16,
    /// HighBit (0028,0102).
    pub high_bit: u16,
    /// PixelRepresentation (0028,0103): 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    /// PhotometricInterpretation (0028,0004), trimmed.
    pub photometric: String,
    /// PlanarConfiguration (0028,0006); 0 when absent.
    pub planar_configuration: u16,
    /// NumberOfFrames (0028,0008); 1 when absent.
    pub number_of_frames: u32,
    /// The palette of a PALETTE COLOR image (used for the detection image only).
    pub palette: Option<Palette>,
    /// Native pixel data is OW (matters for byte order in Explicit VR Big Endian).
    pub pixel_data_vr_ow: bool,
}

impl PixelDescription {
    /// An 8-bit MONOCHROME2 single-frame description (for tests and examples).
    pub fn mono8(rows: u16, columns: u16, transfer_syntax: &str) -> PixelDescription {
        PixelDescription {
            transfer_syntax: transfer_syntax.into(),
            rows,
            columns,
            samples_per_pixel: 1,
            bits_allocated: 8,
            bits_stored: 8,
            high_bit: 7,
            pixel_representation: 0,
            photometric: "MONOCHROME2".into(),
            planar_configuration: 0,
            number_of_frames: 1,
            palette: None,
            pixel_data_vr_ow: false,
        }
    }
}

/// A colour palette reduced to 8-bit RGB entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    /// The stored value the first entry maps.
    pub first_mapped: i64,
    /// 8-bit RGB per entry.
    pub entries: Vec<[u8; 3]>,
}

impl Palette {
    /// The colour of a stored value (clamped to the table, as PS3.3 C.7.6.3.1.5 says).
    pub fn rgb8(&self, value: i64) -> [u8; 3] {
        if self.entries.is_empty() {
            return [0; 3];
        }
        let i = (value - self.first_mapped).clamp(0, self.entries.len() as i64 - 1);
        self.entries[i as usize]
    }
}

/// The pixel data element as stored.
#[derive(Debug, Clone)]
pub enum PixelData<'a> {
    /// Native pixel data, in the data set's byte order.
    Native(&'a [u8]),
    /// Encapsulated pixel data.
    Encapsulated {
        /// The fragments (basic offset table excluded).
        fragments: Vec<&'a [u8]>,
        /// The basic offset table item's value (may be empty).
        offset_table: &'a [u8],
    },
}

/// Why pixel data could not be decoded, masked or encoded. Reasons name attributes and
/// frame numbers, never pixel content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelError {
    /// A syntax or layout this stage does not handle.
    Unsupported {
        /// Why.
        reason: String,
    },
    /// The pixel data does not match its description or does not decode.
    Corrupt {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for PixelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PixelError::Unsupported { reason } => write!(f, "unsupported pixel data: {reason}"),
            PixelError::Corrupt { reason } => write!(f, "corrupt pixel data: {reason}"),
        }
    }
}

impl std::error::Error for PixelError {}

/// Decoded frames, ready for detection and masking.
#[derive(Debug, Clone)]
pub struct Decoded {
    desc: PixelDescription,
    plan: Plan,
    /// Native little-endian samples per frame (1-bit frames packed from bit 0).
    frames: Vec<Vec<u8>>,
    /// What the decoded samples are (RGB after a JPEG colour decode, …).
    photometric: String,
    /// Samples stored plane by plane (native planar input kept as it was).
    planar: bool,
    masked: bool,
}

impl Decoded {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Whether [`Decoded::mask`] changed anything.
    pub fn is_masked(&self) -> bool {
        self.masked
    }

    /// The photometric interpretation of the decoded samples.
    pub fn photometric(&self) -> &str {
        &self.photometric
    }

    /// The native little-endian bytes of one frame (interleaved, or planar when the input
    /// was native planar).
    pub fn frame_bytes(&self, frame: usize) -> &[u8] {
        &self.frames[frame]
    }

    /// Whether the frame bytes are planar.
    pub fn is_planar(&self) -> bool {
        self.planar
    }
}

/// Decodes every frame. Never panics on corrupt data: codec panics are caught.
pub fn decode(desc: &PixelDescription, data: &PixelData) -> Result<Decoded, PixelError> {
    codec::decode(desc, data)
}

/// Encoded pixel data, ready to replace the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedPixels {
    /// Native bytes in the output syntax's byte order (even length).
    Native(Vec<u8>),
    /// One fragment per frame (even lengths).
    Encapsulated(Vec<Vec<u8>>),
}

/// The result of [`encode`]: the pixel data and the attributes that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The transfer syntax to declare in the file meta.
    pub transfer_syntax: String,
    /// The pixel data.
    pub pixel_data: EncodedPixels,
    /// What the samples are.
    pub photometric: String,
    /// PlanarConfiguration for colour images; `None` for one sample per pixel.
    pub planar_configuration: Option<u16>,
    /// BitsAllocated.
    pub bits_allocated: u16,
    /// BitsStored.
    pub bits_stored: u16,
    /// HighBit.
    pub high_bit: u16,
    /// The input was lossy: LossyImageCompression (0028,2110) must say "01".
    pub lossy: bool,
}

/// Encodes the frames as the table in the crate docs says.
pub fn encode(decoded: &Decoded) -> Result<Encoded, PixelError> {
    codec::encode(decoded)
}
