//! The styles mode's VGG19 losses and their gradient on the CPU, computed directly on `f32`
//! planes: the training step's heaviest part (VGG19 up to relu4_1 runs forward on every output
//! and photo and backward on every output), here at the speed of the stylizer's CPU path.
//!
//! VGG19's weights are frozen, so its backward pass needs no weight gradients: the gradient of a
//! 3×3 zero-padded convolution with respect to its input is another such convolution, with each
//! kernel flipped and input and output channels swapped. Both directions are the "shifted gemm"
//! of [`super::conv`]: nine matrix products per layer on shifted views of the padded planes.
//! ReLU's backward is its output's mask, max pooling's routes each gradient to its window's
//! maximum. The losses are [`crate::learn::step::content_distance`] and
//! [`crate::learn::step::style_distance`] (the tests compare value and gradient with Burn's
//! autodiff); the training step hands the gradient to Burn as the generator output's, so Burn
//! still trains the generator and serves the GPU.

use super::conv::{CHUNK, with_scratch};
use super::parallel::{Shared, par_map};
use super::to_vec;
use super::winograd::{self, Kernels};
use crate::model::Vgg19;

/// Caffe's BGR channel means on 0..255 values (as [`Vgg19::features`]).
const BGR_MEAN: [f32; 3] = [103.939, 116.779, 123.68];
/// Convolutions after which a feature is taken (relu1_1, relu2_1, relu3_1, relu4_1).
const FEATURES: [usize; 4] = [0, 2, 4, 8];
/// Convolutions followed by a 2×2 max pool.
const POOLED: [usize; 3] = [1, 3, 7];
/// Features the content loss compares (relu3_1 and relu4_1).
const CONTENT: [usize; 2] = [2, 3];

/// A frozen [`Vgg19`]'s weights laid out for the CPU, both directions.
#[derive(Clone)]
pub struct CpuVgg {
    convs: Vec<VggConv>,
}

#[derive(Clone)]
struct VggConv {
    cin: usize,
    cout: usize,
    /// Forward: `[tap][cin][cout]`.
    forward: Vec<f32>,
    /// Input gradient: `[tap][cout][cin]`, taps flipped.
    backward: Vec<f32>,
    /// Both in the Winograd domain, where both directions are wide enough for it.
    winograd: Option<(Kernels, Kernels)>,
    bias: Vec<f32>,
}

/// Convolutions with fewer channels in or out than this keep the shifted gemm: VGG's first
/// (3 → 64) and the image gradient it ends the backward pass with (64 → 3) are too thin for
/// Winograd's sixteen products.
const WINOGRAD_CHANNELS: usize = 16;

impl VggConv {
    /// The convolution of `x` forward (with bias) or, `backward`, its input gradient.
    fn apply(&self, x: &Planes, backward: bool) -> Planes {
        match (&self.winograd, backward) {
            (Some((forward, _)), false) => {
                winograd::conv3x3(x, forward, Some(&self.bias), threads())
            }
            (Some((_, back)), true) => winograd::conv3x3(x, back, None, threads()),
            (None, false) => conv3x3(x, self.cout, &self.forward, Some(&self.bias)),
            (None, true) => conv3x3(x, self.cin, &self.backward, None),
        }
    }
}

/// `[c, h, w]` planes.
#[derive(Clone, Debug)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

/// One sample's targets: the photo's features (relu1_1…relu4_1; the content loss uses the last
/// two) and its style's Gram matrices (`[c, c]` per feature).
pub struct Targets<'a> {
    pub photo: &'a [Planes],
    pub grams: Vec<&'a [f32]>,
    /// This sample's multiple of the batch's style weight (1: as the others).
    pub style_scale: f32,
    /// Where the content term weighs more: an `[h, w]` map in [0, 1] and a weight `k`; the term
    /// at each feature position then weighs `1 + k ·` the map's mean over the block of pixels
    /// that position stands for ([`emphasis`]). `None`: every position alike.
    pub content_emphasis: Option<(&'a [f32], f32)>,
}

