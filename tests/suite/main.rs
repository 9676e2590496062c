//! The integration tests, one module per part of the product, in one binary (each test binary
//! links Burn: one link instead of nine). `tests/fusion.rs` stays apart: it must be the first in
//! its process to read Burn's configuration.

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod cli;
mod gradients;
mod image_io;
mod model;
mod noise;
mod pack;
mod stylize;
mod train;
mod vgg;

/// The `portraitist` binary run with `args`, its output collected.
fn portraitist(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .args(args)
        .output()
        .expect("the binary runs")
}
