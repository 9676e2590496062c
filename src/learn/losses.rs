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

/// How skin-coloured each pixel of an `[3, h, w]` image (RGB in [-1, 1]) is, `[h, w]` in [0, 1]:
/// the styles mode's content term weighs more there ([`TrainConfig::skin_content_weight`]), so
/// faces keep their features and stay free of blotches while hair, clothes and background take
/// the style. A colour rule, not a face detector: chroma inside the skin box of Chai and Ngan
/// (1999), Cb in [77, 127] and Cr in [133, 173] on BT.601's 0..255 scale, which holds light to
/// dark skin alike, ramping from 1 to 0 over its outer 4 levels (so the edges of skin are soft),
/// and fading out in near-black pixels (luma 16 to 40), whose chroma says nothing.
///
/// [`TrainConfig::skin_content_weight`]: super::TrainConfig::skin_content_weight
pub fn skin_map(image: &[f32], h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    assert_eq!(
        image.len(),
        3 * plane,
        "image planes do not match their size"
    );
    // 1 inside [lo + RAMP, hi − RAMP], falling linearly to 0 at lo and hi.
    const RAMP: f32 = 4.0;
    let inside = |v: f32, lo: f32, hi: f32| ((v - lo).min(hi - v) / RAMP).clamp(0.0, 1.0);
    (0..plane)
        .map(|i| {
            let [r, g, b] = [0, 1, 2].map(|c| (image[c * plane + i] + 1.0) * 127.5);
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            let lit = ((y - 16.0) / 24.0).clamp(0.0, 1.0);
            inside(cb, 77.0, 127.0) * inside(cr, 133.0, 173.0) * lit
        })
        .collect()
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

    /// Skin of light, medium and dark tones counts as skin; sky, grass, grey, near-black and a
    /// saturated red do not.
    #[test]
    fn the_skin_map_finds_skin_tones_and_nothing_else() {
        let colours: [([u8; 3], bool); 8] = [
            ([232, 190, 172], true),
            ([198, 134, 66], true),
            ([141, 85, 36], true),
            ([90, 140, 220], false),
            ([60, 150, 60], false),
            ([128, 128, 128], false),
            ([12, 8, 6], false),
            ([230, 20, 30], false),
        ];
        let plane = colours.len();
        let mut image = vec![0.0f32; 3 * plane];
        for (i, (rgb, _)) in colours.iter().enumerate() {
            for c in 0..3 {
                image[c * plane + i] = f32::from(rgb[c]) / 127.5 - 1.0;
            }
        }
        let map = skin_map(&image, 1, plane);
        for ((rgb, skin), v) in colours.iter().zip(&map) {
            let expected = if *skin { 1.0 } else { 0.0 };
            assert_eq!(*v, expected, "{rgb:?}");
        }
    }
}
