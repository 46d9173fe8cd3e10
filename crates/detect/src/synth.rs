//! Synthetic images with known burned-in text, for tests and the scorer (feature `synth`).
//!
//! Every [`Sample`] is made deterministically from a seed and carries, for each piece of text
//! drawn, its box, whether it is PHI-like (names, IDs, dates, institutions) and its **text
//! pixels** on every frame (anti-aliasing coverage ≥ 50 %), so a scorer can say exactly how
//! much of the text a set of masks hides.
//!
//! Scenes ([`Kind`]): grey and colour ultrasound (fan-shaped sector with speckle, parameter
//! labels, depth digits, text inside the sector), cine loops (10 frames of moving speckle and
//! a moving organ under static text, plus a frame counter that changes in place), screenshots
//! (panels, buttons, viewport corner text, dark-on-bright bands), scanned documents, XA (dark
//! vessels on a bright textured field), CR/DX (and the MONOCHROME1-like inverted rendering:
//! dark text on a bright field), endoscopy (colour tissue). Text: sizes 8–40 px, several
//! colours, 0°/90°/270° rotation, over flat bands and over texture. Text-free controls
//! ([`Kind::Control`]) have text-like edges only: grids, rulers and tick marks, calipers and
//! dotted lines, barcodes, icons, colour bars, speckle sectors.
//!
//! Fonts, with no download: the 8×8 bitmap font of the `font8x8` crate (scaled), and DejaVu
//! Sans, DejaVu Sans Mono Bold and DejaVu Serif from Debian's `fonts-dejavu-core`
//! (`/usr/share/fonts/truetype/dejavu`, or the folder named by [`FONT_DIR_ENV`]) rendered with
//! `ab_glyph`. Without the TTF files every face falls back to the bitmap font and
//! [`fonts_available`] says so: the set is then different, and the scorer's figures are not
//! the ones published.

use std::path::PathBuf;
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

use crate::{Image, Rect};

/// Environment variable naming the folder with the DejaVu TTF files.
pub const FONT_DIR_ENV: &str = "DICOM_DEID_FONT_DIR";
/// Where Debian's `fonts-dejavu-core` puts them.
pub const DEFAULT_FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// The scene an image imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Grey ultrasound, 640×480.
    UsGrey,
    /// Colour ultrasound (Doppler box, colour bar, coloured text), 640×480 RGB.
    UsColour,
    /// Ultrasound cine loop, 10 frames of 640×480.
    Cine,
    /// Screen capture of a viewer, 1024×768 RGB.
    Screenshot,
    /// A scanned paper document, 850×1100 grey.
    Document,
    /// X-ray angiography, 512×512 grey.
    Xa,
    /// Computed/digital radiography, 1024² or 2048² grey.
    Cr,
    /// CR rendered MONOCHROME1-like (inverted: dark text on a bright field).
    CrInverted,
    /// Endoscopy, 640×480 RGB.
    Endoscopy,
    /// A text-free control image with text-like edges.
    Control,
}

impl Kind {
    /// A short name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::UsGrey => "US grey",
            Kind::UsColour => "US colour",
            Kind::Cine => "US cine (10 fr)",
            Kind::Screenshot => "screenshot",
            Kind::Document => "document",
            Kind::Xa => "XA",
            Kind::Cr => "CR/DX",
            Kind::CrInverted => "CR MONOCHROME1",
            Kind::Endoscopy => "endoscopy",
            Kind::Control => "text-free controls",
        }
    }
}

/// A typeface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `font8x8`'s basic bitmap font, scaled by nearest neighbour.
    Bitmap8x8,
    /// DejaVu Sans.
    Sans,
    /// DejaVu Sans Mono Bold.
    MonoBold,
    /// DejaVu Serif.
    Serif,
}

/// A piece of text drawn into a sample, and where its pixels are.
#[derive(Debug, Clone)]
pub struct TruthBox {
    /// Bounding box of its text pixels (over all frames).
    pub rect: Rect,
    /// Names, IDs, dates, institutions: what must never stay visible.
    pub phi: bool,
    /// Font size in pixels (the em height).
    pub size: u32,
    /// 0, 90 or 270 degrees (clockwise).
    pub rotation: u16,
    /// Drawn over texture (speckle, anatomy) rather than a flat field or band.
    pub over_texture: bool,
    /// Text pixels (`y * width + x`) per frame: `pixels[f]` for frame `f`.
    pub pixels: Vec<Vec<u32>>,
}

/// One generated image.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Unique within a set, e.g. `us-grey-3` or `control-ruler-1`.
    pub name: String,
    /// The scene.
    pub kind: Kind,
    /// One or more frames of one size.
    pub frames: Vec<Image>,
    /// The text drawn (empty for controls).
    pub boxes: Vec<TruthBox>,
}

impl Sample {
    /// Whether the image holds no text at all.
    pub fn text_free(&self) -> bool {
        self.boxes.is_empty()
    }
}

/// Whether the DejaVu faces were found (see the module docs).
pub fn fonts_available() -> bool {
    fonts().iter().all(Option::is_some)
}

/// The folder the TTF faces are read from.
pub fn font_dir() -> PathBuf {
    std::env::var_os(FONT_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT_DIR))
}

fn fonts() -> &'static [Option<FontVec>; 3] {
    static FONTS: OnceLock<[Option<FontVec>; 3]> = OnceLock::new();
    FONTS.get_or_init(|| {
        let dir = font_dir();
        let load = |name: &str| {
            std::fs::read(dir.join(name))
                .ok()
                .and_then(|b| FontVec::try_from_vec(b).ok())
        };
        [
            load("DejaVuSans.ttf"),
            load("DejaVuSansMono-Bold.ttf"),
            load("DejaVuSerif.ttf"),
        ]
    })
}

/// The standard set the scorer and the tests use: `per_kind` images of every scene and
/// `2 * per_kind` text-free controls, all from `seed`. (`standard_set(6, 1)` is the set the
/// README's figures come from.)
pub fn standard_set(per_kind: usize, seed: u64) -> Vec<Sample> {
    let kinds = [
        Kind::UsGrey,
        Kind::UsColour,
        Kind::Cine,
        Kind::Screenshot,
        Kind::Document,
        Kind::Xa,
        Kind::Cr,
        Kind::CrInverted,
        Kind::Endoscopy,
    ];
    let mut out = Vec::new();
    for (k, &kind) in kinds.iter().enumerate() {
        for i in 0..per_kind {
            let s = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add((k * 1000 + i) as u64);
            out.push(sample(kind, i, s));
        }
    }
    for i in 0..2 * per_kind {
        let s = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((99_000 + i) as u64);
        out.push(control(i, s));
    }
    out
}

