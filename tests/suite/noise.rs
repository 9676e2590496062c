//! The noise GAN: learning a known two-colour distribution without collapsing to one colour,
//! exact resume, and `train --mode noise` → `export` → `generate` through the CLI.

use crate::common;

use std::fs;
use std::path::Path;

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use portraitist::Preset;
use portraitist::create::Creator;
use portraitist::train::{Event, Mode, Sources, TrainConfig, Trainer};
use tempfile::tempdir;

const RED: [f32; 3] = [210.0, 50.0, 40.0];
const BLUE: [f32; 3] = [40.0, 70.0, 200.0];

/// Half the images one solid colour, half the other, each with a little per-image noise.
fn two_colours(dir: &Path, count: usize) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let base = if i % 2 == 0 { RED } else { BLUE };
        let shift = (i as f32 * 7.3) % 20.0 - 10.0;
        let image = RgbImage::from_pixel(32, 32, Rgb(base.map(|v| (v + shift) as u8)));
        image.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

fn noise_config(steps: u64) -> TrainConfig {
    TrainConfig {
        size: 32,
        batch: 8,
        steps,
        latent_size: 16,
        discriminator_width: 8,
        sample_every: 10_000,
        checkpoint_every: 10_000,
        sample_count: 2,
        // The textbook GAN: the mode-seeking term would pull samples apart, between the colours.
        mode_seeking_weight: 0.0,
        ..TrainConfig::for_mode(Mode::Noise)
    }
}

fn quiet(_: Event) {}

fn mean_colour(image: &RgbImage) -> [f32; 3] {
    let n = (image.width() * image.height()) as f32;
    let mut sum = [0.0f32; 3];
    for p in image.pixels() {
        for (total, v) in sum.iter_mut().zip(p.0) {
            *total += f32::from(v);
        }
    }
    sum.map(|v| v / n)
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

/// Mean distance of the samples' mean colours to the nearer mode, and how many samples lie
/// close (within 50 levels) to red and to blue.
fn against_modes(images: &[RgbImage]) -> (f32, usize, usize) {
    let mut total = 0.0;
    let (mut red, mut blue) = (0, 0);
    for image in images {
        let colour = mean_colour(image);
        let (to_red, to_blue) = (distance(colour, RED), distance(colour, BLUE));
        total += to_red.min(to_blue);
        red += usize::from(to_red < 50.0);
        blue += usize::from(to_blue < 50.0);
    }
    (total / images.len() as f32, red, blue)
}

fn samples(trainer: &Trainer, config: &TrainConfig) -> Vec<RgbImage> {
    let creator = Creator::new(
        trainer.latent_generator().unwrap(),
        config.latent_generator_config(),
        Device::flex(),
    );
    let seeds: Vec<u64> = (100..164).collect();
    pollster::block_on(creator.render_seeds(&seeds)).unwrap()
}

#[test]
fn samples_move_to_both_colours_of_the_data() {
    let dir = tempdir().unwrap();
    let data = dir.path().join("data");
    two_colours(&data, 16);
    let sources = Sources::Noise { portraits: data };
    // A textbook GAN on two colours swings between them (mostly red, then mostly blue) rather
    // than holding both in every sample set, and how fast depends on the seed and on rounding
    // (the last bits of a sum's order change the path). Mode collapse stays at one colour; so
    // one of the late sample sets (steps 400, 600, 800) must hold both colours, 8 or more of
    // each, and the samples must have come near the data (at their nearest of those steps).
    let config = noise_config(800);
    let mut trainer = Trainer::new(
        &sources,
        &dir.path().join("run"),
        config.clone(),
        false,
        &Device::flex(),
        &mut quiet,
    )
    .unwrap();
    let (before, ..) = against_modes(&samples(&trainer, &config));
    let mut seen = Vec::new();
    for steps in [400, 200, 200] {
        trainer.run(Some(steps), &mut quiet).unwrap();
        seen.push(against_modes(&samples(&trainer, &config)));
    }
    eprintln!(
        "distance to the nearer colour before: {before:.1}; at steps 400, 600, 800 (distance, \
         red, blue of 64): {seen:?}"
    );
    let nearest = seen.iter().map(|s| s.0).fold(f32::INFINITY, f32::min);
    assert!(
        nearest < before * 0.5,
        "samples did not approach the data: {before:.1} → {nearest:.1}"
    );
    let both = seen.iter().map(|s| s.1.min(s.2)).max().unwrap();
    assert!(
        both >= 8,
        "no late sample set holds both colours (8 or more of each): {seen:?}"
    );
}

#[test]
fn resuming_a_noise_run_gives_the_same_generator() {
    let dir = tempdir().unwrap();
    let data = dir.path().join("data");
    two_colours(&data, 6);
    let sources = Sources::Noise { portraits: data };
    let device = Device::flex();
    let weights = |t: &Trainer| common::param_values(&t.latent_generator().unwrap());

    let mut straight = Trainer::new(
        &sources,
        &dir.path().join("a"),
        noise_config(6),
        false,
        &device,
        &mut quiet,
    )
    .unwrap();
    let untrained = weights(&straight);
    straight.run(None, &mut quiet).unwrap();

    let run = dir.path().join("b");
    let mut first =
        Trainer::new(&sources, &run, noise_config(6), false, &device, &mut quiet).unwrap();
    first.run(Some(3), &mut quiet).unwrap();
    first.checkpoint().unwrap();
    drop(first);
    let mut resumed =
        Trainer::new(&sources, &run, noise_config(6), true, &device, &mut quiet).unwrap();
    assert_eq!(resumed.step(), 3);
    resumed.run(None, &mut quiet).unwrap();
    assert!(
        weights(&straight) == weights(&resumed),
        "resumed run differs"
    );
    assert!(untrained != weights(&straight), "training changed nothing");
}

#[test]
fn a_noise_run_refuses_a_transfer_folder_layout() {
    let dir = tempdir().unwrap();
    let data = dir.path().join("data");
    two_colours(&data, 4);
    let err = Trainer::new(
        &Sources::Noise { portraits: data },
        &dir.path().join("run"),
        TrainConfig {
            preset: Preset::Tiny,
            ..TrainConfig::default()
        },
        false,
        &Device::flex(),
        &mut quiet,
    )
    .err()
    .expect("an unpaired config with a noise folder is refused");
    assert!(err.to_string().contains("Noise"), "{err}");
}

use crate::portraitist;

fn pngs(dir: &Path) -> Vec<(String, RgbImage)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, image::open(p).unwrap().into_rgb8())
        })
        .collect()
}

