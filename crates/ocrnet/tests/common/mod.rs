//! Test images with text at known places, drawn with the public-domain 8×8 bitmap font
//! (`font8x8`), scaled to any height with nearest-neighbour sampling. Shared by the tests
//! and the speed example of this crate.
#![allow(dead_code)]

use dicom_deid_detect::{Image, Rect};

/// A deterministic pseudo-random generator (xorshift), so images are the same every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

/// Text drawn into a test image: the glyph cells' box and the pixels set.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub rect: Rect,
    pub pixels: Vec<(u32, u32)>,
}

/// Draws `text` with its top-left corner at (x, y), glyphs `height` px tall (and as wide),
/// in grey level `value` (every channel).
pub fn draw_text(img: &mut Image, x: u32, y: u32, text: &str, height: u32, value: u8) -> Drawn {
    let colour = vec![value; img.channels as usize];
    draw_text_colour(img, x, y, text, height, &colour)
}

/// Like [`draw_text`] with one value per channel.
pub fn draw_text_colour(
    img: &mut Image,
    x: u32,
    y: u32,
    text: &str,
    height: u32,
    colour: &[u8],
) -> Drawn {
    let c = img.channels as usize;
    assert_eq!(colour.len(), c);
    let mut pixels = Vec::new();
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize) & 0x7f];
        let gx = x + i as u32 * height;
        for py in 0..height {
            for px in 0..height {
                let row = glyph[(py * 8 / height) as usize];
                if row & (1 << (px * 8 / height)) != 0 {
                    let (ix, iy) = (gx + px, y + py);
                    if ix < img.width && iy < img.height {
                        let at = (iy as usize * img.width as usize + ix as usize) * c;
                        img.data[at..at + c].copy_from_slice(colour);
                        pixels.push((ix, iy));
                    }
                }
            }
        }
    }
    Drawn {
        rect: Rect {
            x,
            y,
            width: height * text.chars().count() as u32,
            height,
        },
        pixels,
    }
}

/// An ultrasound-like grey frame: black background, a speckled fan-shaped sector in the
/// middle. No text.
pub fn ultrasound(width: u32, height: u32, seed: u64) -> Image {
    let mut rng = Rng(seed | 1);
    let mut data = vec![0u8; (width * height) as usize];
    let (cx, cy) = (width as f32 / 2.0, height as f32 * 0.12);
    let r_max = height as f32 * 0.85;
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let r = (dx * dx + dy * dy).sqrt();
            let angle = dx.atan2(dy).abs();
            if dy > 0.0 && r < r_max && angle < 0.75 {
                let depth = 1.0 - r / r_max;
                let v = (rng.below(160) as f32 * (0.4 + 0.6 * depth)) as u8;
                data[(y * width + x) as usize] = v;
            }
        }
    }
    Image::gray(width, height, data)
}

/// A CR-like grey frame: smooth anatomy-like gradients plus mild noise. No text.
pub fn radiograph(width: u32, height: u32, seed: u64) -> Image {
    let mut rng = Rng(seed | 1);
    let mut data = vec![0u8; (width * height) as usize];
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
            let body = 1.0 - ((u - 0.5).powi(2) * 3.0 + (v - 0.5).powi(2) * 1.5);
            let ribs = ((v * 40.0).sin() * 0.5 + 0.5) * 0.15;
            let base = (body.clamp(0.0, 1.0) * 150.0 + ribs * 100.0) as i32;
            let noise = rng.below(12) as i32 - 6;
            data[(y * width + x) as usize] = (base + noise).clamp(0, 255) as u8;
        }
    }
    Image::gray(width, height, data)
}

/// The share of the text's pixels that the union of `found` covers (0..=1).
pub fn covered(text: &Drawn, found: &[Rect]) -> f64 {
    let inside = |&(x, y): &(u32, u32)| {
        found
            .iter()
            .any(|r| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height)
    };
    text.pixels.iter().filter(|p| inside(p)).count() as f64 / text.pixels.len().max(1) as f64
}
