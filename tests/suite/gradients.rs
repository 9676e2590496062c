//! The CPU training path (`engine::cpu::backprop`) against Burn's autodiff: the transfer modes'
//! gradients, every parameter of every network; and the comparison the styles mode's test uses.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use portraitist::learn::step::{TransferNets, transfer_gradients, transfer_gradients_cpu};
use portraitist::rng::Rng;
use portraitist::train::{Mode, TrainConfig};

/// Every parameter's two gradients, in the module's order (each side's in the first of its sets
/// that has it: e.g. a network's own, then its style table's).
struct Pairs<'a>(
    &'a [&'a GradientsParams],
    &'a [&'a GradientsParams],
    Vec<(Vec<f32>, Vec<f32>)>,
);

impl ModuleVisitor for Pairs<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let read = |sets: &[&GradientsParams]| -> Vec<f32> {
            sets.iter()
                .find_map(|g| g.get::<D>(param.id))
                .expect("a gradient for every parameter")
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()
        };
        self.2.push((read(self.0), read(self.1)));
    }
}

/// `ours` equals `theirs` for every parameter of `module`: within 1e-4 of each tensor's largest
/// gradient, or of a tenth of the module's largest for tensors whose gradient is zero in exact
/// arithmetic (such as a bias before a norm: rounding on both sides).
pub(crate) fn assert_same_gradients<M: Module>(
    what: &str,
    module: &M,
    ours: &[&GradientsParams],
    theirs: &[&GradientsParams],
) {
    let mut pairs = Pairs(ours, theirs, Vec::new());
    module.visit(&mut pairs);
    let pairs = pairs.2;
    let largest = |v: &[f32]| v.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    let floor = pairs.iter().map(|(_, b)| largest(b)).fold(0.0f32, f32::max) * 0.1;
    assert!(floor > 0.0, "{what} has gradients");
    for (i, (a, b)) in pairs.iter().enumerate() {
        assert_eq!(a.len(), b.len(), "{what}, parameter {i}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        let scale = largest(b).max(floor);
        assert!(
            worst <= 1e-4 * scale,
            "{what}, parameter {i}: off by {worst} (largest {scale})"
        );
    }
}

/// Seeded values in [-1, 1], `[n, 3, side, side]`.
fn photos(rng: &mut Rng, n: usize, side: usize, device: &Device) -> Tensor<4> {
    let values = (0..n * 3 * side * side)
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    Tensor::<4>::from_data(TensorData::new(values, [n, 3, side, side]), device)
}

/// The unpaired (CycleGAN: two generators, two discriminators, cycle and identity terms) and
/// paired (pix2pix: a discriminator on six channels, L1) steps' gradients on our CPU path equal
/// Burn's autodiff for every parameter of every network, and so do the losses; in both
/// adversarial losses the generators are trained with (LSGAN, and BCE's log-sigmoids).
///
/// The draw is fixed. Instance norm puts half of the generators' and discriminators' ReLU
/// inputs near zero, and where one lies within rounding of zero the two sides' masks may differ:
/// at 32² about half the seeds put some weight's gradient 1e-3 to 2e-2 apart (one flipped unit,
/// more often with the cycle's six generator passes and at larger sizes); the others stay
/// within 3e-5. This one is 2e-5 at worst.
#[test]
fn the_cpu_transfer_gradients_equal_burns_autodiff() {
    use portraitist::learn::AdversarialLoss;

    let device = Device::flex().autodiff();
    for (mode, adversarial) in [
        (Mode::Unpaired, AdversarialLoss::Lsgan),
        (Mode::Paired, AdversarialLoss::Lsgan),
        (Mode::Unpaired, AdversarialLoss::Bce),
    ] {
        let config = TrainConfig {
            size: 32,
            batch: 2,
            discriminator_width: 8,
            adversarial,
            ..TrainConfig::for_mode(mode)
        };
        let what = format!("{mode:?} ({adversarial:?})");
        let mut rng = Rng::new(6);
        let nets = TransferNets::init(&config, &device, &mut rng);
        let (input, target) = (
            photos(&mut rng, 2, config.size, &device),
            photos(&mut rng, 2, config.size, &device),
        );
        let theirs =
            transfer_gradients(&nets, input.clone(), target.clone(), &config, None, &device);
        let ours = transfer_gradients_cpu(&nets, input, target, &config, &device);
        assert_eq!(ours.losses.len(), theirs.losses.len(), "{what}");
        for ((name, a), (their_name, b)) in ours.losses.iter().zip(&theirs.losses) {
            assert_eq!(name, their_name);
            let (a, b) = (
                a.clone().into_scalar::<f32>(),
                b.clone().into_scalar::<f32>(),
            );
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what}, {name}: {a} vs {b}"
            );
        }
        assert_same_gradients(
            &format!("{what}: the generator"),
            nets.generator(),
            &[&ours.generator],
            &[&theirs.generator],
        );
        assert_same_gradients(
            &format!("{what}: the discriminator"),
            nets.discriminator(),
            &[&ours.discriminator],
            &[&theirs.discriminator],
        );
        match (mode, &ours.back, &theirs.back, nets.way_back()) {
            (Mode::Unpaired, Some((of, od)), Some((tf, td)), Some((f, d))) => {
                assert_same_gradients(&format!("{what}: the way back"), f, &[of], &[tf]);
                assert_same_gradients(&format!("{what}: its discriminator"), d, &[od], &[td]);
            }
            (Mode::Paired, None, None, None) => {}
            _ => panic!("{what}: the way back's gradients do not match the mode"),
        }
    }
}

