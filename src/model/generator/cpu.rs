//! The generator's forward pass on the CPU, computed directly on `f32` planes.
//!
//! Same network and maths as [`Generator::forward_with`] (the tests compare the two); only the
//! arrangement differs, for speed on the two front ends' CPU path (native and wasm):
//! * A stride-1 convolution is k² matrix products, one per kernel tap, each reading the
//!   reflect-padded input planes shifted by that tap's offset ("shifted gemm"). Output rows are
//!   computed at the padded width and the few extra columns dropped, so no im2col copy exists.
//! * Stride-2 convolutions and the 3-channel stem use im2col, one cache-sized chunk at a time.
//! * In the browser, every convolution is direct instead ([`direct`]): wasm's matrix products
//!   are slow to pack, and its thin layers waste most of a product's tile. A stride-2 input is
//!   split into its four phases on the padding copy, so stride 2 reads it as stride 1 does.
//! * Reflect padding, nearest-neighbour upsampling and the input-skip concatenation are one copy.
//! * Instance norm, its scale and shift, and ReLU are one pass after each convolution.
//! * Work is split into output-column chunks that run on every core (rayon); the browser has one
//!   thread and runs them in turn.
//!
//! Matrix products come from the `gemm` crate (the one Burn's CPU backend uses, with AVX2/FMA or
//! wasm simd128 kernels). `bench/` measures this path against Burn's and PyTorch's.

use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use super::{ConvNormRelu, Generator, ResidualBlock};
use crate::model::norm::{EPSILON, NormStats, StatNorm};

mod direct;

/// Output columns per work item: a 64-channel chunk (256 KiB) stays in a core's L2 cache while
/// all nine taps accumulate into it.
const CHUNK: usize = 1024;

/// Convolutions with fewer input channels than this use im2col: a shifted product over 3
/// channels is too thin to keep the SIMD units busy.
const SHIFT_MIN_CHANNELS: usize = 8;

/// A [`Generator`]'s weights laid out for the CPU; build it with [`CpuGenerator::new`].
#[derive(Clone)]
pub struct CpuGenerator {
    stem: Layer,
    down1: Layer,
    down2: Layer,
    blocks: Vec<(Layer, Layer)>,
    up1: Layer,
    up2: Layer,
    head: Conv,
    input_skip: bool,
    /// Where recorded instance-norm statistics live (they are shared with the Burn path).
    device: Device,
}

impl std::fmt::Debug for CpuGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuGenerator")
            .field("width", &self.stem.conv.cout)
            .field("blocks", &self.blocks.len())
            .field("input_skip", &self.input_skip)
            .finish()
    }
}

impl CpuGenerator {
    /// Copies the weights out of `generator` (which may live on any device).
    pub fn new(generator: &Generator) -> Self {
        Self::build(generator, cfg!(target_arch = "wasm32"))
    }

    /// `direct`: convolutions use [`direct`] rather than matrix products.
    fn build(generator: &Generator, direct: bool) -> Self {
        let layer = |l: &ConvNormRelu| Layer::new(l, direct);
        Self {
            stem: layer(&generator.stem),
            down1: layer(&generator.down1),
            down2: layer(&generator.down2),
            blocks: generator
                .blocks
                .iter()
                .map(|b: &ResidualBlock| {
                    (
                        layer(&b.first),
                        Layer {
                            conv: Conv::new(&b.conv, direct),
                            norm: Norm::new(&b.norm),
                            relu: false,
                        },
                    )
                })
                .collect(),
            up1: layer(&generator.up1),
            up2: layer(&generator.up2),
            head: Conv::new(&generator.head, direct),
            input_skip: generator.input_skip,
            device: Device::flex(),
        }
    }

