//! Decoding pixel data into native little-endian frames and encoding them back.
//!
//! What each transfer syntax becomes is listed in the crate docs ([`crate`]); the table
//! [`syntax_plan`] is the single place that decides it.

use crate::{Decoded, Encoded, EncodedPixels, PixelData, PixelDescription, PixelError};
use dicom_encoding::adapters::{PixelDataObject, RawPixelData};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Implicit VR Little Endian.
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Explicit VR Big Endian (retired).
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
/// RLE Lossless.
pub const RLE: &str = "1.2.840.10008.1.2.5";
/// JPEG-LS Lossless.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";

/// How the pixel data of one transfer syntax is read and written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Native (uncompressed) pixel data, written back in the same syntax.
    Native,
    /// RLE Lossless: decoded and encoded here, written back as RLE.
    Rle,
    /// Lossless codec with an encoder (JPEG-LS lossless): written back in the same syntax.
    LosslessSame,
    /// Lossless codec without an encoder here: written as Explicit VR Little Endian.
    LosslessToNative,
    /// Lossy codec: written as Explicit VR Little Endian, LossyImageCompression stays "01".
    LossyToNative,
}

/// What this crate does with a transfer syntax, or `None` when it cannot decode it.
pub fn syntax_plan(uid: &str) -> Option<Plan> {
    Some(match uid {
        IMPLICIT_LE | EXPLICIT_LE | EXPLICIT_BE => Plan::Native,
        RLE => Plan::Rle,
        JPEG_LS_LOSSLESS => Plan::LosslessSame,
        // JPEG lossless (process 14, and its SV1 default), JPEG 2000 lossless only.
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" | "1.2.840.10008.1.2.4.90" => {
            Plan::LosslessToNative
        }
        // JPEG baseline, extended (8-bit only: the decoder has no 12-bit DCT), JPEG-LS
        // near-lossless, JPEG 2000 (possibly lossy).
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.81"
        | "1.2.840.10008.1.2.4.91" => Plan::LossyToNative,
        _ => return None,
    })
}

/// Bytes of one native frame (`None` on overflow); 1-bit frames are counted in whole bytes.
pub(crate) fn native_frame_len(desc: &PixelDescription, samples: u16) -> Option<usize> {
    let px = (desc.rows as usize).checked_mul(desc.columns as usize)?;
    let bits = px
        .checked_mul(samples as usize)?
        .checked_mul(desc.bits_allocated as usize)?;
    Some(bits.div_ceil(8))
}

fn unsupported(reason: impl Into<String>) -> PixelError {
    PixelError::Unsupported {
        reason: reason.into(),
    }
}

fn corrupt(reason: impl Into<String>) -> PixelError {
    PixelError::Corrupt {
        reason: reason.into(),
    }
}

pub(crate) fn check(desc: &PixelDescription) -> Result<(), PixelError> {
    if desc.rows == 0 || desc.columns == 0 {
        return Err(corrupt("Rows (0028,0010) or Columns (0028,0011) is zero"));
    }
    if desc.number_of_frames == 0 {
        return Err(corrupt("NumberOfFrames (0028,0008) is zero"));
    }
    if !matches!(desc.samples_per_pixel, 1 | 3) {
        return Err(unsupported(format!(
            "SamplesPerPixel (0028,0002) {} is not 1 or 3",
            desc.samples_per_pixel
        )));
    }
    if !matches!(desc.bits_allocated, 1 | 8 | 16 | 32) {
        return Err(unsupported(format!(
            "BitsAllocated (0028,0100) {} is not 1, 8, 16 or 32",
            desc.bits_allocated
        )));
    }
    if desc.bits_stored == 0 || desc.bits_stored > desc.bits_allocated {
        return Err(corrupt(
            "BitsStored (0028,0101) is 0 or above BitsAllocated",
        ));
    }
    let photometric_ok = match desc.samples_per_pixel {
        1 => matches!(
            desc.photometric.as_str(),
            "MONOCHROME1" | "MONOCHROME2" | "PALETTE COLOR"
        ),
        _ => matches!(
            desc.photometric.as_str(),
            "RGB" | "YBR_FULL" | "YBR_FULL_422" | "YBR_ICT" | "YBR_RCT"
        ),
    };
    if !photometric_ok {
        return Err(unsupported(format!(
            "PhotometricInterpretation (0028,0004) is not one this stage can mask with {} sample(s) per pixel",
            desc.samples_per_pixel
        )));
    }
    if desc.bits_allocated == 1 && desc.samples_per_pixel != 1 {
        return Err(unsupported("1-bit colour pixel data"));
    }
    Ok(())
}

