//! The textbook GAN of the spec: a generator that turns a noise vector z into a new image, and a
//! discriminator that judges whole images as real or generated.
//!
//! Generator (ProGAN/DCGAN family): z → pixel norm → linear → 4×4 feature map, then per doubling
//! of resolution a nearest-neighbour upsample and a 3×3 convolution (no transposed-convolution
//! checkerboard), leaky ReLU and pixel norm; a 3×3 convolution and tanh give the image. Pixel
//! norm needs no batch statistics, so one sample renders the same alone or in a batch.
//!
//! Discriminator: a 3×3 stem, stride-2 4×4 convolutions down to 4×4, a minibatch standard
//! deviation channel (it lets the discriminator see a batch that lacks variety, which fights mode
//! collapse), a 3×3 convolution and a linear layer to one logit per image. Every layer is
//! spectrally normalised (Miyato et al. 2018: each weight divided by its largest singular value),
//! which keeps the discriminator from overpowering the generator; without it the CPU preset
//! collapsed to one face within a few hundred steps.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::{conv2d, interpolate};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

pub(crate) const SLOPE: f64 = 0.2;

/// The noise generator's shape; stored in noise packs.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct LatentGeneratorConfig {
    /// Length of the noise vector z.
    pub latent: usize,
    /// Side of the square images it makes: 4 · 2^k, from 16 to 512.
    pub size: usize,
    /// Channels at full resolution; each halving of resolution doubles them, up to 8× this.
    pub width: usize,
    #[config(default = 3)]
    pub channels: usize,
}

/// A noise-generator shape this build cannot make, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

impl LatentGeneratorConfig {
    pub const SIZES: [usize; 6] = [16, 32, 64, 128, 256, 512];

    /// Whether the shape is one this build can make (and a pack may ask for).
    pub fn check(&self) -> Result<(), ShapeError> {
        if !Self::SIZES.contains(&self.size) {
            return Err(ShapeError(format!(
                "image size {} must be one of {:?}",
                self.size,
                Self::SIZES
            )));
        }
        if !(2..=1024).contains(&self.latent) {
            return Err(ShapeError(format!(
                "latent size {} must be 2–1024",
                self.latent
            )));
        }
        if !(1..=128).contains(&self.width) || self.channels != 3 {
            return Err(ShapeError(format!(
                "width {} / channels {} out of range (width 1–128, channels 3)",
                self.width, self.channels
            )));
        }
        Ok(())
    }

    /// Channels of the feature maps at resolution `side`.
    fn channels_at(&self, side: usize) -> usize {
        (self.width * self.size / side).min(8 * self.width)
    }

    pub fn init(&self, device: &Device) -> LatentGenerator {
        let base = self.channels_at(4);
        let mut ups = Vec::new();
        let mut side = 4;
        while side < self.size {
            ups.push(conv3(
                self.channels_at(side),
                self.channels_at(side * 2),
                device,
            ));
            side *= 2;
        }
        LatentGenerator {
            project: LinearConfig::new(self.latent, base * 16).init(device),
            base: conv3(base, base, device),
            ups,
            head: conv3(self.channels_at(self.size), self.channels, device),
        }
    }
}

/// Noise → image; build it with [`LatentGeneratorConfig::init`].
#[derive(Module, Debug)]
pub struct LatentGenerator {
    pub(crate) project: Linear,
    pub(crate) base: Conv2d,
    pub(crate) ups: Vec<Conv2d>,
    pub(crate) head: Conv2d,
}

impl LatentGenerator {
    /// Length of the noise vectors it takes.
    pub fn latent_size(&self) -> usize {
        self.project.weight.dims()[0]
    }

    /// `[batch, latent]` noise → `[batch, 3, size, size]` images in [-1, 1].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [batch, latent] = z.dims();
        let z = pixel_norm(z.reshape([batch, latent, 1, 1])).reshape([batch, latent]);
        let [_, base] = self.project.weight.dims();
        let x = act(self.project.forward(z).reshape([batch, base / 16, 4, 4]));
        let mut x = act(self.base.forward(x));
        for conv in &self.ups {
            x = act(conv.forward(upsample(x)));
        }
        self.head.forward(x).tanh()
    }
}