    /// `input` is `[3, height, width]` in [-1, 1] (height and width multiples of 4, at least 16);
    /// returns the same shape in [-1, 1]. `stats` records or replays instance-norm statistics
    /// exactly as [`Generator::forward_with`] does.
    pub fn forward_with(
        &self,
        input: Vec<f32>,
        height: usize,
        width: usize,
        stats: &mut NormStats,
    ) -> Vec<f32> {
        stats.begin();
        let channels = self.stem.conv.cin;
        assert_eq!(
            input.len(),
            channels * height * width,
            "input planes do not match their size"
        );
        let input = Map {
            c: channels,
            h: height,
            w: width,
            data: input,
        };
        let d = &self.device;
        let x = self.stem.run(&[input.raw()], (3, 1), stats, d);
        let x = self.down1.run(&[x.view()], (1, 1), stats, d);
        let x = self.down2.run(&[x.view()], (1, 1), stats, d);
        let mut x = x.materialize();
        for (first, second) in &self.blocks {
            let y = first.run(&[x.raw()], (1, 1), stats, d);
            let y = second.run(&[y.view()], (1, 1), stats, d);
            x.add(&y);
        }
        let x = self.up1.run(&[x.raw()], (1, 2), stats, d);
        let x = self.up2.run(&[x.view()], (1, 2), stats, d);
        let sources: &[Source] = if self.input_skip {
            &[x.view(), input.raw()]
        } else {
            &[x.view()]
        };
        let (mut out, _) = self.head.forward(&self.head.pad(sources, 3, 1));
        for_each_plane(&mut out, |_, plane| {
            plane.iter_mut().for_each(|v| *v = v.tanh())
        });
        let out = std::mem::take(&mut out.data);
        pool::clear();
        out
    }
}

/// One convolution's work and time in [`CpuGenerator::conv_timings`].
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ConvTiming {
    pub layer: String,
    /// 2 × multiply-adds.
    pub gflop: f64,
    pub ms: f64,
}

impl CpuGenerator {
    /// A forward pass that times every convolution (for `bench/`; the pass itself is unchanged).
    /// Native only: wasm has no clock here.
    #[doc(hidden)]
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv_timings(&self, input: Vec<f32>, height: usize, width: usize) -> Vec<ConvTiming> {
        timing::start();
        self.forward_with(input, height, width, &mut NormStats::live());
        timing::finish()
    }
}

/// Per-convolution timing, off unless [`CpuGenerator::conv_timings`] turns it on for a pass.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
mod timing {
    use super::ConvTiming;
    use std::cell::RefCell;

    thread_local! {
        static TIMES: RefCell<Option<Vec<ConvTiming>>> = const { RefCell::new(None) };
    }

    pub(super) fn enabled() -> bool {
        TIMES.with(|t| t.borrow().is_some())
    }

    pub(super) fn start() {
        TIMES.with(|t| *t.borrow_mut() = Some(Vec::new()));
    }

    pub(super) fn record(timing: ConvTiming) {
        TIMES.with(|t| t.borrow_mut().as_mut().map(|v| v.push(timing)));
    }

    pub(super) fn finish() -> Vec<ConvTiming> {
        TIMES.with(|t| t.borrow_mut().take()).unwrap_or_default()
    }
}

/// Convolution, instance norm, optional ReLU.
#[derive(Clone)]
struct Layer {
    conv: Conv,
    norm: Norm,
    relu: bool,
}

impl Layer {
    fn new(layer: &ConvNormRelu, direct: bool) -> Self {
        Self {
            conv: Conv::new(&layer.conv, direct),
            norm: Norm::new(&layer.norm),
            relu: true,
        }
    }

    /// The layer on `sources`, reflect-padded and upsampled by `(pad, scale)`: the convolution's
    /// output with the normalisation (and ReLU) still to apply. Whoever reads it next applies
    /// them on the way, saving a pass over memory.
    fn run(
        &self,
        sources: &[Source],
        (pad, scale): (usize, usize),
        stats: &mut NormStats,
        device: &Device,
    ) -> Normed {
        let (map, moments) = self.conv.forward(&self.conv.pad(sources, pad, scale));
        let (mean, var) = stats.next_or(|| {
            let mean = moments.iter().map(|m| m.mean as f32).collect();
            let var = moments.iter().map(|m| m.variance() as f32).collect();
            (to_tensor(mean, device), to_tensor(var, device))
        });
        let (mean, var) = (to_vec(mean), to_vec(var));
        let (scale, shift) = (0..map.c)
            .map(|c| {
                let scale = self.norm.gamma[c] / (var[c] + EPSILON as f32).sqrt();
                (scale, self.norm.beta[c] - mean[c] * scale)
            })
            .unzip();
        Normed {
            map,
            affine: Affine {
                scale,
                shift,
                relu: self.relu,
            },
        }
    }
}

