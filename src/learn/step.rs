//! One training step per mode, on any device: CycleGAN (unpaired), pix2pix (paired) and the
//! noise GAN, with their networks, optimisers, losses and weight initialisation. No files, no
//! clock, no threads: the native `train::Trainer` feeds it batches and keeps checkpoints, and it
//! builds for wasm32 (`--features learn`) for training in the page. Each step returns its losses
//! with their names.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use super::config::{AdversarialLoss, Mode, TrainConfig};
use super::losses::{adversarial, generator_adversarial, l1, skin_map};
use crate::engine::cpu::{
    CpuVgg, DiscriminatorGrad, DiscriminatorGrads, DiscriminatorTape, GeneratorGrad, GeneratorTape,
    ImageDiscriminatorGrad, LatentGeneratorGrad, Targets, VggLoss, add_into,
};
use crate::model::{
    Discriminator, Generator, ImageDiscriminator, LatentGenerator, NormStats, Vgg19, gram,
};
use crate::rng::Rng;

/// A step's losses, named as in `losses.csv` ([`TrainConfig::loss_columns`]).
pub type Losses = Vec<(&'static str, f32)>;

/// Why a step gave no losses.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("reading losses from the device failed: {0}")]
    ReadBack(String),
}

pub enum Nets {
    Transfer(Box<TransferNets>),
    Noise(Box<NoiseNets>),
}

/// Noise mode: the generator, its judge, and the generator's moving average (kept off the
/// autodiff graph).
pub struct NoiseNets {
    pub(crate) g: LatentGenerator,
    pub(crate) opt_g: ModuleOptimizer,
    pub(crate) d: ImageDiscriminator,
    pub(crate) opt_d: ModuleOptimizer,
    pub(crate) ema: LatentGenerator,
}

impl NoiseNets {
    /// The generator being trained.
    pub fn generator(&self) -> &LatentGenerator {
        &self.g
    }

    /// Its judge.
    pub fn discriminator(&self) -> &ImageDiscriminator {
        &self.d
    }
}

pub struct TransferNets {
    pub(crate) g: Generator,
    pub(crate) opt_g: ModuleOptimizer,
    pub(crate) d: Discriminator,
    pub(crate) opt_d: ModuleOptimizer,
    /// Unpaired mode only: the way back and its judge.
    pub(crate) back: Option<Back>,
    /// Styles mode: the style table's own optimiser (it learns faster: see
    /// [`TrainConfig::style_table_lr_factor`]).
    pub(crate) opt_styles: Option<ModuleOptimizer>,
}

pub struct Back {
    pub(crate) f: Generator,
    pub(crate) opt_f: ModuleOptimizer,
    pub(crate) d_content: Discriminator,
    pub(crate) opt_d_content: ModuleOptimizer,
}

/// One transfer step: generators first (adversarial + cycle/identity or L1, + VGG losses),
/// then the discriminators on real and (detached) generated images. With `cpu` (training on
/// the CPU) and no VGG19 losses, the networks run on our CPU path
/// ([`transfer_gradients_cpu`]); otherwise through Burn's autodiff ([`transfer_gradients`]).
#[allow(clippy::too_many_arguments)]
pub fn transfer_step(
    nets: &mut TransferNets,
    input: Tensor<4>,
    target: Tensor<4>,
    lr: f64,
    config: &TrainConfig,
    vgg: Option<&Vgg19>,
    cpu: bool,
    device: &Device,
) -> Result<Losses, StepError> {
    let grads = if cpu && vgg.is_none() {
        transfer_gradients_cpu(nets, input, target, config, device)
    } else {
        transfer_gradients(nets, input, target, config, vgg, device)
    };
    nets.g = nets.opt_g.step(lr, nets.g.clone(), grads.generator);
    nets.d = nets.opt_d.step(lr, nets.d.clone(), grads.discriminator);
    if let (Some(back), Some((f, d))) = (nets.back.as_mut(), grads.back) {
        back.f = back.opt_f.step(lr, back.f.clone(), f);
        back.d_content = back.opt_d_content.step(lr, back.d_content.clone(), d);
    }
    read_losses(grads.losses)
}

