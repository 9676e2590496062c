//! The training loop: generators against discriminators, three modes, one infrastructure.
//!
//! * unpaired (CycleGAN): `g` turns content into the style, `f` turns it back; `d` judges the
//!   style domain and `d_content` the content domain; cycle and identity L1 keep the person.
//! * paired (pix2pix): `g` maps before → after; `d` judges (before, after) pairs; L1 to the target.
//! * noise (the textbook GAN): `g` turns noise z into a portrait, `d` judges whole images;
//!   `ema`, a moving average of `g`'s weights, makes the samples and the exported pack.
//!
//! Progress, `losses.csv`, sample grids, the loss plot and atomic checkpoints (networks, optimiser
//! states, step, random state) are shared by all. Resuming restores all of it, so a resumed
//! run ends with the same weights as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::checkpoint::{self, CheckpointError, Progress};
use super::config::{Mode, TrainConfig};
use super::data::{self, Crop, DataError, ImageFolder, PairedFolder, Skipped};
use super::losses::{adversarial, generator_adversarial, l1};
use super::report::{self, LossLog};
use crate::create;
use crate::model::{Discriminator, Generator, ImageDiscriminator, LatentGenerator, Vgg19, gram};
use crate::rng::Rng;

/// Turn Burn's kernel fusion off for this process, unless `BURN_FUSION_MAX_EXPLORATIONS` (or a
/// `burn.toml` that sets `max_explorations`) decides otherwise; returns whether fusion is off.
///
/// Burn 0.22.1's fusion computes parts of our training graphs wrongly on wgpu. Measured on an
/// H100 through Vulkan (`bench_native check wgpu`, see bench/README.md): `D(x)` agrees with the
/// CPU to 4e-6, yet the LSGAN loss `mean((D(x) - 1)²)` comes out 0.58 instead of 0.96, every
/// gradient is off by its own size, and training turns to NaN within six steps. Unfused, all
/// losses agree to 1e-6 and ten steps track the CPU run. Trainers call this; a program that
/// touches a GPU before it makes a trainer calls it first, since Burn reads its configuration
/// once (afterwards this can only report). It has no effect on the CPU, which does not fuse.
/// Burn's other settings (its `burn.toml`, its `BURN_*` variables) are kept.
pub fn unfused() -> bool {
    use burn::BurnConfig;
    use burn_std::config::RuntimeConfig;
    // What Burn would load by itself, with fusion turned off where nothing above decided.
    let config = BurnConfig::from_current_dir().override_from_env();
    if let Ok(mut value) = serde_json::to_value(&config) {
        let cap = &mut value["fusion"]["beam_search"]["max_explorations"];
        if cap.is_null() {
            *cap = 0.into();
        }
        if let Ok(config) = serde_json::from_value::<BurnConfig>(value) {
            BurnConfig::try_set(config);
        }
    }
    burn::runtime_config().fusion().beam_search.max_explorations == Some(0)
}

pub const CONFIG_FILE: &str = "config.toml";
pub const CHECKPOINTS: &str = "checkpoints";

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the {loss} loss became {value} at step {step}: training diverged. The last good checkpoint ({last}) is kept; \
         try a lower learning_rate or resume from it"
    )]
    Diverged {
        step: u64,
        loss: &'static str,
        value: f32,
        last: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Pack(#[from] crate::pack::PackError),
    #[error(transparent)]
    Render(#[from] crate::stylize::RenderError),
    #[error("cannot encode the image: {0}")]
    Encode(#[from] image::ImageError),
    #[error("{path}: {source}")]
    Decode {
        path: PathBuf,
        source: crate::image_io::DecodeError,
    },
    #[error(
        "{path}: the perceptual/style losses need VGG19 weights ({message}); run scripts/convert-vgg19.py to \
         create them, or set perceptual_weight and style_weight to 0"
    )]
    Vgg { path: PathBuf, message: String },
}

/// Where the photos come from.
#[derive(Debug, Clone)]
pub enum Sources {
    /// Content photos (e.g. portraits) and style photos, unrelated.
    Unpaired { content: PathBuf, style: PathBuf },
    /// A folder with `before/` and `after/` files of matching names.
    Paired { pairs: PathBuf },
    /// One folder of portraits to learn new ones from (noise mode).
    Noise { portraits: PathBuf },
}

/// What the trainer tells its front end.
pub enum Event<'a> {
    Loading {
        done: usize,
        total: usize,
    },
    Loaded {
        summary: &'a DataSummary,
    },
    Started {
        step: u64,
        total: u64,
    },
    Step {
        step: u64,
        total: u64,
        losses: &'a [(&'static str, f32)],
        images_per_second: f32,
    },
    Checkpoint {
        step: u64,
        path: &'a Path,
    },
    Samples {
        step: u64,
        path: &'a Path,
    },
}

