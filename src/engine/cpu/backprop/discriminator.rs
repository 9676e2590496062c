//! The PatchGAN discriminator's training pass on the CPU ([`Discriminator`]): zero-padded 4×4
//! convolutions, instance norm, leaky ReLU and a score head per style, forward and backward.

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{
    ConvGrads, ConvWeights, Map, NormState, Padding, add_into, norm, norm_backward, pad,
    pad_backward, parts_for,
};
use crate::engine::cpu::parallel::par_map;
use crate::engine::cpu::to_vec;
use crate::model::Discriminator;
use crate::model::norm::EPSILON;

/// Leaky ReLU's slope below zero (as [`Discriminator::forward`]).
const SLOPE: f32 = 0.2;

/// A [`Discriminator`]'s weights, read for training passes on the CPU.
pub struct DiscriminatorGrad {
    /// The stages, then the head (which has no norm and no activation).
    convs: Vec<ConvWeights>,
    norms: Vec<Option<(Vec<f32>, Vec<f32>)>>,
    pad: usize,
    ids: Vec<(ParamId, Option<ParamId>)>,
    norm_ids: Vec<Option<(ParamId, ParamId)>>,
}

/// What a forward pass kept for its backward pass, and each sample's scores.
pub struct DiscriminatorTape {
    samples: Vec<SampleTape>,
    mixes: Vec<Vec<f32>>,
}

struct SampleTape {
    /// Per convolution: its padded input, its output where a norm follows (with the
    /// statistics), and the activation's output (stages only).
    layers: Vec<LayerTape>,
    /// `[heads, h, w]` scores of every head.
    heads: Map,
}

type LayerTape = (Map, Option<(Map, NormState)>, Option<Map>);

/// A batch of images (`[channels, h, w]` each) and each one's mix of heads (empty: the one head).
pub type ImageSet<'a> = (&'a [Vec<f32>], &'a [Vec<f32>]);

/// The weight gradients of a discriminator (summed over the samples).
pub struct DiscriminatorGrads {
    conv: Vec<ConvGrads>,
    norms: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

impl DiscriminatorGrad {
    pub fn new(d: &Discriminator) -> Self {
        let convs: Vec<_> = d.convs().collect();
        let norms: Vec<_> = d.norms().collect();
        Self {
            pad: crate::model::discriminator::PADDING,
            ids: convs
                .iter()
                .map(|c| (c.weight.id, c.bias.as_ref().map(|b| b.id)))
                .collect(),
            norm_ids: norms
                .iter()
                .map(|n| {
                    n.map(|n| {
                        let (g, b) = n.params();
                        (g.id, b.id)
                    })
                })
                .collect(),
            norms: norms
                .iter()
                .map(|n| {
                    n.map(|n| {
                        let (g, b) = n.affine();
                        (to_vec(g), to_vec(b))
                    })
                })
                .collect(),
            convs: convs.iter().map(|c| ConvWeights::of(c)).collect(),
        }
    }

    /// Each image's scores (`[h', w']`) from its mix of heads `mixes[i]` (`[heads]`; empty: the
    /// one head), and what the backward pass needs. Samples run in parallel.
    pub fn forward(
        &self,
        images: &[Vec<f32>],
        shape: (usize, usize, usize),
        mixes: &[Vec<f32>],
    ) -> DiscriminatorTape {
        let mut tapes = self.forward_sets(&[(images, mixes)], shape);
        tapes.pop().expect("a tape per set")
    }