/// Decodes all frames (see [`crate::decode`]).
pub(crate) fn decode(desc: &PixelDescription, data: &PixelData) -> Result<Decoded, PixelError> {
    check(desc)?;
    let plan = syntax_plan(&desc.transfer_syntax).ok_or_else(|| {
        unsupported("the transfer syntax has no decoder in the pixel stage".to_string())
    })?;
    let frames_n = desc.number_of_frames as usize;
    let (frames, photometric, planar) = match (plan, data) {
        (Plan::Native, PixelData::Native(bytes)) => decode_native(desc, bytes)?,
        (Plan::Native, PixelData::Encapsulated { .. }) => {
            return Err(corrupt(
                "Pixel Data (7FE0,0010) is encapsulated in a native transfer syntax",
            ))
        }
        (_, PixelData::Native(_)) => {
            return Err(corrupt(
                "Pixel Data (7FE0,0010) is not encapsulated in a compressed transfer syntax",
            ))
        }
        (
            _,
            PixelData::Encapsulated {
                fragments,
                offset_table,
            },
        ) => {
            if desc.bits_allocated == 1 || desc.bits_allocated == 32 {
                return Err(unsupported(format!(
                    "compressed pixel data with BitsAllocated (0028,0100) {}",
                    desc.bits_allocated
                )));
            }
            if desc.transfer_syntax == "1.2.840.10008.1.2.4.51" && desc.bits_stored > 8 {
                return Err(unsupported(
                    "12-bit JPEG Extended: the JPEG decoder has no 12-bit DCT",
                ));
            }
            let per_frame = split_frames(fragments, offset_table, frames_n, &desc.transfer_syntax)?;
            let mut frames = Vec::with_capacity(frames_n);
            for (i, bytes) in per_frame.iter().enumerate() {
                let frame = match plan {
                    Plan::Rle => crate::rle::decode_frame(desc, bytes)
                        .map_err(|e| corrupt(format!("RLE frame {i} does not decode: {e}")))?,
                    _ if desc.photometric == "RGB"
                        && desc.samples_per_pixel == 3
                        && matches!(
                            desc.transfer_syntax.as_str(),
                            "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51"
                        ) =>
                    {
                        decode_jpeg_rgb(bytes, i)?
                    }
                    _ => decode_with_registry(desc, bytes, i)?,
                };
                frames.push(frame);
            }
            let photometric = decoded_photometric(desc, plan);
            (frames, photometric, false)
        }
    };
    let expected = native_frame_len(desc, desc.samples_per_pixel)
        .ok_or_else(|| corrupt("the frame size overflows"))?;
    if let Some(i) = frames.iter().position(|f| f.len() != expected) {
        return Err(corrupt(format!(
            "frame {i} decodes to {} bytes, Rows x Columns x samples says {expected}",
            frames[i].len()
        )));
    }
    Ok(Decoded {
        desc: desc.clone(),
        plan,
        frames,
        photometric,
        planar,
        masked: false,
    })
}

