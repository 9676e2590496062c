//! The Burn side of `bench/run` (see bench/README.md). Prints one JSON object per line.
//!
//! ```text
//! bench_native weights OUT_DIR [NAME…]       tiny/small (and any other preset NAME) at fixed
//!                                            seeds and shipped styles NAME, exported as
//!                                            SafeTensors (the layer table in the metadata), with
//!                                            a photo and Burn's output on it for the reference
//! bench_native infer BACKEND SIZES RUNS [PRESETS]   ms per image, generator forward, batch 1
//!                                            (PRESETS: comma list, default `tiny,small`)
//! bench_native layers PRESET SIDE RUNS      our CPU path, each convolution's median time
//! bench_native tiling BACKEND                a 1024² photo whole vs in 256² tiles (the page's path)
//! bench_native train BACKEND STEPS           training steps/s (tiny at 128², small at 256², and
//!                                            the styles step at 256², batch 8, where VGG19 is)
//! bench_native grads OUT_DIR               the four timed training steps' losses and gradients on
//!                                            our CPU path, with weights and inputs, for the
//!                                            PyTorch reference to compare (`bench.py grads`)
//! bench_native check BACKEND STEPS           BACKEND against flex on the same numbers: forward
//!                                            passes, each loss's gradients, then STEPS training
//!                                            steps side by side (where a GPU goes wrong)
//! ```
//!
//! BACKEND is `cpu` (our CPU path, which the stylizer uses on the CPU; `infer` only), `flex`
//! (Burn's CPU backend), `ndarray` (needs `--features ndarray`), `wgpu` (needs `--features
//! wgpu` or `vulkan`) or `cuda` (needs `--features cuda`, after scripts/setup-cuda). SIZES is a comma list such as `256,512,1024`.

#[path = "bench_native/grads.rs"]
mod grads;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use image::RgbImage;
use portraitist::engine::CpuGenerator;
use portraitist::model::NormStats;
use portraitist::pack::{Manifest, Precision, StylePack};
use portraitist::stylize::Normalization;
use portraitist::train::export::{WeightsSource, export_safetensors};
use portraitist::train::{Event, Mode, Sources, TrainConfig, Trainer};
use portraitist::{Generator, Preset, Stylizer};