/// `1 + weight ·` the mean of `map` (`[h, w]`) over each `h / fh × w / fw` block of pixels
/// (rounded down; a remainder at the bottom and right is left out, as VGG's pooling leaves it):
/// the content term's weight at each position of an `[fh, fw]` feature.
pub fn emphasis(map: &[f32], h: usize, w: usize, weight: f32, fh: usize, fw: usize) -> Vec<f32> {
    assert_eq!(map.len(), h * w, "emphasis map does not match the image");
    let (sy, sx) = (h / fh, w / fw);
    assert!(sy > 0 && sx > 0, "a feature larger than its image");
    let area = (sy * sx) as f32;
    let mut out = vec![0.0f32; fh * fw];
    for (y, row) in out.chunks_exact_mut(fw).enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            let sum: f32 = (y * sy..(y + 1) * sy)
                .map(|py| {
                    map[py * w + x * sx..py * w + (x + 1) * sx]
                        .iter()
                        .sum::<f32>()
                })
                .sum();
            *v = 1.0 + weight * sum / area;
        }
    }
    out
}

/// The weighted losses of a batch and their gradient.
#[derive(Debug, Clone)]
pub struct VggLoss {
    /// [`crate::learn::step::content_distance`]: the batch mean, summed over its two layers.
    pub content: f32,
    /// [`crate::learn::step::style_distance`]: the batch mean, summed over the four layers.
    pub style: f32,
    /// `∂(content_weight · content + style_weight · style_scale · style) / ∂image`, `[3, h, w]`
    /// per sample.
    pub grad: Vec<Vec<f32>>,
}

impl std::fmt::Debug for CpuVgg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuVgg")
            .field("convs", &self.convs.len())
            .finish()
    }
}

impl CpuVgg {
    pub fn new(vgg: &Vgg19) -> Self {
        let convs = vgg
            .convs()
            .iter()
            .map(|conv| {
                let [cout, cin, k, _] = conv.weight.dims();
                assert_eq!(k, 3, "VGG19's convolutions are 3×3");
                let w = to_vec(conv.weight.val());
                let bias = match &conv.bias {
                    Some(b) => to_vec(b.val()),
                    None => vec![0.0; cout],
                };
                let mut forward = vec![0.0; w.len()];
                let mut backward = vec![0.0; w.len()];
                for co in 0..cout {
                    for ci in 0..cin {
                        for tap in 0..9 {
                            let v = w[(co * cin + ci) * 9 + tap];
                            forward[(tap * cin + ci) * cout + co] = v;
                            backward[((8 - tap) * cout + co) * cin + ci] = v;
                        }
                    }
                }
                let winograd = (cin.min(cout) >= WINOGRAD_CHANNELS).then(|| {
                    (
                        Kernels::new(&forward, cin, cout),
                        Kernels::new(&backward, cout, cin),
                    )
                });
                VggConv {
                    cin,
                    cout,
                    forward,
                    backward,
                    winograd,
                    bias,
                }
            })
            .collect();
        Self { convs }
    }

    /// relu1_1, relu2_1, relu3_1 and relu4_1 of one image (`[3, h, w]` in [-1, 1]).
    pub fn features(&self, image: &[f32], h: usize, w: usize) -> Vec<Planes> {
        let (features, _) = self.run(image, h, w, false);
        features
    }

    /// [`Self::features`] of several images, in parallel.
    pub fn features_of(&self, images: &[Vec<f32>], h: usize, w: usize) -> Vec<Vec<Planes>> {
        par_map(images.len(), |i| self.features(&images[i], h, w))
    }

    /// Style `[c, c]` Gram matrices of features, normalised by their size (as [`crate::model::gram`]).
    pub fn grams(features: &[Planes]) -> Vec<Vec<f32>> {
        features.iter().map(gram).collect()
    }

