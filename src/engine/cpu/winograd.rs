//! 3×3 convolutions (zero padding 1, stride 1) by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 block of
//! the output comes from a 4×4 block of the input with 16 multiplications per pair of channels
//! instead of 36. Summed over channels, the 16 products are 16 matrix products
//! `[cout, cin] × [cin, blocks]`, each as large as one tap's product of the "shifted gemm" it
//! replaces (nine taps at four times the columns): 2.25× fewer multiply-adds.
//!
//! VGG19's losses ([`super::vgg`]) run their wide convolutions through it, forward and backward:
//! the styles mode's training step and the page's "Learn a style".

use super::conv::{matmul, with_scratch};
use super::parallel::{Shared, par_map};
use super::vgg::Planes;

/// 3×3 kernels in the Winograd domain: `[16][cin][cout]`, the 4×4 `G g Gᵀ` of each kernel.
#[derive(Clone)]
pub(super) struct Kernels {
    cin: usize,
    cout: usize,
    u: Vec<f32>,
}

impl Kernels {
    /// From 3×3 kernels laid out `[tap][cin][cout]` (tap = 3 · row + column).
    pub(super) fn new(taps: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(
            taps.len(),
            9 * cin * cout,
            "kernels do not match the channels"
        );
        let mut u = vec![0.0; 16 * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |r: usize, c: usize| taps[((r * 3 + c) * cin + ci) * cout + co];
                // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]; rows of G·g, then of (G·g)·Gᵀ.
                let spread = |a: f32, b: f32, d: f32| [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                let columns: [[f32; 4]; 3] =
                    std::array::from_fn(|c| spread(g(0, c), g(1, c), g(2, c)));
                for r in 0..4 {
                    let row = spread(columns[0][r], columns[1][r], columns[2][r]);
                    for (c, v) in row.into_iter().enumerate() {
                        u[((r * 4 + c) * cin + ci) * cout + co] = v;
                    }
                }
            }
        }
        Self { cin, cout, u }
    }
}

/// `Bᵀ·v` of four values, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
fn input_transform([a, b, c, d]: [f32; 4]) -> [f32; 4] {
    [a - c, b + c, c - b, b - d]
}

/// `Aᵀ·v` of four values, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
fn output_transform([a, b, c, d]: [f32; 4]) -> [f32; 2] {
    [a + b + c, b - c - d]
}

/// The convolution of `x` (`kernels.cin` planes) with `kernels`, plus `bias` per output channel.
/// The work is split into `threads` equal shares of rows of 2×2 output blocks (or more, to keep
/// each share's transformed blocks within about a megabyte).
pub(super) fn conv3x3(
    x: &Planes,
    kernels: &Kernels,
    bias: Option<&[f32]>,
    threads: usize,
) -> Planes {
    let (cin, cout, h, w) = (kernels.cin, kernels.cout, x.h, x.w);
    assert_eq!(x.c, cin, "input planes do not match the kernels");
    assert_eq!(
        x.data.len(),
        cin * h * w,
        "input planes do not match their size"
    );
    let (rows, cols) = (h.div_ceil(2), w.div_ceil(2));
    // The input with a zero border: one pixel, plus one more where a side is odd, so every
    // block's 4×4 window lies inside. Block (by, bx) reads rows 2by…2by+3, columns 2bx…2bx+3.
    let (ph, pw) = (2 * rows + 2, 2 * cols + 2);
    let mut padded = vec![0.0f32; cin * ph * pw];
    for c in 0..cin {
        for y in 0..h {
            let at = (c * ph + y + 1) * pw + 1;
            padded[at..at + w].copy_from_slice(&x.data[(c * h + y) * w..(c * h + y + 1) * w]);
        }
    }
    // The output at whole blocks (cropped below where a side is odd).
    let (oh, ow) = (2 * rows, 2 * cols);
    let mut full = vec![0.0f32; cout * oh * ow];
    let most = (16_384 / ((cin + cout) * cols)).max(1);
    let shares = rows.div_ceil(most).div_ceil(threads) * threads;
    let size = rows.div_ceil(shares).max(1);
    let dst = Shared(full.as_mut_ptr());
    let (dst, padded) = (&dst, &padded);
    par_map(rows.div_ceil(size), |i| {
        let r0 = i * size;
        let nr = size.min(rows - r0);
        let n = nr * cols;
        with_scratch(16 * (cin + cout) * n, |scratch| {
            let (v, m) = scratch.split_at_mut(16 * cin * n);
            // V[k][ci][b] = (Bᵀ·d·B)[k], d the 4×4 input window of block b.
            for ci in 0..cin {
                let plane = &padded[ci * ph * pw..(ci + 1) * ph * pw];
                for by in 0..nr {
                    let top = 2 * (r0 + by) * pw;
                    let window: [&[f32]; 4] =
                        std::array::from_fn(|r| &plane[top + r * pw..top + r * pw + pw]);
                    let at = by * cols;
                    let outs: [&mut [f32]; 16] = split16(v, ci, cin, n, at, cols);
                    for bx in 0..cols {
                        let d = |r: usize, c: usize| window[r][2 * bx + c];
                        let e: [[f32; 4]; 4] = std::array::from_fn(|c| {
                            input_transform([d(0, c), d(1, c), d(2, c), d(3, c)])
                        });
                        for r in 0..4 {
                            let row = input_transform([e[0][r], e[1][r], e[2][r], e[3][r]]);
                            for c in 0..4 {
                                outs[r * 4 + c][bx] = row[c];
                            }
                        }
                    }
                }
            }
            // M[k] = U[k]ᵀ·V[k], `[cout, n]`.
            for k in 0..16 {
                // SAFETY: m's k-th slice is [cout, n]; U[k] is [cin][cout] (column stride cout,
                // row stride 1); V[k] is [cin, n] with row stride n, all inside their buffers.
                unsafe {
                    matmul(
                        &mut m[k * cout * n..],
                        n,
                        &kernels.u[k * cin * cout..],
                        (cout as isize, 1),
                        v[k * cin * n..].as_ptr(),
                        n as isize,
                        (cout, cin),
                        false,
                    );
                }
            }
            // Y = Aᵀ·M·A: each block's 2×2 output, two rows of the share's output at a time.
            let mut pair = vec![0.0f32; 2 * ow];
            for co in 0..cout {
                let shift = bias.map_or(0.0, |b| b[co]);
                for by in 0..nr {
                    let at = by * cols;
                    let ins: [&[f32]; 16] = std::array::from_fn(|k| {
                        &m[(k * cout + co) * n + at..(k * cout + co) * n + at + cols]
                    });
                    let (upper, lower) = pair.split_at_mut(ow);
                    for bx in 0..cols {
                        let g = |k: usize| ins[k][bx];
                        let t: [[f32; 2]; 4] = std::array::from_fn(|c| {
                            output_transform([g(c), g(4 + c), g(8 + c), g(12 + c)])
                        });
                        let [y00, y01] = output_transform([t[0][0], t[1][0], t[2][0], t[3][0]]);
                        let [y10, y11] = output_transform([t[0][1], t[1][1], t[2][1], t[3][1]]);
                        upper[2 * bx] = y00;
                        upper[2 * bx + 1] = y01;
                        lower[2 * bx] = y10;
                        lower[2 * bx + 1] = y11;
                    }
                    // SAFETY: rows 2(r0 + by) and the next belong to this share alone.
                    unsafe { dst.write((co * oh + 2 * (r0 + by)) * ow, &pair, shift) };
                }
            }
        });
    });
    let data = if (oh, ow) == (h, w) {
        full
    } else {
        let mut data = vec![0.0f32; cout * h * w];
        for c in 0..cout {
            for y in 0..h {
                let from = (c * oh + y) * ow;
                data[(c * h + y) * w..(c * h + y + 1) * w].copy_from_slice(&full[from..from + w]);
            }
        }
        data
    };
    Planes {
        c: cout,
        h,
        w,
        data,
    }
}