/// One image of `kind` (not `Control`: see [`control`]); `index` only names it.
pub fn sample(kind: Kind, index: usize, seed: u64) -> Sample {
    let mut g = Gen::new(seed);
    let name = format!(
        "{}-{index}",
        kind.label().replace([' ', '/', '(', ')'], "-")
    );
    match kind {
        Kind::UsGrey => g.ultrasound(name, false, 1),
        Kind::UsColour => g.ultrasound(name, true, 1),
        Kind::Cine => g.ultrasound(name, false, 10),
        Kind::Screenshot => g.screenshot(name),
        Kind::Document => g.document(name),
        Kind::Xa => g.xa(name),
        Kind::Cr => g.cr(name, index % 3 == 0, false),
        Kind::CrInverted => g.cr(name, false, true),
        Kind::Endoscopy => g.endoscopy(name),
        Kind::Control => control(index, seed),
    }
}

/// Text-free control number `index` (cycling through the control scenes).
pub fn control(index: usize, seed: u64) -> Sample {
    let mut g = Gen::new(seed);
    let which = index % 8;
    let names = [
        "grid",
        "ruler",
        "calipers",
        "barcode",
        "ui",
        "colourbar",
        "cr",
        "xa",
    ];
    let name = format!("control-{}-{index}", names[which]);
    g.control(name, which)
}

// ----------------------------------------------------------------------------------------
// Random numbers (SplitMix64: tiny, deterministic, good enough for pictures).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform integer in [lo, hi].
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.int(0, items.len() as i64 - 1) as usize]
    }
    fn chance(&mut self, p: f32) -> bool {
        self.f() < p
    }
}

// ----------------------------------------------------------------------------------------
// Text strings.

const SURNAMES: &[&str] = &[
    "DOE",
    "MILLER",
    "OKAFOR",
    "NGUYEN",
    "SCHMIDT",
    "ROSSI",
    "TANAKA",
    "DUBOIS",
    "KOWALSKI",
    "HANSEN",
    "GARCIA",
    "OBRIEN",
    "PATEL",
    "LINDQVIST",
    "MORENO",
];
const GIVEN: &[&str] = &[
    "JOHN", "ANNA", "MARIA", "PETER", "LUCIA", "AHMED", "SOPHIE", "KENJI", "OLGA", "DAVID",
];
const PLACES: &[&str] = &[
    "ST MARY HOSPITAL",
    "City General",
    "UNIV. MEDICAL CTR",
    "Riverside Clinic",
    "NORTH IMAGING",
];
const US_LABELS: &[&str] = &[
    "MI 0.9",
    "TIs 0.4",
    "C5-1",
    "Gn 54",
    "DR 60",
    "FR 30Hz",
    "ABD",
    "2D",
    "PW",
    "CF 3.1MHz",
    "L12-5",
    "THI",
    "Res",
    "P 100%",
    "AO 80%",
];
const ORGANS: &[&str] = &["LT KIDNEY", "RT LOBE", "GB", "BLADDER", "Thyroid", "CBD"];

fn person(r: &mut Rng) -> String {
    let s = *r.pick(SURNAMES);
    let g = *r.pick(GIVEN);
    match r.int(0, 2) {
        0 => format!("{s}^{g}"),
        1 => format!("{s}, {g}"),
        _ => format!("{g} {s}"),
    }
}

fn id(r: &mut Rng) -> String {
    let n = r.int(1_000_000, 99_999_999);
    match r.int(0, 2) {
        0 => format!("ID {n}"),
        1 => format!("MRN: {n}"),
        _ => format!("{n}"),
    }
}

fn date(r: &mut Rng) -> String {
    let (y, m, d) = (r.int(1930, 2024), r.int(1, 12), r.int(1, 28));
    match r.int(0, 3) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{d:02}/{m:02}/{y}"),
        2 => format!("DOB {d:02}.{m:02}.{y}"),
        _ => format!("{y}{m:02}{d:02} {:02}:{:02}", r.int(0, 23), r.int(0, 59)),
    }
}

fn phi_text(r: &mut Rng) -> String {
    match r.int(0, 3) {
        0 => person(r),
        1 => id(r),
        2 => date(r),
        _ => r.pick(PLACES).to_string(),
    }
}

// ----------------------------------------------------------------------------------------
// Rendering.

/// Coverage (0..=255) of `text` in `face` at `size` px, unrotated: (width, height, alpha).
fn render(text: &str, face: Face, size: u32) -> (usize, usize, Vec<u8>) {
    let ttf = match face {
        Face::Bitmap8x8 => None,
        Face::Sans => fonts()[0].as_ref(),
        Face::MonoBold => fonts()[1].as_ref(),
        Face::Serif => fonts()[2].as_ref(),
    };
    let Some(font) = ttf else {
        return render_bitmap(text, size);
    };
    let scale = PxScale::from(size as f32);
    let sf = font.as_scaled(scale);
    let ascent = sf.ascent();
    let height = (sf.ascent() - sf.descent()).ceil() as usize + 2;
    let mut caret = 1.0f32;
    let mut glyphs = Vec::new();
    let mut last = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(prev) = last {
            caret += sf.kern(prev, id);
        }
        glyphs.push(id.with_scale_and_position(scale, ab_glyph::point(caret, ascent + 1.0)));
        caret += sf.h_advance(id);
        last = Some(id);
    }
    let width = caret.ceil() as usize + 2;
    let mut alpha = vec![0u8; width * height];
    for glyph in glyphs {
        if let Some(og) = font.outline_glyph(glyph) {
            let b = og.px_bounds();
            og.draw(|x, y, c| {
                let px = b.min.x as i64 + x as i64;
                let py = b.min.y as i64 + y as i64;
                if px >= 0 && py >= 0 && (px as usize) < width && (py as usize) < height {
                    let a = &mut alpha[py as usize * width + px as usize];
                    *a = (*a).max((c.clamp(0.0, 1.0) * 255.0).round() as u8);
                }
            });
        }
    }
    (width, height, alpha)
}

fn render_bitmap(text: &str, size: u32) -> (usize, usize, Vec<u8>) {
    let s = size.max(8) as f32 / 8.0;
    let chars: Vec<[u8; 8]> = text
        .chars()
        .map(|c| {
            let i = c as usize;
            if i < 128 {
                font8x8::legacy::BASIC_LEGACY[i]
            } else {
                [0; 8]
            }
        })
        .collect();
    let width = (chars.len() as f32 * 8.0 * s).ceil() as usize;
    let height = (8.0 * s).ceil() as usize;
    let mut alpha = vec![0u8; width * height];
    for y in 0..height {
        let sy = ((y as f32 / s) as usize).min(7);
        for x in 0..width {
            let sx = (x as f32 / s) as usize;
            let (ci, bx) = (sx / 8, sx % 8);
            if ci < chars.len() && chars[ci][sy] & (1 << bx) != 0 {
                alpha[y * width + x] = 255;
            }
        }
    }
    (width, height, alpha)
}

