//! The image-to-image generator: encoder → residual blocks → decoder (Johnson / CycleGAN family).
//!
//! Reflect padding everywhere (no dark borders), instance norm, nearest-neighbour upsampling
//! followed by a convolution (no transposed-convolution checkerboard), tanh output in [-1, 1].
//! Fully convolutional: any height and width that are multiples of 4 (and at least 16).
//!
//! The layer sequence is written once, in [`GeneratorConfig::layers`]; everything that runs or
//! measures the network walks that table.

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use super::layers::{Activation, Layer, Residual};
use super::norm::{NormStats, StatNorm};
use super::styles::StyleTable;

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
    /// Styles the one network holds (conditional instance norm: every style has its own offsets
    /// of each norm layer's scale and shift; the convolutions are shared). `None`: one style,
    /// as in packs made before multi-style networks.
    pub styles: Option<usize>,
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

    /// How many styles the network holds (1 unless it is a multi-style network).
    pub fn style_count(&self) -> usize {
        self.styles.unwrap_or(1)
    }

    /// Channels of each norm layer, in forward order (the rows of a [`StyleTable`]).
    pub fn norm_channels(&self) -> Vec<usize> {
        self.layers()
            .iter()
            .filter(|l| l.norm.is_some())
            .map(|l| l.cout)
            .collect()
    }

    /// The network, layer by layer in forward order: its one description. Burn's forward pass,
    /// the CPU engine, the receptive radius and the SafeTensors export (which the PyTorch
    /// reference in `bench/reference` builds its network from) all walk this list.
    pub fn layers(&self) -> Vec<Layer> {
        let (w, c) = (self.width, self.channels);
        let conv_norm_relu = |name: &str, cin, cout, kernel, stride| Layer {
            conv: format!("{name}.conv"),
            norm: Some(format!("{name}.norm")),
            cin,
            cout,
            kernel,
            stride,
            pad: kernel / 2,
            upsample: false,
            concat_input: false,
            activation: Activation::Relu,
            residual: Residual::None,
        };
        let mut layers = vec![
            conv_norm_relu("stem", c, w, 7, 1),
            conv_norm_relu("down1", w, 2 * w, 3, 2),
            conv_norm_relu("down2", 2 * w, 4 * w, 3, 2),
        ];
        for i in 0..self.blocks {
            let block = format!("blocks.{i}");
            layers.push(Layer {
                residual: Residual::Open,
                ..conv_norm_relu(&format!("{block}.first"), 4 * w, 4 * w, 3, 1)
            });
            layers.push(Layer {
                conv: format!("{block}.conv"),
                norm: Some(format!("{block}.norm")),
                activation: Activation::None,
                residual: Residual::Close,
                ..conv_norm_relu("", 4 * w, 4 * w, 3, 1)
            });
        }
        for (name, cin, cout) in [("up1", 4 * w, 2 * w), ("up2", 2 * w, w)] {
            layers.push(Layer {
                upsample: true,
                ..conv_norm_relu(name, cin, cout, 3, 1)
            });
        }
        let skip = self.has_input_skip();
        layers.push(Layer {
            conv: "head".into(),
            norm: None,
            cin: if skip { w + c } else { w },
            concat_input: skip,
            activation: Activation::Tanh,
            ..conv_norm_relu("", w, c, 7, 1)
        });
        layers
    }

    pub fn init(&self, device: &Device) -> Generator {
        let layers = self.layers();
        let layer = |conv: &str| {
            layers
                .iter()
                .find(|l| l.conv == conv)
                .unwrap_or_else(|| panic!("the generator has a layer `{conv}`"))
        };
        let part = |name: &str| ConvNormRelu::new(layer(&format!("{name}.conv")), device);
        Generator {
            stem: part("stem"),
            down1: part("down1"),
            down2: part("down2"),
            blocks: (0..self.blocks)
                .map(|i| {
                    let second = layer(&format!("blocks.{i}.conv"));
                    ResidualBlock {
                        first: part(&format!("blocks.{i}.first")),
                        conv: second.init_conv(device),
                        norm: StatNorm::new(second.cout, device),
                    }
                })
                .collect(),
            up1: part("up1"),
            up2: part("up2"),
            head: layer("head").init_conv(device),
            input_skip: self.has_input_skip(),
            styles: self
                .styles
                .map(|n| StyleTable::new(n, &self.norm_channels(), device)),
        }
    }

    /// How far, in input pixels, an output pixel can see. A tile needs this much context on each
    /// side for its interior to match the whole-image result.
    pub fn receptive_radius(&self) -> usize {
        // `scale`: input pixels per pixel of the layer's input.
        let (mut radius, mut scale) = (0, 1);
        for layer in self.layers() {
            if layer.upsample {
                scale /= 2;
                // Nearest-neighbour upsampling rounds positions down: one more pixel.
                radius += scale;
            }
            radius += layer.pad * scale;
            scale *= layer.stride;
        }
        radius
    }
}

