//! The generator's training pass on the CPU: a forward pass that keeps what its backward pass
//! needs, and the backward pass to every weight's gradient (the style table's included), walking
//! the same layer table as Burn's forward ([`GeneratorConfig::layers`]).

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{
    ConvGrads, ConvWeights, Map, NormState, Padding, add_into, norm, norm_backward, pad,
    pad_backward, parts_for, upsample, upsample_backward,
};
use crate::engine::cpu::parallel::par_map;
use crate::engine::cpu::to_vec;
use crate::model::generator::{Activation, Generator, Layer, Residual};
use crate::model::norm::EPSILON;

/// Per norm layer, a `[styles, channels]` table of gamma offsets and one of beta offsets (or
/// their gradients).
type Table = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A [`Generator`]'s weights, read for training passes on the CPU (read it again after each
/// optimiser step).
pub struct GeneratorGrad {
    layers: Vec<Part>,
    /// Multi-style networks: per norm layer, the `[styles, channels]` offsets of gamma and beta.
    table: Option<Table>,
    styles: usize,
    ids: Ids,
}

struct Part {
    layer: Layer,
    conv: ConvWeights,
    /// `(gamma, beta)` of the norm after the convolution.
    norm: Option<(Vec<f32>, Vec<f32>)>,
}

/// Where each gradient goes in Burn's module.
struct Ids {
    /// `(weight, bias)` per layer.
    conv: Vec<(ParamId, Option<ParamId>)>,
    /// `(gamma, beta)` per layer with a norm.
    norm: Vec<Option<(ParamId, ParamId)>>,
    table: Option<(Vec<ParamId>, Vec<ParamId>)>,
}

/// What a forward pass kept for its backward pass, and its outputs.
pub struct GeneratorTape {
    samples: Vec<SampleTape>,
    mixes: Vec<Vec<f32>>,
}

struct SampleTape {
    layers: Vec<LayerTape>,
    output: Vec<f32>,
}

struct LayerTape {
    /// The convolution's (padded) input.
    padded: Map,
    /// The convolution's output, where a norm follows, and its statistics.
    norm: Option<(Map, NormState, Vec<f32>)>,
    /// After the activation (before a residual sum).
    activated: Map,
}

/// The gradients of a batch's loss with respect to every weight of the generator.
pub struct GeneratorGrads {
    conv: Vec<ConvGrads>,
    norm: Vec<Option<(Vec<f32>, Vec<f32>)>>,
    table: Option<Table>,
}

fn ids<const D: usize>(p: &Param<Tensor<D>>) -> ParamId {
    p.id
}

impl GeneratorGrad {
    pub fn new(generator: &Generator) -> Self {
        let mut conv_ids = Vec::new();
        let mut norm_ids = Vec::new();
        let layers = generator
            .config()
            .layers()
            .into_iter()
            .map(|layer| {
                let (conv, norm) = generator.part(&layer);
                conv_ids.push((ids(&conv.weight), conv.bias.as_ref().map(ids)));
                norm_ids.push(norm.map(|n| {
                    let (g, b) = n.params();
                    (ids(g), ids(b))
                }));
                Part {
                    conv: ConvWeights::of(conv),
                    norm: norm.map(|n| {
                        let (g, b) = n.affine();
                        (to_vec(g), to_vec(b))
                    }),
                    layer,
                }
            })
            .collect();
        let table = generator.styles.as_ref().map(|t| {
            let read = |p: &[Param<Tensor<2>>]| p.iter().map(|p| to_vec(p.val())).collect();
            (read(&t.gamma), read(&t.beta))
        });
        let table_ids = generator.styles.as_ref().map(|t| {
            (
                t.gamma.iter().map(ids).collect(),
                t.beta.iter().map(ids).collect(),
            )
        });
        Self {
            layers,
            table,
            styles: generator.styles.as_ref().map_or(1, |t| t.len()),
            ids: Ids {
                conv: conv_ids,
                norm: norm_ids,
                table: table_ids,
            },
        }
    }

    /// Each norm layer's `(gamma, beta)` for a sample whose mix of styles is `mix`.
    fn affines(&self, mix: &[f32]) -> Vec<Option<(Vec<f32>, Vec<f32>)>> {
        let mut k = 0;
        self.layers
            .iter()
            .map(|part| {
                let (gamma, beta) = part.norm.as_ref()?;
                let (mut gamma, mut beta) = (gamma.clone(), beta.clone());
                if let Some((tg, tb)) = &self.table {
                    let c = gamma.len();
                    for (s, &m) in mix.iter().enumerate() {
                        if m != 0.0 {
                            for i in 0..c {
                                gamma[i] += m * tg[k][s * c + i];
                                beta[i] += m * tb[k][s * c + i];
                            }
                        }
                    }
                }
                k += 1;
                Some((gamma, beta))
            })
            .collect()
    }