/// Per-channel `v * scale + shift`, then ReLU if `relu`.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl Affine {
    fn apply(&self, c: usize, v: f32) -> f32 {
        let v = v * self.scale[c] + self.shift[c];
        if self.relu { v.max(0.0) } else { v }
    }
}

/// A feature map whose per-channel affine (normalisation) is not applied yet.
struct Normed {
    map: Map,
    affine: Affine,
}

impl Normed {
    fn view(&self) -> Source<'_> {
        Source {
            map: &self.map,
            affine: Some(&self.affine),
        }
    }

    fn materialize(mut self) -> Map {
        let affine = &self.affine;
        for_each_plane(&mut self.map, |c, plane| {
            plane.iter_mut().for_each(|v| *v = affine.apply(c, *v))
        });
        self.map
    }
}

/// Input of a padding copy: a map and the affine to apply to it on the way, if any.
#[derive(Clone, Copy)]
struct Source<'a> {
    map: &'a Map,
    affine: Option<&'a Affine>,
}

#[derive(Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn new(norm: &StatNorm) -> Self {
        let (gamma, beta) = norm.affine();
        Self {
            gamma: to_vec(gamma),
            beta: to_vec(beta),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    /// One matrix product per tap on shifted views of the padded planes.
    Shift,
    /// im2col chunk, then one matrix product.
    Im2col,
    /// Sums kept in registers over all channels and taps ([`direct`]); stride 1 or 2.
    Direct(direct::Tile),
}

#[derive(Clone)]
struct Conv {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    method: Method,
    /// `Shift`: `[tap][cin][cout]`; `Im2col`: `[cout][cin][tap]` (Burn's own layout); `Direct`:
    /// [`direct::pack`]ed.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv {
    fn new(conv: &Conv2d, direct: bool) -> Self {
        let [cout, cin, k, _] = conv.weight.dims();
        let stride = conv.stride[0];
        let weights = to_vec(conv.weight.val());
        let bias = match &conv.bias {
            Some(bias) => to_vec(bias.val()),
            None => vec![0.0; cout],
        };
        let method = if direct && stride <= 2 {
            Method::Direct(direct::Tile::for_channels(cout))
        } else if stride == 1 && cin >= SHIFT_MIN_CHANNELS {
            Method::Shift
        } else {
            Method::Im2col
        };
        let weights = match method {
            Method::Im2col => weights,
            Method::Direct(tile) => direct::pack(&weights, cout, cin, k * k, tile.rows()),
            Method::Shift => {
                let taps = k * k;
                let mut out = vec![0.0; weights.len()];
                for co in 0..cout {
                    for ci in 0..cin {
                        for tap in 0..taps {
                            out[(tap * cin + ci) * cout + co] =
                                weights[(co * cin + ci) * taps + tap];
                        }
                    }
                }
                out
            }
        };
        Self {
            cin,
            cout,
            k,
            stride,
            method,
            weights,
            bias,
        }
    }

    /// Valid convolution of `input`, which is padded by `k / 2` on each side, and the mean and
    /// variance of each output channel (measured chunk by chunk while the values are in cache).
    fn forward(&self, input: &Padded) -> (Map, Vec<Moments>) {
        assert_eq!(
            input.c, self.cin,
            "convolution input has the wrong channel count"
        );
        let started = timing::enabled().then(std::time::Instant::now);
        let out = if input.phases == self.stride {
            self.positional(input)
        } else {
            self.strided(input)
        };
        if let Some(started) = started {
            let (map, _) = &out;
            let macs = (self.cin * self.cout * self.k * self.k * map.h * map.w) as f64;
            timing::record(ConvTiming {
                layer: format!(
                    "{k}×{k} conv, {} → {} channels, stride {}, {}×{} out",
                    self.cin,
                    self.cout,
                    self.stride,
                    map.w,
                    map.h,
                    k = self.k
                ),
                gflop: 2.0 * macs / 1e9,
                ms: started.elapsed().as_secs_f64() * 1e3,
            });
        }
        out
    }

