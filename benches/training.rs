//! Training speed on the CPU: steps per second for `tiny` at 128 and 256 px and `small` at 256
//! px, batch 1, unpaired (CycleGAN: two generators, two discriminators) and paired (pix2pix); the
//! noise GAN's CPU preset (`tiny` at 64 px, batch 16); and the styles mode's (a two-style `tiny`
//! with VGG19 losses at 128 and 256 px, batch 4; skipped without the VGG19 weights). Each on our
//! CPU path (the trainer's default on the CPU) and, for reference, through Burn's autodiff
//! (`(Burn)` rows).
//!
//! `cargo bench --profile dev --bench training [-- MODE[@SIZE]]` — prints figures; never fails on
//! timing. `MODE` (e.g. `styles`) keeps only the cases of that mode, `@SIZE` (e.g. `paired@256`)
//! only those at that size; `BENCH_OURS_ONLY=1` leaves out the Burn autodiff rows (for profiling).

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
        "{:<15} {:<6} {:>5} {:>5} {:>9} {:>9} {:>9}",
        "mode", "preset", "size", "batch", "s/step", "steps/s", "peak MiB"
    );
    let cases = [
        (Mode::Unpaired, Preset::Tiny, 128, 6),
        (Mode::Paired, Preset::Tiny, 128, 6),
        (Mode::Paired, Preset::Tiny, 256, 4),
        (Mode::Unpaired, Preset::Small, 256, 3),
        (Mode::Paired, Preset::Small, 256, 3),
        (Mode::Noise, Preset::Tiny, 64, 10),
        (Mode::Styles, Preset::Tiny, 128, 3),
        (Mode::Styles, Preset::Tiny, 256, 2),
    ];
    // Each case on our CPU path (the trainer's default on the CPU), then, for reference, through
    // Burn's autodiff.
    let cases = cases
        .into_iter()
        .map(|c| (c, false))
        .chain(cases.into_iter().map(|c| (c, true)));
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.to_lowercase());
    let (only_mode, only_size) = match only.as_deref().map(|a| a.split_once('@')) {
        Some(Some((mode, size))) => (Some(mode.to_string()), size.parse::<usize>().ok()),
        Some(None) => (only.clone(), None),
        None => (None, None),
    };
    let ours_only = std::env::var("BENCH_OURS_ONLY").is_ok_and(|v| v == "1");
    for (i, ((mode, preset, size, steps), burn)) in cases.enumerate() {
        if only_mode
            .as_ref()
            .is_some_and(|m| format!("{mode:?}").to_lowercase() != *m)
            || only_size.is_some_and(|s| s != size)
            || (burn && ours_only)
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
        reset_peak_memory();
        let mut trainer = Trainer::new(
            &sources,
            &run,
            config,
            false,
            &Device::flex(),
            &mut |_: Event| {},
        )
        .unwrap();
        if burn {
            trainer = trainer.with_burn_autodiff();
        }
        trainer.run(Some(1), &mut |_| {}).unwrap(); // warm-up
        let started = Instant::now();
        trainer.run(Some(steps), &mut |_| {}).unwrap();
        let per_step = started.elapsed().as_secs_f64() / steps as f64;
        println!(
            "{:<15} {:<6} {:>5} {:>5} {:>9.3} {:>9.2} {:>9}",
            format!("{mode:?}{}", if burn { " (Burn)" } else { "" }),
            preset.name(),
            size,
            batch,
            per_step,
            1.0 / per_step,
            peak_memory_mib().map_or("–".into(), |m| format!("{m:.0}"))
        );
        drop(trainer);
    }
}

/// Linux: restarts the process's peak resident memory count (`VmHWM`) from the current size.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Linux: the process's peak resident memory since [`reset_peak_memory`], in MiB.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
