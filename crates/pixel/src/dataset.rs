//! Reading the image pixel description from a `dicom-deid-wire` data set and writing an
//! [`Encoded`] result back into it.

use crate::{Encoded, EncodedPixels, Palette, PixelData, PixelDescription, PixelError};
use dicom_deid_wire::{DataSet, Element, Value, Vr};

/// Tags of the image pixel module used here.
#[allow(missing_docs)]
pub mod tags {
    pub const SAMPLES_PER_PIXEL: u32 = 0x0028_0002;
    pub const PHOTOMETRIC: u32 = 0x0028_0004;
    pub const PLANAR_CONFIGURATION: u32 = 0x0028_0006;
    pub const NUMBER_OF_FRAMES: u32 = 0x0028_0008;
    pub const ROWS: u32 = 0x0028_0010;
    pub const COLUMNS: u32 = 0x0028_0011;
    pub const BITS_ALLOCATED: u32 = 0x0028_0100;
    pub const BITS_STORED: u32 = 0x0028_0101;
    pub const HIGH_BIT: u32 = 0x0028_0102;
    pub const PIXEL_REPRESENTATION: u32 = 0x0028_0103;
    pub const BURNED_IN_ANNOTATION: u32 = 0x0028_0301;
    pub const LOSSY_IMAGE_COMPRESSION: u32 = 0x0028_2110;
    pub const RED_DESCRIPTOR: u32 = 0x0028_1101;
    pub const RED_DATA: u32 = 0x0028_1201;
    pub const SEGMENTED_RED_DATA: u32 = 0x0028_1221;
    pub const PIXEL_DATA: u32 = 0x7FE0_0010;
}
use tags::*;

fn us(ds: &DataSet<'_>, tag: u32, big_endian: bool) -> Option<u16> {
    let b = ds.get(tag)?.bytes()?;
    let b: [u8; 2] = b.get(..2)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn missing(what: &str) -> PixelError {
    PixelError::Corrupt {
        reason: format!("{what} is missing or unreadable"),
    }
}

/// The description and the pixel data of a data set, or `None` when it has no Pixel Data.
/// `transfer_syntax` is the syntax the data set is encoded in (after inflation).
pub fn describe<'d>(
    ds: &'d DataSet<'_>,
    transfer_syntax: &str,
) -> Result<Option<(PixelDescription, PixelData<'d>)>, PixelError> {
    let Some(pixel) = ds.get(PIXEL_DATA) else {
        return Ok(None);
    };
    let be = transfer_syntax == crate::EXPLICIT_BE;
    let rows = us(ds, ROWS, be).ok_or_else(|| missing("Rows (0028,0010)"))?;
    let columns = us(ds, COLUMNS, be).ok_or_else(|| missing("Columns (0028,0011)"))?;
    let bits_allocated =
        us(ds, BITS_ALLOCATED, be).ok_or_else(|| missing("BitsAllocated (0028,0100)"))?;
    let samples_per_pixel = us(ds, SAMPLES_PER_PIXEL, be).unwrap_or(1);
    let bits_stored = us(ds, BITS_STORED, be).unwrap_or(bits_allocated);
    let photometric = ds
        .str(PHOTOMETRIC)
        .map(str::to_string)
        .ok_or_else(|| missing("PhotometricInterpretation (0028,0004)"))?;
    let number_of_frames = match ds.str(NUMBER_OF_FRAMES) {
        None | Some("") => 1,
        Some(s) => s.trim().parse::<u32>().map_err(|_| PixelError::Corrupt {
            reason: "NumberOfFrames (0028,0008) is not a number".into(),
        })?,
    };
    let palette = if photometric == "PALETTE COLOR" {
        read_palette(ds, be)
    } else {
        None
    };
    let data = match &pixel.value {
        Value::Bytes(b) => PixelData::Native(b),
        Value::Fragments(items) => {
            let (bot, rest) = items.split_first().ok_or_else(|| PixelError::Corrupt {
                reason: "encapsulated Pixel Data (7FE0,0010) without an offset table item".into(),
            })?;
            PixelData::Encapsulated {
                fragments: rest.iter().map(|f| &f[..]).collect(),
                offset_table: bot,
            }
        }
        Value::Seq(_) => {
            return Err(PixelError::Corrupt {
                reason: "Pixel Data (7FE0,0010) is a sequence".into(),
            })
        }
    };
    Ok(Some((
        PixelDescription {
            transfer_syntax: transfer_syntax.to_string(),
            rows,
            columns,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            high_bit: us(ds, HIGH_BIT, be).unwrap_or(bits_stored.saturating_sub(1)),
            pixel_representation: us(ds, PIXEL_REPRESENTATION, be).unwrap_or(0),
            photometric,
            planar_configuration: us(ds, PLANAR_CONFIGURATION, be).unwrap_or(0),
            number_of_frames,
            palette,
            pixel_data_vr_ow: pixel.vr == Vr::OW,
        },
        data,
    )))
}

