//! Image metrics for evaluating styles: SSIM on luminance, CIEDE2000 colour difference, and colour
//! histograms. Plain functions on 8-bit sRGB images, no tensors.

use image::RgbImage;

/// BT.601 luma of an sRGB pixel, 0..255.
fn luma(p: &image::Rgb<u8>) -> f64 {
    0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])
}

/// Mean structural similarity (Wang et al. 2004) of the two images' luma: an 11×11 Gaussian
/// window with σ = 1.5, K1 = 0.01, K2 = 0.03, edges clamped. 1 means identical; unrelated images
/// score near 0. The images must have one size.
pub fn ssim_luma(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "SSIM needs images of one size"
    );
    let (w, h) = (a.width() as usize, a.height() as usize);
    let x: Vec<f64> = a.pixels().map(luma).collect();
    let y: Vec<f64> = b.pixels().map(luma).collect();
    let product = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<_>>();
    let mu_x = gaussian_blur(&x, w, h);
    let mu_y = gaussian_blur(&y, w, h);
    let xx = gaussian_blur(&product(&x, &x), w, h);
    let yy = gaussian_blur(&product(&y, &y), w, h);
    let xy = gaussian_blur(&product(&x, &y), w, h);
    let c1 = (0.01f64 * 255.0).powi(2);
    let c2 = (0.03f64 * 255.0).powi(2);
    let total: f64 = (0..w * h)
        .map(|i| {
            let (mx, my) = (mu_x[i], mu_y[i]);
            let vx = (xx[i] - mx * mx).max(0.0);
            let vy = (yy[i] - my * my).max(0.0);
            let cov = xy[i] - mx * my;
            ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        })
        .sum();
    total / (w * h) as f64
}

/// Separable 11-tap Gaussian (σ = 1.5) with clamped edges: one pass along the rows that writes
/// its result transposed, twice.
fn gaussian_blur(plane: &[f64], w: usize, h: usize) -> Vec<f64> {
    let rows_blurred = blur_rows_transposed(plane, w, h);
    blur_rows_transposed(&rows_blurred, h, w)
}

/// Blur each row of a `w × h` plane and return the result as an `h × w` plane (transposed).
fn blur_rows_transposed(plane: &[f64], w: usize, h: usize) -> Vec<f64> {
    const RADIUS: isize = 5;
    let weights: Vec<f64> = (-RADIUS..=RADIUS)
        .map(|d| (-(d * d) as f64 / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        let row = &plane[y * w..(y + 1) * w];
        for x in 0..w {
            let total: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, wt)| {
                    let at = (x as isize + k as isize - RADIUS).clamp(0, w as isize - 1);
                    wt * row[at as usize]
                })
                .sum();
            out[x * h + y] = total / sum;
        }
    }
    out
}

