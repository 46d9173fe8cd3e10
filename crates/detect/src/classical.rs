//! The classical detector: text-likeness from morphology, connected components and line
//! grouping, with no model file.
//!
//! For each working plane (the grey image; or R, G and B of a colour image, so coloured text on
//! a background of equal brightness is still seen) and each polarity (bright text on a darker
//! background, dark text on a brighter one):
//!
//! 1. **Top-hat**: image minus its opening (bright) or closing minus image (dark), square window
//!    of [`Params::window_radius`]: strokes narrower than the window stand out, flat bands,
//!    gradients and large anatomy vanish.
//! 2. **Glyph components**: 8-connected components of top-hat at three levels
//!    ([`Params::on`], [`Params::on_strong`] and halfway: over texture the texture's peaks
//!    join the glyphs at the low level, only the text remains at the high one), kept when their
//!    mean top-hat, size (glyph height 4–48 px) and fill look like a glyph or a word of
//!    touching glyphs.
//! 3. **Lines**: components whose extents overlap across the line (half the smaller height),
//!    heights within ×2.5 and gaps under 1.5 heights are joined. First horizontally, then
//!    vertically (90°/270° text) with the components not already in a horizontal line, then
//!    lone glyphs (L/R markers, a digit). A line must be straight (not much taller than its
//!    glyphs: pieces of a curve drift), of glyphs of about one height (blobs of colour flow are
//!    not), and hold a glyph that is not a solid bar (rows of ruler ticks, dotted caliper
//!    lines and barcodes are refused).
//! 4. **Verification**: inside the line's box the plane must split into two classes (Otsu)
//!    that are well apart, the text class at most half of the box, and the background class
//!    flat (text on a band or a plain field; over texture, the box is mostly the text's own
//!    surround, which the strong component levels keep tight). Speckle and anatomy have no
//!    flat majority class, so most of their components are refused here. A lone glyph needs a
//!    flatter background. (A second path accepting flat text over a non-flat background was
//!    tried; it changed no figure of the generated set and was removed.)
//!
//! Accepted boxes are padded by `max(2, 0.3·height)`. A frame that is not a valid [`Image`]
//! (wrong channel count or data length) is answered with one box over the whole frame, so a
//! caller that masks what is found fails closed.

use crate::morph::{self, Scratch};
use crate::{Detector, Image, Rect, TextBox};

/// Tuning of [`Classical`]. The defaults are what the scorer's figures were measured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Radius of the square top-hat window (15×15 for 7): wider than the thickest stroke.
    pub window_radius: usize,
    /// Top-hat value at which a pixel becomes a candidate glyph pixel.
    pub on: u8,
    /// A higher level tried as well (and the one halfway): over texture, the texture's own
    /// peaks join the glyphs at `on`, while at higher levels only the (stronger) text remains.
    pub on_strong: u8,
    /// Minimum mean top-hat over a component.
    pub mean_on: u8,
    /// Smallest and largest glyph height (across the line), in pixels. Taller text (fonts
    /// over ~55 px) is not looked for: a half-resolution pass for it was tried and masked
    /// vessels and edges as text.
    pub min_height: u32,
    /// See `min_height`.
    pub max_height: u32,
    /// Minimum distance between the two classes' means inside a line box.
    pub min_separation: f32,
    /// Maximum ratio of the background class's standard deviation to the separation.
    pub max_flatness: f32,
    /// Largest share of a box's pixels the text class may take (the background is the
    /// majority around text; a flat minority class is a blob, not a background).
    pub max_text_share: f32,
    /// The same ratio for a lone glyph (stricter: one component is weak evidence).
    pub max_flatness_single: f32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            window_radius: 7,
            on: 32,
            on_strong: 96,
            mean_on: 48,
            min_height: 4,
            max_height: 48,
            min_separation: 24.0,
            max_flatness: 0.22,
            max_text_share: 0.5,
            max_flatness_single: 0.18,
        }
    }
}

/// The classical detector (name `"classical"`). Pure Rust, deterministic, no model.
#[derive(Debug, Clone, Default)]
pub struct Classical {
    /// Its tuning.
    pub params: Params,
}

