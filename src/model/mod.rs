//! Network definitions. Nothing here knows about training, files or user interfaces.

pub(crate) mod discriminator;
pub(crate) mod generator;
pub(crate) mod latent;
mod layers;
pub(crate) mod norm;
mod styles;
mod vgg;

pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Activation, Generator, GeneratorConfig, Layer, Preset, Residual};
pub use latent::{
    ImageDiscriminator, ImageDiscriminatorConfig, LatentGenerator, LatentGeneratorConfig, slerp,
};
pub use norm::{NormStats, StatNorm};
pub use styles::{StyleRows, StyleTable};
pub use vgg::{Vgg19, VggError, VggFeatures, gram};