/// Leaky ReLU, then normalise each pixel's feature vector to unit mean square.
fn act(x: Tensor<4>) -> Tensor<4> {
    pixel_norm(leaky_relu(x, SLOPE))
}

fn pixel_norm(x: Tensor<4>) -> Tensor<4> {
    let scale = (x.clone().square().mean_dim(1) + 1e-8).sqrt();
    x / scale
}

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn upsample(x: Tensor<4>) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions {
            mode: InterpolateMode::Nearest,
            align_corners: false,
            output_size: None,
            scale_factor: Some([2.0, 2.0]),
        },
    )
}

/// The whole-image discriminator's shape.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct ImageDiscriminatorConfig {
    /// Side of the square images it judges (as [`LatentGeneratorConfig::size`]).
    pub size: usize,
    /// Channels at full resolution; doubled per halving, up to 8× this.
    pub width: usize,
    #[config(default = 3)]
    pub channels: usize,
}

impl ImageDiscriminatorConfig {
    fn channels_at(&self, side: usize) -> usize {
        (self.width * self.size / side).min(8 * self.width)
    }

    pub fn init(&self, device: &Device) -> ImageDiscriminator {
        let mut downs = Vec::new();
        let mut side = self.size;
        while side > 4 {
            let (cin, cout) = (self.channels_at(side), self.channels_at(side / 2));
            downs.push(SnConv::new(cin, cout, 4, 2, 1, device));
            side /= 2;
        }
        let base = self.channels_at(4);
        ImageDiscriminator {
            stem: SnConv::new(self.channels, self.channels_at(self.size), 3, 1, 1, device),
            downs,
            base: SnConv::new(base + 1, base, 3, 1, 1, device),
            head: SnLinear::new(base * 16, 1, device),
        }
    }
}

/// Whole image → one real/fake logit; build it with [`ImageDiscriminatorConfig::init`].
#[derive(Module, Debug)]
pub struct ImageDiscriminator {
    pub(crate) stem: SnConv,
    pub(crate) downs: Vec<SnConv>,
    pub(crate) base: SnConv,
    pub(crate) head: SnLinear,
}

impl ImageDiscriminator {
    /// `[batch, 3, size, size]` in [-1, 1] → `[batch, 1, 1, 1]` logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = leaky_relu(self.stem.forward(x), SLOPE);
        for conv in &self.downs {
            x = leaky_relu(conv.forward(x), SLOPE);
        }
        let x = minibatch_stddev(x);
        let x = leaky_relu(self.base.forward(x), SLOPE);
        let [batch, c, h, w] = x.dims();
        self.head
            .forward(x.reshape([batch, c * h * w]))
            .reshape([batch, 1, 1, 1])
    }
}

/// Power-iteration steps per forward pass for the largest singular value. The iteration starts
/// afresh each time (no state to checkpoint) from a fixed vector; weights move slowly, so a few
/// steps give a stable estimate.
pub(crate) const POWER_STEPS: usize = 4;

