//! The layer kinds of the trained networks, forward and backward, on one sample's `[c, h, w]`
//! planes: convolutions of any kernel and stride (im2col chunks through `gemm`, both
//! directions), reflect and zero padding, nearest-neighbour ×2 upsampling and instance norm.
//! The networks run a batch's samples one per core; a convolution also splits its columns into
//! `parts` shares ([`parts_for`]: the cores a small batch leaves idle), whose sums are added in a
//! fixed order, so a result depends on the inputs and the core count alone (a run resumed on a
//! machine with another core count may differ in the last bits).

/// A feature map: `[c, h, w]` planes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Map {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Map {
    pub fn new(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), c * h * w, "planes do not match their size");
        Self { c, h, w, data }
    }

    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self::new(c, h, w, vec![0.0; c * h * w])
    }

    pub fn plane(&self) -> usize {
        self.h * self.w
    }
}

use std::sync::OnceLock;

use crate::engine::cpu::conv::{Conv, Kernels, product, with_scratch};
use crate::engine::cpu::parallel::{Shared, par_map};
use crate::engine::cpu::planes::Padded;

/// Into how many parallel shares each sample's convolutions split when `samples` run side by
/// side, one per core: the cores the samples leave idle (a batch of 1 on 2 cores: 2 shares).
pub(crate) fn parts_for(samples: usize) -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    let threads = rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    let threads = 1usize;
    threads.div_ceil(samples.max(1))
}

/// How a convolution's input is padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Padding {
    /// Mirrored at the edge (the generator's).
    Reflect,
    /// Zeros (the discriminators').
    Zero,
}

/// Mirror index `i` into `0..n` (no edge repeat), as Burn's and PyTorch's reflect padding.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let i = if i < 0 { -i } else { i };
    (if i >= n { 2 * (n - 1) - i } else { i }) as usize
}

/// `x` padded by `p` on each side.
pub(crate) fn pad(x: &Map, p: usize, mode: Padding) -> Map {
    if p == 0 {
        return x.clone();
    }
    let (hp, wp) = (x.h + 2 * p, x.w + 2 * p);
    let mut out = Map::zeros(x.c, hp, wp);
    for c in 0..x.c {
        let src = &x.data[c * x.plane()..(c + 1) * x.plane()];
        let dst = &mut out.data[c * hp * wp..(c + 1) * hp * wp];
        for y in 0..hp {
            let sy = y as isize - p as isize;
            let row = &mut dst[y * wp..(y + 1) * wp];
            let sy = match mode {
                Padding::Reflect => reflect(sy, x.h),
                Padding::Zero if sy < 0 || sy >= x.h as isize => continue,
                Padding::Zero => sy as usize,
            };
            let srow = &src[sy * x.w..(sy + 1) * x.w];
            row[p..p + x.w].copy_from_slice(srow);
            if mode == Padding::Reflect {
                for i in 0..p {
                    row[i] = srow[reflect(i as isize - p as isize, x.w)];
                    row[p + x.w + i] = srow[reflect((x.w + i) as isize, x.w)];
                }
            }
        }
    }
    out
}

/// The gradient of [`pad`]'s input from its output's: every padded position hands its gradient
/// to the pixel it copied.
pub(crate) fn pad_backward(d: &Map, p: usize, mode: Padding) -> Map {
    if p == 0 {
        return d.clone();
    }
    let (h, w) = (d.h - 2 * p, d.w - 2 * p);
    let mut out = Map::zeros(d.c, h, w);
    for c in 0..d.c {
        let src = &d.data[c * d.plane()..(c + 1) * d.plane()];
        let dst = &mut out.data[c * h * w..(c + 1) * h * w];
        for y in 0..d.h {
            let sy = y as isize - p as isize;
            let sy = match mode {
                Padding::Reflect => reflect(sy, h),
                Padding::Zero if sy < 0 || sy >= h as isize => continue,
                Padding::Zero => sy as usize,
            };
            let row = &src[y * d.w..(y + 1) * d.w];
            let drow = &mut dst[sy * w..(sy + 1) * w];
            for (o, v) in drow.iter_mut().zip(&row[p..p + w]) {
                *o += v;
            }
            if mode == Padding::Reflect {
                for i in 0..p {
                    drow[reflect(i as isize - p as isize, w)] += row[i];
                    drow[reflect((w + i) as isize, w)] += row[p + w + i];
                }
            }
        }
    }
    out
}

