//! Training data: the folders of a run (photos from [`crate::photos`], before/after pairs, a
//! folder per style), sampled as random crops into batches. Sampling draws from a [`Rng`] so a run
//! is reproducible from its seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::{self, FilterType};

use super::trainer::DataSummary;
use crate::learn::config::TrainConfig;
use crate::learn::step::{StyleGrams, mean_grams};
use crate::model::Vgg19;
use crate::photos::{FolderError, ImageFolder, Skipped, to_tensor};
use crate::rng::Rng;

/// A folder of styles: one subfolder of images per style, in name order (the order of a
/// multi-style network's style table). Returns `(id, folder)` pairs.
pub fn style_folders(root: &Path) -> Result<Vec<(String, PathBuf)>, FolderError> {
    let entries = std::fs::read_dir(root).map_err(|_| FolderError::Unreadable(root.into()))?;
    let mut styles: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            crate::pack::valid_id(&id).then(|| (id, e.path()))
        })
        .collect();
    styles.sort();
    if styles.is_empty() {
        return Err(FolderError::NoStyles {
            folder: root.into(),
        });
    }
    Ok(styles)
}

/// Before/after pairs: `root/before/NAME` and `root/after/NAME` (any supported extensions).
#[derive(Debug, Clone)]
pub struct PairedFolder {
    pub before: ImageFolder,
    pub after: ImageFolder,
}

impl PairedFolder {
    pub fn load(
        root: &Path,
        min_side: u32,
        cache_side: u32,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, FolderError> {
        let before = ImageFolder::load(&root.join("before"), min_side, cache_side, progress)
            .map_err(|_| FolderError::NoPairs {
                folder: root.to_path_buf(),
            })?;
        let after = ImageFolder::load(&root.join("after"), min_side, cache_side, progress)
            .map_err(|_| FolderError::NoPairs {
                folder: root.to_path_buf(),
            })?;
        let stem = |name: &str| name.rsplit_once('.').map_or(name, |(s, _)| s).to_string();
        let after_by_stem: BTreeMap<String, usize> = after
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (stem(n), i))
            .collect();
        let mut paired = (empty_like(&before), empty_like(&after));
        paired.0.skipped = before.skipped.clone();
        paired.1.skipped = after.skipped.clone();
        for (i, name) in before.names.iter().enumerate() {
            let Some(&j) = after_by_stem.get(&stem(name)) else {
                paired.0.skipped.push(Skipped {
                    path: before.root.join(name),
                    reason: "no matching after/ file".into(),
                });
                continue;
            };
            let (b, a) = (&before.images[i], &after.images[j]);
            // Pairs must line up pixel for pixel; bring the after image to the before's size.
            let a = if a.dimensions() == b.dimensions() {
                a.clone()
            } else {
                imageops::resize(a, b.width(), b.height(), FilterType::Triangle)
            };
            paired.0.images.push(b.clone());
            paired.0.names.push(name.clone());
            paired.1.images.push(a);
            paired.1.names.push(after.names[j].clone());
        }
        if paired.0.images.is_empty() {
            return Err(FolderError::NoPairs {
                folder: root.to_path_buf(),
            });
        }
        Ok(Self {
            before: paired.0,
            after: paired.1,
        })
    }
}

fn empty_like(folder: &ImageFolder) -> ImageFolder {
    ImageFolder {
        root: folder.root.clone(),
        images: Vec::new(),
        names: Vec::new(),
        skipped: Vec::new(),
    }
}

pub use crate::learn::lesson::Crop;

/// Random brightness, contrast and saturation changes of up to ± `amount`.
pub fn jitter(image: &mut RgbImage, amount: f32, rng: &mut Rng) {
    if amount <= 0.0 {
        return;
    }
    let brightness = 1.0 + rng.uniform(-amount, amount);
    let contrast = 1.0 + rng.uniform(-amount, amount);
    let saturation = 1.0 + rng.uniform(-amount, amount);
    let n = (image.width() * image.height()).max(1) as f32;
    let mean_luma = image.pixels().map(|p| luma(p.0)).sum::<f32>() / n;
    for p in image.pixels_mut() {
        let rgb = p.0.map(f32::from);
        let y = luma(p.0);
        for (out, v) in p.0.iter_mut().zip(rgb) {
            let v = y + (v - y) * saturation;
            let v = mean_luma + (v - mean_luma) * contrast;
            *out = (v * brightness).round().clamp(0.0, 255.0) as u8;
        }
    }
}

fn luma([r, g, b]: [u8; 3]) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// The photos of a run, by mode.
pub(super) enum Data {
    Unpaired {
        content: ImageFolder,
        style: ImageFolder,
    },
    Paired(PairedFolder),
    Noise(ImageFolder),
    /// Content photos and one folder per style.
    Styles {
        content: ImageFolder,
        styles: Vec<ImageFolder>,
    },
}

/// What one training step learns from.
pub(super) struct Batch {
    pub(super) input: Tensor<4>,
    /// The target (transfer), the style crop (styles), or the real portraits again (noise).
    pub(super) target: Tensor<4>,
    /// Styles mode: each sample's style, one-hot `[batch, styles]`.
    pub(super) mix: Option<Tensor<2>>,
}