/// Rotates a coverage map clockwise by `rotation` (0, 90 or 270).
fn rotate(w: usize, h: usize, a: Vec<u8>, rotation: u16) -> (usize, usize, Vec<u8>) {
    match rotation {
        90 => {
            let mut out = vec![0; w * h];
            for y in 0..h {
                for x in 0..w {
                    // (x, y) -> (h - 1 - y, x) in a h-wide, w-high image
                    out[x * h + (h - 1 - y)] = a[y * w + x];
                }
            }
            (h, w, out)
        }
        270 => {
            let mut out = vec![0; w * h];
            for y in 0..h {
                for x in 0..w {
                    out[(w - 1 - x) * h + y] = a[y * w + x];
                }
            }
            (h, w, out)
        }
        _ => (w, h, a),
    }
}

/// An RGB drawing surface.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

impl Canvas {
    fn new(w: usize, h: usize, c: [u8; 3]) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![c; w * h],
        }
    }
    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y.max(0)..(y + h).min(self.h as i64) {
            for xx in x.max(0)..(x + w).min(self.w as i64) {
                self.px[yy as usize * self.w + xx as usize] = c;
            }
        }
    }
    /// Blends `text` in; returns its text pixels and their bounding box.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        text: &str,
        face: Face,
        size: u32,
        rotation: u16,
        x: i64,
        y: i64,
        c: [u8; 3],
    ) -> Option<(Rect, Vec<u32>)> {
        let (tw, th, a) = render(text, face, size);
        let (tw, th, a) = rotate(tw, th, a, rotation);
        let mut pixels = Vec::new();
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0u32, 0u32);
        for ty in 0..th {
            for tx in 0..tw {
                let al = a[ty * tw + tx];
                if al == 0 {
                    continue;
                }
                let (px, py) = (x + tx as i64, y + ty as i64);
                if px < 0 || py < 0 || px >= self.w as i64 || py >= self.h as i64 {
                    continue;
                }
                let i = py as usize * self.w + px as usize;
                let f = al as f32 / 255.0;
                for (ch, &cv) in self.px[i].iter_mut().zip(&c) {
                    *ch = (*ch as f32 * (1.0 - f) + cv as f32 * f).round() as u8;
                }
                if al >= 128 {
                    pixels.push(i as u32);
                    let (ux, uy) = (px as u32, py as u32);
                    x0 = x0.min(ux);
                    y0 = y0.min(uy);
                    x1 = x1.max(ux);
                    y1 = y1.max(uy);
                }
            }
        }
        if pixels.is_empty() {
            return None;
        }
        Some((
            Rect {
                x: x0,
                y: y0,
                width: x1 - x0 + 1,
                height: y1 - y0 + 1,
            },
            pixels,
        ))
    }
    fn into_gray(self) -> Image {
        Image::gray(
            self.w as u32,
            self.h as u32,
            self.px.iter().map(|p| p[0]).collect(),
        )
    }
    fn into_rgb(self) -> Image {
        Image::rgb(
            self.w as u32,
            self.h as u32,
            self.px.iter().flat_map(|p| p.iter().copied()).collect(),
        )
    }
    fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, width: f32, c: [u8; 3]) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()) * 2.0).ceil().max(1.0) as usize;
        let r = (width / 2.0).max(0.5);
        for i in 0..=n {
            let t = i as f32 / n as f32;
            let (cx, cy) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            let (lx, hx) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
            let (ly, hy) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
            for yy in ly..hy {
                for xx in lx..hx {
                    let (dx, dy) = (xx as f32 + 0.5 - cx, yy as f32 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r
                        && xx >= 0
                        && yy >= 0
                        && (xx as usize) < self.w
                        && (yy as usize) < self.h
                    {
                        self.px[yy as usize * self.w + xx as usize] = c;
                    }
                }
            }
        }
    }
}

fn grey(v: u8) -> [u8; 3] {
    [v, v, v]
}

/// A smoothed noise field in 0..=255 (mean ~128), `grain` pixels across.
fn noise_field(r: &mut Rng, w: usize, h: usize, grain: usize) -> Vec<u8> {
    let raw: Vec<u16> = (0..w * h).map(|_| (r.next() >> 56) as u16).collect();
    let k = grain.max(1);
    // Box blur horizontally then vertically (running sums).
    let mut tmp = vec![0u16; w * h];
    for y in 0..h {
        let row = &raw[y * w..(y + 1) * w];
        let mut acc: u32 = 0;
        for x in 0..w + k {
            if x < w {
                acc += row[x] as u32;
            }
            if x >= k {
                acc -= row[x - k] as u32;
            }
            if x >= k / 2 && x - k / 2 < w {
                let n = (x.min(w - 1) + 1).min(k).min(w + k - x) as u32;
                tmp[y * w + x - k / 2] = (acc / n.max(1)) as u16;
            }
        }
    }
    let mut out = vec![0u8; w * h];
    for x in 0..w {
        let mut acc: u32 = 0;
        for y in 0..h + k {
            if y < h {
                acc += tmp[y * w + x] as u32;
            }
            if y >= k {
                acc -= tmp[(y - k) * w + x] as u32;
            }
            if y >= k / 2 && y - k / 2 < h {
                let n = (y.min(h - 1) + 1).min(k).min(h + k - y) as u32;
                out[(y - k / 2) * w + x] = (acc / n.max(1)).min(255) as u8;
            }
        }
    }
    // Stretch the blurred field back to a useful contrast around 128.
    let g = (k as f32).sqrt().min(4.0);
    for v in &mut out {
        *v = (128.0 + (*v as f32 - 128.0) * g).clamp(0.0, 255.0) as u8;
    }
    out
}

// ----------------------------------------------------------------------------------------
// Scenes.

/// Text planned on an ultrasound frame: text, size, rotation, PHI, over texture, x, y, colour.
type Planned = (String, u32, u16, bool, bool, i64, i64, [u8; 3]);

struct Gen {
    r: Rng,
    boxes: Vec<TruthBox>,
}

