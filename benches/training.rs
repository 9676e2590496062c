//! Training speed on the CPU backend: steps per second for `tiny` at 128 px and `small` at
//! 256 px, batch 1, unpaired (CycleGAN: two generators, two discriminators) and paired
//! (pix2pix); the noise GAN's CPU preset (`tiny` at 64 px, batch 16); and the styles mode's
//! (a two-style `tiny` with VGG19 losses at 128 and 256 px, batch 4, VGG19 on our CPU path and,
//! for reference, through Burn's autodiff; skipped without the VGG19 weights).
//!
//! `cargo bench --profile dev --bench training [-- MODE]` — prints figures; never fails on timing.
//! `MODE` (e.g. `styles`) keeps only the cases of that mode.

use std::time::Instant;

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use portraitist::Preset;
use portraitist::train::{Event, Mode, Sources, TrainConfig, Trainer};

fn photos(dir: &std::path::Path, count: u32, side: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        RgbImage::from_fn(side, side, |x, y| {
            Rgb([(x * 3 + i * 40) as u8, (y * 5) as u8, ((x ^ y) + i) as u8])
        })
        .save(dir.join(format!("{i}.png")))
        .unwrap();
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    photos(&dir.path().join("a"), 4, 300);
    photos(&dir.path().join("b"), 4, 300);
    photos(&dir.path().join("pairs/before"), 4, 300);
    photos(&dir.path().join("pairs/after"), 4, 300);
    photos(&dir.path().join("styles/one"), 4, 300);
    photos(&dir.path().join("styles/two"), 4, 300);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("training steps/s, CPU (flex), {threads} threads");
    println!(
        "{:<15} {:<6} {:>5} {:>5} {:>9} {:>9}",
        "mode", "preset", "size", "batch", "s/step", "steps/s"
    );
    let cases = [
        (Mode::Unpaired, Preset::Tiny, 128, 6),
        (Mode::Paired, Preset::Tiny, 128, 6),
        (Mode::Unpaired, Preset::Small, 256, 3),
        (Mode::Paired, Preset::Small, 256, 3),
        (Mode::Noise, Preset::Tiny, 64, 10),
        (Mode::Styles, Preset::Tiny, 128, 3),
        (Mode::Styles, Preset::Tiny, 256, 2),
    ];
    let styles_cases = cases.iter().filter(|c| c.0 == Mode::Styles).count();
    let cases = cases.into_iter().map(|c| (c, false)).chain(
        cases
            .into_iter()
            .rev()
            .take(styles_cases)
            .rev()
            .map(|c| (c, true)),
    );
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.to_lowercase());
    for (i, ((mode, preset, size, steps), burn_vgg)) in cases.enumerate() {
        if only
            .as_ref()
            .is_some_and(|m| format!("{mode:?}").to_lowercase() != *m)
        {
            continue;
        }
        let vgg = TrainConfig::default().vgg19;
        if mode == Mode::Styles && !vgg.exists() {
            println!("styles: skipped ({} is missing)", vgg.display());
            continue;
        }
        let sources = match mode {
            Mode::Unpaired => Sources::Unpaired {
                content: dir.path().join("a"),
                style: dir.path().join("b"),
            },
            Mode::Paired => Sources::Paired {
                pairs: dir.path().join("pairs"),
            },
            Mode::Noise => Sources::Noise {
                portraits: dir.path().join("a"),
            },
            Mode::Styles => Sources::Styles {
                content: dir.path().join("a"),
                styles: dir.path().join("styles"),
            },
        };
        let config = TrainConfig {
            mode,
            preset,
            size,
            steps: 1000,
            sample_every: 100_000,
            checkpoint_every: 100_000,
            ..TrainConfig::for_mode(mode)
        };
        let batch = config.batch;
        let run = dir.path().join(format!("run{i}"));
        let mut trainer = Trainer::new(
            &sources,
            &run,
            config,
            false,
            &Device::flex(),
            &mut |_: Event| {},
        )
        .unwrap();
        if burn_vgg {
            trainer = trainer.with_burn_vgg();
        }
        trainer.run(Some(1), &mut |_| {}).unwrap(); // warm-up
        let started = Instant::now();
        trainer.run(Some(steps), &mut |_| {}).unwrap();
        let per_step = started.elapsed().as_secs_f64() / steps as f64;
        println!(
            "{:<15} {:<6} {:>5} {:>5} {:>9.3} {:>9.2}",
            format!("{mode:?}{}", if burn_vgg { " (Burn VGG)" } else { "" }),
            preset.name(),
            size,
            batch,
            per_step,
            1.0 / per_step
        );
    }
}
