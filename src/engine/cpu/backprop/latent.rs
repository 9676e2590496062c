//! The noise GAN's training passes on the CPU: [`LatentGenerator`] (linear projection, 3×3
//! zero-padded convolutions, nearest ×2 upsampling, leaky ReLU with pixel norm, tanh) and
//! [`ImageDiscriminator`] (spectrally normalised convolutions and linear head, leaky ReLU, the
//! minibatch standard deviation channel), forward and backward. A batch runs in fixed groups of
//! samples, one group per core, each layer by layer over its samples: the stages whose outputs
//! fit several to an im2col chunk (4²) as one product over the group's samples side by side, the
//! others sample by sample. The
//! gradients are summed in fixed groups and orders, so a result does not depend on the core
//! count.

use burn::module::ParamId;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{
    ConvGrads, ConvWeights, Map, Padding, add_into, pad, pad_backward, upsample, upsample_backward,
};
use crate::engine::cpu::parallel::par_map;
use crate::engine::cpu::to_vec;
use crate::model::latent::{POWER_STEPS, SLOPE, SnConv, SnLinear, power_start};
use crate::model::{ImageDiscriminator, LatentGenerator};

const SLOPE_F32: f32 = SLOPE as f32;
/// Samples per group: one thread runs a group's passes and sums its weight gradients.
const GROUP: usize = 4;
/// Added to the mean square under pixel norm's root, and to the variance of the minibatch
/// standard deviation (as the model's).
const EPSILON: f32 = 1e-8;

/// A 3×3 (or any) convolution's weights read from Burn's module, and their parameter ids.
fn conv_weights(conv: &Conv2d) -> (ConvWeights, (ParamId, ParamId)) {
    let bias = conv
        .bias
        .as_ref()
        .expect("the noise GAN's convolutions have biases");
    (ConvWeights::of(conv), (conv.weight.id, bias.id))
}

/// Leaky ReLU, then pixel norm (each position's channel vector scaled to unit mean square), in
/// place; returns each position's `1 / scale`.
fn activate(x: &mut Map) -> Vec<f32> {
    leaky(x);
    pixel_norm(x)
}

/// Pixel norm in place; returns each position's `1 / scale`.
fn pixel_norm(x: &mut Map) -> Vec<f32> {
    let plane = x.plane();
    let mut squares = vec![0.0f32; plane];
    for channel in x.data.chunks_exact(plane) {
        for (s, &v) in squares.iter_mut().zip(channel) {
            *s += v * v;
        }
    }
    let inv: Vec<f32> = squares
        .iter()
        .map(|s| 1.0 / (s / x.c as f32 + EPSILON).sqrt())
        .collect();
    for channel in x.data.chunks_exact_mut(plane) {
        channel.iter_mut().zip(&inv).for_each(|(v, i)| *v *= i);
    }
    inv
}

/// The gradient through pixel norm (output `y`, `inv` its `1 / scale`), in place:
/// `dx = (g − y · mean_c(g · y)) · inv`.
fn pixel_norm_backward(g: &mut Map, y: &Map, inv: &[f32]) {
    let plane = y.plane();
    let mut dots = vec![0.0f32; plane];
    for (gc, yc) in g.data.chunks_exact(plane).zip(y.data.chunks_exact(plane)) {
        for ((d, &a), &b) in dots.iter_mut().zip(gc).zip(yc) {
            *d += a * b;
        }
    }
    let c = y.c as f32;
    for (gc, yc) in g
        .data
        .chunks_exact_mut(plane)
        .zip(y.data.chunks_exact(plane))
    {
        for (((gv, &yv), &d), &i) in gc.iter_mut().zip(yc).zip(&dots).zip(inv) {
            *gv = (*gv - yv * d / c) * i;
        }
    }
}

/// The gradient through leaky ReLU given its output `y`, in place.
fn leaky_backward(g: &mut [f32], y: &[f32]) {
    for (d, &v) in g.iter_mut().zip(y) {
        if v < 0.0 {
            *d *= SLOPE_F32;
        }
    }
}

