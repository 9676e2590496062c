//! `bench_native grads OUT`: the four training steps `bench/run` times (unpaired `tiny` at 128²,
//! paired `tiny` at 256², the styles step at 256² batch 4 with two styles, the noise GAN at 64²
//! batch 16), each once on our CPU path (the trainer's default on the CPU) from fixed seeds. For
//! each, `OUT/grads-CASE.safetensors` holds every network's weights (`w.NET.PATH`, Burn's
//! parameter paths), the inputs (`in.NAME`), our losses (`loss.NAME`) and our gradients
//! (`grad.NET.PATH`), and Burn's autodiff's gradients (`burn.NET.PATH`, the reference our tests
//! hold the CPU path to); the metadata holds the losses' settings and the generator's layer table.
//! `bench/reference/bench.py grads` computes the same losses and gradients in PyTorch from the
//! same weights and inputs and compares them.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use portraitist::engine::CpuVgg;
use portraitist::learn::step::{
    Nets, StyleGrams, TransferNets, mean_grams, noise_generator_gradients,
    noise_generator_gradients_cpu, noise_judge_gradients, noise_judge_gradients_cpu,
    styles_gradients, transfer_gradients, transfer_gradients_cpu,
};
use portraitist::model::{Preset, Vgg19};
use portraitist::rng::Rng;
use portraitist::train::{Mode, TrainConfig};

use super::Result;

/// Named tensors on their way into a SafeTensors file.
#[derive(Default)]
struct Tensors {
    entries: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl Tensors {
    fn add(&mut self, name: impl Into<String>, shape: &[usize], values: Vec<f32>) {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "shape and values"
        );
        self.entries.push((name.into(), shape.to_vec(), values));
    }

    fn tensor<const D: usize>(&mut self, name: &str, tensor: &Tensor<D>) {
        let values = tensor
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.add(name, &tensor.dims(), values);
    }

