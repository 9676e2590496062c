//! Training passes on the CPU: the networks' forward passes that keep what backward needs, and
//! their backward passes to every weight's gradient, on `f32` planes. Burn still defines the
//! networks, keeps their weights, steps their optimisers and serves the GPU; on the CPU the
//! training step hands these gradients to Burn's optimisers (`GradientsParams`) instead of
//! running Burn's autodiff, which was the step's slowest part. Tests compare every gradient
//! with Burn's autodiff.

mod discriminator;
mod generator;
mod latent;
mod ops;

pub use discriminator::{DiscriminatorGrad, DiscriminatorGrads, DiscriminatorTape};
pub use generator::{GeneratorGrad, GeneratorGrads, GeneratorTape};
pub use latent::{
    ImageDiscriminatorGrad, ImageGrads, ImageTape, LatentGeneratorGrad, LatentGrads, LatentTape,
};
pub(crate) use ops::add_into;
