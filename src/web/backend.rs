//! Which device runs the styles: WebGPU where the browser has a hardware adapter, else the CPU
//! path compiled to wasm. A software adapter (the browser's fallback, e.g. Chromium's SwiftShader
//! on a machine without a usable GPU) is passed over: it is about 50 times slower than the CPU
//! path. `?backend=cpu` or `?backend=webgpu` forces one.
//!
//! A GPU can go away mid-run (driver reset, another tab's crash, the browser reclaiming it). The
//! WebGPU device is watched: its loss, or any error the GPU reports, is recorded here (instead of
//! the GPU runtime's default, a panic that would kill the page), and the app then finishes the
//! run on the CPU.

use std::sync::{Arc, Mutex};

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    WebGpu,
    Cpu,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU",
        }
    }
}

/// The device to use, and which backend it is. Never fails: the CPU always works.
pub async fn init(forced: Option<Backend>) -> (Device, Backend, Option<String>) {
    if forced == Some(Backend::Cpu) {
        return (Device::flex(), Backend::Cpu, None);
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((_, setup))
            if forced != Some(Backend::WebGpu)
                && setup.adapter.get_info().device_type
                    == burn::tensor::wgpu::wgpu::DeviceType::Cpu =>
        {
            (
                Device::flex(),
                Backend::Cpu,
                Some("the browser's WebGPU adapter is a software fallback; using the CPU".into()),
            )
        }
        Ok((device, setup)) => {
            setup.device.set_device_lost_callback(|reason, message| {
                record_failure(format!("the GPU device was lost ({reason:?}: {message})"))
            });
            setup
                .device
                .on_uncaptured_error(Arc::new(|error: burn::tensor::wgpu::wgpu::Error| {
                    record_failure(format!("the GPU reported an error: {error}"))
                }));
            (device, Backend::WebGpu, None)
        }
        Err(err) => (
            Device::flex(),
            Backend::Cpu,
            Some(format!("WebGPU is not available ({err}); using the CPU")),
        ),
    }
}

/// `?backend=` from the page's address.
pub fn forced_by_query(search: &str) -> Option<Backend> {
    let query = search.trim_start_matches('?');
    query.split('&').find_map(|pair| match pair {
        "backend=cpu" => Some(Backend::Cpu),
        "backend=webgpu" => Some(Backend::WebGpu),
        _ => None,
    })
}

/// What made the WebGPU device unusable, once something has.
static GPU_FAILURE: Mutex<Option<String>> = Mutex::new(None);

fn record_failure(message: String) {
    web_sys::console::warn_1(&message.clone().into());
    let mut failure = GPU_FAILURE.lock().unwrap_or_else(|e| e.into_inner());
    failure.get_or_insert(message);
}

/// Why the WebGPU device cannot be used any more, if it cannot.
pub fn gpu_failure() -> Option<String> {
    GPU_FAILURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}
