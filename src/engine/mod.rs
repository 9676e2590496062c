//! Inference engines of our own, beside Burn's: [`cpu`] runs a [`crate::Generator`]'s forward pass
//! directly on `f32` planes (the stylizer's CPU path, natively and in the browser).

pub mod cpu;

pub use cpu::{ConvTiming, CpuGenerator, CpuVgg};

/// The first NVIDIA GPU through CUDA, once one tensor has gone there and back. cubecl starts the
/// device lazily and panics on its own threads where there is no driver or NVRTC; those panics
/// are kept quiet here (the caller gets one clear error instead of their messages).
#[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
pub fn cuda_device() -> Result<burn::tensor::Device, String> {
    let device = burn::tensor::Device::cuda(0usize);
    let probe = device.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probed = std::panic::catch_unwind(move || {
        burn::tensor::Tensor::<1>::zeros([1], &probe).try_into_data()
    });
    std::panic::set_hook(hook);
    match probed {
        Ok(Ok(_)) => Ok(device),
        _ => Err(
            "no usable CUDA device (is the NVIDIA driver loaded, and do CUDA_PATH and \
                  LD_LIBRARY_PATH reach the CUDA toolkit's NVRTC?)"
                .into(),
        ),
    }
}
