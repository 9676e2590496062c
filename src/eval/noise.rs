//! Evaluating a noise pack, the seeds' "realism and diversity" of the generator:
//!
//! * realism: the Fréchet distance between Gaussians fitted to features of generated portraits
//!   and of held-out real portraits, `‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)` (the formula of
//!   FID; it is not FID, whose features come from Inception-v3). Features: VGG19's relu4_1,
//!   averaged over positions, on portraits scaled to [`VGG_SIDE`] (512 values), when the VGG19
//!   weights are there; else the documented fallback, each portrait shrunk to 8×8 RGB (192
//!   values in 0..1) — colour layout only. The report says which. Beside it: the same distance
//!   between the training and the held-out portraits, the floor a perfect generator would reach
//!   with these sample sizes;
//! * diversity: the mean pairwise feature distance of the samples over that of the held-out
//!   portraits (1 = as varied as real portraits; near 0 = mode collapse);
//! * memorisation: each sample's distance to its nearest training portrait, over the same for
//!   held-out portraits (well below 1 = samples copy training images); the contact sheet shows
//!   samples beside their nearest training portrait. Neighbours are found on unit-length feature
//!   vectors (cosine distance): on raw VGG19 features a few large-norm portraits are everyone's
//!   nearest neighbour.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::create::Creator;
use crate::model::Vgg19;
use crate::photos::{ImageFolder, to_tensor};
use crate::stylize::RenderError;

/// Side at which portraits enter VGG19 for these figures.
pub const VGG_SIDE: u32 = 128;
/// Side of the fallback features' thumbnails.
const PIXEL_SIDE: u32 = 8;
/// Samples shown on the contact sheet.
const SHEET_SAMPLES: usize = 12;
/// Height of a contact-sheet cell.
const CELL: u32 = 128;

pub struct NoiseRequest<'a> {
    pub creator: &'a Creator,
    /// Held-out real portraits.
    pub real: &'a ImageFolder,
    /// The training portraits, for the memorisation check.
    pub training: Option<&'a ImageFolder>,
    /// Portraits to generate (seeds 0, 1, …).
    pub samples: usize,
    pub vgg: Option<&'a Vgg19>,
    /// The device the VGG19 features run on.
    pub device: Device,
}

pub struct NoiseEvaluation {
    pub metrics: BTreeMap<String, f64>,
    /// Which features the distances use.
    pub features: &'static str,
    /// Rows of sample | nearest training portrait (or samples alone without a training set).
    pub sheet_rows: Vec<Vec<RgbImage>>,
    pub samples: usize,
    pub real: usize,
    pub training: Option<usize>,
}

pub fn evaluate_noise(
    request: &NoiseRequest,
    progress: &mut dyn FnMut(&str),
) -> Result<NoiseEvaluation, RenderError> {
    progress("generating");
    let seeds: Vec<u64> = (0..request.samples as u64).collect();
    let started = std::time::Instant::now();
    let samples = pollster::block_on(request.creator.render_seeds(&seeds))?;
    let ms_per_sample = started.elapsed().as_secs_f64() * 1000.0 / samples.len().max(1) as f64;
    let embed = |images: &[RgbImage]| embed(images, request.vgg, &request.device);
    progress("features of the samples");
    let fake = embed(&samples);
    progress("features of the real portraits");
    let real = embed(&request.real.images);
    let mut metrics = BTreeMap::new();
    metrics.insert("frechet_distance".into(), frechet_distance(&fake, &real));
    let real_spread = mean_pairwise_distance(&real);
    metrics.insert(
        "diversity".into(),
        mean_pairwise_distance(&fake) / real_spread.max(1e-12),
    );
    metrics.insert("ms_per_sample".into(), ms_per_sample);

    let mut sheet_rows = Vec::new();
    let cell = |image: &RgbImage| imageops::resize(image, CELL, CELL, FilterType::Lanczos3);
    if let Some(training) = request.training {
        progress("features of the training portraits");
        let train = embed(&training.images);
        metrics.insert(
            "frechet_distance_training_vs_real".into(),
            frechet_distance(&train, &real),
        );
        let (train, fake, real) = (unit_rows(&train), unit_rows(&fake), unit_rows(&real));
        let mean_nearest = |set: &[Vec<f64>]| {
            set.iter().map(|v| nearest(v, &train).1).sum::<f64>() / set.len().max(1) as f64
        };
        metrics.insert(
            "memorisation_ratio".into(),
            mean_nearest(&fake) / mean_nearest(&real).max(1e-12),
        );
        for (sample, features) in samples.iter().zip(&fake).take(SHEET_SAMPLES) {
            let (index, _) = nearest(features, &train);
            sheet_rows.push(vec![cell(sample), cell(&training.images[index])]);
        }
    } else {
        sheet_rows = samples
            .iter()
            .take(SHEET_SAMPLES)
            .map(cell)
            .collect::<Vec<_>>()
            .chunks(4)
            .map(<[RgbImage]>::to_vec)
            .collect();
    }
    Ok(NoiseEvaluation {
        metrics,
        features: if request.vgg.is_some() {
            "VGG19 relu4_1, mean over positions (512 values), portraits at 128 px"
        } else {
            "fallback: portraits shrunk to 8×8 RGB (192 values; colour layout only, no VGG19 weights)"
        },
        sheet_rows,
        samples: samples.len(),
        real: request.real.len(),
        training: request.training.map(ImageFolder::len),
    })
}