/// Convolution, instance norm (ReLU is the table's to apply).
#[derive(Module, Debug)]
pub(crate) struct ConvNormRelu {
    pub(crate) conv: Conv2d,
    pub(crate) norm: StatNorm,
    pad: usize,
}

impl ConvNormRelu {
    fn new(layer: &Layer, device: &Device) -> Self {
        Self {
            conv: layer.init_conv(device),
            norm: StatNorm::new(layer.cout, device),
            pad: layer.pad,
        }
    }
}

#[derive(Module, Debug)]
pub(crate) struct ResidualBlock {
    pub(crate) first: ConvNormRelu,
    pub(crate) conv: Conv2d,
    pub(crate) norm: StatNorm,
}

/// Image-to-image generator; build it with [`GeneratorConfig::init`]. Its fields hold the weights
/// under the module paths that packs and checkpoints store; the computation is the table of
/// [`GeneratorConfig::layers`], which finds each layer's weights by path ([`Generator::part`]).
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
    /// Multi-style networks: each style's offsets of the norms' scales and shifts.
    pub(crate) styles: Option<StyleTable>,
}

/// The weights a layer table entry names, as `&` or `&mut` (one match for both).
macro_rules! find_part {
    ($g:expr, $layer:expr $(, $mut:tt)?) => {{
        let layer: &Layer = $layer;
        let path: Vec<&str> = layer.conv.split('.').collect();
        let missing = || -> ! { panic!("no generator layer `{}`", layer.conv) };
        match path.as_slice() {
            ["stem", "conv"] => (&$($mut)? $g.stem.conv, Some(&$($mut)? $g.stem.norm)),
            ["down1", "conv"] => (&$($mut)? $g.down1.conv, Some(&$($mut)? $g.down1.norm)),
            ["down2", "conv"] => (&$($mut)? $g.down2.conv, Some(&$($mut)? $g.down2.norm)),
            ["up1", "conv"] => (&$($mut)? $g.up1.conv, Some(&$($mut)? $g.up1.norm)),
            ["up2", "conv"] => (&$($mut)? $g.up2.conv, Some(&$($mut)? $g.up2.norm)),
            ["blocks", i, rest @ ..] => {
                let i: usize = i.parse().unwrap_or_else(|_| missing());
                let block = &$($mut)? $g.blocks[i];
                match rest {
                    ["first", "conv"] => (&$($mut)? block.first.conv, Some(&$($mut)? block.first.norm)),
                    ["conv"] => (&$($mut)? block.conv, Some(&$($mut)? block.norm)),
                    _ => missing(),
                }
            }
            ["head"] => (&$($mut)? $g.head, None),
            _ => missing(),
        }
    }};
}

impl Generator {
    /// The shape these weights have.
    pub fn config(&self) -> GeneratorConfig {
        let [width, channels, _, _] = self.stem.conv.weight.dims();
        GeneratorConfig::new(width, self.blocks.len())
            .with_channels(channels)
            .with_input_skip(Some(self.input_skip))
            .with_styles(self.styles.as_ref().map(StyleTable::len))
    }

