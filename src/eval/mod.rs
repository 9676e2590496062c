//! Evaluating a style (`portraitist eval`); noise packs are measured by [`noise`] instead: how much of the photo survives, how close the result
//! is to the style, how close to the true answer where one is known, and how fast.
//!
//! Per photo (fitted to `max_side`):
//! * content: SSIM of the luma of photo and result ([`metrics::ssim_luma`]); with VGG19, the
//!   relative feature distance `Σ‖F(out) − F(photo)‖² / Σ‖F(photo)‖²` over relu1_1…relu4_1;
//! * style: the relative Gram distance `‖G(out) − Ḡ‖² / ‖Ḡ‖²` to the mean Gram matrices Ḡ of the
//!   style set (VGG19), and the Hellinger distance of the colour histograms to the style set's
//!   pooled histogram — each beside the same figure for the untouched photo, so "closer to the
//!   style" reads directly;
//! * truth: mean CIEDE2000 between the result and the true answer (a known look applied to the
//!   photo, or a folder of graded photos with matching names), beside the photo's own ΔE;
//! * milliseconds per photo for the network run.
//!
//! VGG19 features are taken at most [`VGG_SIDE`] pixels on the longer side, to keep the CPU cost
//! reasonable.

pub mod metrics;
pub mod noise;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use image::RgbImage;

use crate::looks::LookName;
use crate::model::{Vgg19, gram};
use crate::photos::{ImageFolder, to_tensor};
use crate::stylize::{self, RenderError, Stylizer};
use metrics::ColourHistogram;

/// Longer side at which VGG19 features are compared.
pub const VGG_SIDE: u32 = 256;
/// Height of each cell of the contact sheet.
const SHEET_HEIGHT: u32 = 256;

/// What the true result of a photo is, where it is known.
pub enum Truth<'a> {
    Unknown,
    /// A parametric look: the truth is the look applied to the photo.
    Look(LookName),
    /// Graded photos, matched to the photos by file stem.
    Folder(&'a ImageFolder),
}

/// Where the results come from: our stylizer, run here, or any tool's outputs (named like the
/// photos), so that ours and a peer's are measured by the same code.
pub enum Producer<'a> {
    Stylizer(&'a Stylizer),
    Results(&'a ImageFolder),
}

/// Face boxes by photo file stem: `[x0, y0, x1, y1]` as fractions of the photo's width and height.
pub type FaceBoxes = BTreeMap<String, [f64; 4]>;

pub struct Request<'a> {
    pub producer: Producer<'a>,
    pub photos: &'a ImageFolder,
    /// Where the face is in each photo: the content figures are also measured inside it.
    pub faces: Option<&'a FaceBoxes>,
    pub style_set: Option<&'a ImageFolder>,
    pub truth: Truth<'a>,
    pub vgg: Option<&'a Vgg19>,
    /// Photos are fitted within this many pixels before they are stylized.
    pub max_side: u32,
    /// The device the VGG19 features run on.
    pub device: Device,
}

/// The figures for one photo. `None` where the input for a figure was not given.
#[derive(Debug, Clone, Default)]
pub struct PhotoScore {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Milliseconds the network took (our stylizer only).
    pub ms: Option<f64>,
    pub ssim: f64,
    pub feature_distance: Option<f64>,
    /// SSIM and VGG feature distance inside the face box, where one is given.
    pub face_ssim: Option<f64>,
    pub face_feature_distance: Option<f64>,
    pub gram_distance: Option<f64>,
    pub gram_distance_photo: Option<f64>,
    pub histogram_distance: Option<f64>,
    pub histogram_distance_photo: Option<f64>,
    pub delta_e: Option<f64>,
    pub delta_e_photo: Option<f64>,
}

pub struct Evaluation {
    pub scores: Vec<PhotoScore>,
    /// Photos that had no true answer in the truth folder.
    pub without_truth: Vec<String>,
    /// Photos that had no result in the results folder (left out of the figures).
    pub without_result: Vec<String>,
    /// Contact sheet rows: photo | result (| truth).
    pub sheet_rows: Vec<Vec<RgbImage>>,
}

