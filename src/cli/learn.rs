//! `portraitist learn`: a new style added to a pack in minutes, from one painting or a few images
//! in a look. Only the new style's norm offsets train (`learn::adapt`); the pack's network and
//! its other styles are kept as they are. `--continue` goes on learning a style the pack gained
//! this way (in the page or here), from where it stopped.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::learn::adapt::AdaptConfig;
use portraitist::learn::lesson::{Lesson, NewStyle};
use portraitist::pack::StylePack;
use portraitist::photos::ImageFolder;
use portraitist::train::export::save_with_previews;

use super::{Backend, device, load_folder, say};

#[derive(clap::Args)]
pub struct LearnArgs {
    /// The pack to add a style to (an id or a pack folder); a one-style pack becomes a two-style
    /// one.
    #[arg(long)]
    pack: String,
    /// The style: one painting, or a folder of 1–20 images in the look (searched recursively).
    #[arg(long)]
    images: PathBuf,
    /// Photos whose content the style must keep (e.g. a few portraits), searched recursively.
    #[arg(long)]
    content: PathBuf,
    /// The new style's id (a–z, 0–9, `-`, `_`), or with `--continue` the id of the style to go
    /// on learning.
    #[arg(long)]
    id: String,
    /// The new style's title (needed for a new style; with `--continue`, a new title if given).
    #[arg(long)]
    title: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
    /// Go on learning the pack's style `--id` (one learnt before, e.g. a pack downloaded from
    /// the page) from its offsets, instead of adding a new style. The optimiser starts afresh.
    #[arg(long = "continue")]
    continues: bool,
    /// Licence of the style images, stored with the style.
    #[arg(long, default_value = "unspecified")]
    licence: String,
    /// The new pack's folder, whose name is the new pack's id (a–z, 0–9, `-`, `_`); its parent's
    /// index.json gets the entry.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = AdaptConfig::default().steps)]
    steps: u64,
    #[arg(long, default_value_t = AdaptConfig::default().batch)]
    batch: usize,
    /// Crop side in pixels (a multiple of 4).
    #[arg(long, default_value_t = AdaptConfig::default().size)]
    size: usize,
    #[arg(long, default_value_t = AdaptConfig::default().seed)]
    seed: u64,
    /// VGG19 weights (scripts/convert-vgg19.py writes them).
    #[arg(long, default_value = "data/vgg19/vgg19.bin")]
    vgg19: PathBuf,
    /// Also write each step's losses here (CSV: step,content,style,tv).
    #[arg(long)]
    log: Option<PathBuf>,
}

pub fn run(args: &LearnArgs, models: &Path, backend: Backend) -> Result<()> {
    if !(32..=1024).contains(&args.size) || !args.size.is_multiple_of(4) {
        bail!(
            "--size {} must be a multiple of 4 between 32 and 1024",
            args.size
        );
    }
    if args.batch == 0 || args.steps == 0 {
        bail!("--batch and --steps must be at least 1");
    }
    if args.title.is_none() && !args.continues {
        bail!("a new style needs a --title (or --continue to go on learning the style --id)");
    }
    let pack_id = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| portraitist::pack::valid_id(n))
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "--out {}: the folder's name is the new pack's id, so it must be 1–64 of a–z, \
                 0–9, `-` and `_`",
                args.out.display()
            )
        })?;
    let pack = StylePack::resolve(&args.pack, models)?;
    let style_images = if args.images.is_file() {
        let bytes = std::fs::read(&args.images)
            .with_context(|| format!("cannot read {}", args.images.display()))?;
        let image = portraitist::image_io::decode(&bytes)
            .with_context(|| format!("{}", args.images.display()))?;
        ImageFolder {
            root: args.images.clone(),
            images: vec![image],
            names: vec![args.images.display().to_string()],
            skipped: Vec::new(),
        }
    } else {
        load_folder(&args.images, "style images")?
    };
    let content = load_folder(&args.content, "content photos")?;
    let device = device(backend)?;
    let training = device.clone().without_autodiff().autodiff();
    let vgg19 = std::fs::read(&args.vgg19).with_context(|| {
        format!(
            "learning a style needs the VGG19 weights, {} (scripts/convert-vgg19.py writes them)",
            args.vgg19.display()
        )
    })?;
    let config = AdaptConfig {
        steps: args.steps,
        batch: args.batch,
        size: args.size,
        seed: args.seed,
        ..AdaptConfig::default()
    };
    let style = NewStyle {
        id: args.id.clone(),
        title: args.title.clone().unwrap_or_default(),
        description: args.description.clone(),
        source: args.images.display().to_string(),
        licence: args.licence.clone(),
        continues: args.continues,
    };
    let mut lesson = Lesson::new(
        pack,
        style,
        &style_images.images,
        content.images,
        &vgg19,
        config,
        &training,
    )?;
    let mut log = match &args.log {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(file, "step,content,style,tv")?;
            Some(file)
        }
        None => None,
    };
    let bar = ProgressBar::new(args.steps).with_style(
        ProgressStyle::with_template(
            "learning {bar:30} {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .expect("valid template"),
    );
    for step in 1..=args.steps {
        let losses = pollster::block_on(lesson.step())?;
        if let Some(file) = &mut log {
            let values: Vec<String> = losses.iter().map(|(_, v)| v.to_string()).collect();
            writeln!(file, "{step},{}", values.join(","))?;
        }
        bar.set_position(step);
        bar.set_message(
            losses
                .iter()
                .map(|(n, v)| format!("{n} {v:.3e}"))
                .collect::<Vec<_>>()
                .join("  "),
        );
    }
    bar.finish_and_clear();

    let learnt = pollster::block_on(lesson.pack(&pack_id))?;
    let mut manifest = learnt.manifest.clone();
    for style in &mut manifest.styles {
        style.preview = Some(format!("preview-{}.jpg", style.id));
    }
    let precision = manifest.weights.dtype;
    let generator = pollster::block_on(lesson.generator())?;
    let manifest = save_with_previews(&args.out, manifest, &generator, precision, None)?;
    say(
        &bar,
        format!(
            "{} `{}` in {} steps; {} now holds {} styles: {}",
            if args.continues {
                "went on learning"
            } else {
                "learnt"
            },
            args.id,
            args.steps,
            args.out.display(),
            manifest.styles.len(),
            manifest
                .styles
                .iter()
                .map(|s| format!("{}:{}", manifest.id, s.id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(())
}