/// A text placement request.
struct Txt<'a> {
    text: &'a str,
    face: Face,
    size: u32,
    rotation: u16,
    phi: bool,
    over_texture: bool,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            r: Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B),
            boxes: Vec::new(),
        }
    }

    fn face(&mut self) -> Face {
        *self
            .r
            .pick(&[Face::Bitmap8x8, Face::Sans, Face::MonoBold, Face::Serif])
    }

    fn size(&mut self, lo: u32, hi: u32) -> u32 {
        self.r.int(lo as i64, hi as i64) as u32
    }

    /// Draws `t` at (x, y) on one canvas (a single-frame image) and records it.
    fn put(&mut self, cv: &mut Canvas, t: Txt, x: i64, y: i64, c: [u8; 3]) -> Option<Rect> {
        let (rect, pixels) = cv.text(t.text, t.face, t.size, t.rotation, x, y, c)?;
        self.boxes.push(TruthBox {
            rect,
            phi: t.phi,
            size: t.size,
            rotation: t.rotation,
            over_texture: t.over_texture,
            pixels: vec![pixels],
        });
        Some(rect)
    }

    fn txt<'a>(&mut self, text: &'a str, size: u32, phi: bool) -> Txt<'a> {
        let face = self.face();
        Txt {
            text,
            face,
            size,
            rotation: 0,
            phi,
            over_texture: false,
        }
    }

    /// Ultrasound: black background, a fan of speckle, a banner, labels, depth digits.
    fn ultrasound(&mut self, name: String, colour: bool, frames: usize) -> Sample {
        let (w, h) = (640usize, 480usize);
        let apex = (w as f32 / 2.0 + self.r.int(-40, 40) as f32, 50.0);
        let half = 0.45 + self.r.f() * 0.2;
        let (r0, r1) = (30.0, 400.0 + self.r.f() * 20.0);
        let margin = 40usize;
        let field = noise_field(&mut self.r, w + 2 * margin, h + 2 * margin, 3);
        let organ = (
            apex.0 + self.r.int(-60, 60) as f32,
            250.0 + self.r.int(-40, 40) as f32,
        );
        // Text layout: drawn identically on every frame, after the frame's background.
        let white = grey(self.r.int(200, 255) as u8);
        let colours: Vec<[u8; 3]> = if colour {
            vec![[255, 230, 0], [0, 220, 255], [120, 255, 120], white]
        } else {
            vec![white, grey(170), grey(230)]
        };
        let mut plan: Vec<Planned> = Vec::new();
        // Banner (PHI) across the top.
        let s1 = self.size(9, 16);
        let n1 = person(&mut self.r);
        plan.push((n1, s1, 0, true, false, 6, 4, *self.r.pick(&colours)));
        let d1 = date(&mut self.r);
        plan.push((d1, s1, 0, true, false, 330, 4, *self.r.pick(&colours)));
        let i1 = id(&mut self.r);
        plan.push((
            i1,
            self.size(8, 14),
            0,
            true,
            false,
            6,
            26,
            *self.r.pick(&colours),
        ));
        if self.r.chance(0.6) {
            let p = self.r.pick(PLACES).to_string();
            plan.push((
                p,
                self.size(8, 12),
                0,
                true,
                false,
                330,
                26,
                *self.r.pick(&colours),
            ));
        }
        // Parameter labels on the left (not PHI), small.
        let mut y = 120;
        for _ in 0..self.r.int(2, 4) {
            let l = self.r.pick(US_LABELS).to_string();
            let s = self.size(8, 12);
            plan.push((l, s, 0, false, false, 4, y, *self.r.pick(&colours)));
            y += s as i64 + 10;
        }
        // Depth digits on the right (not PHI).
        for k in 1..=3 {
            let s = self.size(8, 11);
            plan.push((
                format!("{}", k * 5),
                s,
                0,
                false,
                false,
                w as i64 - 24,
                80 + k * 110,
                grey(200),
            ));
        }
        // Rotated PHI along the right edge (90 or 270).
        if self.r.chance(0.7) {
            let rot = *self.r.pick(&[90u16, 270]);
            let t = phi_text(&mut self.r);
            let c = *self.r.pick(&colours);
            plan.push((t, self.size(10, 18), rot, true, false, w as i64 - 62, 90, c));
        }
        // Text inside the sector (over speckle): an organ label, sometimes PHI.
        let over_phi = self.r.chance(0.4);
        let inside = if over_phi {
            person(&mut self.r)
        } else {
            self.r.pick(ORGANS).to_string()
        };
        let s = self.size(12, 20);
        plan.push((
            inside,
            s,
            0,
            over_phi,
            true,
            apex.0 as i64 - 70,
            300,
            grey(255),
        ));
        // Big marker, sometimes.
        if self.r.chance(0.5) {
            let c = *self.r.pick(&colours);
            plan.push(("R".into(), self.size(24, 40), 0, false, false, 14, 400, c));
        }
        let faces: Vec<Face> = plan.iter().map(|_| self.face()).collect();
        // Frame counter of a cine: changes in place.
        let counter_at = (w as i64 - 110, h as i64 - 24);
        let counter_face = self.face();
        let mut counter_pixels = Vec::new();
        let mut out_frames = Vec::new();
        // Colour flow is spatially smooth (a velocity field), unlike the speckle under it.
        let flow = noise_field(&mut self.r, w, h, 11);
        let doppler = colour.then(|| {
            (
                apex.0 as i64 + self.r.int(-60, 20),
                150 + self.r.int(0, 60),
                self.r.int(60, 110),
                self.r.int(60, 100),
            )
        });
        for f in 0..frames {
            let mut cv = Canvas::new(w, h, [0, 0, 0]);
            let (dx, dy) = (
                margin as i64 + (f as i64 * 3) % margin as i64 - 10,
                margin as i64 + (f as i64 * 2) % margin as i64 - 10,
            );
            let (ox, oy) = (organ.0 + f as f32 * 4.0, organ.1 + f as f32 * 2.0);
            for y in 0..h {
                for x in 0..w {
                    let (fx, fy) = (x as f32 - apex.0, y as f32 - apex.1);
                    let rad = (fx * fx + fy * fy).sqrt();
                    let ang = fx.atan2(fy);
                    if rad < r0 || rad > r1 || ang.abs() > half {
                        continue;
                    }
                    let nx = (x as i64 + dx) as usize;
                    let ny = (y as i64 + dy) as usize;
                    let n = field[ny * (w + 2 * margin) + nx] as f32;
                    let depth = 1.0 - rad / (r1 * 1.3);
                    let (ex, ey) = ((x as f32 - ox) / 90.0, (y as f32 - oy) / 60.0);
                    let inside = ex * ex + ey * ey < 1.0;
                    let base = if inside { 0.35 } else { 0.8 };
                    let v = (n * base * depth * 1.1).clamp(0.0, 255.0) as u8;
                    cv.px[y * w + x] = grey(v);
                }
            }
            if let Some((bx, by, bw, bh)) = doppler {
                for y in by..by + bh {
                    for x in bx..bx + bw {
                        let i = y as usize * w + x as usize;
                        if let Some(c) = doppler_colour(flow[i]) {
                            cv.px[i] = c;
                        }
                    }
                }
                // Colour bar (a graphic, not text).
                for y in 0..100 {
                    let t = y as f32 / 99.0;
                    let c = [(255.0 * (1.0 - t)) as u8, 40, (255.0 * t) as u8];
                    cv.fill(60, 250 + y, 8, 1, c);
                }
            }
            for ((text, size, rot, phi, tex, x, y, c), &face) in plan.iter().zip(&faces) {
                if f == 0 {
                    let t = Txt {
                        text,
                        face,
                        size: *size,
                        rotation: *rot,
                        phi: *phi,
                        over_texture: *tex,
                    };
                    self.put(&mut cv, t, *x, *y, *c);
                } else {
                    cv.text(text, face, *size, *rot, *x, *y, *c);
                }
            }
            if frames > 1 {
                let text = format!("Fr {}/{}", f + 1, frames);
                if let Some((_, px)) = cv.text(
                    &text,
                    counter_face,
                    12,
                    0,
                    counter_at.0,
                    counter_at.1,
                    grey(220),
                ) {
                    counter_pixels.push(px);
                }
            }
            out_frames.push(if colour {
                cv.into_rgb()
            } else {
                cv.into_gray()
            });
        }
        // Static boxes carry the same pixels on every frame.
        for b in &mut self.boxes {
            let p = b.pixels[0].clone();
            b.pixels = vec![p; frames];
        }
        if frames > 1 && counter_pixels.len() == frames {
            let mut all: Vec<u32> = counter_pixels.iter().flatten().copied().collect();
            all.sort_unstable();
            let rect = bbox_of(&all, w);
            self.boxes.push(TruthBox {
                rect,
                phi: false,
                size: 12,
                rotation: 0,
                over_texture: false,
                pixels: counter_pixels,
            });
        }
        let kind = match (colour, frames > 1) {
            (_, true) => Kind::Cine,
            (true, _) => Kind::UsColour,
            _ => Kind::UsGrey,
        };
        Sample {
            name,
            kind,
            frames: out_frames,
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn screenshot(&mut self, name: String) -> Sample {
        let (w, h) = (1024usize, 768usize);
        let dark = self.r.chance(0.5);
        let bg = if dark { [34, 36, 44] } else { [236, 236, 232] };
        let fg = if dark { [220, 220, 220] } else { [20, 20, 24] };
        let mut cv = Canvas::new(w, h, bg);
        // Title bar (a band) with the patient name in white.
        let band = [40, 70, 140];
        cv.fill(0, 0, w as i64, 32, band);
        let t = person(&mut self.r);
        let s = self.size(14, 20);
        let tx = self.txt(&t, s, true);
        self.put(&mut cv, tx, 10, 6, [255, 255, 255]);
        // Side panel: labels and values, dark on light or light on dark.
        let panel = if dark { [52, 54, 64] } else { [250, 250, 250] };
        cv.fill(0, 40, 250, 560, panel);
        let mut y = 56;
        for k in 0..7 {
            let s = self.size(9, 16);
            let (text, phi) = match k {
                0 => (id(&mut self.r), true),
                1 => (date(&mut self.r), true),
                2 => (self.r.pick(PLACES).to_string(), true),
                3 => ("Series 3 / Img 12".to_string(), false),
                4 => ("WL 40 WW 400".to_string(), false),
                5 => (person(&mut self.r), true),
                _ => ("Zoom 150%".to_string(), false),
            };
            let tx = self.txt(&text, s, phi);
            self.put(&mut cv, tx, 12, y, fg);
            y += s as i64 + 18;
        }
        // Buttons with labels (not PHI).
        for (k, label) in ["Open", "Export", "Measure", "Print"].iter().enumerate() {
            let bx = 12 + (k as i64 % 2) * 115;
            let by = 420 + (k as i64 / 2) * 44;
            cv.fill(
                bx,
                by,
                104,
                32,
                if dark { [80, 84, 96] } else { [210, 214, 222] },
            );
            cv.fill(bx, by, 104, 1, [120, 120, 130]);
            cv.fill(bx, by + 31, 104, 1, [120, 120, 130]);
            let tx = self.txt(label, 12, false);
            self.put(&mut cv, tx, bx + 14, by + 8, fg);
        }
        // Viewport: dark, an ellipse of textured "anatomy", corner overlays.
        let (vx, vy, vw, vh) = (270i64, 40i64, 740i64, 620i64);
        cv.fill(vx, vy, vw, vh, [0, 0, 0]);
        let tex = noise_field(&mut self.r, vw as usize, vh as usize, 5);
        for y in 0..vh {
            for x in 0..vw {
                let (ex, ey) = ((x - vw / 2) as f32 / 300.0, (y - vh / 2) as f32 / 250.0);
                if ex * ex + ey * ey < 1.0 {
                    let v = (tex[(y * vw + x) as usize] as f32 * 0.6 + 40.0) as u8;
                    cv.px[((vy + y) as usize) * w + (vx + x) as usize] = grey(v);
                }
            }
        }
        let corner_colours = [[255, 255, 255], [255, 255, 0], [0, 255, 0], [200, 200, 200]];
        let s = self.size(10, 14);
        let a = person(&mut self.r);
        let c = *self.r.pick(&corner_colours);
        let tx = self.txt(&a, s, true);
        self.put(&mut cv, tx, vx + 8, vy + 8, c);
        let b = date(&mut self.r);
        let c = *self.r.pick(&corner_colours);
        let tx = self.txt(&b, s, true);
        self.put(&mut cv, tx, vx + vw - 230, vy + 8, c);
        let tx = self.txt("W 350 L 40", s, false);
        self.put(&mut cv, tx, vx + 8, vy + vh - 26, grey(255));
        // Text over the anatomy (annotation), sometimes PHI.
        let phi = self.r.chance(0.5);
        let t = if phi {
            id(&mut self.r)
        } else {
            "lesion 1".to_string()
        };
        let mut tx = {
            let sz_ = self.size(12, 18);
            self.txt(&t, sz_, phi)
        };
        tx.over_texture = true;
        self.put(&mut cv, tx, vx + 330, vy + 330, [255, 255, 80]);
        // Rotated text along the viewport's right edge.
        let rot = *self.r.pick(&[90u16, 270]);
        let t = phi_text(&mut self.r);
        let mut tx = {
            let sz_ = self.size(10, 16);
            self.txt(&t, sz_, true)
        };
        tx.rotation = rot;
        self.put(&mut cv, tx, vx + vw - 30, vy + 150, grey(230));
        // Status bar: dark text on a bright yellow band.
        cv.fill(0, h as i64 - 40, w as i64, 40, [250, 240, 170]);
        let t = format!("Patient {}  {}", person(&mut self.r), id(&mut self.r));
        let tx = {
            let sz_ = self.size(12, 18);
            self.txt(&t, sz_, true)
        };
        self.put(&mut cv, tx, 10, h as i64 - 32, [10, 10, 10]);
        Sample {
            name,
            kind: Kind::Screenshot,
            frames: vec![cv.into_rgb()],
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn document(&mut self, name: String) -> Sample {
        let (w, h) = (850usize, 1100usize);
        let mut cv = Canvas::new(w, h, grey(245));
        for p in cv.px.iter_mut() {
            let v = 238 + (self.r.next() % 14) as u8;
            *p = grey(v);
        }
        let ink = grey(self.r.int(10, 60) as u8);
        let face = self.face();
        let mut y = 60i64;
        let header = [
            (self.r.pick(PLACES).to_string(), true, 28u32),
            (format!("Patient: {}", person(&mut self.r)), true, 16),
            (format!("DOB: {}", date(&mut self.r)), true, 14),
            (id(&mut self.r), true, 14),
        ];
        for (text, phi, size) in header {
            let t = Txt {
                text: &text,
                face,
                size,
                rotation: 0,
                phi,
                over_texture: false,
            };
            self.put(&mut cv, t, 70, y, ink);
            y += size as i64 + 16;
        }
        // Table grid.
        let ty = y + 10;
        for k in 0..5 {
            cv.fill(70, ty + k * 30, 700, 1, grey(80));
        }
        for k in 0..4 {
            cv.fill(70 + k * 233, ty, 1, 120, grey(80));
        }
        for row in 0..3i64 {
            let text = ["Exam: US abdomen", "Ref. dr. notes", "Result pending"][row as usize];
            let t = Txt {
                text,
                face,
                size: 12,
                rotation: 0,
                phi: false,
                over_texture: false,
            };
            self.put(&mut cv, t, 78, ty + row * 30 + 8, ink);
        }
        // Body text lines (not PHI).
        let mut y = ty + 170;
        let words = [
            "the",
            "liver",
            "is",
            "normal",
            "in",
            "size",
            "and",
            "echo",
            "texture",
            "no",
            "focal",
            "lesion",
            "seen",
            "kidneys",
            "unremarkable",
        ];
        let size = self.size(10, 14);
        for _ in 0..self.r.int(8, 14) {
            let n = self.r.int(5, 9);
            let line: Vec<&str> = (0..n).map(|_| *self.r.pick(&words)).collect();
            let text = line.join(" ");
            let t = Txt {
                text: &text,
                face,
                size,
                rotation: 0,
                phi: false,
                over_texture: false,
            };
            self.put(&mut cv, t, 70, y, ink);
            y += size as i64 * 2;
        }
        // A rotated stamp in the margin (PHI).
        let stamp = format!("Scanned {}", date(&mut self.r));
        let t = Txt {
            text: &stamp,
            face: Face::MonoBold,
            size: 12,
            rotation: 270,
            phi: true,
            over_texture: false,
        };
        self.put(&mut cv, t, 20, 500, grey(90));
        Sample {
            name,
            kind: Kind::Document,
            frames: vec![cv.into_gray()],
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn xa_background(&mut self, w: usize, h: usize) -> Canvas {
        let tex = noise_field(&mut self.r, w, h, 6);
        let mut cv = Canvas::new(w, h, grey(0));
        let (cx, cy, rad) = (w as f32 / 2.0, h as f32 / 2.0, w as f32 * 0.47);
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / rad;
                if d < 1.0 {
                    let v = 150.0 + (tex[y * w + x] as f32 - 128.0) * 0.4 - d * 40.0;
                    cv.px[y * w + x] = grey(v.clamp(0.0, 255.0) as u8);
                }
            }
        }
        // Vessels: dark curved polylines of decreasing width.
        for _ in 0..self.r.int(4, 7) {
            let (mut x, mut y) = (self.r.f() * w as f32, self.r.f() * h as f32 * 0.3);
            let mut ang = 1.2 + self.r.f();
            let mut width = 3.0 + self.r.f() * 6.0;
            for _ in 0..40 {
                let nx = x + ang.cos() * 12.0;
                let ny = y + ang.sin() * 12.0;
                cv.line(x, y, nx, ny, width, grey(self.r.int(40, 80) as u8));
                x = nx;
                y = ny;
                ang += (self.r.f() - 0.5) * 0.5;
                width = (width * 0.98).max(1.5);
            }
        }
        cv
    }

    fn xa(&mut self, name: String) -> Sample {
        let (w, h) = (512usize, 512usize);
        let mut cv = self.xa_background(w, h);
        let s = self.size(10, 14);
        let t = person(&mut self.r);
        let tx = self.txt(&t, s, true);
        self.put(&mut cv, tx, 6, 6, grey(255));
        let t = date(&mut self.r);
        let tx = self.txt(&t, s, true);
        self.put(&mut cv, tx, 340, 6, grey(255));
        let tx = self.txt("LAO 30 CRA 20", s, false);
        self.put(&mut cv, tx, 6, h as i64 - 24, grey(255));
        let tx = self.txt("15 fps", s, false);
        self.put(&mut cv, tx, 420, h as i64 - 24, grey(255));
        // Dark text over the bright textured field.
        let phi = self.r.chance(0.5);
        let t = if phi {
            id(&mut self.r)
        } else {
            "LAD".to_string()
        };
        let mut tx = {
            let sz_ = self.size(14, 22);
            self.txt(&t, sz_, phi)
        };
        tx.over_texture = true;
        self.put(&mut cv, tx, 200, 380, grey(15));
        Sample {
            name,
            kind: Kind::Xa,
            frames: vec![cv.into_gray()],
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn cr_background(&mut self, n: usize) -> Canvas {
        let grain = (n / 256).max(2);
        let tex = noise_field(&mut self.r, n, n, grain);
        let mut cv = Canvas::new(n, n, grey(0));
        let c = n as f32 / 2.0;
        let coll = (n as f32 * 0.06) as usize;
        let bones: Vec<(f32, f32, f32, f32)> = (0..4)
            .map(|_| {
                (
                    c + (self.r.f() - 0.5) * n as f32 * 0.5,
                    c + (self.r.f() - 0.5) * n as f32 * 0.5,
                    n as f32 * (0.03 + self.r.f() * 0.03),
                    n as f32 * (0.15 + self.r.f() * 0.2),
                )
            })
            .collect();
        for y in coll..n - coll {
            for x in coll..n - coll {
                let (dx, dy) = (
                    (x as f32 - c) / (n as f32 * 0.38),
                    (y as f32 - c) / (n as f32 * 0.45),
                );
                let body = (1.0 - (dx * dx + dy * dy)).max(0.0).sqrt();
                let mut v = 25.0 + body * 110.0 + (tex[y * n + x] as f32 - 128.0) * 0.25;
                for &(bx, by, bw, bh) in &bones {
                    let (ex, ey) = ((x as f32 - bx) / bw, (y as f32 - by) / bh);
                    if ex * ex + ey * ey < 1.0 {
                        v += 70.0;
                    }
                }
                cv.px[y * n + x] = grey(v.clamp(0.0, 255.0) as u8);
            }
        }
        cv
    }

    fn cr(&mut self, name: String, large: bool, inverted: bool) -> Sample {
        let n = if large { 2048usize } else { 1024 };
        let k = n as f32 / 1024.0;
        let mut cv = self.cr_background(n);
        let sz = |g: &mut Gen, lo: u32, hi: u32| g.size(lo, hi);
        // Marker in the collimated border and labels in the corners.
        let s = sz(self, 24, 40);
        let mark = if self.r.chance(0.5) { "R" } else { "L" };
        let tx = self.txt(mark, s, false);
        self.put(
            &mut cv,
            tx,
            (30.0 * k) as i64,
            (200.0 * k) as i64,
            grey(255),
        );
        let s = sz(self, 10, 20);
        let t = person(&mut self.r);
        let tx = self.txt(&t, s, true);
        self.put(&mut cv, tx, (80.0 * k) as i64, 8, grey(230));
        let t = self.r.pick(PLACES).to_string();
        let tx = self.txt(&t, s, true);
        self.put(&mut cv, tx, (560.0 * k) as i64, 8, grey(230));
        let t = date(&mut self.r);
        let tx = {
            let sz_ = sz(self, 8, 16);
            self.txt(&t, sz_, true)
        };
        self.put(&mut cv, tx, (80.0 * k) as i64, n as i64 - 28, grey(200));
        let tx = {
            let sz_ = sz(self, 10, 18);
            self.txt("PA ERECT", sz_, false)
        };
        self.put(&mut cv, tx, (600.0 * k) as i64, n as i64 - 30, grey(200));
        // Text over the anatomy (a tech's annotation), sometimes PHI; rotated sometimes.
        let phi = self.r.chance(0.5);
        let t = if phi {
            id(&mut self.r)
        } else {
            "PORTABLE".to_string()
        };
        let mut tx = {
            let sz_ = sz(self, 14, 30);
            self.txt(&t, sz_, phi)
        };
        tx.over_texture = true;
        if self.r.chance(0.4) {
            tx.rotation = 90;
        }
        self.put(
            &mut cv,
            tx,
            (200.0 * k) as i64,
            (700.0 * k) as i64,
            grey(255),
        );
        let mut img = cv.into_gray();
        if inverted {
            for v in &mut img.data {
                *v = 255 - *v;
            }
        }
        Sample {
            name,
            kind: if inverted { Kind::CrInverted } else { Kind::Cr },
            frames: vec![img],
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn endoscopy_background(&mut self, w: usize, h: usize) -> Canvas {
        let tex = noise_field(&mut self.r, w, h, 7);
        let mut cv = Canvas::new(w, h, [0, 0, 0]);
        let (cx, cy, rad) = (w as f32 * 0.6, h as f32 / 2.0, h as f32 * 0.47);
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / rad;
                if d < 1.0 {
                    let t = tex[y * w + x] as f32 / 255.0;
                    let light = 1.0 - 0.5 * d;
                    cv.px[y * w + x] = [
                        (200.0 * light * (0.6 + 0.5 * t)).min(255.0) as u8,
                        (90.0 * light * (0.5 + 0.6 * t)) as u8,
                        (80.0 * light * (0.5 + 0.5 * t)) as u8,
                    ];
                }
            }
        }
        cv
    }

    fn endoscopy(&mut self, name: String) -> Sample {
        let (w, h) = (640usize, 480usize);
        let mut cv = self.endoscopy_background(w, h);
        let colours = [[255, 255, 255], [0, 255, 0], [255, 255, 0], [0, 200, 255]];
        let mut y = 20i64;
        for k in 0..4 {
            let s = self.size(9, 15);
            let (t, phi) = match k {
                0 => (person(&mut self.r), true),
                1 => (id(&mut self.r), true),
                2 => (date(&mut self.r), true),
                _ => ("Eh:A5 Cm:1".to_string(), false),
            };
            let c = *self.r.pick(&colours);
            let tx = self.txt(&t, s, phi);
            self.put(&mut cv, tx, 8, y, c);
            y += s as i64 + 14;
        }
        let tx = self.txt("CVP:4", 12, false);
        self.put(&mut cv, tx, 8, h as i64 - 30, [255, 255, 255]);
        // Green text over the tissue.
        let phi = self.r.chance(0.5);
        let t = if phi {
            date(&mut self.r)
        } else {
            "polyp".to_string()
        };
        let mut tx = {
            let sz_ = self.size(12, 20);
            self.txt(&t, sz_, phi)
        };
        tx.over_texture = true;
        self.put(&mut cv, tx, 330, 330, [60, 255, 60]);
        Sample {
            name,
            kind: Kind::Endoscopy,
            frames: vec![cv.into_rgb()],
            boxes: std::mem::take(&mut self.boxes),
        }
    }

    fn control(&mut self, name: String, which: usize) -> Sample {
        let frame = match which {
            0 => {
                // Grids of several pitches, solid and dashed lines.
                let (w, h) = (640usize, 480usize);
                let mut cv = Canvas::new(w, h, grey(self.r.int(0, 60) as u8));
                let pitch = self.r.int(8, 24);
                let c = grey(self.r.int(150, 255) as u8);
                for x in (0..w as i64).step_by(pitch as usize) {
                    cv.fill(x, 0, 1, h as i64 / 2, c);
                }
                for y in (0..h as i64 / 2).step_by(pitch as usize) {
                    cv.fill(0, y, w as i64, 1, c);
                }
                for y in (h as i64 / 2 + 10..h as i64).step_by(16) {
                    for x in (0..w as i64).step_by(10) {
                        cv.fill(x, y, 5, 1, c);
                    }
                }
                cv.into_gray()
            }
            1 => {
                // Rulers: long and short tick marks, horizontal and vertical.
                let (w, h) = (640usize, 480usize);
                let mut cv = Canvas::new(w, h, grey(0));
                let c = grey(self.r.int(160, 255) as u8);
                let step = self.r.int(5, 10);
                cv.fill(40, 400, 560, 1, c);
                for (k, x) in (40..600i64).step_by(step as usize).enumerate() {
                    let len = if k % 10 == 0 {
                        12
                    } else if k % 5 == 0 {
                        8
                    } else {
                        5
                    };
                    cv.fill(x, 400 - len, 1 + (k % 2 == 0) as i64, len, c);
                }
                for (k, y) in (40..380i64).step_by(step as usize).enumerate() {
                    let len = if k % 5 == 0 { 10 } else { 5 };
                    cv.fill(600, y, len, 2, c);
                }
                // Detached tick marks (a depth scale of dots and dashes).
                for y in (60..360i64).step_by(20) {
                    cv.fill(20, y, 6, 2, c);
                    cv.fill(30, y + 10, 2, 2, c);
                }
                cv.into_gray()
            }
            2 => {
                // Calipers on a speckle sector: + marks, x marks, dotted lines.
                let mut cv = Canvas::new(640, 480, grey(0));
                let field = noise_field(&mut self.r, cv.w, cv.h, 3);
                for y in 60..440usize {
                    for x in 150..490usize {
                        cv.px[y * cv.w + x] = grey((field[y * cv.w + x] as f32 * 0.7) as u8);
                    }
                }
                for k in 0..4 {
                    let (x, y) = (180.0 + k as f32 * 70.0, 120.0 + k as f32 * 60.0);
                    cv.line(x - 6.0, y, x + 6.0, y, 1.5, grey(255));
                    cv.line(x, y - 6.0, x, y + 6.0, 1.5, grey(255));
                    let (x2, y2) = (x + 40.0, y + 50.0);
                    cv.line(x2 - 5.0, y2 - 5.0, x2 + 5.0, y2 + 5.0, 1.5, grey(255));
                    cv.line(x2 - 5.0, y2 + 5.0, x2 + 5.0, y2 - 5.0, 1.5, grey(255));
                    for t in 0..8 {
                        let f = t as f32 / 8.0;
                        cv.fill(
                            (x + 40.0 * f) as i64,
                            (y + 50.0 * f) as i64,
                            2,
                            2,
                            grey(255),
                        );
                    }
                }
                cv.into_gray()
            }
            3 => {
                // A barcode and a row of solid bars on paper.
                let (w, h) = (640usize, 480usize);
                let mut cv = Canvas::new(w, h, grey(245));
                let mut x = 80i64;
                while x < 560 {
                    let bw = self.r.int(1, 4);
                    cv.fill(x, 120, bw, 60, grey(10));
                    x += bw + self.r.int(1, 4);
                }
                for k in 0..12 {
                    cv.fill(80 + k * 16, 300, 8, 8, grey(20));
                }
                cv.into_gray()
            }
            4 => {
                // Viewer furniture without text: buttons, icons, panel edges.
                let (w, h) = (1024usize, 768usize);
                let mut cv = Canvas::new(w, h, [34, 36, 44]);
                cv.fill(0, 0, w as i64, 32, [40, 70, 140]);
                cv.fill(0, 40, 250, 560, [52, 54, 64]);
                for k in 0..8i64 {
                    let (bx, by) = (12 + (k % 2) * 115, 60 + (k / 2) * 44);
                    cv.fill(bx, by, 104, 32, [80, 84, 96]);
                    // An icon: a triangle, a circle or a square.
                    let (ix, iy) = (bx as f32 + 16.0, by as f32 + 16.0);
                    match k % 3 {
                        0 => cv.fill(bx + 10, by + 10, 12, 12, [220, 220, 220]),
                        1 => cv.line(ix - 1.0, iy, ix + 1.0, iy, 12.0, [220, 220, 220]),
                        _ => {
                            for t in 0..12 {
                                cv.fill(bx + 10 + t / 2, by + 10 + t, 12 - t, 1, [220, 220, 220]);
                            }
                        }
                    }
                }
                cv.fill(270, 40, 740, 620, [0, 0, 0]);
                for k in 0..6 {
                    cv.line(
                        300.0 + k as f32 * 100.0,
                        100.0,
                        340.0 + k as f32 * 100.0,
                        600.0,
                        2.0,
                        [90, 90, 90],
                    );
                }
                cv.into_rgb()
            }
            5 => {
                // Colour Doppler with a colour bar, no text.
                let (w, h) = (640usize, 480usize);
                let mut cv = Canvas::new(w, h, [0, 0, 0]);
                let field = noise_field(&mut self.r, w, h, 3);
                let flow = noise_field(&mut self.r, w, h, 11);
                for y in 60..440usize {
                    for x in 120..520usize {
                        let v = field[y * w + x];
                        let in_box = (180..300).contains(&x) && (150..300).contains(&y);
                        cv.px[y * w + x] = match doppler_colour(flow[y * w + x]) {
                            Some(c) if in_box => c,
                            _ => grey((v as f32 * 0.7) as u8),
                        };
                    }
                }
                for y in 0..100 {
                    let t = y as f32 / 99.0;
                    cv.fill(
                        580,
                        70 + y,
                        8,
                        1,
                        [(255.0 * (1.0 - t)) as u8, 40, (255.0 * t) as u8],
                    );
                }
                cv.into_rgb()
            }
            6 => self.cr_background(1024).into_gray(),
            _ => self.xa_background(512, 512).into_gray(),
        };
        Sample {
            name,
            kind: Kind::Control,
            frames: vec![frame],
            boxes: Vec::new(),
        }
    }
}

/// Colour-flow rendering of a smooth field value: reds towards, blues away, nothing near 0.
fn doppler_colour(v: u8) -> Option<[u8; 3]> {
    match v {
        156..=255 => Some([(120 + (v as u32 - 156) * 135 / 99) as u8, 30, 20]),
        0..=100 => Some([20, 40, (120 + (100 - v as u32) * 135 / 100) as u8]),
        _ => None,
    }
}

fn bbox_of(pixels: &[u32], w: usize) -> Rect {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for &p in pixels {
        let (x, y) = (p % w as u32, p / w as u32);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    Rect {
        x: x0,
        y: y0,
        width: x1 + 1 - x0,
        height: y1 + 1 - y0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_and_consistent() {
        for kind in [Kind::UsGrey, Kind::Cine, Kind::Screenshot, Kind::Document] {
            let a = sample(kind, 0, 7);
            let b = sample(kind, 0, 7);
            assert_eq!(a.frames, b.frames, "{kind:?}");
            assert!(!a.boxes.is_empty());
            let (w, n) = (a.frames[0].width, a.frames.len());
            for bx in &a.boxes {
                assert_eq!(bx.pixels.len(), n);
                for f in &bx.pixels {
                    assert!(!f.is_empty());
                    for &p in f {
                        let (x, y) = (p % w, p / w);
                        assert!(x >= bx.rect.x && x < bx.rect.x + bx.rect.width);
                        assert!(y >= bx.rect.y && y < bx.rect.y + bx.rect.height);
                    }
                }
            }
        }
        assert_ne!(
            sample(Kind::UsGrey, 0, 7).frames,
            sample(Kind::UsGrey, 0, 8).frames
        );
    }

    #[test]
    fn rotation_turns_the_coverage_map() {
        let a = vec![1, 2, 3, 4, 5, 6]; // 3 wide, 2 high
        let (w, h, r) = rotate(3, 2, a.clone(), 90);
        assert_eq!((w, h), (2, 3));
        assert_eq!(r, vec![4, 1, 5, 2, 6, 3]);
        let (_, _, back) = rotate(2, 3, r, 270);
        assert_eq!(back, a);
    }
}