/// Nearest-neighbour ×2 upsampling.
pub(crate) fn upsample(x: &Map) -> Map {
    let (h, w) = (2 * x.h, 2 * x.w);
    let mut out = Map::zeros(x.c, h, w);
    for c in 0..x.c {
        for y in 0..h {
            let src = &x.data[(c * x.h + y / 2) * x.w..(c * x.h + y / 2 + 1) * x.w];
            let dst = &mut out.data[(c * h + y) * w..(c * h + y + 1) * w];
            for (pair, &v) in dst.chunks_exact_mut(2).zip(src) {
                pair[0] = v;
                pair[1] = v;
            }
        }
    }
    out
}

/// The gradient of [`upsample`]'s input: each 2×2 block's sum.
pub(crate) fn upsample_backward(d: &Map) -> Map {
    let (h, w) = (d.h / 2, d.w / 2);
    let mut out = Map::zeros(d.c, h, w);
    for c in 0..d.c {
        for y in 0..d.h {
            let src = &d.data[(c * d.h + y) * d.w..(c * d.h + y + 1) * d.w];
            let dst = &mut out.data[(c * h + y / 2) * w..(c * h + y / 2 + 1) * w];
            for (o, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o += pair[0] + pair[1];
            }
        }
    }
    out
}

/// A convolution's weights in Burn's layout: `weight` `[cout, cin, k, k]`, `bias` `[cout]`.
/// Stride-1 convolutions with odd kernels run forward on the inference engine's kernels ([`Conv`]: direct tiles
/// where the CPU has AVX-512), built on first use; so does their input gradient, a convolution
/// of the zero-padded output gradient with the flipped, transposed weights.
pub(crate) struct ConvWeights {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// The engine's forward convolution, and the one giving the input gradient.
    engine: OnceLock<Conv>,
    engine_back: OnceLock<Conv>,
}

/// Which stride-1 convolutions run on the engine's kernels: natively, the environment variable
/// `PORTRAITIST_BACKPROP` (`products`: none, im2col and col2im throughout; `forward`; `input`: the
/// input gradients only; default both) picks, for benchmarks.
fn engine_use() -> (bool, bool) {
    static USE: OnceLock<(bool, bool)> = OnceLock::new();
    *USE.get_or_init(|| {
        #[cfg(not(target_arch = "wasm32"))]
        match std::env::var("PORTRAITIST_BACKPROP").as_deref() {
            Ok("products") => return (false, false),
            Ok("forward") => return (true, false),
            Ok("input") => return (false, true),
            _ => {}
        }
        (true, true)
    })
}

/// Values the engine's kernels may read past a padded input's last plane (`Padded`'s slack).
const SLACK: usize = 160;

/// A valid convolution of the padded `x` on the engine's kernels (stride 1).
fn engine_forward(conv: &Conv, x: &Map) -> Map {
    let mut data = Vec::with_capacity(x.data.len() + SLACK);
    data.extend_from_slice(&x.data);
    data.resize(x.data.len() + SLACK, 0.0);
    let mut padded = Padded {
        c: x.c,
        h: x.h,
        w: x.w,
        phases: 1,
        data,
    };
    let (mut y, _) = conv.forward(&padded);
    // Neither buffer goes back to the engine's pool: the tape keeps the output.
    drop(std::mem::take(&mut padded.data));
    Map::new(y.c, y.h, y.w, std::mem::take(&mut y.data))
}

/// A convolution's weight and bias gradients, summed over the samples that add to them.
#[derive(Clone, Debug)]
pub(crate) struct ConvGrads {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl ConvGrads {
    pub fn zeros(conv: &ConvWeights) -> Self {
        Self {
            weight: vec![0.0; conv.weight.len()],
            bias: vec![0.0; conv.bias.len()],
        }
    }

    pub fn add(&mut self, other: &ConvGrads) {
        add_into(&mut self.weight, &other.weight);
        add_into(&mut self.bias, &other.bias);
    }
}

pub(crate) fn add_into(sum: &mut [f32], values: &[f32]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s += v;
    }
}

/// Output positions per im2col chunk: the chunk (`[cin·k², n]`) stays within about 256 KiB (well
/// inside a core's L2 cache). 4 MiB chunks, which pack the weights fewer times, measured slower;
/// 256 KiB a little faster than 512 KiB on the noise step (bench/HISTORY.md, 2026-12-07, fourth
/// session). Natively `PORTRAITIST_IM2COL_FLOATS` sets the chunk's size in floats, for benchmarks.
fn chunk_columns(rows: usize) -> usize {
    static FLOATS: OnceLock<usize> = OnceLock::new();
    let floats = *FLOATS.get_or_init(|| {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(n) = std::env::var("PORTRAITIST_IM2COL_FLOATS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return n;
        }
        65_536
    });
    (floats / rows).clamp(64, 4096)
}

