//! Style packs: the contract between training and the front ends.
//!
//! A pack is a folder `models/<id>/` holding `style.json` (the [`Manifest`]), the generator's
//! weights in Burn's burnpack format, and a preview image. `models/index.json` ([`Index`]) lists
//! the packs the app offers. Packs load from a folder (native) or from fetched bytes (browser);
//! whatever is wrong with one comes back as a [`PackError`] naming the file and the problem.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType, Device, Tensor};
use sha2::{Digest, Sha256};

use crate::model::{Generator, GeneratorConfig, LatentGenerator, LatentGeneratorConfig};

pub mod archive;
#[cfg(not(target_arch = "wasm32"))]
pub mod builtin;
mod index;
mod manifest;
mod mix;
pub mod preview;

pub use index::{Index, IndexEntry};
pub use manifest::{
    DataSource, EvaluationSummary, Manifest, PackKind, Precision, StyleInfo, TrainingSummary,
    WeightsInfo,
};
pub use mix::StyleRef;

/// The manifest format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a pack folder.
pub const MANIFEST_FILE: &str = "style.json";
/// The index's file name inside the models folder.
pub const INDEX_FILE: &str = "index.json";
/// Manifests and indexes are small; anything larger is refused before parsing.
pub(crate) const MAX_JSON_BYTES: usize = 1 << 20;
/// Shipped packs are a few MB; this bounds what a hostile manifest can make us allocate.
const MAX_WEIGHTS_BYTES: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: the file is missing")]
    Missing { file: String },
    #[error("{file}: invalid style manifest: {message}")]
    InvalidManifest { file: String, message: String },
    #[error(
        "{file}: pack format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion { file: String, found: u32 },
    #[error(
        "{file}: the weights file is truncated or padded: {actual} bytes, the manifest says {expected}"
    )]
    WrongSize {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{file}: the weights do not match the manifest's checksum (sha256 {actual}, expected {expected}); the file is damaged or from another pack"
    )]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: the weights do not fit the generator the manifest describes ({message})")]
    WeightsMismatch { file: String, message: String },
    #[error("{file}: not a readable burnpack weights file ({message})")]
    InvalidWeights { file: String, message: String },
    #[error("no style named `{0}` (see `portraitist styles`)")]
    UnknownStyle(String),
    #[error("{0}")]
    BadMix(String),
    #[error("style `{0}` is a look applied by code: it has no network")]
    NoNetwork(String),
    #[error("style `{id}` is {}, not {}", found.describe(), expected.describe())]
    WrongKind {
        id: String,
        found: PackKind,
        expected: PackKind,
    },
}

/// A verified style pack: its manifest and the raw weights whose checksum matched.
#[derive(Debug, Clone)]
pub struct StylePack {
    pub manifest: Manifest,
    weights: Vec<u8>,
    /// The folder it was loaded from; `None` for a pack built from fetched bytes.
    dir: Option<PathBuf>,
}

impl StylePack {
    /// Parse and verify a pack from its manifest's and weights' bytes (the browser's path).
    /// `source` names the manifest in messages (a path or URL).
    pub fn from_bytes(source: &str, manifest: &[u8], weights: Vec<u8>) -> Result<Self, PackError> {
        let manifest = Manifest::parse(source, manifest)?;
        manifest.verify_weights(&weights)?;
        Ok(Self {
            manifest,
            weights,
            dir: None,
        })
    }

    /// Load a pack from its folder, the path of its `style.json`, or its archive (a `.tar`
    /// file, see [`archive`]).
    pub fn load(path: &Path) -> Result<Self, PackError> {
        if path.is_file() && !path.ends_with(MANIFEST_FILE) && starts_like_archive(path) {
            let bytes = read_limited(path, MAX_WEIGHTS_BYTES + (MAX_JSON_BYTES as u64) * 64)?;
            return Self::from_archive(&path.display().to_string(), &bytes).map(|(pack, _)| pack);
        }
        let (dir, manifest_path) = if path.is_dir() {
            (path.to_path_buf(), path.join(MANIFEST_FILE))
        } else {
            (
                path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                path.to_path_buf(),
            )
        };
        let manifest_bytes = read_limited(&manifest_path, MAX_JSON_BYTES as u64)?;
        let source = manifest_path.display().to_string();
        let manifest = Manifest::parse(&source, &manifest_bytes)?;
        let weights = if manifest.weights.is_none() {
            Vec::new()
        } else {
            let weights_path = dir.join(&manifest.weights.file);
            let weights = read_limited(&weights_path, MAX_WEIGHTS_BYTES)?;
            manifest
                .verify_weights(&weights)
                .map_err(|e| e.at(&weights_path))?;
            weights
        };
        Ok(Self {
            manifest,
            weights,
            dir: Some(dir),
        })
    }

