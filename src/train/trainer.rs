//! The training loop: generators against discriminators, four modes, one infrastructure.
//!
//! * unpaired (CycleGAN): `g` turns content into the style, `f` turns it back; `d` judges the
//!   style domain and `d_content` the content domain; cycle and identity L1 keep the person.
//! * paired (pix2pix): `g` maps before → after; `d` judges (before, after) pairs; L1 to the target.
//! * styles: one multi-style `g` learns a style per sample (VGG19 content and Gram style losses),
//!   with a PatchGAN `d` that has a head per style.
//! * noise (the textbook GAN): `g` turns noise z into a portrait, `d` judges whole images;
//!   `ema`, a moving average of `g`'s weights, makes the samples and the exported pack.
//!
//! Progress, `losses.csv`, sample grids, the loss plot and atomic checkpoints (networks, optimiser
//! states, step, random state) are shared by all. Resuming restores all of it, so a resumed
//! run ends with the same weights as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use image::RgbImage;

use super::checkpoint::{self, CheckpointError, Progress};
use super::data::{self, Crop, Data, PairedFolder, batch};
use super::report::{self, LossLog};
use crate::create;
use crate::engine::CpuVgg;
use crate::learn::config::{ConfigError, Mode, TrainConfig};
use crate::learn::step::{Nets, StyleGrams, noise_step, styles_step, transfer_step};
use crate::learn::{Losses, StepError};
use crate::model::{Generator, LatentGenerator, Vgg19};
use crate::pack::StylePack;
use crate::photos::{self, FolderError, ImageFolder};
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
///
/// `PORTRAITIST_FUSION_REMOVE=ElementWise[,NAME…]` (in a build with a GPU backend) keeps fusion on
/// but without the named optimisations (`ElementWise`, `Matmul`, `Reduce`, `ReduceBroadcasted`,
/// `NHWCRelayout`): the way to find which one is wrong (`bench_native check`). Then this returns
/// false.
pub fn unfused() -> bool {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Ok(list) = std::env::var("PORTRAITIST_FUSION_REMOVE") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !burn_cubecl::fusion::BUILTIN_NAMES.contains(&name) {
                eprintln!(
                    "warning: PORTRAITIST_FUSION_REMOVE: `{name}` is none of Burn's fusions ({})",
                    burn_cubecl::fusion::BUILTIN_NAMES.join(", ")
                );
            }
            // Fails only once fusion has started, when the first call has already removed it.
            let _ = burn_cubecl::fusion::remove(name);
        }
        return false;
    }
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
    Data(#[from] FolderError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("invalid training configuration: {0}")]
    Config(#[from] ConfigError),
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
    Step(#[from] StepError),
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
    /// Content photos and a folder with one subfolder of images per style (styles mode).
    Styles { content: PathBuf, styles: PathBuf },
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
    /// Styles mode: the styles' target Gram matrices, `done` of `total` styles.
    StyleTargets {
        done: usize,
        total: usize,
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
    /// Styles mode: every style's target Gram matrices.
    style_grams: Option<StyleGrams>,
    /// Training on the CPU: VGG19 on our own CPU path (see [`crate::learn::step::vgg_terms`]).
    cpu_vgg: Option<CpuVgg>,
    /// Training on the CPU: the transfer modes' networks run forward and backward on our CPU
    /// path ([`crate::learn::step::transfer_gradients_cpu`]) rather than Burn's autodiff.
    cpu_step: bool,
}

/// A new run's generator becomes `pack`'s (see [`TrainConfig::init`]).
fn start_from_pack(
    nets: &mut Nets,
    pack_dir: &Path,
    config: &TrainConfig,
    device: &Device,
) -> Result<(), TrainError> {
    let fail = |why: String| TrainError::Usage(format!("init {}: {why}", pack_dir.display()));
    let Nets::Transfer(nets) = nets else {
        return Err(fail(
            "a noise run cannot start from a pack (only unpaired, paired and styles runs)".into(),
        ));
    };
    let pack = StylePack::load(pack_dir).map_err(|e| fail(e.to_string()))?;
    let theirs = pack.transfer_config().map_err(|e| fail(e.to_string()))?;
    let ours = config.generator_config();
    if *theirs != ours {
        return Err(fail(format!(
            "its network ({theirs:?}) is not this run's ({ours:?}): use its preset and styles"
        )));
    }
    if config.mode == Mode::Styles {
        let ids: Vec<&str> = pack.manifest.styles.iter().map(|s| s.id.as_str()).collect();
        if ids != config.styles {
            return Err(fail(format!(
                "its styles are {} but the style folder holds {}",
                ids.join(", "),
                config.styles.join(", ")
            )));
        }
    }
    nets.g = pack.generator(device).map_err(|e| fail(e.to_string()))?;
    Ok(())
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
        let expected_mode = match sources {
            Sources::Unpaired { .. } => Mode::Unpaired,
            Sources::Paired { .. } => Mode::Paired,
            Sources::Noise { .. } => Mode::Noise,
            Sources::Styles { .. } => Mode::Styles,
        };
        if config.mode != expected_mode {
            return Err(TrainError::Usage(format!(
                "this run is {:?} but the folders given are for {:?} training",
                config.mode, expected_mode
            )));
        }
        let style_folders = match sources {
            Sources::Styles { styles, .. } => data::style_folders(styles)?,
            _ => Vec::new(),
        };
        let config = if config.mode == Mode::Styles {
            let ids: Vec<String> = style_folders.iter().map(|(id, _)| id.clone()).collect();
            if resume_from.is_some() && config.styles != ids {
                return Err(TrainError::Usage(format!(
                    "this run learnt the styles {} but the style folder holds {}",
                    config.styles.join(", "),
                    ids.join(", ")
                )));
            }
            TrainConfig {
                styles: ids,
                ..config
            }
        } else {
            config
        };
        config.validate()?;
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
            Sources::Styles { content, .. } => Data::Styles {
                content: ImageFolder::load(content, size, cache_side, &mut loading)?,
                styles: style_folders
                    .iter()
                    .map(|(_, folder)| ImageFolder::load(folder, size, cache_side, &mut loading))
                    .collect::<Result<_, _>>()?,
            },
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
        if let (None, Some(pack)) = (&resume_from, &config.init) {
            start_from_pack(&mut nets, pack, &config, &training)?;
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
        let style_grams = vgg.as_ref().and_then(|vgg| {
            let mut progress = |done, total| events(Event::StyleTargets { done, total });
            data::style_grams(&data, &config, vgg, &training, &mut progress)
        });
        let cpu_step = device.clone().without_autodiff() == Device::flex();
        if cpu_step {
            crate::engine::cpu::keep_freed_memory();
        }
        let cpu_vgg = vgg
            .as_ref()
            .filter(|_| config.mode == Mode::Styles && cpu_step)
            .map(CpuVgg::new);
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
            style_grams,
            cpu_vgg,
            cpu_step,
        })
    }

    /// Train through Burn's autodiff even on the CPU (the reference our CPU path is tested and
    /// measured against: `cargo bench --bench training`).
    pub fn with_burn_autodiff(mut self) -> Self {
        self.cpu_vgg = None;
        self.cpu_step = false;
        self
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
                if let Some(opt) = &n.opt_styles {
                    writer.optimizer("g_styles", opt);
                }
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

    fn train_step(&mut self) -> Result<Losses, TrainError> {
        let values = match &mut self.nets {
            Nets::Transfer(nets) => {
                let batch = batch(&self.data, &self.config, &mut self.rng, &self.device);
                let lr = self.config.learning_rate_at(self.step);
                match (batch.mix, &self.vgg, &self.style_grams) {
                    (Some(mix), Some(vgg), Some(grams)) => styles_step(
                        nets,
                        batch.input,
                        batch.target,
                        mix,
                        lr,
                        &self.config,
                        vgg,
                        self.cpu_vgg.as_ref(),
                        grams,
                        &self.device,
                    )?,
                    _ => transfer_step(
                        nets,
                        batch.input,
                        batch.target,
                        lr,
                        &self.config,
                        self.vgg.as_ref(),
                        self.cpu_step,
                        &self.device,
                    )?,
                }
            }
            Nets::Noise(nets) => {
                let real = batch(&self.data, &self.config, &mut self.rng, &self.device).input;
                let lr = self.config.learning_rate_at(self.step);
                noise_step(
                    nets,
                    real,
                    lr,
                    self.step,
                    &self.config,
                    self.cpu_step,
                    &mut self.rng,
                    &self.device,
                )?
            }
        };
        // The step names its losses; the log's columns were fixed when the run began.
        let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
        if names != self.log.columns() {
            return Err(TrainError::Usage(format!(
                "the step's losses ({}) are not the log's columns ({})",
                names.join(", "),
                self.log.columns().join(", ")
            )));
        }
        Ok(values)
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
                // One column per style of a multi-style network (input | style 1 | style 2 …).
                let networks = nets.g.valid().to_device(&plain).each_style();
                for input in &self.samples {
                    let mut row = vec![input.clone()];
                    for g in &networks {
                        let out = g.forward(photos::to_tensor(std::slice::from_ref(input), &plain));
                        let values = out.into_data().try_to_vec::<f32>().unwrap_or_default();
                        if values.len() == 3 * size * size {
                            row.push(photos::to_image(&values, 0, size, size));
                        }
                    }
                    rows.push(row);
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
        let png = crate::image_io::encode(&photos::grid(&rows), crate::image_io::OutputFormat::Png)
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
