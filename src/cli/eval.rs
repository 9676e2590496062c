//! `portraitist eval`: a style (or noise pack) measured on a folder of photos; report.md,
//! contact.png and summary.json.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::create::Creator;
use portraitist::eval::{self, FaceBoxes, Producer, Truth};
use portraitist::image_io::{self, OutputFormat};
use portraitist::looks::LookName;
use portraitist::pack::{EvaluationSummary, PackKind, StylePack, StyleRef};
use portraitist::stylize::Stylizer;

use super::grade::look_name;
use super::{Backend, backend_name, device, load_folder, load_vgg};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Style id in the models folder, or a pack folder (`PACK:STYLE` for one style of a
    /// multi-style pack). With --results: only names the results in the report.
    #[arg(long, required_unless_present = "results")]
    style: Option<String>,
    /// Measure results made by any tool instead of running a style: a folder of images named
    /// like the photos (e.g. a peer's outputs), scored by the same code as ours.
    #[arg(long, conflicts_with_all = ["record", "training"])]
    results: Option<PathBuf>,
    /// JSON file of face boxes by photo file name stem, `{"astronaut": [x0, y0, x1, y1]}` as
    /// fractions of the photo: the content figures are also measured inside the face.
    #[arg(long)]
    faces: Option<PathBuf>,
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

/// Write report.md, contact.png and summary.json into `out`, print the figures, and with
/// `record` store them in the pack's style.json.
fn write_evaluation(
    args: &EvalArgs,
    pack: Option<&StylePack>,
    id: &str,
    report: &str,
    sheet: &image::RgbImage,
    on: String,
    summary: std::collections::BTreeMap<String, f64>,
) -> Result<()> {
    super::write_file(&args.out.join("report.md"), report.as_bytes())?;
    super::write_file(
        &args.out.join("contact.png"),
        &image_io::encode(sheet, OutputFormat::Png)?,
    )?;
    let json = serde_json::json!({ "style": id, "on": on, "metrics": summary });
    super::write_file(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    for (k, v) in &summary {
        println!("{k:>34}  {v:.4}");
    }
    println!("report: {}", args.out.join("report.md").display());
    if let (true, Some(pack)) = (args.record, pack) {
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
    let creator = Creator::from_pack(pack, &device)?;
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
    let sheet = portraitist::photos::grid(&evaluation.sheet_rows);
    let id = pack.manifest.id.clone();
    write_evaluation(
        args,
        Some(pack),
        &id,
        &report,
        &sheet,
        on,
        evaluation.metrics,
    )
}

pub fn run(args: &EvalArgs, models: &Path, backend: Backend) -> Result<()> {
    let device = device(backend)?;
    let results = args
        .results
        .as_deref()
        .map(|d| load_folder(d, "results"))
        .transpose()?;
    let pack = match (&args.style, &results) {
        (Some(style), None) => {
            let style = StyleRef::parse(style)?;
            let pack = StylePack::resolve(&style.pack, models)?;
            if pack.manifest.kind == PackKind::Noise {
                return evaluate_noise(args, &pack, backend);
            }
            let stylizer = Stylizer::from_pack_style(&pack, &style, &device)?;
            Some((pack, stylizer))
        }
        _ => None,
    };
    let faces: Option<FaceBoxes> = match &args.faces {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: expected {{\"photo stem\": [x0, y0, x1, y1], …}} with fractions of the photo",
                    path.display()
                )
            })?)
        }
        None => None,
    };
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
    let producer = match (&pack, &results) {
        (Some((_, stylizer)), _) => Producer::Stylizer(stylizer),
        (None, Some(results)) => Producer::Results(results),
        (None, None) => unreachable!("clap requires --style or --results"),
    };
    let evaluation = eval::evaluate(
        &eval::Request {
            producer,
            photos: &photos,
            faces: faces.as_ref(),
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
    let (title, id) = match (&pack, &results) {
        (Some((pack, _)), _) => (
            format!("{} (`{}`)", pack.manifest.title, pack.manifest.id),
            pack.manifest.id.clone(),
        ),
        (None, Some(results)) => {
            let label = args.style.clone().unwrap_or_else(|| "results".into());
            (
                format!("{label}: results in {}", results.root.display()),
                label,
            )
        }
        (None, None) => unreachable!("clap requires --style or --results"),
    };
    let report = evaluation.markdown(&title, &format!("{on}; backend {}.", backend_name(backend)));
    let sheet = portraitist::photos::grid(&evaluation.sheet_rows);
    write_evaluation(
        args,
        pack.as_ref().map(|(p, _)| p),
        &id,
        &report,
        &sheet,
        on,
        evaluation.summary(),
    )
}