impl NoiseEvaluation {
    pub fn markdown(&self, title: &str, context: &str) -> String {
        let mut md = format!("# Evaluation of {title}\n\n{context}\n\n");
        let _ = writeln!(
            md,
            "{} generated portraits (seeds 0–{}) against {} held-out real portraits{}. Features: {}.\n",
            self.samples,
            self.samples.saturating_sub(1),
            self.real,
            self.training
                .map_or(String::new(), |n| format!(" and {n} training portraits")),
            self.features
        );
        md.push_str("| figure | value | reads as |\n|---|---|---|\n");
        let explain = |name: &str| match name {
            "frechet_distance" => {
                "realism: Fréchet distance of sample and real feature statistics (lower is better; not FID)"
            }
            "frechet_distance_training_vs_real" => {
                "the same between training and held-out real portraits: the floor for these sample sizes"
            }
            "diversity" => {
                "mean pairwise distance of samples / of real portraits (1 = as varied; near 0 = mode collapse)"
            }
            "memorisation_ratio" => {
                "distance to the nearest training portrait, samples / held-out real (well below 1 = copying)"
            }
            "ms_per_sample" => "milliseconds per generated portrait (batches of 16)",
            _ => "",
        };
        for (name, value) in &self.metrics {
            let _ = writeln!(md, "| {name} | {value:.4} | {} |", explain(name));
        }
        md.push_str(
            "\n`contact.png`: each sample beside its nearest training portrait (in feature space).\n",
        );
        md
    }
}

/// One feature vector per image (see the module documentation).
pub fn embed(images: &[RgbImage], vgg: Option<&Vgg19>, device: &Device) -> Vec<Vec<f64>> {
    match vgg {
        None => images
            .iter()
            .map(|image| {
                imageops::resize(image, PIXEL_SIDE, PIXEL_SIDE, FilterType::Triangle)
                    .as_raw()
                    .iter()
                    .map(|&v| f64::from(v) / 255.0)
                    .collect()
            })
            .collect(),
        Some(vgg) => {
            let mut out = Vec::with_capacity(images.len());
            for chunk in images.chunks(16) {
                let resized: Vec<RgbImage> = chunk
                    .iter()
                    .map(|i| imageops::resize(i, VGG_SIDE, VGG_SIDE, FilterType::Triangle))
                    .collect();
                let features = vgg.features(to_tensor(&resized, device)).0;
                let deepest = features.last().expect("VGG19 gives four feature maps");
                let [b, c, h, w] = deepest.dims();
                let pooled: Tensor<2> = deepest
                    .clone()
                    .reshape([b, c, h * w])
                    .mean_dim(2)
                    .reshape([b, c]);
                let values = pooled.into_data().try_into_vec::<f32>().unwrap_or_default();
                out.extend(
                    values
                        .chunks(c)
                        .map(|v| v.iter().map(|&x| f64::from(x)).collect()),
                );
            }
            out
        }
    }
}

fn mean_and_covariance(set: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = set.len().max(1);
    let d = set.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; d];
    for v in set {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    let denominator = (n.saturating_sub(1)).max(1) as f64;
    for v in set {
        let centred: Vec<f64> = v.iter().zip(&mean).map(|(x, m)| x - m).collect();
        for i in 0..d {
            let ci = centred[i] / denominator;
            if ci == 0.0 {
                continue;
            }
            let row = &mut cov[i * d..(i + 1) * d];
            for (c, x) in row.iter_mut().zip(&centred) {
                *c += ci * x;
            }
        }
    }
    (mean, cov)
}

/// Fréchet distance between Gaussians fitted to two sets of equally long feature vectors.
pub fn frechet_distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (mean_a, cov_a) = mean_and_covariance(a);
    let (mean_b, cov_b) = mean_and_covariance(b);
    let d = mean_a.len();
    let mean_term: f64 = mean_a
        .iter()
        .zip(&mean_b)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    // Tr((Σa Σb)^½) = Σ √λ over the eigenvalues of Σa^½ Σb Σa^½ (symmetric, PSD).
    let root_a = symmetric_sqrt(&cov_a, d);
    let product = multiply(&multiply(&root_a, &cov_b, d), &root_a, d);
    let (values, _) = symmetric_eigen(&product, d);
    let cross: f64 = values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    (mean_term + trace(&cov_a) + trace(&cov_b) - 2.0 * cross).max(0.0)
}