    /// [`Self::forward`] of several batches at once (`sets`: each one's images and mixes), one
    /// tape per set: every sample of every set in parallel, so that a batch of one and its
    /// counterpart (real and generated pairs) run side by side, each on a core, instead of each
    /// splitting its convolutions over the cores in turn.
    pub fn forward_sets(
        &self,
        sets: &[ImageSet],
        (channels, h, w): (usize, usize, usize),
    ) -> Vec<DiscriminatorTape> {
        for (images, mixes) in sets {
            assert!(
                mixes.is_empty() || mixes.len() == images.len(),
                "a mix per sample"
            );
        }
        let all: Vec<&Vec<f32>> = sets.iter().flat_map(|(images, _)| images.iter()).collect();
        let parts = parts_for(all.len());
        let mut samples = par_map(all.len(), |i| {
            self.forward_one(Map::new(channels, h, w, all[i].clone()), parts)
        })
        .into_iter();
        sets.iter()
            .map(|(images, mixes)| DiscriminatorTape {
                samples: samples.by_ref().take(images.len()).collect(),
                mixes: mixes.to_vec(),
            })
            .collect()
    }

    fn forward_one(&self, mut x: Map, parts: usize) -> SampleTape {
        let mut layers = Vec::with_capacity(self.convs.len());
        let last = self.convs.len() - 1;
        for (l, conv) in self.convs.iter().enumerate() {
            let padded = pad(&x, self.pad, Padding::Zero);
            let y = conv.forward(&padded, parts);
            if l == last {
                layers.push((padded, None, None));
                return SampleTape { layers, heads: y };
            }
            let (mut out, normed) = match &self.norms[l] {
                Some((gamma, beta)) => {
                    let (out, state) = norm(&y, gamma, beta, EPSILON);
                    (out, Some((y, state)))
                }
                None => (y, None),
            };
            out.data
                .iter_mut()
                .for_each(|v| *v = if *v > 0.0 { *v } else { SLOPE * *v });
            x = out.clone();
            layers.push((padded, normed, Some(out)));
        }
        unreachable!("a discriminator ends with its head")
    }

    /// The gradients of a loss given its gradient with respect to each sample's scores
    /// (`[h', w']`): the weights' (unless `weights` is false) and, with `inputs`, the images'.
    pub fn backward(
        &self,
        tape: &DiscriminatorTape,
        d_scores: &[Vec<f32>],
        weights: bool,
        inputs: bool,
    ) -> (Option<DiscriminatorGrads>, Vec<Vec<f32>>) {
        let mut sets = self.backward_sets(&[(tape, d_scores)], weights, inputs);
        sets.pop().expect("a result per set")
    }

    /// [`Self::backward`] of several tapes at once (`sets`: each tape and its scores'
    /// gradients), one result per set; every sample of every set in parallel (see
    /// [`Self::forward_sets`]).
    pub fn backward_sets(
        &self,
        sets: &[(&DiscriminatorTape, &[Vec<f32>])],
        weights: bool,
        inputs: bool,
    ) -> Vec<(Option<DiscriminatorGrads>, Vec<Vec<f32>>)> {
        let mut all = Vec::new();
        for (set, (tape, d_scores)) in sets.iter().enumerate() {
            assert_eq!(d_scores.len(), tape.samples.len(), "a gradient per sample");
            all.extend((0..d_scores.len()).map(|i| (set, i)));
        }
        let parts = parts_for(all.len());
        let per_sample = par_map(all.len(), |k| {
            let (set, i) = all[k];
            let (tape, d_scores) = sets[set];
            let mix = tape.mixes.get(i).map_or(&[][..], Vec::as_slice);
            self.backward_one(&tape.samples[i], &d_scores[i], mix, weights, inputs, parts)
        });
        let mut results: Vec<(Option<DiscriminatorGrads>, Vec<Vec<f32>>)> =
            sets.iter().map(|_| (None, Vec::new())).collect();
        for (&(set, _), (grads, image)) in all.iter().zip(per_sample) {
            let (total, images) = &mut results[set];
            images.extend(image);
            if let Some(grads) = grads {
                match total.as_mut() {
                    None => *total = Some(grads),
                    Some(t) => t.add(&grads),
                }
            }
        }
        results
    }

