//! `style.json`: what a pack is (its [`Manifest`]), and the checks a manifest must pass before
//! anything trusts it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    FORMAT_VERSION, MAX_JSON_BYTES, PackError, plain_file_name, sha256_hex, truncate, valid_id,
};
use crate::looks::LookName;
use crate::model::{GeneratorConfig, LatentGeneratorConfig};
use crate::stylize::Normalization;

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
    pub(super) fn describe(self) -> &'static str {
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
    /// Transfer packs: the image-to-image generator's shape (none for a look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorConfig>,
    /// Transfer packs without a network: the parametric look applied by code, exactly
    /// ([`crate::looks::LookName`], e.g. `teal-orange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look: Option<String>,
    /// Noise packs: the latent generator's shape (latent size, image size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_generator: Option<LatentGeneratorConfig>,
    #[serde(default)]
    pub normalization: Normalization,
    /// The network's weights file (a look has none).
    #[serde(default, skip_serializing_if = "WeightsInfo::is_none")]
    pub weights: WeightsInfo,
    #[serde(default)]
    pub training: TrainingSummary,
    /// Preview image file name inside the pack folder.
    #[serde(default)]
    pub preview: Option<String>,
    /// Figures from `portraitist eval` (informational).
    #[serde(default, skip_serializing_if = "EvaluationSummary::is_empty")]
    pub evaluation: EvaluationSummary,
    /// Multi-style packs: the network's styles, in the order of its style table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub styles: Vec<StyleInfo>,
    /// A pack made by learning a style (`portraitist learn`, the page's "Learn a style"): the
    /// pack whose network and styles it extends. The page shows only the new styles of a pack
    /// based on one it ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub based_on: Option<String>,
}

/// One style of a multi-style pack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleInfo {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The images this style was learnt from, with their licences.
    #[serde(default)]
    pub sources: Vec<DataSource>,
    /// Preview image file name inside the pack folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsInfo {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    /// Storage precision of the weights: `f32` or `f16`.
    pub dtype: Precision,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl WeightsInfo {
    /// No weights file (a look).
    pub fn is_none(&self) -> bool {
        self.file.is_empty()
    }
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
            look: None,
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
            styles: Vec::new(),
            based_on: None,
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

    /// A manifest for a look: a transfer pack whose restyling is the parametric `look`, applied
    /// by code (no network, no weights).
    pub fn new_look(id: &str, title: &str, look: LookName) -> Self {
        Self {
            generator: None,
            look: Some(look.name().into()),
            weights: WeightsInfo::default(),
            ..Self::new(id, title, GeneratorConfig::new(1, 0))
        }
    }

    /// The look a look pack applies.
    pub fn look(&self) -> Option<LookName> {
        self.look.as_deref().and_then(LookName::parse)
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

    pub(super) fn validate(&self, file: &str) -> Result<(), PackError> {
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
        let networked = self.look.is_none();
        if networked == self.weights.is_none() {
            return invalid(if networked {
                "a network's pack needs `weights`".into()
            } else {
                "a look has no `weights`".into()
            });
        }
        match (self.kind, &self.generator, &self.latent_generator) {
            (PackKind::Transfer, None, None) if !networked => {
                if self.look().is_none() {
                    let known: Vec<&str> = LookName::ALL.iter().map(|l| l.name()).collect();
                    return invalid(format!(
                        "unknown look `{}` (this build knows {})",
                        truncate(self.look.as_deref().unwrap_or_default()),
                        known.join(", ")
                    ));
                }
                if !self.styles.is_empty() {
                    return invalid("a look has no `styles`".into());
                }
            }
            (_, _, _) if !networked => {
                return invalid(
                    "a look is a transfer pack with `look` and no `generator` or `latent_generator`"
                        .into(),
                );
            }
            (PackKind::Transfer, Some(g), None) => {
                if !(1..=256).contains(&g.width) || g.blocks > 32 || g.channels != 3 {
                    return invalid(format!(
                        "generator width {} / blocks {} / channels {} out of range (width 1–256, blocks 0–32, channels 3)",
                        g.width, g.blocks, g.channels
                    ));
                }
                let count = g.styles.unwrap_or(0);
                if count > 256 || count != self.styles.len() {
                    return invalid(format!(
                        "the generator holds {count} styles and `styles` lists {} (they must match, at most 256)",
                        self.styles.len()
                    ));
                }
                for (i, style) in self.styles.iter().enumerate() {
                    if !valid_id(&style.id) {
                        return invalid(format!(
                            "style id `{}` must be 1–64 characters of a–z, 0–9, `-` or `_`",
                            truncate(&style.id)
                        ));
                    }
                    if self.styles[..i].iter().any(|s| s.id == style.id) {
                        return invalid(format!("style `{}` is listed twice", style.id));
                    }
                    if style.title.trim().is_empty()
                        || style.title.chars().count() > 200
                        || style.description.chars().count() > 4000
                    {
                        return invalid(format!(
                            "style `{}`: title must be 1–200 characters, description at most 4000",
                            style.id
                        ));
                    }
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
        let style_previews = self.styles.iter().filter_map(|s| s.preview.as_ref());
        for name in std::iter::once(&self.weights.file)
            .chain(self.preview.iter())
            .chain(style_previews)
        {
            if !name.is_empty() && !plain_file_name(name) {
                return invalid(format!(
                    "`{}` must be a plain file name inside the pack",
                    truncate(name)
                ));
            }
        }
        Ok(())
    }

    pub(super) fn verify_weights(&self, weights: &[u8]) -> Result<(), PackError> {
        let info = &self.weights;
        if info.is_none() && weights.is_empty() {
            return Ok(());
        }
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