/// A transfer step's gradients, before any optimiser step.
pub struct TransferGradients {
    pub generator: GradientsParams,
    pub discriminator: GradientsParams,
    /// Unpaired mode: the way back's generator and its discriminator.
    pub back: Option<(GradientsParams, GradientsParams)>,
    pub losses: Vec<(&'static str, Tensor<1>)>,
}

/// [`transfer_step`]'s gradients through Burn's autodiff (any device, any losses). The
/// discriminators judge the generated images of this step's (not yet updated) generators.
pub fn transfer_gradients(
    nets: &TransferNets,
    input: Tensor<4>,
    target: Tensor<4>,
    config: &TrainConfig,
    vgg: Option<&Vgg19>,
    device: &Device,
) -> TransferGradients {
    let kind = config.adversarial;
    match &nets.back {
        Some(back) => {
            let (a, b) = (input, target);
            let fake_b = nets.g.forward(a.clone());
            let fake_a = back.f.forward(b.clone());
            // The discriminators as constants here: only their inputs' gradients are needed, and
            // their own (which no optimiser takes) would cost a weight gradient per layer.
            let g_adv = generator_adversarial(kind, frozen(&nets.d).forward(fake_b.clone()));
            let f_adv =
                generator_adversarial(kind, frozen(&back.d_content).forward(fake_a.clone()));
            let cycle = l1(back.f.forward(fake_b.clone()), a.clone())
                + l1(nets.g.forward(fake_a.clone()), b.clone());
            let identity = if config.identity_weight > 0.0 {
                l1(nets.g.forward(b.clone()), b.clone()) + l1(back.f.forward(a.clone()), a.clone())
            } else {
                Tensor::zeros([1], device)
            };
            let (perceptual, style) = vgg_losses(vgg, config, &fake_b, &a, &b, device);
            let loss = g_adv.clone()
                + f_adv.clone()
                + cycle.clone() * config.cycle_weight
                + identity.clone() * (config.cycle_weight * config.identity_weight)
                + perceptual.clone() * config.perceptual_weight
                + style.clone() * config.style_weight;
            let mut grads = loss.backward();
            let grads_g = GradientsParams::from_module(&mut grads, &nets.g);
            let grads_f = GradientsParams::from_module(&mut grads, &back.f);

            let d_style = (adversarial(kind, nets.d.forward(b), true)
                + adversarial(kind, nets.d.forward(fake_b.detach()), false))
                * 0.5;
            let d_content = (adversarial(kind, back.d_content.forward(a), true)
                + adversarial(kind, back.d_content.forward(fake_a.detach()), false))
                * 0.5;
            let mut grads = (d_style.clone() + d_content.clone()).backward();
            let grads_d = GradientsParams::from_module(&mut grads, &nets.d);
            let grads_dc = GradientsParams::from_module(&mut grads, &back.d_content);
            let mut losses = vec![
                ("g_adv", g_adv),
                ("f_adv", f_adv),
                ("cycle", cycle),
                ("identity", identity),
                ("d_style", d_style),
                ("d_content", d_content),
            ];
            if vgg.is_some() {
                losses.extend([("perceptual", perceptual), ("style", style)]);
            }
            TransferGradients {
                generator: grads_g,
                discriminator: grads_d,
                back: Some((grads_f, grads_dc)),
                losses,
            }
        }
        None => {
            let (before, after) = (input, target);
            let fake = nets.g.forward(before.clone());
            let pair = |x: Tensor<4>| Tensor::cat(vec![before.clone(), x], 1);
            let g_adv = generator_adversarial(kind, frozen(&nets.d).forward(pair(fake.clone())));
            let l1_loss = l1(fake.clone(), after.clone());
            let (perceptual, style) = vgg_losses(vgg, config, &fake, &after, &after, device);
            let loss = g_adv.clone()
                + l1_loss.clone() * config.l1_weight
                + perceptual.clone() * config.perceptual_weight
                + style.clone() * config.style_weight;
            let mut grads = loss.backward();
            let grads_g = GradientsParams::from_module(&mut grads, &nets.g);
            let d_loss = (adversarial(kind, nets.d.forward(pair(after)), true)
                + adversarial(kind, nets.d.forward(pair(fake.detach())), false))
                * 0.5;
            let mut grads = d_loss.backward();
            let grads_d = GradientsParams::from_module(&mut grads, &nets.d);
            let mut losses = vec![("g_adv", g_adv), ("l1", l1_loss), ("d", d_loss)];
            if vgg.is_some() {
                losses.extend([("perceptual", perceptual), ("style", style)]);
            }
            TransferGradients {
                generator: grads_g,
                discriminator: grads_d,
                back: None,
                losses,
            }
        }
    }
}

/// One styles-mode step ([`Mode::Styles`]): `content` photos, each sample's `style` crop and
/// `mix` (`[batch, styles]`, one-hot: the sample's style). The generator learns to keep the
/// photo's VGG19 features ([`content_distance`]) while taking its style's target Gram matrices
/// (`grams`, [`style_distance`]) and fooling that style's head of the discriminator, with a
/// total-variation term against speckle; then the discriminator learns, head by head, real
/// style crops from generated images.
#[allow(clippy::too_many_arguments)]
pub fn styles_step(
    nets: &mut TransferNets,
    content: Tensor<4>,
    style: Tensor<4>,
    mix: Tensor<2>,
    lr: f64,
    config: &TrainConfig,
    vgg: &Vgg19,
    cpu_vgg: Option<&CpuVgg>,
    grams: &StyleGrams,
    device: &Device,
) -> Result<Losses, StepError> {
    let grads = styles_gradients(
        nets, content, style, mix, config, vgg, cpu_vgg, grams, device,
    );
    // The style table steps on its own, faster (its parameters are the same inside the network).
    let table = nets.g.styles.take();
    nets.g = nets.opt_g.step(lr, nets.g.clone(), grads.generator);
    nets.g.styles = match (table, nets.opt_styles.as_mut(), grads.table) {
        (Some(table), Some(opt), Some(grads)) => {
            Some(opt.step(lr * config.style_table_lr_factor, table, grads))
        }
        (table, _, _) => table,
    };
    nets.d = nets.opt_d.step(lr, nets.d.clone(), grads.discriminator);
    read_losses(grads.losses)
}

/// A styles step's gradients, before any optimiser step: the generator's own weights', its
/// style table's and the discriminator's (which judges the generated images before the
/// generator's step), and the losses.
pub struct StylesGradients {
    pub generator: GradientsParams,
    pub table: Option<GradientsParams>,
    pub discriminator: GradientsParams,
    pub losses: Vec<(&'static str, Tensor<1>)>,
}

/// The gradients of [`styles_step`]. With `cpu_vgg` (training on the CPU) both networks and
/// VGG19 run on our CPU path ([`styles_gradients_cpu`]); without, Burn's autodiff computes
/// everything (the GPU, and the reference the tests hold the CPU path to).
#[allow(clippy::too_many_arguments)]
pub fn styles_gradients(
    nets: &TransferNets,
    content: Tensor<4>,
    style: Tensor<4>,
    mix: Tensor<2>,
    config: &TrainConfig,
    vgg: &Vgg19,
    cpu_vgg: Option<&CpuVgg>,
    grams: &StyleGrams,
    device: &Device,
) -> StylesGradients {
    if let Some(cpu) = cpu_vgg {
        return styles_gradients_cpu(nets, content, style, mix, config, cpu, grams, device);
    }
    let kind = config.adversarial;
    let fake = nets
        .g
        .forward_styled(content.clone(), Some(&mix), &mut NormStats::live());
    let scales =
        (!config.style_scales.is_empty()).then(|| mix_scales(&mix, &config.style_scale_table()));
    let skin = (config.skin_content_weight > 0.0).then(|| {
        let [_, _, h, w] = content.dims();
        skin_maps(&planes(&content), h, w)
    });
    let [content_loss, style_loss, vgg_term] = vgg_terms(
        vgg,
        None,
        &fake,
        content.clone(),
        &grams.for_mix(&mix),
        [config.perceptual_weight, config.style_weight],
        Emphasis {
            style_scales: scales.as_deref(),
            content_map: skin.as_deref().map(|map| (map, config.skin_content_weight)),
        },
        device,
    );
    let tv = total_variation(&fake);
    let g_adv = generator_adversarial(kind, frozen(&nets.d).forward_heads(fake.clone(), &mix));
    let loss = g_adv.clone() * config.adversarial_weight + vgg_term + tv.clone() * config.tv_weight;
    let mut grads = loss.backward();
    // The table's gradients first: the network's own then leave them out.
    let table = nets
        .g
        .styles
        .as_ref()
        .map(|table| GradientsParams::from_module(&mut grads, table));
    let generator = GradientsParams::from_module(&mut grads, &nets.g);
    let d_loss = (adversarial(kind, nets.d.forward_heads(style, &mix), true)
        + adversarial(kind, nets.d.forward_heads(fake.detach(), &mix), false))
        * 0.5;
    let mut grads = d_loss.backward();
    let discriminator = GradientsParams::from_module(&mut grads, &nets.d);
    StylesGradients {
        generator,
        table,
        discriminator,
        losses: vec![
            ("g_adv", g_adv),
            ("d", d_loss),
            ("content", content_loss),
            ("style", style_loss),
            ("tv", tv),
        ],
    }
}

/// [`transfer_step`]'s gradients without VGG19 losses, with every network's forward and
/// backward pass on our CPU path (`engine::cpu::backprop`): Burn only computes the losses, on
/// leaf tensors holding the networks' outputs, and hands back their gradients. The same losses
/// and gradients as Burn's autodiff (tests: `the_cpu_transfer_gradients_equal_burns_autodiff`).
pub fn transfer_gradients_cpu(
    nets: &TransferNets,
    input: Tensor<4>,
    target: Tensor<4>,
    config: &TrainConfig,
    device: &Device,
) -> TransferGradients {
    let kind = config.adversarial;
    let [batch, channels, h, w] = input.dims();
    let image = |values: Vec<Vec<f32>>| leaf(values, [batch, channels, h, w], device);
    let outputs =
        |tape: &GeneratorTape| -> Vec<Vec<f32>> { tape.outputs().map(<[f32]>::to_vec).collect() };
    let g = GeneratorGrad::new(&nets.g);
    let d = DiscriminatorGrad::new(&nets.d);
    let Some(back) = &nets.back else {
        // Paired: the discriminator judges (photo, result) pairs, six channels.
        let (before, after) = (planes(&input), planes(&target));
        let pair = |x: &[Vec<f32>]| -> Vec<Vec<f32>> {
            before
                .iter()
                .zip(x)
                .map(|(b, x)| [b.as_slice(), x].concat())
                .collect()
        };
        let tape = g.forward(&before, h, w, &[]);
        let fake = outputs(&tape);
        // The real pairs' pass (the judge's own) runs with the generated ones'.
        let (judged, reals) = judge_both(&d, &pair(&fake), &pair(&after), (2 * channels, h, w));
        let (fake, scores) = (image(fake), scores_leaf(&judged, device));
        let g_adv = generator_adversarial(kind, scores.clone());
        let l1_loss = l1(fake.clone(), target);
        let grads = (g_adv.clone() + l1_loss.clone() * config.l1_weight).backward();
        let (_, d_pairs) = d.backward(&judged, &grad_planes(&scores, &grads), false, true);
        let mut d_fake = grad_planes(&fake, &grads);
        for (df, dp) in d_fake.iter_mut().zip(&d_pairs) {
            add_into(df, &dp[channels * h * w..]);
        }
        let (generator, _) = g.backward(&tape, &d_fake).into_params(&g, device);
        let (grads_d, d_loss) = judge_gradients(&d, &reals, &judged, kind, device);
        return TransferGradients {
            generator,
            discriminator: grads_d.into_params(&d, device),
            back: None,
            losses: vec![("g_adv", g_adv), ("l1", l1_loss), ("d", d_loss)],
        };
    };
    // Unpaired (CycleGAN): G takes a to b, F takes b back to a.
    let f = GeneratorGrad::new(&back.f);
    let d_content = DiscriminatorGrad::new(&back.d_content);
    let (a, b) = (input, target);
    let (pa, pb) = (planes(&a), planes(&b));
    let shape = (channels, h, w);
    let g_a = g.forward(&pa, h, w, &[]);
    let f_b = f.forward(&pb, h, w, &[]);
    let (fake_b, fake_a) = (outputs(&g_a), outputs(&f_b));
    let (judged_b, real_b) = judge_both(&d, &fake_b, &pb, shape);
    let (judged_a, real_a) = judge_both(&d_content, &fake_a, &pa, shape);
    // The cycle: F and G again, on the other's results.
    let f_rec = f.forward(&fake_b, h, w, &[]);
    let g_rec = g.forward(&fake_a, h, w, &[]);
    let identity_tapes = (config.identity_weight > 0.0)
        .then(|| (g.forward(&pb, h, w, &[]), f.forward(&pa, h, w, &[])));
    let (scores_b, scores_a) = (
        scores_leaf(&judged_b, device),
        scores_leaf(&judged_a, device),
    );
    let (rec_a, rec_b) = (image(outputs(&f_rec)), image(outputs(&g_rec)));
    let g_adv = generator_adversarial(kind, scores_b.clone());
    let f_adv = generator_adversarial(kind, scores_a.clone());
    let cycle = l1(rec_a.clone(), a.clone()) + l1(rec_b.clone(), b.clone());
    let identities = identity_tapes
        .as_ref()
        .map(|(gb, fa)| (image(outputs(gb)), image(outputs(fa))));
    let identity = match &identities {
        Some((gb, fa)) => l1(gb.clone(), b.clone()) + l1(fa.clone(), a.clone()),
        None => Tensor::zeros([1], device),
    };
    let grads = (g_adv.clone()
        + f_adv.clone()
        + cycle.clone() * config.cycle_weight
        + identity.clone() * (config.cycle_weight * config.identity_weight))
        .backward();
    // Back through the cycle's second networks to the first ones' results, which also get the
    // discriminators' gradients.
    let (mut grads_f, d_fake_b) = f.backward_inputs(&f_rec, &grad_planes(&rec_a, &grads));
    let (mut grads_g, d_fake_a) = g.backward_inputs(&g_rec, &grad_planes(&rec_b, &grads));
    let (_, adv_b) = d.backward(&judged_b, &grad_planes(&scores_b, &grads), false, true);
    let (_, adv_a) = d_content.backward(&judged_a, &grad_planes(&scores_a, &grads), false, true);
    let sum = |mut x: Vec<Vec<f32>>, y: &[Vec<f32>]| {
        x.iter_mut().zip(y).for_each(|(x, y)| add_into(x, y));
        x
    };
    grads_g.add(&g.backward(&g_a, &sum(d_fake_b, &adv_b)));
    grads_f.add(&f.backward(&f_b, &sum(d_fake_a, &adv_a)));
    if let (Some((tape_g, tape_f)), Some((gb, fa))) = (&identity_tapes, &identities) {
        grads_g.add(&g.backward(tape_g, &grad_planes(gb, &grads)));
        grads_f.add(&f.backward(tape_f, &grad_planes(fa, &grads)));
    }
    let (grads_d, d_style) = judge_gradients(&d, &real_b, &judged_b, kind, device);
    let (grads_dc, d_content_loss) = judge_gradients(&d_content, &real_a, &judged_a, kind, device);
    TransferGradients {
        generator: grads_g.into_params(&g, device).0,
        discriminator: grads_d.into_params(&d, device),
        back: Some((
            grads_f.into_params(&f, device).0,
            grads_dc.into_params(&d_content, device),
        )),
        losses: vec![
            ("g_adv", g_adv),
            ("f_adv", f_adv),
            ("cycle", cycle),
            ("identity", identity),
            ("d_style", d_style),
            ("d_content", d_content_loss),
        ],
    }
}

/// A discriminator's passes on generated and on real images (one head) at once, side by side on
/// the cores ([`DiscriminatorGrad::forward_sets`]): their tapes, in that order.
fn judge_both(
    judge: &DiscriminatorGrad,
    fakes: &[Vec<f32>],
    reals: &[Vec<f32>],
    shape: (usize, usize, usize),
) -> (DiscriminatorTape, DiscriminatorTape) {
    let mut tapes = judge
        .forward_sets(&[(fakes, &[]), (reals, &[])], shape)
        .into_iter();
    (tapes.next().expect("a tape"), tapes.next().expect("a tape"))
}

/// A leaf of Burn's graph holding `values` (one `Vec` per sample), whose gradient Burn computes.
fn leaf(values: Vec<Vec<f32>>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(values.concat(), shape), device).require_grad()
}

/// A discriminator pass's scores as a leaf, `[batch, 1, h', w']`.
fn scores_leaf(tape: &DiscriminatorTape, device: &Device) -> Tensor<4> {
    let scores = tape.scores();
    let (sh, sw) = tape.score_size();
    let batch = scores.len();
    leaf(scores, [batch, 1, sh, sw], device)
}

/// A leaf's gradient, one `Vec` per sample.
fn grad_planes(leaf: &Tensor<4>, grads: &Gradients) -> Vec<Vec<f32>> {
    planes(&leaf.grad(grads).expect("a leaf of the loss has a gradient"))
}

/// A discriminator's loss (half its loss on `reals` plus half on `fakes`, both passes of its
/// current weights) and its weights' gradients.
fn judge_gradients(
    judge: &DiscriminatorGrad,
    reals: &DiscriminatorTape,
    fakes: &DiscriminatorTape,
    kind: AdversarialLoss,
    device: &Device,
) -> (DiscriminatorGrads, Tensor<1>) {
    let (real, fake) = (scores_leaf(reals, device), scores_leaf(fakes, device));
    let loss =
        (adversarial(kind, real.clone(), true) + adversarial(kind, fake.clone(), false)) * 0.5;
    let grads = loss.backward();
    let (d_real, d_fake) = (grad_planes(&real, &grads), grad_planes(&fake, &grads));
    let mut sets = judge
        .backward_sets(&[(reals, &d_real), (fakes, &d_fake)], true, false)
        .into_iter()
        .map(|(weights, _)| weights.expect("weight gradients"));
    let mut sum = sets.next().expect("the real images' gradients");
    sum.add(&sets.next().expect("the generated images' gradients"));
    (sum, loss)
}

/// [`styles_gradients`] on the CPU: both networks' forward and backward passes and VGG19's losses run
/// on our CPU path ([`GeneratorGrad`], [`DiscriminatorGrad`], [`CpuVgg`]); Burn computes the
/// adversarial and TV losses on their scores and images (small tensors) and steps the
/// optimisers. Same losses and gradients as the Burn path (tests), in a fraction of the time.
#[allow(clippy::too_many_arguments)]
fn styles_gradients_cpu(
    nets: &TransferNets,
    content: Tensor<4>,
    style: Tensor<4>,
    mix: Tensor<2>,
    config: &TrainConfig,
    cpu: &CpuVgg,
    grams: &StyleGrams,
    device: &Device,
) -> StylesGradients {
    let kind = config.adversarial;
    let [batch, channels, h, w] = content.dims();
    let photos = planes(&content);
    let mixes = planes(&mix.clone().reshape([batch, mix.dims()[1], 1, 1]));
    let generator = GeneratorGrad::new(&nets.g);
    let tape = generator.forward(&photos, h, w, &mixes);
    let images: Vec<Vec<f32>> = tape.outputs().map(<[f32]>::to_vec).collect();
    let scales =
        (!config.style_scales.is_empty()).then(|| mix_scales(&mix, &config.style_scale_table()));
    let skin = (config.skin_content_weight > 0.0).then(|| skin_maps(&photos, h, w));
    let vgg = cpu_vgg_loss(
        cpu,
        &images,
        &photos,
        (h, w),
        &grams.for_mix(&mix),
        [config.perceptual_weight, config.style_weight],
        Emphasis {
            style_scales: scales.as_deref(),
            content_map: skin.as_deref().map(|map| (map, config.skin_content_weight)),
        },
    );
    // The discriminator on our CPU path too; Burn computes the losses on its scores and the TV
    // term on the images, as leaves of its graph, and hands back their gradients.
    let judge = DiscriminatorGrad::new(&nets.d);
    let fakes = judge.forward(&images, (channels, h, w), &mixes);
    let fake = leaf(images, [batch, channels, h, w], device);
    let fake_scores = scores_leaf(&fakes, device);
    let tv = total_variation(&fake);
    let g_adv = generator_adversarial(kind, fake_scores.clone());
    let grads =
        (g_adv.clone() * config.adversarial_weight + tv.clone() * config.tv_weight).backward();
    let (_, d_adv) = judge.backward(&fakes, &grad_planes(&fake_scores, &grads), false, true);
    let mut d_images = grad_planes(&fake, &grads);
    for ((d, a), v) in d_images.iter_mut().zip(&d_adv).zip(&vgg.grad) {
        add_into(d, a);
        add_into(d, v);
    }
    let (params, table) = generator
        .backward(&tape, &d_images)
        .into_params(&generator, device);
    drop(tape);
    // The discriminator's gradients: it judged the generated images above with the same
    // weights, so that forward pass serves again.
    let reals = judge.forward(&planes(&style), (channels, h, w), &mixes);
    let (grads_d, d_loss) = judge_gradients(&judge, &reals, &fakes, kind, device);
    let scalar = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), device);
    StylesGradients {
        generator: params,
        table,
        discriminator: grads_d.into_params(&judge, device),
        losses: vec![
            ("g_adv", g_adv),
            ("d", d_loss),
            ("content", scalar(vgg.content)),
            ("style", scalar(vgg.style)),
            ("tv", tv),
        ],
    }
}

