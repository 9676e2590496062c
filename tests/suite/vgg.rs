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

    // A new run can start from the exported pack (`train --init`): its generator is the pack's
    // before the first step, not random weights.
    let trainer = Trainer::new(
        &sources,
        &dir.path().join("from-pack"),
        TrainConfig {
            init: Some(out.clone()),
            ..trainer.config().clone()
        },
        false,
        &device,
        &mut |_: Event| {},
    )
    .unwrap();
    let started = crate::common::param_values(&trainer.generator().unwrap());
    let shipped = crate::common::param_values(&pack.generator(&device).unwrap());
    assert_eq!(started, shipped);
    // A pack of another shape is refused by name.
    let err = Trainer::new(
        &sources,
        &dir.path().join("wrong-pack"),
        TrainConfig {
            init: Some(out.clone()),
            preset: Preset::Small,
            ..trainer.config().clone()
        },
        false,
        &device,
        &mut |_: Event| {},
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("is not this run's"), "{err}");

    // The CLI resumes it with the folders it learnt from: `--style-photos` alone would mean an
    // unpaired run, but a resumed run keeps its own mode.
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = crate::portraitist(&[
        "train",
        "--resume",
        "--steps",
        "42",
        "--out",
        &s(&run),
        "--content",
        &s(&content),
        "--style-photos",
        &s(&styles),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(run.join("checkpoints/latest")).unwrap(),
        "step-0000042"
    );

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

/// A style's target is the mean of its images' Gram matrices however they are batched, and a
/// batch's targets are its mix of the styles' targets.
#[test]
fn style_targets_are_mean_grams_mixed_by_the_batch_styles() {
    use burn::tensor::TensorData;
    use portraitist::learn::step::{StyleGrams, mean_grams};

    let device = Device::flex();
    let vgg = Vgg19::from_bytes(&synthetic_vgg(), &device).unwrap();
    let image = |k: u32| {
        image::RgbImage::from_fn(24, 24, |x, y| {
            image::Rgb([(x * k) as u8, (y * 9) as u8, ((x + y) * k) as u8])
        })
    };
    let (a, b, c) = (image(3), image(7), image(11));
    let values = |t: &Tensor<3>| t.to_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let close = |x: &[f32], y: &[f32], what: &str| {
        let scale = y.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{what}: off by {worst} (scale {scale})"
        );
    };
    let batched = mean_grams(
        &vgg,
        [portraitist::photos::to_tensor(
            &[a.clone(), b.clone()],
            &device,
        )],
    );
    let one_by_one = mean_grams(&vgg, [photo_tensor(&a, &device), photo_tensor(&b, &device)]);
    assert_eq!(batched.len(), 4);
    for (x, y) in batched.iter().zip(&one_by_one) {
        close(&values(x), &values(y), "batched vs one by one");
    }
    let other = mean_grams(&vgg, [photo_tensor(&c, &device)]);
    let table = StyleGrams::new(&[batched.clone(), other.clone()]);
    let mix = Tensor::<2>::from_data(
        TensorData::new(vec![0.0f32, 1.0, 0.25, 0.75], [2, 2]),
        &device,
    );
    let targets = table.for_mix(&mix);
    for ((t, first), second) in targets.iter().zip(&batched).zip(&other) {
        let [n, ch, _] = t.dims();
        assert_eq!(n, 2);
        let row = |i: usize| values(&t.clone().slice([i..i + 1, 0..ch, 0..ch]));
        close(
            &row(0),
            &values(second),
            "a one-hot row is that style's target",
        );
        let blend: Vec<f32> = values(first)
            .iter()
            .zip(values(second))
            .map(|(p, q)| 0.25 * p + 0.75 * q)
            .collect();
        close(&row(1), &blend, "a mixed row is the mix of the targets");
    }
    assert_ne!(
        values(&batched[1]),
        values(&other[1]),
        "different images, different targets"
    );
}