impl Classical {
    /// With the default tuning.
    pub fn new() -> Classical {
        Classical::default()
    }
}

impl Detector for Classical {
    fn name(&self) -> &'static str {
        "classical"
    }

    fn detect(&self, frame: &Image) -> Vec<TextBox> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let valid =
            matches!(frame.channels, 1 | 3) && frame.data.len() == w * h * frame.channels as usize;
        if !valid {
            return vec![TextBox {
                rect: Rect {
                    x: 0,
                    y: 0,
                    width: frame.width,
                    height: frame.height,
                },
                score: 1.0,
            }];
        }
        if w < 3 || h < 3 {
            return Vec::new();
        }
        let mut scratch = Scratch::default();
        let mut rects = Vec::new();
        let p = &self.params;
        let heights = (p.min_height, p.max_height);
        for plane in planes(frame) {
            self.search(&plane, w, h, heights, &mut scratch, &mut rects);
        }
        merge(rects)
            .into_iter()
            .map(|rect| TextBox { rect, score: 1.0 })
            .collect()
    }
}

/// The planes to search: the grey image, or the three channels of a colour one (one plane
/// when the colour image is grey in fact).
fn planes(frame: &Image) -> Vec<Vec<u8>> {
    if frame.channels == 1 {
        return vec![frame.data.clone()];
    }
    let px = frame.data.chunks_exact(3);
    if px.clone().all(|p| p[0] == p[1] && p[1] == p[2]) {
        return vec![px.map(|p| p[0]).collect()];
    }
    (0..3)
        .map(|c| frame.data.chunks_exact(3).map(|p| p[c]).collect())
        .collect()
}

/// A connected component of candidate pixels.
#[derive(Debug, Clone, Copy)]
struct Comp {
    x0: u32,
    y0: u32,
    x1: u32, // inclusive
    y1: u32, // inclusive
    area: u32,
    sum: u64,
}

impl Comp {
    fn w(&self) -> u32 {
        self.x1 - self.x0 + 1
    }
    fn h(&self) -> u32 {
        self.y1 - self.y0 + 1
    }
    fn fill(&self) -> f32 {
        self.area as f32 / (self.w() * self.h()) as f32
    }
    /// A solid bar or dot: a tick mark, a dash, a dotted line's dot.
    fn is_bar(&self) -> bool {
        self.fill() > 0.88
    }
    /// (start, end) along and across the given axis (end inclusive).
    fn along(&self, vertical: bool) -> (u32, u32) {
        if vertical {
            (self.y0, self.y1)
        } else {
            (self.x0, self.x1)
        }
    }
    fn across(&self, vertical: bool) -> (u32, u32) {
        if vertical {
            (self.x0, self.x1)
        } else {
            (self.y0, self.y1)
        }
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let p = parent[parent[i as usize] as usize];
        parent[i as usize] = p;
        i = p;
    }
    i
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

/// 8-connected components of `th >= on`, by runs: each row's runs are joined to the runs of
/// the row above that touch them (diagonals included).
fn components(th: &[u8], w: usize, h: usize, on: u8) -> Vec<Comp> {
    struct Run {
        y: u32,
        s: u32,
        e: u32, // exclusive
        sum: u64,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    let mut prev = 0..0usize;
    for y in 0..h {
        let row = &th[y * w..(y + 1) * w];
        let start = runs.len();
        let mut x = 0;
        while x < w {
            if row[x] < on {
                x += 1;
                continue;
            }
            let s = x;
            let mut sum = 0u64;
            while x < w && row[x] >= on {
                sum += row[x] as u64;
                x += 1;
            }
            let id = runs.len() as u32;
            runs.push(Run {
                y: y as u32,
                s: s as u32,
                e: x as u32,
                sum,
            });
            parent.push(id);
        }
        // Join with touching runs of the previous row (both lists are sorted by start).
        let mut j = prev.start;
        for i in start..runs.len() {
            let (s, e) = (runs[i].s, runs[i].e);
            while j < prev.end && runs[j].e < s {
                j += 1;
            }
            let mut k = j;
            while k < prev.end && runs[k].s <= e {
                union(&mut parent, i as u32, k as u32);
                k += 1;
            }
        }
        prev = start..runs.len();
    }
    let mut index = vec![u32::MAX; runs.len()];
    let mut comps: Vec<Comp> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let r = find(&mut parent, i as u32) as usize;
        if index[r] == u32::MAX {
            index[r] = comps.len() as u32;
            comps.push(Comp {
                x0: run.s,
                y0: run.y,
                x1: run.e - 1,
                y1: run.y,
                area: 0,
                sum: 0,
            });
        }
        let c = &mut comps[index[r] as usize];
        c.x0 = c.x0.min(run.s);
        c.x1 = c.x1.max(run.e - 1);
        c.y1 = c.y1.max(run.y);
        c.area += run.e - run.s;
        c.sum += run.sum;
    }
    comps
}

impl Classical {
    /// Both polarities and every component level on one plane.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        plane: &[u8],
        w: usize,
        h: usize,
        heights: (u32, u32),
        scratch: &mut Scratch,
        out: &mut Vec<Rect>,
    ) {
        let p = &self.params;
        for bright in [true, false] {
            let th = morph::top_hat(plane, w, h, p.window_radius, bright, scratch);
            let (lo, hi) = (p.on, p.on_strong.max(p.on));
            for on in [lo, lo / 2 + hi / 2, hi] {
                let comps = components(&th, w, h, on);
                let mean_on = p.mean_on.max(on.saturating_add(on / 2));
                out.extend(self.lines(plane, w, h, bright, comps, mean_on, heights));
            }
        }
    }