    /// `content_weight · content + style_weight · style` of `images` (each `[3, h, w]` in
    /// [-1, 1]) against their `targets` (each sample's style term times its
    /// [`Targets::style_scale`]), and its gradient with respect to each image. The distances it
    /// reports are unscaled.
    pub fn loss(
        &self,
        images: &[Vec<f32>],
        h: usize,
        w: usize,
        targets: &[Targets],
        content_weight: f32,
        style_weight: f32,
    ) -> VggLoss {
        assert_eq!(images.len(), targets.len(), "one target per image");
        let batch = images.len() as f32;
        // Samples in parallel (each convolution splits its columns too, for batches smaller than
        // the cores).
        let samples = par_map(images.len(), |i| {
            self.sample_loss(
                &images[i],
                h,
                w,
                &targets[i],
                content_weight / batch,
                style_weight * targets[i].style_scale / batch,
            )
        });
        let (mut content, mut style) = (0.0f64, 0.0f64);
        let mut grad = Vec::with_capacity(images.len());
        for (c, s, g) in samples {
            content += c;
            style += s;
            grad.push(g);
        }
        VggLoss {
            content: (content / f64::from(batch)) as f32,
            style: (style / f64::from(batch)) as f32,
            grad,
        }
    }

    /// One image's content and style distances, and the gradient of their weighted sum.
    fn sample_loss(
        &self,
        image: &[f32],
        h: usize,
        w: usize,
        target: &Targets,
        content_weight: f32,
        style_weight: f32,
    ) -> (f64, f64, Vec<f32>) {
        let (features, kept) = self.run(image, h, w, true);
        let (mut content, mut style) = (0.0f64, 0.0f64);
        let mut seeds: Vec<Vec<f32>> = Vec::with_capacity(4);
        for (l, f) in features.iter().enumerate() {
            let mut seed = vec![0.0f32; f.data.len()];
            // Style: L = ‖G − T‖² / ‖T‖², G = F·Fᵀ / n, so ∂L/∂F = 4 (G − T) F / (n ‖T‖²).
            let g = gram(f);
            let t = target.grams[l];
            assert_eq!(t.len(), g.len(), "target Gram matrix of the wrong size");
            let norm = t.iter().map(|v| f64::from(v * v)).sum::<f64>() + 1e-12;
            let diff: Vec<f32> = g.iter().zip(t).map(|(a, b)| a - b).collect();
            style += diff.iter().map(|d| f64::from(d * d)).sum::<f64>() / norm;
            let n = (f.c * f.h * f.w) as f64;
            let scale = (4.0 * f64::from(style_weight) / (n * norm)) as f32;
            product(&diff, f, scale, &mut seed);
            if CONTENT.contains(&l) {
                // Content: L = ‖F − P‖² / ‖P‖², so ∂L/∂F = 2 (F − P) / ‖P‖².
                // Emphasised: L = Σ m (F − P)² / ‖P‖², ∂L/∂F = 2 m (F − P) / ‖P‖².
                let p = &target.photo[l].data;
                let norm = p.iter().map(|v| f64::from(v * v)).sum::<f64>() + 1e-6;
                let mut sum = 0.0f64;
                let scale = (2.0 * f64::from(content_weight) / norm) as f32;
                let weights = target
                    .content_emphasis
                    .map(|(map, k)| emphasis(map, h, w, k, f.h, f.w));
                let plane = f.h * f.w;
                for (i, ((s, &o), &p)) in seed.iter_mut().zip(&f.data).zip(p).enumerate() {
                    let d = o - p;
                    let m = weights.as_ref().map_or(1.0, |m| m[i % plane]);
                    sum += f64::from(m * d * d);
                    *s += scale * m * d;
                }
                content += sum / norm;
            }
            seeds.push(seed);
        }
        (content, style, self.backward(kept, seeds, h, w))
    }

    /// Forward pass; with `keep`, every convolution's (post-ReLU) output for the backward pass.
    fn run(&self, image: &[f32], h: usize, w: usize, keep: bool) -> (Vec<Planes>, Vec<Planes>) {
        assert_eq!(
            image.len(),
            3 * h * w,
            "image planes do not match their size"
        );
        let plane = h * w;
        let mut x = Planes {
            c: 3,
            h,
            w,
            data: vec![0.0; 3 * plane],
        };
        // RGB in [-1, 1] → BGR in 0..255 minus Caffe's means.
        for c in 0..3 {
            let from = &image[(2 - c) * plane..(3 - c) * plane];
            for (o, &v) in x.data[c * plane..(c + 1) * plane].iter_mut().zip(from) {
                *o = (v + 1.0) * 127.5 - BGR_MEAN[c];
            }
        }
        let (mut features, mut kept) = (Vec::with_capacity(4), Vec::new());
        for (i, conv) in self.convs.iter().enumerate() {
            let mut y = conv.apply(&x, false);
            y.data.iter_mut().for_each(|v| *v = v.max(0.0));
            if FEATURES.contains(&i) {
                features.push(y.clone());
            }
            x = if POOLED.contains(&i) {
                max_pool(&y)
            } else if keep {
                y.clone()
            } else {
                std::mem::replace(
                    &mut y,
                    Planes {
                        c: 0,
                        h: 0,
                        w: 0,
                        data: Vec::new(),
                    },
                )
            };
            if keep {
                kept.push(y);
            }
        }
        (features, kept)
    }

