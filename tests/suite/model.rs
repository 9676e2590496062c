//! The networks: shapes, sizes, presets.

use crate::common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use portraitist::Stylizer;
use portraitist::model::{DiscriminatorConfig, GeneratorConfig, Preset};
use portraitist::stylize::Normalization;

#[test]
fn generator_keeps_the_shape_of_any_multiple_of_four() {
    let device = Device::flex();
    let generator = common::test_config().init(&device);
    for (h, w) in [(16, 16), (64, 36), (52, 100)] {
        let x = Tensor::<4>::random([2, 3, h, w], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(generator.forward(x).dims(), [2, 3, h, w]);
    }
}

#[test]
fn generator_output_is_in_tanh_range() {
    let device = Device::flex();
    let generator = common::test_config().init(&device);
    let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
    let y = generator
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(y.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(y.iter().any(|v| v.abs() > 1e-3), "output is all zeros");
}

#[test]
fn stylizer_handles_odd_sizes_like_317_by_451() {
    let device = Device::flex();
    let config = common::test_config();
    let stylizer = Stylizer::new(
        config.init(&device),
        config,
        Normalization::default(),
        device,
    );
    let photo = image::RgbImage::from_fn(317, 451, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let out = stylizer
        .render_blocking(&photo, None, &mut |_, _| {})
        .unwrap();
    assert_eq!(out.dimensions(), (317, 451));
}

#[test]
fn presets_fit_their_budgets() {
    let device = Device::flex();
    let params = |p: Preset| p.generator().init(&device).num_params();
    let (tiny, small, large) = (
        params(Preset::Tiny),
        params(Preset::Small),
        params(Preset::Large),
    );
    assert!(tiny <= 300_000, "tiny has {tiny} parameters");
    assert!(small <= 1_000_000, "small has {small} parameters");
    // Half precision: two bytes a parameter must fit in 2 MB.
    assert!(small * 2 <= 2_000_000);
    assert!(tiny < small && small < large);
    assert!(
        large > 10_000_000,
        "large should be CycleGAN-sized, has {large}"
    );
}

#[test]
fn presets_parse_from_their_names() {
    for preset in Preset::ALL {
        assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
    }
    assert!("huge".parse::<Preset>().is_err());
}

#[test]
fn patchgan_scores_a_grid_of_patches() {
    let device = Device::flex();
    let d = DiscriminatorConfig::new(8).init(&device);
    let x = Tensor::<4>::random([2, 3, 256, 256], Distribution::Uniform(-1.0, 1.0), &device);
    // 70×70 PatchGAN on 256² gives the classic 30×30 grid.
    assert_eq!(d.forward(x).dims(), [2, 1, 30, 30]);
}

#[test]
fn generator_config_round_trips_through_json() {
    let config = GeneratorConfig::new(16, 6);
    let json = serde_json::to_string(&config).unwrap();
    let back: GeneratorConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
}

#[test]
fn configs_written_before_the_input_skip_load_without_it() {
    // The shipped packs' style.json before `input_skip` existed.
    let old: GeneratorConfig =
        serde_json::from_str(r#"{"width": 12, "blocks": 5, "channels": 3}"#).unwrap();
    assert_eq!(old, GeneratorConfig::new(12, 5));
    assert!(!old.has_input_skip());
    let device = Device::flex();
    assert_eq!(
        old.init(&device).num_params(),
        Preset::Tiny.generator().init(&device).num_params()
    );
}

#[test]
fn input_skip_feeds_the_photo_to_the_last_convolution() {
    let device = Device::flex();
    let plain = common::test_config();
    let skip = common::test_config().with_input_skip(Some(true));
    let json = serde_json::to_string(&skip).unwrap();
    assert_eq!(
        serde_json::from_str::<GeneratorConfig>(&json).unwrap(),
        skip
    );
    // The head's 7×7 kernels gain one input channel per image channel.
    let extra = skip.init(&device).num_params() - plain.init(&device).num_params();
    assert_eq!(extra, 3 * 3 * 7 * 7);
    let generator = skip.init(&device);
    for (h, w) in [(16, 16), (52, 100)] {
        let x = Tensor::<4>::random([2, 3, h, w], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(generator.forward(x).dims(), [2, 3, h, w]);
    }
}