    fn backward_one(
        &self,
        tape: &SampleTape,
        d_scores: &[f32],
        mix: &[f32],
        weights: bool,
        inputs: bool,
        parts: usize,
    ) -> (Option<DiscriminatorGrads>, Option<Vec<f32>>) {
        let heads = &tape.heads;
        let plane = heads.plane();
        assert_eq!(d_scores.len(), plane, "one gradient per score");
        // scores = Σ_k mix_k · head_k (one head: the head itself).
        let mut g = Map::zeros(heads.c, heads.h, heads.w);
        for k in 0..heads.c {
            let m = if mix.is_empty() { 1.0 } else { mix[k] };
            for (d, &v) in g.data[k * plane..(k + 1) * plane].iter_mut().zip(d_scores) {
                *d = m * v;
            }
        }
        let mut conv: Vec<ConvGrads> = self.convs.iter().map(ConvGrads::zeros).collect();
        let mut norms = vec![None; self.convs.len()];
        for l in (0..self.convs.len()).rev() {
            let (padded, normed, activated) = &tape.layers[l];
            if let Some(out) = activated {
                for (d, &v) in g.data.iter_mut().zip(&out.data) {
                    if v <= 0.0 {
                        *d *= SLOPE;
                    }
                }
            }
            if let (Some((y, state)), Some((gamma, _))) = (normed, &self.norms[l]) {
                norms[l] = Some(norm_backward(y, state, gamma, &mut g));
            }
            let need_input = l > 0 || inputs;
            let mut scratch;
            let grads = if weights {
                &mut conv[l]
            } else {
                scratch = ConvGrads::zeros(&self.convs[l]);
                &mut scratch
            };
            let Some(dpadded) =
                self.convs[l].backward_with(padded, &g, grads, weights, need_input, parts)
            else {
                break;
            };
            g = pad_backward(&dpadded, self.pad, Padding::Zero);
        }
        let image = inputs.then_some(g.data);
        let grads = weights.then_some(DiscriminatorGrads { conv, norms });
        (grads, image)
    }
}

impl DiscriminatorTape {
    /// Each sample's scores, `[h', w']`: its mix of the heads.
    pub fn scores(&self) -> Vec<Vec<f32>> {
        self.samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let heads = &s.heads;
                let plane = heads.plane();
                let mut out = vec![0.0f32; plane];
                for k in 0..heads.c {
                    let m = self.mixes.get(i).map_or(1.0, |mix| mix[k]);
                    for (o, &v) in out.iter_mut().zip(&heads.data[k * plane..(k + 1) * plane]) {
                        *o += m * v;
                    }
                }
                out
            })
            .collect()
    }

    /// The scores' shape, `[h', w']`.
    pub fn score_size(&self) -> (usize, usize) {
        self.samples
            .first()
            .map_or((0, 0), |s| (s.heads.h, s.heads.w))
    }
}

impl DiscriminatorGrads {
    /// Adds `other`'s gradients (another batch's, of the same network).
    pub fn add(&mut self, other: &DiscriminatorGrads) {
        for (a, b) in self.conv.iter_mut().zip(&other.conv) {
            a.add(b);
        }
        for (a, b) in self.norms.iter_mut().zip(&other.norms) {
            if let (Some((ag, ab)), Some((bg, bb))) = (a.as_mut(), b) {
                add_into(ag, bg);
                add_into(ab, bb);
            }
        }
    }

