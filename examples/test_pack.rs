//! Writes style packs of seeded random generators, for the browser tests only (never shipped):
//! `cargo run --example test_pack -- MODELS_DIR` creates MODELS_DIR/pattern (a transfer pack),
//! MODELS_DIR/pattern-faces (a noise pack), MODELS_DIR/duo (a two-style pack: `duo:warm`,
//! `duo:cool`), MODELS_DIR/index.json, and MODELS_DIR/mine (two styles, not in the index: a user's own
//! pack for the page's "add a style pack").

use std::path::PathBuf;

use burn::tensor::Device;
use portraitist::GeneratorConfig;
use portraitist::model::LatentGeneratorConfig;
use portraitist::pack::{Index, Manifest, Precision, StyleInfo, StylePack};

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let models: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "test-models".into())
        .into();
    let device = Device::flex();
    device.seed(21);
    let config = GeneratorConfig::new(8, 2);
    let generator = config.init(&device);
    let mut manifest = Manifest::new("pattern", "Test pattern", config);
    manifest.description = "Random weights, for tests only".into();
    let manifest = StylePack::save(
        &models.join("pattern"),
        manifest,
        &generator,
        Precision::F32,
    )
    .unwrap_or_else(|e| panic!("cannot write the test pack: {e}"));
    Index::register(&models, &manifest).unwrap_or_else(|e| panic!("cannot write the index: {e}"));

    device.seed(22);
    let config = LatentGeneratorConfig::new(16, 32, 8);
    let generator = config.init(&device);
    let mut manifest = Manifest::new_noise("pattern-faces", "Test faces", config);
    manifest.description = "Random weights, for tests only.".into();
    let manifest = StylePack::save(
        &models.join("pattern-faces"),
        manifest,
        &generator,
        Precision::F32,
    )
    .unwrap_or_else(|e| panic!("cannot write the test noise pack: {e}"));
    Index::register(&models, &manifest).unwrap_or_else(|e| panic!("cannot write the index: {e}"));
    let config = GeneratorConfig::new(8, 2).with_styles(Some(2));
    let generator = common::perturb_styles(common::random_generator(&config, 23), 24);
    let mut manifest = Manifest::new("duo", "Test duo", config);
    manifest.description = "Two styles of random weights, for tests only.".into();
    manifest.styles = ["warm", "cool"]
        .map(|id| StyleInfo {
            id: id.into(),
            title: format!("Test {id}"),
            ..StyleInfo::default()
        })
        .to_vec();
    let manifest = StylePack::save(&models.join("duo"), manifest, &generator, Precision::F32)
        .unwrap_or_else(|e| panic!("cannot write the test multi-style pack: {e}"));
    Index::register(&models, &manifest).unwrap_or_else(|e| panic!("cannot write the index: {e}"));

    // `mine`: a two-style pack the index does not list, as a user's own pack would be (the
    // browser test adds it to the page as an archive).
    let config = GeneratorConfig::new(8, 2).with_styles(Some(2));
    let generator = common::perturb_styles(common::random_generator(&config, 25), 26);
    let mut manifest = Manifest::new("mine", "Test own pack", config);
    manifest.styles = ["sun", "moon"]
        .map(|id| StyleInfo {
            id: id.into(),
            title: format!("Own {id}"),
            ..StyleInfo::default()
        })
        .to_vec();
    StylePack::save(&models.join("mine"), manifest, &generator, Precision::F32)
        .unwrap_or_else(|e| panic!("cannot write the test own pack: {e}"));
    println!("{}", models.join("pattern").display());
}