impl ConvWeights {
    pub fn new(
        (cin, cout, k, stride): (usize, usize, usize, usize),
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        assert_eq!(
            weight.len(),
            cout * cin * k * k,
            "weights of the wrong size"
        );
        assert_eq!(bias.len(), cout, "a bias per output channel");
        Self {
            cin,
            cout,
            k,
            stride,
            weight,
            bias,
            engine: OnceLock::new(),
            engine_back: OnceLock::new(),
        }
    }

    /// Whether this convolution runs on the engine's kernels: stride 1 with an odd kernel (the
    /// generators' 3×3 and 7×7). The discriminators' 4×4 ones (the last stage, and the head with
    /// one output channel) measured slower there than as im2col products.
    fn on_engine(&self) -> bool {
        self.stride == 1 && self.k % 2 == 1
    }

    /// A Burn convolution's weights (a missing bias reads as zeros).
    pub fn of(conv: &burn::nn::conv::Conv2d) -> Self {
        let [cout, cin, k, _] = conv.weight.dims();
        let bias = conv
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; cout], |b| crate::engine::cpu::to_vec(b.val()));
        let weight = crate::engine::cpu::to_vec(conv.weight.val());
        Self::new((cin, cout, k, conv.stride[0]), weight, bias)
    }

    /// The gradient of the padded input of a stride-1 convolution given its output's gradient
    /// `dy`: `dy` zero-padded by `k − 1`, convolved with the weights flipped and transposed.
    fn input_gradient(&self, dy: &Map) -> Map {
        let conv = self.engine_back.get_or_init(|| {
            let (k, taps) = (self.k, self.k * self.k);
            let mut flipped = vec![0.0f32; self.weight.len()];
            for co in 0..self.cout {
                for ci in 0..self.cin {
                    for tap in 0..taps {
                        flipped[(ci * self.cout + co) * taps + taps - 1 - tap] =
                            self.weight[(co * self.cin + ci) * taps + tap];
                    }
                }
            }
            Conv::from_weights(
                (self.cout, self.cin, k, 1),
                flipped,
                vec![0.0; self.cin],
                Kernels::best(),
            )
        });
        engine_forward(conv, &pad(dy, self.k - 1, Padding::Zero))
    }

    fn rows(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// The output size of a valid convolution of an `h × w` input.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h - self.k) / self.stride + 1,
            (w - self.k) / self.stride + 1,
        )
    }

    /// im2col of output positions `j0 .. j0 + n` (of `ow` per row) of the (padded) `x` into
    /// `col` (`[cin·k², n]`, rows `ld` apart).
    fn im2col(&self, x: &Map, ow: usize, (j0, n): (usize, usize), col: &mut [f32], ld: usize) {
        let (k, s) = (self.k, self.stride);
        for ci in 0..self.cin {
            let plane = &x.data[ci * x.plane()..(ci + 1) * x.plane()];
            for ky in 0..k {
                for kx in 0..k {
                    let r = (ci * k + ky) * k + kx;
                    let dst = &mut col[r * ld..r * ld + n];
                    for (at, oy, ox, len) in row_runs(ow, j0, n) {
                        let from = &plane[(oy * s + ky) * x.w + ox * s + kx..];
                        let to = &mut dst[at..at + len];
                        if s == 1 {
                            to.copy_from_slice(&from[..len]);
                        } else {
                            to.iter_mut()
                                .zip(from.iter().step_by(s))
                                .for_each(|(d, &v)| *d = v);
                        }
                    }
                }
            }
        }
    }

    /// The transpose of [`Self::im2col`]: adds `col` (rows `ld` apart) back into the (padded)
    /// `dx`.
    fn col2im(&self, col: &[f32], ow: usize, (j0, n): (usize, usize), ld: usize, dx: &mut Map) {
        let (k, s) = (self.k, self.stride);
        let (plane_len, w) = (dx.plane(), dx.w);
        for ci in 0..self.cin {
            let plane = &mut dx.data[ci * plane_len..(ci + 1) * plane_len];
            for ky in 0..k {
                for kx in 0..k {
                    let r = (ci * k + ky) * k + kx;
                    let src = &col[r * ld..r * ld + n];
                    for (at, oy, ox, len) in row_runs(ow, j0, n) {
                        let to = &mut plane[(oy * s + ky) * w + ox * s + kx..];
                        let from = &src[at..at + len];
                        if s == 1 {
                            add_into(&mut to[..len], from);
                        } else {
                            to.iter_mut()
                                .step_by(s)
                                .zip(from)
                                .for_each(|(d, v)| *d += v);
                        }
                    }
                }
            }
        }
    }

    /// Valid convolution of the (already padded) `x`, plus the bias, its columns split into
    /// `parts` shares computed in parallel (1: on the calling thread alone).
    pub fn forward(&self, x: &Map, parts: usize) -> Map {
        assert_eq!(
            x.c, self.cin,
            "convolution input has the wrong channel count"
        );
        if self.on_engine() && engine_use().0 {
            let conv = self.engine.get_or_init(|| {
                Conv::from_weights(
                    (self.cin, self.cout, self.k, 1),
                    self.weight.clone(),
                    self.bias.clone(),
                    Kernels::best(),
                )
            });
            return engine_forward(conv, x);
        }
        self.forward_products(x, parts)
    }

    /// [`Self::forward`] by im2col chunks and matrix products (any stride).
    fn forward_products(&self, x: &Map, parts: usize) -> Map {
        let (oh, ow) = self.out_size(x.h, x.w);
        let (rows, total) = (self.rows(), oh * ow);
        let mut out = Map::zeros(self.cout, oh, ow);
        let nc = chunk_columns(rows);
        let dst = Shared(out.data.as_mut_ptr());
        let dst = &dst;
        let shares = shares(total, nc, parts);
        let share = |range: std::ops::Range<usize>| {
            with_scratch(rows * nc, |col| {
                for j0 in range.step_by(nc) {
                    let n = nc.min(total - j0);
                    self.im2col(x, ow, (j0, n), col, n);
                    // out[:, j0..j0+n] = W · col
                    // SAFETY: `out` is [cout, total]; this share writes its own columns alone.
                    unsafe {
                        product(
                            (self.cout, n, rows),
                            (dst.0.add(j0), total as isize),
                            (self.weight.as_ptr(), 1, rows as isize),
                            (col.as_ptr(), 1, n as isize),
                            false,
                        );
                    }
                }
            });
        };
        if shares.len() == 1 {
            share(0..total);
        } else {
            par_map(shares.len(), |i| share(shares[i].clone()));
        }
        for (c, plane) in out.data.chunks_exact_mut(total).enumerate() {
            let b = self.bias[c];
            plane.iter_mut().for_each(|v| *v += b);
        }
        out
    }

    /// The gradients of [`Self::forward`] on the padded input `x` given its output's gradient
    /// `dy`: adds the weight and bias gradients into `grads` and returns the padded input's
    /// gradient when `input_grad`.
    pub fn backward(
        &self,
        x: &Map,
        dy: &Map,
        grads: &mut ConvGrads,
        input_grad: bool,
        parts: usize,
    ) -> Option<Map> {
        self.backward_with(x, dy, grads, true, input_grad, parts)
    }

    /// [`Self::backward`], computing the weight gradients only where `weight_grad`; in `parts`
    /// shares of columns in parallel, each with its own sums (added up at the end).
    pub fn backward_with(
        &self,
        x: &Map,
        dy: &Map,
        grads: &mut ConvGrads,
        weight_grad: bool,
        input_grad: bool,
        parts: usize,
    ) -> Option<Map> {
        if input_grad && self.on_engine() && engine_use().1 {
            self.backward_products(x, dy, grads, weight_grad, false, parts);
            return Some(self.input_gradient(dy));
        }
        self.backward_products(x, dy, grads, weight_grad, input_grad, parts)
    }

    /// [`Self::backward_with`] by im2col chunks and matrix products, the input's gradient by
    /// col2im (any stride).
    fn backward_products(
        &self,
        x: &Map,
        dy: &Map,
        grads: &mut ConvGrads,
        weight_grad: bool,
        input_grad: bool,
        parts: usize,
    ) -> Option<Map> {
        let (oh, ow) = self.out_size(x.h, x.w);
        assert_eq!(
            (dy.c, dy.h, dy.w),
            (self.cout, oh, ow),
            "gradient of the wrong shape"
        );
        let (rows, total) = (self.rows(), oh * ow);
        if !input_grad && !weight_grad {
            return None;
        }
        if weight_grad {
            for (c, plane) in dy.data.chunks_exact(total).enumerate() {
                grads.bias[c] += plane.iter().sum::<f32>();
            }
        }
        let nc = chunk_columns(rows);
        // One share's weight gradient (added into `dw`) and input gradient (added into `dx`).
        let share = |range: std::ops::Range<usize>, dw: &mut [f32], mut dx: Option<&mut Map>| {
            with_scratch(rows * nc, |col| {
                for j0 in range.step_by(nc) {
                    let n = nc.min(total - j0);
                    if weight_grad {
                        self.im2col(x, ow, (j0, n), col, n);
                        // dW += dy[:, j0..j0+n] · colᵀ
                        // SAFETY: the shapes and strides address `dw`, `dy` and `col` in bounds.
                        unsafe {
                            product(
                                (self.cout, rows, n),
                                (dw.as_mut_ptr(), rows as isize),
                                (dy.data.as_ptr().add(j0), 1, total as isize),
                                (col.as_ptr(), n as isize, 1),
                                true,
                            );
                        }
                    }
                    if let Some(dx) = dx.as_deref_mut() {
                        // dcol = Wᵀ · dy[:, j0..j0+n]
                        // SAFETY: as above.
                        unsafe {
                            product(
                                (rows, n, self.cout),
                                (col.as_mut_ptr(), n as isize),
                                (self.weight.as_ptr(), rows as isize, 1),
                                (dy.data.as_ptr().add(j0), 1, total as isize),
                                false,
                            );
                        }
                        self.col2im(col, ow, (j0, n), n, dx);
                    }
                }
            });
        };
        let shares = shares(total, nc, parts);
        let mut dx = input_grad.then(|| Map::zeros(x.c, x.h, x.w));
        if shares.len() == 1 {
            share(0..total, &mut grads.weight, dx.as_mut());
            return dx;
        }
        let sums = par_map(shares.len(), |i| {
            let mut dw = vec![0.0f32; if weight_grad { grads.weight.len() } else { 0 }];
            let mut dx = input_grad.then(|| Map::zeros(x.c, x.h, x.w));
            share(shares[i].clone(), &mut dw, dx.as_mut());
            (dw, dx)
        });
        for (dw, part) in sums {
            if weight_grad {
                add_into(&mut grads.weight, &dw);
            }
            if let (Some(dx), Some(part)) = (dx.as_mut(), part) {
                add_into(&mut dx.data, &part.data);
            }
        }
        dx
    }

    /// How many samples of `total` output positions each share one product (their columns side
    /// by side) in [`Self::forward_group`] and [`Self::backward_group`]: as many as fill an
    /// im2col chunk, 1 where a sample fills one alone (or where a stride-1 convolution runs on
    /// the engine's kernels: at 16² and more, where those are faster than products).
    fn samples_per_product(&self, total: usize, engine: bool) -> usize {
        if self.on_engine() && engine && total >= ENGINE_MIN_POSITIONS {
            return 1;
        }
        (chunk_columns(self.rows()) / total).max(1)
    }

    /// [`Self::forward`] of a group of samples on the calling thread: where a sample's output
    /// is small (the networks' small stages, such as 4²), several samples' columns side by side
    /// in one product, so that the weights are packed once for all of them.
    pub fn forward_group(&self, xs: &[Map]) -> Vec<Map> {
        let Some(x0) = xs.first() else {
            return Vec::new();
        };
        let (oh, ow) = self.out_size(x0.h, x0.w);
        let (rows, total) = (self.rows(), oh * ow);
        let per = self.samples_per_product(total, engine_use().0);
        if per == 1 {
            return xs.iter().map(|x| self.forward(x, 1)).collect();
        }
        let mut outs = Vec::with_capacity(xs.len());
        for chunk in xs.chunks(per) {
            let ld = chunk.len() * total;
            let mut y = vec![0.0f32; self.cout * ld];
            with_scratch(rows * ld, |col| {
                for (i, x) in chunk.iter().enumerate() {
                    assert_eq!(
                        (x.c, x.h, x.w),
                        (self.cin, x0.h, x0.w),
                        "a group's inputs differ in shape"
                    );
                    self.im2col(x, ow, (0, total), &mut col[i * total..], ld);
                }
                // y = W · col
                // SAFETY: `y` is [cout, ld], `col` [rows, ld], the weights [cout, rows].
                unsafe {
                    product(
                        (self.cout, ld, rows),
                        (y.as_mut_ptr(), ld as isize),
                        (self.weight.as_ptr(), 1, rows as isize),
                        (col.as_ptr(), 1, ld as isize),
                        false,
                    );
                }
            });
            for i in 0..chunk.len() {
                let mut out = Vec::with_capacity(self.cout * total);
                for (c, row) in y.chunks_exact(ld).enumerate() {
                    let b = self.bias[c];
                    out.extend(row[i * total..(i + 1) * total].iter().map(|v| v + b));
                }
                outs.push(Map::new(self.cout, oh, ow, out));
            }
        }
        outs
    }

    /// [`Self::backward_with`] of a group of samples on the calling thread (inputs `xs`, output
    /// gradients `dys`), batched as [`Self::forward_group`]: adds the group's weight and bias
    /// gradients into `grads` when `weight_grad`, and returns each padded input's gradient when
    /// `input_grad` (otherwise none).
    pub fn backward_group(
        &self,
        xs: &[&Map],
        dys: &[Map],
        grads: &mut ConvGrads,
        weight_grad: bool,
        input_grad: bool,
    ) -> Vec<Map> {
        assert_eq!(xs.len(), dys.len(), "an output gradient per input");
        let Some(x0) = xs.first() else {
            return Vec::new();
        };
        if !weight_grad && !input_grad {
            return Vec::new();
        }
        let (oh, ow) = self.out_size(x0.h, x0.w);
        let (rows, total) = (self.rows(), oh * ow);
        let per = self.samples_per_product(total, engine_use().1);
        if per == 1 {
            return xs
                .iter()
                .zip(dys)
                .filter_map(|(x, dy)| self.backward_with(x, dy, grads, weight_grad, input_grad, 1))
                .collect();
        }
        for x in xs {
            assert_eq!(
                (x.c, x.h, x.w),
                (self.cin, x0.h, x0.w),
                "a group's inputs differ in shape"
            );
        }
        let mut dxs = Vec::with_capacity(if input_grad { xs.len() } else { 0 });
        for (chunk, dy_chunk) in xs.chunks(per).zip(dys.chunks(per)) {
            let ld = chunk.len() * total;
            // The output gradients side by side, `[cout, ld]`.
            let mut dy = vec![0.0f32; self.cout * ld];
            for (i, d) in dy_chunk.iter().enumerate() {
                assert_eq!(
                    (d.c, d.h, d.w),
                    (self.cout, oh, ow),
                    "gradient of the wrong shape"
                );
                for (c, plane) in d.data.chunks_exact(total).enumerate() {
                    dy[c * ld + i * total..c * ld + (i + 1) * total].copy_from_slice(plane);
                    if weight_grad {
                        grads.bias[c] += plane.iter().sum::<f32>();
                    }
                }
            }
            with_scratch(rows * ld, |col| {
                if weight_grad {
                    for (i, x) in chunk.iter().enumerate() {
                        self.im2col(x, ow, (0, total), &mut col[i * total..], ld);
                    }
                    // dW += dy · colᵀ
                    // SAFETY: `dy` is [cout, ld], `col` [rows, ld], the gradient [cout, rows].
                    unsafe {
                        product(
                            (self.cout, rows, ld),
                            (grads.weight.as_mut_ptr(), rows as isize),
                            (dy.as_ptr(), 1, ld as isize),
                            (col.as_ptr(), ld as isize, 1),
                            true,
                        );
                    }
                }
                if input_grad {
                    // dcol = Wᵀ · dy
                    // SAFETY: as above.
                    unsafe {
                        product(
                            (rows, ld, self.cout),
                            (col.as_mut_ptr(), ld as isize),
                            (self.weight.as_ptr(), rows as isize, 1),
                            (dy.as_ptr(), 1, ld as isize),
                            false,
                        );
                    }
                    for (i, x) in chunk.iter().enumerate() {
                        let mut dx = Map::zeros(x.c, x.h, x.w);
                        self.col2im(&col[i * total..], ow, (0, total), ld, &mut dx);
                        dxs.push(dx);
                    }
                }
            });
        }
        dxs
    }
}

