//! Training data: folders of photos, decoded once and cached, sampled as random crops.
//!
//! Folders are searched recursively (symlink loops are detected, not followed forever). Anything
//! that is not a readable photo is skipped, counted and listed in the run log; an empty folder is
//! an error. Sampling draws from a [`Rng`] so a run is reproducible from its seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::{self, FilterType};

use super::trainer::DataSummary;
use crate::image_io;
use crate::learn::config::TrainConfig;
use crate::rng::Rng;

/// File extensions looked at; other files are skipped without being counted as broken.
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "gif"];

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}: the folder does not exist or cannot be read")]
    Unreadable(PathBuf),
    #[error("{folder}: no usable photos (JPEG, PNG, WebP or GIF) found{}", skipped_note(*.skipped))]
    Empty { folder: PathBuf, skipped: usize },
    #[error(
        "{folder}: no before/after pairs: expected `before/` and `after/` folders with files of matching names"
    )]
    NoPairs { folder: PathBuf },
    #[error(
        "{folder}: no style folders: expected one subfolder of images per style, named by the style's id (a–z, 0–9, `-`, `_`)"
    )]
    NoStyles { folder: PathBuf },
}

/// A folder of styles: one subfolder of images per style, in name order (the order of a
/// multi-style network's style table). Returns `(id, folder)` pairs.
pub fn style_folders(root: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let entries = std::fs::read_dir(root).map_err(|_| DataError::Unreadable(root.into()))?;
    let mut styles: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let valid = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            valid.then(|| (id, e.path()))
        })
        .collect();
    styles.sort();
    if styles.is_empty() {
        return Err(DataError::NoStyles {
            folder: root.into(),
        });
    }
    Ok(styles)
}

fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} unreadable files skipped)")
    }
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// A folder of decoded photos, each stored at most `cache_side` pixels on its shorter side.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub images: Vec<RgbImage>,
    pub names: Vec<String>,
    pub skipped: Vec<Skipped>,
}

impl ImageFolder {
    /// Scan `root` recursively and decode every photo, in sorted path order.
    pub fn load(
        root: &Path,
        min_side: u32,
        cache_side: u32,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, DataError> {
        let (files, mut skipped) = photo_files(root)?;
        let mut images = Vec::with_capacity(files.len());
        let mut names = Vec::with_capacity(files.len());
        for (i, path) in files.iter().enumerate() {
            match load_photo(path, min_side, cache_side) {
                Ok(image) => {
                    images.push(image);
                    names.push(relative_name(root, path));
                }
                Err(reason) => skipped.push(Skipped {
                    path: path.clone(),
                    reason,
                }),
            }
            progress(i + 1, files.len());
        }
        if images.is_empty() {
            return Err(DataError::Empty {
                folder: root.to_path_buf(),
                skipped: skipped.len(),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            images,
            names,
            skipped,
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
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
    ) -> Result<Self, DataError> {
        let before = ImageFolder::load(&root.join("before"), min_side, cache_side, progress)
            .map_err(|_| DataError::NoPairs {
                folder: root.to_path_buf(),
            })?;
        let after = ImageFolder::load(&root.join("after"), min_side, cache_side, progress)
            .map_err(|_| DataError::NoPairs {
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
            return Err(DataError::NoPairs {
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

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Photo files under `root`, sorted; unreadable entries and symlink loops are reported as skipped.
fn photo_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<Skipped>), DataError> {
    if !root.is_dir() {
        return Err(DataError::Unreadable(root.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(entry) if entry.file_type().is_file() => {
                let ext = entry
                    .path()
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase());
                if ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
                    files.push(entry.into_path());
                }
            }
            Ok(_) => {}
            Err(err) => {
                let path = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.to_path_buf());
                let reason = if err.loop_ancestor().is_some() {
                    "symbolic link loop".to_string()
                } else {
                    err.to_string()
                };
                skipped.push(Skipped { path, reason });
            }
        }
    }
    Ok((files, skipped))
}

fn load_photo(path: &Path, min_side: u32, cache_side: u32) -> Result<RgbImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let image = image_io::decode(&bytes).map_err(|e| e.to_string())?;
    let short = image.width().min(image.height());
    // Scale so the shorter side lies in [min_side, cache_side]: crops always fit, memory stays low.
    let target = short.clamp(min_side, cache_side.max(min_side));
    if target == short {
        return Ok(image);
    }
    let scale = f64::from(target) / f64::from(short);
    let w = ((f64::from(image.width()) * scale).round() as u32).max(target);
    let h = ((f64::from(image.height()) * scale).round() as u32).max(target);
    Ok(imageops::resize(&image, w, h, FilterType::Triangle))
}

/// How one training example is cut from a cached photo.
#[derive(Debug, Clone, Copy)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub side: u32,
    pub flip: bool,
}

impl Crop {
    /// A random square covering between `size` pixels and the whole shorter side, anywhere.
    pub fn random(image: &RgbImage, size: u32, rng: &mut Rng) -> Self {
        let short = image.width().min(image.height());
        let side = if short <= size {
            short
        } else {
            size + rng.below((short - size + 1) as usize) as u32
        };
        let x = rng.below((image.width() - side + 1) as usize) as u32;
        let y = rng.below((image.height() - side + 1) as usize) as u32;
        Self {
            x,
            y,
            side,
            flip: rng.coin(),
        }
    }

    /// The largest centred square, unflipped (for fixed sample grids).
    pub fn center(image: &RgbImage) -> Self {
        let side = image.width().min(image.height());
        Self {
            x: (image.width() - side) / 2,
            y: (image.height() - side) / 2,
            side,
            flip: false,
        }
    }

    pub fn apply(&self, image: &RgbImage, size: u32) -> RgbImage {
        let square = imageops::crop_imm(image, self.x, self.y, self.side, self.side).to_image();
        let mut out = if self.side == size {
            square
        } else {
            imageops::resize(&square, size, size, FilterType::Triangle)
        };
        if self.flip {
            imageops::flip_horizontal_in_place(&mut out);
        }
        out
    }
}

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

/// Stack same-sized RGB images into a `[batch, 3, h, w]` tensor in [-1, 1].
pub fn to_tensor(images: &[RgbImage], device: &Device) -> Tensor<4> {
    let (w, h) = images[0].dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; images.len() * 3 * plane];
    for (b, image) in images.iter().enumerate() {
        for (i, p) in image.pixels().enumerate() {
            for c in 0..3 {
                data[(b * 3 + c) * plane + i] = f32::from(p.0[c]) / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [images.len(), 3, h as usize, w as usize]),
        device,
    )
}

/// The inverse of [`to_tensor`] for one image of a `[batch, 3, h, w]` tensor's data.
pub fn to_image(data: &[f32], index: usize, width: usize, height: usize) -> RgbImage {
    let plane = width * height;
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let i = y as usize * width + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            ((data[(index * 3 + c) * plane + i] + 1.0) * 127.5)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
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

    #[test]
    fn tensors_round_trip_to_images() {
        let a = RgbImage::from_fn(8, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 60, 255]));
        let t = to_tensor(&[a.clone(), a.clone()], &Device::flex());
        assert_eq!(t.dims(), [2, 3, 4, 8]);
        let data = t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(to_image(&data, 1, 8, 4), a);
    }
}