/// The CPU path's VGG19 losses (portraitist::engine::CpuVgg) equal Burn's content and style
/// distances, and their gradient with respect to the images equals Burn's autodiff, with each
/// sample's style term at its own scale (`Targets::style_scale`, the config's `style_scales`) and
/// its content term emphasised by a map (`Targets::content_emphasis`, the skin map).
#[test]
fn cpu_vgg_losses_and_gradient_equal_burns_autodiff() {
    use burn::tensor::TensorData;
    use portraitist::engine::CpuVgg;
    use portraitist::engine::cpu::Targets;
    use portraitist::learn::step::{
        content_distance, emphasised_content_distance, style_distance, style_distances,
    };

    let (b, h, w) = (2, 24, 32);
    let device = Device::flex().autodiff();
    let vgg = Vgg19::from_bytes(&synthetic_vgg(), &device).unwrap();
    let mut seed = 11u32;
    let mut noise = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    };
    let images = noise(b * 3 * h * w);
    let photos = noise(b * 3 * h * w);
    let styles = noise(b * 3 * h * w);
    let tensor =
        |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [b, 3, h, w]), &device);
    let (cw, sw) = (1.5f32, 3.0f32);
    let scalar = |t: Tensor<1>| t.into_scalar::<f32>();

    // Burn: the loss of the images against the photos' features and the styles' own Grams.
    let x = tensor(&images).require_grad();
    let out = vgg.features(x.clone()).0;
    let photo = vgg.features(tensor(&photos)).0;
    let grams: Vec<Tensor<3>> = vgg
        .features(tensor(&styles))
        .0
        .iter()
        .map(|f| portraitist::model::gram(f).detach())
        .collect();
    let scales = [0.5f32, 2.0];
    // The second sample's content term weighs more where its map is (a band across the top).
    let k = 4.0f32;
    let maps: Vec<f32> = (0..b * h * w)
        .map(|i| {
            if i / (h * w) == 1 && (i % (h * w)) / w < 9 {
                0.75
            } else {
                0.0
            }
        })
        .collect();
    let map_tensor = Tensor::<4>::from_data(TensorData::new(maps.clone(), [b, 1, h, w]), &device);
    let content = emphasised_content_distance(&out, &photo, Some((&map_tensor, k)), &device);
    let plain_content = content_distance(&out, &photo, &device);
    assert!(
        scalar(content.clone()) > scalar(plain_content.clone()) * 1.01,
        "the map weighs the content term more"
    );
    let style = style_distance(&out, &grams, &device);
    let scaled = (style_distances(&out, &grams, &device)
        * Tensor::<1>::from_data(TensorData::new(scales.to_vec(), [b]), &device))
    .mean();
    let loss = content.clone() * cw + scaled * sw;
    let grads = loss.backward();
    let burn_grad: Vec<f32> = x
        .grad(&grads)
        .unwrap()
        .to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();

    // Ours, sample by sample.
    let cpu = CpuVgg::new(&vgg);
    let plane = 3 * h * w;
    let sample = |v: &[f32], i: usize| v[i * plane..(i + 1) * plane].to_vec();
    let photo_features: Vec<_> = (0..b)
        .map(|i| cpu.features(&sample(&photos, i), h, w))
        .collect();
    let style_grams: Vec<_> = (0..b)
        .map(|i| CpuVgg::grams(&cpu.features(&sample(&styles, i), h, w)))
        .collect();
    let targets: Vec<Targets> = (0..b)
        .map(|i| Targets {
            photo: &photo_features[i],
            grams: style_grams[i].iter().map(Vec::as_slice).collect(),
            style_scale: scales[i],
            content_emphasis: Some((&maps[i * h * w..(i + 1) * h * w], k)),
        })
        .collect();
    let ours = cpu.loss(
        &(0..b).map(|i| sample(&images, i)).collect::<Vec<_>>(),
        h,
        w,
        &targets,
        cw,
        sw,
    );
    let relative = |a: f32, e: f32| (a - e).abs() / e.abs().max(1e-12);
    assert!(
        relative(ours.content, scalar(content.clone())) < 1e-4,
        "content {} vs {}",
        ours.content,
        scalar(content)
    );
    assert!(
        relative(ours.style, scalar(style.clone())) < 1e-4,
        "style {} vs {}",
        ours.style,
        scalar(style)
    );
    assert_gradient_matches(&ours.grad.concat(), &burn_grad, "the images' gradient");
}