    /// The outputs (`[3, h, w]` each) of `inputs` (each `[3, h, w]` in [-1, 1]), sample `i` in
    /// its mix of styles `mixes[i]` (a multi-style network; empty: the base network), and what
    /// the backward pass needs. Samples run in parallel.
    pub fn forward(
        &self,
        inputs: &[Vec<f32>],
        h: usize,
        w: usize,
        mixes: &[Vec<f32>],
    ) -> GeneratorTape {
        assert!(
            mixes.is_empty() || mixes.len() == inputs.len(),
            "a mix per sample"
        );
        let parts = parts_for(inputs.len());
        let samples = par_map(inputs.len(), |i| {
            let mix = mixes.get(i).map_or(&[][..], Vec::as_slice);
            self.forward_one(&inputs[i], h, w, mix, parts)
        });
        GeneratorTape {
            samples,
            mixes: mixes.to_vec(),
        }
    }

    fn forward_one(
        &self,
        input: &[f32],
        h: usize,
        w: usize,
        mix: &[f32],
        parts: usize,
    ) -> SampleTape {
        let channels = self.layers[0].conv.cin;
        let input = Map::new(channels, h, w, input.to_vec());
        let affines = self.affines(mix);
        let mut x = input.clone();
        let mut kept: Option<Map> = None;
        let mut layers = Vec::with_capacity(self.layers.len());
        for (part, affine) in self.layers.iter().zip(&affines) {
            let layer = &part.layer;
            if layer.residual == Residual::Open {
                kept = Some(x.clone());
            }
            let mut src = x;
            if layer.upsample {
                src = upsample(&src);
            }
            if layer.concat_input {
                src.data.extend_from_slice(&input.data);
                src.c += input.c;
            }
            let padded = pad(&src, layer.pad, Padding::Reflect);
            drop(src);
            let y = part.conv.forward(&padded, parts);
            let (mut out, norm_tape) = match affine {
                Some((gamma, beta)) => {
                    let (out, state) = norm(&y, gamma, beta, EPSILON);
                    (out, Some((y, state, gamma.clone())))
                }
                None => (y, None),
            };
            match layer.activation {
                Activation::None => {}
                Activation::Relu => out.data.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Tanh => out.data.iter_mut().for_each(|v| *v = v.tanh()),
            }
            x = if layer.residual == Residual::Close {
                let mut sum = kept.take().expect("a residual closes after it opens");
                add_into(&mut sum.data, &out.data);
                sum
            } else {
                out.clone()
            };
            layers.push(LayerTape {
                padded,
                norm: norm_tape,
                activated: out,
            });
        }
        SampleTape {
            layers,
            output: x.data,
        }
    }

    /// The gradients of a loss with respect to the weights, given its gradient with respect to
    /// each output of the `tape`'s forward pass (`[3, h, w]` each).
    pub fn backward(&self, tape: &GeneratorTape, grads: &[Vec<f32>]) -> GeneratorGrads {
        self.backward_with(tape, grads, false).0
    }

    /// [`Self::backward`], and the gradient with respect to each input (`[3, h, w]`): for
    /// networks chained in one loss (CycleGAN's cycle).
    pub fn backward_inputs(
        &self,
        tape: &GeneratorTape,
        grads: &[Vec<f32>],
    ) -> (GeneratorGrads, Vec<Vec<f32>>) {
        let (weights, inputs) = self.backward_with(tape, grads, true);
        (weights, inputs.into_iter().flatten().collect())
    }

