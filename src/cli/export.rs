//! `portraitist export`: a training run turned into a style pack, or weights for PyTorch.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use portraitist::StylePack;
use portraitist::looks::LookName;
use portraitist::pack::archive;
use portraitist::train::export::{
    ExportRequest, WeightsSource, export, export_look, export_safetensors,
};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The training run's folder.
    #[arg(long, required_unless_present_any = ["style", "look"], conflicts_with_all = ["style", "look"])]
    run: Option<PathBuf>,
    /// Instead of a run: a pack for a parametric colour grade (`teal-orange`, `sepia-print`),
    /// applied by its exact formula with no network.
    #[arg(long, conflicts_with = "style")]
    look: Option<String>,
    /// With `--format safetensors` or `tar`: a style pack (id, folder or archive) to export
    /// instead of a run.
    #[arg(long)]
    style: Option<String>,
    /// `pack`: a style pack folder for the CLI and the web app. `tar`: a pack as one file (the
    /// page takes it dropped on it, `stylize --style FILE` reads it, `tar -xf` unpacks it).
    /// `safetensors`: the generator's weights as one .safetensors file (f32; its shape in the
    /// metadata) for PyTorch and other tools.
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
    Tar,
    Safetensors,
}

pub fn run(args: &ExportArgs, models: &Path) -> Result<ExitCode> {
    if args.format == ExportFormat::Tar {
        let Some(style) = &args.style else {
            bail!("--format tar packs an existing pack: give --style ID (or a pack folder)");
        };
        // An archive keeps its previews; a folder's are read from it (a built-in pack has none).
        let path = Path::new(style);
        let (pack, previews) = match std::fs::read(path) {
            Ok(bytes) if path.is_file() && archive::is_archive(&bytes) => {
                StylePack::from_archive(style, &bytes)?
            }
            _ => {
                let pack = StylePack::resolve(style, models)?;
                let previews = pack.preview_files()?;
                (pack, previews)
            }
        };
        let manifest = &pack.manifest;
        let bytes = pack.to_archive(&previews)?;
        portraitist::atomic::write(&args.out, &bytes)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        println!(
            "wrote {} ({} bytes, pack `{}`): `portraitist stylize --style {}` reads it, the page takes it \
             dropped on it, `tar -xf` unpacks it into a pack folder",
            args.out.display(),
            bytes.len(),
            manifest.id,
            args.out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
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
    if let Some(name) = &args.look {
        let Some(look) = LookName::parse(name) else {
            let known: Vec<&str> = LookName::ALL.iter().map(|l| l.name()).collect();
            bail!("unknown look `{name}` (known: {})", known.join(", "));
        };
        let (Some(id), Some(title)) = (&args.id, &args.title) else {
            bail!("a look's pack needs --id ID --title TITLE");
        };
        let manifest = export_look(
            &args.out,
            id,
            title,
            &args.description,
            look,
            args.preview.as_deref(),
        )?;
        println!(
            "exported the look `{}` as `{}` (no network) to {}",
            look.name(),
            manifest.id,
            args.out.display()
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