/// Style-set statistics, computed once.
struct StyleStats {
    grams: Option<Vec<Tensor<3>>>,
    histogram: ColourHistogram,
}

pub fn evaluate(
    request: &Request,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Evaluation, RenderError> {
    let style = request.style_set.map(|set| StyleStats {
        grams: request
            .vgg
            .map(|vgg| mean_grams(vgg, &set.images, &request.device)),
        histogram: ColourHistogram::pooled(&set.images),
    });
    let by_stem = |folder: &'_ ImageFolder| -> BTreeMap<String, RgbImage> {
        folder
            .names
            .iter()
            .map(|n| stem(n))
            .zip(folder.images.iter().cloned())
            .collect()
    };
    let truth_by_stem = match request.truth {
        Truth::Folder(folder) => by_stem(folder),
        _ => BTreeMap::new(),
    };
    let results_by_stem = match request.producer {
        Producer::Results(folder) => by_stem(folder),
        Producer::Stylizer(_) => BTreeMap::new(),
    };
    let mut without_result = Vec::new();
    let total = request.photos.len();
    let mut scores = Vec::with_capacity(total);
    let mut sheet_rows = Vec::with_capacity(total);
    let mut without_truth = Vec::new();
    for (i, (name, source)) in request
        .photos
        .names
        .iter()
        .zip(&request.photos.images)
        .enumerate()
    {
        let photo = stylize::fit_within(source, request.max_side);
        let (output, ms) = match request.producer {
            Producer::Stylizer(stylizer) => {
                if i == 0 {
                    // One untimed render first: the figure is the warm time per photo (thread
                    // pool, caches and allocations set up), as the peers' are measured.
                    stylizer.render_blocking(&photo, None, &mut |_, _| {})?;
                }
                let started = Instant::now();
                let output = stylizer.render_blocking(&photo, None, &mut |_, _| {})?;
                (output, Some(started.elapsed().as_secs_f64() * 1000.0))
            }
            Producer::Results(_) => match results_by_stem.get(&stem(name)) {
                Some(result) => (resized_like(result, &photo), None),
                None => {
                    without_result.push(name.clone());
                    progress(i + 1, total);
                    continue;
                }
            },
        };
        let mut score = PhotoScore {
            name: name.clone(),
            width: photo.width(),
            height: photo.height(),
            ms,
            ssim: metrics::ssim_luma(&photo, &output),
            ..PhotoScore::default()
        };
        let face = request
            .faces
            .and_then(|f| f.get(&stem(name)))
            .map(|&b| (crop(&photo, b), crop(&output, b)));
        if let Some((photo_face, output_face)) = &face {
            score.face_ssim = Some(metrics::ssim_luma(photo_face, output_face));
        }
        if let Some(vgg) = request.vgg {
            let features = |image: &RgbImage| {
                let small = stylize::fit_within(image, VGG_SIDE);
                vgg.features(to_tensor(&[small], &request.device)).0
            };
            let f_photo = features(&photo);
            let f_output = features(&output);
            score.feature_distance = Some(feature_distance(&f_output, &f_photo));
            if let Some((photo_face, output_face)) = &face {
                score.face_feature_distance = Some(feature_distance(
                    &features(output_face),
                    &features(photo_face),
                ));
            }
            if let Some(grams) = style.as_ref().and_then(|s| s.grams.as_ref()) {
                score.gram_distance = Some(gram_distance(&f_output, grams));
                score.gram_distance_photo = Some(gram_distance(&f_photo, grams));
            }
        }
        if let Some(style) = &style {
            score.histogram_distance =
                Some(ColourHistogram::of(&output).distance(&style.histogram));
            score.histogram_distance_photo =
                Some(ColourHistogram::of(&photo).distance(&style.histogram));
        }
        let truth = match request.truth {
            Truth::Unknown => None,
            Truth::Look(look) => Some(look.apply(&photo)),
            Truth::Folder(_) => match truth_by_stem.get(&stem(name)) {
                Some(t) => Some(resized_like(t, &photo)),
                None => {
                    without_truth.push(name.clone());
                    None
                }
            },
        };
        let mut row = vec![sheet_cell(&photo), sheet_cell(&output)];
        if let Some(truth) = &truth {
            score.delta_e = Some(metrics::mean_delta_e2000(&output, truth));
            score.delta_e_photo = Some(metrics::mean_delta_e2000(&photo, truth));
            row.push(sheet_cell(truth));
        }
        scores.push(score);
        sheet_rows.push(row);
        progress(i + 1, total);
    }
    Ok(Evaluation {
        scores,
        without_truth,
        without_result,
        sheet_rows,
    })
}

