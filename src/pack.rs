//! Style packs: the contract between training and the front ends.
//!
//! A pack is a folder `models/<id>/` holding `style.json` (the [`Manifest`]), the generator's
//! weights in Burn's burnpack format, and a preview image. `models/index.json` ([`Index`]) lists
//! the packs the app offers. Packs load from a folder (native) or from fetched bytes (browser);
//! whatever is wrong with one comes back as a [`PackError`] naming the file and the problem.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::create::Creator;
use crate::model::{Generator, GeneratorConfig, LatentGenerator, LatentGeneratorConfig};
use crate::stylize::{Normalization, Stylizer};

#[cfg(not(target_arch = "wasm32"))]
pub mod builtin;

/// The manifest format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a pack folder.
pub const MANIFEST_FILE: &str = "style.json";
/// The index's file name inside the models folder.
pub const INDEX_FILE: &str = "index.json";
/// Manifests and indexes are small; anything larger is refused before parsing.
const MAX_JSON_BYTES: usize = 1 << 20;
/// Shipped packs are a few MB; this bounds what a hostile manifest can make us allocate.
const MAX_WEIGHTS_BYTES: u64 = 512 << 20;

/// What a pack generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackKind {
    /// Image-to-image: restyles a photo.
    Transfer,
    /// Noise → new portrait (the textbook GAN): makes portraits from seeds.
    Noise,
}

impl PackKind {
    fn describe(self) -> &'static str {
        match self {
            PackKind::Transfer => "a transfer style (it restyles photos: `portraitist stylize`)",
            PackKind::Noise => "a noise generator (it makes new portraits: `portraitist generate`)",
        }
    }
}

/// `style.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub kind: PackKind,
    /// Transfer packs: the image-to-image generator's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorConfig>,
    /// Noise packs: the latent generator's shape (latent size, image size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_generator: Option<LatentGeneratorConfig>,
    #[serde(default)]
    pub normalization: Normalization,
    pub weights: WeightsInfo,
    #[serde(default)]
    pub training: TrainingSummary,
    /// Preview image file name inside the pack folder.
    #[serde(default)]
    pub preview: Option<String>,
    /// Figures from `portraitist eval` (informational).
    #[serde(default, skip_serializing_if = "EvaluationSummary::is_empty")]
    pub evaluation: EvaluationSummary,
}

