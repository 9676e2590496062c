//! Which device runs the styles: WebGPU where the browser has an adapter, else the CPU (`flex`
//! compiled to wasm). `?backend=cpu` or `?backend=webgpu` forces one.

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
    match Device::wgpu_options().init_async().await {
        Ok(device) => (device, Backend::WebGpu, None),
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