/// A convolution whose weight is divided by its spectral norm on every forward pass.
#[derive(Module, Debug)]
pub(crate) struct SnConv {
    pub(crate) weight: Param<Tensor<4>>,
    pub(crate) bias: Param<Tensor<1>>,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

impl SnConv {
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Self {
        let fan_in = cin * kernel * kernel;
        Self {
            weight: Initializer::Normal {
                mean: 0.0,
                std: (2.0 / fan_in as f64).sqrt(),
            }
            .init([cout, cin, kernel, kernel], device),
            bias: Initializer::Zeros.init([cout], device),
            stride,
            padding,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let w = self.weight.val();
        let [cout, cin, kh, kw] = w.dims();
        let sigma = spectral_norm(w.clone().reshape([cout, cin * kh * kw]));
        let options = ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1);
        conv2d(
            x,
            w / sigma.reshape([1, 1, 1, 1]),
            Some(self.bias.val()),
            options,
        )
    }
}

/// A linear layer (`[in, out]` weight) divided by its spectral norm on every forward pass.
#[derive(Module, Debug)]
pub(crate) struct SnLinear {
    pub(crate) weight: Param<Tensor<2>>,
    pub(crate) bias: Param<Tensor<1>>,
}

impl SnLinear {
    fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            weight: Initializer::Normal {
                mean: 0.0,
                std: (1.0 / d_in as f64).sqrt(),
            }
            .init([d_in, d_out], device),
            bias: Initializer::Zeros.init([d_out], device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let w = self.weight.val();
        let sigma = spectral_norm(w.clone());
        let [_, d_out] = w.dims();
        x.matmul(w / sigma) + self.bias.val().reshape([1, d_out])
    }
}

/// The largest singular value of `w` as a `[1, 1]` tensor; gradients flow through `w` only.
fn spectral_norm(w: Tensor<2>) -> Tensor<2> {
    let [_, n] = w.dims();
    let fixed = w.clone().detach();
    let mut v = unit(
        Tensor::<1>::from_data(
            burn::tensor::TensorData::new(power_start(n), [n]),
            &w.device(),
        )
        .reshape([n, 1]),
    );
    for _ in 0..POWER_STEPS {
        let u = unit(fixed.clone().matmul(v));
        v = unit(fixed.clone().transpose().matmul(u));
    }
    let u = unit(fixed.matmul(v.clone()));
    u.transpose().matmul(w.matmul(v))
}

/// The power iteration's fixed starting vector of length `n` (before normalising).
pub(crate) fn power_start(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.618_034 + 0.1).fract() - 0.5) * 2.0)
        .collect()
}

fn unit(t: Tensor<2>) -> Tensor<2> {
    let norm = (t.clone().square().sum() + 1e-12).sqrt().reshape([1, 1]);
    t / norm
}

/// Append one channel holding the batch's mean feature standard deviation.
fn minibatch_stddev(x: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let mean = x.clone().mean_dim(0);
    let std = ((x.clone() - mean).square().mean_dim(0) + 1e-8).sqrt();
    let spread = std.mean().reshape([1, 1, 1, 1]).expand([b, 1, h, w]);
    Tensor::cat(vec![x, spread], 1)
}

/// Spherical interpolation between two latent vectors (`t` in [0, 1]): the walk stays at the
/// norm a Gaussian vector has, where a straight line would pass through blander, low-norm z.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let dot = a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b));
    let omega = dot.clamp(-1.0, 1.0).acos();
    if omega.abs() < 1e-4 {
        return a.iter().zip(b).map(|(x, y)| x + (y - x) * t).collect();
    }
    let (wa, wb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn spectral_norm_finds_the_largest_singular_value() {
        let device = Device::flex();
        // Singular values 3, 1 (a rotation times diag(3, 1)); and a rank-one matrix with σ = 5.
        let (c, s) = (0.6f32, 0.8f32);
        let m = TensorData::new(vec![3.0 * c, -s, 3.0 * s, c], [2, 2]);
        let sigma: f32 = spectral_norm(Tensor::from_data(m, &device)).into_scalar();
        assert!((sigma - 3.0).abs() < 0.05, "{sigma}");
        let rank_one = TensorData::new(vec![3.0f32, 0.0, 4.0, 0.0, 0.0, 0.0], [3, 2]);
        let sigma: f32 = spectral_norm(Tensor::from_data(rank_one, &device)).into_scalar();
        assert!((sigma - 5.0).abs() < 1e-3, "{sigma}");
    }

    #[test]
    fn a_portrait_renders_the_same_alone_or_in_a_batch() {
        let device = Device::flex();
        let g = LatentGeneratorConfig::new(8, 16, 4).init(&device);
        let z: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let one: Vec<f32> = g
            .forward(Tensor::from_data(
                TensorData::new(z[..8].to_vec(), [1, 8]),
                &device,
            ))
            .into_data()
            .try_into_vec()
            .unwrap();
        let two: Vec<f32> = g
            .forward(Tensor::from_data(TensorData::new(z, [2, 8]), &device))
            .into_data()
            .try_into_vec()
            .unwrap();
        assert_eq!(one.len(), 3 * 16 * 16);
        assert!(one.iter().zip(&two).all(|(a, b)| (a - b).abs() < 1e-5));
        let d = ImageDiscriminatorConfig::new(16, 4).init(&device);
        let scores = d.forward(Tensor::zeros([3, 3, 16, 16], &device));
        assert_eq!(scores.dims(), [3, 1, 1, 1]);
    }
}
