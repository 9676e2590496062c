//! Inference engines of our own, beside Burn's: [`cpu`] runs a [`crate::Generator`]'s forward pass
//! directly on `f32` planes (the stylizer's CPU path, natively and in the browser).

pub mod cpu;

pub use cpu::{ConvTiming, CpuGenerator, CpuVgg};
