//! `models/index.json`: the packs a front end offers, in gallery order.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
use super::builtin;
use super::{
    INDEX_FILE, MAX_JSON_BYTES, Manifest, PackError, PackKind, StyleInfo, read_limited, truncate,
    valid_id, write_atomic,
};

/// `models/index.json`: the packs the app offers, in gallery order, with what the gallery shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// What the app selects when it opens: a pack's id (its first style) or `pack:style`.
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
    /// A look (no network): the parametric look's name (see [`Manifest::look`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look: Option<String>,
    #[serde(default)]
    pub preview: Option<String>,
    /// A multi-style pack's styles (the gallery offers each, and mixes of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub styles: Vec<StyleInfo>,
}

impl IndexEntry {
    /// A pack's entry, as its manifest describes it.
    pub fn of(manifest: &Manifest) -> Self {
        Self {
            id: manifest.id.clone(),
            title: manifest.title.clone(),
            description: manifest.description.clone(),
            kind: manifest.kind,
            look: manifest.look.clone(),
            preview: manifest.preview.clone(),
            styles: manifest.styles.clone(),
        }
    }
}

impl Index {
    /// The pack of the default: `default` itself, or the part before `:` of a `pack:style`.
    pub fn default_pack(&self) -> Option<&str> {
        let default = self.default.as_deref()?;
        Some(default.split_once(':').map_or(default, |(pack, _)| pack))
    }

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
        let entry = IndexEntry::of(manifest);
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
