//! VGG19 features for the optional perceptual and style losses.

use crate::common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use portraitist::Preset;
use portraitist::model::{Vgg19, VggError};
use portraitist::train::{Event, Sources, TrainConfig, TrainError, Trainer};

const LAYERS: [(&str, u32, u32); 9] = [
    ("block1_conv1", 3, 64),
    ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128),
    ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256),
    ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256),
    ("block3_conv4", 256, 256),
    ("block4_conv1", 256, 512),
];

/// A file in the converter's format with small pseudo-random weights.
fn synthetic_vgg() -> Vec<u8> {
    let mut out = b"PTVGG19\n".to_vec();
    out.extend((LAYERS.len() as u32).to_le_bytes());
    let mut seed = 7u32;
    for (name, cin, cout) in LAYERS {
        out.extend((name.len() as u32).to_le_bytes());
        out.extend(name.as_bytes());
        for v in [cout, cin, 3, 3] {
            out.extend(v.to_le_bytes());
        }
        for level in 0..256 {
            out.extend(((level as f32 - 127.5) / 127.5 * 0.05).to_le_bytes());
        }
        for _ in 0..cout * cin * 9 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.push((seed >> 16) as u8);
        }
        for _ in 0..cout {
            out.extend(0.01f32.to_le_bytes());
        }
    }
    out
}

fn photo_tensor(image: &image::RgbImage, device: &Device) -> Tensor<4> {
    portraitist::train::data::to_tensor(std::slice::from_ref(image), device)
}

#[test]
fn features_come_at_four_depths() {
    let device = Device::flex();
    let vgg = Vgg19::from_bytes(&synthetic_vgg(), &device).unwrap();
    let x = photo_tensor(&image::RgbImage::new(64, 48), &device);
    let dims: Vec<[usize; 4]> = vgg.features(x).0.iter().map(Tensor::dims).collect();
    assert_eq!(
        dims,
        vec![
            [1, 64, 48, 64],
            [1, 128, 24, 32],
            [1, 256, 12, 16],
            [1, 512, 6, 8]
        ]
    );
}

#[test]
fn malformed_weight_files_are_refused() {
    let device = Device::flex();
    let good = synthetic_vgg();
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    let mut wrong_shape = good.clone();
    wrong_shape[8 + 4 + 4 + 12] = 65; // block1_conv1 claims 65 output channels
    for (bytes, what) in [
        (good[..good.len() / 2].to_vec(), "truncated"),
        (wrong_magic, "magic"),
        (wrong_shape, "shape"),
        ([good.clone(), vec![0]].concat(), "trailing"),
    ] {
        let err: VggError = Vgg19::from_bytes(&bytes, &device).unwrap_err();
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
}

fn real_weights() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vgg19/vgg19.bin");
    if path.is_file() {
        Some(path)
    } else {
        // README: this test needs `scripts/convert-vgg19.py`, which `scripts/test` (and CI) runs.
        eprintln!(
            "skipped: {} missing (run scripts/convert-vgg19.py)",
            path.display()
        );
        None
    }
}

#[test]
fn real_vgg19_features_tell_photos_apart() {
    let Some(path) = real_weights() else { return };
    let device = Device::flex();
    let vgg = Vgg19::from_bytes(&std::fs::read(path).unwrap(), &device).unwrap();
    let astronaut = common::astronaut();
    let mut noisy = astronaut.clone();
    for (i, p) in noisy.pixels_mut().enumerate() {
        let n = ((i * 7919) % 17) as i16 - 8;
        p.0 = p.0.map(|v| (i16::from(v) + n).clamp(0, 255) as u8);
    }
    let hopper = image::open(common::fixture("grace_hopper.jpg"))
        .unwrap()
        .into_rgb8();
    let hopper = image::imageops::resize(&hopper, 227, 229, image::imageops::FilterType::Triangle);
    let relu3 = |img: &image::RgbImage| vgg.features(photo_tensor(img, &device)).0.remove(2);
    let distance = |a: Tensor<4>, b: Tensor<4>| -> f32 {
        (a - b)
            .abs()
            .mean()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    let base = relu3(&astronaut);
    let to_noisy = distance(base.clone(), relu3(&noisy));
    let to_other = distance(base, relu3(&hopper));
    assert!(
        to_noisy * 3.0 < to_other,
        "noise {to_noisy} vs another portrait {to_other}"
    );
}

fn folders(dir: &Path) -> Sources {
    let (content, style) = (dir.join("content"), dir.join("style"));
    for (folder, shift) in [(&content, 0u8), (&style, 90)] {
        std::fs::create_dir_all(folder).unwrap();
        for i in 0..2u32 {
            image::RgbImage::from_fn(48, 48, |x, y| {
                image::Rgb([
                    ((x * 5) as u8).wrapping_add(shift),
                    (y * 5) as u8,
                    (i * 60) as u8,
                ])
            })
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        }
    }
    Sources::Unpaired { content, style }
}

#[test]
fn perceptual_and_style_losses_train_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg19.bin");
    std::fs::write(&weights, synthetic_vgg()).unwrap();
    let config = TrainConfig {
        preset: Preset::Tiny,
        size: 32,
        steps: 2,
        log_every: 1,
        discriminator_width: 8,
        perceptual_weight: 1.0,
        style_weight: 10.0,
        vgg19: weights,
        ..TrainConfig::default()
    };
    let run = dir.path().join("run");
    let mut trainer = Trainer::new(
        &folders(dir.path()),
        &run,
        config,
        false,
        &Device::flex(),
        &mut |_: Event| {},
    )
    .unwrap();
    trainer.run(None, &mut |_| {}).unwrap();
    let log = std::fs::read_to_string(run.join("losses.csv")).unwrap();
    assert!(
        log.starts_with("step,g_adv,f_adv,cycle,identity,d_style,d_content,perceptual,style\n"),
        "{log}"
    );
    let last: Vec<f32> = log
        .lines()
        .last()
        .unwrap()
        .split(',')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        last[6] > 0.0 && last[7] > 0.0,
        "perceptual and style losses are measured: {last:?}"
    );
}

#[test]
fn missing_vgg_weights_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        preset: Preset::Tiny,
        size: 32,
        perceptual_weight: 1.0,
        vgg19: dir.path().join("nowhere.bin"),
        ..TrainConfig::default()
    };
    let err = Trainer::new(
        &folders(dir.path()),
        &dir.path().join("run"),
        config,
        false,
        &Device::flex(),
        &mut |_: Event| {},
    )
    .err()
    .unwrap();
    assert!(matches!(err, TrainError::Vgg { .. }), "{err}");
    assert!(
        err.to_string().contains("scripts/convert-vgg19.py"),
        "{err}"
    );
}
