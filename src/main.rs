//! The native command line: `portraitist stylize | styles | train | export | generate | grade |
//! eval`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::create;
use portraitist::eval::{self, Truth};
use portraitist::image_io::{self, OutputFormat};
use portraitist::model::{Preset, Vgg19};
use portraitist::pack::{EvaluationSummary, Index, PackKind, StylePack};
use portraitist::stylize::{self, DEFAULT_TILE, Look};
use portraitist::train::data::ImageFolder;
use portraitist::train::export::{ExportRequest, WeightsSource, export, export_safetensors};
use portraitist::train::looks::LookName;
use portraitist::train::{AdversarialLoss, Event, Mode, Sources, TrainConfig, Trainer};

#[derive(Parser)]
#[command(
    name = "portraitist",
    version,
    about = "Portrait styles learned by a GAN, applied offline"
)]
struct Cli {
    /// Folder of style packs (with index.json); they add to the built-in styles and override
    /// built-in ones of the same id.
    #[arg(
        long,
        global = true,
        default_value = "models",
        env = "PORTRAITIST_MODELS"
    )]
    models: PathBuf,
    /// Compute backend.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// Burn's flex backend on the CPU (all cores).
    Cpu,
    /// GPU through wgpu (Vulkan, Metal or DX12); needs a build with `--features wgpu`.
    Wgpu,
}

#[derive(Subcommand)]
enum Command {
    /// Apply a style to one or more photos.
    Stylize(StylizeArgs),
    /// List the style packs in the models folder.
    Styles,
    /// Learn a style from folders of photos, or (--mode noise) a portrait generator from one
    /// folder of portraits (a GAN); checkpoints and resumes.
    Train(TrainArgs),
    /// Turn a training run into a style pack in the models folder.
    Export(ExportArgs),
    /// Make new portraits with a noise pack: one PNG per seed, or a latent walk between two.
    Generate(GenerateArgs),
    /// Build before/after training pairs by applying a known parametric look to photos.
    Grade(GradeArgs),
    /// Measure a style on a folder of photos: content kept, style matched, error against a known
    /// answer, speed. Writes report.md, contact.png and summary.json.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Style id in the models folder, or a pack folder.
    #[arg(long)]
    style: String,
    /// Folder of photos to evaluate on (held out from training), searched recursively.
    #[arg(long)]
    photos: PathBuf,
    /// Output folder for the report and the contact sheet.
    #[arg(long)]
    out: PathBuf,
    /// Style photos to measure the style match against (e.g. the training style set).
    #[arg(long)]
    style_set: Option<PathBuf>,
    /// The true result is this known look applied to each photo (see `grade`).
    #[arg(long, value_parser = look_name, conflicts_with = "truth")]
    look: Option<LookName>,
    /// Folder of true results named like the photos.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// VGG19 weights for the feature and Gram distances; without the file those are left out.
    #[arg(long, default_value = "data/vgg19/vgg19.bin")]
    vgg19: PathBuf,
    /// Fit photos within this many pixels before stylizing.
    #[arg(long, default_value_t = 512)]
    max_side: u32,
    /// Also store the means in the pack's style.json.
    #[arg(long)]
    record: bool,
    /// Noise packs: the training portraits, for the memorisation check (samples beside their
    /// nearest training portrait). --photos are then the held-out real portraits.
    #[arg(long)]
    training: Option<PathBuf>,
    /// Noise packs: how many portraits to generate (seeds 0, 1, …).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    samples: u64,
}

#[derive(clap::Args)]
struct GradeArgs {
    /// The look to apply.
    #[arg(long, value_parser = look_name)]
    look: LookName,
    /// Photos to grade.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder: receives before/NAME.png (the photo) and after/NAME.png (graded).
    #[arg(long)]
    out: PathBuf,
    /// Downscale photos whose longer side exceeds this many pixels first.
    #[arg(long, default_value_t = 1024)]
    max_side: u32,
}