/// Counts for the run log and the exported pack's training summary.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DataSummary {
    pub folders: Vec<(String, usize)>,
    pub skipped: Vec<(String, String)>,
}

enum Data {
    Unpaired {
        content: ImageFolder,
        style: ImageFolder,
    },
    Paired(PairedFolder),
    Noise(ImageFolder),
}

enum Nets {
    Transfer(Box<TransferNets>),
    Noise(Box<NoiseNets>),
}

/// Noise mode: the generator, its judge, and the generator's moving average (kept off the
/// autodiff graph).
struct NoiseNets {
    g: LatentGenerator,
    opt_g: ModuleOptimizer,
    d: ImageDiscriminator,
    opt_d: ModuleOptimizer,
    ema: LatentGenerator,
}

struct TransferNets {
    g: Generator,
    opt_g: ModuleOptimizer,
    d: Discriminator,
    opt_d: ModuleOptimizer,
    /// Unpaired mode only: the way back and its judge.
    back: Option<Back>,
}

struct Back {
    f: Generator,
    opt_f: ModuleOptimizer,
    d_content: Discriminator,
    opt_d_content: ModuleOptimizer,
}

pub struct Trainer {
    config: TrainConfig,
    run_dir: PathBuf,
    device: Device,
    data: Data,
    nets: Nets,
    step: u64,
    rng: Rng,
    log: LossLog,
    /// Transfer modes: the inputs shown in every sample grid.
    samples: Vec<RgbImage>,
    last_checkpoint: Option<u64>,
    vgg: Option<Vgg19>,
}

impl Trainer {
    /// Prepare a run in `run_dir`: a new one, or (`resume`) the one already there, whose own
    /// config is used (`steps` may be raised to continue further).
    pub fn new(
        sources: &Sources,
        run_dir: &Path,
        config: TrainConfig,
        resume: bool,
        device: &Device,
        events: &mut dyn FnMut(Event),
    ) -> Result<Self, TrainError> {
        unfused();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrainError::Io { path, source }
        };
        let config_path = run_dir.join(CONFIG_FILE);
        let resume_from = if resume {
            let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
            let saved = TrainConfig::from_toml(&text).map_err(TrainError::Config)?;
            let reader = checkpoint::Reader::latest(&run_dir.join(CHECKPOINTS))?;
            Some((saved, reader))
        } else {
            if checkpoint::Reader::latest(&run_dir.join(CHECKPOINTS)).is_ok() {
                return Err(TrainError::Usage(format!(
                    "{} already holds a run: pass --resume to continue it, or choose another --out",
                    run_dir.display()
                )));
            }
            None
        };
        let config = match &resume_from {
            Some((saved, _)) => TrainConfig {
                steps: config.steps.max(saved.steps),
                ..saved.clone()
            },
            None => config,
        };
        config.validate().map_err(TrainError::Config)?;
        let expected_mode = match sources {
            Sources::Unpaired { .. } => Mode::Unpaired,
            Sources::Paired { .. } => Mode::Paired,
            Sources::Noise { .. } => Mode::Noise,
        };
        if config.mode != expected_mode {
            return Err(TrainError::Usage(format!(
                "this run is {:?} but the folders given are for {:?} training",
                config.mode, expected_mode
            )));
        }
        std::fs::create_dir_all(run_dir.join("samples")).map_err(io(run_dir))?;
        crate::atomic::write(&config_path, config.to_toml().as_bytes()).map_err(|source| {
            TrainError::Io {
                path: config_path.clone(),
                source,
            }
        })?;

        let size = config.size as u32;
        let cache_side = (config.size as f32 * config.cache_scale) as u32;
        let mut loading = |done, total| events(Event::Loading { done, total });
        let data = match sources {
            Sources::Unpaired { content, style } => Data::Unpaired {
                content: ImageFolder::load(content, size, cache_side, &mut loading)?,
                style: ImageFolder::load(style, size, cache_side, &mut loading)?,
            },
            Sources::Paired { pairs } => {
                Data::Paired(PairedFolder::load(pairs, size, cache_side, &mut loading)?)
            }
            // Whole portraits (scaled so the shorter side is `size`), only flipped: a crop that
            // cuts the face would teach the generator cut faces.
            Sources::Noise { portraits } => {
                Data::Noise(ImageFolder::load(portraits, size, size, &mut loading)?)
            }
        };
        let summary = data.summary();
        write_run_log(run_dir, &summary).map_err(io(run_dir))?;
        events(Event::Loaded { summary: &summary });