/// What `portraitist eval` measured for a pack, and on what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationSummary {
    /// The photos and settings the figures come from.
    #[serde(default)]
    pub on: String,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl EvaluationSummary {
    pub fn is_empty(&self) -> bool {
        self.on.is_empty() && self.metrics.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsInfo {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    /// Storage precision of the weights: `f32` or `f16`.
    pub dtype: Precision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
}

/// Where a style came from and how well it trained. Informational; never needed to run it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    #[serde(default)]
    pub sources: Vec<DataSource>,
    #[serde(default)]
    pub steps: u64,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    pub name: String,
    pub licence: String,
    #[serde(default)]
    pub images: u64,
}

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

    /// Load a pack from its folder (or the path of its `style.json`).
    pub fn load(path: &Path) -> Result<Self, PackError> {
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
        let weights_path = dir.join(&manifest.weights.file);
        let weights = read_limited(&weights_path, MAX_WEIGHTS_BYTES)?;
        manifest
            .verify_weights(&weights)
            .map_err(|e| e.at(&weights_path))?;
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

    /// A ready-to-use [`Stylizer`] for this (transfer) pack on `device`.
    pub fn stylizer(&self, device: &Device) -> Result<Stylizer, PackError> {
        let generator = self.generator(device)?;
        Ok(Stylizer::new(
            generator,
            self.transfer_config()?.clone(),
            self.manifest.normalization,
            device.clone(),
        ))
    }

    /// Build a noise pack's generator with these weights on `device`.
    pub fn latent_generator(&self, device: &Device) -> Result<LatentGenerator, PackError> {
        let config = self.noise_config()?;
        self.load_weights(config.init(device))
    }

    /// A ready-to-use [`Creator`] for this (noise) pack on `device`.
    pub fn creator(&self, device: &Device) -> Result<Creator, PackError> {
        let generator = self.latent_generator(device)?;
        Ok(Creator::new(
            generator,
            self.noise_config()?.clone(),
            device.clone(),
        ))
    }

    /// The image-to-image generator's shape, or a message that this is not a transfer pack.
    pub fn transfer_config(&self) -> Result<&GeneratorConfig, PackError> {
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
        mut manifest: Manifest,
        generator: &M,
        precision: Precision,
    ) -> Result<Manifest, PackError> {
        manifest.format_version = FORMAT_VERSION;
        manifest.validate(&dir.join(MANIFEST_FILE).display().to_string())?;
        let weights = weights_bytes(generator, precision);
        manifest.weights = WeightsInfo {
            file: "generator.bpk".into(),
            sha256: sha256_hex(&weights),
            bytes: weights.len() as u64,
            dtype: precision,
        };
        fs::create_dir_all(dir).map_err(|source| PackError::Io {
            path: dir.into(),
            source,
        })?;
        write_atomic(&dir.join(&manifest.weights.file), &weights)?;
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

impl Manifest {
    /// A manifest for a new transfer pack; [`StylePack::save`] fills in the weights.
    pub fn new(id: &str, title: &str, generator: GeneratorConfig) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            id: id.into(),
            title: title.into(),
            description: String::new(),
            kind: PackKind::Transfer,
            generator: Some(generator),
            latent_generator: None,
            normalization: Normalization::default(),
            weights: WeightsInfo {
                file: String::new(),
                sha256: String::new(),
                bytes: 0,
                dtype: Precision::F32,
            },
            training: TrainingSummary::default(),
            preview: None,
            evaluation: EvaluationSummary::default(),
        }
    }

    /// A manifest for a new noise pack; [`StylePack::save`] fills in the weights.
    pub fn new_noise(id: &str, title: &str, generator: LatentGeneratorConfig) -> Self {
        Self {
            kind: PackKind::Noise,
            generator: None,
            latent_generator: Some(generator),
            ..Self::new(id, title, GeneratorConfig::new(1, 0))
        }
    }

    /// Parse and validate `style.json` bytes.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, PackError> {
        let invalid = |message: String| PackError::InvalidManifest {
            file: file.into(),
            message,
        };
        if bytes.len() > MAX_JSON_BYTES {
            return Err(invalid(format!(
                "{} bytes is far too large for a manifest",
                bytes.len()
            )));
        }
        // Read the version first so a newer pack gets a version message, not a field error.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(PackError::UnsupportedVersion {
                file: file.into(),
                found: version.format_version,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        manifest.validate(file)?;
        Ok(manifest)
    }

    fn validate(&self, file: &str) -> Result<(), PackError> {
        let invalid = |message: String| {
            Err(PackError::InvalidManifest {
                file: file.into(),
                message,
            })
        };
        if !valid_id(&self.id) {
            return invalid(format!(
                "id `{}` must be 1–64 characters of a–z, 0–9, `-` or `_`",
                truncate(&self.id)
            ));
        }
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return invalid("title must be 1–200 characters".into());
        }
        if self.description.chars().count() > 4000 {
            return invalid("description must be at most 4000 characters".into());
        }
        match (self.kind, &self.generator, &self.latent_generator) {
            (PackKind::Transfer, Some(g), None) => {
                if !(1..=256).contains(&g.width) || g.blocks > 32 || g.channels != 3 {
                    return invalid(format!(
                        "generator width {} / blocks {} / channels {} out of range (width 1–256, blocks 0–32, channels 3)",
                        g.width, g.blocks, g.channels
                    ));
                }
            }
            (PackKind::Noise, None, Some(g)) => {
                if let Err(message) = g.check() {
                    return invalid(format!("latent_generator: {message}"));
                }
            }
            (PackKind::Transfer, ..) => {
                return invalid(
                    "a transfer pack needs `generator` and no `latent_generator`".into(),
                );
            }
            (PackKind::Noise, ..) => {
                return invalid("a noise pack needs `latent_generator` and no `generator`".into());
            }
        }
        let n = &self.normalization;
        if n.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return invalid(
                "normalization needs finite means and positive standard deviations".into(),
            );
        }
        for name in std::iter::once(&self.weights.file).chain(self.preview.iter()) {
            if !name.is_empty() && !plain_file_name(name) {
                return invalid(format!(
                    "`{}` must be a plain file name inside the pack",
                    truncate(name)
                ));
            }
        }
        Ok(())
    }

    fn verify_weights(&self, weights: &[u8]) -> Result<(), PackError> {
        let info = &self.weights;
        if weights.len() as u64 != info.bytes {
            return Err(PackError::WrongSize {
                file: info.file.clone(),
                expected: info.bytes,
                actual: weights.len() as u64,
            });
        }
        let actual = sha256_hex(weights);
        if !actual.eq_ignore_ascii_case(&info.sha256) {
            return Err(PackError::HashMismatch {
                file: info.file.clone(),
                expected: truncate(&info.sha256),
                actual,
            });
        }
        Ok(())
    }
}