const PRESETS: [Preset; 2] = [Preset::Tiny, Preset::Small];
const PHOTO: &str = "tests/fixtures/astronaut-512.jpg";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match arg(0) {
        "weights" => weights(Path::new(arg(1)), &args[2.min(args.len())..]),
        "infer" => infer(arg(1), arg(2), arg(3).parse().unwrap_or(5), arg(4)),
        "layers" => layers(arg(1), arg(2), arg(3).parse().unwrap_or(5)),
        "tiling" => tiling(arg(1)),
        "train" => train(arg(1), arg(2).parse().unwrap_or(5)),
        "check" => check(arg(1), arg(2).parse().unwrap_or(10)),
        "grads" => grads::grads(Path::new(arg(1))),
        _ => Err("usage: bench_native weights DIR | infer BACKEND SIZES RUNS | layers PRESET SIDE RUNS | tiling BACKEND | train BACKEND STEPS | check BACKEND STEPS | grads DIR".into()),
    };
    if let Err(message) = result {
        eprintln!("bench_native: {message}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, String>;

fn device(name: &str) -> Result<Device> {
    let device = gpu_or_cpu_device(name)?;
    if matches!(name, "wgpu" | "cuda") {
        precision(device)
    } else {
        Ok(device)
    }
}

/// `BENCH_PRECISION=f16`: the GPU device's tensors default to f16 (integers stay i32), set before
/// its first tensor. Nothing else changes: parameters and optimiser state are f16 too, so the
/// check shows what plain f16 does to the losses, gradients and steps.
fn precision(mut device: Device) -> Result<Device> {
    use burn::tensor::{FloatDType, IntDType};
    match std::env::var("BENCH_PRECISION").as_deref() {
        Err(_) | Ok("f32") => Ok(device),
        Ok("f16") => {
            if !device.supports_dtype(FloatDType::F16) {
                return Err("this GPU has no usable f16 (shaderFloat16 and 16-bit storage)".into());
            }
            device
                .configure((FloatDType::F16, IntDType::I32))
                .map_err(|e| format!("f16 on this device: {e:?}"))?;
            Ok(device)
        }
        Ok(other) => Err(format!(
            "BENCH_PRECISION=`{other}`: expected `f32` or `f16`"
        )),
    }
}

fn gpu_or_cpu_device(name: &str) -> Result<Device> {
    match name {
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // measured on purpose: the reference flex replaces
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        // BENCH_WGPU_MEMORY=exclusive: one buffer per allocation instead of the adaptive pool.
        "wgpu" => match std::env::var("BENCH_WGPU_MEMORY").as_deref() {
            Ok("exclusive") => Device::wgpu_options()
                .memory_config(burn::tensor::wgpu::MemoryConfiguration::ExclusivePages),
            Ok("adaptive") | Err(_) => Device::wgpu_options(),
            Ok(other) => {
                return Err(format!(
                    "BENCH_WGPU_MEMORY=`{other}`: expected `exclusive` or `adaptive`"
                ));
            }
        }
        .init()
        .map_err(|e| format!("no usable GPU through wgpu: {e}")),
        #[cfg(feature = "cuda")]
        "cuda" => portraitist::engine::cuda_device(),
        other => Err(format!("backend `{other}` is not in this build")),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The benchmark's generators: fixed seeds, so every run (and the reference) sees the same weights.
fn generator(preset: Preset, device: &Device) -> Generator {
    device.seed(1000 + preset as u64);
    preset.generator().init(device)
}

/// The test photo as a `[1, 3, side, side]` tensor in [-1, 1].
fn photo_tensor(side: u32, device: &Device) -> Result<Tensor<4>> {
    let bytes = std::fs::read(PHOTO).map_err(|e| format!("{PHOTO}: {e}"))?;
    let photo = portraitist::image_io::decode(&bytes).map_err(|e| format!("{PHOTO}: {e}"))?;
    let photo = image::imageops::resize(&photo, side, side, image::imageops::FilterType::Triangle);
    let side = side as usize;
    let mut values = vec![0.0f32; 3 * side * side];
    for (i, pixel) in photo.pixels().enumerate() {
        for c in 0..3 {
            values[c * side * side + i] = pixel[c] as f32 / 127.5 - 1.0;
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [1, 3, side, side]),
        device,
    ))
}

/// An input and the network's output on it, saved side by side for the reference to compare.
#[derive(Module, Debug)]
struct Check {
    input: Param<Tensor<4>>,
    /// Burn's forward pass.
    output: Param<Tensor<4>>,
    /// Our CPU path's (`CpuGenerator`, what the stylizer runs on the CPU).
    output_cpu: Param<Tensor<4>>,
}

fn save_check(out: &Path, network: &Generator, input: Tensor<4>) -> Result<()> {
    let [_, _, h, w] = input.dims();
    let planes = input
        .to_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let cpu = CpuGenerator::new(network).forward_with(planes, h, w, &mut NormStats::live());
    let check = Check {
        output: Param::from_tensor(network.forward(input.clone())),
        output_cpu: Param::from_tensor(Tensor::from_data(
            TensorData::new(cpu, [1, 3, h, w]),
            &input.device(),
        )),
        input: Param::from_tensor(input),
    };
    let mut store = SafetensorsStore::from_file(out);
    check
        .save_into(&mut store)
        .map_err(|e| format!("{}: {e}", out.display()))
}

/// `OUT/<name>.safetensors` (written by the CLI's export path from a pack) and
/// `OUT/check-<name>.safetensors` for tiny, small and the shipped transfer styles named.
fn weights(out: &Path, styles: &[String]) -> Result<()> {
    let device = Device::flex();
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut models: Vec<(String, PathBuf)> = Vec::new();
    let mut presets = PRESETS.to_vec();
    let mut named = Vec::new();
    for name in styles {
        match name.parse::<Preset>() {
            Ok(preset) if !presets.contains(&preset) => presets.push(preset),
            Ok(_) => {}
            Err(_) => named.push(name),
        }
    }
    for preset in presets {
        let dir = out.join(format!("pack-{}", preset.name()));
        let manifest = Manifest::new(preset.name(), preset.name(), preset.generator());
        StylePack::save(&dir, manifest, &generator(preset, &device), Precision::F32)
            .map_err(|e| e.to_string())?;
        models.push((preset.name().to_string(), dir));
    }
    for style in named {
        models.push((style.clone(), Path::new("models").join(style)));
    }
    for (name, dir) in models {
        let file = out.join(format!("{name}.safetensors"));
        let style = dir.display().to_string();
        let source = WeightsSource::Pack {
            style: &style,
            models_dir: Path::new("models"),
        };
        export_safetensors(&source, &file).map_err(|e| e.to_string())?;
        let network = StylePack::load(&dir)
            .and_then(|pack| pack.generator(&device))
            .map_err(|e| e.to_string())?;
        let input = photo_tensor(256, &device)?;
        save_check(
            &out.join(format!("check-{name}.safetensors")),
            &network,
            input,
        )?;
        println!(
            "{{\"weights\":\"{}\",\"check\":\"check-{name}.safetensors\"}}",
            file.display()
        );
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn infer(backend: &str, sizes: &str, runs: usize, presets: &str) -> Result<()> {
    // `cpu`: our own CPU path (what the stylizer runs on the CPU), weights from a flex generator.
    let ours = backend == "cpu";
    let device = device(if ours { "flex" } else { backend })?;
    let presets: Vec<Preset> = if presets.is_empty() {
        PRESETS.to_vec()
    } else {
        presets.split(',').map(str::parse).collect::<Result<_>>()?
    };
    let sizes: Vec<u32> = sizes
        .split(',')
        .map(|s| s.parse().map_err(|_| format!("bad size `{s}`")))
        .collect::<Result<_>>()?;
    for preset in presets {
        let network = generator(preset, &device);
        let cpu = ours.then(|| CpuGenerator::new(&network));
        for &side in &sizes {
            let input = photo_tensor(side, &device)?;
            let planes = input
                .to_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            let s = side as usize;
            // Milliseconds to the output in memory, and (on Burn's devices) the part of them
            // until the device is done computing, before the output is read back.
            let forward = || -> Result<(f64, f64)> {
                let started = Instant::now();
                let ms = || started.elapsed().as_secs_f64() * 1000.0;
                Ok(match &cpu {
                    Some(cpu) => {
                        drop(cpu.forward_with(planes.clone(), s, s, &mut NormStats::live()));
                        (ms(), ms())
                    }
                    None => {
                        let output = network.forward(input.clone());
                        device
                            .sync()
                            .map_err(|e| format!("the device failed: {e:?}"))?;
                        let computed = ms();
                        drop(output.into_data());
                        (ms(), computed)
                    }
                })
            };
            // Warm-up: allocations, thread pools, kernel compilation on GPUs.
            forward()?;
            let (times, computed): (Vec<f64>, Vec<f64>) = (0..runs.max(1))
                .map(|_| forward())
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            println!(
                "{{\"backend\":\"{backend}\",\"preset\":\"{}\",\"side\":{side},\"threads\":{},\"ms_median\":{:.2},\"ms_min\":{:.2},\"ms_computed_median\":{:.2},\"runs\":{}}}",
                preset.name(),
                threads(),
                median(times.clone()),
                times.iter().copied().fold(f64::INFINITY, f64::min),
                median(computed),
                times.len()
            );
        }
    }
    Ok(())
}

/// Each convolution of our CPU path timed inside a forward pass, median over `runs` passes.
fn layers(preset: &str, side: &str, runs: usize) -> Result<()> {
    let preset: Preset = preset.parse()?;
    let side: usize = side.parse().map_err(|_| format!("bad size `{side}`"))?;
    let device = Device::flex();
    let cpu = CpuGenerator::new(&generator(preset, &device));
    let planes = photo_tensor(side as u32, &device)?
        .to_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    cpu.conv_timings(planes.clone(), side, side); // warm-up
    let passes: Vec<_> = (0..runs.max(1))
        .map(|_| cpu.conv_timings(planes.clone(), side, side))
        .collect();
    for (i, first) in passes[0].iter().enumerate() {
        let ms = median(passes.iter().map(|p| p[i].ms).collect());
        println!(
            "{{\"preset\":\"{}\",\"side\":{side},\"index\":{i},\"layer\":\"{}\",\"gflop\":{:.4},\"ms_median\":{ms:.3},\"threads\":{}}}",
            preset.name(),
            first.layer,
            first.gflop,
            threads()
        );
    }
    Ok(())
}

/// The stylizer on a 1024² photo, whole and in 256² tiles: the price of tiling (margins, the
/// thumbnail's statistics, feathered blending), which the page uses for large photos.
fn tiling(backend: &str) -> Result<()> {
    let device = device(backend)?;
    let preset = Preset::Small;
    let stylizer = Stylizer::new(
        generator(preset, &device),
        preset.generator(),
        Normalization::default(),
        device.clone(),
    );
    let bytes = std::fs::read(PHOTO).map_err(|e| format!("{PHOTO}: {e}"))?;
    let photo = portraitist::image_io::decode(&bytes).map_err(|e| format!("{PHOTO}: {e}"))?;
    let photo: RgbImage =
        image::imageops::resize(&photo, 1024, 1024, image::imageops::FilterType::Triangle);
    for (name, tile) in [("whole", None), ("tiles-256", Some(256))] {
        let run = || -> Result<f64> {
            let started = Instant::now();
            stylizer
                .render_blocking(&photo, tile, &mut |_, _| {})
                .map_err(|e| e.to_string())?;
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        run()?; // warm-up
        let times = (0..3).map(|_| run()).collect::<Result<Vec<_>>>()?;
        println!(
            "{{\"backend\":\"{backend}\",\"preset\":\"{}\",\"side\":1024,\"path\":\"{name}\",\"ms_median\":{:.2}}}",
            preset.name(),
            median(times)
        );
    }
    Ok(())
}

/// Synthetic photos: training speed does not depend on their content.
fn photos(dir: &Path, count: u32, side: u32) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for i in 0..count {
        RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([(x * 3 + i * 40) as u8, (y * 5) as u8, ((x ^ y) + i) as u8])
        })
        .save(dir.join(format!("{i}.png")))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Steps/s of the real trainer (data loading included) on `backend`: unpaired and paired, batch 1,
/// the noise GAN's (64², batch 16) and the styles step. On the CPU the trainer's own CPU path, unless `BENCH_BURN_AUTODIFF=1`
/// (Burn's autodiff, the reference).
fn train(backend: &str, steps: usize) -> Result<()> {
    // As the trainer and the CLI: unfused, decided before the GPU is touched.
    portraitist::train::trainer::unfused();
    let device = device(backend)?;
    let burn_autodiff = std::env::var("BENCH_BURN_AUTODIFF").is_ok_and(|v| v == "1");
    let dir = std::env::temp_dir().join(format!("portraitist-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for folder in [
        "a",
        "b",
        "pairs/before",
        "pairs/after",
        "styles/one",
        "styles/two",
    ] {
        photos(&dir.join(folder), 4, 300)?;
    }
    // The painterly recipe's step (styles mode: VGG19 losses and a PatchGAN) at the GPU issue's
    // size and batch, where the VGG19 weights are at hand (BENCH_VGG19, default the trainer's path).
    let vgg19 = std::env::var_os("BENCH_VGG19")
        .map(PathBuf::from)
        .unwrap_or_else(|| TrainConfig::default().vgg19);
    let mut cases = vec![
        (Mode::Unpaired, Preset::Tiny, 128, None),
        (Mode::Paired, Preset::Tiny, 128, None),
        (Mode::Paired, Preset::Tiny, 256, None),
        (Mode::Unpaired, Preset::Small, 256, None),
        (Mode::Paired, Preset::Small, 256, None),
        (Mode::Noise, Preset::Tiny, 64, None),
    ];
    if vgg19.exists() {
        cases.push((Mode::Styles, Preset::Tiny, 256, Some(8)));
    } else {
        eprintln!(
            "bench_native: styles step skipped ({} is missing)",
            vgg19.display()
        );
    }
    for (i, (mode, preset, size, batch)) in cases.into_iter().enumerate() {
        let sources = match mode {
            Mode::Paired => Sources::Paired {
                pairs: dir.join("pairs"),
            },
            Mode::Styles => Sources::Styles {
                content: dir.join("a"),
                styles: dir.join("styles"),
            },
            Mode::Noise => Sources::Noise {
                portraits: dir.join("a"),
            },
            Mode::Unpaired => Sources::Unpaired {
                content: dir.join("a"),
                style: dir.join("b"),
            },
        };
        let defaults = TrainConfig::for_mode(mode);
        let config = TrainConfig {
            mode,
            preset,
            size,
            batch: batch.unwrap_or(defaults.batch),
            steps: 100_000,
            sample_every: 1_000_000,
            checkpoint_every: 1_000_000,
            vgg19: vgg19.clone(),
            ..defaults
        };
        let batch = config.batch;
        let mut trainer = Trainer::new(
            &sources,
            &dir.join(format!("run{i}")),
            config,
            false,
            &device,
            &mut |_: Event| {},
        )
        .map_err(|e| e.to_string())?;
        if burn_autodiff {
            trainer = trainer.with_burn_autodiff();
        }
        let mut run = |n: u64| trainer.run(Some(n), &mut |_| {}).map_err(|e| e.to_string());
        run(2)?; // warm-up
        let started = Instant::now();
        run(steps as u64)?;
        let per_step = started.elapsed().as_secs_f64() / steps as f64;
        println!(
            "{{\"backend\":\"{backend}\",\"burn_autodiff\":{burn_autodiff},\"mode\":\"{}\",\"preset\":\"{}\",\"side\":{size},\"batch\":{batch},\"threads\":{},\"steps_per_s\":{:.3}}}",
            format!("{mode:?}").to_lowercase(),
            preset.name(),
            threads(),
            1.0 / per_step
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Tensors' values by dotted parameter name.
type ByName = Vec<(String, Vec<f32>)>;

/// Every float parameter of a module (or, given gradients, its gradient) by dotted name.
struct Named<'a> {
    path: Vec<String>,
    grads: Option<&'a Gradients>,
    values: ByName,
}

impl ModuleVisitor for Named<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = match self.grads {
            Some(grads) => param.val().grad(grads),
            None => Some(param.val()),
        };
        if let Some(tensor) = tensor {
            let values = tensor
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            self.values.push((self.path.join("."), values));
        }
    }
}

fn named<M: Module>(module: &M, grads: Option<&Gradients>) -> ByName {
    let mut visitor = Named {
        path: Vec::new(),
        grads,
        values: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.values
}

fn values(tensor: Tensor<4>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// A number for JSON: `null` where it is NaN or infinite.
fn number(value: f32) -> String {
    if value.is_finite() {
        format!("{value:e}")
    } else {
        "null".into()
    }
}

/// Largest difference relative to the reference's largest magnitude, and NaN/inf counts; an
/// `error` where the two do not have the same number of values (a failed read-back gives none).
fn compare(reference: &[f32], other: &[f32]) -> String {
    if reference.len() != other.len() {
        return format!(
            "\"error\":\"{} values against {}\"",
            other.len(),
            reference.len()
        );
    }
    let scale = reference
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    let diff = reference
        .iter()
        .zip(other)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let bad = other.iter().filter(|v| !v.is_finite()).count();
    format!(
        "\"scale\":{},\"max_diff\":{},\"relative\":{},\"non_finite\":{bad},\"len\":{}",
        number(scale),
        number(diff),
        number(diff / scale),
        other.len().min(reference.len())
    )
}

/// One device's forward passes and each loss term's gradients, in a fixed order.
struct Probe {
    forward: Vec<(&'static str, Vec<f32>)>,
    losses: Vec<(&'static str, f32)>,
    grads: Vec<(&'static str, ByName)>,
}

fn probe(device: &Device, config: &TrainConfig) -> Result<Probe> {
    use portraitist::learn::step::init_weights;
    use portraitist::rng::Rng;
    use portraitist::train::losses::{adversarial, l1};
    let device = device.clone().without_autodiff().autodiff();
    let mut rng = Rng::new(7);
    let g = init_weights(config.generator_config().init(&device), &mut rng);
    let d = init_weights(config.discriminator_config().init(&device), &mut rng);
    let a = photo_tensor(config.size as u32, &device)?;
    let b = a.clone().flip([3]) * 0.5;
    let kind = config.adversarial;
    let mut forward = vec![
        ("G(a)", values(g.forward(a.clone()))),
        ("D(b)", values(d.forward(b.clone()))),
    ];
    forward.push(("D(G(a))", values(d.forward(g.forward(a.clone())))));
    type Term<'a> = Box<dyn Fn() -> Tensor<1> + 'a>;
    let terms: Vec<(&'static str, Term)> = vec![
        (
            "g_adv",
            Box::new(|| adversarial(kind, d.forward(g.forward(a.clone())), true)),
        ),
        ("l1", Box::new(|| l1(g.forward(a.clone()), b.clone()))),
        (
            "d_real",
            Box::new(|| adversarial(kind, d.forward(b.clone()), true)),
        ),
        (
            "d_fake",
            Box::new(|| adversarial(kind, d.forward(g.forward(a.clone()).detach()), false)),
        ),
    ];
    let mut losses = Vec::new();
    let mut grads = Vec::new();
    for (name, term) in terms {
        let loss = term();
        let value = loss
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        losses.push((name, value.first().copied().unwrap_or(f32::NAN)));
        let gradients = loss.backward();
        let mut all = named(&g, Some(&gradients));
        for (path, v) in named(&d, Some(&gradients)) {
            all.push((format!("D.{path}"), v));
        }
        grads.push((name, all));
    }
    Ok(Probe {
        forward,
        losses,
        grads,
    })
}

/// BACKEND against flex: the same networks, inputs and losses, compared number by number, then
/// `steps` steps of the real trainer on each, side by side. Prints one JSON object per line.
fn check(backend: &str, steps: usize) -> Result<()> {
    // As the trainer: unfused unless BURN_FUSION_MAX_EXPLORATIONS says otherwise (set it to a
    // large number to see what fusion does).
    let unfused = portraitist::train::trainer::unfused();
    let precision = std::env::var("BENCH_PRECISION").unwrap_or_else(|_| "f32".into());
    let removed = std::env::var("PORTRAITIST_FUSION_REMOVE").unwrap_or_default();
    println!(
        "{{\"backend\":\"{backend}\",\"unfused\":{unfused},\"fusion_removed\":\"{removed}\",\"precision\":\"{precision}\"}}"
    );
    let reference = Device::flex();
    let other = device(backend)?;
    let config = TrainConfig {
        preset: Preset::Tiny,
        size: 128,
        steps: 100_000,
        sample_every: 1_000_000,
        checkpoint_every: 1_000_000,
        ..TrainConfig::for_mode(Mode::Unpaired)
    };
    let (want, got) = (probe(&reference, &config)?, probe(&other, &config)?);
    for ((name, r), (_, o)) in want.forward.iter().zip(&got.forward) {
        println!("{{\"forward\":\"{name}\",{}}}", compare(r, o));
    }
    for ((name, r), (_, o)) in want.losses.iter().zip(&got.losses) {
        println!(
            "{{\"loss\":\"{name}\",\"flex\":{},\"{backend}\":{}}}",
            number(*r),
            number(*o)
        );
    }
    for ((term, r), (_, o)) in want.grads.iter().zip(&got.grads) {
        for (path, r) in r {
            // By name: a parameter without a gradient on one side is missing from that list.
            let o = o
                .iter()
                .find(|(p, _)| p == path)
                .map_or(&[][..], |(_, v)| v);
            println!(
                "{{\"grad_of\":\"{term}\",\"param\":\"{path}\",{}}}",
                compare(r, o)
            );
        }
    }

    // The trainer itself, step by step on both devices.
    let dir = std::env::temp_dir().join(format!("portraitist-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for folder in ["a", "b"] {
        photos(&dir.join(folder), 4, 300)?;
    }
    let sources = Sources::Unpaired {
        content: dir.join("a"),
        style: dir.join("b"),
    };
    let mut trainers = Vec::new();
    for (i, device) in [&reference, &other].into_iter().enumerate() {
        let trainer = Trainer::new(
            &sources,
            &dir.join(format!("run{i}")),
            config.clone(),
            false,
            device,
            &mut |_: Event| {},
        )
        .map_err(|e| e.to_string())?;
        trainers.push(trainer);
    }
    for step in 1..=steps {
        let mut line = format!("{{\"step\":{step}");
        let mut weights = Vec::new();
        let mut failed = false;
        for (trainer, name) in trainers.iter_mut().zip(["flex", backend]) {
            let mut losses = String::new();
            let result = trainer.run(Some(1), &mut |event| {
                if let Event::Step { losses: l, .. } = event {
                    losses = l
                        .iter()
                        .map(|(n, v)| format!("\"{n}\":{}", number(*v)))
                        .collect::<Vec<_>>()
                        .join(",");
                }
            });
            line += &format!(",\"{name}\":{{{losses}}}");
            if let Err(e) = result {
                line += &format!(",\"{name}_error\":{:?}", e.to_string());
                failed = true;
            }
            weights.push(
                trainer
                    .generator()
                    .map(|g| named(&g, None))
                    .unwrap_or_default(),
            );
        }
        // The generator parameter that differs most, relative to its own largest value (a NaN
        // counts as infinitely far, printed as null); parameters still near zero (under 1e-4,
        // such as the biases before a normalisation, which get no gradient) are left out.
        let worst = weights[0]
            .iter()
            .zip(&weights[1])
            .filter(|((_, r), _)| r.iter().any(|v| v.abs() >= 1e-4))
            .map(|((path, r), (_, o))| {
                let scale = r.iter().fold(0f32, |m, v| m.max(v.abs()));
                let diff = r.iter().zip(o).fold(0f32, |m, (a, b)| {
                    if (a - b).is_nan() {
                        f32::INFINITY
                    } else {
                        m.max((a - b).abs())
                    }
                });
                (diff / scale, path.clone())
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((relative, path)) = worst {
            line += &format!(
                ",\"worst_param\":\"{path}\",\"worst_relative\":{}",
                number(relative)
            );
        }
        println!("{line}}}");
        if failed {
            break; // a failed trainer has nothing more to compare
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