    /// The folder the pack was loaded from (`None` when built from bytes).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Load a pack from a path, else find it by id in a models folder, else (natively) among the
    /// built-in packs.
    pub fn resolve(style: &str, models_dir: &Path) -> Result<Self, PackError> {
        let as_path = Path::new(style);
        if as_path.is_dir() || as_path.is_file() {
            return Self::load(as_path);
        }
        let dir = models_dir.join(style);
        if valid_id(style) && dir.join(MANIFEST_FILE).is_file() {
            return Self::load(&dir);
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(pack) = builtin::pack(style) {
            return pack;
        }
        Err(PackError::UnknownStyle(style.to_string()))
    }

    /// Build a transfer pack's generator with these weights on `device`.
    pub fn generator(&self, device: &Device) -> Result<Generator, PackError> {
        let config = self.transfer_config()?;
        self.load_weights(config.init(device))
    }

    /// Build a noise pack's generator with these weights on `device`.
    pub fn latent_generator(&self, device: &Device) -> Result<LatentGenerator, PackError> {
        let config = self.noise_config()?;
        self.load_weights(config.init(device))
    }

    /// The image-to-image generator's shape, or a message that this is not a transfer pack.
    pub fn transfer_config(&self) -> Result<&GeneratorConfig, PackError> {
        if self.manifest.look.is_some() {
            return Err(PackError::NoNetwork(self.manifest.id.clone()));
        }
        self.manifest
            .generator
            .as_ref()
            .filter(|_| self.manifest.kind == PackKind::Transfer)
            .ok_or_else(|| self.wrong_kind(PackKind::Transfer))
    }

    /// The latent generator's shape, or a message that this is not a noise pack.
    pub fn noise_config(&self) -> Result<&LatentGeneratorConfig, PackError> {
        self.manifest
            .latent_generator
            .as_ref()
            .filter(|_| self.manifest.kind == PackKind::Noise)
            .ok_or_else(|| self.wrong_kind(PackKind::Noise))
    }

    fn wrong_kind(&self, expected: PackKind) -> PackError {
        PackError::WrongKind {
            id: self.manifest.id.clone(),
            found: self.manifest.kind,
            expected,
        }
    }

    fn load_weights<M: Module>(&self, network: M) -> Result<M, PackError> {
        let file = || self.manifest.weights.file.clone();
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.clone()))
            .map_err(|e| PackError::InvalidWeights {
                file: file(),
                message: e.to_string(),
            })?
            .cast_to_module_dtype();
        network
            .try_load_record(record)
            .map_err(|e| PackError::WeightsMismatch {
                file: file(),
                message: e.to_string(),
            })
    }

    /// Write a pack folder: weights (`generator.bpk`) and `style.json`, filling in the weights'
    /// file name, size and checksum. `generator` is the network the manifest describes (a
    /// [`Generator`] or a [`LatentGenerator`]). `precision` picks the storage precision; see
    /// `train::precision::choose_precision` for the rule shipped styles follow.
    pub fn save<M: Module>(
        dir: &Path,
        manifest: Manifest,
        generator: &M,
        precision: Precision,
    ) -> Result<Manifest, PackError> {
        let pack = Self::with_weights(manifest, generator, precision)
            .named(&dir.join(MANIFEST_FILE).display().to_string())?;
        fs::create_dir_all(dir).map_err(|source| PackError::Io {
            path: dir.into(),
            source,
        })?;
        write_atomic(&dir.join(&pack.manifest.weights.file), &pack.weights)?;
        let json = serde_json::to_vec_pretty(&pack.manifest).expect("manifests always serialise");
        write_atomic(&dir.join(MANIFEST_FILE), &json)?;
        Ok(pack.manifest)
    }

    /// A pack in memory: `manifest` with `generator`'s weights stored at `precision` (file
    /// name, size and checksum filled in).
    pub fn from_network<M: Module>(
        manifest: Manifest,
        generator: &M,
        precision: Precision,
    ) -> Result<Self, PackError> {
        Self::with_weights(manifest, generator, precision).named(MANIFEST_FILE)
    }

    fn with_weights<M: Module>(
        mut manifest: Manifest,
        generator: &M,
        precision: Precision,
    ) -> Self {
        manifest.format_version = FORMAT_VERSION;
        let weights = weights_bytes(generator, precision);
        manifest.weights = WeightsInfo {
            file: "generator.bpk".into(),
            sha256: sha256_hex(&weights),
            bytes: weights.len() as u64,
            dtype: precision,
        };
        Self {
            manifest,
            weights,
            dir: None,
        }
    }

    /// The pack if its manifest is valid, with `source` naming it in the message if not.
    fn named(self, source: &str) -> Result<Self, PackError> {
        self.manifest.validate(source)?;
        Ok(self)
    }
}