/// The photometric interpretation of what a codec hands back.
fn decoded_photometric(desc: &PixelDescription, plan: Plan) -> String {
    if desc.samples_per_pixel == 1 {
        return desc.photometric.clone();
    }
    match (plan, desc.photometric.as_str()) {
        // RLE and JPEG lossless keep the samples as coded; JPEG-LS has no colour transform.
        (Plan::Rle, p) => p.to_string(),
        (_, p)
            if desc.transfer_syntax == "1.2.840.10008.1.2.4.57"
                || desc.transfer_syntax == "1.2.840.10008.1.2.4.70" =>
        {
            p.to_string()
        }
        (_, p) if desc.transfer_syntax.starts_with("1.2.840.10008.1.2.4.8") => p.to_string(),
        // JPEG 2000: YBR_ICT/YBR_RCT are undone by the decoder (multi-component transform);
        // YBR_FULL without one stays as coded.
        (_, "YBR_FULL") if desc.transfer_syntax.starts_with("1.2.840.10008.1.2.4.9") => {
            "YBR_FULL".into()
        }
        // JPEG baseline/extended: the decoder converts YCbCr to RGB.
        _ => "RGB".into(),
    }
}

fn decode_native(
    desc: &PixelDescription,
    bytes: &[u8],
) -> Result<(Vec<Vec<u8>>, String, bool), PixelError> {
    let frames_n = desc.number_of_frames as usize;
    let big_endian = desc.transfer_syntax == EXPLICIT_BE;
    if big_endian && !matches!(desc.bits_allocated, 8 | 16) {
        return Err(unsupported(format!(
            "big endian pixel data with BitsAllocated (0028,0100) {}",
            desc.bits_allocated
        )));
    }
    let ybr422 = desc.photometric == "YBR_FULL_422";
    let stored_len = if ybr422 {
        // Two luma samples and one pair of chroma samples per two pixels.
        if desc.bits_allocated != 8 || desc.columns % 2 == 1 {
            return Err(unsupported(
                "native YBR_FULL_422 other than 8-bit with an even number of Columns",
            ));
        }
        native_frame_len(desc, 2)
    } else {
        native_frame_len(desc, desc.samples_per_pixel)
    }
    .ok_or_else(|| corrupt("the frame size overflows"))?;
    let mut frames = Vec::with_capacity(frames_n);
    if desc.bits_allocated == 1 {
        let px = desc.rows as usize * desc.columns as usize;
        let total_bits = px * frames_n;
        if bytes.len() < total_bits.div_ceil(8) {
            return Err(corrupt(format!(
                "Pixel Data (7FE0,0010) holds {} bytes, {} frame(s) need {}",
                bytes.len(),
                frames_n,
                total_bits.div_ceil(8)
            )));
        }
        for f in 0..frames_n {
            let mut out = vec![0u8; px.div_ceil(8)];
            for p in 0..px {
                let bit = f * px + p;
                if bytes[bit / 8] >> (bit % 8) & 1 == 1 {
                    out[p / 8] |= 1 << (p % 8);
                }
            }
            frames.push(out);
        }
        return Ok((frames, desc.photometric.clone(), false));
    }
    let need = stored_len
        .checked_mul(frames_n)
        .ok_or_else(|| corrupt("the pixel data size overflows"))?;
    if bytes.len() < need {
        return Err(corrupt(format!(
            "Pixel Data (7FE0,0010) holds {} bytes, {} frame(s) need {}",
            bytes.len(),
            frames_n,
            need
        )));
    }
    // OW in big endian: 16-bit words, byte-swapped over the whole value (an odd number
    // of 8-bit samples pairs its last one with the padding byte).
    let swapped: Vec<u8>;
    let bytes = if big_endian && desc.pixel_data_vr_ow {
        let mut all = bytes.to_vec();
        for pair in all.chunks_exact_mut(2) {
            pair.swap(0, 1);
        }
        swapped = all;
        &swapped[..]
    } else {
        bytes
    };
    for f in 0..frames_n {
        let mut frame = bytes[f * stored_len..(f + 1) * stored_len].to_vec();
        if ybr422 {
            frame = upsample_422(&frame);
        }
        frames.push(frame);
    }
    let photometric = if ybr422 {
        "YBR_FULL".to_string()
    } else {
        desc.photometric.clone()
    };
    let planar = desc.samples_per_pixel == 3 && desc.planar_configuration == 1 && !ybr422;
    Ok((frames, photometric, planar))
}

