//! `portraitist learn`: a new style added to a pack in minutes, from one painting or a few images
//! in a look. Only the new style's norm offsets train (`learn::adapt`); the pack's network and
//! its other styles are kept as they are.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::learn::adapt::{AdaptConfig, StyleLearner};
use portraitist::model::Vgg19;
use portraitist::pack::{DataSource, StyleInfo, StylePack};
use portraitist::photos::{self, ImageFolder};
use portraitist::rng::Rng;
use portraitist::stylize::fit_within;
use portraitist::train::data::Crop;
use portraitist::train::export::save_with_previews;
use portraitist::train::precision::choose_precision;

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
    /// The new style's id (a–z, 0–9, `-`, `_`) and title.
    #[arg(long)]
    id: String,
    #[arg(long)]
    title: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Licence of the style images, stored with the style.
    #[arg(long, default_value = "unspecified")]
    licence: String,
    /// The new pack's folder; its parent's index.json gets the entry.
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
    let pack = StylePack::resolve(&args.pack, models)?;
    let generator = pack.generator(&Device::flex())?;
    let mut styles = pack.manifest.styles.clone();
    if styles.is_empty() {
        // A one-style pack: its own look becomes its first style.
        let m = &pack.manifest;
        styles.push(StyleInfo {
            id: m.id.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            sources: m.training.sources.clone(),
            preview: None,
        });
    }
    if styles.iter().any(|s| s.id == args.id) {
        bail!(
            "`{}` already has a style `{}`: choose another --id",
            pack.manifest.id,
            args.id
        );
    }
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
    let bytes = std::fs::read(&args.vgg19).with_context(|| {
        format!(
            "learning a style needs the VGG19 weights, {} (scripts/convert-vgg19.py writes them)",
            args.vgg19.display()
        )
    })?;
    let vgg = Vgg19::from_bytes(&bytes, &training)?;
    // Style images at about twice the crop side: their Gram matrices then describe strokes at
    // the scale the network sees them.
    let targets: Vec<_> = style_images
        .images
        .iter()
        .map(|image| {
            let image = fit_within(image, 2 * args.size as u32);
            photos::to_tensor(std::slice::from_ref(&image), &training)
        })
        .collect();
    let config = AdaptConfig {
        steps: args.steps,
        batch: args.batch,
        size: args.size,
        seed: args.seed,
        ..AdaptConfig::default()
    };
    let mut learner = StyleLearner::new(&generator, &targets, vgg, config, &training);
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
    let mut rng = Rng::new(args.seed);
    let side = args.size as u32;
    for step in 1..=args.steps {
        let crops: Vec<_> = (0..args.batch)
            .map(|_| {
                let image = &content.images[rng.below(content.len())];
                Crop::random(image, side, &mut rng).apply(image, side)
            })
            .collect();
        let losses = learner.step(photos::to_tensor(&crops, &training))?;
        if let Some((name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) {
            bail!("the {name} loss became {value} at step {step}: try fewer steps or other images");
        }
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

    let plain = Device::flex();
    let learnt = learner.generator(&plain);
    let mut manifest = pack.manifest.clone();
    styles.push(StyleInfo {
        id: args.id.clone(),
        title: args.title.clone(),
        description: args.description.clone(),
        sources: vec![DataSource {
            name: args.images.display().to_string(),
            licence: args.licence.clone(),
            images: style_images.len() as u64,
        }],
        preview: None,
    });
    for style in &mut styles {
        style.preview = Some(format!("preview-{}.jpg", style.id));
    }
    manifest.styles = styles;
    manifest.generator = Some(learnt.config());
    let (precision, _) = choose_precision(&learnt, &plain);
    let manifest = save_with_previews(&args.out, manifest, &learnt, precision, None)?;
    say(
        &bar,
        format!(
            "learnt `{}` in {} steps; {} now holds {} styles: {}",
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