impl StylePack {
    /// Write a look's pack folder (`style.json` only: a look has no weights).
    pub fn save_look(dir: &Path, mut manifest: Manifest) -> Result<Manifest, PackError> {
        manifest.format_version = FORMAT_VERSION;
        manifest.validate(&dir.join(MANIFEST_FILE).display().to_string())?;
        fs::create_dir_all(dir).map_err(|source| PackError::Io {
            path: dir.into(),
            source,
        })?;
        let json = serde_json::to_vec_pretty(&manifest).expect("manifests always serialise");
        write_atomic(&dir.join(MANIFEST_FILE), &json)?;
        Ok(manifest)
    }
}

/// Store evaluation figures in a pack folder's `style.json`; the weights are not touched.
pub fn save_evaluation(dir: &Path, evaluation: EvaluationSummary) -> Result<Manifest, PackError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = read_limited(&path, MAX_JSON_BYTES as u64)?;
    let mut manifest = Manifest::parse(&path.display().to_string(), &bytes)?;
    manifest.evaluation = evaluation;
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests always serialise");
    write_atomic(&path, &json)?;
    Ok(manifest)
}

impl PackError {
    /// Name the file by its full path rather than its name inside the pack.
    fn at(self, path: &Path) -> Self {
        let file = path.display().to_string();
        match self {
            PackError::WrongSize {
                expected, actual, ..
            } => PackError::WrongSize {
                file,
                expected,
                actual,
            },
            PackError::HashMismatch {
                expected, actual, ..
            } => PackError::HashMismatch {
                file,
                expected,
                actual,
            },
            other => other,
        }
    }
}

/// Casts every float parameter to one dtype (half-precision storage, and its check in export).
pub(crate) struct CastFloats(pub(crate) DType);

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype))
    }
}

fn weights_bytes<M: Module>(generator: &M, precision: Precision) -> Vec<u8> {
    let generator = match precision {
        Precision::F32 => generator.clone(),
        Precision::F16 => generator.clone().map(&mut CastFloats(DType::F16)),
    };
    let bytes = generator
        .into_record()
        .into_bytes()
        .expect("in-memory burnpack writing cannot fail");
    bytes.to_vec()
}

/// The id (of a pack or style) a title gives: lower case letters and digits, other runs of characters as `-`.
pub fn id_from_title(title: &str) -> String {
    let mut id = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    let id: String = id.chars().take(40).collect();
    let id = id.trim_end_matches('-');
    if id.is_empty() {
        "mine".into()
    } else {
        id.into()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub(crate) fn plain_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0', ':'])
}

pub(crate) fn truncate(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

/// Whether a file's first block is a tar header (a pack archive).
fn starts_like_archive(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(512);
    fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .is_ok()
        && archive::is_archive(&head)
}

pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackError> {
    let io = |source| PackError::Io {
        path: path.into(),
        source,
    };
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PackError::Missing {
                file: path.display().to_string(),
            });
        }
        other => other.map_err(io)?,
    };
    if meta.len() > limit {
        return Err(PackError::InvalidManifest {
            file: path.display().to_string(),
            message: format!(
                "{} bytes is larger than any valid pack file ({limit})",
                meta.len()
            ),
        });
    }
    fs::read(path).map_err(io)
}

/// [`atomic::write`](crate::atomic::write), its error naming the file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    crate::atomic::write(path, bytes).map_err(|source| PackError::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::id_from_title;

    #[test]
    fn ids_from_titles() {
        assert_eq!(id_from_title("Night Café, 1888"), "night-caf-1888");
        assert_eq!(id_from_title("  my look "), "my-look");
        assert_eq!(id_from_title("!!!"), "mine");
        assert_eq!(id_from_title(&"a".repeat(90)).len(), 40);
        assert_eq!(
            id_from_title(&format!("{} b", "a".repeat(39))),
            "a".repeat(39)
        );
    }
}