/// `Y1 Y2 Cb Cr` per pair of pixels to `Y Cb Cr` per pixel (chroma repeated: exact).
fn upsample_422(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() / 2 * 3);
    for q in frame.chunks_exact(4) {
        out.extend_from_slice(&[q[0], q[2], q[3], q[1], q[2], q[3]]);
    }
    out
}

/// The encoded bytes of each frame: one fragment per frame, all fragments for a single
/// frame, or the basic offset table / start markers for the rest.
fn split_frames<'a>(
    fragments: &[&'a [u8]],
    offset_table: &[u8],
    frames: usize,
    syntax: &str,
) -> Result<Vec<Cow<'a, [u8]>>, PixelError> {
    if fragments.is_empty() {
        return Err(corrupt("Pixel Data (7FE0,0010) has no fragments"));
    }
    if fragments.len() == frames {
        return Ok(fragments.iter().map(|f| Cow::Borrowed(*f)).collect());
    }
    if frames == 1 {
        return Ok(vec![Cow::Owned(fragments.concat())]);
    }
    if fragments.len() < frames {
        return Err(corrupt(format!(
            "{} fragment(s) for {} frames",
            fragments.len(),
            frames
        )));
    }
    if syntax == RLE {
        return Err(corrupt("RLE frames must be one fragment each"));
    }
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(frames);
    if offset_table.len() >= 4 * frames {
        let offsets: Vec<u32> = offset_table
            .chunks_exact(4)
            .take(frames)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut pos = 0u64;
        out.resize(frames, Vec::new());
        for frag in fragments {
            let frame = offsets
                .iter()
                .rposition(|&o| u64::from(o) <= pos)
                .unwrap_or(0);
            out[frame].extend_from_slice(frag);
            pos += frag.len() as u64 + 8;
        }
    } else {
        // No offset table: a frame starts with a fragment that starts with a JPEG SOI,
        // a JPEG 2000 codestream SOC or a JP2 signature box.
        for frag in fragments {
            let starts = frag.starts_with(&[0xFF, 0xD8])
                || frag.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
                || frag.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50]);
            match out.last_mut() {
                Some(last) if !starts => last.extend_from_slice(frag),
                _ => out.push(frag.to_vec()),
            }
        }
    }
    if out.len() != frames || out.iter().any(Vec::is_empty) {
        return Err(corrupt(format!(
            "cannot tell the {frames} frames apart among {} fragments",
            fragments.len()
        )));
    }
    Ok(out.into_iter().map(Cow::Owned).collect())
}

/// A one-frame view of our data for the dicom-rs codecs.
struct FrameObject<'a> {
    desc: &'a PixelDescription,
    /// Samples per pixel as the codec must see them.
    samples: u16,
    photometric: &'a str,
    syntax: &'a str,
    bytes: &'a [u8],
    native: bool,
}

impl PixelDataObject for FrameObject<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.syntax
    }
    fn rows(&self) -> Option<u16> {
        Some(self.desc.rows)
    }
    fn cols(&self) -> Option<u16> {
        Some(self.desc.columns)
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        Some(self.samples)
    }
    fn bits_allocated(&self) -> Option<u16> {
        Some(self.desc.bits_allocated)
    }
    fn bits_stored(&self) -> Option<u16> {
        Some(self.desc.bits_stored)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        Some(self.photometric)
    }
    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }
    fn number_of_fragments(&self) -> Option<u32> {
        (!self.native).then_some(1)
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(self.bytes))
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        Some(Cow::Owned(vec![0]))
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        let mut fragments = dicom_core::value::C::new();
        fragments.push(self.bytes.to_vec());
        let mut offset_table = dicom_core::value::C::new();
        offset_table.push(0);
        Some(RawPixelData {
            fragments,
            offset_table,
        })
    }
}

