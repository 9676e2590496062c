//! `portraitist grade`: before/after training pairs made by applying a known look to photos.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use portraitist::image_io::{self, OutputFormat};
use portraitist::looks::LookName;
use portraitist::stylize;

use super::describe;
use super::stylize::output_path;

#[derive(clap::Args)]
pub struct GradeArgs {
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

pub fn look_name(s: &str) -> Result<LookName, String> {
    LookName::parse(s).ok_or_else(|| {
        let names: Vec<&str> = LookName::ALL.iter().map(|l| l.name()).collect();
        format!("unknown look `{s}`; known: {}", names.join(", "))
    })
}

pub fn run(args: &GradeArgs) -> Result<ExitCode> {
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
                    super::write_file(path, &encoded)?;
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
