//! CPU backends side by side on the generator: Burn's `flex` (the default) against `ndarray`.
//!
//! `cargo bench --features ndarray --bench backends` — prints ms per image and the ratio; both
//! backends run the same weights on the same input in this one process, and their outputs are
//! compared so a fast wrong answer cannot win.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use portraitist::Preset;

fn time_forward(
    generator: &portraitist::Generator,
    device: &Device,
    input: &TensorData,
    runs: usize,
) -> (f64, Vec<f32>) {
    let x = Tensor::<4>::from_data(input.clone(), device);
    // Warm-up (allocations, thread pools).
    let _ = generator.forward(x.clone()).into_data();
    let started = Instant::now();
    let mut out = Vec::new();
    for _ in 0..runs {
        out = generator
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
    }
    (started.elapsed().as_secs_f64() * 1000.0 / runs as f64, out)
}

fn main() {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("generator forward, batch 1, {threads} threads");
    println!(
        "{:<6} {:>6} {:>10} {:>12} {:>8} {:>10}",
        "preset", "side", "flex ms", "ndarray ms", "ratio", "max diff"
    );
    for preset in [Preset::Tiny, Preset::Small] {
        let flex = Device::flex();
        flex.seed(7);
        let generator = preset.generator().init(&flex);
        #[allow(deprecated)] // measured on purpose: the reference flex replaces
        let ndarray = Device::ndarray();
        let on_ndarray = generator.clone().to_device(&ndarray);
        for side in [256, 512] {
            let runs = if side > 256 { 3 } else { 5 };
            flex.seed(side as u64);
            let input =
                Tensor::<4>::random([1, 3, side, side], Distribution::Uniform(-1.0, 1.0), &flex)
                    .into_data();
            let (t_flex, a) = time_forward(&generator, &flex, &input, runs);
            let (t_nd, b) = time_forward(&on_ndarray, &ndarray, &input, runs);
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            println!(
                "{:<6} {:>6} {:>10.1} {:>12.1} {:>7.2}x {:>10.2e}",
                preset.name(),
                side,
                t_flex,
                t_nd,
                t_nd / t_flex,
                diff
            );
        }
    }
}