/// [`skin_map`] of each photo (`[3, h, w]` planes), `[batch, h, w]`.
fn skin_maps(photos: &[Vec<f32>], h: usize, w: usize) -> Vec<f32> {
    photos.iter().flat_map(|p| skin_map(p, h, w)).collect()
}

/// Each sample's multiple of the style weight: its mix (`[batch, styles]`) of the styles' `table`,
/// `mix · table` as [`StyleGrams::for_mix`] mixes the target Gram matrices.
fn mix_scales(mix: &Tensor<2>, table: &[f32]) -> Vec<f32> {
    let [_, styles] = mix.dims();
    assert_eq!(styles, table.len(), "one style scale per style");
    let table = Tensor::<2>::from_data(TensorData::new(table.to_vec(), [styles, 1]), &mix.device());
    mix.clone()
        .detach()
        .matmul(table)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 scales")
}

/// The styles mode's content loss: the relative squared distance of the output's VGG19 features
/// to the photo's at relu3_1 and relu4_1, `Σ‖F(out) − F(photo)‖² / Σ‖F(photo)‖²` per sample,
/// averaged. Relative, so every photo and layer weighs alike.
pub fn content_distance(out: &[Tensor<4>], photo: &[Tensor<4>], device: &Device) -> Tensor<1> {
    emphasised_content_distance(out, photo, None, device)
}

