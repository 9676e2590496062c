//! The Rust hot paths around the network, timed with criterion: photo → input planes, output
//! planes → photo, one tile's input cut straight from a large photo, and the strength blend.
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

criterion_group!(benches, pixel_paths);
criterion_main!(benches);