    /// This convolution's input: `sources` upsampled `scale` times and reflect-padded by `pad`,
    /// split into phases when [`Self::positional`] computes a stride-2 convolution (the direct
    /// method), whole otherwise.
    fn pad(&self, sources: &[Source], pad: usize, scale: usize) -> Padded {
        let phases = match self.method {
            Method::Direct(_) => self.stride,
            _ => 1,
        };
        Padded::new(sources, pad, scale, phases)
    }

    /// Output position `j = y·wr + x` runs over the width `wr` of a padded row (of a phase plane,
    /// for stride 2); columns `x >= w` are computed and dropped, which makes every tap's input a
    /// contiguous run of one (phase) plane. Stride 2 needs its input in phases ([`Padded::new`]
    /// with `phases` 2): tap `(ky, kx)` then reads phase `(ky mod 2, kx mod 2)` at row and column
    /// offsets `(ky / 2, kx / 2)`, a stride-1 pattern. The last taps read a little past the last
    /// plane: [`Padded`] keeps that slack.
    fn positional(&self, input: &Padded) -> (Map, Vec<Moments>) {
        let (k, s, cin, cout) = (self.k, self.stride, self.cin, self.cout);
        assert_eq!(input.phases, s, "input phases do not match the stride");
        let (hp, wp) = (input.h, input.w);
        let (h, w) = ((hp - k) / s + 1, (wp - k) / s + 1);
        let (hr, wr) = (hp / s, wp / s);
        let phase = hr * wr;
        let plane = s * s * phase;
        let n = h * wr;
        assert!(
            input.data.len() >= cin * plane + k,
            "padded input lacks its slack"
        );
        let rows = if self.method == Method::Im2col {
            cin * k * k
        } else {
            0
        };
        let offsets: Vec<usize> = (0..k * k)
            .map(|tap| {
                let (ky, kx) = (tap / k, tap % k);
                ((ky % s) * s + kx % s) * phase + (ky / s) * wr + kx / s
            })
            .collect();
        let mut out = Map::scratch(cout, h, w);
        let dst = Shared(out.data.as_mut_ptr());
        let dst = &dst;
        let moments = self.in_chunks(n, rows, |c0, nc, buf, col| {
            match self.method {
                Method::Direct(tile) => {
                    let layer = direct::Layer {
                        tile,
                        cin,
                        cout,
                        weights: &self.weights,
                        offsets: &offsets,
                        plane,
                    };
                    direct::chunk(&layer, &input.data, c0, nc, buf);
                }
                Method::Shift => {
                    for (tap, &offset) in offsets.iter().enumerate() {
                        let at = offset + c0;
                        // SAFETY: buf is [cout, nc]; the weights hold this tap's
                        // [cout, cin] block; rhs is [cin, nc] from `at`, row stride `plane`,
                        // its last element at most cin·plane + k − 2 (asserted above).
                        unsafe {
                            matmul(
                                buf,
                                nc,
                                &self.weights[tap * cin * cout..],
                                (cout as isize, 1),
                                input.data.as_ptr().add(at),
                                plane as isize,
                                (cout, cin),
                                tap > 0,
                            );
                        }
                    }
                }
                Method::Im2col => {
                    for (r, row) in col.chunks_exact_mut(nc).enumerate() {
                        let (ci, tap) = (r / (k * k), r % (k * k));
                        let at = ci * plane + offsets[tap] + c0;
                        row.copy_from_slice(&input.data[at..at + nc]);
                    }
                    self.im2col_product(buf, col, nc);
                }
            }
            // Keep the valid columns, add the bias: runs of (in chunk, in plane, length).
            let mut runs = Vec::with_capacity(nc / w + 2);
            let mut j = c0;
            while j < c0 + nc {
                let (y, x) = (j / wr, j % wr);
                let row_end = (j - x + wr).min(c0 + nc);
                if x < w {
                    let stop = (j - x + w).min(row_end);
                    runs.push((j - c0, y * w + x, stop - j));
                }
                j = row_end;
            }
            buf.chunks_exact(nc)
                .zip(&self.bias)
                .enumerate()
                .map(|(co, (src, &bias))| {
                    for &(from, to, len) in &runs {
                        // SAFETY: every output pixel belongs to exactly one chunk.
                        unsafe { dst.write(co * h * w + to, &src[from..from + len], bias) };
                    }
                    Moments::of(runs.iter().map(|&(from, _, len)| &src[from..from + len]))
                        .shifted(bias)
                })
                .collect()
        });
        (out, moments)
    }