    fn backward_with(
        &self,
        tape: &GeneratorTape,
        grads: &[Vec<f32>],
        input_grad: bool,
    ) -> (GeneratorGrads, Vec<Option<Vec<f32>>>) {
        assert_eq!(grads.len(), tape.samples.len(), "a gradient per output");
        let parts = parts_for(grads.len());
        let per_sample = par_map(grads.len(), |i| {
            self.backward_one(&tape.samples[i], &grads[i], input_grad, parts)
        });
        let mut inputs = Vec::with_capacity(per_sample.len());
        let mut conv: Vec<ConvGrads> = self
            .layers
            .iter()
            .map(|p| ConvGrads::zeros(&p.conv))
            .collect();
        let mut norms: Vec<Option<(Vec<f32>, Vec<f32>)>> = self
            .layers
            .iter()
            .map(|p| {
                p.norm
                    .as_ref()
                    .map(|(g, _)| (vec![0.0; g.len()], vec![0.0; g.len()]))
            })
            .collect();
        let mut table = self.table.as_ref().map(|(tg, tb)| {
            let zeros = |t: &Vec<Vec<f32>>| -> Vec<Vec<f32>> {
                t.iter().map(|r| vec![0.0; r.len()]).collect()
            };
            (zeros(tg), zeros(tb))
        });
        for (i, (sample_conv, sample_norm, input)) in per_sample.into_iter().enumerate() {
            inputs.push(input);
            let mut k = 0;
            for (l, (c, n)) in sample_conv.iter().zip(sample_norm).enumerate() {
                conv[l].add(c);
                let (Some((dg, db)), Some((sg, sb))) = (norms[l].as_mut(), n) else {
                    continue;
                };
                add_into(dg, &sg);
                add_into(db, &sb);
                if let (Some((tg, tb)), Some(mix)) = (table.as_mut(), tape.mixes.get(i)) {
                    let c = sg.len();
                    for (s, &m) in mix.iter().enumerate() {
                        for j in 0..c {
                            tg[k][s * c + j] += m * sg[j];
                            tb[k][s * c + j] += m * sb[j];
                        }
                    }
                }
                k += 1;
            }
        }
        let grads = GeneratorGrads {
            conv,
            norm: norms,
            table,
        };
        (grads, inputs)
    }

    #[allow(clippy::type_complexity)]
    fn backward_one(
        &self,
        tape: &SampleTape,
        grad: &[f32],
        input_grad: bool,
        parts: usize,
    ) -> (
        Vec<ConvGrads>,
        Vec<Option<(Vec<f32>, Vec<f32>)>>,
        Option<Vec<f32>>,
    ) {
        let last = tape.layers.last().expect("a generator has layers");
        let a = &last.activated;
        let mut g = Map::new(a.c, a.h, a.w, grad.to_vec());
        let mut conv: Vec<ConvGrads> = self
            .layers
            .iter()
            .map(|p| ConvGrads::zeros(&p.conv))
            .collect();
        let mut norms = vec![None; self.layers.len()];
        let mut to_kept: Option<Map> = None;
        // The input's gradient from a layer that takes the input image again (input skip).
        let mut skip: Option<Vec<f32>> = None;
        for l in (0..self.layers.len()).rev() {
            let (part, lt) = (&self.layers[l], &tape.layers[l]);
            let layer = &part.layer;
            if layer.residual == Residual::Close {
                to_kept = Some(g.clone());
            }
            match layer.activation {
                Activation::None => {}
                Activation::Relu => {
                    for (d, &v) in g.data.iter_mut().zip(&lt.activated.data) {
                        if v <= 0.0 {
                            *d = 0.0;
                        }
                    }
                }
                Activation::Tanh => {
                    for (d, &v) in g.data.iter_mut().zip(&lt.activated.data) {
                        *d *= 1.0 - v * v;
                    }
                }
            }
            if let Some((y, state, gamma)) = &lt.norm {
                norms[l] = Some(norm_backward(y, state, gamma, &mut g));
            }
            let needed = l > 0 || input_grad;
            let Some(dpadded) = part
                .conv
                .backward(&lt.padded, &g, &mut conv[l], needed, parts)
            else {
                break;
            };
            let mut src = pad_backward(&dpadded, layer.pad, Padding::Reflect);
            if layer.concat_input {
                // The input image's channels: their gradient is the input's (where asked for).
                src.c -= self.layers[0].conv.cin;
                let image = src.data.split_off(src.c * src.plane());
                skip = input_grad.then_some(image);
            }
            if layer.upsample {
                src = upsample_backward(&src);
            }
            if layer.residual == Residual::Open {
                let kept = to_kept.take().expect("a residual opens before it closes");
                add_into(&mut src.data, &kept.data);
            }
            g = src;
        }
        let input = input_grad.then(|| {
            let mut d = g.data;
            if let Some(skip) = skip {
                add_into(&mut d, &skip);
            }
            d
        });
        (conv, norms, input)
    }

    /// How many styles the table holds (1 for a one-style network).
    pub fn styles(&self) -> usize {
        self.styles
    }
}