fn leaky(x: &mut Map) {
    x.data.iter_mut().for_each(|v| {
        if *v < 0.0 {
            *v *= SLOPE_F32;
        }
    });
}

/// A [`LatentGenerator`]'s weights, read for training passes on the CPU.
pub struct LatentGeneratorGrad {
    latent: usize,
    /// Channels of the 4×4 map the projection makes.
    base: usize,
    /// The projection's `[latent, base · 16]` weight and its bias.
    project: (Vec<f32>, Vec<f32>),
    /// The 4×4 convolution, one per doubling, then the head.
    convs: Vec<ConvWeights>,
    /// `(weight, bias)`: the projection's, then each convolution's.
    ids: Vec<(ParamId, ParamId)>,
}

/// What a generator's forward pass kept for its backward pass, and its images.
pub struct LatentTape {
    samples: Vec<LatentSample>,
    side: usize,
}

struct LatentSample {
    /// The pixel-normalised noise (the projection's input).
    z: Vec<f32>,
    /// After each activation (the projection's, then each convolution's but the head's), and
    /// its pixel norm's `1 / scale`.
    acts: Vec<(Map, Vec<f32>)>,
    /// Each convolution's zero-padded input.
    padded: Vec<Map>,
    /// The image (after tanh).
    output: Vec<f32>,
}

/// A noise generator's weight gradients (summed over a batch).
pub struct LatentGrads {
    project: (Vec<f32>, Vec<f32>),
    conv: Vec<ConvGrads>,
}

impl LatentGeneratorGrad {
    pub fn new(g: &LatentGenerator) -> Self {
        let project = project_weights(&g.project);
        let mut ids = vec![project.1];
        let convs = std::iter::once(&g.base)
            .chain(&g.ups)
            .chain(std::iter::once(&g.head))
            .map(|c| {
                let (weights, id) = conv_weights(c);
                ids.push(id);
                weights
            })
            .collect::<Vec<_>>();
        let [latent, out] = g.project.weight.dims();
        Self {
            latent,
            base: out / 16,
            project: project.0,
            convs,
            ids,
        }
    }

    /// The images (`[3, side, side]` each) of the noise vectors `z`, and what the backward pass
    /// needs. Fixed groups of samples run in parallel, each layer by layer over its samples
    /// (their small first stages as one product).
    pub fn forward(&self, z: &[Vec<f32>]) -> LatentTape {
        let count = z.len();
        let groups = par_map(count.div_ceil(GROUP), |g| {
            self.forward_group(&z[g * GROUP..((g + 1) * GROUP).min(count)])
        });
        let side = 4 << (self.convs.len() - 2);
        LatentTape {
            samples: groups.into_iter().flatten().collect(),
            side,
        }
    }

    fn forward_group(&self, zs: &[Vec<f32>]) -> Vec<LatentSample> {
        let mut samples: Vec<LatentSample> = zs
            .iter()
            .map(|z| {
                assert_eq!(z.len(), self.latent, "noise of the wrong length");
                let scale =
                    1.0 / (z.iter().map(|v| v * v).sum::<f32>() / z.len() as f32 + EPSILON).sqrt();
                let z: Vec<f32> = z.iter().map(|v| v * scale).collect();
                let (weight, bias) = &self.project;
                let mut h = bias.clone();
                for (&zi, row) in z.iter().zip(weight.chunks_exact(bias.len())) {
                    h.iter_mut().zip(row).for_each(|(o, &w)| *o += zi * w);
                }
                let mut x = Map::new(self.base, 4, 4, h);
                let inv = activate(&mut x);
                LatentSample {
                    z,
                    acts: vec![(x, inv)],
                    padded: Vec::with_capacity(self.convs.len()),
                    output: Vec::new(),
                }
            })
            .collect();
        let last = self.convs.len() - 1;
        for (l, conv) in self.convs.iter().enumerate() {
            let padded: Vec<Map> = samples
                .iter()
                .map(|s| {
                    let x = &s.acts.last().expect("the projection's activation").0;
                    if l == 0 || l == last {
                        pad(x, 1, Padding::Zero)
                    } else {
                        pad(&upsample(x), 1, Padding::Zero)
                    }
                })
                .collect();
            let ys = conv.forward_group(&padded);
            for ((s, p), mut y) in samples.iter_mut().zip(padded).zip(ys) {
                s.padded.push(p);
                if l == last {
                    y.data.iter_mut().for_each(|v| *v = v.tanh());
                    s.output = y.data;
                } else {
                    let inv = activate(&mut y);
                    s.acts.push((y, inv));
                }
            }
        }
        samples
    }

