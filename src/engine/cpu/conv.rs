//! Convolutions: weights laid out per method (shifted products, im2col, direct tiles), the
//! chunked forward pass with the bias and per-chunk moments folded in, and the matrix product.

use burn::nn::conv::Conv2d;

use super::{ConvTiming, Map, Moments, Padded, Shared, Source, direct, par_map, timing, to_vec};

/// Output columns per work item: a 64-channel chunk (256 KiB) stays in a core's L2 cache while
/// all nine taps accumulate into it.
pub(super) const CHUNK: usize = 1024;

/// Convolutions with fewer input channels than this use im2col: a shifted product over 3
/// channels is too thin to keep the SIMD units busy.
pub(super) const SHIFT_MIN_CHANNELS: usize = 8;

/// Which convolutions a [`super::CpuGenerator`] is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kernels {
    /// Shifted products and im2col through `gemm`.
    Products,
    /// [`direct`] tiles on 4 lanes (the browser's).
    Direct,
    /// [`direct::wide`] tiles on AVX-512's 16 lanes.
    #[cfg(target_arch = "x86_64")]
    Wide,
}

impl Kernels {
    /// The fastest this machine has: direct tiles in the browser, AVX-512 tiles where the CPU has
    /// them, matrix products elsewhere. Natively the environment variable `PORTRAITIST_KERNELS`
    /// (`products`, `direct` or `avx512`) picks one instead, for benchmarks (`avx512` only where
    /// the CPU has it).
    pub(super) fn best() -> Self {
        #[cfg(target_arch = "wasm32")]
        return Kernels::Direct;
        #[cfg(not(target_arch = "wasm32"))]
        match std::env::var("PORTRAITIST_KERNELS").as_deref() {
            Ok("products") => return Kernels::Products,
            Ok("direct") => return Kernels::Direct,
            _ => {}
        }
        #[cfg(target_arch = "x86_64")]
        if direct::wide::available() {
            return Kernels::Wide;
        }
        #[allow(unreachable_code)]
        Kernels::Products
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// One matrix product per tap on shifted views of the padded planes.
    Shift,
    /// im2col chunk, then one matrix product.
    Im2col,
    /// Sums kept in registers over all channels and taps ([`direct`]); stride 1 or 2.
    Direct(direct::Tile),
}

#[derive(Clone)]
pub(super) struct Conv {
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) k: usize,
    pub(super) stride: usize,
    pub(super) method: Method,
    /// `Shift`: `[tap][cin][cout]`; `Im2col`: `[cout][cin][tap]` (Burn's own layout); `Direct`:
    /// [`direct::pack`]ed.
    pub(super) weights: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

impl Conv {
    pub(super) fn new(conv: &Conv2d, kernels: Kernels) -> Self {
        let [cout, cin, k, _] = conv.weight.dims();
        let weights = to_vec(conv.weight.val());
        let bias = match &conv.bias {
            Some(bias) => to_vec(bias.val()),
            None => vec![0.0; cout],
        };
        Self::from_weights((cin, cout, k, conv.stride[0]), weights, bias, kernels)
    }

    /// A convolution of `(cin, cout, k, stride)` from its weights in Burn's layout (`[cout,
    /// cin, k, k]`) and its bias.
    pub(super) fn from_weights(
        (cin, cout, k, stride): (usize, usize, usize, usize),
        weights: Vec<f32>,
        bias: Vec<f32>,
        kernels: Kernels,
    ) -> Self {
        let method = match kernels {
            Kernels::Direct if stride <= 2 => Method::Direct(direct::Tile::for_channels(cout)),
            #[cfg(target_arch = "x86_64")]
            Kernels::Wide if stride <= 2 => Method::Direct(direct::Tile::wide_for_channels(cout)),
            _ if stride == 1 && cin >= SHIFT_MIN_CHANNELS => Method::Shift,
            _ => Method::Im2col,
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
    pub(super) fn forward(&self, input: &Padded) -> (Map, Vec<Moments>) {
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
    pub(super) fn pad(&self, sources: &[Source], pad: usize, scale: usize) -> Padded {
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
    pub(super) fn positional(&self, input: &Padded) -> (Map, Vec<Moments>) {
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
    pub(super) fn strided(&self, input: &Padded) -> (Map, Vec<Moments>) {
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
    pub(super) fn in_chunks(
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
    pub(super) fn im2col_product(&self, buf: &mut [f32], col: &[f32], nc: usize) {
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
pub(super) unsafe fn matmul(
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
        product(
            (m, n, k),
            (dst.as_mut_ptr(), n as isize),
            (lhs.as_ptr(), lhs_strides.0, lhs_strides.1),
            (rhs, 1, rhs_row),
            accumulate,
        );
    }
}

/// `dst (+)= lhs · rhs` for `(m, n, k)`: `dst` row-major with row stride `dst.1`, `lhs` an `m × k`
/// matrix with `(column, row)` strides, `rhs` a `k × n` one with `(column, row)` strides. On the
/// calling thread.
///
/// # Safety
/// Every element those shapes and strides address lies inside its buffer.
pub(super) unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, isize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            1,
            dst.1,
            accumulate,
            lhs.0,
            lhs.1,
            lhs.2,
            rhs.0,
            rhs.1,
            rhs.2,
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
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
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