    /// Stride > 1: im2col over the valid outputs, chunk by chunk.
    fn strided(&self, input: &Padded) -> (Map, Vec<Moments>) {
        let (k, s, cin, cout) = (self.k, self.stride, self.cin, self.cout);
        let (hp, wp) = (input.h, input.w);
        let (h, w) = ((hp - k) / s + 1, (wp - k) / s + 1);
        let n = h * w;
        let rows = cin * k * k;
        let plane = hp * wp;
        let mut out = Map::scratch(cout, h, w);
        let dst = Shared(out.data.as_mut_ptr());
        let dst = &dst;
        let moments = self.in_chunks(n, rows, |c0, nc, buf, col| {
            for (r, row) in col.chunks_exact_mut(nc).enumerate() {
                let (ci, tap) = (r / (k * k), r % (k * k));
                let mut j = c0;
                while j < c0 + nc {
                    let (y, x0) = (j / w, j % w);
                    let end = (j - x0 + w).min(c0 + nc);
                    let from = ci * plane + (y * s + tap / k) * wp + tap % k + x0 * s;
                    let source = input.data[from..].iter().step_by(s);
                    for (v, &x) in row[j - c0..end - c0].iter_mut().zip(source) {
                        *v = x;
                    }
                    j = end;
                }
            }
            self.im2col_product(buf, col, nc);
            buf.chunks_exact(nc)
                .zip(&self.bias)
                .enumerate()
                .map(|(co, (src, &bias))| {
                    // SAFETY: columns [c0, c0 + nc) of each output plane are this chunk's alone.
                    unsafe { dst.write(co * n + c0, src, bias) };
                    Moments::of([src].into_iter()).shifted(bias)
                })
                .collect()
        });
        (out, moments)
    }

    /// Runs `chunk(c0, nc, buf, col)` for every run of `CHUNK` output columns out of `n`, on all
    /// cores, with this thread's scratch split into `buf` (`[cout, nc]`, for the products) and
    /// `col` (`[rows, nc]`, for im2col). Each chunk returns its per-channel moments; returns
    /// each channel's total.
    fn in_chunks(
        &self,
        n: usize,
        rows: usize,
        chunk: impl Fn(usize, usize, &mut [f32], &mut [f32]) -> Vec<Moments> + Sync + Send,
    ) -> Vec<Moments> {
        let cout = self.cout;
        let per_chunk = par_map(n.div_ceil(CHUNK), |i| {
            let c0 = i * CHUNK;
            let nc = CHUNK.min(n - c0);
            with_scratch((cout + rows) * nc, |scratch| {
                let (buf, col) = scratch.split_at_mut(cout * nc);
                chunk(c0, nc, buf, col)
            })
        });
        (0..cout)
            .map(|c| {
                per_chunk
                    .iter()
                    .fold(Moments::default(), |total, m| total.merge(m[c]))
            })
            .collect()
    }

    /// `buf = weights · col`: an im2col chunk (`[cin·k², nc]`) through the `[cout, cin·k²]`
    /// weights.
    fn im2col_product(&self, buf: &mut [f32], col: &[f32], nc: usize) {
        let rows = self.cin * self.k * self.k;
        assert!(col.len() >= rows * nc && self.weights.len() >= self.cout * rows);
        // SAFETY: buf is [cout, nc], the weights [cout, rows], col [rows, nc] (checked above).
        unsafe {
            matmul(
                buf,
                nc,
                &self.weights,
                (1, rows as isize),
                col.as_ptr(),
                nc as isize,
                (self.cout, rows),
                false,
            );
        }
    }
}

