//! Training: learning a known style, exact resume, broken data, export → stylize.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Distribution, Tensor};
use image::{Rgb, RgbImage};
use portraitist::photos::FolderError;
use portraitist::stylize::to_ycbcr;
use portraitist::train::{Event, Sources, TrainConfig, TrainError, Trainer};
use portraitist::{Preset, StylePack};
use tempfile::tempdir;

/// The sepia grade of the classical style: luminance mapped onto a warm brown ramp.
fn sepia(image: &RgbImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b] = image.get_pixel(x, y).0.map(f32::from);
        let l = 0.299 * r + 0.587 * g + 0.114 * b;
        Rgb([
            (l * 1.07 + 20.0).min(255.0) as u8,
            (l * 0.74 + 20.0) as u8,
            (l * 0.43 + 10.0) as u8,
        ])
    })
}

/// Crops of the two public-domain fixtures, varied in position and scale.
fn crops(count: usize, offset: u32) -> Vec<RgbImage> {
    let sources = [
        common::astronaut(),
        image::open(common::fixture("grace_hopper.jpg"))
            .unwrap()
            .into_rgb8(),
    ];
    (0..count)
        .map(|i| {
            let src = &sources[i % 2];
            let side = 96 + (i as u32 * 37 + offset) % 100;
            let x = (i as u32 * 53 + offset * 7) % (src.width() - side);
            let y = (i as u32 * 31 + offset * 3) % (src.height() - side);
            let crop = image::imageops::crop_imm(src, x, y, side, side).to_image();
            image::imageops::resize(&crop, 64, 64, image::imageops::FilterType::Triangle)
        })
        .collect()
}

