//! Grey-level morphology with a square window: running minimum/maximum by the van Herk /
//! Gil–Werman method (three comparisons per pixel and pass, whatever the window), and the
//! white and black top-hats built on them. Pixels outside the image are neutral (they never
//! win a minimum or a maximum), so borders need no special case in the callers.

/// Which running extreme a pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Min,
    Max,
}

impl Op {
    #[inline(always)]
    fn apply(self, a: u8, b: u8) -> u8 {
        match self {
            Op::Min => a.min(b),
            Op::Max => a.max(b),
        }
    }

    fn neutral(self) -> u8 {
        match self {
            Op::Min => u8::MAX,
            Op::Max => 0,
        }
    }
}

/// Scratch buffers reused across passes.
#[derive(Default)]
pub(crate) struct Scratch {
    ext: Vec<u8>,
    g: Vec<u8>,
    h: Vec<u8>,
}

/// One 1-D pass along each row: `out[x] = op(src[x-r ..= x+r])`.
fn pass_rows(src: &[u8], out: &mut [u8], width: usize, r: usize, op: Op, s: &mut Scratch) {
    let k = 2 * r + 1;
    let n = width + 2 * r;
    let len = n.div_ceil(k) * k;
    s.ext.clear();
    s.ext.resize(len, op.neutral());
    s.g.resize(len, 0);
    s.h.resize(len, 0);
    for (row, dst) in src.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        s.ext[r..r + width].copy_from_slice(row);
        for b in (0..len).step_by(k) {
            let blk = &s.ext[b..b + k];
            let g = &mut s.g[b..b + k];
            g[0] = blk[0];
            for i in 1..k {
                g[i] = op.apply(g[i - 1], blk[i]);
            }
            let h = &mut s.h[b..b + k];
            h[k - 1] = blk[k - 1];
            for i in (0..k - 1).rev() {
                h[i] = op.apply(h[i + 1], blk[i]);
            }
        }
        // Window [i, i + k - 1] in `ext` is centred on image column i.
        for (i, d) in dst.iter_mut().enumerate() {
            *d = op.apply(s.h[i], s.g[i + k - 1]);
        }
    }
}

/// One 1-D pass down the columns, done a whole row at a time so it stays cache friendly.
fn pass_cols(
    src: &[u8],
    out: &mut [u8],
    width: usize,
    height: usize,
    r: usize,
    op: Op,
    s: &mut Scratch,
) {
    let k = 2 * r + 1;
    let n = height + 2 * r;
    let len = n.div_ceil(k) * k;
    let row_of = |y: usize| -> Option<&[u8]> {
        (y >= r && y < r + height).then(|| &src[(y - r) * width..(y - r + 1) * width])
    };
    s.g.clear();
    s.g.resize(len * width, 0);
    s.h.clear();
    s.h.resize(len * width, 0);
    let neutral = op.neutral();
    for y in 0..len {
        let (done, rest) = s.g.split_at_mut(y * width);
        let g = &mut rest[..width];
        match (row_of(y), y % k == 0) {
            (Some(row), true) => g.copy_from_slice(row),
            (None, true) => g.fill(neutral),
            (Some(row), false) => {
                let prev = &done[(y - 1) * width..];
                for ((d, &p), &v) in g.iter_mut().zip(prev).zip(row) {
                    *d = op.apply(p, v);
                }
            }
            (None, false) => g.copy_from_slice(&done[(y - 1) * width..y * width]),
        }
    }
    for y in (0..len).rev() {
        let (head, rest) = s.h.split_at_mut((y + 1) * width);
        let h = &mut head[y * width..];
        match (row_of(y), y % k == k - 1) {
            (Some(row), true) => h.copy_from_slice(row),
            (None, true) => h.fill(neutral),
            (Some(row), false) => {
                let next = &rest[..width];
                for ((d, &p), &v) in h.iter_mut().zip(next).zip(row) {
                    *d = op.apply(p, v);
                }
            }
            (None, false) => h.copy_from_slice(&rest[..width]),
        }
    }
    for (y, dst) in out.chunks_exact_mut(width).enumerate().take(height) {
        let h = &s.h[y * width..(y + 1) * width];
        let g = &s.g[(y + k - 1) * width..(y + k) * width];
        for ((d, &a), &b) in dst.iter_mut().zip(h).zip(g) {
            *d = op.apply(a, b);
        }
    }
}

/// Square-window erosion (`Op::Min`) or dilation (`Op::Max`) of radius `r`.
pub(crate) fn filter(
    src: &[u8],
    width: usize,
    height: usize,
    r: usize,
    op: Op,
    s: &mut Scratch,
) -> Vec<u8> {
    let mut tmp = vec![0u8; src.len()];
    pass_rows(src, &mut tmp, width, r, op, s);
    let mut out = vec![0u8; src.len()];
    pass_cols(&tmp, &mut out, width, height, r, op, s);
    out
}

/// White top-hat (`bright = true`: image minus its opening, bright details narrower than the
/// window) or black top-hat (closing minus image, dark details).
pub(crate) fn top_hat(
    src: &[u8],
    width: usize,
    height: usize,
    r: usize,
    bright: bool,
    s: &mut Scratch,
) -> Vec<u8> {
    let (first, second) = if bright {
        (Op::Min, Op::Max)
    } else {
        (Op::Max, Op::Min)
    };
    let a = filter(src, width, height, r, first, s);
    let b = filter(&a, width, height, r, second, s);
    if bright {
        src.iter()
            .zip(&b)
            .map(|(&v, &o)| v.saturating_sub(o))
            .collect()
    } else {
        src.iter()
            .zip(&b)
            .map(|(&v, &c)| c.saturating_sub(v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &[u8], w: usize, h: usize, r: usize, op: Op) -> Vec<u8> {
        let mut out = vec![0; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut v = op.neutral();
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        v = op.apply(v, src[yy * w + xx]);
                    }
                }
                out[y * w + x] = v;
            }
        }
        out
    }

    #[test]
    fn running_extremes_match_the_definition() {
        let mut seed = 12345u32;
        let mut s = Scratch::default();
        for &(w, h, r) in &[(1, 1, 1), (7, 5, 1), (13, 17, 3), (31, 9, 7), (5, 40, 7)] {
            let src: Vec<u8> = (0..w * h)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 24) as u8
                })
                .collect();
            for op in [Op::Min, Op::Max] {
                assert_eq!(
                    filter(&src, w, h, r, op, &mut s),
                    naive(&src, w, h, r, op),
                    "{w}x{h} r={r} {op:?}"
                );
            }
        }
    }

    #[test]
    fn top_hats_keep_thin_details_of_their_polarity_only() {
        // A 3-pixel bright bar and a 3-pixel dark bar on grey 100, window 7.
        let (w, h) = (20, 12);
        let mut img = vec![100u8; w * h];
        for y in 2..10 {
            for x in 4..7 {
                img[y * w + x] = 200;
            }
            for x in 12..15 {
                img[y * w + x] = 30;
            }
        }
        let mut s = Scratch::default();
        let white = top_hat(&img, w, h, 3, true, &mut s);
        let black = top_hat(&img, w, h, 3, false, &mut s);
        assert_eq!(white[5 * w + 5], 100);
        assert_eq!(white[5 * w + 13], 0);
        assert_eq!(black[5 * w + 13], 70);
        assert_eq!(black[5 * w + 5], 0);
        assert_eq!(white[w + 1], 0);
    }
}