/// `models/index.json`: the packs the app offers, in gallery order, with what the gallery shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Id of the style selected when the app opens.
    #[serde(default)]
    pub default: Option<String>,
    pub styles: Vec<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub kind: PackKind,
    #[serde(default)]
    pub preview: Option<String>,
}

impl Index {
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, PackError> {
        let invalid = |message: String| PackError::InvalidManifest {
            file: file.into(),
            message,
        };
        if bytes.len() > MAX_JSON_BYTES {
            return Err(invalid("far too large for a style index".into()));
        }
        let index: Index = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if let Some(bad) = index.styles.iter().find(|s| !valid_id(&s.id)) {
            return Err(invalid(format!("invalid style id `{}`", truncate(&bad.id))));
        }
        Ok(index)
    }

    /// Read `index.json` from a models folder; a folder without one offers no styles.
    pub fn load(models_dir: &Path) -> Result<Self, PackError> {
        let path = models_dir.join(INDEX_FILE);
        if !path.exists() {
            return Ok(Self::default());
        }
        let bytes = read_limited(&path, MAX_JSON_BYTES as u64)?;
        Self::parse(&path.display().to_string(), &bytes)
    }

    /// The packs a native front end offers: the models folder's index, then the built-in packs it
    /// does not override. The folder's default wins; else the built-in default.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn available(models_dir: &Path) -> Result<Self, PackError> {
        let mut index = Self::load(models_dir)?;
        let shipped = builtin::index();
        for entry in shipped.styles {
            if !index.styles.iter().any(|s| s.id == entry.id) {
                index.styles.push(entry);
            }
        }
        index.default = index.default.or(shipped.default);
        Ok(index)
    }

    /// Add or replace a pack's entry and write the index atomically.
    pub fn register(models_dir: &Path, manifest: &Manifest) -> Result<Self, PackError> {
        let mut index = Self::load(models_dir)?;
        let entry = IndexEntry {
            id: manifest.id.clone(),
            title: manifest.title.clone(),
            description: manifest.description.clone(),
            kind: manifest.kind,
            preview: manifest.preview.clone(),
        };
        match index.styles.iter_mut().find(|s| s.id == entry.id) {
            Some(existing) => *existing = entry,
            None => index.styles.push(entry),
        }
        if index.default.is_none() {
            index.default = Some(manifest.id.clone());
        }
        let json = serde_json::to_vec_pretty(&index).expect("indexes always serialise");
        write_atomic(&models_dir.join(INDEX_FILE), &json)?;
        Ok(index)
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn plain_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0', ':'])
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackError> {
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
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    crate::atomic::write(path, bytes).map_err(|source| PackError::Io {
        path: path.into(),
        source,
    })
}