    /// The weight gradients of a loss given its gradient with respect to each image.
    pub fn backward(&self, tape: &LatentTape, d_images: &[Vec<f32>]) -> LatentGrads {
        let count = d_images.len();
        assert_eq!(count, tape.samples.len(), "a gradient per image");
        assert!(count > 0, "a batch of at least one");
        // Fixed groups of samples, each summing into its own gradients in turn (fewer large
        // buffers to clear and add than one per sample; the same sums on any core count).
        let per_group = par_map(count.div_ceil(GROUP), |group| {
            let mut grads = self.zeros();
            let range = group * GROUP..((group + 1) * GROUP).min(count);
            self.backward_group(
                &tape.samples[range.clone()],
                &d_images[range],
                tape.side,
                &mut grads,
            );
            grads
        });
        let mut per_group = per_group.into_iter();
        let mut total = per_group.next().expect("a batch of at least one");
        for grads in per_group {
            total.add(&grads);
        }
        total
    }

    fn zeros(&self) -> LatentGrads {
        let (weight, bias) = &self.project;
        LatentGrads {
            project: (vec![0.0; weight.len()], vec![0.0; bias.len()]),
            conv: self.convs.iter().map(ConvGrads::zeros).collect(),
        }
    }

    /// Adds a group of samples' weight gradients into `grads`, layer by layer over the group.
    fn backward_group(
        &self,
        samples: &[LatentSample],
        d_images: &[Vec<f32>],
        side: usize,
        grads: &mut LatentGrads,
    ) {
        let last = self.convs.len() - 1;
        let mut gs: Vec<Map> = samples
            .iter()
            .zip(d_images)
            .map(|(s, d_image)| {
                let data = d_image
                    .iter()
                    .zip(&s.output)
                    .map(|(d, y)| d * (1.0 - y * y))
                    .collect();
                Map::new(self.convs[last].cout, side, side, data)
            })
            .collect();
        for l in (0..=last).rev() {
            if l < last {
                for (g, s) in gs.iter_mut().zip(samples) {
                    let (y, inv) = &s.acts[l + 1];
                    pixel_norm_backward(g, y, inv);
                    leaky_backward(&mut g.data, &y.data);
                }
            }
            let xs: Vec<&Map> = samples.iter().map(|s| &s.padded[l]).collect();
            let dps = self.convs[l].backward_group(&xs, &gs, &mut grads.conv[l], true, true);
            gs = dps
                .iter()
                .map(|dp| {
                    let g = pad_backward(dp, 1, Padding::Zero);
                    if l > 0 && l < last {
                        upsample_backward(&g)
                    } else {
                        g
                    }
                })
                .collect();
        }
        for (g, s) in gs.iter_mut().zip(samples) {
            let (y, inv) = &s.acts[0];
            pixel_norm_backward(g, y, inv);
            leaky_backward(&mut g.data, &y.data);
            let (weight, bias) = &mut grads.project;
            let out = g.data.len();
            for (&zi, row) in s.z.iter().zip(weight.chunks_exact_mut(out)) {
                row.iter_mut().zip(&g.data).for_each(|(w, &d)| *w += zi * d);
            }
            add_into(bias, &g.data);
        }
    }

    /// The side of a forward pass's images.
    pub fn side(tape: &LatentTape) -> usize {
        tape.side
    }

    /// The images of a forward pass, `[3, side, side]` each.
    pub fn images(tape: &LatentTape) -> Vec<Vec<f32>> {
        tape.samples.iter().map(|s| s.output.clone()).collect()
    }
}

fn project_weights(linear: &Linear) -> ((Vec<f32>, Vec<f32>), (ParamId, ParamId)) {
    let bias = linear
        .bias
        .as_ref()
        .expect("the noise generator's projection has a bias");
    (
        (to_vec(linear.weight.val()), to_vec(bias.val())),
        (linear.weight.id, bias.id),
    )
}