    fn losses(&mut self, losses: &[(&'static str, Tensor<1>)]) {
        for (name, value) in losses {
            self.tensor(&format!("loss.{name}"), value);
        }
    }

    /// Every float parameter of `module` as `w.NET.PATH` and, from the first of `grads` that has
    /// it, its gradient as `grad.NET.PATH` (a parameter no set has is an error: the reference
    /// compares every one).
    fn network<M: Module>(
        &mut self,
        net: &str,
        module: &M,
        grads: &[&GradientsParams],
        burn: &[&GradientsParams],
    ) {
        struct Visit<'a> {
            path: Vec<String>,
            net: &'a str,
            grads: &'a [&'a GradientsParams],
            burn: &'a [&'a GradientsParams],
            out: &'a mut Tensors,
        }
        impl ModuleVisitor for Visit<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let path = self.path.join(".");
                let read = |sets: &[&GradientsParams]| {
                    sets.iter()
                        .find_map(|g| g.get::<D>(param.id))
                        .unwrap_or_else(|| panic!("no gradient for {}.{path}", self.net))
                };
                let (grad, burn) = (read(self.grads), read(self.burn));
                self.out
                    .tensor(&format!("w.{}.{path}", self.net), &param.val());
                self.out.tensor(&format!("grad.{}.{path}", self.net), &grad);
                self.out.tensor(&format!("burn.{}.{path}", self.net), &burn);
            }
        }
        module.visit(&mut Visit {
            path: Vec::new(),
            net,
            grads,
            burn,
            out: self,
        });
    }

    fn meta(&mut self, key: &str, value: serde_json::Value) {
        self.metadata.insert(key.into(), value);
    }

    /// The SafeTensors bytes: an 8-byte little-endian header length, the JSON header (padded
    /// with spaces to 8 bytes), then every tensor's float32 values in order.
    fn write(&self, path: &Path) -> Result<()> {
        let mut header = serde_json::Map::new();
        let metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(metadata));
        let mut offset = 0usize;
        for (name, shape, values) in &self.entries {
            let end = offset + 4 * values.len();
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
            );
            offset = end;
        }
        let mut text = serde_json::Value::Object(header).to_string().into_bytes();
        text.resize(text.len().div_ceil(8) * 8, b' ');
        let mut bytes = Vec::with_capacity(8 + text.len() + offset);
        bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&text);
        for (_, _, values) in &self.entries {
            values
                .iter()
                .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        }
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn random(rng: &mut Rng, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let values = (0..shape.iter().product::<usize>())
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The settings the reference needs to compute the same losses.
fn settings(config: &TrainConfig) -> serde_json::Value {
    serde_json::json!({
        "mode": config.mode,
        "size": config.size,
        "batch": config.batch,
        "adversarial": config.adversarial,
        "cycle_weight": config.cycle_weight,
        "identity_weight": config.identity_weight,
        "l1_weight": config.l1_weight,
        "content_weight": config.perceptual_weight,
        "style_weight": config.style_weight,
        "adversarial_weight": config.adversarial_weight,
        "tv_weight": config.tv_weight,
        "mode_seeking_weight": config.mode_seeking_weight,
        "discriminator_width": config.discriminator_width,
        "discriminator_layers": config.discriminator_layers,
        "latent": config.latent_size,
        "styles": config.styles.len(),
    })
}

fn case_config(mode: Mode, size: usize) -> TrainConfig {
    let mut config = TrainConfig {
        preset: Preset::Tiny,
        size,
        ..TrainConfig::for_mode(mode)
    };
    if mode == Mode::Styles {
        config.batch = 4;
        config.styles = vec!["one".into(), "two".into()];
    }
    config
}

/// Writes `OUT/grads-CASE.safetensors` for each case and prints a line per case.
pub fn grads(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let device = Device::flex().autodiff();
    let cases: [(&str, Mode, usize); 4] = [
        ("unpaired", Mode::Unpaired, 128),
        ("paired", Mode::Paired, 256),
        ("styles", Mode::Styles, 256),
        ("noise", Mode::Noise, 64),
    ];
    for (name, mode, size) in cases {
        let config = case_config(mode, size);
        let mut file = Tensors::default();
        file.meta("case", name.into());
        file.meta("settings", settings(&config));
        let mut rng = Rng::new(11);
        let batch = config.batch;
        match mode {
            Mode::Unpaired | Mode::Paired => {
                let nets = TransferNets::init(&config, &device, &mut rng);
                let a = random(&mut rng, [batch, 3, size, size], &device);
                let b = random(&mut rng, [batch, 3, size, size], &device);
                let grads = transfer_gradients_cpu(&nets, a.clone(), b.clone(), &config, &device);
                let burn = transfer_gradients(&nets, a.clone(), b.clone(), &config, None, &device);
                file.tensor("in.a", &a);
                file.tensor("in.b", &b);
                file.losses(&grads.losses);
                file.network(
                    "G",
                    nets.generator(),
                    &[&grads.generator],
                    &[&burn.generator],
                );
                file.network(
                    "D",
                    nets.discriminator(),
                    &[&grads.discriminator],
                    &[&burn.discriminator],
                );
                if let (Some((f, dc)), Some((gf, gdc)), Some((bf, bdc))) =
                    (nets.way_back(), &grads.back, &burn.back)
                {
                    file.network("F", f, &[gf], &[bf]);
                    file.network("Dc", dc, &[gdc], &[bdc]);
                }
            }
            Mode::Styles => {
                let path = &config.vgg19;
                let bytes = std::fs::read(path).map_err(|e| {
                    format!("{}: {e} (run scripts/convert-vgg19.py)", path.display())
                })?;
                let vgg = Vgg19::from_bytes(&bytes, &device).map_err(|e| e.to_string())?;
                let nets = TransferNets::init(&config, &device, &mut rng);
                let content = random(&mut rng, [batch, 3, size, size], &device);
                let style = random(&mut rng, [batch, 3, size, size], &device);
                // Each style's target: the mean Gram matrices of two random crops.
                let targets: Vec<_> = (0..config.styles.len())
                    .map(|_| mean_grams(&vgg, [random(&mut rng, [2, 3, size, size], &device)]))
                    .collect();
                let grams = StyleGrams::new(&targets);
                let picks: Vec<f32> = (0..batch)
                    .flat_map(|i| [(i % 2 == 0) as u8 as f32, (i % 2 == 1) as u8 as f32])
                    .collect();
                let mix = Tensor::<2>::from_data(TensorData::new(picks, [batch, 2]), &device);
                let cpu = CpuVgg::new(&vgg);
                let run = |cpu: Option<&CpuVgg>| {
                    styles_gradients(
                        &nets,
                        content.clone(),
                        style.clone(),
                        mix.clone(),
                        &config,
                        &vgg,
                        cpu,
                        &grams,
                        &device,
                    )
                };
                let (grads, burn) = (run(Some(&cpu)), run(None));
                file.tensor("in.content", &content);
                file.tensor("in.style", &style);
                file.tensor("in.mix", &mix);
                for layer in 0..targets[0].len() {
                    let rows: Vec<_> = targets.iter().map(|t| t[layer].clone()).collect();
                    file.tensor(&format!("in.grams.{layer}"), &Tensor::cat(rows, 0));
                }
                file.losses(&grads.losses);
                let mut sets = vec![&grads.generator];
                sets.extend(grads.table.as_ref());
                let mut burn_sets = vec![&burn.generator];
                burn_sets.extend(burn.table.as_ref());
                file.network("G", nets.generator(), &sets, &burn_sets);
                file.network(
                    "D",
                    nets.discriminator(),
                    &[&grads.discriminator],
                    &[&burn.discriminator],
                );
            }
            Mode::Noise => {
                let Nets::Noise(nets) = Nets::init(&config, &device, &mut rng) else {
                    return Err("noise mode makes the noise GAN's networks".into());
                };
                let real = random(&mut rng, [batch, 3, size, size], &device);
                let noise = |rng: &mut Rng| -> Vec<Vec<f32>> {
                    (0..batch)
                        .map(|_| (0..config.latent_size).map(|_| rng.normal()).collect())
                        .collect()
                };
                let (z, z2) = (noise(&mut rng), noise(&mut rng));
                let judge = noise_judge_gradients_cpu(&nets, real.clone(), &z, &config, &device);
                let maker = noise_generator_gradients_cpu(&nets, &z2, &config, &device);
                let burn_judge = noise_judge_gradients(&nets, real.clone(), &z, &config, &device);
                let burn_maker = noise_generator_gradients(&nets, &z2, &config, &device);
                file.tensor("in.real", &real);
                file.add("in.z", &[batch, config.latent_size], z.concat());
                file.add("in.z2", &[batch, config.latent_size], z2.concat());
                file.losses(&judge.losses);
                file.losses(&maker.losses);
                file.network("G", nets.generator(), &[&maker.grads], &[&burn_maker.grads]);
                file.network(
                    "D",
                    nets.discriminator(),
                    &[&judge.grads],
                    &[&burn_judge.grads],
                );
            }
        }
        if mode != Mode::Noise {
            // The generator's layer table, from which the reference builds it.
            let layers = config.generator_config().layers();
            file.meta(
                "layers",
                serde_json::to_value(layers).map_err(|e| e.to_string())?,
            );
        }
        let path = out.join(format!("grads-{name}.safetensors"));
        file.write(&path)?;
        println!(
            "{{\"case\":\"{name}\",\"file\":\"{}\",\"tensors\":{}}}",
            path.display(),
            file.entries.len()
        );
    }
    Ok(())
}
