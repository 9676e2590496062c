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
//! * On x86-64 CPUs with AVX-512 (checked at run time) every convolution is direct too, on
//!   16-lane tiles of 12 channels × 32 positions ([`direct::wide`]): faster there than the
//!   products, which repack their operands on every call.
//! * Reflect padding, nearest-neighbour upsampling and the input-skip concatenation are one copy.
//! * Instance norm, its scale and shift, and ReLU are one pass after each convolution.
//! * Work is split into output-column chunks that run on every core (rayon); the browser has one
//!   thread and runs them in turn.
//!
//! Matrix products come from the `gemm` crate (the one Burn's CPU backend uses, with AVX2/FMA or
//! wasm simd128 kernels). `bench/` measures this path against Burn's and PyTorch's.

use burn::tensor::{Device, Tensor, TensorData};

use crate::model::generator::{Activation, Generator, Layer, Residual};
use crate::model::norm::{EPSILON, NormStats, StatNorm};

#[cfg(any(not(target_arch = "wasm32"), feature = "learn"))]
mod backprop;
mod conv;
mod direct;
mod memory;
mod moments;
mod parallel;
mod planes;
mod pool;
mod vgg;
mod winograd;

#[cfg(any(not(target_arch = "wasm32"), feature = "learn"))]
pub(crate) use backprop::add_into;
#[cfg(any(not(target_arch = "wasm32"), feature = "learn"))]
pub use backprop::{
    DiscriminatorGrad, DiscriminatorGrads, DiscriminatorTape, GeneratorGrad, GeneratorGrads,
    GeneratorTape, ImageDiscriminatorGrad, ImageGrads, ImageTape, LatentGeneratorGrad, LatentGrads,
    LatentTape,
};
use conv::{Conv, Kernels};
pub use memory::keep_freed_memory;
use moments::Moments;
use parallel::{Shared, for_each_plane, for_each_slice, par_map};
use planes::{Map, Padded};
pub use vgg::{CpuVgg, Planes, Targets, VggLoss};

/// A [`Generator`]'s weights laid out for the CPU; build it with [`CpuGenerator::new`].
#[derive(Clone)]
pub struct CpuGenerator {
    /// The generator's table ([`GeneratorConfig::layers`]), each entry with its weights.
    layers: Vec<Step>,
    /// Where recorded instance-norm statistics live (they are shared with the Burn path).
    device: Device,
}

/// One entry of the layer table and its weights.
#[derive(Clone)]
struct Step {
    layer: Layer,
    conv: Conv,
    norm: Option<Norm>,
}

impl std::fmt::Debug for CpuGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuGenerator")
            .field("layers", &self.layers.len())
            .finish()
    }
}

/// What the next layer reads: the network's input, a plain map, or one whose norm is pending.
enum Current {
    Input,
    Map(Map),
    Normed(Normed),
}

impl Current {
    fn source<'a>(&'a self, input: &'a Map) -> Source<'a> {
        match self {
            Current::Input => input.raw(),
            Current::Map(map) => map.raw(),
            Current::Normed(normed) => normed.view(),
        }
    }

    fn into_map(self, input: &Map) -> Map {
        match self {
            Current::Input => {
                let mut copy = Map::scratch(input.c, input.h, input.w);
                copy.data.copy_from_slice(&input.data);
                copy
            }
            Current::Map(map) => map,
            Current::Normed(normed) => normed.materialize(),
        }
    }
}

impl CpuGenerator {
    /// Copies the weights out of `generator` (which may live on any device).
    pub fn new(generator: &Generator) -> Self {
        Self::build(generator, Kernels::best())
    }