    /// The convolution and norm a table entry names.
    pub(crate) fn part(&self, layer: &Layer) -> (&Conv2d, Option<&StatNorm>) {
        let (conv, norm) = find_part!(self, layer);
        debug_assert_eq!(norm.is_some(), layer.norm.is_some(), "{}", layer.conv);
        (conv, norm)
    }

    fn part_mut(&mut self, layer: &Layer) -> (&mut Conv2d, Option<&mut StatNorm>) {
        find_part!(self, layer, mut)
    }

    /// The one-style network of a mix of this network's styles: `weights[s]` is style `s`'s
    /// share (they should sum to 1; a convex mix blends the styles in norm-parameter space).
    /// The result runs on every path (Burn, the CPU engine, the browser) like any one-style
    /// network. A one-style network is returned as it is.
    pub fn with_style(&self, weights: &[f32]) -> Generator {
        let mut g = self.clone();
        let Some(table) = g.styles.take() else {
            return g;
        };
        let device = g.stem.conv.weight.device();
        let mix = Tensor::<2>::from_data(
            TensorData::new(weights.to_vec(), [1, weights.len()]),
            &device,
        );
        let norms = self
            .config()
            .layers()
            .into_iter()
            .filter(|l| l.norm.is_some());
        for (k, layer) in norms.enumerate() {
            let (d_gamma, d_beta) = table.offsets(k, &mix);
            if let (_, Some(norm)) = g.part_mut(&layer) {
                norm.shift_affine(d_gamma.flatten(0, 3), d_beta.flatten(0, 3));
            }
        }
        g
    }

    /// This network with one more style, whose offsets (one `[channels]` row per norm layer, in
    /// table order) are `gamma` and `beta`; the new style is the last. A one-style network
    /// becomes a two-style one whose first style is what it was (zero offsets).
    pub fn with_new_style(&self, gamma: &[Vec<f32>], beta: &[Vec<f32>]) -> Generator {
        let mut g = self.clone();
        let device = g.stem.conv.weight.device();
        let channels = self.config().norm_channels();
        let table = g
            .styles
            .take()
            .unwrap_or_else(|| StyleTable::new(1, &channels, &device));
        g.styles = Some(table.push(gamma, beta));
        g
    }

    /// This network with style `s`'s offsets replaced (as in [`Self::with_new_style`]).
    /// Panics if the network has no style `s`.
    pub fn with_style_row(&self, s: usize, gamma: &[Vec<f32>], beta: &[Vec<f32>]) -> Generator {
        let mut g = self.clone();
        let table = g.styles.take().expect("a multi-style network");
        g.styles = Some(table.with_row(s, gamma, beta));
        g
    }

    /// Style `s`'s offsets, one `[channels]` row per norm layer (`None`: the network has no
    /// style `s`). A read-back: for a network on the CPU.
    pub fn style_row(&self, s: usize) -> Option<super::StyleRows> {
        let table = self.styles.as_ref()?;
        (s < table.len()).then(|| table.row(s))
    }

    /// Each of a multi-style network's styles as a one-style network, in table order (a
    /// one-style network: itself).
    pub fn each_style(&self) -> Vec<Generator> {
        match self.config().styles {
            Some(n) => (0..n)
                .map(|s| {
                    let mut one = vec![0.0; n];
                    one[s] = 1.0;
                    self.with_style(&one)
                })
                .collect(),
            None => vec![self.clone()],
        }
    }