/// [`content_distance`] with each feature position's squared distance weighed by
/// `1 + k ·` the mean of `map` (`[batch, 1, h, w]` in [0, 1], at the image's size) over the block
/// of pixels the position stands for, where `emphasis` is `Some((map, k))`
/// ([`Emphasis::content_map`]).
pub fn emphasised_content_distance(
    out: &[Tensor<4>],
    photo: &[Tensor<4>],
    emphasis: Option<(&Tensor<4>, f32)>,
    device: &Device,
) -> Tensor<1> {
    let mut loss = Tensor::zeros([1], device);
    for layer in [2, 3] {
        let p = photo[layer].clone().detach();
        let mut squared = (out[layer].clone() - p.clone()).square();
        if let Some((map, k)) = emphasis {
            let [b, c, fh, fw] = squared.dims();
            let [_, _, h, w] = map.dims();
            let block = [h / fh, w / fw];
            let pooled = burn::tensor::module::avg_pool2d(
                map.clone().detach(),
                burn::tensor::ops::AvgPoolOptions::new(block).with_stride(block),
            );
            let weights = (pooled * k + 1.0).expand([b, c, fh, fw]);
            squared = squared * weights;
        }
        let diff = per_sample_sum(squared);
        loss = loss + (diff / (per_sample_sum(p.square()) + 1e-6)).mean();
    }
    loss
}