fn multiply(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// `V diag(√max(λ, 0)) Vᵀ` of a symmetric matrix.
fn symmetric_sqrt(m: &[f64], d: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(m, d);
    let mut out = vec![0.0; d * d];
    for (k, &l) in values.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..d {
            let vik = vectors[i * d + k] * s;
            for j in 0..d {
                out[i * d + j] += vik * vectors[j * d + k];
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors (as columns) of a symmetric `d`×`d` matrix, by cyclic Jacobi
/// rotations: robust and exact enough for covariance matrices of a few hundred dimensions.
pub fn symmetric_eigen(m: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    for _sweep in 0..60 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-13 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (a[p * d + p], a[q * d + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// Each vector scaled to length 1.
fn unit_rows(set: &[Vec<f64>]) -> Vec<Vec<f64>> {
    set.iter()
        .map(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Mean Euclidean distance over all pairs.
pub fn mean_pairwise_distance(set: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    let mut pairs = 0usize;
    for (i, a) in set.iter().enumerate() {
        for b in &set[i + 1..] {
            total += distance(a, b);
            pairs += 1;
        }
    }
    total / pairs.max(1) as f64
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Index of and distance to the nearest vector of `set`.
fn nearest(v: &[f64], set: &[Vec<f64>]) -> (usize, f64) {
    set.iter()
        .enumerate()
        .map(|(i, w)| (i, distance(v, w)))
        .fold(
            (0, f64::INFINITY),
            |best, x| if x.1 < best.1 { x } else { best },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn gaussian(n: usize, mean: &[f64], std: &[f64], seed: u64) -> Vec<Vec<f64>> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                mean.iter()
                    .zip(std)
                    .map(|(m, s)| m + s * f64::from(rng.normal()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn jacobi_rebuilds_the_matrix_from_its_eigenvectors() {
        let d = 5;
        let mut rng = Rng::new(4);
        let raw: Vec<f64> = (0..d * d).map(|_| f64::from(rng.normal())).collect();
        let m: Vec<f64> = (0..d * d)
            .map(|k| (raw[k] + raw[(k % d) * d + k / d]) / 2.0)
            .collect();
        let (values, vectors) = symmetric_eigen(&m, d);
        for i in 0..d {
            for j in 0..d {
                let rebuilt: f64 = (0..d)
                    .map(|k| vectors[i * d + k] * values[k] * vectors[j * d + k])
                    .sum();
                assert!((rebuilt - m[i * d + j]).abs() < 1e-9, "{i},{j}");
            }
        }
        let root = symmetric_sqrt(&multiply(&m, &m, d), d);
        let square = multiply(&root, &root, d);
        let mm = multiply(&m, &m, d);
        assert!(square.iter().zip(&mm).all(|(a, b)| (a - b).abs() < 1e-8));
    }

    #[test]
    fn frechet_distance_matches_the_closed_form_for_independent_features() {
        // Diagonal covariances: d² = Σ (μa − μb)² + Σ (σa − σb)².
        let a = gaussian(4000, &[0.0, 1.0, 2.0], &[1.0, 0.5, 2.0], 1);
        let b = gaussian(4000, &[1.0, 1.0, 0.0], &[2.0, 0.5, 1.0], 2);
        let expected = 1.0 + 0.0 + 4.0 + 1.0 + 0.0 + 1.0;
        let d = frechet_distance(&a, &b);
        assert!((d - expected).abs() < 0.35, "{d} vs {expected}");
        let same = frechet_distance(&a, &a);
        assert!(same.abs() < 1e-6, "{same}");
        let close = frechet_distance(&a, &gaussian(4000, &[0.0, 1.0, 2.0], &[1.0, 0.5, 2.0], 3));
        assert!(close < 0.1 && close < d / 20.0, "{close}");
    }

    #[test]
    fn diversity_falls_when_samples_collapse() {
        let varied = gaussian(50, &[0.0; 4], &[1.0; 4], 5);
        let collapsed = gaussian(50, &[0.0; 4], &[0.05; 4], 6);
        assert!(mean_pairwise_distance(&collapsed) < 0.1 * mean_pairwise_distance(&varied));
        assert_eq!(nearest(&[0.0, 0.0], &[vec![5.0, 5.0], vec![0.1, 0.0]]).0, 1);
    }
}
