//! The packs shipped in `models/`, compiled into the native library by `build.rs`, so that an
//! installed `portraitist` has its styles wherever it runs. A models folder (`--models`,
//! `PORTRAITIST_MODELS`) adds packs and overrides built-in ones of the same id.

use super::{Index, MANIFEST_FILE, PackError, StylePack};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/builtin_packs.rs"));
}

/// The index of the built-in packs (empty when the build had none).
pub fn index() -> Index {
    match generated::INDEX {
        // Checked at build time by the pack tests; a broken index here is a build defect.
        Some(bytes) => Index::parse("built-in models/index.json", bytes)
            .expect("the shipped models/index.json parses"),
        None => Index::default(),
    }
}

/// The built-in pack `id`, verified like one loaded from disk; `None` when none has that id.
pub fn pack(id: &str) -> Option<Result<StylePack, PackError>> {
    let (_, files) = generated::PACKS.iter().find(|(pack, _)| *pack == id)?;
    let file = |name: &str| {
        files
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, bytes)| *bytes)
    };
    let source = format!("built-in {id}/{MANIFEST_FILE}");
    let manifest = file(MANIFEST_FILE)?;
    Some((|| {
        let weights_file = super::Manifest::parse(&source, manifest)?.weights.file;
        if weights_file.is_empty() {
            return StylePack::from_bytes(&source, manifest, Vec::new());
        }
        let weights = file(&weights_file).ok_or_else(|| PackError::Missing {
            file: format!("built-in {id}/{weights_file}"),
        })?;
        StylePack::from_bytes(&source, manifest, weights.to_vec())
    })())
}

/// The ids of every built-in pack, in folder order.
pub fn ids() -> impl Iterator<Item = &'static str> {
    generated::PACKS.iter().map(|(id, _)| *id)
}