    /// With the given kind of convolutions.
    fn build(generator: &Generator, kernels: Kernels) -> Self {
        let layers = generator
            .config()
            .layers()
            .into_iter()
            .map(|layer| {
                let (conv, norm) = generator.part(&layer);
                Step {
                    conv: Conv::new(conv, kernels),
                    norm: norm.map(Norm::new),
                    layer,
                }
            })
            .collect();
        Self {
            layers,
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
        let channels = self.layers[0].layer.cin;
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
        let (mut x, mut kept) = (Current::Input, None::<Map>);
        for step in &self.layers {
            let layer = &step.layer;
            if layer.residual == Residual::Open {
                kept = Some(x.into_map(&input));
                x = Current::Input;
            }
            let main = match (&kept, layer.residual) {
                (Some(kept), Residual::Open) => kept.raw(),
                _ => x.source(&input),
            };
            let sources: &[Source] = if layer.concat_input {
                &[main, input.raw()]
            } else {
                &[main]
            };
            let scale = if layer.upsample { 2 } else { 1 };
            let (mut map, moments) = step.conv.forward(&step.conv.pad(sources, layer.pad, scale));
            let out = match &step.norm {
                Some(norm) => Current::Normed(Normed {
                    affine: norm.affine(&moments, layer.activation, stats, &self.device),
                    map,
                }),
                None => {
                    let activation = layer.activation;
                    for_each_plane(&mut map, |_, plane| {
                        plane.iter_mut().for_each(|v| *v = activate(activation, *v))
                    });
                    Current::Map(map)
                }
            };
            x = if layer.residual == Residual::Close {
                let mut sum = kept.take().expect("a residual closes after it opens");
                let out = match out {
                    Current::Normed(normed) => normed,
                    other => Normed {
                        affine: Affine::identity(sum.c, Activation::None),
                        map: other.into_map(&input),
                    },
                };
                sum.add(&out);
                Current::Map(sum)
            } else {
                out
            };
        }
        let mut out = x.into_map(&input);
        let out = std::mem::take(&mut out.data);
        pool::clear();
        out
    }
}

fn activate(activation: Activation, v: f32) -> f32 {
    match activation {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Tanh => tanh(v),
    }
}

/// `tanh(x)` as `1 − 2 / (e^{2x} + 1)`, the exponential from `2^n · e^r` with `e^r` a degree-7
/// Taylor polynomial (`|r| ≤ ln 2 / 2`): within 1e-6 of libm's, and branch-free, so a loop over a
/// plane vectorises (libm's `tanhf` does not: it was 4 % of a 512² pass).
#[inline]
fn tanh(x: f32) -> f32 {
    // Past ±9, tanh is ±1 to f32's precision; this also keeps 2^n a normal number.
    let y = 2.0 * x.clamp(-9.0, 9.0);
    let n = (y * std::f32::consts::LOG2_E + 0.5).floor();
    // ln 2 in two parts, the first exact in f32, so that r keeps its low bits.
    let r = y - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let two_n = f32::from_bits(((n as i32 + 127) << 23) as u32);
    1.0 - 2.0 / (p * two_n + 1.0)
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

/// Per-channel `v * scale + shift`, then the activation.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    activation: Activation,
}

impl Affine {
    fn identity(channels: usize, activation: Activation) -> Self {
        Self {
            scale: vec![1.0; channels],
            shift: vec![0.0; channels],
            activation,
        }
    }

    fn apply(&self, c: usize, v: f32) -> f32 {
        activate(self.activation, v * self.scale[c] + self.shift[c])
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

    /// The normalisation of a convolution's output whose channels have `moments`, as one
    /// per-channel affine; `stats` records or replays the statistics.
    fn affine(
        &self,
        moments: &[Moments],
        activation: Activation,
        stats: &mut NormStats,
        device: &Device,
    ) -> Affine {
        let (mean, var) = stats.next_or(|| {
            let mean = moments.iter().map(|m| m.mean as f32).collect();
            let var = moments.iter().map(|m| m.variance() as f32).collect();
            (to_tensor(mean, device), to_tensor(var, device))
        });
        let (mean, var) = (to_vec(mean), to_vec(var));
        let (scale, shift) = (0..self.gamma.len())
            .map(|c| {
                let scale = self.gamma[c] / (var[c] + EPSILON as f32).sqrt();
                (scale, self.beta[c] - mean[c] * scale)
            })
            .unzip();
        Affine {
            scale,
            shift,
            activation,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::planes::reflect;
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

    /// Every kind of convolution: shifted products (native without AVX-512), direct (the
    /// browser) and, where this CPU has AVX-512, its direct tiles (native there).
    fn every_path(g: &Generator) -> Vec<(&'static str, CpuGenerator)> {
        let mut paths = vec![
            ("shifted", CpuGenerator::build(g, Kernels::Products)),
            ("direct", CpuGenerator::build(g, Kernels::Direct)),
        ];
        #[cfg(target_arch = "x86_64")]
        if direct::wide::available() {
            paths.push(("avx-512", CpuGenerator::build(g, Kernels::Wide)));
        }
        paths
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
            for (path, cpu) in every_path(&g) {
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

    /// Trained weights (norm scales and shifts far from 1 and 0): every shipped network.
    #[test]
    fn matches_burn_on_the_shipped_networks() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let index = crate::pack::Index::load(&root).expect("models/index.json");
        let mut tried = 0;
        for entry in &index.styles {
            let pack = crate::pack::StylePack::resolve(&entry.id, &root).expect("shipped pack");
            if pack.manifest.generator.is_none() {
                continue; // a look or a noise generator
            }
            let g = pack.generator(&Device::flex()).expect("weights load");
            let g = match g.config().styles {
                Some(count) => g.with_style(&vec![1.0 / count as f32; count]),
                None => g,
            };
            // The full-size layers span several 1024-position chunks, the last one partial.
            let (h, w) = (64, 48);
            let input = random_planes(3 * h * w, 3);
            let theirs = burn_forward(&g, &input, h, w, &mut NormStats::live());
            for (path, cpu) in every_path(&g) {
                let ours = cpu.forward_with(input.clone(), h, w, &mut NormStats::live());
                let diff = max_diff(&ours, &theirs);
                assert!(diff < 1e-4, "{}, {path}: max abs diff {diff}", entry.id);
            }
            tried += 1;
        }
        assert!(tried > 0, "models/ ships a network");
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
    fn tanh_equals_libms() {
        let worst = (-120_000..=120_000)
            .map(|i| i as f32 * 1e-4)
            .chain([f32::MAX, f32::MIN, 1e-30, -1e-30])
            .map(|x| (tanh(x) - x.tanh()).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "largest difference {worst}");
    }

    #[test]
    fn reflect_matches_the_definition() {
        let got: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