/// The palette as 8-bit RGB; `None` when its descriptors or tables are unusable (the
/// detection image then shows the indices as grey). Reads plain tables (0028,1201–1203) and
/// segmented ones (0028,1221–1223, PS3.3 C.7.9.2), which some ultrasound devices write.
fn read_palette(ds: &DataSet<'_>, be: bool) -> Option<Palette> {
    let word = |b: &[u8], i: usize| -> Option<u16> {
        let w: [u8; 2] = b.get(2 * i..2 * i + 2)?.try_into().ok()?;
        Some(if be {
            u16::from_be_bytes(w)
        } else {
            u16::from_le_bytes(w)
        })
    };
    let mut channels = Vec::new();
    let mut first_mapped = 0i64;
    for c in 0..3 {
        let desc = ds.get(RED_DESCRIPTOR + c)?.bytes()?;
        let entries = match word(desc, 0)? {
            0 => 65536,
            n => usize::from(n),
        };
        first_mapped = i64::from(word(desc, 1)?);
        let bits = word(desc, 2)?;
        let to8 = |v: u16| if bits > 8 { (v >> 8) as u8 } else { v as u8 };
        let table: Vec<u8> = if let Some(data) = ds.get(RED_DATA + c).and_then(|e| e.bytes()) {
            if data.len() >= 2 * entries {
                (0..entries)
                    .map(|i| to8(word(data, i).unwrap_or(0)))
                    .collect()
            } else if data.len() >= entries {
                data[..entries].to_vec()
            } else {
                return None;
            }
        } else {
            let data = ds.get(SEGMENTED_RED_DATA + c)?.bytes()?;
            let words: Vec<u16> = (0..data.len() / 2).filter_map(|i| word(data, i)).collect();
            let mut table = expand_segmented(&words, entries)?;
            table.resize(entries, *table.last()?);
            table.into_iter().map(to8).collect()
        };
        channels.push(table);
    }
    Some(Palette {
        first_mapped,
        entries: (0..channels[0].len())
            .map(|i| [channels[0][i], channels[1][i], channels[2][i]])
            .collect(),
    })
}

/// Expands segmented palette data (PS3.3 C.7.9.2) into at most `limit` entries: discrete
/// segments (opcode 0: n values), linear segments (1: n values from the previous entry to
/// the given end value) and indirect segments (2: n segments copied from a word offset,
/// one level deep). `None` for data that does not follow the format.
pub(crate) fn expand_segmented(words: &[u16], limit: usize) -> Option<Vec<u16>> {
    fn run(
        words: &[u16],
        start: usize,
        segments: Option<usize>,
        depth: u8,
        limit: usize,
        out: &mut Vec<u16>,
    ) -> Option<()> {
        let mut at = start;
        let mut done = 0usize;
        while at < words.len() && segments.is_none_or(|n| done < n) && out.len() < limit {
            let (op, n) = (words[at], usize::from(*words.get(at + 1)?));
            match op {
                0 => {
                    out.extend_from_slice(words.get(at + 2..at + 2 + n)?);
                    at += 2 + n;
                }
                1 => {
                    let y0 = f64::from(*out.last()?);
                    let y1 = f64::from(*words.get(at + 2)?);
                    out.extend(
                        (1..=n).map(|i| (y0 + (y1 - y0) * i as f64 / n as f64).round() as u16),
                    );
                    at += 3;
                }
                2 if depth == 0 => {
                    let offset =
                        usize::from(*words.get(at + 2)?) | usize::from(*words.get(at + 3)?) << 16;
                    run(words, offset, Some(n), 1, limit, out)?;
                    at += 4;
                }
                _ => return None,
            }
            done += 1;
        }
        Some(())
    }
    let mut out = Vec::new();
    run(words, 0, None, 0, limit, &mut out)?;
    out.truncate(limit);
    (!out.is_empty()).then_some(out)
}