fn look_name(s: &str) -> Result<LookName, String> {
    LookName::parse(s).ok_or_else(|| {
        let names: Vec<&str> = LookName::ALL.iter().map(|l| l.name()).collect();
        format!("unknown look `{s}`; known: {}", names.join(", "))
    })
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Noise pack id in the models folder, or a pack folder.
    #[arg(long)]
    style: String,
    /// How many portraits (seeds SEED, SEED+1, …).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    count: u64,
    /// First seed; the same seed gives the same portrait on every machine and backend.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Instead of COUNT portraits: a latent walk from SEED's portrait to this seed's, as frames.
    #[arg(long, value_name = "TO_SEED")]
    interpolate: Option<u64>,
    /// Frames of the walk (both ends included).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(2..=1000))]
    frames: u64,
    /// Enlarge each image this many times (Lanczos).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// Also write all images as one sheet, this many per row, without gaps (`grid.png`), as the
    /// page's Create view shows them.
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u32).range(1..=64))]
    grid: Option<u32>,
    /// Output folder; created if missing.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// What to learn: `unpaired` (--content + --style), `paired` (--pairs) or `noise` (new
    /// portraits from --content alone). Default: from the folders given, or the --config's mode.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Content photos (e.g. portraits), searched recursively; in noise mode, the portraits to
    /// learn from.
    #[arg(long, conflicts_with = "pairs")]
    content: Option<PathBuf>,
    /// Photos in the style to learn, searched recursively.
    #[arg(long)]
    style: Option<PathBuf>,
    /// Paired training instead: a folder with before/ and after/ files of matching names.
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Run folder: config copy, losses, samples, checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// TOML file with hyper-parameters (see README); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    preset: Option<Preset>,
    /// Crop side in pixels (multiple of 4).
    #[arg(long)]
    size: Option<usize>,
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, value_enum)]
    adversarial: Option<AdversarialArg>,
    /// Continue the run in --out from its last checkpoint (with its own config; --steps may extend it).
    #[arg(long)]
    resume: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum AdversarialArg {
    Lsgan,
    Bce,
    Hinge,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Unpaired,
    Paired,
    Noise,
}

impl ModeArg {
    fn mode(self) -> Mode {
        match self {
            ModeArg::Unpaired => Mode::Unpaired,
            ModeArg::Paired => Mode::Paired,
            ModeArg::Noise => Mode::Noise,
        }
    }
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The training run's folder.
    #[arg(long, required_unless_present = "style", conflicts_with = "style")]
    run: Option<PathBuf>,
    /// With `--format safetensors`: a style pack (id or folder) to export instead of a run.
    #[arg(long)]
    style: Option<String>,
    /// `pack`: a style pack folder for the CLI and the web app. `safetensors`: the generator's
    /// weights as one .safetensors file (f32; its shape in the metadata) for PyTorch and other tools.
    #[arg(long, value_enum, default_value_t = ExportFormat::Pack)]
    format: ExportFormat,
    /// Pack id: lowercase letters, digits, - and _ (pack format).
    #[arg(long)]
    id: Option<String>,
    /// Pack title (pack format).
    #[arg(long)]
    title: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
    /// Step of the checkpoint to export (default: the latest).
    #[arg(long)]
    checkpoint: Option<u64>,
    /// Pack folder, normally models/ID (the models folder's index.json is updated); or the
    /// .safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Photo to stylize for the preview (default: a built-in public-domain portrait).
    #[arg(long)]
    preview: Option<PathBuf>,
    /// Licence of each data folder, in the order content, style (repeat the flag).
    #[arg(long = "licence")]
    licences: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    Pack,
    Safetensors,
}

#[derive(clap::Args)]
struct StylizeArgs {
    /// Style id from the models folder, or the path of a pack folder.
    #[arg(long)]
    style: String,
    /// Photos to stylize (JPEG, PNG, WebP, GIF).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder; created if missing. Files keep their names.
    #[arg(long)]
    out: PathBuf,
    /// 0 keeps the photo, 1 applies the full style.
    #[arg(long, default_value_t = 1.0, value_parser = unit_interval)]
    strength: f32,
    /// Keep the photo's original colours; take only brightness and texture from the style.
    #[arg(long)]
    keep_colors: bool,
    /// Downscale photos whose longer side exceeds this many pixels first.
    #[arg(long)]
    max_side: Option<u32>,
    /// Largest side run at once; bigger photos run in overlapping tiles. 0 never tiles.
    #[arg(long, default_value_t = DEFAULT_TILE)]
    tile: usize,
    /// Output format (default: png).
    #[arg(long, value_enum, default_value_t = Format::Png)]
    format: Format,
    /// JPEG quality, 1–100.
    #[arg(long, default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Jpg,
    Webp,
}

fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: library errors often print their source
/// in their own message already (`path: No space left on device`), and anyhow's `{:#}` would
/// repeat it.
fn describe(err: &anyhow::Error) -> String {
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

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Styles => list_styles(&cli.models).map(|()| ExitCode::SUCCESS),
        Command::Stylize(args) => stylize_files(&args, &cli.models, cli.backend),
        Command::Train(args) => train(&args, cli.backend).map(|()| ExitCode::SUCCESS),
        Command::Grade(args) => grade(&args),
        Command::Generate(args) => {
            generate(&args, &cli.models, cli.backend).map(|()| ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            evaluate(&args, &cli.models, cli.backend).map(|()| ExitCode::SUCCESS)
        }
        Command::Export(args) => export_command(&args, &cli.models),
    }
}

fn export_command(args: &ExportArgs, models: &Path) -> Result<ExitCode> {
    if args.format == ExportFormat::Safetensors {
        let source = match (&args.run, &args.style) {
            (Some(run_dir), _) => WeightsSource::Run {
                run_dir,
                checkpoint: args.checkpoint,
            },
            (None, Some(style)) => WeightsSource::Pack {
                style,
                models_dir: models,
            },
            (None, None) => bail!("give --run DIR or --style ID"),
        };
        let written = export_safetensors(&source, &args.out)?;
        println!(
            "wrote {} ({} parameters, {} bytes, f32)",
            args.out.display(),
            written.parameters,
            written.bytes
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(run), Some(id), Some(title)) = (&args.run, &args.id, &args.title) else {
        bail!(
            "a style pack is exported from a training run: give --run DIR --id ID --title TITLE \
             (--style only works with --format safetensors)"
        );
    };
    let manifest = export(&ExportRequest {
        run_dir: run,
        checkpoint: args.checkpoint,
        id,
        title,
        description: &args.description,
        out: &args.out,
        preview_photo: args.preview.as_deref(),
        licences: &args.licences,
    })?;
    println!(
        "exported `{}` ({} steps, {:?} weights, {} bytes) to {}",
        manifest.id,
        manifest.training.steps,
        manifest.weights.dtype,
        manifest.weights.bytes,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu_options()
            .init()
            .map_err(|e| anyhow::anyhow!("no usable GPU through wgpu: {e}")),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => bail!("this build has no GPU support: rebuild with `--features wgpu`"),
    }
}

/// "1 photo", "2 photos".
fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn train(args: &TrainArgs, backend: Backend) -> Result<()> {
    let from_flags = args
        .mode
        .map(ModeArg::mode)
        .or(match (&args.pairs, &args.style) {
            (Some(_), _) => Some(Mode::Paired),
            (None, Some(_)) => Some(Mode::Unpaired),
            (None, None) => None,
        });
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let config = TrainConfig::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            match from_flags {
                Some(mode) if mode != config.mode => bail!(
                    "{} is a {:?} config, but the command line asks for {mode:?} training",
                    path.display(),
                    config.mode
                ),
                _ => config,
            }
        }
        // Resuming without a mode on the command line: the run's own mode.
        None => {
            let saved = args
                .resume
                .then(|| std::fs::read_to_string(args.out.join("config.toml")).ok())
                .flatten()
                .and_then(|text| TrainConfig::from_toml(&text).ok())
                .map(|c| c.mode);
            TrainConfig::for_mode(from_flags.or(saved).unwrap_or(Mode::Unpaired))
        }
    };
    let sources = match (config.mode, &args.content, &args.style, &args.pairs) {
        (Mode::Unpaired, Some(content), Some(style), None) => Sources::Unpaired {
            content: content.clone(),
            style: style.clone(),
        },
        (Mode::Paired, None, None, Some(pairs)) => Sources::Paired {
            pairs: pairs.clone(),
        },
        (Mode::Noise, Some(portraits), None, None) => Sources::Noise {
            portraits: portraits.clone(),
        },
        (Mode::Noise, ..) => bail!("noise training takes one folder of portraits: --content DIR"),
        (Mode::Paired, ..) => bail!("paired training takes --pairs DIR (with before/ and after/)"),
        (Mode::Unpaired, ..) => bail!(
            "give --content and --style (unpaired), --pairs (paired), or --mode noise --content"
        ),
    };
    if let Some(preset) = args.preset {
        config.preset = preset;
        config.generator = None;
    }
    config.size = args.size.unwrap_or(config.size);
    config.steps = args.steps.unwrap_or(config.steps);
    config.batch = args.batch.unwrap_or(config.batch);
    config.seed = args.seed.unwrap_or(config.seed);
    if let Some(adversarial) = args.adversarial {
        config.adversarial = match adversarial {
            AdversarialArg::Lsgan => AdversarialLoss::Lsgan,
            AdversarialArg::Bce => AdversarialLoss::Bce,
            AdversarialArg::Hinge => AdversarialLoss::Hinge,
        };
    }
    // Before the GPU is touched: Burn reads its configuration once (see `unfused`).
    if !portraitist::train::trainer::unfused() && matches!(backend, Backend::Wgpu) {
        eprintln!(
            "warning: Burn's kernel fusion is on (BURN_FUSION_MAX_EXPLORATIONS or burn.toml): on wgpu it \
             has computed training losses wrongly and turned runs to NaN"
        );
    }
    let device = device(backend)?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:>10} {bar:30} {pos}/{len} {elapsed_precise} eta {eta}")
            .expect("valid template"),
    );
    bar.set_message("loading");
    let mut events = |event: Event| match event {
        Event::Loading { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Event::Loaded { summary } => {
            for (folder, count) in &summary.folders {
                say(&bar, format!("{folder}: {}", plural(*count, "photo")));
            }
            if !summary.skipped.is_empty() {
                say(
                    &bar,
                    format!(
                        "skipped {} (listed in run.log)",
                        plural(summary.skipped.len(), "unreadable file")
                    ),
                );
            }
        }
        Event::Started { step, total } => {
            if step > 0 {
                say(&bar, format!("resuming at step {step} of {total}"));
            }
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {elapsed_precise} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar.set_length(total);
            bar.set_position(step);
            bar.reset_eta();
        }
        Event::Step {
            step,
            losses,
            images_per_second,
            ..
        } => {
            let text: Vec<String> = losses
                .iter()
                .map(|(name, v)| format!("{name} {v:.3}"))
                .collect();
            bar.set_message(format!("{} | {images_per_second:.2} img/s", text.join(" ")));
            bar.set_position(step);
        }
        Event::Checkpoint { path, .. } => say(&bar, format!("checkpoint {}", path.display())),
        Event::Samples { .. } => {}
    };
    let mut trainer = Trainer::new(
        &sources,
        &args.out,
        config,
        args.resume,
        &device,
        &mut events,
    )?;
    trainer.run(None, &mut events)?;
    bar.finish_and_clear();
    println!(
        "trained {}; samples and losses in {}. Export with: portraitist export --run {} --id ID --title TITLE --out models/ID",
        plural(trainer.step() as usize, "step"),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// A line above the progress bar, or on stdout when there is no bar (output not a terminal), so
/// logs of a training run keep what it said.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// Largest `generate --grid` sheet, in pixels (as large as the biggest photo `stylize` accepts).
const MAX_SHEET_PIXELS: u64 = 100_000_000;

fn generate(args: &GenerateArgs, models: &Path, backend: Backend) -> Result<()> {
    let pack = StylePack::resolve(&args.style, models)?;
    let creator = pack.creator(&device(backend)?)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (names, latents): (Vec<String>, Vec<Vec<f32>>) = match args.interpolate {
        Some(to) => create::walk(
            &creator.latent(args.seed),
            &creator.latent(to),
            args.frames as usize,
        )
        .into_iter()
        .enumerate()
        .map(|(i, z)| (format!("walk-{}-{to}-{i:04}.png", args.seed), z))
        .unzip(),
        None => (args.seed..args.seed.saturating_add(args.count))
            .map(|seed| (format!("seed-{seed:08}.png"), creator.latent(seed)))
            .unzip(),
    };
    let bar = ProgressBar::new(latents.len() as u64);
    let side = creator.config().size as u32 * args.scale;
    let write = |name: &str, image: &image::RgbImage| -> Result<()> {
        let path = args.out.join(name);
        let png = image_io::encode(image, OutputFormat::Png)?;
        std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))
    };
    let columns = args.grid.unwrap_or(1).min(names.len() as u32).max(1);
    let rows = (names.len() as u32).div_ceil(columns);
    // The sheet is built in memory: refuse one larger than any photo the app accepts.
    let sheet_pixels = u64::from(columns * side) * u64::from(rows) * u64::from(side);
    if args.grid.is_some() && sheet_pixels > MAX_SHEET_PIXELS {
        bail!(
            "the --grid sheet would be {} megapixels (limit {}): ask for fewer portraits or a smaller --scale",
            sheet_pixels / 1_000_000,
            MAX_SHEET_PIXELS / 1_000_000
        );
    }
    let mut sheet = args
        .grid
        .map(|_| image::RgbImage::new(columns * side, rows * side));
    let mut index = 0u32;
    for (chunk_names, chunk) in names.chunks(16).zip(latents.chunks(16)) {
        let images = creator.render_blocking(chunk)?;
        for (name, image) in chunk_names.iter().zip(images) {
            let image = if args.scale > 1 {
                image::imageops::resize(&image, side, side, image::imageops::FilterType::Lanczos3)
            } else {
                image
            };
            write(name, &image)?;
            if let Some(sheet) = &mut sheet {
                let (x, y) = (index % columns * side, index / columns * side);
                image::imageops::replace(sheet, &image, i64::from(x), i64::from(y));
            }
            index += 1;
            bar.inc(1);
        }
    }
    if let Some(sheet) = &sheet {
        write("grid.png", sheet)?;
    }
    bar.finish_and_clear();
    println!(
        "wrote {} ({side}×{side}) to {}",
        plural(names.len(), "portrait"),
        args.out.display()
    );
    Ok(())
}

