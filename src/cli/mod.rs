//! The commands of the `portraitist` binary, one module each (its arguments and its run), and
//! what they share: the backend choice, progress lines, folders of photos, error text.

pub mod eval;
pub mod export;
pub mod generate;
pub mod grade;
pub mod learn;
pub mod styles;
pub mod stylize;
pub mod train;

use std::path::Path;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;
use indicatif::ProgressBar;

use anyhow::Context;
use portraitist::model::Vgg19;
use portraitist::photos::ImageFolder;

#[derive(Clone, Copy, ValueEnum)]
pub enum Backend {
    /// Burn's flex backend on the CPU (all cores).
    Cpu,
    /// GPU through wgpu (Vulkan, Metal or DX12); needs a build with `--features wgpu`.
    Wgpu,
    /// NVIDIA GPU through CUDA (kernels compiled by NVRTC); needs a build with `--features cuda`
    /// (see scripts/setup-cuda).
    Cuda,
}

/// An error and its causes on one line, each cause once: library errors often print their source
/// in their own message already (`path: No space left on device`), and anyhow's `{:#}` would
/// repeat it.
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu_options()
            .init()
            .map_err(|e| anyhow::anyhow!("no usable GPU through wgpu: {e}")),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => bail!("this build has no GPU support: rebuild with `--features wgpu`"),
        #[cfg(feature = "cuda")]
        Backend::Cuda => portraitist::engine::cuda_device().map_err(anyhow::Error::msg),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => bail!(
            "this build has no CUDA support: run scripts/setup-cuda, then rebuild with `--features cuda`"
        ),
    }
}

/// "1 photo", "2 photos".
pub fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

/// A line above the progress bar, or on stdout when there is no bar (output not a terminal), so
/// logs of a training run keep what it said.
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

pub fn load_folder(dir: &Path, what: &str) -> Result<ImageFolder> {
    let folder = ImageFolder::load(dir, 1, u32::MAX, &mut |_, _| {})
        .with_context(|| format!("cannot read the {what}"))?;
    for s in &folder.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    Ok(folder)
}

/// The VGG19 network, or `None` with a note saying what is `missing` without it.
pub fn load_vgg(path: &Path, device: &Device, missing: &str) -> Result<Option<Vgg19>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Vgg19::from_bytes(&bytes, device)?)),
        Err(e) => {
            eprintln!(
                "note: {missing} ({}: {e}; scripts/convert-vgg19.py writes it)",
                path.display()
            );
            Ok(None)
        }
    }
}

pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Cpu => "cpu (flex)",
        Backend::Wgpu => "wgpu",
        Backend::Cuda => "cuda",
    }
}

/// [`portraitist::atomic::write`], its error naming the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    portraitist::atomic::write(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