/// Decodes one frame with the dicom-rs codec of the syntax. A panic inside a codec
/// (they index on header values) is caught and becomes a `Corrupt` error.
fn decode_with_registry(
    desc: &PixelDescription,
    bytes: &[u8],
    index: usize,
) -> Result<Vec<u8>, PixelError> {
    let ts = TransferSyntaxRegistry
        .get(&desc.transfer_syntax)
        .ok_or_else(|| unsupported("the transfer syntax is unknown to the codec registry"))?;
    let reader = ts
        .pixel_data_reader()
        .ok_or_else(|| unsupported("no decoder is built in for the transfer syntax"))?;
    let obj = FrameObject {
        desc,
        samples: desc.samples_per_pixel,
        photometric: &desc.photometric,
        syntax: &desc.transfer_syntax,
        bytes,
        native: false,
    };
    let mut dst = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| reader.decode_frame(&obj, 0, &mut dst)));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(corrupt(format!("frame {index} does not decode: {e}"))),
        Err(_) => {
            return Err(corrupt(format!(
                "frame {index} does not decode (the codec gave up on its headers)"
            )))
        }
    }
    if desc.samples_per_pixel == 3
        && desc.transfer_syntax.starts_with("1.2.840.10008.1.2.4.8")
        && jpeg_ls_is_planar(bytes)
    {
        dst = planar_to_interleaved(&dst, desc.bits_allocated as usize / 8);
    }
    Ok(dst)
}

/// A JPEG frame whose samples PhotometricInterpretation says are RGB: decoded without the
/// YCbCr conversion the decoder would otherwise guess from the component ids.
fn decode_jpeg_rgb(bytes: &[u8], index: usize) -> Result<Vec<u8>, PixelError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        d.set_color_transform(jpeg_decoder::ColorTransform::RGB);
        d.decode()
    }));
    match result {
        Ok(Ok(v)) => Ok(v),
        _ => Err(corrupt(format!("JPEG frame {index} does not decode"))),
    }
}

/// Whether a colour JPEG-LS stream codes its components in separate scans (ILV none), in
/// which case CharLS hands the planes back one after the other.
fn jpeg_ls_is_planar(stream: &[u8]) -> bool {
    let Some(sos) = stream.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    // FFDA, Ls (2), Ns (1), Ns x (Ci, Tmi), NEAR, ILV
    let ns = stream.get(sos + 4).copied().unwrap_or(0) as usize;
    let ilv = stream.get(sos + 5 + 2 * ns + 1).copied();
    ns == 1 || ilv == Some(0)
}

pub(crate) fn planar_to_interleaved(data: &[u8], bytes_per_sample: usize) -> Vec<u8> {
    let plane = data.len() / 3;
    let mut out = vec![0u8; data.len()];
    let px = plane / bytes_per_sample;
    for p in 0..px {
        for s in 0..3 {
            let src = s * plane + p * bytes_per_sample;
            let dst = (p * 3 + s) * bytes_per_sample;
            out[dst..dst + bytes_per_sample].copy_from_slice(&data[src..src + bytes_per_sample]);
        }
    }
    out
}

