//! The Stylizer and its blending: what both front ends rely on.

use crate::common;

use burn::tensor::Device;
use image::RgbImage;
use portraitist::Stylizer;
use portraitist::stylize::{
    self, Blend, CancelToken, Normalization, RenderError, from_ycbcr, to_ycbcr,
};

fn stylizer(seed: u64) -> Stylizer {
    stylizer_of(common::test_config(), seed)
}

fn stylizer_of(config: portraitist::GeneratorConfig, seed: u64) -> Stylizer {
    let generator = common::random_generator(&config, seed);
    Stylizer::new(generator, config, Normalization::default(), Device::flex())
}

#[test]
fn output_has_the_input_size_for_any_aspect_ratio() {
    let s = stylizer(1);
    for (w, h) in [(16, 16), (17, 300), (227, 229), (301, 19)] {
        let photo = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
        });
        assert_eq!(
            s.render_blocking(&photo, None, &mut |_, _| {})
                .unwrap()
                .dimensions(),
            (w, h)
        );
    }
}

#[test]
fn tiled_output_matches_the_whole_image_within_tolerance() {
    tiled_matches_whole(stylizer(2));
}

#[test]
fn tiled_output_with_the_input_skip_matches_the_whole_image() {
    tiled_matches_whole(stylizer_of(
        common::test_config().with_input_skip(Some(true)),
        3,
    ));
}

fn tiled_matches_whole(s: Stylizer) {
    // A real photo, upscaled so that it needs a grid of tiles.
    let photo = image::imageops::resize(
        &common::astronaut(),
        520,
        500,
        image::imageops::FilterType::Triangle,
    );
    let whole = s.render_blocking(&photo, None, &mut |_, _| {}).unwrap();
    let mut tiles = 0;
    let tiled = s
        .render_blocking(&photo, Some(s.min_tile()), &mut |_, total| tiles = total)
        .unwrap();
    assert!(tiles >= 9, "expected a grid of tiles, got {tiles}");
    // Below STATS_SIDE the statistics are the whole photo's, so only float rounding differs.
    let max = common::max_abs_diff(&whole, &tiled);
    assert!(max <= 1, "tiled differs from whole by up to {max} levels");
}

#[test]
fn a_cancel_token_stops_a_tiled_run_between_tiles_and_the_next_run_completes() {
    let token = CancelToken::new();
    let s = stylizer(2).with_cancel(token.clone());
    let photo = image::imageops::resize(
        &common::astronaut(),
        400,
        400,
        image::imageops::FilterType::Triangle,
    );
    let mut tiles_done = 0;
    let result = s.render_blocking(&photo, Some(s.min_tile()), &mut |done, _| {
        tiles_done = done;
        if done == 1 {
            token.cancel();
        }
    });
    assert!(matches!(result, Err(RenderError::Cancelled)), "{result:?}");
    assert_eq!(tiles_done, 1, "stops at the tile after the request");
    assert!(!token.is_cancelled(), "the stopped run used up the request");
    let again = s.render_blocking(&photo, Some(s.min_tile()), &mut |_, _| {});
    assert!(again.is_ok(), "{again:?}");
}

#[test]
fn strength_zero_returns_the_input_exactly() {
    let s = stylizer(3);
    let photo = common::astronaut();
    let styled = s.render_blocking(&photo, None, &mut |_, _| {}).unwrap();
    assert_ne!(styled, photo);
    let out = stylize::blend(
        &photo,
        &styled,
        Blend {
            strength: 0.0,
            keep_colors: true,
        },
    );
    assert_eq!(out, photo);
}

#[test]
fn strength_interpolates_between_photo_and_style() {
    let photo = common::astronaut();
    let styled = stylizer(4)
        .render_blocking(&photo, None, &mut |_, _| {})
        .unwrap();
    let full = stylize::blend(&photo, &styled, Blend::default());
    assert_eq!(full, styled);
    let half = stylize::blend(
        &photo,
        &styled,
        Blend {
            strength: 0.5,
            keep_colors: false,
        },
    );
    let to_photo = common::mean_abs_diff(&half, &photo);
    let to_style = common::mean_abs_diff(&half, &styled);
    let between = common::mean_abs_diff(&photo, &styled);
    assert!((to_photo - between / 2.0).abs() < 1.0 && (to_style - between / 2.0).abs() < 1.0);
}

fn chroma(image: &RgbImage) -> Vec<[f32; 2]> {
    image
        .pixels()
        .map(|p| {
            let [_, cb, cr] = to_ycbcr(p.0.map(f32::from));
            [cb, cr]
        })
        .collect()
}

fn mean_chroma_distance(a: &RgbImage, b: &RgbImage) -> f32 {
    let (ca, cb) = (chroma(a), chroma(b));
    ca.iter()
        .zip(&cb)
        .map(|(x, y)| (x[0] - y[0]).abs() + (x[1] - y[1]).abs())
        .sum::<f32>()
        / ca.len() as f32
}

#[test]
fn keep_colors_keeps_the_input_chroma_and_the_style_brightness() {
    let photo = common::astronaut();
    let styled = stylizer(5)
        .render_blocking(&photo, None, &mut |_, _| {})
        .unwrap();
    let kept = stylize::blend(
        &photo,
        &styled,
        Blend {
            strength: 1.0,
            keep_colors: true,
        },
    );
    let plain = stylize::blend(&photo, &styled, Blend::default());
    let kept_distance = mean_chroma_distance(&kept, &photo);
    let plain_distance = mean_chroma_distance(&plain, &photo);
    assert!(
        plain_distance > 5.0,
        "the test style must change colours ({plain_distance})"
    );
    // Rounding and gamut clipping leave a little chroma error, far below the style's own.
    assert!(kept_distance < 2.5, "chroma moved by {kept_distance}");
    let luma = |img: &RgbImage| {
        img.pixels()
            .map(|p| to_ycbcr(p.0.map(f32::from))[0])
            .collect::<Vec<_>>()
    };
    let (ly, ls) = (luma(&kept), luma(&styled));
    let luma_error = ly.iter().zip(&ls).map(|(a, b)| (a - b).abs()).sum::<f32>() / ly.len() as f32;
    assert!(
        luma_error < 3.0,
        "brightness should come from the style ({luma_error})"
    );
    let _ = from_ycbcr;
}

#[test]
fn max_side_downscales_and_never_upscales() {
    let photo = RgbImage::new(1000, 500);
    assert_eq!(stylize::fit_within(&photo, 256).dimensions(), (256, 128));
    assert_eq!(stylize::fit_within(&photo, 4000).dimensions(), (1000, 500));
}