/// The styles mode's style loss: the relative squared distance of the output's Gram matrices to
/// the target ones (`targets[l]`, `[batch or 1, c, c]`) at relu1_1…relu4_1, per sample, averaged
/// and summed over the layers. Relative, so styles with strong and weak textures weigh alike.
pub fn style_distance(out: &[Tensor<4>], targets: &[Tensor<3>], device: &Device) -> Tensor<1> {
    style_distances(out, targets, device).mean()
}

/// [`style_distance`] per sample, `[batch]`: summed over the layers, not averaged.
pub fn style_distances(out: &[Tensor<4>], targets: &[Tensor<3>], device: &Device) -> Tensor<1> {
    let batch = out.first().map_or(1, |o| o.dims()[0]);
    let mut loss = Tensor::zeros([batch], device);
    for (o, target) in out.iter().zip(targets) {
        let g = gram(o);
        let [batch, c, _] = g.dims();
        let target = target.clone().expand([batch, c, c]);
        let diff = (g - target.clone()).square().sum_dim(2).sum_dim(1);
        let norm = target.square().sum_dim(2).sum_dim(1) + 1e-12;
        loss = loss + (diff / norm).reshape([batch]);
    }
    loss
}

/// How the styles mode weighs its VGG terms sample by sample; the default weighs every sample
/// and pixel alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct Emphasis<'a> {
    /// Each sample's multiple of the style weight (`[batch]`).
    pub style_scales: Option<&'a [f32]>,
    /// Where each sample's content term weighs more: `[batch, h, w]` maps in [0, 1] (e.g.
    /// [`super::losses::skin_map`]) and a weight `k`; a feature position weighs `1 + k ·` its
    /// block's mean of the map ([`emphasised_content_distance`]).
    pub content_map: Option<(&'a [f32], f32)>,
}

/// The content and style losses of the generator's output `fake` (against the `photo`s it was made
/// from and per-sample target Gram matrices, `[batch or 1, c, c]` per layer), and their sum
/// weighted by `[content, style]` and by `emphasis` (each sample's style scale, where the content
/// term weighs more), whose gradient flows back into the generator; the style distance returned
/// is unscaled, the content distance emphasised as the loss is. With `cpu` (training on the CPU)
/// VGG19 runs on our own CPU path, which hands its gradient to Burn as the output's: the term is
/// `Σ fake · ∂loss/∂fake`, so the generator's gradients are the same.
#[allow(clippy::too_many_arguments)]
pub fn vgg_terms(
    vgg: &Vgg19,
    cpu: Option<&CpuVgg>,
    fake: &Tensor<4>,
    photo: Tensor<4>,
    targets: &[Tensor<3>],
    [content_weight, style_weight]: [f32; 2],
    emphasis: Emphasis,
    device: &Device,
) -> [Tensor<1>; 3] {
    let [batch, _, h, w] = fake.dims();
    let style_scales = emphasis.style_scales;
    if let Some(scales) = style_scales {
        assert_eq!(scales.len(), batch, "one style scale per sample");
    }
    if let Some((map, _)) = emphasis.content_map {
        assert_eq!(map.len(), batch * h * w, "one content map per sample");
    }
    let Some(cpu) = cpu else {
        let out = vgg.features(fake.clone()).0;
        let photo = vgg.features(photo.detach()).0;
        let map = emphasis.content_map.map(|(map, k)| {
            let map =
                Tensor::<4>::from_data(TensorData::new(map.to_vec(), [batch, 1, h, w]), device);
            (map, k)
        });
        let content =
            emphasised_content_distance(&out, &photo, map.as_ref().map(|(m, k)| (m, *k)), device);
        let per_sample = style_distances(&out, targets, device);
        let style = per_sample.clone().mean();
        let scaled = match style_scales {
            Some(scales) => {
                let scales =
                    Tensor::<1>::from_data(TensorData::new(scales.to_vec(), [batch]), device);
                (per_sample * scales).mean()
            }
            None => style.clone(),
        };
        let weighted = content.clone() * content_weight + scaled * style_weight;
        return [content, style, weighted];
    };
    let images = planes(fake);
    let loss = cpu_vgg_loss(
        cpu,
        &images,
        &planes(&photo),
        (h, w),
        targets,
        [content_weight, style_weight],
        emphasis,
    );
    let scalar = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), device);
    let grad = Tensor::<4>::from_data(
        TensorData::new(loss.grad.concat(), [batch, 3, h, w]),
        device,
    );
    let weighted = (fake.clone() * grad).sum();
    [scalar(loss.content), scalar(loss.style), weighted]
}

/// Each sample of `t` (`[batch, c, h, w]`) as its own `[c, h, w]` planes, off the graph.
fn planes(t: &Tensor<4>) -> Vec<Vec<f32>> {
    let [_, c, h, w] = t.dims();
    let values = t
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    values.chunks(c * h * w).map(<[f32]>::to_vec).collect()
}

/// [`vgg_terms`] on our CPU path, on planes: the losses of `images` (`[3, h, w]` each) against
/// their `photos` and per-sample target Gram matrices, and each image's gradient.
fn cpu_vgg_loss(
    cpu: &CpuVgg,
    images: &[Vec<f32>],
    photos: &[Vec<f32>],
    (h, w): (usize, usize),
    targets: &[Tensor<3>],
    [content_weight, style_weight]: [f32; 2],
    emphasis: Emphasis,
) -> VggLoss {
    let photos = cpu.features_of(photos, h, w);
    let grams: Vec<Vec<f32>> = targets
        .iter()
        .map(|t| {
            t.clone()
                .detach()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        })
        .collect();
    let per_sample: Vec<Targets> = (0..images.len())
        .map(|i| Targets {
            photo: &photos[i],
            grams: grams
                .iter()
                .zip(targets)
                .map(|(g, t)| {
                    let [n, c, _] = t.dims();
                    let at = i.min(n - 1) * c * c;
                    &g[at..at + c * c]
                })
                .collect(),
            style_scale: emphasis.style_scales.map_or(1.0, |s| s[i]),
            content_emphasis: emphasis
                .content_map
                .map(|(map, k)| (&map[i * h * w..(i + 1) * h * w], k)),
        })
        .collect();
    cpu.loss(images, h, w, &per_sample, content_weight, style_weight)
}