impl LatentGrads {
    pub fn add(&mut self, other: &LatentGrads) {
        add_into(&mut self.project.0, &other.project.0);
        add_into(&mut self.project.1, &other.project.1);
        for (a, b) in self.conv.iter_mut().zip(&other.conv) {
            a.add(b);
        }
    }

    /// Burn's gradients of the generator's parameters, on `device` (the training device).
    pub fn into_params(self, of: &LatentGeneratorGrad, device: &Device) -> GradientsParams {
        let device = device.clone().inner();
        let mut params = GradientsParams::new();
        let (weight, bias) = self.project;
        let out = bias.len();
        let (w_id, b_id) = of.ids[0];
        params.register(
            w_id,
            Tensor::<2>::from_data(TensorData::new(weight, [of.latent, out]), &device),
        );
        params.register(
            b_id,
            Tensor::<1>::from_data(TensorData::new(bias, [out]), &device),
        );
        register_convs(&mut params, self.conv, &of.convs, &of.ids[1..], &device);
        params
    }
}

fn register_convs(
    params: &mut GradientsParams,
    grads: Vec<ConvGrads>,
    convs: &[ConvWeights],
    ids: &[(ParamId, ParamId)],
    device: &Device,
) {
    for ((grads, c), (w, b)) in grads.into_iter().zip(convs).zip(ids) {
        params.register(
            *w,
            Tensor::<4>::from_data(
                TensorData::new(grads.weight, [c.cout, c.cin, c.k, c.k]),
                device,
            ),
        );
        params.register(
            *b,
            Tensor::<1>::from_data(TensorData::new(grads.bias, [c.cout]), device),
        );
    }
}

/// A weight's largest singular value by the model's power iteration, and its singular vectors
/// (`σ = uᵀ W v`; the model treats `u` and `v` as constants, so `∂σ/∂W = u vᵀ`).
struct Spectrum {
    sigma: f32,
    u: Vec<f32>,
    v: Vec<f32>,
}

fn unit(mut t: Vec<f32>) -> Vec<f32> {
    let norm = (t.iter().map(|v| v * v).sum::<f32>() + 1e-12).sqrt();
    t.iter_mut().for_each(|v| *v /= norm);
    t
}

