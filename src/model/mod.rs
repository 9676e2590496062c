//! Network definitions. Nothing here knows about training, files or user interfaces.

mod discriminator;
mod generator;
mod norm;

pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Generator, GeneratorConfig, Preset};
pub use norm::{NormStats, StatNorm};