/// The mean Gram matrix per VGG19 layer (relu1_1…relu4_1, each `[1, c, c]`) of `images`, each
/// `[n, 3, h, w]` in [-1, 1]: a style's target. Off the autodiff graph.
pub fn mean_grams(vgg: &Vgg19, images: impl IntoIterator<Item = Tensor<4>>) -> Vec<Tensor<3>> {
    let mut sums: Option<Vec<Tensor<3>>> = None;
    let mut count = 0;
    for batch in images {
        count += batch.dims()[0];
        let features = vgg.features(batch.detach()).0;
        let grams = features.iter().map(|f| gram(f).sum_dim(0).detach());
        sums = Some(match sums {
            None => grams.collect(),
            Some(s) => s.into_iter().zip(grams).map(|(a, b)| a + b).collect(),
        });
    }
    let count = count.max(1) as f64;
    sums.unwrap_or_default()
        .into_iter()
        .map(|g| g / count)
        .collect()
}

/// Every style's target Gram matrices, per VGG19 layer a `[styles, c·c]` table, so that a batch's
/// targets are its one-hot (or mixed) style rows times the table.
#[derive(Debug, Clone)]
pub struct StyleGrams {
    tables: Vec<Tensor<2>>,
}

impl StyleGrams {
    /// `styles[s]`: style `s`'s [`mean_grams`].
    pub fn new(styles: &[Vec<Tensor<3>>]) -> Self {
        let layers = styles.first().map_or(0, Vec::len);
        let tables = (0..layers)
            .map(|l| {
                let rows = styles
                    .iter()
                    .map(|grams| {
                        let [_, c, _] = grams[l].dims();
                        grams[l].clone().reshape([1, c * c])
                    })
                    .collect();
                Tensor::cat(rows, 0)
            })
            .collect();
        Self { tables }
    }

    /// The targets of a batch whose styles are `mix` (`[batch, styles]`): per layer `[batch, c, c]`.
    pub fn for_mix(&self, mix: &Tensor<2>) -> Vec<Tensor<3>> {
        let [batch, _] = mix.dims();
        self.tables
            .iter()
            .map(|table| {
                let [_, cc] = table.dims();
                let c = (cc as f64).sqrt().round() as usize;
                mix.clone()
                    .detach()
                    .matmul(table.clone())
                    .reshape([batch, c, c])
            })
            .collect()
    }
}

/// `[batch, c, h, w]` → each sample's sum, `[batch, 1, 1, 1]`.
fn per_sample_sum(x: Tensor<4>) -> Tensor<4> {
    x.sum_dim(3).sum_dim(2).sum_dim(1)
}

/// Mean absolute difference between vertically and horizontally neighbouring pixels.
pub fn total_variation(images: &Tensor<4>) -> Tensor<1> {
    let [b, c, h, w] = images.dims();
    let dy = images.clone().slice([0..b, 0..c, 1..h, 0..w])
        - images.clone().slice([0..b, 0..c, 0..h - 1, 0..w]);
    let dx = images.clone().slice([0..b, 0..c, 0..h, 1..w])
        - images.clone().slice([0..b, 0..c, 0..h, 0..w - 1]);
    dy.abs().mean() + dx.abs().mean()
}

/// Perceptual (feature L1 to `content`) and style (Gram distance to `style`) losses of `output`;
/// zeros without a VGG network.
pub fn vgg_losses(
    vgg: Option<&Vgg19>,
    config: &TrainConfig,
    output: &Tensor<4>,
    content: &Tensor<4>,
    style: &Tensor<4>,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let Some(vgg) = vgg else {
        return (Tensor::zeros([1], device), Tensor::zeros([1], device));
    };
    let out = vgg.features(output.clone()).0;
    let mut perceptual = Tensor::zeros([1], device);
    if config.perceptual_weight > 0.0 {
        let reference = vgg.features(content.clone().detach()).0;
        for (o, r) in out.iter().zip(reference) {
            perceptual = perceptual + (o.clone() - r.detach()).abs().mean();
        }
    }
    let mut style_loss = Tensor::zeros([1], device);
    if config.style_weight > 0.0 {
        let reference = vgg.features(style.clone().detach()).0;
        for (o, r) in out.iter().zip(reference) {
            let (go, gr) = (gram(o), gram(&r).detach());
            // Compare with the mean style Gram matrix of the batch.
            let gr = gr.mean_dim(0);
            let [b, c, _] = go.dims();
            style_loss = style_loss + (go - gr.expand([b, c, c])).square().mean();
        }
    }
    (perceptual, style_loss)
}

/// One noise step, as in the seeds: the discriminator learns to tell `real` portraits from
/// generated ones, then the generator learns to fool it on fresh noise; the moving average
/// follows the generator. Returns g_adv, d and the mean real and fake scores. With `cpu`
/// (training on the CPU) the networks run on our CPU path ([`noise_judge_gradients_cpu`],
/// [`noise_generator_gradients_cpu`]); otherwise through Burn's autodiff.
#[allow(clippy::too_many_arguments)]
pub fn noise_step(
    nets: &mut NoiseNets,
    real: Tensor<4>,
    lr: f64,
    step: u64,
    config: &TrainConfig,
    cpu: bool,
    rng: &mut Rng,
    device: &Device,
) -> Result<Losses, StepError> {
    let mut noise = || -> Vec<Vec<f32>> {
        (0..config.batch)
            .map(|_| (0..config.latent_size).map(|_| rng.normal()).collect())
            .collect()
    };
    let z = noise();
    let judge = if cpu {
        noise_judge_gradients_cpu(nets, real, &z, config, device)
    } else {
        noise_judge_gradients(nets, real, &z, config, device)
    };
    nets.d = nets.opt_d.step(lr, nets.d.clone(), judge.grads);

    let z = noise();
    let maker = if cpu {
        noise_generator_gradients_cpu(nets, &z, config, device)
    } else {
        noise_generator_gradients(nets, &z, config, device)
    };
    nets.g = nets.opt_g.step(lr, nets.g.clone(), maker.grads);

    // A short warm-up (decay (1+t)/(10+t)) so early averages do not cling to the random start.
    let decay = config
        .ema_decay
        .min((1.0 + step as f32) / (10.0 + step as f32));
    nets.ema = moving_average(nets.ema.clone(), &nets.g.valid(), decay);
    let mut losses = maker.losses;
    losses.splice(1..1, judge.losses);
    read_losses(losses)
}

