//! PatchGAN discriminator: scores overlapping patches (70×70 pixels with three layers) as real or
//! fake, so it judges texture and style rather than global layout.

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};

use super::norm::{NormStats, StatNorm};

/// Zero padding on each side of every 4×4 convolution.
pub(crate) const PADDING: usize = 1;

#[derive(Config, Debug, PartialEq, Eq)]
pub struct DiscriminatorConfig {
    /// Channels of the first layer; each further layer doubles them, up to 8× this.
    pub width: usize,
    /// Stride-2 layers; 3 gives the classic 70×70 receptive field.
    #[config(default = 3)]
    pub layers: usize,
    #[config(default = 3)]
    pub channels: usize,
    /// Score maps out: one per style when a multi-style run judges each style apart.
    #[config(default = 1)]
    pub heads: usize,
}

#[derive(Module, Debug)]
struct Stage {
    conv: Conv2d,
    norm: Option<StatNorm>,
}

/// Build it with [`DiscriminatorConfig::init`].
#[derive(Module, Debug)]
pub struct Discriminator {
    stages: Vec<Stage>,
    head: Conv2d,
}

impl DiscriminatorConfig {
    pub fn init(&self, device: &Device) -> Discriminator {
        let conv = |cin: usize, cout: usize, stride: usize| {
            Conv2dConfig::new([cin, cout], [4, 4])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(
                    PADDING, PADDING, PADDING, PADDING,
                ))
                .init(device)
        };
        let width_at = |layer: usize| self.width * (1 << layer.min(3));
        let mut stages = vec![Stage {
            conv: conv(self.channels, self.width, 2),
            norm: None,
        }];
        for layer in 1..=self.layers {
            // The last stage keeps the resolution (stride 1), as in pix2pix/CycleGAN.
            let stride = if layer < self.layers { 2 } else { 1 };
            let cout = width_at(layer);
            stages.push(Stage {
                conv: conv(width_at(layer - 1), cout, stride),
                norm: Some(StatNorm::new(cout, device)),
            });
        }
        Discriminator {
            stages,
            head: conv(width_at(self.layers), self.heads, 1),
        }
    }
}

impl Discriminator {
    /// The convolutions in forward order: the stages', then the head.
    #[cfg(any(not(target_arch = "wasm32"), feature = "learn"))] // the CPU training path only
    pub(crate) fn convs(&self) -> impl Iterator<Item = &Conv2d> {
        self.stages.iter().map(|s| &s.conv).chain([&self.head])
    }

    /// The norm after each of [`Self::convs`] (none after the first stage and the head).
    #[cfg(any(not(target_arch = "wasm32"), feature = "learn"))] // the CPU training path only
    pub(crate) fn norms(&self) -> impl Iterator<Item = Option<&StatNorm>> {
        self.stages.iter().map(|s| s.norm.as_ref()).chain([None])
    }

    /// `[batch, channels, h, w]` images in [-1, 1] → `[batch, heads, h', w']` patch scores
    /// (logits).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut stats = NormStats::live();
        let mut x = x;
        for stage in &self.stages {
            x = stage.conv.forward(x);
            if let Some(norm) = &stage.norm {
                x = norm.forward(x, &mut stats);
            }
            x = leaky_relu(x, 0.2);
        }
        self.head.forward(x)
    }

    /// Each sample's scores from its own heads: `mix` is `[batch, heads]` (one-hot: the head of
    /// the sample's style) → `[batch, 1, h', w']`.
    pub fn forward_heads(&self, x: Tensor<4>, mix: &Tensor<2>) -> Tensor<4> {
        let scores = self.forward(x);
        let [batch, heads] = mix.dims();
        (scores * mix.clone().reshape([batch, heads, 1, 1])).sum_dim(1)
    }
}