fn list_styles(models: &Path) -> Result<()> {
    let index = Index::available(models)?;
    if index.styles.is_empty() {
        println!(
            "No styles in {} and none built in (train one with `portraitist train`).",
            models.display()
        );
        return Ok(());
    }
    let in_folder = Index::load(models)?;
    for entry in &index.styles {
        let builtin = if in_folder.styles.iter().any(|s| s.id == entry.id) {
            ""
        } else {
            " [built in]"
        };
        let default = if index.default.as_deref() == Some(&entry.id) {
            " (default)"
        } else {
            ""
        };
        let kind = match entry.kind {
            PackKind::Transfer => "",
            PackKind::Noise => " [noise: new portraits with `portraitist generate`]",
        };
        println!("{:<16} {}{default}{builtin}{kind}", entry.id, entry.title);
        if !entry.description.is_empty() {
            println!("{:<16} {}", "", entry.description);
        }
    }
    Ok(())
}

fn stylize_files(args: &StylizeArgs, models: &Path, backend: Backend) -> Result<ExitCode> {
    let pack = StylePack::resolve(&args.style, models)?;
    let device = device(backend)?;
    let stylizer = pack.stylizer(&device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let format = match args.format {
        Format::Png => OutputFormat::Png,
        Format::Jpg => OutputFormat::Jpeg(args.quality),
        Format::Webp => OutputFormat::WebP,
    };
    let look = Look {
        strength: args.strength,
        keep_colors: args.keep_colors,
    };
    let tile = (args.tile > 0).then_some(args.tile);

    let bar = if args.inputs.len() > 1 {
        ProgressBar::new(args.inputs.len() as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} eta {eta} {msg}")
                .expect("valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut used_names = HashSet::new();
    let mut failed = 0;
    for input in &args.inputs {
        bar.set_message(input.display().to_string());
        let started = Instant::now();
        let result = output_path(input, &args.out, format, &mut used_names).and_then(|out| {
            let (w, h) = stylize_one(input, &out, &stylizer, args.max_side, tile, look, format)?;
            Ok((out, w, h))
        });
        match result {
            Ok((out, w, h)) => {
                let line = format!(
                    "{} → {} ({w}×{h}, {:.2} s)",
                    input.display(),
                    out.display(),
                    started.elapsed().as_secs_f32()
                );
                // A hidden bar (one photo) swallows println.
                if bar.is_hidden() {
                    println!("{line}")
                } else {
                    bar.println(line)
                }
            }
            Err(err) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {}: {}", input.display(), describe(&err)));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if failed > 0 {
        eprintln!("{failed} of {} photos failed", args.inputs.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_folder(dir: &Path, what: &str) -> Result<ImageFolder> {
    let folder = ImageFolder::load(dir, 1, u32::MAX, &mut |_, _| {})
        .with_context(|| format!("cannot read the {what}"))?;
    for s in &folder.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    Ok(folder)
}

/// The VGG19 network, or `None` with a note saying what is `missing` without it.
fn load_vgg(path: &Path, device: &Device, missing: &str) -> Result<Option<Vgg19>> {
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

/// Write report.md, contact.png and summary.json into `out`, print the figures, and with
/// `record` store them in the pack's style.json.
fn write_evaluation(
    args: &EvalArgs,
    pack: &StylePack,
    report: &str,
    sheet: &image::RgbImage,
    on: String,
    summary: std::collections::BTreeMap<String, f64>,
) -> Result<()> {
    portraitist::pack::write_atomic(&args.out.join("report.md"), report.as_bytes())?;
    portraitist::pack::write_atomic(
        &args.out.join("contact.png"),
        &image_io::encode(sheet, OutputFormat::Png)?,
    )?;
    let json = serde_json::json!({ "style": pack.manifest.id, "on": on, "metrics": summary });
    portraitist::pack::write_atomic(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    for (k, v) in &summary {
        println!("{k:>34}  {v:.4}");
    }
    println!("report: {}", args.out.join("report.md").display());
    if args.record {
        let dir = pack.dir().context(
            "a built-in pack has no folder to record into: give --style the pack's folder",
        )?;
        portraitist::pack::save_evaluation(
            dir,
            EvaluationSummary {
                on,
                metrics: summary,
            },
        )?;
        println!("stored the figures in {}", dir.join("style.json").display());
    }
    Ok(())
}

/// `eval` of a noise pack: realism, diversity, memorisation (src/eval/noise.rs).
fn evaluate_noise(args: &EvalArgs, pack: &StylePack, backend: Backend) -> Result<()> {
    let device = device(backend)?;
    let creator = pack.creator(&device)?;
    let real = load_folder(&args.photos, "held-out portraits")?;
    let training = args
        .training
        .as_deref()
        .map(|d| load_folder(d, "training portraits"))
        .transpose()?;
    let vgg = load_vgg(
        &args.vgg19,
        &device,
        "no VGG19 features: realism and diversity use the 8×8 colour-layout fallback",
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let evaluation = eval::noise::evaluate_noise(
        &eval::noise::NoiseRequest {
            creator: &creator,
            real: &real,
            training: training.as_ref(),
            samples: args.samples as usize,
            vgg: vgg.as_ref(),
            device: device.clone(),
        },
        &mut |stage| eprintln!("{stage}…"),
    )?;
    let on = format!(
        "{} samples (seeds 0–{}) vs {} held-out portraits from {}{}; features: {}",
        args.samples,
        args.samples - 1,
        real.len(),
        args.photos.display(),
        training.as_ref().map_or(String::new(), |t| format!(
            ", training set {} ({} portraits)",
            t.root.display(),
            t.len()
        )),
        evaluation.features
    );
    let title = format!("{} (`{}`)", pack.manifest.title, pack.manifest.id);
    let report = evaluation.markdown(&title, &format!("Backend {}.", backend_name(backend)));
    let sheet = portraitist::train::report::grid(&evaluation.sheet_rows);
    write_evaluation(args, pack, &report, &sheet, on, evaluation.metrics)
}

fn evaluate(args: &EvalArgs, models: &Path, backend: Backend) -> Result<()> {
    let pack = StylePack::resolve(&args.style, models)?;
    if pack.manifest.kind == PackKind::Noise {
        return evaluate_noise(args, &pack, backend);
    }
    let device = device(backend)?;
    let stylizer = pack.stylizer(&device)?;
    let load = load_folder;
    let photos = load(&args.photos, "photos")?;
    let style_set = args
        .style_set
        .as_deref()
        .map(|d| load(d, "style set"))
        .transpose()?;
    let truth_folder = args
        .truth
        .as_deref()
        .map(|d| load(d, "true results"))
        .transpose()?;
    let truth = match (&args.look, &truth_folder) {
        (Some(look), _) => Truth::Look(*look),
        (None, Some(folder)) => Truth::Folder(folder),
        (None, None) => Truth::Unknown,
    };
    let vgg = load_vgg(&args.vgg19, &device, "no VGG19 feature or Gram distances")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let bar = ProgressBar::new(photos.len() as u64).with_style(
        ProgressStyle::with_template("evaluating {bar:30} {pos}/{len} {elapsed_precise} eta {eta}")
            .expect("valid template"),
    );
    let evaluation = eval::evaluate(
        &eval::Request {
            stylizer: &stylizer,
            photos: &photos,
            style_set: style_set.as_ref(),
            truth,
            vgg: vgg.as_ref(),
            max_side: args.max_side,
            device: device.clone(),
        },
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();

    let on = format!(
        "{} photos from {} at ≤{} px{}{}",
        photos.len(),
        args.photos.display(),
        args.max_side,
        style_set.as_ref().map_or(String::new(), |s| format!(
            ", style set {} ({} images)",
            s.root.display(),
            s.len()
        )),
        match (&args.look, &args.truth) {
            (Some(look), _) => format!(", truth: the `{}` look", look.name()),
            (None, Some(dir)) => format!(", truth: {}", dir.display()),
            (None, None) => String::new(),
        }
    );
    let title = format!("{} (`{}`)", pack.manifest.title, pack.manifest.id);
    let report = evaluation.markdown(&title, &format!("{on}; backend {}.", backend_name(backend)));
    let sheet = portraitist::train::report::grid(&evaluation.sheet_rows);
    write_evaluation(args, &pack, &report, &sheet, on, evaluation.summary())
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Cpu => "cpu (flex)",
        Backend::Wgpu => "wgpu",
    }
}

fn grade(args: &GradeArgs) -> Result<ExitCode> {
    let (before, after) = (args.out.join("before"), args.out.join("after"));
    for dir in [&before, &after] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    }
    let mut used_names = HashSet::new();
    let mut failed = 0;
    for input in &args.inputs {
        let result =
            output_path(input, &before, OutputFormat::Png, &mut used_names).and_then(|b| {
                let bytes = std::fs::read(input).context("cannot read the file")?;
                let photo = stylize::fit_within(&image_io::decode(&bytes)?, args.max_side);
                let graded = args.look.apply(&photo);
                let a = after.join(b.file_name().expect("a file name"));
                for (path, image) in [(&b, &photo), (&a, &graded)] {
                    let encoded = image_io::encode(image, OutputFormat::Png)?;
                    portraitist::pack::write_atomic(path, &encoded)?;
                }
                Ok(photo.dimensions())
            });
        match result {
            Ok((w, h)) => println!("{} ({w}×{h})", input.display()),
            Err(err) => {
                failed += 1;
                eprintln!("error: {}: {}", input.display(), describe(&err));
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} photos failed", args.inputs.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn stylize_one(
    input: &Path,
    out: &Path,
    stylizer: &portraitist::Stylizer,
    max_side: Option<u32>,
    tile: Option<usize>,
    look: Look,
    format: OutputFormat,
) -> Result<(u32, u32)> {
    let bytes = std::fs::read(input).context("cannot read the file")?;
    let photo = image_io::decode(&bytes)?;
    let photo = match max_side {
        Some(side) => stylize::fit_within(&photo, side),
        None => photo,
    };
    let styled = stylizer.render_blocking(&photo, tile, &mut |_, _| {})?;
    let result = stylize::blend(&photo, &styled, look);
    let encoded = image_io::encode(&result, format).context("cannot encode the result")?;
    portraitist::pack::write_atomic(out, &encoded)?;
    Ok(result.dimensions())
}

/// `<out>/<input stem>.<ext>`, made unique within this run, never one of the inputs.
fn output_path(
    input: &Path,
    out_dir: &Path,
    format: OutputFormat,
    used: &mut HashSet<PathBuf>,
) -> Result<PathBuf> {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let mut candidate = out_dir.join(format!("{stem}.{}", format.extension()));
    let mut n = 2;
    while used.contains(&candidate) {
        candidate = out_dir.join(format!("{stem}-{n}.{}", format.extension()));
        n += 1;
    }
    if let (Ok(a), Ok(b)) = (candidate.canonicalize(), input.canonicalize())
        && a == b
    {
        bail!(
            "the output {} would overwrite the input; choose another --out folder",
            candidate.display()
        );
    }
    used.insert(candidate.clone());
    Ok(candidate)
}