/// `image` (a truth or a result of the full-size photo) at the size of `photo` (the photo as
/// fitted for the run): scaled like the photo, so one of the photo's size lines up exactly.
fn resized_like(image: &RgbImage, photo: &RgbImage) -> RgbImage {
    let fitted = stylize::fit_within(image, photo.width().max(photo.height()));
    if fitted.dimensions() == photo.dimensions() {
        fitted
    } else {
        image::imageops::resize(
            image,
            photo.width(),
            photo.height(),
            image::imageops::FilterType::Triangle,
        )
    }
}

/// The part of `image` inside `[x0, y0, x1, y1]` (fractions of its size), at least 16×16.
fn crop(image: &RgbImage, [x0, y0, x1, y1]: [f64; 4]) -> RgbImage {
    let (w, h) = (f64::from(image.width()), f64::from(image.height()));
    let left = (x0.clamp(0.0, 1.0) * w) as u32;
    let top = (y0.clamp(0.0, 1.0) * h) as u32;
    let right = ((x1.clamp(0.0, 1.0) * w) as u32)
        .max(left + 16)
        .min(image.width());
    let bottom = ((y1.clamp(0.0, 1.0) * h) as u32)
        .max(top + 16)
        .min(image.height());
    image::imageops::crop_imm(
        image,
        left.min(right.saturating_sub(1)),
        top.min(bottom.saturating_sub(1)),
        right - left.min(right.saturating_sub(1)),
        bottom - top.min(bottom.saturating_sub(1)),
    )
    .to_image()
}

fn stem(name: &str) -> String {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.rsplit_once('.').map_or(file, |(s, _)| s).to_string()
}

fn sheet_cell(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let width = ((f64::from(w) * f64::from(SHEET_HEIGHT) / f64::from(h)).round() as u32).max(1);
    image::imageops::resize(
        image,
        width,
        SHEET_HEIGHT,
        image::imageops::FilterType::Triangle,
    )
}

/// The mean Gram matrix per VGG layer over the style images.
fn mean_grams(vgg: &Vgg19, images: &[RgbImage], device: &Device) -> Vec<Tensor<3>> {
    let mut sums: Option<Vec<Tensor<3>>> = None;
    for image in images {
        let small = stylize::fit_within(image, VGG_SIDE);
        let grams: Vec<Tensor<3>> = vgg
            .features(to_tensor(&[small], device))
            .0
            .iter()
            .map(gram)
            .collect();
        sums = Some(match sums {
            None => grams,
            Some(s) => s.into_iter().zip(grams).map(|(a, b)| a + b).collect(),
        });
    }
    let n = images.len().max(1) as f64;
    sums.unwrap_or_default()
        .into_iter()
        .map(|g| g / n)
        .collect()
}

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_data().try_to_vec::<f32>().map_or(f32::NAN, |v| v[0]))
}

fn feature_distance(output: &[Tensor<4>], photo: &[Tensor<4>]) -> f64 {
    let (mut diff, mut norm) = (0.0, 0.0);
    for (o, p) in output.iter().zip(photo) {
        diff += scalar((o.clone() - p.clone()).powf_scalar(2.0).sum());
        norm += scalar(p.clone().powf_scalar(2.0).sum());
    }
    diff / norm.max(f64::MIN_POSITIVE)
}

