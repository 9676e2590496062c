//! `portraitist train`: a run folder trained from folders of photos, with progress, checkpoints
//! and resume.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::model::Preset;
use portraitist::train::config::ConfigOverrides;
use portraitist::train::{AdversarialLoss, Event, Mode, Sources, TrainConfig, Trainer};

use super::{Backend, device, plural, say};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// What to learn: `unpaired` (--content + --style-photos), `paired` (--pairs), `noise` (new
    /// portraits from --content alone) or `styles` (one multi-style network from --content and
    /// --style-photos holding a subfolder per style). Default: from the folders given, or the
    /// --config's mode.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Content photos (e.g. portraits), searched recursively; in noise mode, the portraits to
    /// learn from.
    #[arg(long, conflicts_with = "pairs")]
    content: Option<PathBuf>,
    /// Photos in the style to learn, searched recursively (`--style` is an older name: the other
    /// commands' `--style` is a style pack).
    #[arg(long, alias = "style", value_name = "DIR")]
    style_photos: Option<PathBuf>,
    /// Paired training instead: a folder with before/ and after/ files of matching names.
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Run folder: config copy, losses, samples, checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// TOML file with hyper-parameters (see README); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum)]
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
    adversarial: Option<AdversarialLoss>,
    /// Continue the run in --out from its last checkpoint (with its own config; --steps may extend it).
    #[arg(long)]
    resume: bool,
    /// Start a new run from a pack's network (a pack folder, e.g. models/painters) instead of
    /// random weights; its shape and styles must be the run's.
    #[arg(long, value_name = "PACK_DIR", conflicts_with = "resume")]
    init: Option<PathBuf>,
}

pub fn run(args: &TrainArgs, backend: Backend) -> Result<()> {
    let from_folders = match (&args.pairs, &args.style_photos) {
        (Some(_), _) => Some(Mode::Paired),
        (None, Some(_)) => Some(Mode::Unpaired),
        (None, None) => None,
    };
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let config = TrainConfig::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            // Only an explicit --mode can disagree with the file; folders fit its mode.
            match args.mode {
                Some(mode) if mode != config.mode => bail!(
                    "{} is a {:?} config, but the command line asks for {mode:?} training",
                    path.display(),
                    config.mode
                ),
                _ => config,
            }
        }
        // Resuming without a mode on the command line: the run's own mode (a styles run is
        // resumed with --style-photos, which alone would mean unpaired).
        None => {
            let saved = args
                .resume
                .then(|| std::fs::read_to_string(args.out.join("config.toml")).ok())
                .flatten()
                .and_then(|text| TrainConfig::from_toml(&text).ok())
                .map(|c| c.mode);
            TrainConfig::for_mode(
                args.mode
                    .or(saved)
                    .or(from_folders)
                    .unwrap_or(Mode::Unpaired),
            )
        }
    };
    let sources = match (config.mode, &args.content, &args.style_photos, &args.pairs) {
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
        (Mode::Styles, Some(content), Some(styles), None) => Sources::Styles {
            content: content.clone(),
            styles: styles.clone(),
        },
        (Mode::Styles, ..) => bail!(
            "styles training takes --content DIR and --style-photos DIR (one subfolder per style)"
        ),
        (Mode::Noise, ..) => bail!("noise training takes one folder of portraits: --content DIR"),
        (Mode::Paired, ..) => bail!("paired training takes --pairs DIR (with before/ and after/)"),
        (Mode::Unpaired, ..) => bail!(
            "give --content and --style-photos (unpaired), --pairs (paired), or --mode noise --content"
        ),
    };
    let config = config.with_overrides(&ConfigOverrides {
        preset: args.preset,
        size: args.size,
        steps: args.steps,
        batch: args.batch,
        seed: args.seed,
        adversarial: args.adversarial,
    });
    let config = match &args.init {
        Some(pack) => TrainConfig {
            init: Some(pack.clone()),
            ..config
        },
        None => config,
    };
    // Before the GPU is touched: Burn reads its configuration once (see `unfused`).
    if !portraitist::train::trainer::unfused() && matches!(backend, Backend::Wgpu) {
        eprintln!(
            "warning: Burn's kernel fusion is on (BURN_FUSION_MAX_EXPLORATIONS, burn.toml or \
             PORTRAITIST_FUSION_REMOVE): on wgpu it has computed training losses wrongly and \
             turned runs to NaN"
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
        Event::StyleTargets { done, total } => {
            bar.set_message("styles");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
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