/// Encodes every frame (see [`crate::encode`]).
pub(crate) fn encode(decoded: &Decoded) -> Result<Encoded, PixelError> {
    let desc = &decoded.desc;
    let colour = desc.samples_per_pixel == 3;
    let lossy = matches!(decoded.plan, Plan::LossyToNative);
    let native = |syntax: &str| -> Result<Encoded, PixelError> {
        let mut out = Vec::new();
        if desc.bits_allocated == 1 {
            let px = desc.rows as usize * desc.columns as usize;
            out = vec![0u8; (px * decoded.frames.len()).div_ceil(8)];
            for (f, frame) in decoded.frames.iter().enumerate() {
                for p in 0..px {
                    if frame[p / 8] >> (p % 8) & 1 == 1 {
                        let bit = f * px + p;
                        out[bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
        } else {
            out.reserve(decoded.frames.iter().map(Vec::len).sum());
            for frame in &decoded.frames {
                out.extend_from_slice(frame);
            }
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        if syntax == EXPLICIT_BE && desc.pixel_data_vr_ow {
            for pair in out.chunks_exact_mut(2) {
                pair.swap(0, 1);
            }
        }
        Ok(Encoded {
            transfer_syntax: syntax.to_string(),
            pixel_data: EncodedPixels::Native(out),
            photometric: decoded.photometric.clone(),
            planar_configuration: colour.then_some(u16::from(decoded.planar)),
            bits_allocated: desc.bits_allocated,
            bits_stored: desc.bits_stored,
            high_bit: desc.high_bit,
            lossy,
        })
    };
    match decoded.plan {
        Plan::Native => native(&desc.transfer_syntax),
        Plan::LosslessToNative | Plan::LossyToNative => native(EXPLICIT_LE),
        Plan::Rle => {
            let fragments = decoded
                .frames
                .iter()
                .map(|f| crate::rle::encode_frame(desc, f))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Encoded {
                transfer_syntax: RLE.to_string(),
                pixel_data: EncodedPixels::Encapsulated(fragments),
                photometric: decoded.photometric.clone(),
                planar_configuration: colour.then_some(0),
                bits_allocated: desc.bits_allocated,
                bits_stored: desc.bits_stored,
                high_bit: desc.high_bit,
                lossy: false,
            })
        }
        // Colour goes out uncompressed: the dicom-rs JPEG-LS writer codes the components
        // in separate scans, which readers that follow PlanarConfiguration misread.
        Plan::LosslessSame if colour => native(EXPLICIT_LE),
        Plan::LosslessSame => match encode_jpeg_ls(decoded) {
            Ok(fragments) => Ok(Encoded {
                transfer_syntax: JPEG_LS_LOSSLESS.to_string(),
                pixel_data: EncodedPixels::Encapsulated(fragments),
                photometric: decoded.photometric.clone(),
                planar_configuration: colour.then_some(0),
                bits_allocated: desc.bits_allocated,
                bits_stored: desc.bits_stored,
                high_bit: desc.high_bit,
                lossy: false,
            }),
            // Still lossless: the samples go out uncompressed.
            Err(_) => native(EXPLICIT_LE),
        },
    }
}

fn encode_jpeg_ls(decoded: &Decoded) -> Result<Vec<Vec<u8>>, PixelError> {
    let desc = &decoded.desc;
    let ts = TransferSyntaxRegistry
        .get(JPEG_LS_LOSSLESS)
        .ok_or_else(|| unsupported("JPEG-LS is unknown to the codec registry"))?;
    let writer = ts
        .pixel_data_writer()
        .ok_or_else(|| unsupported("no JPEG-LS encoder is built in"))?;
    let mut fragments = Vec::with_capacity(decoded.frames.len());
    for frame in &decoded.frames {
        let obj = FrameObject {
            desc,
            samples: desc.samples_per_pixel,
            photometric: &decoded.photometric,
            syntax: EXPLICIT_LE,
            bytes: frame,
            native: true,
        };
        let mut dst = Vec::new();
        let r = catch_unwind(AssertUnwindSafe(|| {
            writer.encode_frame(&obj, 0, Default::default(), &mut dst)
        }));
        match r {
            Ok(Ok(_)) => {}
            _ => return Err(unsupported("the JPEG-LS encoder refused the frame")),
        }
        if dst.len() % 2 == 1 {
            dst.push(0);
        }
        fragments.push(dst);
    }
    Ok(fragments)
}