        let training = device.clone().without_autodiff().autodiff();
        let mut rng = Rng::new(config.seed);
        let mut nets = Nets::init(&config, &training, &mut rng);
        let mut step = 0;
        let mut last_checkpoint = None;
        if let Some((_, reader)) = &resume_from {
            nets = nets.load(reader)?;
            step = reader.progress.step;
            rng = reader.progress.rng;
            last_checkpoint = Some(step);
        }
        let vgg = if config.uses_vgg() {
            let path = &config.vgg19;
            let bytes = std::fs::read(path).map_err(|e| TrainError::Vgg {
                path: path.clone(),
                message: e.to_string(),
            })?;
            Some(
                Vgg19::from_bytes(&bytes, &training).map_err(|e| TrainError::Vgg {
                    path: path.clone(),
                    message: e.to_string(),
                })?,
            )
        } else {
            None
        };
        let columns = config.loss_columns();
        let log_path = run_dir.join("losses.csv");
        let log = LossLog::open(&log_path, &columns, resume_from.as_ref().map(|_| step))
            .map_err(io(&log_path))?;
        let samples = data
            .sample_sources()
            .iter()
            .take(config.sample_count)
            .map(|image| Crop::center(image).apply(image, size))
            .collect();
        Ok(Self {
            config,
            run_dir: run_dir.to_path_buf(),
            device: training,
            data,
            nets,
            step,
            rng,
            log,
            samples,
            last_checkpoint,
            vgg,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    /// The current content → style generator of a transfer run (for tests and export).
    pub fn generator(&self) -> Option<Generator> {
        match &self.nets {
            Nets::Transfer(nets) => Some(nets.g.valid()),
            Nets::Noise(_) => None,
        }
    }

    /// The moving-average noise generator of a noise run (what samples and exports use).
    pub fn latent_generator(&self) -> Option<LatentGenerator> {
        match &self.nets {
            Nets::Noise(nets) => Some(nets.ema.clone()),
            Nets::Transfer(_) => None,
        }
    }

    /// Train until `config.steps` (or `stop_after` more steps, for tests), checkpointing as set.
    pub fn run(
        &mut self,
        stop_after: Option<u64>,
        events: &mut dyn FnMut(Event),
    ) -> Result<(), TrainError> {
        let total = self.config.steps;
        let end = stop_after.map_or(total, |n| (self.step + n).min(total));
        events(Event::Started {
            step: self.step,
            total,
        });
        let started = Instant::now();
        let first = self.step;
        while self.step < end {
            let losses = self.train_step()?;
            self.step += 1;
            if let Some((name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) {
                return Err(TrainError::Diverged {
                    step: self.step,
                    loss: name,
                    value: *value,
                    last: self
                        .last_checkpoint
                        .map_or("none yet".into(), checkpoint::step_name),
                });
            }
            let values: Vec<f32> = losses.iter().map(|(_, v)| *v).collect();
            let images = (self.step - first) as f32 * self.config.batch as f32;
            let images_per_second = images / started.elapsed().as_secs_f32().max(1e-6);
            if self.step.is_multiple_of(self.config.log_every) || self.step == end {
                self.log
                    .append(self.step, &values)
                    .map_err(|source| TrainError::Io {
                        path: self.run_dir.join("losses.csv"),
                        source,
                    })?;
            }
            events(Event::Step {
                step: self.step,
                total,
                losses: &losses,
                images_per_second,
            });
            let last = self.step == total;
            if self.step.is_multiple_of(self.config.sample_every) || last {
                let path = self.write_samples()?;
                events(Event::Samples {
                    step: self.step,
                    path: &path,
                });
            }
            if self.step.is_multiple_of(self.config.checkpoint_every) || last {
                let path = self.checkpoint()?;
                events(Event::Checkpoint {
                    step: self.step,
                    path: &path,
                });
            }
        }
        Ok(())
    }

    /// Write a checkpoint of the current state now.
    pub fn checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        let mut writer = checkpoint::Writer::default();
        match &self.nets {
            Nets::Transfer(n) => {
                writer.module("g", &n.g.valid());
                writer.optimizer("g", &n.opt_g);
                writer.module("d", &n.d.valid());
                writer.optimizer("d", &n.opt_d);
                if let Some(back) = &n.back {
                    writer.module("f", &back.f.valid());
                    writer.optimizer("f", &back.opt_f);
                    writer.module("d_content", &back.d_content.valid());
                    writer.optimizer("d_content", &back.opt_d_content);
                }
            }
            Nets::Noise(n) => {
                writer.module("g", &n.g.valid());
                writer.optimizer("g", &n.opt_g);
                writer.module("d", &n.d.valid());
                writer.optimizer("d", &n.opt_d);
                writer.module("ema", &n.ema);
            }
        }
        let progress = Progress {
            step: self.step,
            rng: self.rng,
        };
        let path = writer.commit(
            &self.run_dir.join(CHECKPOINTS),
            &progress,
            self.config.keep_checkpoints,
        )?;
        self.last_checkpoint = Some(self.step);
        Ok(path)
    }

    fn train_step(&mut self) -> Result<Vec<(&'static str, f32)>, TrainError> {
        let values = match &mut self.nets {
            Nets::Transfer(nets) => {
                let (input, target) = batch(&self.data, &self.config, &mut self.rng, &self.device);
                let lr = self.config.learning_rate_at(self.step);
                transfer_step(
                    nets,
                    input,
                    target,
                    lr,
                    &self.config,
                    self.vgg.as_ref(),
                    &self.device,
                )?
            }
            Nets::Noise(nets) => {
                let (real, _) = batch(&self.data, &self.config, &mut self.rng, &self.device);
                let lr = self.config.learning_rate_at(self.step);
                noise_step(
                    nets,
                    real,
                    lr,
                    self.step,
                    &self.config,
                    &mut self.rng,
                    &self.device,
                )?
            }
        };
        Ok(self.log.columns().iter().copied().zip(values).collect())
    }

    /// `samples/step-NNNNNNN.png` and the loss plot. Transfer runs show each fixed sample as
    /// input | output; noise runs a grid of the portraits of seeds 0, 1, 2, … (what
    /// `portraitist generate --seed 0` makes from the exported pack).
    fn write_samples(&self) -> Result<PathBuf, TrainError> {
        let plain = self.device.clone().without_autodiff();
        let size = self.config.size;
        let mut rows = Vec::new();
        match &self.nets {
            Nets::Transfer(nets) => {
                let g = nets.g.valid().to_device(&plain);
                for input in &self.samples {
                    let out = g.forward(data::to_tensor(std::slice::from_ref(input), &plain));
                    let values = out.into_data().try_to_vec::<f32>().unwrap_or_default();
                    if values.len() == 3 * size * size {
                        rows.push(vec![input.clone(), data::to_image(&values, 0, size, size)]);
                    }
                }
            }
            Nets::Noise(nets) => {
                let side = self.config.sample_count.max(1);
                let creator = create::Creator::new(
                    nets.ema.clone(),
                    self.config.latent_generator_config(),
                    plain.clone(),
                );
                let seeds: Vec<u64> = (0..(side * side) as u64).collect();
                let images = pollster::block_on(creator.render_seeds(&seeds)).map_err(|e| {
                    TrainError::Usage(format!("rendering the sample grid failed: {e}"))
                })?;
                rows = images.chunks(side).map(<[RgbImage]>::to_vec).collect();
            }
        }
        // Small training crops are hard to judge: show them at least 128 pixels tall.
        let zoom = (128 / size.max(1)).max(1) as u32;
        if zoom > 1 {
            let nearest = image::imageops::FilterType::Nearest;
            let enlarge = |img: &RgbImage| {
                image::imageops::resize(img, img.width() * zoom, img.height() * zoom, nearest)
            };
            rows = rows
                .iter()
                .map(|row| row.iter().map(enlarge).collect())
                .collect();
        }
        let path = self
            .run_dir
            .join("samples")
            .join(format!("{}.png", checkpoint::step_name(self.step)));
        let png = crate::image_io::encode(&report::grid(&rows), crate::image_io::OutputFormat::Png)
            .map_err(|e| TrainError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        crate::atomic::write(&path, &png).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        // The plot is a convenience; a plotting failure must not stop training.
        let _ = report::plot_losses(&self.log, &self.run_dir.join("losses.png"));
        Ok(path)
    }
}

/// One transfer step: generators first (adversarial + cycle/identity or L1, + VGG losses),
/// then the discriminators on real and (detached) generated images.
fn transfer_step(
    nets: &mut TransferNets,
    input: Tensor<4>,
    target: Tensor<4>,
    lr: f64,
    config: &TrainConfig,
    vgg: Option<&Vgg19>,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let kind = config.adversarial;
    Ok(match &mut nets.back {
        Some(back) => {
            let (a, b) = (input, target);
            let fake_b = nets.g.forward(a.clone());
            let fake_a = back.f.forward(b.clone());
            let g_adv = generator_adversarial(kind, nets.d.forward(fake_b.clone()));
            let f_adv = generator_adversarial(kind, back.d_content.forward(fake_a.clone()));
            let cycle = l1(back.f.forward(fake_b.clone()), a.clone())
                + l1(nets.g.forward(fake_a.clone()), b.clone());
            let identity = if config.identity_weight > 0.0 {
                l1(nets.g.forward(b.clone()), b.clone()) + l1(back.f.forward(a.clone()), a.clone())
            } else {
                Tensor::zeros([1], device)
            };
            let (perceptual, style) = vgg_losses(vgg, config, &fake_b, &a, &b, device);
            let loss = g_adv.clone()
                + f_adv.clone()
                + cycle.clone() * config.cycle_weight
                + identity.clone() * (config.cycle_weight * config.identity_weight)
                + perceptual.clone() * config.perceptual_weight
                + style.clone() * config.style_weight;
            let mut grads = loss.backward();
            let grads_g = GradientsParams::from_module(&mut grads, &nets.g);
            let grads_f = GradientsParams::from_module(&mut grads, &back.f);
            nets.g = nets.opt_g.step(lr, nets.g.clone(), grads_g);
            back.f = back.opt_f.step(lr, back.f.clone(), grads_f);

            let d_style = (adversarial(kind, nets.d.forward(b), true)
                + adversarial(kind, nets.d.forward(fake_b.detach()), false))
                * 0.5;
            let d_content = (adversarial(kind, back.d_content.forward(a), true)
                + adversarial(kind, back.d_content.forward(fake_a.detach()), false))
                * 0.5;
            let mut grads = (d_style.clone() + d_content.clone()).backward();
            let grads_d = GradientsParams::from_module(&mut grads, &nets.d);
            let grads_dc = GradientsParams::from_module(&mut grads, &back.d_content);
            nets.d = nets.opt_d.step(lr, nets.d.clone(), grads_d);
            back.d_content = back
                .opt_d_content
                .step(lr, back.d_content.clone(), grads_dc);
            let mut losses = vec![g_adv, f_adv, cycle, identity, d_style, d_content];
            if vgg.is_some() {
                losses.extend([perceptual, style]);
            }
            read_scalars(losses)?
        }
        None => {
            let (before, after) = (input, target);
            let fake = nets.g.forward(before.clone());
            let pair = |x: Tensor<4>| Tensor::cat(vec![before.clone(), x], 1);
            let g_adv = generator_adversarial(kind, nets.d.forward(pair(fake.clone())));
            let l1_loss = l1(fake.clone(), after.clone());
            let (perceptual, style) = vgg_losses(vgg, config, &fake, &after, &after, device);
            let loss = g_adv.clone()
                + l1_loss.clone() * config.l1_weight
                + perceptual.clone() * config.perceptual_weight
                + style.clone() * config.style_weight;
            let mut grads = loss.backward();
            let grads_g = GradientsParams::from_module(&mut grads, &nets.g);
            nets.g = nets.opt_g.step(lr, nets.g.clone(), grads_g);
            let d_loss = (adversarial(kind, nets.d.forward(pair(after)), true)
                + adversarial(kind, nets.d.forward(pair(fake.detach())), false))
                * 0.5;
            let mut grads = d_loss.backward();
            let grads_d = GradientsParams::from_module(&mut grads, &nets.d);
            nets.d = nets.opt_d.step(lr, nets.d.clone(), grads_d);
            let mut losses = vec![g_adv, l1_loss, d_loss];
            if vgg.is_some() {
                losses.extend([perceptual, style]);
            }
            read_scalars(losses)?
        }
    })
}

/// Perceptual (feature L1 to `content`) and style (Gram distance to `style`) losses of `output`;
/// zeros without a VGG network.
fn vgg_losses(
    vgg: Option<&Vgg19>,
    config: &TrainConfig,
    output: &Tensor<4>,
    content: &Tensor<4>,
    style: &Tensor<4>,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let Some(vgg) = vgg else {
        return (Tensor::zeros([1], device), Tensor::zeros([1], device));
    };
    let out = vgg.features(output.clone()).0;
    let mut perceptual = Tensor::zeros([1], device);
    if config.perceptual_weight > 0.0 {
        let reference = vgg.features(content.clone().detach()).0;
        for (o, r) in out.iter().zip(reference) {
            perceptual = perceptual + (o.clone() - r.detach()).abs().mean();
        }
    }
    let mut style_loss = Tensor::zeros([1], device);
    if config.style_weight > 0.0 {
        let reference = vgg.features(style.clone().detach()).0;
        for (o, r) in out.iter().zip(reference) {
            let (go, gr) = (gram(o), gram(&r).detach());
            // Compare with the mean style Gram matrix of the batch.
            let gr = gr.mean_dim(0);
            let [b, c, _] = go.dims();
            style_loss = style_loss + (go - gr.expand([b, c, c])).square().mean();
        }
    }
    (perceptual, style_loss)
}

/// A batch drawn with the run's random state: (input, target) for transfer runs, (real
/// portraits, the same) for noise runs.
fn batch(
    data: &Data,
    config: &TrainConfig,
    rng: &mut Rng,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let size = config.size as u32;
    let mut inputs = Vec::with_capacity(config.batch);
    let mut targets = Vec::with_capacity(config.batch);
    for _ in 0..config.batch {
        match data {
            Data::Unpaired { content, style } => {
                let image = &content.images[rng.below(content.len())];
                let mut input = Crop::random(image, size, rng).apply(image, size);
                data::jitter(&mut input, config.jitter, rng);
                let image = &style.images[rng.below(style.len())];
                inputs.push(input);
                targets.push(Crop::random(image, size, rng).apply(image, size));
            }
            Data::Paired(pairs) => {
                let i = rng.below(pairs.before.len());
                let crop = Crop::random(&pairs.before.images[i], size, rng);
                inputs.push(crop.apply(&pairs.before.images[i], size));
                targets.push(crop.apply(&pairs.after.images[i], size));
            }
            Data::Noise(portraits) => {
                let image = &portraits.images[rng.below(portraits.len())];
                let mut portrait = Crop::random(image, size, rng).apply(image, size);
                data::jitter(&mut portrait, config.jitter, rng);
                inputs.push(portrait);
            }
        }
    }
    let inputs = data::to_tensor(&inputs, device);
    let targets = if targets.is_empty() {
        inputs.clone()
    } else {
        data::to_tensor(&targets, device)
    };
    (inputs, targets)
}

/// One noise step, as in the seeds: the discriminator learns to tell `real` portraits from
/// generated ones, then the generator learns to fool it on fresh noise; the moving average
/// follows the generator. Returns g_adv, d and the mean real and fake scores.
fn noise_step(
    nets: &mut NoiseNets,
    real: Tensor<4>,
    lr: f64,
    step: u64,
    config: &TrainConfig,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let kind = config.adversarial;
    let mut noise = || {
        let values: Vec<f32> = (0..config.batch * config.latent_size)
            .map(|_| rng.normal())
            .collect();
        Tensor::<2>::from_data(
            TensorData::new(values, [config.batch, config.latent_size]),
            device,
        )
    };
    let fake = nets.g.forward(noise()).detach();
    let real_scores = nets.d.forward(real);
    let fake_scores = nets.d.forward(fake);
    let d_loss = adversarial(kind, real_scores.clone(), true)
        + adversarial(kind, fake_scores.clone(), false);
    let mut grads = d_loss.backward();
    let grads_d = GradientsParams::from_module(&mut grads, &nets.d);
    nets.d = nets.opt_d.step(lr, nets.d.clone(), grads_d);

    let z = noise();
    let fake = nets.g.forward(z.clone());
    let g_adv = generator_adversarial(kind, nets.d.forward(fake.clone()));
    let seeking = mode_seeking(fake, z, device);
    let g_loss = g_adv.clone() + seeking.clone() * config.mode_seeking_weight;
    let mut grads = g_loss.backward();
    let grads_g = GradientsParams::from_module(&mut grads, &nets.g);
    nets.g = nets.opt_g.step(lr, nets.g.clone(), grads_g);

    // A short warm-up (decay (1+t)/(10+t)) so early averages do not cling to the random start.
    let decay = config
        .ema_decay
        .min((1.0 + step as f32) / (10.0 + step as f32));
    nets.ema = moving_average(nets.ema.clone(), &nets.g.valid(), decay);
    read_scalars(vec![
        g_adv,
        d_loss,
        real_scores.mean().reshape([1]),
        fake_scores.mean().reshape([1]),
        seeking,
    ])
}

/// The mode-seeking term of MSGAN (Mao et al. 2019): for pairs of samples, the inverse of how
/// far apart their images are relative to how far apart their noise vectors are. Minimising it
/// makes the generator use its noise, against mode collapse. Zero for a batch of one.
fn mode_seeking(fake: Tensor<4>, z: Tensor<2>, device: &Device) -> Tensor<1> {
    let [batch, ..] = fake.dims();
    let half = batch / 2;
    if half == 0 {
        return Tensor::zeros([1], device);
    }
    let images = (fake.clone().narrow(0, 0, half) - fake.narrow(0, half, half))
        .abs()
        .mean();
    let noise = (z.clone().narrow(0, 0, half) - z.narrow(0, half, half))
        .abs()
        .mean();
    (images / noise + 1e-5).recip()
}

/// `average · decay + current · (1 - decay)`, parameter by parameter.
fn moving_average<M: Module>(average: M, current: &M, decay: f32) -> M {
    struct Collect(Vec<TensorData>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data());
        }
    }
    struct Blend {
        current: std::vec::IntoIter<TensorData>,
        decay: f32,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let decay = self.decay;
            let next = self.current.next();
            param.map(|t| match next {
                Some(data) => {
                    let current = Tensor::<D>::from_data(data, &t.device());
                    t * decay + current * (1.0 - decay)
                }
                None => t,
            })
        }
    }
    let mut collect = Collect(Vec::new());
    current.visit(&mut collect);
    average.map(&mut Blend {
        current: collect.0.into_iter(),
        decay,
    })
}

