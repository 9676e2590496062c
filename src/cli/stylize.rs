//! `portraitist stylize`: a style applied to photos, written beside each other in one folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

use portraitist::image_io::{self, OutputFormat};
use portraitist::pack::{StylePack, StyleRef};
use portraitist::stylize::{self, Blend, DEFAULT_TILE, Stylizer};

use super::{Backend, describe, device};

#[derive(clap::Args)]
pub struct StylizeArgs {
    /// Style id from the models folder, or the path of a pack folder. For a multi-style pack,
    /// `PACK:STYLE` picks one of its styles and `PACK:STYLE=0.7,OTHER=0.3` mixes them (shares
    /// are scaled to sum to 1); `PACK` alone is its first style.
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

pub fn run(args: &StylizeArgs, models: &Path, backend: Backend) -> Result<ExitCode> {
    let style = StyleRef::parse(&args.style)?;
    let pack = StylePack::resolve(&style.pack, models)?;
    let device = device(backend)?;
    let stylizer = Stylizer::from_pack_style(&pack, &style, &device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let format = match args.format {
        Format::Png => OutputFormat::Png,
        Format::Jpg => OutputFormat::Jpeg(args.quality),
        Format::Webp => OutputFormat::WebP,
    };
    let settings = Blend {
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
            let (w, h) = stylize_one(
                input,
                &out,
                &stylizer,
                args.max_side,
                tile,
                settings,
                format,
            )?;
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

fn stylize_one(
    input: &Path,
    out: &Path,
    stylizer: &portraitist::Stylizer,
    max_side: Option<u32>,
    tile: Option<usize>,
    blend: Blend,
    format: OutputFormat,
) -> Result<(u32, u32)> {
    let bytes = std::fs::read(input).context("cannot read the file")?;
    let photo = image_io::decode(&bytes)?;
    let photo = match max_side {
        Some(side) => stylize::fit_within(&photo, side),
        None => photo,
    };
    let styled = stylizer.render_blocking(&photo, tile, &mut |_, _| {})?;
    let result = stylize::blend(&photo, &styled, blend);
    let encoded = image_io::encode(&result, format).context("cannot encode the result")?;
    super::write_file(out, &encoded)?;
    Ok(result.dimensions())
}

/// `<out>/<input stem>.<ext>`, made unique within this run, never one of the inputs.
pub fn output_path(
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
