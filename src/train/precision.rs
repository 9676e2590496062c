//! The storage precision export chooses for a pack's weights: half precision where it keeps
//! every output within one 8-bit level of full precision.

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::model::{Generator, LatentGenerator};
use crate::pack::{CastFloats, Precision};

/// Pick the storage precision for a generator: half precision when the outputs of both
/// precisions on a fixed probe image stay within 1/255 of each other, else full precision.
/// A multi-style generator is probed in every one of its styles.
pub fn choose_precision(generator: &Generator, device: &Device) -> (Precision, f32) {
    let probe = probe_image(device);
    compare_precisions(generator, |g| {
        let outputs = g
            .each_style()
            .iter()
            .map(|g| g.forward(probe.clone()))
            .collect();
        Tensor::cat(outputs, 0)
    })
}

/// [`choose_precision`] for a noise generator, probed with the latents of seeds 0–3.
pub fn choose_latent_precision(generator: &LatentGenerator, device: &Device) -> (Precision, f32) {
    let latent = generator.latent_size();
    let values: Vec<f32> = (0..4)
        .flat_map(|s| crate::create::latent(s, latent))
        .collect();
    let z = Tensor::<2>::from_data(TensorData::new(values, [4, latent]), device);
    compare_precisions(generator, |g| g.forward(z.clone()))
}

fn compare_precisions<M: Module>(
    network: &M,
    forward: impl Fn(&M) -> Tensor<4>,
) -> (Precision, f32) {
    let full = forward(network);
    let half = network
        .clone()
        .map(&mut CastFloats(DType::F16))
        .map(&mut CastFloats(DType::F32));
    let half = forward(&half);
    // Outputs are in [-1, 1]; one 8-bit level is 2/255 there.
    let diff: f32 = (full - half).abs().max().into_scalar();
    let max_diff_8bit = diff * 127.5;
    let precision = if max_diff_8bit <= 1.0 {
        Precision::F16
    } else {
        Precision::F32
    };
    (precision, max_diff_8bit)
}

/// A deterministic 64×64 image with gradients and edges, for precision checks.
fn probe_image(device: &Device) -> Tensor<4> {
    let side = 64;
    let data: Vec<f32> = (0..3 * side * side)
        .map(|i| {
            let (c, y, x) = (i / (side * side), (i / side) % side, i % side);
            let v = ((x * (c + 1) + y * 3) % 97) as f32 / 48.0 - 1.0;
            if (x / 8 + y / 8) % 2 == 0 {
                v
            } else {
                -v * 0.5
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [1, 3, side, side]), device)
}