fn write_all(dir: &Path, images: &[RgbImage]) {
    fs::create_dir_all(dir).unwrap();
    for (i, image) in images.iter().enumerate() {
        image.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

fn tiny_config(steps: u64) -> TrainConfig {
    TrainConfig {
        preset: Preset::Tiny,
        size: 32,
        steps,
        discriminator_width: 8,
        sample_every: 1000,
        checkpoint_every: 1000,
        sample_count: 2,
        ..TrainConfig::default()
    }
}

fn quiet(_: Event) {}

fn mean_chroma(images: &[RgbImage]) -> [f32; 2] {
    let mut sum = [0.0f32; 2];
    let mut n = 0.0;
    for image in images {
        for p in image.pixels() {
            let [_, cb, cr] = to_ycbcr(p.0.map(f32::from));
            sum[0] += cb;
            sum[1] += cr;
            n += 1.0;
        }
    }
    [sum[0] / n, sum[1] / n]
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[test]
fn a_few_hundred_steps_move_outputs_toward_the_style() {
    let dir = tempdir().unwrap();
    let (content_dir, style_dir) = (dir.path().join("content"), dir.path().join("style"));
    write_all(&content_dir, &crops(12, 0));
    let style: Vec<RgbImage> = crops(12, 17).iter().map(sepia).collect();
    write_all(&style_dir, &style);
    let sources = Sources::Unpaired {
        content: content_dir,
        style: style_dir,
    };
    let device = Device::flex();
    let mut trainer = Trainer::new(
        &sources,
        &dir.path().join("run"),
        tiny_config(300),
        false,
        &device,
        &mut quiet,
    )
    .unwrap();
    trainer.run(None, &mut quiet).unwrap();

    // Held-out photos: crops the run never saw.
    let held_out = crops(6, 41);
    let stylizer = portraitist::Stylizer::new(
        trainer.generator().unwrap().to_device(&device),
        Preset::Tiny.generator(),
        Default::default(),
        device,
    );
    let outputs: Vec<RgbImage> = held_out
        .iter()
        .map(|p| stylizer.render_blocking(p, None, &mut |_, _| {}).unwrap())
        .collect();
    let target = mean_chroma(&style);
    let before = distance(mean_chroma(&held_out), target);
    let after = distance(mean_chroma(&outputs), target);
    assert!(
        after < before * 0.5,
        "chroma distance to the style: {before:.2} before, {after:.2} after"
    );
    // The person must still be there: outputs stay closer to their own input's brightness than
    // to another photo's.
    let luma = |img: &RgbImage| {
        img.pixels()
            .map(|p| to_ycbcr(p.0.map(f32::from))[0])
            .collect::<Vec<_>>()
    };
    let own: f32 = luma(&outputs[0])
        .iter()
        .zip(luma(&held_out[0]))
        .map(|(a, b)| (a - b).abs())
        .sum();
    let other: f32 = luma(&outputs[0])
        .iter()
        .zip(luma(&held_out[1]))
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(own < other, "output lost its photo: {own} vs {other}");
}

fn weights(trainer: &Trainer) -> Vec<f32> {
    common::param_values(&trainer.generator().unwrap())
}

#[test]
fn resuming_gives_the_same_weights_as_an_uninterrupted_run() {
    let dir = tempdir().unwrap();
    let (content_dir, style_dir) = (dir.path().join("content"), dir.path().join("style"));
    write_all(&content_dir, &crops(4, 0));
    write_all(
        &style_dir,
        &crops(4, 9).iter().map(sepia).collect::<Vec<_>>(),
    );
    let sources = Sources::Unpaired {
        content: content_dir,
        style: style_dir,
    };
    let device = Device::flex();

    let mut straight = Trainer::new(
        &sources,
        &dir.path().join("a"),
        tiny_config(6),
        false,
        &device,
        &mut quiet,
    )
    .unwrap();
    straight.run(None, &mut quiet).unwrap();

    let run = dir.path().join("b");
    let mut first =
        Trainer::new(&sources, &run, tiny_config(6), false, &device, &mut quiet).unwrap();
    first.run(Some(3), &mut quiet).unwrap();
    first.checkpoint().unwrap();
    drop(first);
    let mut resumed =
        Trainer::new(&sources, &run, tiny_config(6), true, &device, &mut quiet).unwrap();
    assert_eq!(resumed.step(), 3);
    resumed.run(None, &mut quiet).unwrap();

    assert_eq!(resumed.step(), 6);
    assert!(
        weights(&straight) == weights(&resumed),
        "resumed weights differ from the uninterrupted run"
    );
    // Guard: training changes weights, so equality above is not vacuous.
    let untrained = Trainer::new(
        &sources,
        &dir.path().join("c"),
        tiny_config(6),
        false,
        &device,
        &mut quiet,
    )
    .unwrap();
    assert!(weights(&untrained) != weights(&straight));
}

#[test]
fn a_run_folder_is_not_overwritten_without_resume() {
    let dir = tempdir().unwrap();
    let (content_dir, style_dir) = (dir.path().join("content"), dir.path().join("style"));
    write_all(&content_dir, &crops(2, 0));
    write_all(&style_dir, &crops(2, 5));
    let sources = Sources::Unpaired {
        content: content_dir,
        style: style_dir,
    };
    let run = dir.path().join("run");
    let mut t = Trainer::new(
        &sources,
        &run,
        tiny_config(1),
        false,
        &Device::flex(),
        &mut quiet,
    )
    .unwrap();
    t.run(None, &mut quiet).unwrap();
    let again = Trainer::new(
        &sources,
        &run,
        tiny_config(1),
        false,
        &Device::flex(),
        &mut quiet,
    );
    assert!(matches!(again, Err(TrainError::Usage(m)) if m.contains("--resume")));
}

#[test]
fn broken_files_are_skipped_and_counted_and_loops_do_not_hang() {
    let dir = tempdir().unwrap();
    let content = dir.path().join("content");
    write_all(&content, &crops(3, 0));
    fs::write(content.join("notes.jpg"), b"not a photo").unwrap();
    let jpeg = fs::read(common::fixture("astronaut.jpg")).unwrap();
    fs::create_dir_all(content.join("nested")).unwrap();
    fs::write(content.join("nested/cut.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    fs::write(
        content.join("readme.txt"),
        b"ignored: not a photo extension",
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&content, content.join("nested/loop")).unwrap();
    let style = dir.path().join("style");
    write_all(&style, &crops(2, 3));

    let run = dir.path().join("run");
    let mut summary = None;
    let sources = Sources::Unpaired { content, style };
    let mut events = |e: Event| {
        if let Event::Loaded { summary: s } = e {
            summary = Some(s.clone());
        }
    };
    Trainer::new(
        &sources,
        &run,
        tiny_config(1),
        false,
        &Device::flex(),
        &mut events,
    )
    .unwrap();
    let summary = summary.unwrap();
    assert_eq!(summary.folders[0].1, 3, "three good content photos");
    let reasons: Vec<&str> = summary.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        summary
            .skipped
            .iter()
            .any(|(p, _)| p.ends_with("notes.jpg")),
        "{reasons:?}"
    );
    assert!(
        summary.skipped.iter().any(|(p, _)| p.ends_with("cut.jpg")),
        "{reasons:?}"
    );
    #[cfg(unix)]
    assert!(reasons.contains(&"symbolic link loop"), "{reasons:?}");
    let log = fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("notes.jpg") && log.contains("cut.jpg"));
}

#[test]
fn an_empty_folder_is_refused_by_name() {
    let dir = tempdir().unwrap();
    let (content, style) = (dir.path().join("content"), dir.path().join("style"));
    fs::create_dir_all(&content).unwrap();
    fs::write(content.join("broken.png"), b"x").unwrap();
    write_all(&style, &crops(2, 1));
    let sources = Sources::Unpaired {
        content: content.clone(),
        style,
    };
    let err = Trainer::new(
        &sources,
        &dir.path().join("run"),
        tiny_config(1),
        false,
        &Device::flex(),
        &mut quiet,
    )
    .err()
    .expect("an empty folder is an error");
    assert!(
        matches!(err, TrainError::Data(FolderError::Empty { skipped: 1, .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&content.display().to_string()));
}

#[test]
fn paired_training_runs_and_learns_the_grade() {
    let dir = tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    let before = crops(8, 2);
    write_all(&pairs.join("before"), &before);
    write_all(
        &pairs.join("after"),
        &before.iter().map(sepia).collect::<Vec<_>>(),
    );
    let sources = Sources::Paired { pairs };
    let config = TrainConfig {
        mode: portraitist::train::Mode::Paired,
        ..tiny_config(300)
    };
    let device = Device::flex();
    let mut trainer = Trainer::new(
        &sources,
        &dir.path().join("run"),
        config,
        false,
        &device,
        &mut quiet,
    )
    .unwrap();
    trainer.run(None, &mut quiet).unwrap();
    let stylizer = portraitist::Stylizer::new(
        trainer.generator().unwrap(),
        Preset::Tiny.generator(),
        Default::default(),
        device,
    );
    let photo = &crops(1, 77)[0];
    let out = stylizer
        .render_blocking(photo, None, &mut |_, _| {})
        .unwrap();
    let (start, end) = (
        common::mean_abs_diff(photo, &sepia(photo)),
        common::mean_abs_diff(&out, &sepia(photo)),
    );
    assert!(
        end < start * 0.6,
        "distance to the true grade: {start:.1} before, {end:.1} after"
    );
}

use crate::portraitist;

#[test]
fn cli_trains_exports_and_the_pack_stylizes() {
    let dir = tempdir().unwrap();
    let (content, style) = (dir.path().join("content"), dir.path().join("style"));
    write_all(&content, &crops(3, 0));
    write_all(&style, &crops(3, 8).iter().map(sepia).collect::<Vec<_>>());
    let run = dir.path().join("run");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = portraitist(&[
        "train",
        "--content",
        &s(&content),
        "--style-photos",
        &s(&style),
        "--out",
        &s(&run),
        "--preset",
        "tiny",
        "--size",
        "32",
        "--steps",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "config.toml",
        "losses.csv",
        "run.log",
        "samples/step-0000003.png",
        "checkpoints/latest",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let models = dir.path().join("models");
    let pack = models.join("sepia-test");
    let out = portraitist(&[
        "export",
        "--run",
        &s(&run),
        "--id",
        "sepia-test",
        "--title",
        "Sepia (test)",
        "--out",
        &s(&pack),
        "--licence",
        "public domain",
        "--licence",
        "public domain",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(pack.join("style.json")).unwrap()).unwrap();
    assert_eq!(manifest["training"]["steps"], 3);
    assert_eq!(manifest["training"]["sources"][0]["images"], 3);
    assert!(pack.join("preview.jpg").is_file());
    let index = fs::read_to_string(models.join("index.json")).unwrap();
    assert!(index.contains("sepia-test"));

    let styled = dir.path().join("styled");
    let out = Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .args([
            "stylize",
            "--style",
            "sepia-test",
            common::fixture("astronaut.jpg").to_str().unwrap(),
            "--out",
            &s(&styled),
        ])
        .env("PORTRAITIST_MODELS", &models)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        image::open(styled.join("astronaut.png"))
            .unwrap()
            .into_rgb8()
            .dimensions(),
        (227, 229)
    );

    // The same generator as SafeTensors, from the run and from the pack: loaded back into a
    // fresh network it computes what the pack's does (f16 storage in the pack allows 1e-2).
    let reference = StylePack::load(&pack)
        .unwrap()
        .generator(&Device::flex())
        .unwrap();
    let probe = Tensor::<4>::random(
        [1, 3, 32, 32],
        Distribution::Uniform(-1.0, 1.0),
        &Device::flex(),
    );
    let expected = reference.forward(probe.clone());
    for (from, source) in [("--run", s(&run)), ("--style", s(&pack))] {
        let file = dir.path().join("weights.safetensors");
        let out = portraitist(&[
            "export",
            "--format",
            "safetensors",
            from,
            &source,
            "--out",
            &s(&file),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut network = Preset::Tiny.generator().init(&Device::flex());
        let mut store = SafetensorsStore::from_file(&file);
        network.load_from(&mut store).unwrap();
        let diff: f32 = (network.forward(probe.clone()) - expected.clone())
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-2, "{from}: outputs differ by {diff}");
        let bytes = fs::read(&file).unwrap();
        let header = String::from_utf8_lossy(&bytes[8..bytes.len().min(4096)]).to_string();
        assert!(header.contains("portraitist.generator"), "{header}");
        assert!(header.contains("blocks.0.first.conv.weight"), "{header}");
    }
    let refused = portraitist(&["export", "--style", &s(&pack), "--out", "x"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--format safetensors"));
}

#[test]
fn a_killed_run_resumes_and_completes() {
    let dir = tempdir().unwrap();
    let (content, style) = (dir.path().join("content"), dir.path().join("style"));
    write_all(&content, &crops(3, 0));
    write_all(&style, &crops(3, 8).iter().map(sepia).collect::<Vec<_>>());
    let config = dir.path().join("fast.toml");
    fs::write(&config, "preset = \"tiny\"\nsize = 32\nsteps = 400\ncheckpoint_every = 2\nlog_every = 1\nsample_every = 1000\ndiscriminator_width = 8\n").unwrap();
    let run = dir.path().join("run");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = [
        "train",
        "--content",
        &s(&content),
        "--style",
        &s(&style),
        "--out",
        &s(&run),
        "--config",
        &s(&config),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .args(args)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !run.join("checkpoints/latest").exists() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let killed_at = fs::read_to_string(run.join("checkpoints/latest")).unwrap();

    let out = portraitist(&[&args[..], &["--resume"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(run.join("checkpoints/latest")).unwrap(),
        "step-0000400",
        "killed at {killed_at}"
    );
    let log = fs::read_to_string(run.join("losses.csv")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=400).collect::<Vec<_>>(),
        "every step logged exactly once"
    );
}