    /// The gradient with respect to the image from each feature's gradient (`seeds`), through the
    /// kept activations.
    fn backward(&self, kept: Vec<Planes>, seeds: Vec<Vec<f32>>, h: usize, w: usize) -> Vec<f32> {
        let mut seeds = seeds.into_iter().rev();
        let mut g: Option<Planes> = None;
        for (i, (conv, y)) in self.convs.iter().zip(&kept).enumerate().rev() {
            // ∂/∂y: from the layer above (through the pool, if any) plus this feature's own.
            let mut dy = match g.take() {
                Some(up) if POOLED.contains(&i) => unpool(&up, y),
                Some(up) => up,
                None => Planes {
                    c: y.c,
                    h: y.h,
                    w: y.w,
                    data: vec![0.0; y.data.len()],
                },
            };
            if FEATURES.contains(&i) {
                let seed = seeds.next().expect("a seed per feature");
                dy.data.iter_mut().zip(&seed).for_each(|(d, s)| *d += s);
            }
            // Through ReLU, then the convolution.
            dy.data.iter_mut().zip(&y.data).for_each(|(d, &v)| {
                if v <= 0.0 {
                    *d = 0.0
                }
            });
            g = Some(conv.apply(&dy, true));
        }
        let g = g.expect("VGG19 has convolutions");
        // BGR − means ← RGB in [-1, 1]: ∂/∂rgb[c] = 127.5 · ∂/∂bgr[2 − c].
        let plane = h * w;
        let mut out = vec![0.0; 3 * plane];
        for c in 0..3 {
            let from = &g.data[(2 - c) * plane..(3 - c) * plane];
            for (o, &v) in out[c * plane..(c + 1) * plane].iter_mut().zip(from) {
                *o = 127.5 * v;
            }
        }
        out
    }
}

/// A 3×3 convolution of `x` with zero padding 1 and stride 1: `weights` is `[tap][cin][cout]`,
/// computed as nine matrix products on shifted views of the padded planes, at the padded row
/// width (the two extra columns per row are dropped).
fn conv3x3(x: &Planes, cout: usize, weights: &[f32], bias: Option<&[f32]>) -> Planes {
    let (cin, h, w) = (x.c, x.h, x.w);
    assert_eq!(
        weights.len(),
        9 * cin * cout,
        "weights do not match the channels"
    );
    let wr = w + 2;
    let plane = (h + 2) * wr;
    // The last taps of the last chunk read up to 2 values past the last plane.
    let mut padded = vec![0.0f32; cin * plane + 2];
    for c in 0..cin {
        for y in 0..h {
            let at = c * plane + (y + 1) * wr + 1;
            padded[at..at + w].copy_from_slice(&x.data[(c * h + y) * w..(c * h + y + 1) * w]);
        }
    }
    let n = h * wr;
    let mut out = Planes {
        c: cout,
        h,
        w,
        data: vec![0.0; cout * h * w],
    };
    let dst = Shared(out.data.as_mut_ptr());
    let dst = &dst;
    let padded = &padded;
    // Equal chunks, a whole number per thread: VGG's deep layers are small (relu4_1 of a 128²
    // crop is 16×16), and one chunk of CHUNK columns would leave the other cores idle.
    let threads = threads();
    let chunks = n.div_ceil(CHUNK).div_ceil(threads) * threads;
    let size = n.div_ceil(chunks).div_ceil(16) * 16;
    par_map(n.div_ceil(size), |i| {
        let c0 = i * size;
        let nc = size.min(n - c0);
        with_scratch(cout * nc, |buf| {
            for tap in 0..9 {
                let at = (tap / 3) * wr + tap % 3 + c0;
                assert!(at + (cin - 1) * plane + nc <= padded.len());
                // SAFETY: buf is [cout, nc]; this tap's weights are [cout, cin] at column
                // stride cout; rhs is [cin, nc] from `at` with row stride `plane`, in bounds
                // (asserted).
                unsafe {
                    super::conv::matmul(
                        buf,
                        nc,
                        &weights[tap * cin * cout..],
                        (cout as isize, 1),
                        padded.as_ptr().add(at),
                        plane as isize,
                        (cout, cin),
                        tap > 0,
                    );
                }
            }
            for (co, src) in buf.chunks_exact(nc).enumerate() {
                let b = bias.map_or(0.0, |b| b[co]);
                let mut j = c0;
                while j < c0 + nc {
                    let (y, xr) = (j / wr, j % wr);
                    let end = (j - xr + wr).min(c0 + nc);
                    if xr < w {
                        let stop = (j - xr + w).min(end);
                        // SAFETY: each output pixel belongs to exactly one chunk.
                        unsafe { dst.write(co * h * w + y * w + xr, &src[j - c0..stop - c0], b) };
                    }
                    j = end;
                }
            }
        });
    });
    out
}

