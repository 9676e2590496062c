//! The native command line: `portraitist stylize | styles | train | learn | export | generate |
//! grade | eval`. One module per command in `cli/`; this file only parses and dispatches.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cli::Backend;
use cli::eval::EvalArgs;
use cli::export::ExportArgs;
use cli::generate::GenerateArgs;
use cli::grade::GradeArgs;
use cli::learn::LearnArgs;
use cli::stylize::StylizeArgs;
use cli::train::TrainArgs;

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

#[derive(Subcommand)]
enum Command {
    /// Apply a style to one or more photos.
    Stylize(StylizeArgs),
    /// List the style packs in the models folder.
    Styles,
    /// Learn a style from folders of photos, or (--mode noise) a portrait generator from one
    /// folder of portraits (a GAN); checkpoints and resumes.
    Train(TrainArgs),
    /// Add a new style to a pack in minutes, from one painting or a few images in a look (only
    /// the new style's norm offsets train; the network stays as it is).
    Learn(LearnArgs),
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", cli::describe(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(parsed: Cli) -> Result<ExitCode> {
    let (models, backend) = (&parsed.models, parsed.backend);
    match parsed.command {
        Command::Styles => cli::styles::run(models).map(|()| ExitCode::SUCCESS),
        Command::Stylize(args) => cli::stylize::run(&args, models, backend),
        Command::Train(args) => cli::train::run(&args, backend).map(|()| ExitCode::SUCCESS),
        Command::Grade(args) => cli::grade::run(&args),
        Command::Generate(args) => {
            cli::generate::run(&args, models, backend).map(|()| ExitCode::SUCCESS)
        }
        Command::Eval(args) => cli::eval::run(&args, models, backend).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => cli::export::run(&args, models),
        Command::Learn(args) => cli::learn::run(&args, models, backend).map(|()| ExitCode::SUCCESS),
    }
}