    /// `[batch, channels, height, width]` in [-1, 1] → same shape in [-1, 1].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with(x, &mut NormStats::live())
    }

    /// Forward pass that records or replays instance-norm statistics (see [`NormStats`]). A
    /// multi-style network runs its base (every style offset zero): see [`Self::forward_styled`].
    pub fn forward_with(&self, x: Tensor<4>, stats: &mut NormStats) -> Tensor<4> {
        self.forward_styled(x, None, stats)
    }

    /// Forward pass of a multi-style network with each sample's own mix of styles: `mix` is
    /// `[batch, styles]` (a one-hot row picks one style). Training uses it; inference bakes a
    /// mix into a one-style network instead ([`Self::with_style`]).
    pub fn forward_styled(
        &self,
        x: Tensor<4>,
        mix: Option<&Tensor<2>>,
        stats: &mut NormStats,
    ) -> Tensor<4> {
        let offsets = |k: usize| match (&self.styles, mix) {
            (Some(table), Some(mix)) => Some(table.offsets(k, mix)),
            _ => None,
        };
        self.forward_offsets(x, &offsets, stats)
    }

    /// Forward pass whose `k`-th norm layer adds `offsets(k)` (`(d_gamma, d_beta)`, each
    /// `[batch, channels, 1, 1]`, or `None`) to its scale and shift: what a style is. Learning a
    /// new style trains only such offsets ([`crate::learn::adapt`]).
    pub fn forward_offsets(
        &self,
        x: Tensor<4>,
        offsets: &dyn Fn(usize) -> Option<(Tensor<4>, Tensor<4>)>,
        stats: &mut NormStats,
    ) -> Tensor<4> {
        stats.begin();
        let mut norm_index = 0;
        let input = x.clone();
        let (mut x, mut kept) = (x, None);
        for layer in self.config().layers() {
            let (conv, norm) = self.part(&layer);
            if layer.residual == Residual::Open {
                kept = Some(x.clone());
            }
            if layer.upsample {
                x = upsample(x);
            }
            if layer.concat_input {
                x = Tensor::cat(vec![x, input.clone()], 1);
            }
            x = conv.forward(reflect(x, layer.pad));
            if let Some(norm) = norm {
                x = norm.forward_offset(x, stats, offsets(norm_index));
                norm_index += 1;
            }
            x = match layer.activation {
                Activation::None => x,
                Activation::Relu => relu(x),
                Activation::Tanh => x.tanh(),
            };
            if layer.residual == Residual::Close {
                x = kept.take().expect("a residual closes after it opens") + x;
            }
        }
        x
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn configs() -> [GeneratorConfig; 3] {
        [
            Preset::Tiny.generator(),
            GeneratorConfig::new(4, 2).with_input_skip(Some(true)),
            GeneratorConfig::new(6, 0).with_channels(1),
        ]
    }

    #[test]
    fn every_layer_finds_weights_of_its_shape_and_every_weight_is_used() {
        for config in configs() {
            let g = config.init(&Device::flex());
            assert_eq!(g.config().layers(), config.layers());
            let mut used = 0;
            for layer in config.layers() {
                let (conv, norm) = g.part(&layer);
                let (k, cin, cout) = (layer.kernel, layer.cin, layer.cout);
                assert_eq!(conv.weight.dims(), [cout, cin, k, k], "{}", layer.conv);
                assert_eq!(conv.stride, [layer.stride; 2], "{}", layer.conv);
                used += cout * cin * k * k + cout;
                if let Some(norm) = norm {
                    assert_eq!(norm.affine().0.dims(), [cout], "{}", layer.conv);
                    used += 2 * cout;
                }
            }
            assert_eq!(used, g.num_params(), "{config:?}");
        }
    }

    /// With the norm statistics fixed (replayed), changing one input pixel changes no output
    /// pixel farther away than the receptive radius: the figure tiling relies on.
    #[test]
    fn an_output_pixel_sees_no_farther_than_the_receptive_radius() {
        let config = GeneratorConfig::new(4, 1).with_input_skip(Some(true));
        let radius = config.receptive_radius();
        let device = Device::flex();
        let g = config.init(&device);
        let side = (2 * radius + 24).next_multiple_of(GeneratorConfig::MULTIPLE);
        let mut rng = crate::rng::Rng::new(5);
        let base: Vec<f32> = (0..3 * side * side)
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let (cy, cx) = (side / 2, side / 2);
        let mut poked = base.clone();
        for c in 0..3 {
            poked[(c * side + cy) * side + cx] += 1.5;
        }
        let run = |input: Vec<f32>, stats: &mut NormStats| -> Vec<f32> {
            let x = Tensor::<4>::from_data(TensorData::new(input, [1, 3, side, side]), &device);
            g.forward_with(x, stats)
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let mut stats = NormStats::record();
        let a = run(base, &mut stats);
        let b = run(poked, &mut stats.replay());
        let mut farthest_change = 0;
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let i = (c * side + y) * side + x;
                    let distance = y.abs_diff(cy).max(x.abs_diff(cx));
                    if (a[i] - b[i]).abs() > 1e-6 {
                        assert!(
                            distance <= radius,
                            "({y}, {x}) changed, {distance} > {radius}"
                        );
                        farthest_change = farthest_change.max(distance);
                    }
                }
            }
        }
        // The bound is close, not loose: changes reach most of the way out.
        assert!(
            farthest_change + 4 >= radius,
            "{farthest_change} vs {radius}"
        );
    }

    /// A three-style network whose style offsets are random (training would make them differ).
    fn multi_style(device: &Device) -> Generator {
        device.seed(21);
        let config = GeneratorConfig::new(4, 1)
            .with_input_skip(Some(true))
            .with_styles(Some(3));
        let mut g = config.init(device);
        let table = g.styles.as_mut().expect("a style table");
        let random = |p: &mut burn::module::Param<Tensor<2>>| {
            let dims = p.dims();
            *p = burn::module::Param::from_tensor(Tensor::random(
                dims,
                burn::tensor::Distribution::Uniform(-0.5, 0.5),
                device,
            ));
        };
        table.gamma.iter_mut().for_each(random);
        table.beta.iter_mut().for_each(random);
        g
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Each sample's own mix in one batch (training) equals the one-style network baked from
    /// that mix (inference), on Burn and on the CPU engine.
    #[test]
    fn a_baked_mix_equals_the_styled_forward_pass() {
        let device = Device::flex();
        let g = multi_style(&device);
        assert_eq!(g.config().styles, Some(3));
        let side = 32;
        let x = Tensor::<4>::random(
            [2, 3, side, side],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let rows = [[0.0, 1.0, 0.0], [0.2, 0.5, 0.3]];
        let mix = Tensor::<2>::from_data(TensorData::new(rows.concat(), [2, 3]), &device);
        let batch = values(g.forward_styled(x.clone(), Some(&mix), &mut NormStats::live()));
        let plane = 3 * side * side;
        let mut baked_outputs = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let baked = g.with_style(row);
            assert_eq!(baked.config().styles, None);
            let xi = x.clone().narrow(0, i, 1);
            let ours = values(baked.forward(xi.clone()));
            let theirs = &batch[i * plane..(i + 1) * plane];
            let diff = max_diff(&ours, theirs);
            assert!(diff < 1e-5, "sample {i}: baked vs styled {diff}");
            let input = xi.into_data().try_to_vec::<f32>().unwrap();
            let cpu = crate::engine::CpuGenerator::new(&baked).forward_with(
                input,
                side,
                side,
                &mut NormStats::live(),
            );
            let diff = max_diff(&cpu, theirs);
            assert!(diff < 1e-4, "sample {i}: CPU engine vs styled {diff}");
            baked_outputs.push(ours);
        }
        // The styles really differ, and so do the base and a style.
        let other = values(
            g.with_style(&[1.0, 0.0, 0.0])
                .forward(x.clone().narrow(0, 1, 1)),
        );
        assert!(max_diff(&other, &baked_outputs[1]) > 1e-2);
        let base = values(g.forward(x.narrow(0, 1, 1)));
        assert!(max_diff(&base, &baked_outputs[1]) > 1e-2);
    }
}
