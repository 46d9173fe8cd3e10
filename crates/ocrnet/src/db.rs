//! DB ("differentiable binarization") post-processing: from the network's text-probability
//! map to boxes, as PaddleOCR's `DBPostProcess` does it, written from the description of the
//! method rather than ported:
//!
//! 1. threshold the map (`thresh`), dilate by a 2×2 square;
//! 2. take 8-connected regions; for each, the minimum-area rotated rectangle of its pixel
//!    centres (convex hull + rotating calipers); drop regions whose short side is `< 3`;
//! 3. score a region by the mean probability inside that rectangle; drop it under
//!    `box_thresh`;
//! 4. "unclip": the network predicts text shrunk towards its centre line, so grow the
//!    rectangle by `area × unclip_ratio / perimeter` on every side (what offsetting the
//!    rectangle with round joins gives); drop it if its short side is then `< 5`;
//! 5. return the axis-aligned bounds of the grown rectangle (masks are axis-aligned).
//!
//! Unlike PaddleOCR there is no cap on the number of candidates: every region is scored,
//! so text is never dropped because there was a lot of it.

/// Parameters of the post-processing (defaults: PaddleOCR's/RapidOCR's for PP-OCRv4 det).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbParams {
    /// Probability above which a pixel is text.
    pub thresh: f32,
    /// Minimum mean probability inside a region's rectangle.
    pub box_thresh: f32,
    /// How much a region is grown back ("unclip"), relative to area / perimeter.
    pub unclip_ratio: f32,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams {
            thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
        }
    }
}

/// A box on the probability map: axis-aligned bounds (`x0..x1`, `y0..y1` in map pixels,
/// fractional) and the region's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MapBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    /// Side lengths of the grown rotated rectangle.
    pub long_side: f32,
    pub short_side: f32,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct P {
    x: f32,
    y: f32,
}

/// A rotated rectangle: centre, unit axis `u` (and `v` ⟂ `u`), half extents along each.
#[derive(Debug, Clone, Copy)]
struct RotRect {
    c: P,
    u: P,
    hu: f32,
    hv: f32,
}

impl RotRect {
    fn v(&self) -> P {
        P {
            x: -self.u.y,
            y: self.u.x,
        }
    }
    fn short_side(&self) -> f32 {
        2.0 * self.hu.min(self.hv)
    }
    fn corners(&self) -> [P; 4] {
        let v = self.v();
        let mut out = [P { x: 0.0, y: 0.0 }; 4];
        for (i, (su, sv)) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
            .into_iter()
            .enumerate()
        {
            out[i] = P {
                x: self.c.x + su * self.hu * self.u.x + sv * self.hv * v.x,
                y: self.c.y + su * self.hu * self.u.y + sv * self.hv * v.y,
            };
        }
        out
    }
}

/// Boxes from a `width × height` probability map (row-major).
pub(crate) fn boxes(prob: &[f32], width: usize, height: usize, params: &DbParams) -> Vec<MapBox> {
    assert_eq!(prob.len(), width * height, "probability map size");
    let mask = dilated_mask(prob, width, height, params.thresh);
    let mut seen = vec![false; width * height];
    let mut stack = Vec::new();
    let mut pixels: Vec<(u32, u32)> = Vec::new();
    let mut out = Vec::new();
    for start in 0..width * height {
        if !mask[start] || seen[start] {
            continue;
        }
        // Flood fill one 8-connected region.
        pixels.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            pixels.push((x as u32, y as u32));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if let Some(b) = region_box(&pixels, prob, width, height, params) {
            out.push(b);
        }
    }
    out
}

/// `prob > thresh`, dilated by a 2×2 square anchored at its bottom-right cell (as OpenCV
/// anchors an even kernel): a pixel is set when it or its left, upper or upper-left
/// neighbour is above the threshold.
fn dilated_mask(prob: &[f32], width: usize, height: usize, thresh: f32) -> Vec<bool> {
    let above: Vec<bool> = prob.iter().map(|&p| p > thresh).collect();
    let mut mask = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let mut m = above[i];
            if x > 0 {
                m |= above[i - 1];
            }
            if y > 0 {
                m |= above[i - width];
                if x > 0 {
                    m |= above[i - width - 1];
                }
            }
            mask[i] = m;
        }
    }
    mask
}

