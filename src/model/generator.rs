//! The image-to-image generator: encoder → residual blocks → decoder (Johnson / CycleGAN family).
//!
//! Reflect padding everywhere (no dark borders), instance norm, nearest-neighbour upsampling
//! followed by a convolution (no transposed-convolution checkerboard), tanh output in [-1, 1].
//! Fully convolutional: any height and width that are multiples of 4 (and at least 16).

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::norm::{NormStats, StatNorm};

/// The generator's shape. Stored in every style pack, so a pack says which network its weights fit.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Channels of the first layer; the encoder doubles them twice.
    pub width: usize,
    /// Residual blocks at a quarter of the input resolution.
    pub blocks: usize,
    /// Image channels in and out.
    #[config(default = 3)]
    pub channels: usize,
    /// Also feed the input image to the last convolution: a full-resolution skip connection that
    /// lets photographic looks (colour grades) keep the photo's fine detail, which the decoder
    /// alone rebuilds only softly from a quarter of the resolution. Off (`None`) in packs made
    /// before it existed.
    pub input_skip: Option<bool>,
}

/// Named generator sizes.
#[cfg_attr(
    all(feature = "cli", not(target_arch = "wasm32")),
    derive(clap::ValueEnum)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// About 0.2 M parameters: trains on two CPU cores.
    Tiny,
    /// About 0.5 M parameters: the default for shipped styles, fast in the browser.
    Small,
    /// The CycleGAN generator (about 11 M parameters), for GPUs.
    Large,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Tiny, Preset::Small, Preset::Large];

    pub fn generator(self) -> GeneratorConfig {
        match self {
            Preset::Tiny => GeneratorConfig::new(12, 5),
            Preset::Small => GeneratorConfig::new(16, 6),
            Preset::Large => GeneratorConfig::new(64, 9),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Large => "large",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset `{s}` (expected tiny, small or large)"))
    }
}

impl GeneratorConfig {
    /// Input sides must be multiples of this (two stride-2 downsamplings).
    pub const MULTIPLE: usize = 4;
    /// Smallest side the network accepts: reflect padding needs 2 pixels at the bottleneck.
    pub const MIN_SIDE: usize = 16;

    /// Whether the input image also feeds the last convolution (see `input_skip`).
    pub fn has_input_skip(&self) -> bool {
        self.input_skip.unwrap_or(false)
    }

    pub fn init(&self, device: &Device) -> Generator {
        let w = self.width;
        let skip = self.has_input_skip();
        let head_in = if skip { w + self.channels } else { w };
        Generator {
            stem: ConvNormRelu::new(self.channels, w, 7, 1, device),
            down1: ConvNormRelu::new(w, 2 * w, 3, 2, device),
            down2: ConvNormRelu::new(2 * w, 4 * w, 3, 2, device),
            blocks: (0..self.blocks)
                .map(|_| ResidualBlock::new(4 * w, device))
                .collect(),
            up1: ConvNormRelu::new(4 * w, 2 * w, 3, 1, device),
            up2: ConvNormRelu::new(2 * w, w, 3, 1, device),
            head: Conv2dConfig::new([head_in, self.channels], [7, 7]).init(device),
            input_skip: skip,
        }
    }

    /// How far, in input pixels, an output pixel can see. A tile needs this much context on each
    /// side for its interior to match the whole-image result.
    pub fn receptive_radius(&self) -> usize {
        // stem 3 + down 1 + down 2 + blocks 2·(1·4) each + up 2 + up 1 + head 3, plus the
        // nearest-neighbour upsampling's rounding (1 pixel at each of two scales).
        3 + 1 + 2 + 8 * self.blocks + 2 + 1 + 3 + 3
    }
}

/// Reflect-pad, convolve, instance-normalise, ReLU.
#[derive(Module, Debug)]
pub(crate) struct ConvNormRelu {
    pub(crate) conv: Conv2d,
    pub(crate) norm: StatNorm,
    pad: usize,
}

impl ConvNormRelu {
    fn new(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Valid)
                .init(device),
            norm: StatNorm::new(cout, device),
            pad: kernel / 2,
        }
    }

    fn forward(&self, x: Tensor<4>, stats: &mut NormStats) -> Tensor<4> {
        let x = self.conv.forward(reflect(x, self.pad));
        relu(self.norm.forward(x, stats))
    }
}

#[derive(Module, Debug)]
pub(crate) struct ResidualBlock {
    pub(crate) first: ConvNormRelu,
    pub(crate) conv: Conv2d,
    pub(crate) norm: StatNorm,
}

impl ResidualBlock {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            first: ConvNormRelu::new(channels, channels, 3, 1, device),
            conv: Conv2dConfig::new([channels, channels], [3, 3]).init(device),
            norm: StatNorm::new(channels, device),
        }
    }

    fn forward(&self, x: Tensor<4>, stats: &mut NormStats) -> Tensor<4> {
        let y = self.first.forward(x.clone(), stats);
        let y = self.norm.forward(self.conv.forward(reflect(y, 1)), stats);
        x + y
    }
}

/// Image-to-image generator; build it with [`GeneratorConfig::init`].
#[derive(Module, Debug)]
pub struct Generator {
    pub(crate) stem: ConvNormRelu,
    pub(crate) down1: ConvNormRelu,
    pub(crate) down2: ConvNormRelu,
    pub(crate) blocks: Vec<ResidualBlock>,
    pub(crate) up1: ConvNormRelu,
    pub(crate) up2: ConvNormRelu,
    pub(crate) head: Conv2d,
    pub(crate) input_skip: bool,
}

impl Generator {
    /// `[batch, channels, height, width]` in [-1, 1] → same shape in [-1, 1].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with(x, &mut NormStats::live())
    }

    /// Forward pass that records or replays instance-norm statistics (see [`NormStats`]).
    pub fn forward_with(&self, x: Tensor<4>, stats: &mut NormStats) -> Tensor<4> {
        stats.begin();
        let input = self.input_skip.then(|| x.clone());
        let x = self.stem.forward(x, stats);
        let x = self.down1.forward(x, stats);
        let mut x = self.down2.forward(x, stats);
        for block in &self.blocks {
            x = block.forward(x, stats);
        }
        let x = self.up1.forward(upsample(x), stats);
        let x = self.up2.forward(upsample(x), stats);
        let x = match input {
            Some(input) => Tensor::cat(vec![x, input], 1),
            None => x,
        };
        self.head.forward(reflect(x, 3)).tanh()
    }
}

fn reflect(x: Tensor<4>, pad: usize) -> Tensor<4> {
    if pad == 0 {
        return x;
    }
    x.pad((pad, pad, pad, pad), PadMode::Reflect)
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
