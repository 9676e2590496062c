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
//! collapse), a 3×3 convolution and a linear layer to one logit per image.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

const SLOPE: f64 = 0.2;

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

impl LatentGeneratorConfig {
    pub const SIZES: [usize; 6] = [16, 32, 64, 128, 256, 512];

    /// Whether the shape is one this build can make (and a pack may ask for).
    pub fn check(&self) -> Result<(), String> {
        if !Self::SIZES.contains(&self.size) {
            return Err(format!(
                "image size {} must be one of {:?}",
                self.size,
                Self::SIZES
            ));
        }
        if !(2..=1024).contains(&self.latent) {
            return Err(format!("latent size {} must be 2–1024", self.latent));
        }
        if !(1..=128).contains(&self.width) || self.channels != 3 {
            return Err(format!(
                "width {} / channels {} out of range (width 1–128, channels 3)",
                self.width, self.channels
            ));
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
    project: Linear,
    base: Conv2d,
    ups: Vec<Conv2d>,
    head: Conv2d,
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
            downs.push(
                Conv2dConfig::new([self.channels_at(side), self.channels_at(side / 2)], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            side /= 2;
        }
        let base = self.channels_at(4);
        ImageDiscriminator {
            stem: conv3(self.channels, self.channels_at(self.size), device),
            downs,
            base: conv3(base + 1, base, device),
            head: LinearConfig::new(base * 16, 1).init(device),
        }
    }
}

/// Whole image → one real/fake logit; build it with [`ImageDiscriminatorConfig::init`].
#[derive(Module, Debug)]
pub struct ImageDiscriminator {
    stem: Conv2d,
    downs: Vec<Conv2d>,
    base: Conv2d,
    head: Linear,
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