    /// Glyph components → text lines → verified, padded boxes.
    #[allow(clippy::too_many_arguments)]
    fn lines(
        &self,
        plane: &[u8],
        w: usize,
        h: usize,
        bright: bool,
        comps: Vec<Comp>,
        mean_on: u8,
        (min_height, max_height): (u32, u32),
    ) -> Vec<Rect> {
        let p = &self.params;
        let glyphs: Vec<Comp> = comps
            .into_iter()
            .filter(|c| {
                let (cw, ch) = (c.w(), c.h());
                c.area >= 4
                    && cw.max(ch) <= max_height * 12
                    && cw.min(ch) <= max_height
                    && c.sum >= mean_on as u64 * c.area as u64
                    && c.fill() >= 0.08
            })
            .collect();
        let mut used = vec![false; glyphs.len()];
        let mut out = Vec::new();
        for vertical in [false, true] {
            let eligible: Vec<usize> = (0..glyphs.len())
                .filter(|&i| {
                    let g = &glyphs[i];
                    let (a0, a1) = g.across(vertical);
                    let (l0, l1) = g.along(vertical);
                    let a = a1 - a0 + 1;
                    !used[i] && a >= min_height && a <= max_height && l1 - l0 < 12 * a
                })
                .collect();
            for members in group(&glyphs, &eligible, vertical, w, h) {
                if members.len() < 2 || members.iter().all(|&i| glyphs[i].is_bar()) {
                    continue;
                }
                let (bbox, median) = line_box(&glyphs, &members, vertical);
                let across = if vertical { bbox.width } else { bbox.height };
                // Text lines are straight: glyphs drifting across the line (a vessel, a curve
                // broken into pieces) make it much taller than its glyphs.
                if across > 2 * median + 2 {
                    continue;
                }
                let height = median.max(across / 2);
                // Glyphs of a line are of about one height (blobs of colour flow are not).
                if !uniform_heights(&glyphs, &members, vertical, 0.3) {
                    continue;
                }
                if self.verify(plane, w, h, bright, bbox, height, p.max_flatness) {
                    for &i in &members {
                        used[i] = true;
                    }
                    out.push(pad(bbox, height, w, h));
                }
            }
        }
        // Lone glyphs (L/R markers, a single digit).
        for (i, g) in glyphs.iter().enumerate() {
            let (gw, gh) = (g.w(), g.h());
            let tall = gh.max(gw);
            if used[i]
                || tall < min_height.max(5)
                || tall > max_height * 3 / 4
                || gw.min(gh) * 4 < tall
                || gw.min(gh) < 3
                || g.is_bar()
                || g.fill() < 0.15
            {
                continue;
            }
            let bbox = Rect {
                x: g.x0,
                y: g.y0,
                width: gw,
                height: gh,
            };
            if self.verify(plane, w, h, bright, bbox, tall, p.max_flatness_single) {
                out.push(pad(bbox, tall, w, h));
            }
        }
        out
    }

