//! The noise path's inference, shared by the CLI and the browser: seed → latent vector z →
//! generator → new portrait.
//!
//! Latent vectors are drawn on the CPU from a seeded generator ([`latent`]), never from the
//! device's random source, so a seed names the same portrait on every backend and machine.
//! Walks between two portraits interpolate their latents spherically ([`slerp`]).

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use crate::model::{LatentGenerator, LatentGeneratorConfig};
use crate::pack::{PackError, StylePack};
use crate::rng::Rng;
use crate::stylize::RenderError;

pub use crate::model::slerp;

/// Separates the latent stream from other uses of the same seed.
const LATENT_STREAM: u64 = 0x002a_7e47;

/// Most latents rendered in one batch (a grid of 16 at 64 px is one batch).
const MAX_BATCH: usize = 16;

/// The latent vector for `seed`: `dim` standard normal values.
pub fn latent(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed).fork(LATENT_STREAM);
    (0..dim).map(|_| rng.normal()).collect()
}

/// `frames` latents walking from `a`'s portrait to `b`'s (both ends included).
pub fn walk(a: &[f32], b: &[f32], frames: usize) -> Vec<Vec<f32>> {
    let last = frames.saturating_sub(1).max(1) as f32;
    (0..frames).map(|i| slerp(a, b, i as f32 / last)).collect()
}

/// A loaded noise generator ready to make portraits on one device.
#[derive(Debug, Clone)]
pub struct Creator {
    generator: LatentGenerator,
    config: LatentGeneratorConfig,
    device: Device,
}

impl Creator {
    pub fn new(generator: LatentGenerator, config: LatentGeneratorConfig, device: Device) -> Self {
        Self {
            generator: generator.to_device(&device),
            config,
            device,
        }
    }

    /// A creator with a (noise) pack's network, on `device`.
    pub fn from_pack(pack: &StylePack, device: &Device) -> Result<Self, PackError> {
        Ok(Self::new(
            pack.latent_generator(device)?,
            pack.noise_config()?.clone(),
            device.clone(),
        ))
    }

    pub fn config(&self) -> &LatentGeneratorConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The latent vector of `seed` for this generator.
    pub fn latent(&self, seed: u64) -> Vec<f32> {
        latent(seed, self.config.latent)
    }

    /// One portrait per latent vector (each `config.latent` long), `size`×`size` pixels.
    pub async fn render(&self, latents: &[Vec<f32>]) -> Result<Vec<RgbImage>, RenderError> {
        let dim = self.config.latent;
        let mut images = Vec::with_capacity(latents.len());
        for chunk in latents.chunks(MAX_BATCH) {
            let mut values = Vec::with_capacity(chunk.len() * dim);
            for z in chunk {
                if z.len() != dim {
                    return Err(self.backend_error(format!(
                        "a latent vector has {} values, the generator takes {dim}",
                        z.len()
                    )));
                }
                values.extend_from_slice(z);
            }
            let z =
                Tensor::<2>::from_data(TensorData::new(values, [chunk.len(), dim]), &self.device);
            let data = self
                .generator
                .forward(z)
                .into_data_async()
                .await
                .map_err(|e| self.backend_error(e))?
                .try_into_vec::<f32>()
                .map_err(|e| self.backend_error(format!("{e:?}")))?;
            let side = self.config.size;
            images.extend((0..chunk.len()).map(|i| to_image(&data, i, side)));
        }
        Ok(images)
    }

    /// The portraits of these seeds.
    pub async fn render_seeds(&self, seeds: &[u64]) -> Result<Vec<RgbImage>, RenderError> {
        let latents: Vec<_> = seeds.iter().map(|&s| self.latent(s)).collect();
        self.render(&latents).await
    }

    /// Blocking [`Creator::render`] for native front ends.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn render_blocking(&self, latents: &[Vec<f32>]) -> Result<Vec<RgbImage>, RenderError> {
        pollster::block_on(self.render(latents))
    }

    fn backend_error(&self, message: impl std::fmt::Display) -> RenderError {
        RenderError::Backend {
            backend: format!("{:?}", self.device),
            message: message.to_string(),
        }
    }
}

/// Image `index` of a `[batch, 3, side, side]` tensor's data in [-1, 1].
fn to_image(data: &[f32], index: usize, side: usize) -> RgbImage {
    let plane = side * side;
    RgbImage::from_fn(side as u32, side as u32, |x, y| {
        let i = y as usize * side + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            ((data[(index * 3 + c) * plane + i] + 1.0) * 127.5)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latents_are_fixed_per_seed_and_roughly_standard_normal() {
        assert_eq!(latent(7, 64), latent(7, 64));
        assert_ne!(latent(7, 64), latent(8, 64));
        let z = latent(1, 4000);
        let mean = z.iter().sum::<f32>() / 4000.0;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4000.0;
        assert!(mean.abs() < 0.08 && (var - 1.0).abs() < 0.1, "{mean} {var}");
    }

    #[test]
    fn a_walk_starts_and_ends_at_its_portraits_and_keeps_the_norm() {
        let (a, b) = (latent(1, 128), latent(2, 128));
        let frames = walk(&a, &b, 5);
        assert_eq!(frames.len(), 5);
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-4);
        assert!(close(&frames[0], &a) && close(&frames[4], &b));
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (na, nb, nm) = (norm(&a), norm(&b), norm(&frames[2]));
        // A straight line's midpoint of two near-orthogonal vectors has ~0.71× their norm.
        assert!(nm > 0.9 * na.min(nb), "{na} {nb} {nm}");
    }
}
