//! `portraitist generate`: new portraits from a noise pack, one per seed, or a latent walk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use portraitist::create::{self, Creator};
use portraitist::image_io::{self, OutputFormat};
use portraitist::pack::StylePack;

use super::{Backend, device, plural};

#[derive(clap::Args)]
pub struct GenerateArgs {
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

/// Largest `generate --grid` sheet, in pixels (as large as the biggest photo `stylize` accepts).
const MAX_SHEET_PIXELS: u64 = 100_000_000;

pub fn run(args: &GenerateArgs, models: &Path, backend: Backend) -> Result<()> {
    let pack = StylePack::resolve(&args.style, models)?;
    let creator = Creator::from_pack(&pack, &device(backend)?)?;
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