/// `dst (+)= lhs · rhs` for a row-major `dst` of `m × n` (row stride `n`), `lhs` an `m × k`
/// matrix with `(column, row)` strides `lhs_strides`, `rhs` a `k × n` matrix with unit column
/// stride and row stride `rhs_row`.
///
/// # Safety
/// `lhs` and `rhs` must hold every element those shapes and strides address.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    dst: &mut [f32],
    n: usize,
    lhs: &[f32],
    lhs_strides: (isize, isize),
    rhs: *const f32,
    rhs_row: isize,
    (m, k): (usize, usize),
    accumulate: bool,
) {
    debug_assert!(dst.len() >= m * n);
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.0,
            lhs_strides.1,
            rhs,
            1,
            rhs_row,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Runs `f` with this thread's scratch buffer of at least `len` values (kept between calls:
/// no allocation, no fresh pages per chunk).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        f(&mut scratch[..len])
    })
}

/// Feature maps `[c, h, w]`.
struct Map {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Map {
    /// A map of any values, to be overwritten.
    fn scratch(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            data: pool::take(c * h * w),
        }
    }

    fn raw(&self) -> Source<'_> {
        Source {
            map: self,
            affine: None,
        }
    }

    /// `self += other` with `other`'s affine applied.
    fn add(&mut self, other: &Normed) {
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
struct Padded {
    c: usize,
    h: usize,
    w: usize,
    phases: usize,
    data: Vec<f32>,
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
    fn new(sources: &[Source], pad: usize, scale: usize, phases: usize) -> Self {
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
        // The shifted products read k − 1 values past the last plane, the direct tiles up to 18.
        let slack = 32;
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
                    if a.relu {
                        rows.fill(out, src, |v| (v * scale + shift).max(0.0))
                    } else {
                        rows.fill(out, src, |v| v * scale + shift)
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
struct Rows<'a> {
    /// Source width.
    sw: usize,
    ys: &'a [usize],
    xs: &'a [usize],
    pad: usize,
    scale: usize,
    /// 1, or 2 to lay the plane out in phases (see [`Padded`]).
    phases: usize,
}

impl Rows<'_> {
    /// `out` (one padded plane) from `src` (one source plane) through `f`. The interior of a row
    /// is a straight run of its source line (each value repeated `scale` times), only the `pad`
    /// columns at each end are looked up; a row that repeats the one before (upsampling) is
    /// copied.
    fn fill(&self, out: &mut [f32], src: &[f32], f: impl Fn(f32) -> f32) {
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

/// Reuse of the large buffers within one forward pass: fresh allocations of that size come
/// straight from the OS, and touching their pages cost more than the arithmetic between them.
mod pool {
    use std::cell::RefCell;

    thread_local! {
        static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer of `len` values (whatever they are).
    pub(super) fn take(len: usize) -> Vec<f32> {
        let reused = FREE.with(|free| {
            let mut free = free.borrow_mut();
            let best = (0..free.len())
                .filter(|&i| free[i].capacity() >= len)
                .min_by_key(|&i| free[i].capacity());
            best.map(|i| free.swap_remove(i))
        });
        let mut buffer = reused.unwrap_or_default();
        buffer.resize(len, 0.0);
        buffer
    }

    pub(super) fn give(buffer: Vec<f32>) {
        if buffer.capacity() > 0 {
            FREE.with(|free| free.borrow_mut().push(buffer));
        }
    }

    /// Hand the memory back once a pass is done.
    pub(super) fn clear() {
        FREE.with(|free| free.borrow_mut().clear());
    }
}

/// Mirror index without repeating the edge (PyTorch's and Burn's reflect padding).
fn reflect(i: isize, len: usize) -> usize {
    let last = len as isize - 1;
    let i = if i < 0 { -i } else { i };
    (if i > last { 2 * last - i } else { i }) as usize
}

fn to_tensor(values: Vec<f32>, device: &Device) -> Tensor<4> {
    let c = values.len();
    Tensor::from_data(TensorData::new(values, [1, c, 1, 1]), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32")
}

fn for_each_plane(x: &mut Map, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let plane = x.h * x.w;
    for_each_slice(&mut x.data, plane, f);
}

/// `f(index, slice)` for each `len`-long slice of `data`, on all cores (in wasm: in turn,
/// `vectorised`).
fn for_each_slice(data: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, s)| f(i, s));
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(len)
        .enumerate()
        .for_each(|(i, s)| vectorised(|| f(i, s)));
}

/// `[f(0), …, f(count − 1)]`, computed on all cores (in wasm: in turn, `vectorised`).
fn par_map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..count).into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    (0..count).map(|i| vectorised(|| f(i))).collect()
}

/// Runs `f` inlined into a function compiled with wasm's 128-bit SIMD, so the compiler
/// vectorises its loops (padding copies, bias and statistics, residual adds): the rest of the
/// crate is built for wasm without SIMD, which would leave them scalar.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[target_feature(enable = "simd128")]
    fn simd<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
    // A browser without simd128 cannot instantiate the module anyway: the direct kernels and
    // the gemm crate's wasm kernels use it.
    simd(f)
}

/// A convolution's output, written by parallel chunks, each to pixels no other chunk touches.
struct Shared(*mut f32);

// SAFETY: chunks write disjoint elements (see the callers) and the buffer outlives the scope.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Shared {
    /// `buffer[at + i] = values[i] + bias`.
    ///
    /// # Safety
    /// `at + values.len()` is inside the buffer and no other thread accesses that range.
    unsafe fn write(&self, at: usize, values: &[f32], bias: f32) {
        for (i, v) in values.iter().enumerate() {
            unsafe { *self.0.add(at + i) = v + bias };
        }
    }
}

