//! Shared test helpers: packs made by code (seeded random generators), never offered to users.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::RgbImage;
use portraitist::pack::{Manifest, Precision, StylePack};
use portraitist::{Generator, GeneratorConfig};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The repository's shipped style packs (also compiled into the binary).
pub fn repo_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

pub fn astronaut() -> RgbImage {
    image::open(fixture("astronaut.jpg"))
        .expect("fixture decodes")
        .into_rgb8()
}

/// A seeded random generator.
pub fn random_generator(config: &GeneratorConfig, seed: u64) -> Generator {
    let device = Device::flex();
    device.seed(seed);
    config.init(&device)
}

/// `generator` with random style offsets (its `[styles, channels]` tables, the only 2-D
/// parameters of a generator), as training would leave them: the styles then differ.
pub fn perturb_styles(generator: Generator, seed: u64) -> Generator {
    struct Perturb(portraitist::rng::Rng);
    impl burn::module::ModuleMapper for Perturb {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            if D != 2 {
                return param;
            }
            let rng = &mut self.0;
            param.map(|t| {
                let dims = t.dims();
                let n = dims.iter().product();
                let noise: Vec<f32> = (0..n).map(|_| rng.uniform(-0.5, 0.5)).collect();
                let noise = burn::tensor::TensorData::new(noise, dims);
                t.clone() + burn::tensor::Tensor::from_data(noise, &t.device())
            })
        }
    }
    use burn::module::Module;
    generator.map(&mut Perturb(portraitist::rng::Rng::new(seed)))
}

/// The generator size tests use: small enough to run in a blink on the CPU.
pub fn test_config() -> GeneratorConfig {
    GeneratorConfig::new(4, 2)
}

/// Write a pack of a seeded random generator into `dir` and return its manifest.
pub fn random_pack(dir: &Path, id: &str, seed: u64) -> Manifest {
    let config = test_config();
    let generator = random_generator(&config, seed);
    let manifest = Manifest::new(id, "Test pattern (random weights)", config);
    StylePack::save(dir, manifest, &generator, Precision::F32).expect("pack saves")
}

pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

pub fn max_abs_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Every float parameter's values, in module order (ignores parameter ids, which are random).
pub fn param_values<M: burn::module::Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.0.extend(
                param
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}