fn read_scalars(losses: Vec<Tensor<1>>) -> Result<Vec<f32>, TrainError> {
    let all = Tensor::cat(losses.into_iter().map(|t| t.detach()).collect(), 0);
    all.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Usage(format!("reading losses from the device failed: {e:?}")))
}

impl Data {
    fn summary(&self) -> DataSummary {
        let folders: Vec<&ImageFolder> = match self {
            Data::Unpaired { content, style } => vec![content, style],
            Data::Paired(p) => vec![&p.before, &p.after],
            Data::Noise(portraits) => vec![portraits],
        };
        DataSummary {
            folders: folders
                .iter()
                .map(|f| (f.root.display().to_string(), f.len()))
                .collect(),
            skipped: folders
                .iter()
                .flat_map(|f| f.skipped.iter())
                .map(|Skipped { path, reason }| (path.display().to_string(), reason.clone()))
                .collect(),
        }
    }

    fn sample_sources(&self) -> &[RgbImage] {
        match self {
            Data::Unpaired { content, .. } => &content.images,
            Data::Paired(p) => &p.before.images,
            Data::Noise(_) => &[],
        }
    }
}

fn write_run_log(run_dir: &Path, summary: &DataSummary) -> std::io::Result<()> {
    let mut text = String::from("# Data\n");
    for (folder, count) in &summary.folders {
        text.push_str(&format!("{folder}: {count} photos\n"));
    }
    text.push_str(&format!("\n# Skipped files ({})\n", summary.skipped.len()));
    for (path, reason) in &summary.skipped {
        text.push_str(&format!("{path}: {reason}\n"));
    }
    std::fs::write(run_dir.join("run.log"), text)?;
    std::fs::write(
        run_dir.join("data.json"),
        serde_json::to_vec_pretty(summary).unwrap_or_default(),
    )
}