fn us_element(tag: u32, v: u16, be: bool) -> Element<'static> {
    let b = if be { v.to_be_bytes() } else { v.to_le_bytes() };
    Element::new(tag, Vr::US, b.to_vec())
}

/// Writes an encoded result into the data set: Pixel Data and the attributes that
/// describe it (photometric, planar configuration, bits, LossyImageCompression).
/// `big_endian` is the byte order of the data set as it will be written.
pub fn apply(ds: &mut DataSet<'_>, encoded: Encoded, big_endian: bool) {
    let be = big_endian;
    ds.put(Element::text(PHOTOMETRIC, Vr::CS, &encoded.photometric));
    match encoded.planar_configuration {
        Some(p) => ds.put(us_element(PLANAR_CONFIGURATION, p, be)),
        None => {
            ds.remove(PLANAR_CONFIGURATION);
        }
    }
    ds.put(us_element(BITS_ALLOCATED, encoded.bits_allocated, be));
    ds.put(us_element(BITS_STORED, encoded.bits_stored, be));
    ds.put(us_element(HIGH_BIT, encoded.high_bit, be));
    if encoded.lossy {
        ds.put(Element::text(LOSSY_IMAGE_COMPRESSION, Vr::CS, "01"));
    }
    let old_vr = ds.get(PIXEL_DATA).map(|e| e.vr);
    let element = match encoded.pixel_data {
        EncodedPixels::Native(bytes) => {
            let vr = if encoded.bits_allocated > 8 {
                Vr::OW
            } else {
                match old_vr {
                    Some(Vr::OW) => Vr::OW,
                    _ => Vr::OB,
                }
            };
            Element::new(PIXEL_DATA, vr, bytes)
        }
        EncodedPixels::Encapsulated(fragments) => {
            let mut offsets = Vec::with_capacity(4 * fragments.len());
            let mut at = 0u64;
            for f in &fragments {
                offsets.extend_from_slice(&(at as u32).to_le_bytes());
                at += f.len() as u64 + 8;
            }
            if at > u64::from(u32::MAX) {
                offsets.clear();
            }
            let mut items = Vec::with_capacity(fragments.len() + 1);
            items.push(offsets.into());
            items.extend(fragments.into_iter().map(Into::into));
            Element {
                tag: PIXEL_DATA,
                vr: Vr::OB,
                value: Value::Fragments(items),
            }
        }
    };
    ds.put(element);
}

#[cfg(test)]
mod tests {
    use super::expand_segmented;

    #[test]
    fn segmented_palettes_expand_discrete_linear_and_indirect_segments() {
        // 0x0000, then a ramp to 0x0400 over 4 entries, then two discrete values.
        let words = [0, 1, 0x0000, 1, 4, 0x0400, 0, 2, 0xFFFF, 0x8000];
        assert_eq!(
            expand_segmented(&words, 100).unwrap(),
            vec![0, 0x100, 0x200, 0x300, 0x400, 0xFFFF, 0x8000]
        );
        // An indirect segment copies the two segments at word 3 (the ramp and the pair).
        let indirect = [0, 1, 0x0000, 1, 2, 0x0200, 0, 1, 0x0300, 2, 2, 3, 0];
        assert_eq!(
            expand_segmented(&indirect, 100).unwrap(),
            vec![0, 0x100, 0x200, 0x300, 0x280, 0x200, 0x300]
        );
        // Truncated, unknown opcodes, a ramp with nothing before it: refused.
        assert!(expand_segmented(&[0, 5, 1, 2], 100).is_none());
        assert!(expand_segmented(&[7, 1, 0], 100).is_none());
        assert!(expand_segmented(&[1, 4, 0x400], 100).is_none());
        // Never longer than the descriptor says.
        assert_eq!(
            expand_segmented(&[0, 4, 1, 2, 3, 4], 2).unwrap(),
            vec![1, 2]
        );
    }
}