/// The noise GAN's two gradients on our CPU path (the discriminator's on real and generated
/// portraits; the generator's through the discriminator's minibatch channel and spectral norms,
/// plus the mode-seeking term) equal Burn's autodiff for every parameter, and so do the losses,
/// in each adversarial loss. The draws are fixed: of seeds 0–29 in each loss, all agree within
/// 1e-4 but one or two (which ones moves with the kernels' rounding), where one weight's
/// gradient is 2e-3 to 8e-3 of its largest apart: a leaky ReLU input within rounding of zero,
/// whose slope flips.
#[test]
fn the_cpu_noise_gradients_equal_burns_autodiff() {
    use portraitist::learn::AdversarialLoss;
    use portraitist::learn::step::{
        Nets, NoiseGradients, noise_generator_gradients, noise_generator_gradients_cpu,
        noise_judge_gradients, noise_judge_gradients_cpu,
    };

    let device = Device::flex().autodiff();
    // Batch 6: the CPU path's discriminator sums its gradients in groups of four samples, so a
    // full group and a part one.
    for (seed, adversarial, batch) in [
        (2, AdversarialLoss::Bce, 6),
        (3, AdversarialLoss::Lsgan, 4),
        (4, AdversarialLoss::Hinge, 4),
    ] {
        let config = TrainConfig {
            size: 16,
            batch,
            latent_size: 12,
            discriminator_width: 8,
            adversarial,
            ..TrainConfig::for_mode(Mode::Noise)
        };
        let what = format!("noise ({adversarial:?})");
        let mut rng = Rng::new(seed);
        let Nets::Noise(nets) = Nets::init(&config, &device, &mut rng) else {
            panic!("noise mode makes the noise GAN's networks");
        };
        let real = photos(&mut rng, batch, config.size, &device);
        let mut noise = || -> Vec<Vec<f32>> {
            (0..batch)
                .map(|_| (0..12).map(|_| rng.normal()).collect())
                .collect()
        };
        let (z, z2) = (noise(), noise());
        let same_losses = |ours: &NoiseGradients, theirs: &NoiseGradients| {
            assert_eq!(ours.losses.len(), theirs.losses.len(), "{what}");
            for ((name, a), (their_name, b)) in ours.losses.iter().zip(&theirs.losses) {
                assert_eq!(name, their_name);
                let (a, b) = (
                    a.clone().into_scalar::<f32>(),
                    b.clone().into_scalar::<f32>(),
                );
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}, {name}: {a} vs {b}"
                );
            }
        };
        let theirs = noise_judge_gradients(&nets, real.clone(), &z, &config, &device);
        let ours = noise_judge_gradients_cpu(&nets, real, &z, &config, &device);
        same_losses(&ours, &theirs);
        assert_same_gradients(
            &format!("{what}: the discriminator"),
            nets.discriminator(),
            &[&ours.grads],
            &[&theirs.grads],
        );
        let theirs = noise_generator_gradients(&nets, &z2, &config, &device);
        let ours = noise_generator_gradients_cpu(&nets, &z2, &config, &device);
        same_losses(&ours, &theirs);
        assert_same_gradients(
            &format!("{what}: the generator"),
            nets.generator(),
            &[&ours.grads],
            &[&theirs.grads],
        );
    }
}

/// The trainer's noise steps on our CPU path and through Burn's autodiff
/// (`Trainer::with_burn_autodiff`): same run, same seed, the same losses at the first step (within
/// 1e-4: the discriminator's before any update, the generator's after the discriminator's first
/// update, so a wrong discriminator gradient shows there) and within 2 % at the second.
#[test]
fn the_cpu_noise_step_trains_as_burns_autodiff() {
    use portraitist::train::{Event, Sources, Trainer};

    let dir = tempfile::tempdir().unwrap();
    let portraits = dir.path().join("portraits");
    std::fs::create_dir_all(&portraits).unwrap();
    for i in 0..4u32 {
        image::RgbImage::from_fn(40, 36, |x, y| {
            image::Rgb([
                (x * 9 + i * 40) as u8,
                (y * 11) as u8,
                ((x ^ y) * 5 + i) as u8,
            ])
        })
        .save(portraits.join(format!("{i}.png")))
        .unwrap();
    }
    let sources = Sources::Noise { portraits };
    let train = |run: &str, burn: bool| {
        let config = TrainConfig {
            size: 32,
            batch: 4,
            steps: 3,
            log_every: 1,
            latent_size: 12,
            discriminator_width: 8,
            ..TrainConfig::for_mode(Mode::Noise)
        };
        let mut trainer = Trainer::new(
            &sources,
            &dir.path().join(run),
            config,
            false,
            &Device::flex(),
            &mut |_: Event| {},
        )
        .unwrap();
        if burn {
            trainer = trainer.with_burn_autodiff();
        }
        trainer.run(None, &mut |_| {}).unwrap();
        std::fs::read_to_string(dir.path().join(run).join("losses.csv")).unwrap()
    };
    let (ours, theirs) = (train("cpu", false), train("burn", true));
    let rows = |log: &str| -> Vec<Vec<f64>> {
        log.lines()
            .skip(1)
            .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (our_rows, their_rows) = (rows(&ours), rows(&theirs));
    assert_eq!(our_rows.len(), 3, "{ours}");
    assert_eq!(our_rows.len(), their_rows.len());
    for (step, tolerance) in [(0, 1e-4), (1, 0.02)] {
        for (a, b) in our_rows[step].iter().zip(&their_rows[step]) {
            assert!(
                (a - b).abs() <= tolerance * b.abs().max(1e-3),
                "losses differ at step {}:\n{ours}\n{theirs}",
                step + 1
            );
        }
    }
}