/// One network's gradients in a noise step, and the losses they come from.
pub struct NoiseGradients {
    pub grads: GradientsParams,
    pub losses: Vec<(&'static str, Tensor<1>)>,
}

/// Noise vectors (`[latent]` each) as a `[batch, latent]` tensor.
fn latents(z: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let latent = z.first().map_or(0, Vec::len);
    Tensor::from_data(TensorData::new(z.concat(), [z.len(), latent]), device)
}

/// The discriminator's loss on `real` portraits and on the images of noise `z` (d, and its
/// mean scores d_real and d_fake) and its gradients, through Burn's autodiff.
pub fn noise_judge_gradients(
    nets: &NoiseNets,
    real: Tensor<4>,
    z: &[Vec<f32>],
    config: &TrainConfig,
    device: &Device,
) -> NoiseGradients {
    let kind = config.adversarial;
    let fake = nets.g.forward(latents(z, device)).detach();
    let (d_loss, losses) = judge_loss(kind, nets.d.forward(real), nets.d.forward(fake));
    let mut grads = d_loss.backward();
    NoiseGradients {
        grads: GradientsParams::from_module(&mut grads, &nets.d),
        losses,
    }
}

/// The discriminator's loss on its scores of real and generated portraits, and the losses the
/// log shows (d, and the mean scores d_real and d_fake).
fn judge_loss(
    kind: AdversarialLoss,
    real_scores: Tensor<4>,
    fake_scores: Tensor<4>,
) -> (Tensor<1>, Vec<(&'static str, Tensor<1>)>) {
    let d_loss = adversarial(kind, real_scores.clone(), true)
        + adversarial(kind, fake_scores.clone(), false);
    let losses = vec![
        ("d", d_loss.clone()),
        ("d_real", real_scores.mean().reshape([1])),
        ("d_fake", fake_scores.mean().reshape([1])),
    ];
    (d_loss, losses)
}

/// The generator's loss on the discriminator's scores of its images `fake` of noise `z`: g_adv
/// plus the weighted mode-seeking term; and the losses the log shows.
fn maker_loss(
    config: &TrainConfig,
    scores: Tensor<4>,
    fake: Tensor<4>,
    z: Tensor<2>,
    device: &Device,
) -> (Tensor<1>, Vec<(&'static str, Tensor<1>)>) {
    let g_adv = generator_adversarial(config.adversarial, scores);
    let seeking = mode_seeking(fake, z, device);
    let g_loss = g_adv.clone() + seeking.clone() * config.mode_seeking_weight;
    (g_loss, vec![("g_adv", g_adv), ("mode_seeking", seeking)])
}

/// [`noise_judge_gradients`] on our CPU path: the networks run there, the losses (on the
/// scores) in Burn.
pub fn noise_judge_gradients_cpu(
    nets: &NoiseNets,
    real: Tensor<4>,
    z: &[Vec<f32>],
    config: &TrainConfig,
    device: &Device,
) -> NoiseGradients {
    let kind = config.adversarial;
    let [.., side] = real.dims();
    let g = LatentGeneratorGrad::new(&nets.g);
    let d = ImageDiscriminatorGrad::new(&nets.d);
    let fake = LatentGeneratorGrad::images(&g.forward(z));
    let (reals, fakes) = (d.forward(&planes(&real), side), d.forward(&fake, side));
    let logits = |scores: &[f32]| {
        let n = scores.len();
        Tensor::<4>::from_data(TensorData::new(scores.to_vec(), [n, 1, 1, 1]), device)
            .require_grad()
    };
    let (real_scores, fake_scores) = (logits(reals.scores()), logits(fakes.scores()));
    let (d_loss, losses) = judge_loss(kind, real_scores.clone(), fake_scores.clone());
    let grads = d_loss.backward();
    let d_of = |scores: &Tensor<4>| grad_planes(scores, &grads).concat();
    let (on_real, _) = d.backward(&reals, &d_of(&real_scores), true, false);
    let (on_fake, _) = d.backward(&fakes, &d_of(&fake_scores), true, false);
    let mut total = on_real.expect("asked for the weights' gradients");
    total.add(&on_fake.expect("asked for the weights' gradients"));
    NoiseGradients {
        grads: total.into_params(&d, device),
        losses,
    }
}

/// The generator's loss on the images of noise `z` (g_adv through the discriminator, plus the
/// weighted mode-seeking term) and its gradients, through Burn's autodiff.
pub fn noise_generator_gradients(
    nets: &NoiseNets,
    z: &[Vec<f32>],
    config: &TrainConfig,
    device: &Device,
) -> NoiseGradients {
    let z = latents(z, device);
    let fake = nets.g.forward(z.clone());
    let scores = frozen(&nets.d).forward(fake.clone());
    let (g_loss, losses) = maker_loss(config, scores, fake, z, device);
    let mut grads = g_loss.backward();
    NoiseGradients {
        grads: GradientsParams::from_module(&mut grads, &nets.g),
        losses,
    }
}

/// [`noise_generator_gradients`] on our CPU path: the networks run there, the losses (on the
/// images and scores) in Burn.
pub fn noise_generator_gradients_cpu(
    nets: &NoiseNets,
    z: &[Vec<f32>],
    config: &TrainConfig,
    device: &Device,
) -> NoiseGradients {
    let g = LatentGeneratorGrad::new(&nets.g);
    let d = ImageDiscriminatorGrad::new(&nets.d);
    let tape = g.forward(z);
    let images = LatentGeneratorGrad::images(&tape);
    let side = LatentGeneratorGrad::side(&tape);
    let judged = d.forward(&images, side);
    let n = images.len();
    let fake = leaf(images, [n, 3, side, side], device);
    let scores = Tensor::<4>::from_data(
        TensorData::new(judged.scores().to_vec(), [n, 1, 1, 1]),
        device,
    )
    .require_grad();
    let (g_loss, losses) = maker_loss(
        config,
        scores.clone(),
        fake.clone(),
        latents(z, device),
        device,
    );
    let grads = g_loss.backward();
    let (_, through_d) = d.backward(&judged, &grad_planes(&scores, &grads).concat(), false, true);
    let mut d_images = grad_planes(&fake, &grads);
    for (a, b) in d_images.iter_mut().zip(&through_d) {
        add_into(a, b);
    }
    NoiseGradients {
        grads: g.backward(&tape, &d_images).into_params(&g, device),
        losses,
    }
}

/// The mode-seeking term of MSGAN (Mao et al. 2019): for pairs of samples, the inverse of how
/// far apart their images are relative to how far apart their noise vectors are. Minimising it
/// makes the generator use its noise, against mode collapse. Zero for a batch of one.
pub fn mode_seeking(fake: Tensor<4>, z: Tensor<2>, device: &Device) -> Tensor<1> {
    let [batch, ..] = fake.dims();
    let half = batch / 2;
    if half == 0 {
        return Tensor::zeros([1], device);
    }
    let images = (fake.clone().narrow(0, 0, half) - fake.narrow(0, half, half))
        .abs()
        .mean();
    let noise = (z.clone().narrow(0, 0, half) - z.narrow(0, half, half))
        .abs()
        .mean();
    (images / noise + 1e-5).recip()
}

/// `average · decay + current · (1 - decay)`, parameter by parameter.
/// `module` as constants: a copy whose parameters the backward pass does not track, for a loss
/// that trains only what runs before it (the generator's adversarial term through a
/// discriminator). The gradient still flows through it to its inputs, the same values as
/// through `module`.
fn frozen<M: Module>(module: &M) -> M {
    module.clone().no_grad()
}

pub fn moving_average<M: Module>(average: M, current: &M, decay: f32) -> M {
    struct Collect(Vec<TensorData>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data());
        }
    }
    struct Blend {
        current: std::vec::IntoIter<TensorData>,
        decay: f32,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let decay = self.decay;
            let next = self.current.next();
            param.map(|t| match next {
                Some(data) => {
                    let current = Tensor::<D>::from_data(data, &t.device());
                    t * decay + current * (1.0 - decay)
                }
                None => t,
            })
        }
    }
    let mut collect = Collect(Vec::new());
    current.visit(&mut collect);
    average.map(&mut Blend {
        current: collect.0.into_iter(),
        decay,
    })
}