#[test]
fn cli_trains_exports_and_generates_the_same_portraits_per_seed() {
    let dir = tempdir().unwrap();
    let data = dir.path().join("data");
    two_colours(&data, 8);
    fs::write(data.join("notes.txt"), "not a picture").unwrap();
    let run = dir.path().join("run");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = portraitist(&[
        "train",
        "--mode",
        "noise",
        "--content",
        &s(&data),
        "--out",
        &s(&run),
        "--size",
        "32",
        "--steps",
        "4",
        "--batch",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --resume finds the run's mode by itself and continues to the new --steps.
    let out = portraitist(&[
        "train",
        "--content",
        &s(&data),
        "--out",
        &s(&run),
        "--steps",
        "5",
        "--resume",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained 5 steps"));
    let config = fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("mode = \"noise\"") && config.contains("adversarial = \"bce\""));
    assert!(
        fs::read_to_string(run.join("losses.csv"))
            .unwrap()
            .starts_with("step,g_adv,d,d_real,d_fake,mode_seeking")
    );
    assert!(fs::read_dir(run.join("samples")).unwrap().count() >= 1);

    let models = dir.path().join("models");
    let pack = models.join("blobs");
    let out = portraitist(&[
        "export",
        "--run",
        &s(&run),
        "--id",
        "blobs",
        "--title",
        "Blobs",
        "--out",
        &s(&pack),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = fs::read_to_string(pack.join("style.json")).unwrap();
    assert!(manifest.contains("\"kind\": \"noise\"") && manifest.contains("\"latent\": 128"));
    let index = fs::read_to_string(models.join("index.json")).unwrap();
    assert!(index.contains("\"noise\""));
    let preview = image::open(pack.join("preview.jpg")).unwrap();
    assert_eq!(
        preview.width(),
        4 * 128 + 5 * 4,
        "preview is a 4×2 grid of 128 px cells"
    );

    let models_arg = s(&models);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (out, seed, count) in [(&a, "5", "3"), (&b, "6", "2")] {
        let status = portraitist(&[
            "--models",
            &models_arg,
            "generate",
            "--style",
            "blobs",
            "--seed",
            seed,
            "--count",
            count,
            "--out",
            &s(out),
        ]);
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    let (a, b) = (pngs(&a), pngs(&b));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "seed-00000005.png",
            "seed-00000006.png",
            "seed-00000007.png"
        ]
    );
    assert_eq!(a[0].1.dimensions(), (32, 32));
    // Same seed, separate runs: the same portrait; different seeds: different portraits.
    assert_eq!(a[1], b[0]);
    assert_eq!(a[2], b[1]);
    assert_ne!(a[0].1, a[1].1);

    let walk = dir.path().join("walk");
    let out = portraitist(&[
        "--models",
        &models_arg,
        "generate",
        "--style",
        "blobs",
        "--seed",
        "5",
        "--interpolate",
        "6",
        "--frames",
        "5",
        "--out",
        &s(&walk),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = pngs(&walk);
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[0].0, "walk-5-6-0000.png");
    // The walk starts at seed 5's portrait and ends at seed 6's, and moves in between.
    assert!(common::max_abs_diff(&frames[0].1, &a[0].1) <= 1);
    assert!(common::max_abs_diff(&frames[4].1, &b[0].1) <= 1);
    assert!(frames[2].1 != frames[0].1 && frames[2].1 != frames[4].1);

    let big = dir.path().join("big");
    let out = portraitist(&[
        "--models",
        &models_arg,
        "generate",
        "--style",
        "blobs",
        "--count",
        "1",
        "--scale",
        "3",
        "--out",
        &s(&big),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pngs(&big)[0].1.dimensions(), (96, 96));
    // A sheet too large to build is refused before anything is generated.
    let huge = dir.path().join("huge");
    let out = portraitist(&[
        "--models",
        &models_arg,
        "generate",
        "--style",
        "blobs",
        "--count",
        "10000",
        "--scale",
        "16",
        "--grid",
        "64",
        "--out",
        &s(&huge),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("megapixels"));
    assert!(!huge.exists() || fs::read_dir(&huge).unwrap().count() == 0);

    // eval: realism, diversity and memorisation figures, a report and a contact sheet.
    let eval_dir = dir.path().join("eval");
    let out = portraitist(&[
        "--models",
        &models_arg,
        "eval",
        "--style",
        "blobs",
        "--photos",
        &s(&data),
        "--training",
        &s(&data),
        "--samples",
        "8",
        "--vgg19",
        "missing.bin",
        "--out",
        &s(&eval_dir),
        "--record",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(eval_dir.join("summary.json")).unwrap()).unwrap();
    let metric = |name: &str| summary["metrics"][name].as_f64().unwrap_or(f64::NAN);
    assert!(metric("frechet_distance") > 0.0);
    // The training set against itself as "held out": the floor is zero.
    assert!(metric("frechet_distance_training_vs_real").abs() < 1e-6);
    assert!(metric("diversity") > 0.0 && metric("memorisation_ratio").is_finite());
    assert!(summary["on"].as_str().unwrap().contains("fallback"));
    let report = fs::read_to_string(eval_dir.join("report.md")).unwrap();
    assert!(report.contains("not FID") && report.contains("8×8"));
    let sheet = image::open(eval_dir.join("contact.png")).unwrap();
    assert_eq!(
        sheet.width(),
        2 * 128 + 3 * 4,
        "sample | nearest training portrait"
    );
    assert!(
        fs::read_to_string(pack.join("style.json"))
            .unwrap()
            .contains("frechet_distance")
    );

    // A noise pack cannot stylize, and a transfer pack cannot generate: both say so.
    let photo = s(&common::fixture("astronaut.jpg"));
    let out = portraitist(&[
        "--models",
        &models_arg,
        "stylize",
        "--style",
        "blobs",
        &photo,
        "--out",
        &s(&dir.path().join("x")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("noise generator"));
}