/// `ours` within 1e-4 of `burn`'s largest magnitude everywhere, and `burn` not zero.
fn assert_gradient_matches(ours: &[f32], burn: &[f32], what: &str) {
    assert_eq!(ours.len(), burn.len(), "{what}: lengths");
    let scale = burn.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let worst = ours
        .iter()
        .zip(burn)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0f32, f32::max);
    assert!(scale > 0.0, "{what} is not zero");
    assert!(
        worst <= 1e-4 * scale,
        "{what} off by {worst} (largest {scale})"
    );
}

/// On the CPU the styles step hands VGG19's gradient to Burn as the generator output's
/// (`vgg_terms` with our CPU path): what flows back through the generator equals Burn's autodiff
/// of the same losses.
#[test]
fn the_cpu_vgg_gradient_flows_back_through_the_generator_as_burns() {
    use burn::tensor::Distribution;
    use portraitist::engine::CpuVgg;
    use portraitist::learn::step::{Emphasis, vgg_terms};

    let device = Device::flex().autodiff();
    let vgg = Vgg19::from_bytes(&synthetic_vgg(), &device).unwrap();
    let cpu = CpuVgg::new(&vgg);
    let generator = portraitist::GeneratorConfig::new(4, 1).init(&device);
    let input = Tensor::<4>::random([2, 3, 24, 24], Distribution::Uniform(-1.0, 1.0), &device);
    let photo = Tensor::<4>::random([2, 3, 24, 24], Distribution::Uniform(-1.0, 1.0), &device);
    let style = Tensor::<4>::random([1, 3, 24, 24], Distribution::Uniform(-1.0, 1.0), &device);
    let targets: Vec<Tensor<3>> = vgg
        .features(style)
        .0
        .iter()
        .map(|f| portraitist::model::gram(f).detach())
        .collect();
    // Skin-like weights on the left half of the second sample (the maps are at the image's size).
    let maps: Vec<f32> = (0..2 * 24 * 24)
        .map(|i| {
            if i >= 24 * 24 && i % 24 < 12 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let run = |cpu: Option<&CpuVgg>, scales: Option<&[f32]>, map: Option<(&[f32], f32)>| {
        let x = input.clone().detach().require_grad();
        let fake = generator.forward(x.clone());
        let [content, style, weighted] = vgg_terms(
            &vgg,
            cpu,
            &fake,
            photo.clone(),
            &targets,
            [1.0, 5.0],
            Emphasis {
                style_scales: scales,
                content_map: map,
            },
            &device,
        );
        let grads = weighted.backward();
        let grad: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap();
        (
            content.into_scalar::<f32>(),
            style.into_scalar::<f32>(),
            grad,
        )
    };
    let cases = [
        (None, None),
        (Some([3.0f32, 0.25].as_slice()), None),
        (None, Some((maps.as_slice(), 6.0f32))),
    ];
    for (scales, map) in cases {
        let (burn_content, burn_style, burn_grad) = run(None, scales, map);
        let (cpu_content, cpu_style, cpu_grad) = run(Some(&cpu), scales, map);
        assert!(
            (cpu_content - burn_content).abs() <= 1e-4 * burn_content,
            "{cpu_content} vs {burn_content}"
        );
        assert!(
            (cpu_style - burn_style).abs() <= 1e-4 * burn_style,
            "{cpu_style} vs {burn_style}"
        );
        assert_gradient_matches(&cpu_grad, &burn_grad, "the generator input's gradient");
    }
    // Scales change the gradient (and not the distances reported).
    let (plain_content, plain_style, plain) = run(Some(&cpu), None, None);
    let (_, scaled_style, scaled) = run(Some(&cpu), Some(&[3.0, 0.25]), None);
    assert!((plain_style - scaled_style).abs() <= 1e-6 * plain_style);
    let moved = |other: &[f32]| {
        plain
            .iter()
            .zip(other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    };
    let largest = plain.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    assert!(moved(&scaled) > 1e-3 * largest);
    // The content map changes the gradient too, and weighs the content distance up.
    let (mapped_content, mapped_style, mapped) = run(Some(&cpu), None, Some((&maps, 6.0)));
    assert!((plain_style - mapped_style).abs() <= 1e-6 * plain_style);
    assert!(mapped_content > plain_content * 1.01);
    assert!(moved(&mapped) > 1e-3 * largest);
}

/// The style table learns at `style_table_lr_factor` × the shared rate: after one Adam step
/// (whose first step moves every parameter by about its learning rate) two styles' outputs
/// differ several times more with factor 10 than with factor 1.
#[test]
fn the_style_table_learns_faster_than_the_shared_network() {
    use portraitist::train::Mode;

    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg19.bin");
    std::fs::write(&weights, synthetic_vgg()).unwrap();
    let (content, styles) = (dir.path().join("content"), dir.path().join("styles"));
    let paint = |folder: &Path, colour: [u8; 3]| {
        std::fs::create_dir_all(folder).unwrap();
        for i in 0..2u32 {
            image::RgbImage::from_fn(40, 40, |x, y| {
                let v = ((x * 5 + y * 3 + i * 30) % 256) as u8;
                image::Rgb([
                    colour[0].saturating_add(v / 4),
                    colour[1],
                    colour[2].saturating_sub(v / 4),
                ])
            })
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        }
    };
    paint(&content, [120, 120, 120]);
    paint(&styles.join("a"), [230, 40, 20]);
    paint(&styles.join("b"), [20, 60, 230]);
    let sources = Sources::Styles {
        content: content.clone(),
        styles,
    };
    let photo = image::open(content.join("0.png")).unwrap().into_rgb8();
    let device = Device::flex();
    let spread = |factor: f64, run: &str| {
        let config = TrainConfig {
            size: 32,
            batch: 4,
            steps: 1,
            discriminator_width: 8,
            style_table_lr_factor: factor,
            vgg19: weights.clone(),
            ..TrainConfig::for_mode(Mode::Styles)
        };
        let mut trainer = Trainer::new(
            &sources,
            &dir.path().join(run),
            config,
            false,
            &device,
            &mut |_: Event| {},
        )
        .unwrap();
        trainer.run(None, &mut |_| {}).unwrap();
        let g = trainer.generator().unwrap();
        let render = |g: portraitist::Generator| {
            let config = g.config().clone();
            portraitist::Stylizer::new(g, config, Default::default(), device.clone())
                .render_blocking(&photo, None, &mut |_, _| {})
                .unwrap()
        };
        let mut each = g.each_style().into_iter();
        let (a, b) = (render(each.next().unwrap()), render(each.next().unwrap()));
        crate::common::mean_abs_diff(&a, &b)
    };
    let (slow, fast) = (spread(1.0, "slow"), spread(10.0, "fast"));
    assert!(slow > 0.0, "both styles learnt in the step");
    assert!(
        fast > 4.0 * slow,
        "factor 10: {fast} against factor 1: {slow}"
    );
}

/// On the CPU the styles step runs both networks and VGG19 on our CPU path
/// (`engine::cpu::backprop`); Burn's autodiff is the reference (`Trainer::with_burn_autodiff`). Same
/// run, same seed, three steps with style scales and the skin term: the same losses at the first
/// step, and the same course after it. Not bit for bit: Adam's first steps move every weight by
/// about its learning rate whatever the size of its gradient, so weights whose gradient is at
/// rounding level on both sides move apart, and these violent first steps (outputs move by more
/// than 1 in three) drift apart a little. The gradients themselves are held to 1e-4 below.
#[test]
fn the_cpu_styles_step_trains_as_burns_autodiff() {
    use burn::tensor::Distribution;
    use portraitist::train::Mode;

    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg19.bin");
    std::fs::write(&weights, synthetic_vgg()).unwrap();
    let (content, styles) = (dir.path().join("content"), dir.path().join("styles"));
    let paint = |folder: &Path, colour: [u8; 3]| {
        std::fs::create_dir_all(folder).unwrap();
        for i in 0..3u32 {
            image::RgbImage::from_fn(48, 44, |x, y| {
                // No flat areas: ties in VGG19's max pooling may route a gradient either way.
                let noise = ((x * 7919 + y * 104_729 + i * 31) % 23) as u8;
                let v = ((x * 7 + y * 3 + i * 50) % 256) as u8;
                // Skin-coloured in part, so the skin term weighs something.
                if x < 20 {
                    image::Rgb([190 + noise, 140 + noise / 2, 110 + noise])
                } else {
                    image::Rgb([
                        colour[0].saturating_add(v / 3),
                        colour[1] + noise,
                        colour[2] ^ v,
                    ])
                }
            })
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        }
    };
    paint(&content, [120, 120, 120]);
    paint(&styles.join("a"), [230, 40, 20]);
    paint(&styles.join("b"), [20, 60, 230]);
    let sources = Sources::Styles { content, styles };
    let device = Device::flex();
    let train = |run: &str, burn: bool| {
        let config = TrainConfig {
            size: 32,
            batch: 3,
            steps: 3,
            log_every: 1,
            discriminator_width: 8,
            skin_content_weight: 2.0,
            style_scales: [("a".to_string(), 2.5), ("b".to_string(), 0.5)].into(),
            vgg19: weights.clone(),
            ..TrainConfig::for_mode(Mode::Styles)
        };
        let mut trainer = Trainer::new(
            &sources,
            &dir.path().join(run),
            config,
            false,
            &device,
            &mut |_: Event| {},
        )
        .unwrap();
        if burn {
            trainer = trainer.with_burn_autodiff();
        }
        let start = trainer.generator().unwrap();
        trainer.run(None, &mut |_| {}).unwrap();
        let log = std::fs::read_to_string(dir.path().join(run).join("losses.csv")).unwrap();
        (start, trainer.generator().unwrap(), log)
    };
    let (start, ours, our_log) = train("cpu", false);
    let (_, theirs, their_log) = train("burn", true);

    let rows = |log: &str| -> Vec<Vec<f64>> {
        log.lines()
            .skip(1)
            .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (our_rows, their_rows) = (rows(&our_log), rows(&their_log));
    assert_eq!(our_rows.len(), 3, "{our_log}");
    assert_eq!(our_rows.len(), their_rows.len());
    for (step, (ours, theirs)) in our_rows.iter().zip(&their_rows).enumerate() {
        // Step 1's losses come before any update; step 2's after one.
        let tolerance = if step == 0 { 1e-4 } else { 0.02 };
        if step > 1 {
            break;
        }
        for (a, b) in ours.iter().zip(theirs) {
            assert!(
                (a - b).abs() <= tolerance * b.abs().max(1e-3),
                "losses differ at step {}:\n{our_log}\n{their_log}",
                step + 1
            );
        }
    }
    let input = Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
    let outputs = |g: portraitist::Generator| -> Vec<Tensor<4>> {
        g.each_style()
            .into_iter()
            .map(|s| s.forward(input.clone()))
            .collect()
    };
    let (start, ours, theirs) = (outputs(start), outputs(ours), outputs(theirs));
    let largest =
        |a: &Tensor<4>, b: &Tensor<4>| (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
    for ((start, a), b) in start.iter().zip(&ours).zip(&theirs) {
        let (apart, trained) = (largest(a, b), largest(a, start));
        assert!(
            apart < 0.25 * trained,
            "the runs' generators differ by {apart}, training moved them by {trained}"
        );
    }
    // The steps taught the two styles apart.
    let styles = largest(&ours[0], &ours[1]);
    assert!(styles > 1e-2, "the styles differ by only {styles}");
}

/// The styles step's gradients on the CPU path equal Burn's autodiff for every parameter of the
/// generator, its style table and the discriminator (1e-4 of each tensor's largest; tensors
/// whose gradient is zero in exact arithmetic, such as a bias before a norm, are judged against
/// a tenth of the network's largest), and so do the losses. Style scales and the skin term on.
/// The draw is fixed: VGG19 has about a million ReLUs at 32², and where a pre-activation lies
/// within rounding of zero the two sides' masks may differ. Of seeds 1 to 11, three put the
/// generator's gradients about 1e-3 apart (whatever the TV, adversarial, skin or style terms),
/// the other eight within 2e-5 for every parameter; this one is 7e-6 at worst.
#[test]
fn the_cpu_styles_gradients_equal_burns_autodiff() {
    use burn::tensor::TensorData;
    use portraitist::engine::CpuVgg;
    use portraitist::learn::step::{StyleGrams, TransferNets, mean_grams, styles_gradients};
    use portraitist::rng::Rng;
    use portraitist::train::Mode;

    let device = Device::flex().autodiff();
    let config = TrainConfig {
        size: 32,
        batch: 3,
        discriminator_width: 8,
        styles: vec!["a".into(), "b".into()],
        style_scales: [("a".to_string(), 2.5), ("b".to_string(), 0.5)].into(),
        ..TrainConfig::for_mode(Mode::Styles)
    };
    let nets = TransferNets::init(&config, &device, &mut Rng::new(3));
    let vgg = Vgg19::from_bytes(&synthetic_vgg(), &device).unwrap();
    // Seeded, so that the test sees the same photos every run.
    let rng = std::cell::RefCell::new(Rng::new(3));
    let random = |n: usize| {
        let values = (0..n * 3 * 32 * 32)
            .map(|_| rng.borrow_mut().uniform(-1.0, 1.0))
            .collect();
        Tensor::<4>::from_data(TensorData::new(values, [n, 3, 32, 32]), &device)
    };
    // A skin-toned photo with noise on it (the skin term weighs it) and two of noise alone.
    let skin = Tensor::<4>::from_data(
        TensorData::new([0.55f32, 0.1, -0.15].repeat(32 * 32), [1, 32, 32, 3]),
        &device,
    )
    .permute([0, 3, 1, 2]);
    let content = Tensor::cat(vec![skin + random(1) * 0.3, random(2)], 0);
    let grams = StyleGrams::new(&[mean_grams(&vgg, [random(2)]), mean_grams(&vgg, [random(2)])]);
    let mix = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0], [3, 2]),
        &device,
    );
    let style = random(3);
    let run = |cpu: Option<&CpuVgg>| {
        styles_gradients(
            &nets,
            content.clone(),
            style.clone(),
            mix.clone(),
            &config,
            &vgg,
            cpu,
            &grams,
            &device,
        )
    };
    let theirs = run(None);
    let ours = run(Some(&CpuVgg::new(&vgg)));
    for ((name, a), (_, b)) in ours.losses.iter().zip(&theirs.losses) {
        let (a, b) = (
            a.clone().into_scalar::<f32>(),
            b.clone().into_scalar::<f32>(),
        );
        assert!((a - b).abs() <= 1e-4 * b.abs(), "{name}: {a} vs {b}");
    }

    let (ours_table, theirs_table) = (ours.table.unwrap(), theirs.table.unwrap());
    crate::gradients::assert_same_gradients(
        "the generator",
        nets.generator(),
        &[&ours.generator, &ours_table],
        &[&theirs.generator, &theirs_table],
    );
    crate::gradients::assert_same_gradients(
        "the discriminator",
        nets.discriminator(),
        &[&ours.discriminator],
        &[&theirs.discriminator],
    );
}