/// Output positions from which a stride-1 convolution of a group runs on the engine's kernels
/// sample by sample rather than as products over several samples side by side.
const ENGINE_MIN_POSITIONS: usize = 256;

/// `0..total` columns in at most `parts` shares of whole `chunk`s (at least one).
fn shares(total: usize, chunk: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let chunks = total.div_ceil(chunk);
    let per = chunks.div_ceil(parts.clamp(1, chunks.max(1))).max(1) * chunk;
    (0..total)
        .step_by(per)
        .map(|start| start..(start + per).min(total))
        .collect()
}

/// The output positions `j0 .. j0 + n` (of `ow` per row) as runs within a row: each run's
/// offset in the chunk, its row, its first column and its length.
fn row_runs(ow: usize, j0: usize, n: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut j = j0;
    std::iter::from_fn(move || {
        (j < j0 + n).then(|| {
            let (oy, ox) = (j / ow, j % ow);
            let len = (ow - ox).min(j0 + n - j);
            let run = (j - j0, oy, ox, len);
            j += len;
            run
        })
    })
}

/// Instance norm's statistics of one sample: per channel the mean and `1 / sqrt(var + ε)`
/// (biased variance, as [`crate::model::norm`]).
#[derive(Clone, Debug)]
pub(crate) struct NormState {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// `x` normalised per channel, then scaled by `gamma` and shifted by `beta`; and the statistics.
pub(crate) fn norm(x: &Map, gamma: &[f32], beta: &[f32], epsilon: f64) -> (Map, NormState) {
    let plane = x.plane();
    let mut out = Map::zeros(x.c, x.h, x.w);
    let (mut mean, mut inv_std) = (Vec::with_capacity(x.c), Vec::with_capacity(x.c));
    for c in 0..x.c {
        let src = &x.data[c * plane..(c + 1) * plane];
        let m = src.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64;
        let var = src.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / plane as f64;
        let inv = 1.0 / (var + epsilon).sqrt();
        let (m, inv) = (m as f32, inv as f32);
        let (scale, shift) = (gamma[c] * inv, beta[c] - m * gamma[c] * inv);
        for (o, &v) in out.data[c * plane..(c + 1) * plane].iter_mut().zip(src) {
            *o = v * scale + shift;
        }
        mean.push(m);
        inv_std.push(inv);
    }
    (out, NormState { mean, inv_std })
}

/// The gradients of [`norm`] given its output's gradient `dy` (changed in place into its
/// input's): returns each channel's `(∂gamma, ∂beta)`.
pub(crate) fn norm_backward(
    x: &Map,
    state: &NormState,
    gamma: &[f32],
    dy: &mut Map,
) -> (Vec<f32>, Vec<f32>) {
    let plane = x.plane();
    let n = plane as f64;
    let (mut d_gamma, mut d_beta) = (Vec::with_capacity(x.c), Vec::with_capacity(x.c));
    for (c, &gamma) in gamma.iter().enumerate().take(x.c) {
        let src = &x.data[c * plane..(c + 1) * plane];
        let d = &mut dy.data[c * plane..(c + 1) * plane];
        let (m, inv) = (state.mean[c], state.inv_std[c]);
        let (mut sum, mut dot) = (0.0f64, 0.0f64);
        for (&g, &v) in d.iter().zip(src) {
            sum += f64::from(g);
            dot += f64::from(g) * f64::from((v - m) * inv);
        }
        d_gamma.push(dot as f32);
        d_beta.push(sum as f32);
        // dx = γ·inv/N · (N·dy − Σdy − x̂·Σ(dy·x̂))
        let scale = gamma * inv;
        let (mean_d, mean_dot) = ((sum / n) as f32, (dot / n) as f32);
        for (g, &v) in d.iter_mut().zip(src) {
            let xhat = (v - m) * inv;
            *g = scale * (*g - mean_d - xhat * mean_dot);
        }
    }
    (d_gamma, d_beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// `b` equals `a` to within 1e-5 of `a`'s largest value (and `a` is not all zeros).
    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}");
        let largest = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = a
            .iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            largest > 0.0 && worst <= 1e-5 * largest,
            "{what}: off by {worst} of {largest}"
        );
    }

    /// A convolution split into parallel shares (a batch of 1 on several cores) computes what one
    /// thread does: the output, the weight and bias gradients, the input's gradient (whose
    /// shares overlap at their edges). Several chunks per share, the last one partial.
    #[test]
    fn shares_compute_what_one_thread_does() {
        let mut rng = Rng::new(9);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
        for (cin, cout, k, stride, side) in
            [(12, 24, 3, 1, 70), (6, 8, 4, 2, 90), (3, 12, 7, 1, 40)]
        {
            let conv = ConvWeights::new(
                (cin, cout, k, stride),
                random(cout * cin * k * k),
                random(cout),
            );
            let x = Map::new(cin, side, side, random(cin * side * side));
            let (oh, ow) = conv.out_size(side, side);
            let dy = Map::new(cout, oh, ow, random(cout * oh * ow));
            assert!(shares(oh * ow, chunk_columns(cin * k * k), 3).len() >= 2);
            let one = conv.forward_products(&x, 1);
            let three = conv.forward_products(&x, 3);
            assert_eq!(
                one.data, three.data,
                "the output (each column computed once)"
            );
            let (mut g1, mut g3) = (ConvGrads::zeros(&conv), ConvGrads::zeros(&conv));
            let dx1 = conv
                .backward_products(&x, &dy, &mut g1, true, true, 1)
                .unwrap();
            let dx3 = conv
                .backward_products(&x, &dy, &mut g3, true, true, 3)
                .unwrap();
            for (what, a, b) in [
                ("weights", &g1.weight, &g3.weight),
                ("bias", &g1.bias, &g3.bias),
                ("input", &dx1.data, &dx3.data),
            ] {
                assert_close(what, a, b);
            }
        }
    }

    /// A group of samples, several side by side in one product where their outputs are small,
    /// computes what each sample alone does: outputs (biases included), weight and bias gradients
    /// (summed over the group) and input gradients; for each path (4×4 stride 2, 3×3 stride 1
    /// at 4² and 16², a group of 6 filling one product and part of another).
    #[test]
    fn groups_compute_what_samples_alone_do() {
        let mut rng = Rng::new(11);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
        for (cin, cout, k, stride, side, batched) in [
            (64, 48, 4, 2, 10, true),
            (120, 40, 3, 1, 6, true),
            (8, 16, 3, 1, 18, false),
        ] {
            let conv = ConvWeights::new(
                (cin, cout, k, stride),
                random(cout * cin * k * k),
                random(cout),
            );
            let (oh, ow) = conv.out_size(side, side);
            let per = conv.samples_per_product(oh * ow, true);
            assert_eq!(per > 1, batched, "{per} samples per product");
            assert!(!batched || per < 6, "a group of 6 spans two products");
            let xs: Vec<Map> = (0..6)
                .map(|_| Map::new(cin, side, side, random(cin * side * side)))
                .collect();
            let dys: Vec<Map> = (0..6)
                .map(|_| Map::new(cout, oh, ow, random(cout * oh * ow)))
                .collect();
            let group = conv.forward_group(&xs);
            assert_eq!(group.len(), xs.len());
            for (x, y) in xs.iter().zip(&group) {
                assert_close("output", &conv.forward_products(x, 1).data, &y.data);
            }
            let (mut alone, mut together) = (ConvGrads::zeros(&conv), ConvGrads::zeros(&conv));
            let refs: Vec<&Map> = xs.iter().collect();
            let dxs = conv.backward_group(&refs, &dys, &mut together, true, true);
            assert_eq!(dxs.len(), xs.len());
            for ((x, dy), dx) in xs.iter().zip(&dys).zip(&dxs) {
                let want = conv
                    .backward_products(x, dy, &mut alone, true, true, 1)
                    .unwrap();
                assert_close("input", &want.data, &dx.data);
            }
            assert_close("weights", &alone.weight, &together.weight);
            assert_close("bias", &alone.bias, &together.bias);
            let mut weights_only = ConvGrads::zeros(&conv);
            assert!(
                conv.backward_group(&refs, &dys, &mut weights_only, true, false)
                    .is_empty()
            );
            assert_close("weights alone", &alone.weight, &weights_only.weight);
        }
    }

    /// Stride-1 convolutions on the engine's kernels (forward, and the input gradient as a
    /// convolution with the flipped weights) compute what im2col and col2im do.
    #[test]
    fn the_engines_kernels_compute_what_the_products_do() {
        let mut rng = Rng::new(4);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
        for (cin, cout, k, side) in [
            (12, 24, 3, 37),
            (48, 48, 3, 34),
            (3, 12, 7, 40),
            (12, 3, 7, 40),
            (17, 16, 3, 6),
            (3, 8, 3, 18),
            (128, 128, 3, 6),
        ] {
            let conv =
                ConvWeights::new((cin, cout, k, 1), random(cout * cin * k * k), random(cout));
            let x = Map::new(cin, side, side, random(cin * side * side));
            let (oh, ow) = conv.out_size(side, side);
            let dy = Map::new(cout, oh, ow, random(cout * oh * ow));
            let (mut g1, mut g2) = (ConvGrads::zeros(&conv), ConvGrads::zeros(&conv));
            let slow = conv
                .backward_products(&x, &dy, &mut g1, true, true, 1)
                .unwrap();
            let fast = conv.backward(&x, &dy, &mut g2, true, 1).unwrap();
            for (what, a, b) in [
                (
                    "output",
                    &conv.forward_products(&x, 1).data,
                    &conv.forward(&x, 1).data,
                ),
                ("input gradient", &slow.data, &fast.data),
                ("weight gradient", &g1.weight, &g2.weight),
            ] {
                assert_close(&format!("{cin}→{cout} {k}×{k}, {what}"), a, b);
            }
        }
    }
}