/// CIE L*a*b* (D65 white) of an sRGB pixel.
pub fn srgb_to_lab(rgb: [u8; 3]) -> [f64; 3] {
    let linear = rgb.map(|v| {
        let c = f64::from(v) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    });
    let [r, g, b] = linear;
    let x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
    let y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    let z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// The CIEDE2000 colour difference of two L*a*b* colours (kL = kC = kH = 1), after Sharma, Wu and
/// Dalal (2005). About 1 is a just-noticeable difference; 2–10 is visible at a glance.
pub fn delta_e2000(lab1: [f64; 3], lab2: [f64; 3]) -> f64 {
    let [l1, a1, b1] = lab1;
    let [l2, a2, b2] = lab2;
    let c1 = a1.hypot(b1);
    let c2 = a2.hypot(b2);
    let c_bar7 = ((c1 + c2) / 2.0).powi(7);
    let g = 0.5 * (1.0 - (c_bar7 / (c_bar7 + 25f64.powi(7))).sqrt());
    let (a1p, a2p) = ((1.0 + g) * a1, (1.0 + g) * a2);
    let (c1p, c2p) = (a1p.hypot(b1), a2p.hypot(b2));
    let hue = |b: f64, a: f64| {
        if a == 0.0 && b == 0.0 {
            0.0
        } else {
            b.atan2(a).to_degrees().rem_euclid(360.0)
        }
    };
    let (h1p, h2p) = (hue(b1, a1p), hue(b2, a2p));

    let dl = l2 - l1;
    let dc = c2p - c1p;
    let dh_angle = if c1p * c2p == 0.0 {
        0.0
    } else if (h2p - h1p).abs() <= 180.0 {
        h2p - h1p
    } else if h2p - h1p > 180.0 {
        h2p - h1p - 360.0
    } else {
        h2p - h1p + 360.0
    };
    let dh = 2.0 * (c1p * c2p).sqrt() * (dh_angle.to_radians() / 2.0).sin();

    let l_bar = (l1 + l2) / 2.0;
    let c_bar_p = (c1p + c2p) / 2.0;
    let h_bar = if c1p * c2p == 0.0 {
        h1p + h2p
    } else if (h1p - h2p).abs() <= 180.0 {
        (h1p + h2p) / 2.0
    } else if h1p + h2p < 360.0 {
        (h1p + h2p + 360.0) / 2.0
    } else {
        (h1p + h2p - 360.0) / 2.0
    };
    let t = 1.0 - 0.17 * (h_bar - 30.0).to_radians().cos()
        + 0.24 * (2.0 * h_bar).to_radians().cos()
        + 0.32 * (3.0 * h_bar + 6.0).to_radians().cos()
        - 0.20 * (4.0 * h_bar - 63.0).to_radians().cos();
    let d_theta = 30.0 * (-((h_bar - 275.0) / 25.0).powi(2)).exp();
    let c_bar_p7 = c_bar_p.powi(7);
    let r_c = 2.0 * (c_bar_p7 / (c_bar_p7 + 25f64.powi(7))).sqrt();
    let l50 = (l_bar - 50.0).powi(2);
    let s_l = 1.0 + 0.015 * l50 / (20.0 + l50).sqrt();
    let s_c = 1.0 + 0.045 * c_bar_p;
    let s_h = 1.0 + 0.015 * c_bar_p * t;
    let r_t = -(2.0 * d_theta).to_radians().sin() * r_c;
    let (tl, tc, th) = (dl / s_l, dc / s_c, dh / s_h);
    (tl * tl + tc * tc + th * th + r_t * tc * th).sqrt()
}

/// Mean CIEDE2000 over corresponding pixels of two images of one size.
pub fn mean_delta_e2000(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "ΔE needs images of one size"
    );
    let total: f64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| delta_e2000(srgb_to_lab(p.0), srgb_to_lab(q.0)))
        .sum();
    total / f64::from(a.width() * a.height()).max(1.0)
}

/// Bins per channel of [`ColourHistogram`].
const BINS: usize = 8;

/// A joint RGB histogram (8 × 8 × 8 bins) normalised to sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct ColourHistogram(Vec<f64>);

impl ColourHistogram {
    pub fn of(image: &RgbImage) -> Self {
        Self::pooled(std::slice::from_ref(image))
    }

    /// The histogram of all pixels of several images together (each image weighted equally).
    pub fn pooled(images: &[RgbImage]) -> Self {
        let mut bins = vec![0.0; BINS * BINS * BINS];
        for image in images {
            let weight = 1.0 / f64::from(image.width() * image.height()).max(1.0);
            for p in image.pixels() {
                let [r, g, b] = p.0.map(|v| usize::from(v) * BINS / 256);
                bins[(r * BINS + g) * BINS + b] += weight;
            }
        }
        let sum: f64 = bins.iter().sum();
        if sum > 0.0 {
            bins.iter_mut().for_each(|v| *v /= sum);
        }
        Self(bins)
    }