/// Count, mean and sum of squared deviations of some values; merged exactly (Chan et al.), so
/// chunks measured apart give the statistics of the whole channel.
#[derive(Clone, Copy, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn of<'a>(parts: impl Iterator<Item = &'a [f32]> + Clone) -> Self {
        let n: usize = parts.clone().map(<[f32]>::len).sum();
        if n == 0 {
            return Self::default();
        }
        let sum: f64 = parts.clone().map(|p| f64::from(lane_sum(p, |v| v))).sum();
        let mean = (sum / n as f64) as f32;
        let m2: f64 = parts
            .map(|p| f64::from(lane_sum(p, |v| (v - mean) * (v - mean))))
            .sum();
        Self {
            n: n as f64,
            mean: f64::from(mean),
            m2,
        }
    }

    /// The moments of the same values plus `offset`.
    fn shifted(self, offset: f32) -> Self {
        Self {
            mean: self.mean + f64::from(offset),
            ..self
        }
    }

    fn merge(self, other: Self) -> Self {
        if other.n == 0.0 {
            return self;
        }
        if self.n == 0.0 {
            return other;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        Self {
            n,
            mean: self.mean + delta * other.n / n,
            m2: self.m2 + other.m2 + delta * delta * self.n * other.n / n,
        }
    }

    /// Biased variance, as Burn's `var_mean_bias`.
    fn variance(&self) -> f64 {
        if self.n > 0.0 { self.m2 / self.n } else { 0.0 }
    }
}