/// `[m, n]` row-major `w` times `v` (`[n]`).
fn times(w: &[f32], v: &[f32]) -> Vec<f32> {
    w.chunks_exact(v.len())
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

/// `wᵀ u` for `[m, n]` row-major `w` and `u` (`[m]`).
fn times_transposed(w: &[f32], u: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    for (row, &ui) in w.chunks_exact(n).zip(u) {
        out.iter_mut().zip(row).for_each(|(o, &a)| *o += ui * a);
    }
    out
}

impl Spectrum {
    /// As `spectral_norm` in the model, of `w` as an `[m, n]` matrix.
    fn of(w: &[f32], n: usize) -> Self {
        let mut v = unit(power_start(n));
        for _ in 0..POWER_STEPS {
            let u = unit(times(w, &v));
            v = unit(times_transposed(w, &u, n));
        }
        let u = unit(times(w, &v));
        let sigma = u.iter().zip(times(w, &v)).map(|(a, b)| a * b).sum();
        Self { sigma, u, v }
    }

    /// The gradient of the raw weight `w` from that of `w / σ`:
    /// `d/σ − (⟨d, w⟩ / σ²) u vᵀ`.
    fn backward(&self, w: &[f32], d_normed: &mut [f32]) {
        let inner: f32 = d_normed.iter().zip(w).map(|(a, b)| a * b).sum();
        let k = inner / (self.sigma * self.sigma);
        let n = self.v.len();
        for (row, &ui) in d_normed.chunks_exact_mut(n).zip(&self.u) {
            for (d, &vj) in row.iter_mut().zip(&self.v) {
                *d = *d / self.sigma - k * ui * vj;
            }
        }
    }
}

/// An [`ImageDiscriminator`]'s weights (divided by their spectral norms), read for training
/// passes on the CPU.
pub struct ImageDiscriminatorGrad {
    /// The stem, the stride-2 convolutions, then the 4×4 base (after the minibatch channel).
    convs: Vec<ConvWeights>,
    /// The head's `[features]` weight (one logit) and bias.
    head: (Vec<f32>, f32),
    /// Per layer (the head last): the raw weight and its spectrum.
    raw: Vec<(Vec<f32>, Spectrum)>,
    ids: Vec<(ParamId, ParamId)>,
}

/// What a discriminator's forward pass kept for its backward pass, and its scores.
pub struct ImageTape {
    samples: Vec<ImageSample>,
    /// Per feature of the map before the minibatch channel: the batch's mean and standard
    /// deviation.
    mean: Vec<f32>,
    std: Vec<f32>,
    scores: Vec<f32>,
}

#[derive(Default)]
struct ImageSample {
    /// Each convolution's zero-padded input and its output after leaky ReLU.
    padded: Vec<Map>,
    acts: Vec<Map>,
}

/// A discriminator's weight gradients (summed over a batch).
pub struct ImageGrads {
    conv: Vec<ConvGrads>,
    head: (Vec<f32>, f32),
}

impl ImageDiscriminatorGrad {
    pub fn new(d: &ImageDiscriminator) -> Self {
        let mut convs = Vec::new();
        let mut raw = Vec::new();
        let mut ids = Vec::new();
        for c in std::iter::once(&d.stem)
            .chain(&d.downs)
            .chain(std::iter::once(&d.base))
        {
            let (weights, spectrum, id) = sn_conv(c);
            let normed = weights.weight.iter().map(|w| w / spectrum.sigma).collect();
            convs.push(ConvWeights::new(
                (weights.cin, weights.cout, weights.k, weights.stride),
                normed,
                weights.bias.clone(),
            ));
            raw.push((weights.weight, spectrum));
            ids.push(id);
        }
        let (weight, bias, id) = sn_linear(&d.head);
        let spectrum = Spectrum::of(&weight, 1);
        let head = (weight.iter().map(|w| w / spectrum.sigma).collect(), bias);
        raw.push((weight, spectrum));
        ids.push(id);
        Self {
            convs,
            head,
            raw,
            ids,
        }
    }

    /// Each image's logit (`images`: `[3, side, side]` each), and what the backward pass needs.
    /// Fixed groups of samples run in parallel, each layer by layer over its samples (their
    /// small last stages as one product).
    pub fn forward(&self, images: &[Vec<f32>], side: usize) -> ImageTape {
        let base = self.convs.len() - 1;
        let count = images.len();
        let groups = par_map(count.div_ceil(GROUP), |g| {
            let range = g * GROUP..((g + 1) * GROUP).min(count);
            let mut samples: Vec<ImageSample> =
                range.clone().map(|_| ImageSample::default()).collect();
            for (l, conv) in self.convs[..base].iter().enumerate() {
                let padded: Vec<Map> = samples
                    .iter()
                    .zip(&images[range.clone()])
                    .map(|(s, image)| match s.acts.last() {
                        Some(x) => pad(x, 1, Padding::Zero),
                        None => {
                            debug_assert_eq!(l, 0);
                            let x = Map::new(self.convs[0].cin, side, side, image.clone());
                            pad(&x, 1, Padding::Zero)
                        }
                    })
                    .collect();
                let ys = conv.forward_group(&padded);
                for ((s, p), mut y) in samples.iter_mut().zip(padded).zip(ys) {
                    leaky(&mut y);
                    s.padded.push(p);
                    s.acts.push(y);
                }
            }
            samples
        });
        let mut samples: Vec<ImageSample> = groups.into_iter().flatten().collect();
        // The minibatch standard deviation, one number for the whole batch.
        let batch = samples.len() as f32;
        fn features(s: &ImageSample) -> &[f32] {
            &s.acts[s.acts.len() - 1].data
        }
        let n = features(&samples[0]).len();
        let mut mean = vec![0.0f32; n];
        for s in &samples {
            add_into(&mut mean, features(s));
        }
        mean.iter_mut().for_each(|m| *m /= batch);
        let mut var = vec![0.0f32; n];
        for s in &samples {
            for ((v, &x), &m) in var.iter_mut().zip(features(s)).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        let std: Vec<f32> = var.iter().map(|v| (v / batch + EPSILON).sqrt()).collect();
        let spread = std.iter().sum::<f32>() / n as f32;
        let tails = par_map(count.div_ceil(GROUP), |g| {
            let range = g * GROUP..((g + 1) * GROUP).min(count);
            let padded: Vec<Map> = samples[range]
                .iter()
                .map(|s| {
                    let f = &s.acts[base - 1];
                    let mut with = f.data.clone();
                    with.extend(std::iter::repeat_n(spread, f.plane()));
                    pad(&Map::new(f.c + 1, f.h, f.w, with), 1, Padding::Zero)
                })
                .collect();
            let ys = self.convs[base].forward_group(&padded);
            padded
                .into_iter()
                .zip(ys)
                .map(|(p, mut y)| {
                    leaky(&mut y);
                    let score = y
                        .data
                        .iter()
                        .zip(&self.head.0)
                        .map(|(a, b)| a * b)
                        .sum::<f32>()
                        + self.head.1;
                    (p, y, score)
                })
                .collect::<Vec<_>>()
        });
        let mut scores = Vec::with_capacity(samples.len());
        for (s, (p, y, score)) in samples.iter_mut().zip(tails.into_iter().flatten()) {
            s.padded.push(p);
            s.acts.push(y);
            scores.push(score);
        }
        ImageTape {
            samples,
            mean,
            std,
            scores,
        }
    }

    /// The gradients of a loss given its gradient with respect to each image's logit: the
    /// weights' (when `weights`) and, with `inputs`, the images'.
    pub fn backward(
        &self,
        tape: &ImageTape,
        d_scores: &[f32],
        weights: bool,
        inputs: bool,
    ) -> (Option<ImageGrads>, Vec<Vec<f32>>) {
        let count = tape.samples.len();
        assert_eq!(d_scores.len(), count, "a gradient per score");
        let base = self.convs.len() - 1;
        let zeros = || ImageGrads {
            conv: self.convs.iter().map(ConvGrads::zeros).collect(),
            head: (vec![0.0; self.head.0.len()], 0.0),
        };
        // Fixed groups of samples (as the generator's backward pass), each summing its weight
        // gradients into one set: fewer large buffers to clear and add than one per sample.
        let groups = count.div_ceil(GROUP);
        let group = |g: usize| g * GROUP..((g + 1) * GROUP).min(count);
        // The head and the base convolution, to the features and the minibatch channel.
        let tails = par_map(groups, |g| {
            let mut grads = zeros();
            let dys: Vec<Map> = group(g)
                .map(|i| {
                    let y = &tape.samples[i].acts[base];
                    let ds = d_scores[i];
                    if weights {
                        grads
                            .head
                            .0
                            .iter_mut()
                            .zip(&y.data)
                            .for_each(|(g, &v)| *g += v * ds);
                        grads.head.1 += ds;
                    }
                    let data = self.head.0.iter().map(|w| w * ds).collect();
                    let mut g = Map::new(y.c, y.h, y.w, data);
                    leaky_backward(&mut g.data, &y.data);
                    g
                })
                .collect();
            let xs: Vec<&Map> = group(g).map(|i| &tape.samples[i].padded[base]).collect();
            let dps =
                self.convs[base].backward_group(&xs, &dys, &mut grads.conv[base], weights, true);
            let per_sample: Vec<(Map, f32)> = dps
                .iter()
                .map(|dp| {
                    let mut d = pad_backward(dp, 1, Padding::Zero);
                    let plane = d.plane();
                    let spread: f32 = d.data[(d.c - 1) * plane..].iter().sum();
                    d.data.truncate((d.c - 1) * plane);
                    d.c -= 1;
                    (d, spread)
                })
                .collect();
            (grads, per_sample)
        });
        let spread: f32 = tails.iter().flat_map(|t| &t.1).map(|t| t.1).sum();
        let n = tape.mean.len() as f32;
        let fronts = par_map(groups, |gi| {
            let mut grads = zeros();
            let mut gs: Vec<Map> = group(gi)
                .zip(&tails[gi].1)
                .map(|(i, (d, _))| {
                    let s = &tape.samples[i];
                    let mut g = d.clone();
                    // ∂spread/∂x = (x − mean) / (n · batch · std), per feature.
                    let k = spread / (n * count as f32);
                    for (((d, &x), &m), &sd) in g
                        .data
                        .iter_mut()
                        .zip(&s.acts[base - 1].data)
                        .zip(&tape.mean)
                        .zip(&tape.std)
                    {
                        *d += k * (x - m) / sd;
                    }
                    g
                })
                .collect();
            for l in (0..base).rev() {
                for (g, i) in gs.iter_mut().zip(group(gi)) {
                    leaky_backward(&mut g.data, &tape.samples[i].acts[l].data);
                }
                let need_input = l > 0 || inputs;
                let xs: Vec<&Map> = group(gi).map(|i| &tape.samples[i].padded[l]).collect();
                let dps =
                    self.convs[l].backward_group(&xs, &gs, &mut grads.conv[l], weights, need_input);
                if !need_input {
                    return (grads, Vec::new());
                }
                gs = dps
                    .iter()
                    .map(|dp| pad_backward(dp, 1, Padding::Zero))
                    .collect();
            }
            (grads, gs.into_iter().map(|g| g.data).collect())
        });
        let mut images = Vec::new();
        let mut total: Option<ImageGrads> = None;
        for ((front, group_images), (tail, _)) in fronts.into_iter().zip(&tails) {
            images.extend(group_images);
            if weights {
                let t = total.get_or_insert_with(zeros);
                t.add(&front);
                t.add(tail);
            }
        }
        (total, images)
    }
}

fn sn_conv(c: &SnConv) -> (ConvWeights, Spectrum, (ParamId, ParamId)) {
    let [cout, cin, k, _] = c.weight.dims();
    let weight = to_vec(c.weight.val());
    let spectrum = Spectrum::of(&weight, cin * k * k);
    assert_eq!(c.padding, 1, "the noise discriminator pads by one");
    (
        ConvWeights::new((cin, cout, k, c.stride), weight, to_vec(c.bias.val())),
        spectrum,
        (c.weight.id, c.bias.id),
    )
}

fn sn_linear(l: &SnLinear) -> (Vec<f32>, f32, (ParamId, ParamId)) {
    let [_, out] = l.weight.dims();
    assert_eq!(out, 1, "the noise discriminator gives one logit");
    let bias = to_vec(l.bias.val());
    (to_vec(l.weight.val()), bias[0], (l.weight.id, l.bias.id))
}

impl ImageTape {
    /// Each image's logit.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl ImageGrads {
    pub fn add(&mut self, other: &ImageGrads) {
        for (a, b) in self.conv.iter_mut().zip(&other.conv) {
            a.add(b);
        }
        add_into(&mut self.head.0, &other.head.0);
        self.head.1 += other.head.1;
    }

    /// Burn's gradients of the discriminator's raw (not normalised) parameters, on `device`.
    pub fn into_params(mut self, of: &ImageDiscriminatorGrad, device: &Device) -> GradientsParams {
        let device = device.clone().inner();
        for (grads, (w, spectrum)) in self.conv.iter_mut().zip(&of.raw) {
            spectrum.backward(w, &mut grads.weight);
        }
        let (w, spectrum) = of.raw.last().expect("the head's weight");
        spectrum.backward(w, &mut self.head.0);
        let mut params = GradientsParams::new();
        let count = self.conv.len();
        register_convs(&mut params, self.conv, &of.convs, &of.ids[..count], &device);
        let (w_id, b_id) = of.ids[count];
        let n = self.head.0.len();
        params.register(
            w_id,
            Tensor::<2>::from_data(TensorData::new(self.head.0, [n, 1]), &device),
        );
        params.register(
            b_id,
            Tensor::<1>::from_data(TensorData::new(vec![self.head.1], [1]), &device),
        );
        params
    }
}
