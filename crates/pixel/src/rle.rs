//! RLE Lossless (PS3.5 Annex G): one fragment per frame, a 64-byte header with up to 15
//! segment offsets, one PackBits segment per byte plane (most significant byte first, for
//! each sample in turn). Decoded and encoded here because the dicom-rs registry has no RLE
//! encoder, and so that a corrupt stream is an error, never a panic.

use crate::{PixelDescription, PixelError};

/// Decodes one frame into native little-endian interleaved samples.
pub(crate) fn decode_frame(desc: &PixelDescription, frag: &[u8]) -> Result<Vec<u8>, String> {
    let bps = (desc.bits_allocated / 8) as usize;
    let spp = desc.samples_per_pixel as usize;
    let px = desc.rows as usize * desc.columns as usize;
    if bps == 0 || bps > 2 {
        return Err("BitsAllocated must be 8 or 16".into());
    }
    if frag.len() < 64 {
        return Err("the RLE header is shorter than 64 bytes".into());
    }
    let word = |i: usize| u32::from_le_bytes([frag[i], frag[i + 1], frag[i + 2], frag[i + 3]]);
    let segments = word(0) as usize;
    if segments != bps * spp {
        return Err(format!(
            "{segments} segment(s) where {} are expected",
            bps * spp
        ));
    }
    let mut offsets: Vec<usize> = (0..segments).map(|s| word(4 + 4 * s) as usize).collect();
    offsets.push(frag.len());
    let mut out = vec![0u8; px * spp * bps];
    let mut plane = Vec::with_capacity(px);
    for s in 0..segments {
        let (start, end) = (offsets[s], offsets[s + 1]);
        if start < 64 || start > end || end > frag.len() {
            return Err(format!("segment {s} has a bad offset"));
        }
        plane.clear();
        unpack(&frag[start..end], px, &mut plane);
        if plane.len() < px {
            return Err(format!(
                "segment {s} holds fewer bytes than the frame needs"
            ));
        }
        let sample = s / bps;
        // Segment order: most significant byte first; little-endian output.
        let byte = bps - 1 - s % bps;
        let mut dst = sample * bps + byte;
        for &b in &plane[..px] {
            out[dst] = b;
            dst += spp * bps;
        }
    }
    Ok(out)
}

/// PackBits: a header byte n, then n+1 literal bytes (n < 128) or one byte repeated
/// 257-n times (n > 128); 128 is a no-op. Stops once `want` bytes are out.
fn unpack(src: &[u8], want: usize, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() && out.len() < want {
        let n = src[i] as usize;
        i += 1;
        if n < 128 {
            let end = (i + n + 1).min(src.len());
            out.extend_from_slice(&src[i..end]);
            i = end;
        } else if n > 128 {
            if let Some(&b) = src.get(i) {
                out.extend(std::iter::repeat_n(b, 257 - n));
            }
            i += 1;
        }
    }
}

/// Encodes one frame of native little-endian interleaved samples.
pub(crate) fn encode_frame(desc: &PixelDescription, frame: &[u8]) -> Result<Vec<u8>, PixelError> {
    let bps = (desc.bits_allocated / 8) as usize;
    let spp = desc.samples_per_pixel as usize;
    let cols = desc.columns as usize;
    let px = desc.rows as usize * cols;
    if !(1..=2).contains(&bps) || frame.len() != px * spp * bps {
        return Err(PixelError::Unsupported {
            reason: "RLE needs 8 or 16 bits allocated".into(),
        });
    }
    let segments = bps * spp;
    let mut out = vec![0u8; 64];
    out[0..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane = Vec::with_capacity(px);
    for s in 0..segments {
        let offset = out.len() as u32;
        out[4 + 4 * s..8 + 4 * s].copy_from_slice(&offset.to_le_bytes());
        let sample = s / bps;
        let byte = bps - 1 - s % bps;
        plane.clear();
        plane.extend(
            frame
                .iter()
                .skip(sample * bps + byte)
                .step_by(spp * bps)
                .copied(),
        );
        // Each row is packed on its own (PS3.5 G.3.1).
        for row in plane.chunks(cols) {
            pack_row(row, &mut out);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    Ok(out)
}

fn pack_row(row: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < row.len() {
        let mut run = 1;
        while i + run < row.len() && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        // Literal: up to the next run of two or more, at most 128 bytes.
        let start = i;
        while i < row.len() && i - start < 128 {
            if i + 1 < row.len() && row[i + 1] == row[i] {
                break;
            }
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(rows: u16, cols: u16, spp: u16, ba: u16) -> PixelDescription {
        PixelDescription {
            transfer_syntax: crate::codec::RLE.into(),
            rows,
            columns: cols,
            samples_per_pixel: spp,
            bits_allocated: ba,
            bits_stored: ba,
            high_bit: ba - 1,
            pixel_representation: 0,
            photometric: if spp == 3 { "RGB" } else { "MONOCHROME2" }.into(),
            planar_configuration: 0,
            number_of_frames: 1,
            palette: None,
            pixel_data_vr_ow: false,
        }
    }

    #[test]
    fn round_trips_runs_literals_and_both_byte_orders() {
        for (spp, ba) in [(1, 8), (1, 16), (3, 8), (3, 16)] {
            let d = desc(5, 300, spp, ba);
            let n = 5 * 300 * spp as usize * ba as usize / 8;
            // runs, literals, a single byte between runs, long runs over 128
            let frame: Vec<u8> = (0..n)
                .map(|i| match i % 700 {
                    0..=299 => 7,
                    300 => 9,
                    _ => (i * 31 % 251) as u8,
                })
                .collect();
            let enc = encode_frame(&d, &frame).unwrap();
            assert_eq!(enc.len() % 2, 0);
            assert_eq!(decode_frame(&d, &enc).unwrap(), frame, "spp {spp} ba {ba}");
        }
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let d = desc(4, 4, 1, 8);
        assert!(decode_frame(&d, &[0u8; 10]).is_err());
        let mut bad = vec![0u8; 64];
        bad[0] = 1;
        bad[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode_frame(&d, &bad).is_err());
        bad[4..8].copy_from_slice(&64u32.to_le_bytes());
        bad.extend_from_slice(&[0xFE, 1]); // 3 bytes of 16
        assert!(decode_frame(&d, &bad).is_err());
    }
}