pub(crate) fn read_losses(named: Vec<(&'static str, Tensor<1>)>) -> Result<Losses, StepError> {
    let (names, values): (Vec<_>, Vec<_>) = named.into_iter().map(|(n, t)| (n, t.detach())).unzip();
    let values = Tensor::cat(values, 0)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| StepError::ReadBack(format!("{e:?}")))?;
    Ok(names.into_iter().zip(values).collect())
}

/// [`read_losses`] for a device that reads back asynchronously (WebGPU in the browser).
pub(crate) async fn read_losses_async(
    named: Vec<(&'static str, Tensor<1>)>,
) -> Result<Losses, StepError> {
    let (names, values): (Vec<_>, Vec<_>) = named.into_iter().map(|(n, t)| (n, t.detach())).unzip();
    let values = Tensor::cat(values, 0)
        .into_data_async()
        .await
        .map_err(|e| StepError::ReadBack(e.to_string()))?
        .try_to_vec::<f32>()
        .map_err(|e| StepError::ReadBack(format!("{e:?}")))?;
    Ok(names.into_iter().zip(values).collect())
}

pub fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.beta1 as f32)
        .with_beta_2(config.beta2 as f32)
        .with_epsilon(1e-8)
        .init()
}

/// How large initial weights are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitScale {
    /// N(0, 0.02), as in DCGAN, pix2pix and CycleGAN (networks with normalisation layers).
    Dcgan,
    /// N(0, 2 / fan-in) (He et al.): keeps activations at scale through layers without
    /// normalisation, such as the noise mode's discriminator.
    He,
}

/// Initialise weights from the run's own random stream, as in pix2pix/CycleGAN: convolution
/// weights N(0, 0.02), biases 0, norm scales 1 and shifts 0. Using our generator (not the
/// backend's) makes a run's start depend on its seed alone.
pub fn init_weights<M: Module>(module: M, rng: &mut Rng) -> M {
    init_weights_with(module, rng, InitScale::Dcgan)
}

/// [`init_weights`] with a choice of weight scale.
pub fn init_weights_with<M: Module>(module: M, rng: &mut Rng, scale: InitScale) -> M {
    struct Init<'a> {
        rng: &'a mut Rng,
        path: Vec<String>,
        scale: InitScale,
    }
    impl ModuleMapper for Init<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let field = self.path.last().map(String::as_str).unwrap_or("");
            let rng = &mut *self.rng;
            let scale = self.scale;
            param.map(|t| {
                let shape = t.shape();
                let n = shape.num_elements();
                // Convolutions are [out, in, k, k], linear layers [in, out].
                let fan_in = match D {
                    4 => shape.as_slice()[1..].iter().product::<usize>(),
                    _ => shape.as_slice()[0],
                };
                let std = match scale {
                    InitScale::Dcgan => 0.02f32,
                    InitScale::He => (2.0 / fan_in.max(1) as f32).sqrt(),
                };
                let values: Vec<f32> = match field {
                    "weight" if D > 1 => (0..n).map(|_| std * rng.normal()).collect(),
                    "gamma" => vec![1.0; n],
                    _ => vec![0.0; n],
                };
                let fresh = Tensor::from_data(TensorData::new(values, shape), &t.device());
                if t.is_require_grad() {
                    fresh.require_grad()
                } else {
                    fresh
                }
            })
        }
    }
    module.map(&mut Init {
        rng,
        path: Vec::new(),
        scale,
    })
}

impl Nets {
    pub fn init(config: &TrainConfig, device: &Device, rng: &mut Rng) -> Self {
        match config.mode {
            Mode::Unpaired | Mode::Paired | Mode::Styles => {
                Nets::Transfer(Box::new(TransferNets::init(config, device, rng)))
            }
            Mode::Noise => {
                let mut init_rng = rng.fork(0x1417);
                let g = init_weights_with(
                    config.latent_generator_config().init(device),
                    &mut init_rng,
                    InitScale::He,
                );
                let d = init_weights_with(
                    config.image_discriminator_config().init(device),
                    &mut init_rng,
                    InitScale::He,
                );
                Nets::Noise(Box::new(NoiseNets {
                    ema: g.valid(),
                    g,
                    opt_g: adam(config),
                    d,
                    opt_d: adam(config),
                }))
            }
        }
    }
}

impl TransferNets {
    /// The content → style generator.
    pub fn generator(&self) -> &Generator {
        &self.g
    }

    /// The generator's judge.
    pub fn discriminator(&self) -> &Discriminator {
        &self.d
    }

    /// Unpaired mode: the style → content generator and its judge.
    pub fn way_back(&self) -> Option<(&Generator, &Discriminator)> {
        self.back.as_ref().map(|b| (&b.f, &b.d_content))
    }

    pub fn init(config: &TrainConfig, device: &Device, rng: &mut Rng) -> Self {
        let g_config = config.generator_config();
        let d_config = config.discriminator_config();
        let mut init_rng = rng.fork(0x1417);
        let adam = || adam(config);
        let back = (config.mode == Mode::Unpaired).then(|| Back {
            f: init_weights(g_config.init(device), &mut init_rng),
            opt_f: adam(),
            d_content: init_weights(d_config.init(device), &mut init_rng),
            opt_d_content: adam(),
        });
        Self {
            g: init_weights(g_config.init(device), &mut init_rng),
            opt_g: adam(),
            d: init_weights(d_config.init(device), &mut init_rng),
            opt_d: adam(),
            back,
            opt_styles: (config.mode == Mode::Styles).then(adam),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sample_takes_its_mix_of_the_style_scales() {
        let device = Device::flex();
        let mix = Tensor::<2>::from_data(
            TensorData::new(
                vec![0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.25, 0.0, 0.75],
                [3, 3],
            ),
            &device,
        );
        let scales = mix_scales(&mix, &[2.0, 0.5, 4.0]);
        let expected = [0.5f32, 2.0, 0.25 * 2.0 + 0.75 * 4.0];
        for (got, want) in scales.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{scales:?}");
        }
        assert_eq!(scales.len(), 3);
    }
}