impl Nets {
    fn init(config: &TrainConfig, device: &Device, rng: &mut Rng) -> Self {
        match config.mode {
            Mode::Unpaired | Mode::Paired => {
                Nets::Transfer(Box::new(TransferNets::init(config, device, rng)))
            }
            Mode::Noise => {
                let mut init_rng = rng.fork(0x1417);
                let g = init_weights_with(
                    config.latent_generator_config().init(device),
                    &mut init_rng,
                    InitScale::He,
                );
                let d = init_weights_with(
                    config.image_discriminator_config().init(device),
                    &mut init_rng,
                    InitScale::He,
                );
                Nets::Noise(Box::new(NoiseNets {
                    ema: g.valid(),
                    g,
                    opt_g: adam(config),
                    d,
                    opt_d: adam(config),
                }))
            }
        }
    }

    fn load(self, reader: &checkpoint::Reader) -> Result<Self, CheckpointError> {
        Ok(match self {
            Nets::Transfer(nets) => Nets::Transfer(Box::new(nets.load(reader)?)),
            Nets::Noise(n) => {
                let mut n = *n;
                n.g = reader.module("g", n.g)?;
                n.opt_g = reader.optimizer("g", n.opt_g)?;
                n.d = reader.module("d", n.d)?;
                n.opt_d = reader.optimizer("d", n.opt_d)?;
                n.ema = reader.module("ema", n.ema)?;
                Nets::Noise(Box::new(n))
            }
        })
    }
}

fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.beta1 as f32)
        .with_beta_2(config.beta2 as f32)
        .with_epsilon(1e-8)
        .init()
}

impl TransferNets {
    fn init(config: &TrainConfig, device: &Device, rng: &mut Rng) -> Self {
        let g_config = config.generator_config();
        let d_config = config.discriminator_config();
        let mut init_rng = rng.fork(0x1417);
        let adam = || adam(config);
        let back = (config.mode == Mode::Unpaired).then(|| Back {
            f: init_weights(g_config.init(device), &mut init_rng),
            opt_f: adam(),
            d_content: init_weights(d_config.init(device), &mut init_rng),
            opt_d_content: adam(),
        });
        Self {
            g: init_weights(g_config.init(device), &mut init_rng),
            opt_g: adam(),
            d: init_weights(d_config.init(device), &mut init_rng),
            opt_d: adam(),
            back,
        }
    }

    fn load(mut self, reader: &checkpoint::Reader) -> Result<Self, CheckpointError> {
        self.g = reader.module("g", self.g)?;
        self.opt_g = reader.optimizer("g", self.opt_g)?;
        self.d = reader.module("d", self.d)?;
        self.opt_d = reader.optimizer("d", self.opt_d)?;
        if let Some(mut back) = self.back.take() {
            back.f = reader.module("f", back.f)?;
            back.opt_f = reader.optimizer("f", back.opt_f)?;
            back.d_content = reader.module("d_content", back.d_content)?;
            back.opt_d_content = reader.optimizer("d_content", back.opt_d_content)?;
            self.back = Some(back);
        }
        Ok(self)
    }
}