fn region_box(
    pixels: &[(u32, u32)],
    prob: &[f32],
    width: usize,
    height: usize,
    params: &DbParams,
) -> Option<MapBox> {
    // The hull only needs the leftmost and rightmost pixel of each row.
    let (mut y_min, mut y_max) = (u32::MAX, 0);
    for &(_, y) in pixels {
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let rows = (y_max - y_min + 1) as usize;
    let mut ends = vec![(u32::MAX, 0u32); rows];
    for &(x, y) in pixels {
        let e = &mut ends[(y - y_min) as usize];
        e.0 = e.0.min(x);
        e.1 = e.1.max(x);
    }
    let mut points = Vec::with_capacity(rows * 2);
    for (r, &(a, b)) in ends.iter().enumerate() {
        if a == u32::MAX {
            continue;
        }
        let y = (y_min as usize + r) as f32;
        points.push(P { x: a as f32, y });
        if b != a {
            points.push(P { x: b as f32, y });
        }
    }
    let hull = convex_hull(points);
    let rect = min_area_rect(&hull)?;
    if rect.short_side() < 3.0 {
        return None;
    }
    let score = mean_inside(&rect, prob, width, height);
    if score < params.box_thresh {
        return None;
    }
    let (w, h) = (2.0 * rect.hu, 2.0 * rect.hv);
    let grow = w * h * params.unclip_ratio / (2.0 * (w + h));
    let grown = RotRect {
        hu: rect.hu + grow,
        hv: rect.hv + grow,
        ..rect
    };
    if grown.short_side() < 5.0 {
        return None;
    }
    let corners = grown.corners();
    let fold =
        |f: fn(f32, f32) -> f32, init: f32, g: fn(&P) -> f32| corners.iter().map(g).fold(init, f);
    Some(MapBox {
        x0: fold(f32::min, f32::INFINITY, |p| p.x),
        y0: fold(f32::min, f32::INFINITY, |p| p.y),
        x1: fold(f32::max, f32::NEG_INFINITY, |p| p.x),
        y1: fold(f32::max, f32::NEG_INFINITY, |p| p.y),
        long_side: 2.0 * grown.hu.max(grown.hv),
        short_side: grown.short_side(),
        score,
    })
}

fn cross(o: P, a: P, b: P) -> f32 {
    (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
}

/// Andrew's monotone chain; counter-clockwise, no repeated first point.
fn convex_hull(mut pts: Vec<P>) -> Vec<P> {
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    // Lower chain left to right, then upper chain right to left; `lower` keeps the second
    // pass from popping points of the first.
    let mut hull: Vec<P> = Vec::with_capacity(pts.len() * 2);
    for &p in &pts {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower = hull.len() + 1;
    for &p in pts.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull
}

/// The minimum-area rectangle enclosing a convex polygon: one of its sides lies on a hull
/// edge, so try each edge direction. `None` for an empty hull.
fn min_area_rect(hull: &[P]) -> Option<RotRect> {
    match hull.len() {
        0 => return None,
        1 => {
            return Some(RotRect {
                c: hull[0],
                u: P { x: 1.0, y: 0.0 },
                hu: 0.0,
                hv: 0.0,
            })
        }
        _ => {}
    }
    let mut best: Option<(f32, RotRect)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let u = P {
            x: (b.x - a.x) / len,
            y: (b.y - a.y) / len,
        };
        let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in hull {
            let pu = p.x * u.x + p.y * u.y;
            let pv = -p.x * u.y + p.y * u.x;
            u0 = u0.min(pu);
            u1 = u1.max(pu);
            v0 = v0.min(pv);
            v1 = v1.max(pv);
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_none_or(|(a, _)| area < *a) {
            let (cu, cv) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
            let c = P {
                x: cu * u.x - cv * u.y,
                y: cu * u.y + cv * u.x,
            };
            best = Some((
                area,
                RotRect {
                    c,
                    u,
                    hu: (u1 - u0) / 2.0,
                    hv: (v1 - v0) / 2.0,
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}

/// Mean probability of the pixels whose centres lie in the rectangle (its border included,
/// with half a pixel of slack, as a polygon fill of integer corners would include them).
fn mean_inside(rect: &RotRect, prob: &[f32], width: usize, height: usize) -> f32 {
    let corners = rect.corners();
    let clamp_x = |v: f32| (v.max(0.0) as usize).min(width - 1);
    let clamp_y = |v: f32| (v.max(0.0) as usize).min(height - 1);
    let x0 = clamp_x(
        corners
            .iter()
            .map(|p| p.x)
            .fold(f32::INFINITY, f32::min)
            .floor(),
    );
    let x1 = clamp_x(
        corners
            .iter()
            .map(|p| p.x)
            .fold(f32::NEG_INFINITY, f32::max)
            .ceil(),
    );
    let y0 = clamp_y(
        corners
            .iter()
            .map(|p| p.y)
            .fold(f32::INFINITY, f32::min)
            .floor(),
    );
    let y1 = clamp_y(
        corners
            .iter()
            .map(|p| p.y)
            .fold(f32::NEG_INFINITY, f32::max)
            .ceil(),
    );
    let v = rect.v();
    let (mut sum, mut n) = (0.0f64, 0u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f32 - rect.c.x, y as f32 - rect.c.y);
            let pu = dx * rect.u.x + dy * rect.u.y;
            let pv = dx * v.x + dy * v.y;
            if pu.abs() <= rect.hu + 0.5 && pv.abs() <= rect.hv + 0.5 {
                sum += prob[y * width + x] as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_with(
        width: usize,
        height: usize,
        blobs: &[(usize, usize, usize, usize, f32)],
    ) -> Vec<f32> {
        let mut m = vec![0.02f32; width * height];
        for &(x, y, w, h, p) in blobs {
            for yy in y..y + h {
                for xx in x..x + w {
                    m[yy * width + xx] = p;
                }
            }
        }
        m
    }

    #[test]
    fn a_confident_bar_becomes_a_grown_box() {
        // A 40×6 bar: the network's shrunk text core.
        let m = map_with(100, 50, &[(20, 10, 40, 6, 0.9)]);
        let b = boxes(&m, 100, 50, &DbParams::default());
        assert_eq!(b.len(), 1);
        let b = b[0];
        // Dilation makes it 41×7 pixels, centres span 40×6; growth = 40·6·1.6/(2·46) ≈ 4.17.
        let grow = 40.0 * 6.0 * 1.6 / (2.0 * 46.0);
        assert!((b.x0 - (20.0 - grow)).abs() < 0.01, "{b:?}");
        assert!((b.x1 - (60.0 + grow)).abs() < 0.01, "{b:?}");
        assert!((b.y0 - (10.0 - grow)).abs() < 0.01, "{b:?}");
        assert!((b.y1 - (16.0 + grow)).abs() < 0.01, "{b:?}");
        // The score covers the dilated border too: 240 pixels at 0.9 and 47 at 0.02.
        let mean = (240.0 * 0.9 + 47.0 * 0.02) / 287.0;
        assert!((b.score - mean).abs() < 1e-4, "{b:?}");
    }

    #[test]
    fn thin_weak_and_separate_regions_are_judged_one_by_one() {
        let m = map_with(
            120,
            60,
            &[
                (5, 5, 30, 1, 0.95),  // one row: short side < 3 after dilation
                (5, 20, 30, 6, 0.4),  // above thresh but mean under box_thresh
                (60, 20, 30, 6, 0.8), // kept
                (60, 40, 30, 6, 0.8), // kept, separate
            ],
        );
        let b = boxes(&m, 120, 60, &DbParams::default());
        assert_eq!(b.len(), 2, "{b:?}");
        assert!(b.iter().all(|b| b.x0 > 50.0));
        assert!(b[0].y1 < b[1].y0);
    }

    #[test]
    fn a_rotated_bar_gets_its_rotated_rectangle() {
        // A diagonal bar, 45°, about 4 px thick.
        let (w, h) = (80, 80);
        let mut m = vec![0.0f32; w * h];
        for t in 10..60 {
            for k in 0..4 {
                m[(t + k) * w + t] = 0.9;
            }
        }
        let b = boxes(&m, w, h, &DbParams::default());
        assert_eq!(b.len(), 1, "{b:?}");
        // The rotated rectangle is long and thin, not the 50×50 axis-aligned square.
        assert!(
            b[0].long_side > 60.0 && b[0].short_side < 20.0,
            "{:?}",
            b[0]
        );
        // Its axis-aligned bounds still cover the whole bar.
        assert!(b[0].x0 <= 10.0 && b[0].x1 >= 59.0 && b[0].y0 <= 10.0 && b[0].y1 >= 62.0);
    }

    #[test]
    fn an_empty_map_gives_nothing() {
        assert!(boxes(&vec![0.0; 64 * 32], 64, 32, &DbParams::default()).is_empty());
        assert!(boxes(&vec![0.29; 64 * 32], 64, 32, &DbParams::default()).is_empty());
    }

    #[test]
    fn hull_and_rectangle_of_a_square() {
        let pts = vec![
            P { x: 0.0, y: 0.0 },
            P { x: 4.0, y: 0.0 },
            P { x: 2.0, y: 2.0 },
            P { x: 4.0, y: 4.0 },
            P { x: 0.0, y: 4.0 },
        ];
        let hull = convex_hull(pts);
        assert_eq!(hull.len(), 4);
        let r = min_area_rect(&hull).unwrap();
        assert!((r.hu * r.hv * 4.0 - 16.0).abs() < 1e-4);
        assert!((r.c.x - 2.0).abs() < 1e-4 && (r.c.y - 2.0).abs() < 1e-4);
    }
}