    /// The two-class test inside a candidate box (see the module docs).
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        plane: &[u8],
        w: usize,
        h: usize,
        bright: bool,
        bbox: Rect,
        height: u32,
        max_flatness: f32,
    ) -> bool {
        let m = (height / 4).max(1);
        let r = bbox.padded(m, w as u32, h as u32);
        let mut hist = [0u32; 256];
        for y in r.y..r.y + r.height {
            let row = &plane[y as usize * w..];
            for &v in &row[r.x as usize..(r.x + r.width) as usize] {
                hist[v as usize] += 1;
            }
        }
        let Some(split) = Split::otsu(&hist) else {
            return false;
        };
        let p = &self.params;
        let (fg, bg) = if bright {
            (split.high, split.low)
        } else {
            (split.low, split.high)
        };
        let sep = (split.high.mean - split.low.mean).abs();
        let total = (fg.n + bg.n) as f32;
        let share = fg.n as f32 / total;
        sep >= p.min_separation
            && (0.03..=p.max_text_share).contains(&share)
            && bg.std <= max_flatness * sep
    }
}

#[derive(Debug, Clone, Copy)]
struct Class {
    n: u64,
    mean: f32,
    std: f32,
}

struct Split {
    low: Class,
    high: Class,
}

impl Split {
    /// Otsu's two-class split of a histogram, with each class's count, mean and deviation.
    fn otsu(hist: &[u32; 256]) -> Option<Split> {
        let total: u64 = hist.iter().map(|&c| c as u64).sum();
        let sum: f64 = hist
            .iter()
            .enumerate()
            .map(|(v, &c)| v as f64 * c as f64)
            .sum();
        let (mut n0, mut s0) = (0u64, 0f64);
        let (mut best, mut best_t) = (-1f64, None);
        for (t, &c) in hist.iter().enumerate().take(255) {
            n0 += c as u64;
            s0 += t as f64 * c as f64;
            let n1 = total - n0;
            if n0 == 0 || n1 == 0 {
                continue;
            }
            let m0 = s0 / n0 as f64;
            let m1 = (sum - s0) / n1 as f64;
            let between = n0 as f64 * n1 as f64 * (m0 - m1) * (m0 - m1);
            if between > best {
                best = between;
                best_t = Some(t);
            }
        }
        let t = best_t?;
        let class = |range: std::ops::Range<usize>| {
            let (mut n, mut s, mut s2) = (0u64, 0f64, 0f64);
            for v in range {
                let c = hist[v] as f64;
                n += hist[v] as u64;
                s += v as f64 * c;
                s2 += (v * v) as f64 * c;
            }
            let mean = s / n as f64;
            Class {
                n,
                mean: mean as f32,
                std: (s2 / n as f64 - mean * mean).max(0.0).sqrt() as f32,
            }
        };
        Some(Split {
            low: class(0..t + 1),
            high: class(t + 1..256),
        })
    }
}

