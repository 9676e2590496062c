//! Folders of photos, shared by training and evaluation: searched recursively (symlink loops are
//! detected, not followed forever), decoded once and cached; anything that is not a readable photo
//! is skipped, counted and named, and an empty folder is an error. Also photos ↔ tensors and the
//! contact sheets that reports are made of.

use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::image_io;

/// File extensions looked at; other files are skipped without being counted as broken.
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "gif"];

/// What is wrong with a folder of photos.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
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
    ) -> Result<Self, FolderError> {
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
            return Err(FolderError::Empty {
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

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Photo files under `root`, sorted; unreadable entries and symlink loops are reported as skipped.
fn photo_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<Skipped>), FolderError> {
    if !root.is_dir() {
        return Err(FolderError::Unreadable(root.to_path_buf()));
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

pub use crate::learn::lesson::to_tensor;

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

pub use crate::image_io::grid;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn tensors_round_trip_to_images() {
        let a = RgbImage::from_fn(8, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 60, 255]));
        let t = to_tensor(&[a.clone(), a.clone()], &Device::flex());
        assert_eq!(t.dims(), [2, 3, 4, 8]);
        let data = t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(to_image(&data, 1, 8, 4), a);
    }
}
