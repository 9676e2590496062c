//! Style packs from anywhere (a downloaded folder, a damaged cache): parsing a manifest, an index
//! and a weights file must give a pack or a `PackError`, never a panic, and a pack that loads
//! must stylize.
//!
//! The first byte chooses what the rest is:
//! - 0: a `style.json` (and the same bytes as an `index.json`);
//! - 1: a whole weights file, its checksum written into a valid manifest (so the burnpack parser,
//!   not the checksum, meets the bytes);
//! - 2: edits to a valid weights file, as (offset: u32 LE, byte) records, the last one optionally
//!   truncating: structure-aware, reaching deep into a file the fuzzer could not build itself.
#![no_main]

use std::sync::OnceLock;

use burn::tensor::Device;
use image::RgbImage;
use libfuzzer_sys::fuzz_target;
use portraitist::{GeneratorConfig, Stylizer};
use portraitist::pack::{Index, Manifest, Precision, StylePack, sha256_hex};

fn config() -> GeneratorConfig {
    GeneratorConfig::new(2, 1)
}

/// The bytes of a real, valid weights file for `config()` (saved once, through the normal path).
fn valid_weights() -> &'static [u8] {
    static WEIGHTS: OnceLock<Vec<u8>> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let device = Device::flex();
        device.seed(3);
        let generator = config().init(&device);
        let dir = std::env::temp_dir().join(format!("portraitist-fuzz-pack-{}", std::process::id()));
        let manifest = Manifest::new("fuzz", "Fuzz", config());
        let manifest = StylePack::save(&dir, manifest, &generator, Precision::F32)
            .expect("the valid pack saves");
        let bytes = std::fs::read(dir.join(&manifest.weights.file)).expect("weights read back");
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

fn load(weights: Vec<u8>) {
    let mut manifest = Manifest::new("fuzz", "Fuzz", config());
    manifest.weights.sha256 = sha256_hex(&weights);
    manifest.weights.bytes = weights.len() as u64;
    let json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let pack = StylePack::from_bytes("fuzz/style.json", &json, weights)
        .expect("the checksum was written for these bytes");
    let device = Device::flex();
    if let Ok(stylizer) = Stylizer::from_pack(&pack, &device) {
        let photo = RgbImage::from_pixel(20, 12, image::Rgb([90, 140, 200]));
        let out = stylizer
            .render_blocking(&photo, None, &mut |_, _| {})
            .expect("a loaded pack stylizes");
        assert_eq!(out.dimensions(), photo.dimensions());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = Manifest::parse("style.json", rest);
            let _ = Index::parse("index.json", rest);
        }
        1 => load(rest.to_vec()),
        _ => {
            let mut weights = valid_weights().to_vec();
            for edit in rest.chunks(5) {
                if let [a, b, c, d, byte] = *edit {
                    let offset = u32::from_le_bytes([a, b, c, d]) as usize % weights.len().max(1);
                    if let Some(slot) = weights.get_mut(offset) {
                        *slot = byte;
                    }
                } else if let [a, b, ..] = *edit {
                    weights.truncate(usize::from(u16::from_le_bytes([a, b])));
                }
            }
            load(weights);
        }
    }
});