/// `Σ f(v)` with 16 independent partial sums, which the compiler turns into SIMD adds.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let blocks = values.chunks_exact(16);
    let rest: f32 = blocks.remainder().iter().map(|&v| f(v)).sum();
    for block in blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GeneratorConfig;
    use crate::rng::Rng;

    fn random_planes(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    fn burn_forward(
        g: &Generator,
        input: &[f32],
        h: usize,
        w: usize,
        stats: &mut NormStats,
    ) -> Vec<f32> {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 3, h, w]), &device);
        to_vec(g.forward_with(x, stats))
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn generator(config: &GeneratorConfig) -> Generator {
        config.init(&Device::flex())
    }

    /// Both kinds of stride-1 convolution: shifted products (native) and direct (the browser).
    fn both_paths(g: &Generator) -> [(&'static str, CpuGenerator); 2] {
        [
            ("shifted", CpuGenerator::build(g, false)),
            ("direct", CpuGenerator::build(g, true)),
        ]
    }

    #[test]
    fn matches_burn_with_and_without_input_skip() {
        // Width 6 makes 6-, 12- and 24-channel layers: the direct path's last channel block is
        // half empty, and the 3-channel head uses its other tile.
        for (width, skip) in [(8, false), (8, true), (6, true)] {
            let config = GeneratorConfig::new(width, 2).with_input_skip(Some(skip));
            let g = generator(&config);
            // 36 × 28 puts partial tiles and partial chunks at the ends of most layers.
            let (h, w) = (36, 28);
            let input = random_planes(3 * h * w, 7);
            let theirs = burn_forward(&g, &input, h, w, &mut NormStats::live());
            for (path, cpu) in both_paths(&g) {
                let ours = cpu.forward_with(input.clone(), h, w, &mut NormStats::live());
                let diff = max_diff(&ours, &theirs);
                assert!(
                    diff < 1e-4,
                    "{path}, width {width}, skip {skip}: max abs diff {diff}"
                );
            }
            let ours =
                CpuGenerator::new(&g).forward_with(input.clone(), h, w, &mut NormStats::live());
            // The output is not trivially flat, so agreement means something.
            let spread = ours.iter().cloned().fold(f32::MIN, f32::max)
                - ours.iter().cloned().fold(f32::MAX, f32::min);
            assert!(spread > 0.1, "output spread {spread}");
        }
    }

    /// Trained weights (norm scales and shifts far from 1 and 0, the input skip on).
    #[test]
    fn matches_burn_on_the_shipped_default_style() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let index = crate::pack::Index::load(&root).expect("models/index.json");
        let default = index.default.expect("a default style");
        let pack = crate::pack::StylePack::resolve(&default, &root).expect("default pack");
        let g = pack.generator(&Device::flex()).expect("weights load");
        // The full-size layers span several 1024-position chunks, the last one partial.
        let (h, w) = (64, 48);
        let input = random_planes(3 * h * w, 3);
        let theirs = burn_forward(&g, &input, h, w, &mut NormStats::live());
        for (path, cpu) in both_paths(&g) {
            let ours = cpu.forward_with(input.clone(), h, w, &mut NormStats::live());
            let diff = max_diff(&ours, &theirs);
            assert!(diff < 1e-4, "{path}: max abs diff {diff}");
        }
    }

    #[test]
    fn replays_recorded_statistics_like_burn() {
        let config = GeneratorConfig::new(4, 1).with_input_skip(Some(true));
        let g = generator(&config);
        let cpu = CpuGenerator::new(&g);
        // Record on one photo, replay on another of a different size (a tile).
        let thumb = random_planes(3 * 32 * 32, 1);
        let tile = random_planes(3 * 20 * 24, 2);
        let mut ours = NormStats::record();
        cpu.forward_with(thumb.clone(), 32, 32, &mut ours);
        let mut theirs = NormStats::record();
        burn_forward(&g, &thumb, 32, 32, &mut theirs);
        assert_eq!(ours.len(), theirs.len());
        let a = cpu.forward_with(tile.clone(), 20, 24, &mut ours.replay());
        let b = burn_forward(&g, &tile, 20, 24, &mut theirs.replay());
        let diff = max_diff(&a, &b);
        assert!(diff < 1e-4, "max abs diff {diff}");
        // Replaying differs from live statistics, so the replay was really used.
        let live = cpu.forward_with(tile, 20, 24, &mut NormStats::live());
        assert!(max_diff(&a, &live) > 1e-3);
    }

    #[test]
    fn chunked_moments_equal_the_whole_channels() {
        // A large mean over a small spread: the case where naive sums of squares lose it all.
        let values: Vec<f32> = random_planes(5000, 9)
            .iter()
            .map(|v| 1000.0 + 0.01 * v)
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let merged = values
            .chunks(777)
            .map(|c| Moments::of([c].into_iter()))
            .fold(Moments::default(), Moments::merge);
        assert!(
            (merged.mean - mean).abs() < 1e-4,
            "{} vs {mean}",
            merged.mean
        );
        assert!(
            (merged.variance() - var).abs() < 1e-3 * var,
            "{} vs {var}",
            merged.variance()
        );
    }

    #[test]
    fn reflect_matches_the_definition() {
        let got: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