fn gram_distance(features: &[Tensor<4>], style: &[Tensor<3>]) -> f64 {
    let (mut diff, mut norm) = (0.0, 0.0);
    for (f, s) in features.iter().zip(style) {
        diff += scalar((gram(f) - s.clone()).powf_scalar(2.0).sum());
        norm += scalar(s.clone().powf_scalar(2.0).sum());
    }
    diff / norm.max(f64::MIN_POSITIVE)
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Evaluation {
    /// Means over the photos, keyed as they are stored in a pack's `style.json`.
    pub fn summary(&self) -> BTreeMap<String, f64> {
        let s = &self.scores;
        let figures: [(&str, Option<f64>); 12] = [
            ("photos", Some(s.len() as f64)),
            ("ms_per_photo", mean(s.iter().map(|p| p.ms))),
            ("ssim_luma", mean(s.iter().map(|p| Some(p.ssim)))),
            (
                "vgg_feature_distance",
                mean(s.iter().map(|p| p.feature_distance)),
            ),
            ("face_ssim_luma", mean(s.iter().map(|p| p.face_ssim))),
            (
                "face_vgg_feature_distance",
                mean(s.iter().map(|p| p.face_feature_distance)),
            ),
            ("vgg_gram_distance", mean(s.iter().map(|p| p.gram_distance))),
            (
                "vgg_gram_distance_photo",
                mean(s.iter().map(|p| p.gram_distance_photo)),
            ),
            (
                "histogram_distance",
                mean(s.iter().map(|p| p.histogram_distance)),
            ),
            (
                "histogram_distance_photo",
                mean(s.iter().map(|p| p.histogram_distance_photo)),
            ),
            ("delta_e2000", mean(s.iter().map(|p| p.delta_e))),
            ("delta_e2000_photo", mean(s.iter().map(|p| p.delta_e_photo))),
        ];
        figures
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect()
    }

    /// The Markdown report: what was measured, per-photo table, means.
    pub fn markdown(&self, title: &str, context: &str) -> String {
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
        let mut md = format!("# Evaluation: {title}\n\n{context}\n\n");
        md.push_str(
            "| photo | size | ms | SSIM (luma) ↑ | VGG feature dist. ↓ | face: SSIM ↑, VGG dist. ↓ | \
             Gram dist. (photo → result) ↓ | colour hist. dist. (photo → result) ↓ | \
             ΔE2000 to truth (photo → result) ↓ |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.scores {
            let _ = writeln!(
                md,
                "| {} | {}×{} | {} | {:.3} | {} | {}, {} | {} → {} | {} → {} | {} → {} |",
                p.name,
                p.width,
                p.height,
                p.ms.map_or("–".to_string(), |ms| format!("{ms:.0}")),
                p.ssim,
                fmt(p.feature_distance),
                fmt(p.face_ssim),
                fmt(p.face_feature_distance),
                fmt(p.gram_distance_photo),
                fmt(p.gram_distance),
                fmt(p.histogram_distance_photo),
                fmt(p.histogram_distance),
                fmt(p.delta_e_photo),
                fmt(p.delta_e),
            );
        }
        md.push_str("\n## Means\n\n| figure | value |\n|---|---:|\n");
        for (k, v) in self.summary() {
            let _ = writeln!(md, "| {k} | {v:.4} |");
        }
        if !self.without_result.is_empty() {
            let _ = writeln!(
                md,
                "\nNo result in the results folder for (left out): {}.",
                self.without_result.join(", ")
            );
        }
        if !self.without_truth.is_empty() {
            let _ = writeln!(
                md,
                "\nNo true answer in the truth folder for: {}.",
                self.without_truth.join(", ")
            );
        }
        md.push_str(
            "\nSSIM: structural similarity of photo and result luma (1 = same structure). VGG \
             feature distance: relative squared difference of VGG19 relu1_1…relu4_1 activations; \
             the face figures are the same inside the face box. \
             Gram distance: relative squared difference of the result's Gram matrices to the style \
             set's mean ones. Colour histogram distance: Hellinger distance of 8×8×8 RGB histograms \
             to the style set's pooled histogram. ΔE2000: mean CIEDE2000 per pixel to the true \
             answer (about 1 is just noticeable). Contact sheet: photo | result | truth.\n",
        );
        md
    }
}
