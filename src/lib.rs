//! Portraitist: portrait-photography styles learned by a GAN, applied offline.
//!
//! * [`model`]: the generator and discriminator networks.
//! * [`engine`]: our own CPU inference engine for the generator (the stylizer's CPU path).
//! * [`stylize`]: the one inference path (photo → network → photo), tiling and blending.
//! * [`create`]: the noise path's inference (seed → latent → new portrait), latent walks.
//! * [`pack`]: style packs (manifest + weights), the contract between training and front ends.
//! * [`atomic`]: files written whole or not at all.
//! * [`image_io`]: safe decoding of user photos and encoding of results.
//! * `learn`: the training configuration, losses and one step per mode, platform-neutral
//!   (natively always; in wasm with the `learn` feature).
//! * [`looks`]: the parametric colour looks: the gallery's colour grades (applied by formula) and
//!   known answers for training and evaluation.
//! * `photos` (native only): folders of photos, photo ↔ tensor, contact sheets.
//! * `train` (native only): data, losses, the training loop, checkpoints, reports.
//! * `eval` (native only): content, style and ground-truth figures for a style, and a report.
//!
//! The core takes a Burn [`burn::tensor::Device`] and never names a backend; front ends pick one.

pub mod atomic;
pub mod create;
pub mod engine;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod image_io;
#[cfg(any(not(target_arch = "wasm32"), feature = "learn"))]
pub mod learn;
pub mod looks;
pub mod model;
pub mod pack;
#[cfg(not(target_arch = "wasm32"))]
pub mod photos;
pub mod rng;
pub mod stylize;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use create::Creator;
pub use model::{Generator, GeneratorConfig, Preset};
pub use pack::{Manifest, PackError, StylePack};
pub use stylize::{Blend, Stylizer, blend};