/// The sixteen `cols`-long runs of `v` (`[16][cin][n]`) that hold channel `ci`'s transformed
/// blocks `at…at + cols`, one per Winograd component.
fn split16(
    v: &mut [f32],
    ci: usize,
    cin: usize,
    n: usize,
    at: usize,
    cols: usize,
) -> [&mut [f32]; 16] {
    let mut rest = v;
    let mut consumed = 0;
    let mut runs: [&mut [f32]; 16] = Default::default();
    for (k, run) in runs.iter_mut().enumerate() {
        let start = (k * cin + ci) * n + at;
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(start - consumed);
        let (here, tail) = tail.split_at_mut(cols);
        *run = here;
        rest = tail;
        consumed = start + cols;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, `[tap][cin][cout]` kernels.
    fn direct(x: &Planes, taps: &[f32], cout: usize, bias: &[f32]) -> Vec<f32> {
        let (cin, h, w) = (x.c, x.h, x.w);
        let mut out = vec![0.0f32; cout * h * w];
        for co in 0..cout {
            for y in 0..h {
                for i in 0..w {
                    let mut sum = f64::from(bias[co]);
                    for ci in 0..cin {
                        for tap in 0..9 {
                            let (yy, xx) =
                                ((y + tap / 3).wrapping_sub(1), (i + tap % 3).wrapping_sub(1));
                            if yy < h && xx < w {
                                sum += f64::from(x.data[(ci * h + yy) * w + xx])
                                    * f64::from(taps[(tap * cin + ci) * cout + co]);
                            }
                        }
                    }
                    out[(co * h + y) * w + i] = sum as f32;
                }
            }
        }
        out
    }

    #[test]
    fn equals_the_definition_at_odd_and_even_sizes() {
        let mut seed = 5u64;
        let mut noise = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                })
                .collect()
        };
        for (cin, cout, h, w, threads) in [
            (16, 24, 9, 14, 2),
            (32, 16, 1, 1, 2),
            (20, 20, 2, 3, 1),
            (16, 16, 33, 7, 3),
            (64, 32, 16, 16, 2),
        ] {
            let x = Planes {
                c: cin,
                h,
                w,
                data: noise(cin * h * w),
            };
            let taps = noise(9 * cin * cout);
            let bias = noise(cout);
            let expected = direct(&x, &taps, cout, &bias);
            let ours = conv3x3(&x, &Kernels::new(&taps, cin, cout), Some(&bias), threads);
            assert_eq!((ours.c, ours.h, ours.w), (cout, h, w));
            let worst = ours
                .data
                .iter()
                .zip(&expected)
                .map(|(a, e)| (a - e).abs())
                .fold(0.0f32, f32::max);
            let scale = expected.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-5 * scale.max(1.0),
                "{cin}→{cout} at {h}×{w}: off by {worst} (largest {scale})"
            );
        }
    }
}