/// How large initial weights are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitScale {
    /// N(0, 0.02), as in DCGAN, pix2pix and CycleGAN (networks with normalisation layers).
    Dcgan,
    /// N(0, 2 / fan-in) (He et al.): keeps activations at scale through layers without
    /// normalisation, such as the noise mode's discriminator.
    He,
}

/// Initialise weights from the run's own random stream, as in pix2pix/CycleGAN: convolution
/// weights N(0, 0.02), biases 0, norm scales 1 and shifts 0. Using our generator (not the
/// backend's) makes a run's start depend on its seed alone.
pub fn init_weights<M: Module>(module: M, rng: &mut Rng) -> M {
    init_weights_with(module, rng, InitScale::Dcgan)
}

/// [`init_weights`] with a choice of weight scale.
pub fn init_weights_with<M: Module>(module: M, rng: &mut Rng, scale: InitScale) -> M {
    struct Init<'a> {
        rng: &'a mut Rng,
        path: Vec<String>,
        scale: InitScale,
    }
    impl ModuleMapper for Init<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let field = self.path.last().map(String::as_str).unwrap_or("");
            let rng = &mut *self.rng;
            let scale = self.scale;
            param.map(|t| {
                let shape = t.shape();
                let n = shape.num_elements();
                // Convolutions are [out, in, k, k], linear layers [in, out].
                let fan_in = match D {
                    4 => shape.as_slice()[1..].iter().product::<usize>(),
                    _ => shape.as_slice()[0],
                };
                let std = match scale {
                    InitScale::Dcgan => 0.02f32,
                    InitScale::He => (2.0 / fan_in.max(1) as f32).sqrt(),
                };
                let values: Vec<f32> = match field {
                    "weight" if D > 1 => (0..n).map(|_| std * rng.normal()).collect(),
                    "gamma" => vec![1.0; n],
                    _ => vec![0.0; n],
                };
                let fresh = Tensor::from_data(TensorData::new(values, shape), &t.device());
                if t.is_require_grad() {
                    fresh.require_grad()
                } else {
                    fresh
                }
            })
        }
    }
    module.map(&mut Init {
        rng,
        path: Vec::new(),
        scale,
    })
}
