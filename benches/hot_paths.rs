//! The Rust hot paths around the network, timed with criterion: photo → input planes, output
//! planes → photo, one tile's input cut straight from a large photo, and the strength blend; and
//! the styles step's VGG19 losses with their gradient on our CPU path (batch 4 at 128² and 256²,
//! skipped without data/vgg19/vgg19.bin).
//!
//! `cargo bench --bench hot_paths` (part of `bench/run`). Throughput is in pixels, so figures for
//! different sizes compare directly.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use image::{Rgb, RgbImage};
use portraitist::stylize::{Blend, Normalization, blend, hot_paths};

fn photo(side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        Rgb([
            (x * 7 % 251) as u8,
            (y * 3 % 253) as u8,
            ((x ^ y) % 255) as u8,
        ])
    })
}

fn pixel_paths(c: &mut Criterion) {
    let norm = Normalization::default();
    for side in [512u32, 1024] {
        let pixels = u64::from(side * side);
        let input = photo(side);
        let mut group = c.benchmark_group(format!("{side}x{side}"));
        group.throughput(Throughput::Elements(pixels));
        group.bench_function("photo_to_input", |b| {
            b.iter(|| hot_paths::photo_to_input(black_box(&input), &norm))
        });
        let planes = hot_paths::photo_to_input(&input, &norm);
        group.bench_function("output_to_photo", |b| {
            b.iter_batched(
                || planes.clone(),
                |data| hot_paths::output_to_photo(data, side as usize, side as usize, &norm),
                criterion::BatchSize::LargeInput,
            )
        });
        let styled = photo(side)
            .into_raw()
            .into_iter()
            .map(|v| 255 - v)
            .collect();
        let styled = RgbImage::from_raw(side, side, styled).expect("same size");
        for (name, keep_colors) in [("blend", false), ("blend_keep_colors", true)] {
            let look = Blend {
                strength: 0.7,
                keep_colors,
            };
            group.bench_function(name, |b| {
                b.iter(|| blend(black_box(&input), black_box(&styled), look))
            });
        }
        group.finish();
    }
    // A 512² tile (with its reflect-padded context at the corner) out of a 4K photo.
    let large = photo(4096);
    let mut group = c.benchmark_group("tile of 4096x4096");
    group.throughput(Throughput::Elements(512 * 512));
    for (name, area) in [
        ("corner", [0, 0, 512, 512]),
        ("inside", [1024, 1024, 1536, 1536]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| hot_paths::tile_input(black_box(&large), &norm, area))
        });
    }
    group.finish();
}

/// `CpuVgg::loss` as the styles step calls it: four outputs against their photos' features and
/// their style's Gram matrices.
fn vgg19_loss(c: &mut Criterion) {
    use portraitist::engine::CpuVgg;
    use portraitist::engine::cpu::Targets;
    let path = portraitist::train::TrainConfig::default().vgg19;
    let Ok(bytes) = std::fs::read(&path) else {
        println!("vgg19_loss: skipped ({} is missing)", path.display());
        return;
    };
    let device = burn::tensor::Device::flex();
    let vgg = portraitist::model::Vgg19::from_bytes(&bytes, &device).expect("VGG19 weights");
    let cpu = CpuVgg::new(&vgg);
    let mut group = c.benchmark_group("vgg19_loss");
    group.sample_size(10);
    for side in [128usize, 256] {
        let image = |k: usize| -> Vec<f32> {
            (0..3 * side * side)
                .map(|i| ((i * (7 + k)) % 255) as f32 / 127.5 - 1.0)
                .collect()
        };
        let photos: Vec<_> = (0..4)
            .map(|k| cpu.features(&image(k), side, side))
            .collect();
        let grams = CpuVgg::grams(&cpu.features(&image(9), side, side));
        let targets: Vec<Targets> = photos
            .iter()
            .map(|photo| Targets {
                photo,
                grams: grams.iter().map(Vec::as_slice).collect(),
                style_scale: 1.0,
                content_emphasis: None,
            })
            .collect();
        let outputs: Vec<_> = (4..8).map(image).collect();
        group.bench_function(format!("batch 4 at {side}x{side}"), |b| {
            b.iter(|| cpu.loss(black_box(&outputs), side, side, &targets, 1.0, 3.0))
        });
    }
    group.finish();
}

criterion_group!(benches, pixel_paths, vgg19_loss);
criterion_main!(benches);
