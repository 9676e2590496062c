//! Any bytes a user could drop on the page or pass to the CLI: decoding must return an image or a
//! `DecodeError`, never panic, and a decoded image must go through the same preprocessing the
//! app applies (downscale, normalise, pad, tile, run, blend) without a panic.
#![no_main]

use std::sync::OnceLock;

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use portraitist::stylize::{self, Look, Stylizer};
use portraitist::{GeneratorConfig, image_io};

/// A tiny random generator: the point is the code around the network, not the network.
fn stylizer() -> &'static Stylizer {
    static STYLIZER: OnceLock<Stylizer> = OnceLock::new();
    STYLIZER.get_or_init(|| {
        let device = Device::flex();
        device.seed(7);
        let config = GeneratorConfig::new(2, 1);
        let generator = config.init(&device);
        Stylizer::new(generator, config, Default::default(), device)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(photo) = image_io::decode(data) else {
        return;
    };
    assert!(photo.width() >= 1 && photo.height() >= 1);
    // Keep each run short: the network's cost grows with the pixels, the parsing did not.
    let small = stylize::fit_within(&photo, 96);
    let stylizer = stylizer();
    let styled = stylizer
        .render_blocking(&small, Some(stylizer.min_tile()), &mut |_, _| {})
        .expect("a decoded photo always stylizes");
    assert_eq!(styled.dimensions(), small.dimensions());
    let blended = stylize::blend(
        &small,
        &styled,
        Look {
            strength: 0.5,
            keep_colors: true,
        },
    );
    assert_eq!(blended.dimensions(), small.dimensions());
});