/// Groups eligible components into lines along the axis (union–find over neighbours found
/// through a coarse grid). Returns member lists in a deterministic order.
fn group(
    glyphs: &[Comp],
    eligible: &[usize],
    vertical: bool,
    w: usize,
    h: usize,
) -> Vec<Vec<usize>> {
    const CELL: u32 = 32;
    let (along_len, across_len) = if vertical { (h, w) } else { (w, h) };
    let ga = (along_len as u32).div_ceil(CELL) as usize + 1;
    let gc = (across_len as u32).div_ceil(CELL) as usize + 1;
    let mut grid: Vec<Vec<u32>> = vec![Vec::new(); ga * gc];
    for (k, &i) in eligible.iter().enumerate() {
        let g = &glyphs[i];
        let (l0, _) = g.along(vertical);
        let (a0, a1) = g.across(vertical);
        let c = (a0 + a1) / 2;
        grid[(l0 / CELL) as usize * gc + (c / CELL) as usize].push(k as u32);
    }
    let mut parent: Vec<u32> = (0..eligible.len() as u32).collect();
    for (k, &i) in eligible.iter().enumerate() {
        let g = &glyphs[i];
        let (l0, l1) = g.along(vertical);
        let (a0, a1) = g.across(vertical);
        let ha = a1 - a0 + 1;
        let reach = l1 + 1 + ha * 4;
        let lo_c = a0.saturating_sub(CELL) / CELL;
        let hi_c = ((a1 + CELL) / CELL).min(gc as u32 - 1);
        for cl in (l0 / CELL)..=(reach / CELL).min(ga as u32 - 1) {
            for cc in lo_c..=hi_c {
                for &k2 in &grid[cl as usize * gc + cc as usize] {
                    if k2 as usize == k {
                        continue;
                    }
                    let o = &glyphs[eligible[k2 as usize]];
                    let (m0, _) = o.along(vertical);
                    let (b0, b1) = o.across(vertical);
                    if m0 < l0 || (m0 == l0 && (k2 as usize) < k) {
                        continue; // seen from the other side
                    }
                    let hb = b1 - b0 + 1;
                    let overlap = a1.min(b1) as i64 - a0.max(b0) as i64 + 1;
                    let gap = m0 as i64 - l1 as i64 - 1;
                    let (small, big) = (ha.min(hb), ha.max(hb));
                    if overlap * 2 >= small as i64
                        && big * 2 <= small * 5
                        && gap * 2 <= 3 * big as i64
                    {
                        union(&mut parent, k as u32, k2);
                    }
                }
            }
        }
    }
    let mut lines: Vec<Vec<usize>> = Vec::new();
    let mut slot = vec![usize::MAX; eligible.len()];
    for (k, &e) in eligible.iter().enumerate() {
        let r = find(&mut parent, k as u32) as usize;
        if slot[r] == usize::MAX {
            slot[r] = lines.len();
            lines.push(Vec::new());
        }
        lines[slot[r]].push(e);
    }
    lines
}

/// The bounding box of a line and the median extent of its glyphs across the line.
fn line_box(glyphs: &[Comp], members: &[usize], vertical: bool) -> (Rect, u32) {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    let mut heights: Vec<u32> = Vec::with_capacity(members.len());
    for &i in members {
        let g = &glyphs[i];
        x0 = x0.min(g.x0);
        y0 = y0.min(g.y0);
        x1 = x1.max(g.x1);
        y1 = y1.max(g.y1);
        let (a0, a1) = g.across(vertical);
        heights.push(a1 - a0 + 1);
    }
    heights.sort_unstable();
    let rect = Rect {
        x: x0,
        y: y0,
        width: x1 - x0 + 1,
        height: y1 - y0 + 1,
    };
    (rect, heights[heights.len() / 2])
}

/// Whether the glyphs' extents across the line are alike (coefficient of variation < `cv`,
/// ignoring the smallest quarter: dots, commas, lower case next to capitals).
fn uniform_heights(glyphs: &[Comp], members: &[usize], vertical: bool, cv: f32) -> bool {
    let mut hs: Vec<f32> = members
        .iter()
        .map(|&i| {
            let (a0, a1) = glyphs[i].across(vertical);
            (a1 - a0 + 1) as f32
        })
        .collect();
    hs.sort_by(f32::total_cmp);
    let hs = &hs[hs.len() / 4..];
    let mean = hs.iter().sum::<f32>() / hs.len() as f32;
    let var = hs.iter().map(|h| (h - mean) * (h - mean)).sum::<f32>() / hs.len() as f32;
    var.sqrt() < cv * mean
}

fn pad(r: Rect, height: u32, w: usize, h: usize) -> Rect {
    let p = (height * 3).div_ceil(10).max(2);
    r.padded(p, w as u32, h as u32)
}

