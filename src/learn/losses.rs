//! GAN losses. Discriminators output logits; targets are 1 for real, 0 for generated.

use burn::tensor::Tensor;

use super::config::AdversarialLoss;

/// How far the discriminator's `scores` are from saying "real" (`target = true`) or "fake".
pub fn adversarial(kind: AdversarialLoss, scores: Tensor<4>, target: bool) -> Tensor<1> {
    match kind {
        AdversarialLoss::Lsgan => {
            let goal = if target { 1.0 } else { 0.0 };
            (scores - goal).square().mean()
        }
        // -log σ(x) = softplus(-x) for real, -log(1 - σ(x)) = softplus(x) for fake.
        AdversarialLoss::Bce => softplus(if target { -scores } else { scores }).mean(),
        AdversarialLoss::Hinge => {
            let margin = if target { -scores + 1.0 } else { scores + 1.0 };
            margin.clamp_min(0.0).mean()
        }
    }
}

/// The generator's adversarial loss on the discriminator's `scores` for its output: "call it
/// real" for LSGAN and BCE (non-saturating), the negated mean score for hinge.
pub fn generator_adversarial(kind: AdversarialLoss, scores: Tensor<4>) -> Tensor<1> {
    match kind {
        AdversarialLoss::Hinge => -scores.mean(),
        _ => adversarial(kind, scores, true),
    }
}

/// Numerically stable `ln(1 + e^x)`.
fn softplus(x: Tensor<4>) -> Tensor<4> {
    x.clone().clamp_min(0.0) + (-x.abs()).exp().log1p()
}

/// Mean absolute difference.
pub fn l1(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    (a - b).abs().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    fn scores(v: f32) -> Tensor<4> {
        Tensor::from_data(TensorData::new(vec![v; 4], [1, 1, 2, 2]), &Device::flex())
    }

    #[test]
    fn lsgan_is_squared_distance_to_the_target() {
        assert!(
            (scalar(adversarial(AdversarialLoss::Lsgan, scores(0.25), true)) - 0.5625).abs() < 1e-6
        );
        assert!(
            (scalar(adversarial(AdversarialLoss::Lsgan, scores(0.25), false)) - 0.0625).abs()
                < 1e-6
        );
    }

    #[test]
    fn bce_matches_the_textbook_formula_even_for_large_logits() {
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        for x in [-3.0f32, 0.0, 2.5] {
            let real = scalar(adversarial(AdversarialLoss::Bce, scores(x), true));
            let fake = scalar(adversarial(AdversarialLoss::Bce, scores(x), false));
            assert!((real + sigmoid(x).ln()).abs() < 1e-5, "{x}: {real}");
            assert!((fake + (1.0 - sigmoid(x)).ln()).abs() < 1e-5, "{x}: {fake}");
        }
        assert!(scalar(adversarial(AdversarialLoss::Bce, scores(200.0), false)).is_finite());
    }

    #[test]
    fn hinge_has_a_margin_for_the_discriminator_and_is_linear_for_the_generator() {
        let hinge = AdversarialLoss::Hinge;
        assert!((scalar(adversarial(hinge, scores(0.25), true)) - 0.75).abs() < 1e-6);
        assert_eq!(scalar(adversarial(hinge, scores(1.5), true)), 0.0);
        assert!((scalar(adversarial(hinge, scores(0.25), false)) - 1.25).abs() < 1e-6);
        assert!((scalar(generator_adversarial(hinge, scores(0.25))) + 0.25).abs() < 1e-6);
        let bce = AdversarialLoss::Bce;
        assert_eq!(
            scalar(generator_adversarial(bce, scores(0.5))),
            scalar(adversarial(bce, scores(0.5), true))
        );
    }
}
