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
pub(crate) fn synthetic_vgg() -> Vec<u8> {
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
    portraitist::photos::to_tensor(std::slice::from_ref(image), device)
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

/// Styles mode: one network learns two styles from their folders (a style per sample), logs its
/// named losses, and exports a multi-style pack whose styles are reachable by name and differ;
/// a resumed run refuses a style folder with other styles.
#[test]
fn styles_mode_learns_several_styles_in_one_network_and_exports_them() {
    use portraitist::pack::{StylePack, StyleRef};
    use portraitist::train::Mode;
    use portraitist::train::export::{ExportRequest, export};

    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg19.bin");
    std::fs::write(&weights, synthetic_vgg()).unwrap();
    let (content, styles) = (dir.path().join("content"), dir.path().join("styles"));
    let painted = |folder: &Path, f: &dyn Fn(u32, u32, u32) -> [u8; 3]| {
        std::fs::create_dir_all(folder).unwrap();
        for i in 0..3u32 {
            image::RgbImage::from_fn(48, 48, |x, y| image::Rgb(f(x, y, i)))
                .save(folder.join(format!("{i}.png")))
                .unwrap();
        }
    };
    painted(&content, &|x, y, i| {
        let v = (x * 4 + y * 2 + i * 20) as u8;
        [v, v, v]
    });
    painted(&styles.join("red-stripes"), &|x, _, _| {
        if x % 6 < 3 {
            [230, 30, 20]
        } else {
            [120, 0, 0]
        }
    });
    painted(&styles.join("blue-dots"), &|x, y, _| {
        if (x % 8 < 3) && (y % 8 < 3) {
            [240, 240, 255]
        } else {
            [10, 40, 200]
        }
    });
    std::fs::write(
        styles.join("blue-dots/about.txt"),
        "Blue dots\nWhite dots on blue.",
    )
    .unwrap();
    let config = TrainConfig {
        size: 32,
        batch: 2,
        steps: 40,
        log_every: 1,
        discriminator_width: 8,
        // The synthetic VGG's features are small: weights for its scale, style first.
        perceptual_weight: 1.0,
        style_weight: 100.0,
        tv_weight: 0.01,
        vgg19: weights,
        ..TrainConfig::for_mode(Mode::Styles)
    };
    let sources = Sources::Styles {
        content: content.clone(),
        styles: styles.clone(),
    };
    let run = dir.path().join("run");
    let device = Device::flex();
    let mut trainer =
        Trainer::new(&sources, &run, config, false, &device, &mut |_: Event| {}).unwrap();
    assert_eq!(trainer.config().styles, ["blue-dots", "red-stripes"]);
    trainer.run(None, &mut |_| {}).unwrap();
    let log = std::fs::read_to_string(run.join("losses.csv")).unwrap();
    assert!(log.starts_with("step,g_adv,d,content,style,tv\n"), "{log}");
    let style_loss = |line: &str| -> f32 { line.split(',').nth(4).unwrap().parse().unwrap() };
    let lines: Vec<&str> = log.lines().skip(1).collect();
    let early: f32 = lines[..5].iter().map(|l| style_loss(l)).sum();
    let late: f32 = lines[lines.len() - 5..].iter().map(|l| style_loss(l)).sum();
    assert!(
        late < early,
        "the style loss falls: {early} → {late}\n{log}"
    );

    let out = dir.path().join("models/duo");
    let manifest = export(&ExportRequest {
        run_dir: &run,
        checkpoint: None,
        id: "duo",
        title: "Duo",
        description: "",
        out: &out,
        preview_photo: None,
        licences: &[],
    })
    .unwrap();
    let ids: Vec<&str> = manifest.styles.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["blue-dots", "red-stripes"]);
    assert_eq!(manifest.styles[0].title, "Blue dots");
    assert_eq!(manifest.styles[0].description, "White dots on blue.");
    assert_eq!(manifest.styles[1].title, "Red stripes");
    let pack = StylePack::load(&out).unwrap();
    let photo = image::open(content.join("0.png")).unwrap().into_rgb8();
    let render = |style: &str| {
        let style = StyleRef::parse(style).unwrap();
        portraitist::Stylizer::from_pack_style(&pack, &style, &device)
            .unwrap()
            .render_blocking(&photo, None, &mut |_, _| {})
            .unwrap()
    };
    let (blue, red) = (render("duo:blue-dots"), render("duo:red-stripes"));
    let diff = crate::common::mean_abs_diff(&blue, &red);
    assert!(diff > 2.0, "the two styles differ: {diff}");

    // The same run resumed with a style folder holding other styles is refused.
    std::fs::create_dir_all(styles.join("green")).unwrap();
    painted(&styles.join("green"), &|_, _, _| [0, 200, 0]);
    let err = Trainer::new(
        &sources,
        &run,
        TrainConfig::for_mode(Mode::Styles),
        true,
        &device,
        &mut |_: Event| {},
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("green"), "{err}");
}