impl GeneratorTape {
    /// The forward pass's outputs, `[3, h, w]` each.
    pub fn outputs(&self) -> impl Iterator<Item = &[f32]> {
        self.samples.iter().map(|s| s.output.as_slice())
    }
}

impl GeneratorGrads {
    /// Adds another pass's gradients of the same network (a network that runs several times in
    /// one loss).
    pub fn add(&mut self, other: &GeneratorGrads) {
        for (a, b) in self.conv.iter_mut().zip(&other.conv) {
            a.add(b);
        }
        for (a, b) in self.norm.iter_mut().zip(&other.norm) {
            if let (Some((ag, ab)), Some((bg, bb))) = (a.as_mut(), b) {
                add_into(ag, bg);
                add_into(ab, bb);
            }
        }
        if let (Some((ag, ab)), Some((bg, bb))) = (self.table.as_mut(), &other.table) {
            for (a, b) in ag.iter_mut().zip(bg).chain(ab.iter_mut().zip(bb)) {
                add_into(a, b);
            }
        }
    }

    /// Burn's gradients of the generator's parameters (on `device`, the training device), in two
    /// parts: the network's own weights, and the style table's (which has its own optimiser).
    pub fn into_params(
        self,
        of: &GeneratorGrad,
        device: &Device,
    ) -> (GradientsParams, Option<GradientsParams>) {
        let device = device.clone().inner();
        let tensor1 = |v: Vec<f32>| {
            let n = v.len();
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        };
        let mut params = GradientsParams::new();
        for ((grads, part), (weight, bias)) in
            self.conv.into_iter().zip(&of.layers).zip(&of.ids.conv)
        {
            let c = &part.conv;
            params.register(
                *weight,
                Tensor::<4>::from_data(
                    TensorData::new(grads.weight, [c.cout, c.cin, c.k, c.k]),
                    &device,
                ),
            );
            if let Some(bias) = bias {
                params.register(*bias, tensor1(grads.bias));
            }
        }
        for (grads, ids) in self.norm.into_iter().zip(&of.ids.norm) {
            if let (Some((dg, db)), Some((g, b))) = (grads, ids) {
                params.register(*g, tensor1(dg));
                params.register(*b, tensor1(db));
            }
        }
        let table = match (self.table, &of.ids.table) {
            (Some((tg, tb)), Some((ig, ib))) => {
                let mut table = GradientsParams::new();
                for (rows, ids) in [(tg, ig), (tb, ib)] {
                    for (row, id) in rows.into_iter().zip(ids) {
                        let c = row.len() / of.styles;
                        table.register(
                            *id,
                            Tensor::<2>::from_data(TensorData::new(row, [of.styles, c]), &device),
                        );
                    }
                }
                Some(table)
            }
            _ => None,
        };
        (params, table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GeneratorConfig, NormStats};
    use crate::rng::Rng;
    use burn::module::Module;

    fn random(len: usize, rng: &mut Rng, spread: f32) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(-spread, spread)).collect()
    }

    /// A network with every layer kind (input skip, residuals, upsampling) whose norms and style
    /// rows are far from their starting values.
    fn network(device: &Device, rng: &mut Rng) -> Generator {
        let config = GeneratorConfig::new(4, 2)
            .with_input_skip(Some(true))
            .with_styles(Some(3));
        // The rows are set on the plain device (a tracked tensor cannot be rebuilt in place).
        let mut g = config.init(&device.clone().inner());
        let channels = config.norm_channels();
        for s in 0..3 {
            let rows = |rng: &mut Rng| -> Vec<Vec<f32>> {
                channels.iter().map(|&c| random(c, rng, 0.5)).collect()
            };
            let (gamma, beta) = (rows(rng), rows(rng));
            g = g.with_style_row(s, &gamma, &beta);
        }
        config.init(device).load_record(g.into_record())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        to_vec(t)
    }

    #[test]
    fn gradients_equal_burns_autodiff() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(5);
        let g = network(&device, &mut rng);
        // 20 × 24: odd sizes at the bottleneck (5 × 6) and partial im2col chunks.
        let (batch, h, w) = (2, 20, 24);
        let inputs: Vec<Vec<f32>> = (0..batch)
            .map(|_| random(3 * h * w, &mut rng, 1.0))
            .collect();
        let mixes = vec![vec![0.0, 1.0, 0.0], vec![0.3, 0.0, 0.7]];
        let seeds: Vec<Vec<f32>> = (0..batch)
            .map(|_| random(3 * h * w, &mut rng, 1.0))
            .collect();

        let x = Tensor::<4>::from_data(TensorData::new(inputs.concat(), [batch, 3, h, w]), &device)
            .require_grad();
        let mix = Tensor::<2>::from_data(TensorData::new(mixes.concat(), [batch, 3]), &device);
        let seed =
            Tensor::<4>::from_data(TensorData::new(seeds.concat(), [batch, 3, h, w]), &device);
        let out = g.forward_styled(x.clone(), Some(&mix), &mut NormStats::live());
        let burn_out = values(out.clone());
        let mut grads = (out * seed).sum().backward();
        let burn_input = values(x.grad(&grads).expect("the input's gradient"));
        let burn = GradientsParams::from_module(&mut grads, &g);

        let cpu = GeneratorGrad::new(&g);
        let tape = cpu.forward(&inputs, h, w, &mixes);
        let ours_out: Vec<f32> = tape.outputs().flat_map(|o| o.iter().copied()).collect();
        let worst = ours_out
            .iter()
            .zip(&burn_out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "outputs differ by {worst}");
        // The input's gradient (through the stem and the input skip) too.
        let (weights, input) = cpu.backward_inputs(&tape, &seeds);
        let largest = burn_input.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = input
            .concat()
            .iter()
            .zip(&burn_input)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            largest > 0.0 && worst <= 1e-4 * largest,
            "input gradients off by {worst}"
        );
        // Two passes' gradients add up.
        let mut twice = cpu.backward(&tape, &seeds);
        twice.add(&weights);
        let (once, doubled) = (&weights.conv[0].weight, &twice.conv[0].weight);
        assert!(
            once.iter()
                .zip(doubled)
                .all(|(a, b)| (2.0 * a - b).abs() <= 1e-6 * a.abs().max(1.0))
        );
        let (params, table) = weights.into_params(&cpu, &device);
        let table = table.expect("a multi-style network has table gradients");
        assert_eq!(
            params.len() + table.len(),
            burn.len(),
            "a gradient for every parameter"
        );

        let mut compared = 0;
        // `floor`: the magnitude below which differences are rounding (a bias before a norm has
        // no gradient at all, so both sides are rounding there: judged against its weights').
        let mut check = |name: String, ours: Vec<f32>, theirs: Vec<f32>, floor: f32| -> f32 {
            let scale = theirs.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert_eq!(ours.len(), theirs.len(), "{name}");
            assert!(
                worst <= 1e-4 * scale.max(floor),
                "{name}: off by {worst} (largest {scale})"
            );
            compared += 1;
            scale
        };
        for (l, (weight, bias)) in cpu.ids.conv.iter().enumerate() {
            let name = &cpu.layers[l].layer.conv;
            let scale = check(
                format!("{name}.weight"),
                values(params.get::<4>(*weight).unwrap()),
                values(burn.get::<4>(*weight).unwrap()),
                0.0,
            );
            assert!(scale > 0.0, "{name}'s weights have a gradient");
            if let Some(bias) = bias {
                let floor = if cpu.layers[l].norm.is_some() {
                    scale
                } else {
                    0.0
                };
                check(
                    format!("{name}.bias"),
                    values(params.get::<1>(*bias).unwrap()),
                    values(burn.get::<1>(*bias).unwrap()),
                    floor,
                );
            }
        }
        // A shift whose every consumer is normalised again (the last residual norm's beta) has
        // no gradient either: betas are judged against their gammas' magnitude.
        for (gamma, beta) in cpu.ids.norm.iter().flatten() {
            let scale = check(
                "norm gamma".into(),
                values(params.get::<1>(*gamma).unwrap()),
                values(burn.get::<1>(*gamma).unwrap()),
                0.0,
            );
            check(
                "norm beta".into(),
                values(params.get::<1>(*beta).unwrap()),
                values(burn.get::<1>(*beta).unwrap()),
                scale,
            );
        }
        let (gammas, betas) = cpu.ids.table.as_ref().unwrap();
        for (gamma, beta) in gammas.iter().zip(betas) {
            let scale = check(
                "style table gamma".into(),
                values(table.get::<2>(*gamma).unwrap()),
                values(burn.get::<2>(*gamma).unwrap()),
                0.0,
            );
            check(
                "style table beta".into(),
                values(table.get::<2>(*beta).unwrap()),
                values(burn.get::<2>(*beta).unwrap()),
                scale,
            );
        }
        assert_eq!(compared, burn.len(), "every parameter compared");
    }
}