    /// Burn's gradients of the discriminator's parameters, on `device` (the training device).
    pub fn into_params(self, of: &DiscriminatorGrad, device: &Device) -> GradientsParams {
        let device = device.clone().inner();
        let mut params = GradientsParams::new();
        for ((grads, c), (weight, bias)) in self.conv.into_iter().zip(&of.convs).zip(&of.ids) {
            params.register(
                *weight,
                Tensor::<4>::from_data(
                    TensorData::new(grads.weight, [c.cout, c.cin, c.k, c.k]),
                    &device,
                ),
            );
            if let Some(bias) = bias {
                params.register(
                    *bias,
                    Tensor::<1>::from_data(TensorData::new(grads.bias, [c.cout]), &device),
                );
            }
        }
        for (grads, ids) in self.norms.into_iter().zip(&of.norm_ids) {
            if let (Some((dg, db)), Some((g, b))) = (grads, ids) {
                let n = dg.len();
                params.register(
                    *g,
                    Tensor::<1>::from_data(TensorData::new(dg, [n]), &device),
                );
                params.register(
                    *b,
                    Tensor::<1>::from_data(TensorData::new(db, [n]), &device),
                );
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DiscriminatorConfig;
    use crate::rng::Rng;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        to_vec(t)
    }

    /// `ours` within 1e-4 of `theirs`' largest magnitude (or of `floor`, for gradients that are
    /// rounding on both sides); returns that magnitude.
    fn close(what: &str, ours: &[f32], theirs: &[f32], floor: f32) -> f32 {
        assert_eq!(ours.len(), theirs.len(), "{what}");
        let scale = theirs.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale.max(floor),
            "{what}: off by {worst} (largest {scale})"
        );
        scale
    }

    #[test]
    fn gradients_equal_burns_autodiff() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(8);
        let d = DiscriminatorConfig::new(4).with_heads(3).init(&device);
        // 44 × 36: odd sizes after the stride-2 stages, partial im2col chunks.
        let (batch, h, w) = (2, 44, 36);
        let images: Vec<Vec<f32>> = (0..batch).map(|_| random(3 * h * w, &mut rng)).collect();
        let mixes = vec![vec![0.0, 0.0, 1.0], vec![0.5, 0.5, 0.0]];
        let cpu = DiscriminatorGrad::new(&d);
        let tape = cpu.forward(&images, (3, h, w), &mixes);
        let (sh, sw) = tape.score_size();
        let seeds: Vec<Vec<f32>> = (0..batch).map(|_| random(sh * sw, &mut rng)).collect();

        let x = Tensor::<4>::from_data(TensorData::new(images.concat(), [batch, 3, h, w]), &device)
            .require_grad();
        let mix = Tensor::<2>::from_data(TensorData::new(mixes.concat(), [batch, 3]), &device);
        let seed =
            Tensor::<4>::from_data(TensorData::new(seeds.concat(), [batch, 1, sh, sw]), &device);
        let scores = d.forward_heads(x.clone(), &mix);
        close(
            "scores",
            &tape.scores().concat(),
            &values(scores.clone()),
            0.0,
        );
        let mut grads = (scores * seed).sum().backward();
        let theirs_x = values(x.grad(&grads).unwrap());
        let burn = GradientsParams::from_module(&mut grads, &d);

        let (ours, ours_x) = cpu.backward(&tape, &seeds, true, true);
        close("the images' gradient", &ours_x.concat(), &theirs_x, 0.0);
        let params = ours.unwrap().into_params(&cpu, &device);
        assert_eq!(params.len(), burn.len(), "a gradient for every parameter");
        for (l, (weight, bias)) in cpu.ids.iter().enumerate() {
            let scale = close(
                &format!("conv {l} weight"),
                &values(params.get::<4>(*weight).unwrap()),
                &values(burn.get::<4>(*weight).unwrap()),
                0.0,
            );
            assert!(scale > 0.0, "conv {l} has a gradient");
            if let Some(bias) = bias {
                // A bias before a norm has no gradient: rounding on both sides.
                let floor = if cpu.norms[l].is_some() { scale } else { 0.0 };
                close(
                    &format!("conv {l} bias"),
                    &values(params.get::<1>(*bias).unwrap()),
                    &values(burn.get::<1>(*bias).unwrap()),
                    floor,
                );
            }
        }
        for (gamma, beta) in cpu.norm_ids.iter().flatten() {
            for id in [gamma, beta] {
                close(
                    "norm",
                    &values(params.get::<1>(*id).unwrap()),
                    &values(burn.get::<1>(*id).unwrap()),
                    0.0,
                );
            }
        }
        // Input gradients alone are the same, and skip the weights.
        let (none, alone) = cpu.backward(&tape, &seeds, false, true);
        assert!(none.is_none());
        close("input gradient alone", &alone.concat(), &theirs_x, 0.0);
    }
}