/// A batch drawn with the run's random state: (input, target) for transfer runs, (photo, a
/// crop of the sample's style at a random scale, the style) for styles runs, (real portraits,
/// the same) for noise runs.
pub(super) fn batch(data: &Data, config: &TrainConfig, rng: &mut Rng, device: &Device) -> Batch {
    let size = config.size as u32;
    let mut inputs = Vec::with_capacity(config.batch);
    let mut targets = Vec::with_capacity(config.batch);
    let mut chosen = Vec::new();
    for _ in 0..config.batch {
        match data {
            Data::Unpaired { content, style } => {
                let image = &content.images[rng.below(content.len())];
                let mut input = Crop::random(image, size, rng).apply(image, size);
                jitter(&mut input, config.jitter, rng);
                let image = &style.images[rng.below(style.len())];
                inputs.push(input);
                targets.push(Crop::random(image, size, rng).apply(image, size));
            }
            Data::Paired(pairs) => {
                let i = rng.below(pairs.before.len());
                let crop = Crop::random(&pairs.before.images[i], size, rng);
                inputs.push(crop.apply(&pairs.before.images[i], size));
                targets.push(crop.apply(&pairs.after.images[i], size));
            }
            Data::Noise(portraits) => {
                let image = &portraits.images[rng.below(portraits.len())];
                let mut portrait = Crop::random(image, size, rng).apply(image, size);
                jitter(&mut portrait, config.jitter, rng);
                inputs.push(portrait);
            }
            Data::Styles { content, styles } => {
                let image = &content.images[rng.below(content.len())];
                let mut input = Crop::random(image, size, rng).apply(image, size);
                jitter(&mut input, config.jitter, rng);
                inputs.push(input);
                let s = rng.below(styles.len());
                let image = &styles[s].images[rng.below(styles[s].len())];
                targets.push(Crop::random(image, size, rng).apply(image, size));
                chosen.push(s);
            }
        }
    }
    let input = to_tensor(&inputs, device);
    let target = if targets.is_empty() {
        input.clone()
    } else {
        to_tensor(&targets, device)
    };
    let mix = match data {
        Data::Styles { styles, .. } => Some(one_hot(&chosen, styles.len(), device)),
        _ => None,
    };
    Batch { input, target, mix }
}

/// Crops per style that make its target Gram matrices.
const STYLE_CROPS: usize = 16;

/// Styles mode: each style's target, the mean Gram matrices of [`STYLE_CROPS`] crops of its
/// images at random scales (drawn from the run's seed, not its random state, so a resumed run
/// gets the same targets). One fixed target per style is steadier than a new crop's each step,
/// and saves the style crops' VGG19 pass. `progress(done, total)` counts styles.
pub(super) fn style_grams(
    data: &Data,
    config: &TrainConfig,
    vgg: &Vgg19,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Option<StyleGrams> {
    let Data::Styles { styles, .. } = data else {
        return None;
    };
    let size = config.size as u32;
    let mut rng = Rng::new(config.seed ^ 0x5354_594c_4547_5241);
    let mut grams = Vec::with_capacity(styles.len());
    for (done, folder) in styles.iter().enumerate() {
        progress(done, styles.len());
        let crops: Vec<RgbImage> = (0..STYLE_CROPS)
            .map(|i| {
                let image = &folder.images[i * folder.len() / STYLE_CROPS];
                Crop::random(image, size, &mut rng).apply(image, size)
            })
            .collect();
        grams.push(mean_grams(
            vgg,
            crops
                .chunks(config.batch.max(1))
                .map(|c| to_tensor(c, device)),
        ));
    }
    progress(styles.len(), styles.len());
    Some(StyleGrams::new(&grams))
}

/// `[indices.len(), classes]` rows with a 1 at each index.
pub fn one_hot(indices: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut values = vec![0.0f32; indices.len() * classes];
    for (row, &i) in indices.iter().enumerate() {
        values[row * classes + i] = 1.0;
    }
    Tensor::from_data(TensorData::new(values, [indices.len(), classes]), device)
}

impl Data {
    pub(super) fn summary(&self) -> DataSummary {
        let folders: Vec<&ImageFolder> = match self {
            Data::Unpaired { content, style } => vec![content, style],
            Data::Paired(p) => vec![&p.before, &p.after],
            Data::Noise(portraits) => vec![portraits],
            Data::Styles { content, styles } => std::iter::once(content).chain(styles).collect(),
        };
        DataSummary {
            folders: folders
                .iter()
                .map(|f| (f.root.display().to_string(), f.len()))
                .collect(),
            skipped: folders
                .iter()
                .flat_map(|f| f.skipped.iter())
                .map(|Skipped { path, reason }| (path.display().to_string(), reason.clone()))
                .collect(),
        }
    }

    pub(super) fn sample_sources(&self) -> &[RgbImage] {
        match self {
            Data::Unpaired { content, .. } => &content.images,
            Data::Paired(p) => &p.before.images,
            Data::Styles { content, .. } => &content.images,
            Data::Noise(_) => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_crops_stay_inside_and_are_reproducible() {
        let image = RgbImage::new(300, 200);
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        for _ in 0..200 {
            let crop = Crop::random(&image, 64, &mut a);
            let again = Crop::random(&image, 64, &mut b);
            assert_eq!(
                (crop.x, crop.y, crop.side, crop.flip),
                (again.x, again.y, again.side, again.flip)
            );
            assert!(crop.side >= 64 && crop.x + crop.side <= 300 && crop.y + crop.side <= 200);
            assert_eq!(crop.apply(&image, 64).dimensions(), (64, 64));
        }
    }
}