/// Drops duplicates and boxes (almost) inside another; sorted for determinism.
fn merge(mut rects: Vec<Rect>) -> Vec<Rect> {
    rects.sort_unstable_by_key(|r| std::cmp::Reverse(r.width as u64 * r.height as u64));
    let mut kept: Vec<Rect> = Vec::new();
    for r in rects {
        let area = r.width as u64 * r.height as u64;
        let inside = kept.iter().any(|k| intersection(k, &r) * 10 >= area * 9);
        if !inside {
            kept.push(r);
        }
    }
    kept.sort_unstable();
    kept
}

/// Pixels two rectangles share.
pub(crate) fn intersection(a: &Rect, b: &Rect) -> u64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    if x1 <= x0 || y1 <= y0 {
        0
    } else {
        (x1 - x0) as u64 * (y1 - y0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8-connected components by flood fill, as (bbox, area, sum), sorted.
    fn flood(th: &[u8], w: usize, h: usize, on: u8) -> Vec<(u32, u32, u32, u32, u32, u64)> {
        let mut seen = vec![false; w * h];
        let mut out = Vec::new();
        for start in 0..w * h {
            if seen[start] || th[start] < on {
                continue;
            }
            let (mut x0, mut y0, mut x1, mut y1, mut area, mut sum) =
                (u32::MAX, u32::MAX, 0, 0, 0, 0);
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                x0 = x0.min(x as u32);
                y0 = y0.min(y as u32);
                x1 = x1.max(x as u32);
                y1 = y1.max(y as u32);
                area += 1;
                sum += th[i] as u64;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                            continue;
                        }
                        let j = ny as usize * w + nx as usize;
                        if !seen[j] && th[j] >= on {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            out.push((x0, y0, x1, y1, area, sum));
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn run_labelling_matches_flood_fill() {
        let mut seed = 99u32;
        for &(w, h, density) in &[(1, 1, 128u32), (17, 9, 100), (40, 30, 128), (64, 20, 150)] {
            let th: Vec<u8> = (0..w * h)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    if (seed >> 24) < density {
                        60 + (seed >> 26) as u8
                    } else {
                        0
                    }
                })
                .collect();
            let mut ours: Vec<_> = components(&th, w, h, 32)
                .into_iter()
                .map(|c| (c.x0, c.y0, c.x1, c.y1, c.area, c.sum))
                .collect();
            ours.sort_unstable();
            assert_eq!(ours, flood(&th, w, h, 32), "{w}x{h}");
        }
    }

    fn comp(x0: u32, y0: u32, w: u32, h: u32) -> Comp {
        Comp {
            x0,
            y0,
            x1: x0 + w - 1,
            y1: y0 + h - 1,
            area: w * h / 2,
            sum: 0,
        }
    }

    #[test]
    fn glyphs_group_into_lines_along_either_axis() {
        // Two words on one line, a glyph on another line, a far glyph, and a vertical
        // column of three glyphs.
        let glyphs = vec![
            comp(10, 10, 8, 12),
            comp(20, 11, 7, 11),
            comp(36, 10, 8, 12),  // gap 9 <= 1.5 * 12
            comp(12, 40, 8, 12),  // another line
            comp(120, 10, 8, 12), // too far
            comp(200, 50, 12, 8),
            comp(201, 60, 11, 8),
            comp(200, 70, 12, 8),
        ];
        let all: Vec<usize> = (0..glyphs.len()).collect();
        let mut h = group(&glyphs, &all, false, 300, 100);
        h.iter_mut().for_each(|l| l.sort_unstable());
        assert!(h.contains(&vec![0, 1, 2]), "{h:?}");
        assert!(h.contains(&vec![3]));
        assert!(h.contains(&vec![4]));
        let v = group(&glyphs, &[5, 6, 7], true, 300, 100);
        assert_eq!(v, vec![vec![5, 6, 7]]);
    }

    #[test]
    fn otsu_splits_two_populations() {
        let mut hist = [0u32; 256];
        hist[20] = 300;
        hist[22] = 100;
        hist[200] = 50;
        let s = Split::otsu(&hist).expect("two classes");
        assert_eq!(s.low.n, 400);
        assert_eq!(s.high.n, 50);
        assert!((s.low.mean - 20.5).abs() < 1e-3);
        assert_eq!(s.high.std, 0.0);
        assert!(Split::otsu(&[0; 256]).is_none());
    }
}