    /// Hellinger distance: 0 for equal histograms, 1 for histograms with no bin in common.
    pub fn distance(&self, other: &Self) -> f64 {
        let overlap: f64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(p, q)| (p * q).sqrt())
            .sum();
        (1.0 - overlap).max(0.0).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn noise_image(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        RgbImage::from_fn(w, h, |_, _| {
            Rgb(std::array::from_fn(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            }))
        })
    }

    #[test]
    fn ssim_is_one_for_equal_images_and_falls_with_damage() {
        let a = noise_image(40, 30, 1);
        assert!((ssim_luma(&a, &a) - 1.0).abs() < 1e-12);
        let unrelated = ssim_luma(&a, &noise_image(40, 30, 2));
        assert!(unrelated.abs() < 0.2, "unrelated noise: {unrelated}");
        // A gradient with mild noise keeps most of its structure.
        let ramp = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 3 + y) as u8; 3]));
        let mut noisy = ramp.clone();
        for (p, n) in noisy.pixels_mut().zip(noise_image(64, 64, 3).pixels()) {
            p.0 = p.0.map(|v| v.saturating_add(n.0[0] / 32));
        }
        let mild = ssim_luma(&ramp, &noisy);
        assert!(mild > 0.3 && mild < 0.999, "mild noise: {mild}");
        assert!((ssim_luma(&noisy, &ramp) - mild).abs() < 1e-12, "symmetric");
    }

    #[test]
    fn ciede2000_matches_published_pairs() {
        // Test data from Sharma, Wu and Dalal (2005), table 1.
        let pairs = [
            ([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485], 2.0425),
            ([50.0, 0.0, 0.0], [50.0, -1.0, 2.0], 2.3669),
            ([50.0, 2.5, 0.0], [73.0, 25.0, -18.0], 27.1492),
            (
                [60.2574, -34.0099, 36.2677],
                [60.4626, -34.1751, 39.4387],
                1.2644,
            ),
            (
                [22.7233, 20.0904, -46.6940],
                [23.0331, 14.9730, -42.5619],
                2.0373,
            ),
        ];
        for (a, b, expected) in pairs {
            let got = delta_e2000(a, b);
            assert!(
                (got - expected).abs() < 1e-4,
                "{a:?} {b:?}: {got} vs {expected}"
            );
            assert!((delta_e2000(b, a) - expected).abs() < 1e-4, "symmetric");
        }
    }

    #[test]
    fn lab_of_reference_colours() {
        let white = srgb_to_lab([255, 255, 255]);
        assert!((white[0] - 100.0).abs() < 0.01 && white[1].abs() < 0.01 && white[2].abs() < 0.01);
        assert_eq!(srgb_to_lab([0, 0, 0]), [0.0, 0.0, 0.0]);
        let red = srgb_to_lab([255, 0, 0]);
        assert!(
            (red[0] - 53.24).abs() < 0.05 && (red[1] - 80.09).abs() < 0.1,
            "{red:?}"
        );
        let a = noise_image(8, 8, 4);
        assert_eq!(mean_delta_e2000(&a, &a), 0.0);
    }

    #[test]
    fn histogram_distance_orders_colour_casts() {
        let grey = RgbImage::from_pixel(10, 10, Rgb([128, 128, 128]));
        let warm = RgbImage::from_pixel(10, 10, Rgb([150, 128, 100]));
        let blue = RgbImage::from_pixel(10, 10, Rgb([20, 40, 220]));
        let h = ColourHistogram::of;
        assert_eq!(h(&grey).distance(&h(&grey)), 0.0);
        assert!((h(&grey).distance(&h(&blue)) - 1.0).abs() < 1e-12);
        let half = ColourHistogram::pooled(&[grey.clone(), blue]);
        let d = half.distance(&h(&grey));
        assert!(d > 0.3 && d < 0.9, "half overlap: {d}");
        assert!(h(&warm).distance(&h(&grey)) > 0.0);
    }
}