/// 2×2 max pooling, stride 2 (odd rows and columns dropped, as Burn's).
fn max_pool(x: &Planes) -> Planes {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut data = vec![0.0; x.c * h * w];
    for c in 0..x.c {
        let src = &x.data[c * x.h * x.w..];
        for y in 0..h {
            for i in 0..w {
                let at = 2 * y * x.w + 2 * i;
                data[(c * h + y) * w + i] = src[at]
                    .max(src[at + 1])
                    .max(src[at + x.w])
                    .max(src[at + x.w + 1]);
            }
        }
    }
    Planes { c: x.c, h, w, data }
}

/// Max pooling's backward: each of `up`'s values goes to its window's maximum in `x`.
fn unpool(up: &Planes, x: &Planes) -> Planes {
    let mut data = vec![0.0; x.data.len()];
    for c in 0..x.c {
        let base = c * x.h * x.w;
        for y in 0..up.h {
            for i in 0..up.w {
                let at = base + 2 * y * x.w + 2 * i;
                let window = [at, at + 1, at + x.w, at + x.w + 1];
                let best = window
                    .into_iter()
                    .reduce(|a, b| if x.data[b] > x.data[a] { b } else { a })
                    .expect("four positions");
                data[best] += up.data[(c * up.h + y) * up.w + i];
            }
        }
    }
    Planes {
        c: x.c,
        h: x.h,
        w: x.w,
        data,
    }
}

/// `F·Fᵀ / (c·h·w)`, `[c, c]`.
fn gram(f: &Planes) -> Vec<f32> {
    let (c, n) = (f.c, f.h * f.w);
    let mut out = vec![0.0f32; c * c];
    // SAFETY: out is [c, c]; F is [c, n] row-major, Fᵀ read with swapped strides.
    unsafe {
        gemm::gemm(
            c,
            c,
            n,
            out.as_mut_ptr(),
            1,
            c as isize,
            false,
            f.data.as_ptr(),
            1,
            n as isize,
            f.data.as_ptr(),
            n as isize,
            1,
            0.0,
            1.0 / (c * n) as f32,
            false,
            false,
            false,
            parallelism(),
        );
    }
    out
}

/// `out += scale · D·F` for a `[c, c]` matrix `D` and features `F` (`[c, h·w]`).
fn product(d: &[f32], f: &Planes, scale: f32, out: &mut [f32]) {
    let (c, n) = (f.c, f.h * f.w);
    assert!(d.len() == c * c && out.len() == c * n);
    // SAFETY: shapes asserted above; all row-major.
    unsafe {
        gemm::gemm(
            c,
            n,
            c,
            out.as_mut_ptr(),
            1,
            n as isize,
            true,
            d.as_ptr(),
            1,
            c as isize,
            f.data.as_ptr(),
            1,
            n as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism(),
        );
    }
}

fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    1
}

/// The Gram products are small next to the convolutions; one thread each.
fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::None
}
