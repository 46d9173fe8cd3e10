//! Detection images, background values and masking of decoded frames.

use crate::Decoded;
use dicom_deid_detect::{Image, Rect};
use std::collections::HashMap;

impl Decoded {
    /// Bytes per sample of the decoded frames (0 for 1-bit data).
    fn bytes_per_sample(&self) -> usize {
        self.desc.bits_allocated as usize / 8
    }

    fn samples(&self) -> usize {
        self.desc.samples_per_pixel as usize
    }

    /// Sample `s` of pixel `p` of frame `f` as stored (bits above BitsStored cleared,
    /// sign-extended when PixelRepresentation is 1).
    fn value(&self, frame: &[u8], p: usize, s: usize) -> i64 {
        let d = &self.desc;
        if d.bits_allocated == 1 {
            return i64::from(frame[p / 8] >> (p % 8) & 1);
        }
        let bps = self.bytes_per_sample();
        let px = d.rows as usize * d.columns as usize;
        let at = if self.planar {
            (s * px + p) * bps
        } else {
            (p * self.samples() + s) * bps
        };
        let raw: u64 = match bps {
            1 => u64::from(frame[at]),
            2 => u64::from(u16::from_le_bytes([frame[at], frame[at + 1]])),
            _ => u64::from(u32::from_le_bytes([
                frame[at],
                frame[at + 1],
                frame[at + 2],
                frame[at + 3],
            ])),
        };
        let bits = u32::from(d.bits_stored.min(d.bits_allocated));
        let v = if bits >= 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        if d.pixel_representation == 1 && bits > 0 && v >> (bits - 1) & 1 == 1 {
            v as i64 - (1i64 << bits)
        } else {
            v as i64
        }
    }

    /// The frame as an 8-bit image for the detectors: grey for monochrome (min–max
    /// stretched, MONOCHROME1 inverted so that bright means bright), RGB for colour
    /// (YBR converted, PALETTE COLOR through its lookup table).
    pub fn detection_image(&self, frame: usize) -> Image {
        let d = &self.desc;
        let (w, h) = (u32::from(d.columns), u32::from(d.rows));
        let px = d.rows as usize * d.columns as usize;
        let f = &self.frames[frame];
        if self.samples() == 3 {
            let mut data = Vec::with_capacity(px * 3);
            let shift = d.bits_stored.saturating_sub(8);
            let to8 = |v: i64| (v.max(0) >> shift).min(255) as u8;
            let ybr = self.photometric.starts_with("YBR");
            for p in 0..px {
                let (a, b, c) = (
                    to8(self.value(f, p, 0)),
                    to8(self.value(f, p, 1)),
                    to8(self.value(f, p, 2)),
                );
                if ybr {
                    data.extend_from_slice(&ybr_to_rgb(a, b, c));
                } else {
                    data.extend_from_slice(&[a, b, c]);
                }
            }
            return Image::rgb(w, h, data);
        }
        if self.photometric == "PALETTE COLOR" {
            if let Some(pal) = &d.palette {
                let mut data = Vec::with_capacity(px * 3);
                for p in 0..px {
                    data.extend_from_slice(&pal.rgb8(self.value(f, p, 0)));
                }
                return Image::rgb(w, h, data);
            }
        }
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for p in 0..px {
            let v = self.value(f, p, 0);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let span = (hi - lo).max(1);
        let invert = self.photometric == "MONOCHROME1";
        let data = (0..px)
            .map(|p| {
                let g = ((self.value(f, p, 0) - lo) * 255 / span) as u8;
                if invert {
                    255 - g
                } else {
                    g
                }
            })
            .collect();
        Image::gray(w, h, data)
    }

    /// The most common pixel of the frame (all samples together), as stored bytes per
    /// sample. Large frames are sampled on a grid of at most about 2^18 pixels.
    pub(crate) fn background(&self, frame: usize) -> Vec<u64> {
        let d = &self.desc;
        let px = d.rows as usize * d.columns as usize;
        let step = (px / (1 << 18)).max(1);
        let f = &self.frames[frame];
        let spp = self.samples();
        let mut counts: HashMap<u128, usize> = HashMap::new();
        let mut best: (usize, u128) = (0, 0);
        for p in (0..px).step_by(step) {
            let mut key = 0u128;
            for s in 0..spp {
                key |= u128::from(self.raw(f, p, s)) << (32 * s);
            }
            let n = counts.entry(key).or_insert(0);
            *n += 1;
            // Ties go to the smaller value, so the choice does not depend on hash order.
            if *n > best.0 || (*n == best.0 && key < best.1) {
                best = (*n, key);
            }
        }
        (0..spp)
            .map(|s| (best.1 >> (32 * s)) as u64 & 0xFFFF_FFFF)
            .collect()
    }

    /// Sample bytes as stored (no masking of unused bits): what a fill writes back.
    fn raw(&self, frame: &[u8], p: usize, s: usize) -> u64 {
        if self.desc.bits_allocated == 1 {
            return u64::from(frame[p / 8] >> (p % 8) & 1);
        }
        let bps = self.bytes_per_sample();
        let at = self.offset(p, s);
        let mut v = 0u64;
        for i in 0..bps {
            v |= u64::from(frame[at + i]) << (8 * i);
        }
        v
    }

    fn offset(&self, p: usize, s: usize) -> usize {
        let d = &self.desc;
        let bps = self.bytes_per_sample();
        let px = d.rows as usize * d.columns as usize;
        if self.planar {
            (s * px + p) * bps
        } else {
            (p * self.samples() + s) * bps
        }
    }

    /// Fills `rects` (clipped to the frame) with the frame's background value, in the
    /// frame's own representation (every sample, every byte).
    pub fn mask(&mut self, frame: usize, rects: &[Rect]) {
        let d = self.desc.clone();
        let (w, h) = (u32::from(d.columns), u32::from(d.rows));
        let rects: Vec<Rect> = rects
            .iter()
            .map(|r| r.padded(0, w, h))
            .filter(|r| !r.is_empty())
            .collect();
        if rects.is_empty() {
            return;
        }
        let bg = self.background(frame);
        let bps = self.bytes_per_sample();
        let spp = self.samples();
        let offsets: Vec<(usize, usize)> = (0..spp).map(|s| (s, self.offset(0, s))).collect();
        let planar = self.planar;
        let px = d.rows as usize * d.columns as usize;
        let f = &mut self.frames[frame];
        for r in rects {
            for y in r.y..r.y + r.height {
                for x in r.x..r.x + r.width {
                    let p = y as usize * d.columns as usize + x as usize;
                    if d.bits_allocated == 1 {
                        if bg[0] == 1 {
                            f[p / 8] |= 1 << (p % 8);
                        } else {
                            f[p / 8] &= !(1 << (p % 8));
                        }
                        continue;
                    }
                    for &(s, _) in &offsets {
                        let at = if planar {
                            (s * px + p) * bps
                        } else {
                            (p * spp + s) * bps
                        };
                        for i in 0..bps {
                            f[at + i] = (bg[s] >> (8 * i)) as u8;
                        }
                    }
                }
            }
        }
        self.masked = true;
    }
}

/// YCbCr (full range, PS3.3 C.7.6.3.1.2) to RGB.
pub(crate) fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    ]
}
