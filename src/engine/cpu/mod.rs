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
//! * Reflect padding, nearest-neighbour upsampling and the input-skip concatenation are one copy.
//! * Instance norm, its scale and shift, and ReLU are one pass after each convolution.
//! * Work is split into output-column chunks that run on every core (rayon); the browser has one
//!   thread and runs them in turn.
//!
//! Matrix products come from the `gemm` crate (the one Burn's CPU backend uses, with AVX2/FMA or
//! wasm simd128 kernels). `bench/` measures this path against Burn's and PyTorch's.

use burn::tensor::{Device, Tensor, TensorData};

use crate::model::generator::{ConvNormRelu, Generator, ResidualBlock};
use crate::model::norm::{EPSILON, NormStats, StatNorm};

mod conv;
mod direct;
mod moments;
mod parallel;
mod planes;
mod pool;

use conv::Conv;
use moments::Moments;
use parallel::{Shared, for_each_plane, for_each_slice, par_map};
use planes::{Map, Padded};

/// A [`Generator`]'s weights laid out for the CPU; build it with [`CpuGenerator::new`].
#[derive(Clone)]
pub struct CpuGenerator {
    stem: Layer,
    down1: Layer,
    down2: Layer,
    blocks: Vec<(Layer, Layer)>,
    up1: Layer,
    up2: Layer,
    head: Conv,
    input_skip: bool,
    /// Where recorded instance-norm statistics live (they are shared with the Burn path).
    device: Device,
}

impl std::fmt::Debug for CpuGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuGenerator")
            .field("width", &self.stem.conv.cout)
            .field("blocks", &self.blocks.len())
            .field("input_skip", &self.input_skip)
            .finish()
    }
}

impl CpuGenerator {
    /// Copies the weights out of `generator` (which may live on any device).
    pub fn new(generator: &Generator) -> Self {
        Self::build(generator, cfg!(target_arch = "wasm32"))
    }

    /// `direct`: convolutions use [`direct`] rather than matrix products.
    fn build(generator: &Generator, direct: bool) -> Self {
        let layer = |l: &ConvNormRelu| Layer::new(l, direct);
        Self {
            stem: layer(&generator.stem),
            down1: layer(&generator.down1),
            down2: layer(&generator.down2),
            blocks: generator
                .blocks
                .iter()
                .map(|b: &ResidualBlock| {
                    (
                        layer(&b.first),
                        Layer {
                            conv: Conv::new(&b.conv, direct),
                            norm: Norm::new(&b.norm),
                            relu: false,
                        },
                    )
                })
                .collect(),
            up1: layer(&generator.up1),
            up2: layer(&generator.up2),
            head: Conv::new(&generator.head, direct),
            input_skip: generator.input_skip,
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
        let channels = self.stem.conv.cin;
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
        let d = &self.device;
        let x = self.stem.run(&[input.raw()], (3, 1), stats, d);
        let x = self.down1.run(&[x.view()], (1, 1), stats, d);
        let x = self.down2.run(&[x.view()], (1, 1), stats, d);
        let mut x = x.materialize();
        for (first, second) in &self.blocks {
            let y = first.run(&[x.raw()], (1, 1), stats, d);
            let y = second.run(&[y.view()], (1, 1), stats, d);
            x.add(&y);
        }
        let x = self.up1.run(&[x.raw()], (1, 2), stats, d);
        let x = self.up2.run(&[x.view()], (1, 2), stats, d);
        let sources: &[Source] = if self.input_skip {
            &[x.view(), input.raw()]
        } else {
            &[x.view()]
        };
        let (mut out, _) = self.head.forward(&self.head.pad(sources, 3, 1));
        for_each_plane(&mut out, |_, plane| {
            plane.iter_mut().for_each(|v| *v = v.tanh())
        });
        let out = std::mem::take(&mut out.data);
        pool::clear();
        out
    }
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

/// Convolution, instance norm, optional ReLU.
#[derive(Clone)]
struct Layer {
    conv: Conv,
    norm: Norm,
    relu: bool,
}

impl Layer {
    fn new(layer: &ConvNormRelu, direct: bool) -> Self {
        Self {
            conv: Conv::new(&layer.conv, direct),
            norm: Norm::new(&layer.norm),
            relu: true,
        }
    }

    /// The layer on `sources`, reflect-padded and upsampled by `(pad, scale)`: the convolution's
    /// output with the normalisation (and ReLU) still to apply. Whoever reads it next applies
    /// them on the way, saving a pass over memory.
    fn run(
        &self,
        sources: &[Source],
        (pad, scale): (usize, usize),
        stats: &mut NormStats,
        device: &Device,
    ) -> Normed {
        let (map, moments) = self.conv.forward(&self.conv.pad(sources, pad, scale));
        let (mean, var) = stats.next_or(|| {
            let mean = moments.iter().map(|m| m.mean as f32).collect();
            let var = moments.iter().map(|m| m.variance() as f32).collect();
            (to_tensor(mean, device), to_tensor(var, device))
        });
        let (mean, var) = (to_vec(mean), to_vec(var));
        let (scale, shift) = (0..map.c)
            .map(|c| {
                let scale = self.norm.gamma[c] / (var[c] + EPSILON as f32).sqrt();
                (scale, self.norm.beta[c] - mean[c] * scale)
            })
            .unzip();
        Normed {
            map,
            affine: Affine {
                scale,
                shift,
                relu: self.relu,
            },
        }
    }
}

/// Per-channel `v * scale + shift`, then ReLU if `relu`.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl Affine {
    fn apply(&self, c: usize, v: f32) -> f32 {
        let v = v * self.scale[c] + self.shift[c];
        if self.relu { v.max(0.0) } else { v }
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

    /// Both kinds of stride-1 convolution: shifted products (native) and direct (the browser).
    fn both_paths(g: &Generator) -> [(&'static str, CpuGenerator); 2] {
        [
            ("shifted", CpuGenerator::build(g, false)),
            ("direct", CpuGenerator::build(g, true)),
        ]
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
            for (path, cpu) in both_paths(&g) {
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

    /// Trained weights (norm scales and shifts far from 1 and 0, the input skip on).
    #[test]
    fn matches_burn_on_the_shipped_default_style() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let index = crate::pack::Index::load(&root).expect("models/index.json");
        let default = index.default.expect("a default style");
        let pack = crate::pack::StylePack::resolve(&default, &root).expect("default pack");
        let g = pack.generator(&Device::flex()).expect("weights load");
        // The full-size layers span several 1024-position chunks, the last one partial.
        let (h, w) = (64, 48);
        let input = random_planes(3 * h * w, 3);
        let theirs = burn_forward(&g, &input, h, w, &mut NormStats::live());
        for (path, cpu) in both_paths(&g) {
            let ours = cpu.forward_with(input.clone(), h, w, &mut NormStats::live());
            let diff = max_diff(&ours, &theirs);
            assert!(diff < 1e-4, "{path}: max abs diff {diff}");
        }
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
    fn reflect_matches_the_definition() {
        let got: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
