//! Feature maps and the one padding copy that reflect-pads, upsamples, concatenates and applies
//! the previous layer's normalisation on the way.

use super::{Activation, Affine, Normed, Source, for_each_plane, for_each_slice, pool};

/// Feature maps `[c, h, w]`.
pub(super) struct Map {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) data: Vec<f32>,
}

impl Map {
    /// A map of any values, to be overwritten.
    pub(super) fn scratch(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            data: pool::take(c * h * w),
        }
    }

    pub(super) fn raw(&self) -> Source<'_> {
        Source {
            map: self,
            affine: None,
        }
    }

    /// `self += other` with `other`'s affine applied.
    pub(super) fn add(&mut self, other: &Normed) {
        let plane = self.h * self.w;
        for_each_plane(self, |c, out| {
            let from = &other.map.data[c * plane..(c + 1) * plane];
            for (o, &v) in out.iter_mut().zip(from) {
                *o += other.affine.apply(c, v);
            }
        });
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

/// Reflect-padded planes `[c, h, w]` followed by a little slack for the shifted products and
/// the direct tiles. With `phases` 2, each channel's plane is stored as its four phases instead
/// (even rows' even columns, even rows' odd columns, odd rows' even columns, odd rows' odd
/// columns; each `[h / 2, w / 2]`).
pub(super) struct Padded {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) phases: usize,
    pub(super) data: Vec<f32>,
}

impl Drop for Padded {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl Padded {
    /// The channels of `sources` (same size), each upsampled `scale` times (nearest neighbour)
    /// and reflect-padded by `pad`, as one stack, with their affines applied; each plane split
    /// into `phases × phases` phases (`phases` 1: whole; 2 only without upsampling).
    pub(super) fn new(sources: &[Source], pad: usize, scale: usize, phases: usize) -> Self {
        let (sh, sw) = (sources[0].map.h, sources[0].map.w);
        let (h, w) = (sh * scale, sw * scale);
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        let plane = hp * wp;
        let xs: Vec<usize> = (0..wp)
            .map(|x| reflect(x as isize - pad as isize, w) / scale)
            .collect();
        let ys: Vec<usize> = (0..hp)
            .map(|y| reflect(y as isize - pad as isize, h) / scale)
            .collect();
        // (plane, its channel in its source, the source's affine) for every output channel.
        let planes: Vec<(&[f32], usize, Option<&Affine>)> = sources
            .iter()
            .flat_map(|s| {
                debug_assert_eq!((s.map.h, s.map.w), (sh, sw));
                s.map
                    .data
                    .chunks_exact(sh * sw)
                    .enumerate()
                    .map(move |(c, p)| (p, c, s.affine))
            })
            .collect();
        let c = planes.len();
        // The shifted products read k − 1 values past the last plane, the direct tiles up to
        // k − 2 plus a tile's width (at most 128 positions).
        let slack = 160;
        let mut data = pool::take(c * plane + slack);
        assert!(
            phases == 1 || (hp % phases == 0 && wp % phases == 0 && scale == 1),
            "a padded plane splits into phases only whole and without upsampling"
        );
        let rows = Rows {
            sw,
            ys: &ys,
            xs: &xs,
            pad,
            scale,
            phases,
        };
        for_each_slice(&mut data[..c * plane], plane, |ch, out| {
            let (src, sc, affine) = planes[ch];
            match affine {
                None => rows.fill(out, src, |v| v),
                Some(a) => {
                    let (scale, shift) = (a.scale[sc], a.shift[sc]);
                    match a.activation {
                        Activation::Relu => rows.fill(out, src, |v| (v * scale + shift).max(0.0)),
                        Activation::None => rows.fill(out, src, |v| v * scale + shift),
                        Activation::Tanh => rows.fill(out, src, |v| super::tanh(v * scale + shift)),
                    }
                }
            }
        });
        Self {
            c,
            h: hp,
            w: wp,
            phases,
            data,
        }
    }
}

/// How [`Padded::new`] lays out one plane: source rows `ys` and columns `xs` for each padded row
/// and column (reflected, and divided by `scale` for the upsampling).
pub(super) struct Rows<'a> {
    /// Source width.
    pub(super) sw: usize,
    pub(super) ys: &'a [usize],
    pub(super) xs: &'a [usize],
    pub(super) pad: usize,
    pub(super) scale: usize,
    /// 1, or 2 to lay the plane out in phases (see [`Padded`]).
    pub(super) phases: usize,
}

impl Rows<'_> {
    /// `out` (one padded plane) from `src` (one source plane) through `f`. The interior of a row
    /// is a straight run of its source line (each value repeated `scale` times), only the `pad`
    /// columns at each end are looked up; a row that repeats the one before (upsampling) is
    /// copied.
    pub(super) fn fill(&self, out: &mut [f32], src: &[f32], f: impl Fn(f32) -> f32) {
        let (sw, pad, scale) = (self.sw, self.pad, self.scale);
        if self.phases > 1 {
            // Phase (py, px) holds padded rows py, py + s, … and columns px, px + s, ….
            let s = self.phases;
            let (hr, wr) = (self.ys.len() / s, self.xs.len() / s);
            for (p, phase) in out.chunks_exact_mut(hr * wr).enumerate() {
                let (py, px) = (p / s, p % s);
                for (row, &sy) in phase
                    .chunks_exact_mut(wr)
                    .zip(self.ys[py..].iter().step_by(s))
                {
                    let line = &src[sy * sw..(sy + 1) * sw];
                    for (o, &sx) in row.iter_mut().zip(self.xs[px..].iter().step_by(s)) {
                        *o = f(line[sx]);
                    }
                }
            }
            return;
        }
        let (wp, w) = (self.xs.len(), sw * scale);
        let mut previous = None;
        for (r, &sy) in self.ys.iter().enumerate() {
            if let Some((before, at)) = previous
                && before == sy
            {
                out.copy_within(at..at + wp, r * wp);
                continue;
            }
            let row = &mut out[r * wp..(r + 1) * wp];
            let line = &src[sy * sw..(sy + 1) * sw];
            let inner = &mut row[pad..pad + w];
            if scale == 1 {
                inner.iter_mut().zip(line).for_each(|(o, &v)| *o = f(v));
            } else {
                inner
                    .chunks_exact_mut(scale)
                    .zip(line)
                    .for_each(|(o, &v)| o.fill(f(v)));
            }
            for x in (0..pad).chain(pad + w..wp) {
                row[x] = f(line[self.xs[x]]);
            }
            previous = Some((sy, r * wp));
        }
    }
}

/// Mirror index without repeating the edge (PyTorch's and Burn's reflect padding).
pub(super) fn reflect(i: isize, len: usize) -> usize {
    let last = len as isize - 1;
    let i = if i < 0 { -i } else { i };
    (if i > last { 2 * last - i } else { i }) as usize
}
