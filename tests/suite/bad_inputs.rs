//! The bad-input corpus, `tests/fixtures/bad/` (made by `scripts/make-bad-inputs.py`): every broken
//! or unusual photo either decodes correctly or is refused with a message naming the problem; never
//! a panic, never an allocation sized by a lying header.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::catch_unwind;
use std::path::{MAIN_SEPARATOR, Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};
use portraitist::image_io::{OutputFormat, decode, encode};
use portraitist::pack::Index;
use tempfile::tempdir;

/// What `expected.json` says one file must give.
#[derive(Debug)]
enum Expected {
    /// Decodes to this size (after EXIF orientation), optionally with this mean colour.
    Ok {
        width: u32,
        height: u32,
        mean_rgb: Option<[f64; 3]>,
    },
    /// Refused with a message containing this.
    Error(String),
}

/// Largest per-channel difference of the mean colour from what Pillow reads (different JPEG
/// decoders round differently; a wrong frame or inverted CMYK is off by tens).
const MEAN_RGB_TOLERANCE: f64 = 4.0;

fn corpus() -> PathBuf {
    common::fixture("bad")
}

fn expectations() -> BTreeMap<String, Expected> {
    let text =
        fs::read_to_string(corpus().join("expected.json")).expect("expected.json is readable");
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("expected.json is a JSON object");
    json.into_iter()
        .map(|(name, outcome)| {
            let expected = if let Some(size) = outcome.get("ok") {
                let side = |i: usize| size[i].as_u64().expect("ok: [width, height]") as u32;
                let mean_rgb = outcome
                    .get("mean_rgb")
                    .map(|m| [0, 1, 2].map(|c| m[c].as_f64().expect("mean_rgb: [r, g, b]")));
                Expected::Ok {
                    width: side(0),
                    height: side(1),
                    mean_rgb,
                }
            } else if let Some(message) = outcome.get("error").and_then(|m| m.as_str()) {
                Expected::Error(message.to_owned())
            } else {
                panic!("{name}: expected.json needs \"ok\" or \"error\": {outcome}");
            };
            (name, expected)
        })
        .collect()
}

/// The corpus files (everything in the folder but expected.json), sorted.
fn corpus_files() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(corpus())
        .expect("tests/fixtures/bad exists: run scripts/make-bad-inputs.py")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    names.sort();
    names
}

fn mean_rgb(image: &RgbImage) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for p in image.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += u64::from(v);
        }
    }
    let n = (u64::from(image.width()) * u64::from(image.height())).max(1) as f64;
    sum.map(|s| s as f64 / n)
}

#[test]
fn the_corpus_and_expected_json_list_the_same_files() {
    let listed: BTreeSet<String> = expectations().into_keys().collect();
    let present: BTreeSet<String> = corpus_files().into_iter().collect();
    let unlisted: Vec<_> = present.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&present).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "files without an expectation: {unlisted:?}; expectations without a file: {missing:?} \
         (rerun scripts/make-bad-inputs.py)"
    );
}

#[test]
fn every_corpus_file_decodes_or_is_refused_as_expected() {
    let expected = expectations();
    let mut wrong = Vec::new();
    for name in corpus_files() {
        let Some(expectation) = expected.get(&name) else {
            wrong.push(format!("{name}: not in expected.json"));
            continue;
        };
        let bytes = fs::read(corpus().join(&name)).unwrap();
        let outcome = match catch_unwind(|| decode(&bytes)) {
            Ok(outcome) => outcome,
            Err(_) => {
                wrong.push(format!("{name}: decode panicked"));
                continue;
            }
        };
        match (expectation, outcome) {
            (
                Expected::Ok {
                    width,
                    height,
                    mean_rgb: colour,
                },
                Ok(image),
            ) => {
                if image.dimensions() != (*width, *height) {
                    wrong.push(format!(
                        "{name}: decoded to {:?}, expected {width}×{height}",
                        image.dimensions()
                    ));
                } else if let Some(colour) = colour {
                    let got = mean_rgb(&image);
                    if (0..3).any(|c| (got[c] - colour[c]).abs() > MEAN_RGB_TOLERANCE) {
                        wrong.push(format!(
                            "{name}: mean colour {got:.1?}, expected {colour:?} (±{MEAN_RGB_TOLERANCE})"
                        ));
                    }
                }
            }
            (Expected::Ok { width, height, .. }, Err(err)) => wrong.push(format!(
                "{name}: refused with \"{err}\", expected a {width}×{height} image"
            )),
            (Expected::Error(message), Err(err)) => {
                if !err.to_string().contains(message.as_str()) {
                    wrong.push(format!(
                        "{name}: refused with \"{err}\", expected a message containing \"{message}\""
                    ));
                }
            }
            (Expected::Error(message), Ok(image)) => wrong.push(format!(
                "{name}: decoded to {:?}, expected an error containing \"{message}\"",
                image.dimensions()
            )),
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// Where stored pixel (x, y) of a file with EXIF orientation `n` shows in the upright picture of
/// `width`×`height` (the EXIF definitions: which side of the scene is stored row 0 and column 0).
fn upright_position(n: u32, (x, y): (u32, u32), (width, height): (u32, u32)) -> (u32, u32) {
    let (right, bottom) = (width - 1, height - 1);
    match n {
        1 => (x, y),
        2 => (right - x, y),
        3 => (right - x, bottom - y),
        4 => (x, bottom - y),
        5 => (y, x),
        6 => (right - y, x),
        7 => (right - y, bottom - x),
        8 => (y, bottom - x),
        _ => unreachable!(),
    }
}

#[test]
fn all_eight_exif_orientations_show_the_same_upright_picture() {
    let read = |n: u32| fs::read(corpus().join(format!("orient-{n}.jpg"))).unwrap();
    let upright = decode(&read(1)).unwrap();
    let size = upright.dimensions();
    assert_eq!(size, (40, 24));
    for n in 1..=8 {
        let bytes = read(n);
        let shown = decode(&bytes).unwrap();
        assert_eq!(shown.dimensions(), size, "orientation {n}");
        let diff = common::mean_abs_diff(&shown, &upright);
        assert!(
            diff < 3.0,
            "orientation {n}: differs from upright by {diff:.2}"
        );

        // The file really stores the picture turned: the raw pixels (no orientation applied) are
        // the upright picture put through the inverse transform.
        let stored = image::load_from_memory(&bytes).unwrap().into_rgb8();
        let (w, h) = stored.dimensions();
        let expected_stored = RgbImage::from_fn(w, h, |x, y| {
            let (ux, uy) = upright_position(n, (x, y), size);
            *upright.get_pixel(ux, uy)
        });
        let diff = common::mean_abs_diff(&stored, &expected_stored);
        assert!(
            diff < 3.0,
            "orientation {n}: stored pixels differ by {diff:.2}"
        );
        if n > 1 && stored.dimensions() == size {
            assert!(
                common::mean_abs_diff(&stored, &upright) > 10.0,
                "orientation {n}: the test picture is too symmetric to tell orientations apart"
            );
        }
    }
}

/// A deterministic 64-megapixel "camera photo": smooth gradients plus sensor-like noise.
fn big_photo(side: u32) -> RgbImage {
    let scale = 255.0 / f64::from(side - 1);
    RgbImage::from_fn(side, side, |x, y| {
        let mut h = (u64::from(x) << 32) | u64::from(y);
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        let noise = |shift: u32| ((h >> shift) & 15) as f64 - 7.5;
        let c = |v: f64| v.clamp(0.0, 255.0) as u8;
        let (fx, fy) = (f64::from(x) * scale, f64::from(y) * scale);
        Rgb([
            c(fx + noise(0)),
            c(fy + noise(8)),
            c(0.5 * (fx + 255.0 - fy) + noise(16)),
        ])
    })
}

#[test]
fn a_64_megapixel_photo_decodes_at_full_size() {
    let side = 8000;
    let photo = big_photo(side);
    let jpeg = encode(&photo, OutputFormat::Jpeg(85)).unwrap();
    let decoded = decode(&jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (side, side));
    let diff = common::mean_abs_diff(&decoded, &photo);
    assert!(diff < 8.0, "mean difference {diff:.2}");
}

/// `name` (e.g. `cmyk.jpg`) → `cmyk.png`, the CLI's output name.
fn output_name(name: &str) -> String {
    let stem = Path::new(name).file_stem().unwrap().to_string_lossy();
    format!("{stem}.png")
}

#[test]
fn the_cli_names_every_bad_file_and_writes_every_good_one() {
    let expected = expectations();
    let models = tempdir().unwrap();
    let manifest = common::random_pack(&models.path().join("pattern"), "pattern", 21);
    Index::register(models.path(), &manifest).unwrap();
    let inputs = tempdir().unwrap();
    let out = tempdir().unwrap();
    let files = corpus_files();
    for name in &files {
        fs::copy(corpus().join(name), inputs.path().join(name)).unwrap();
        if matches!(expected.get(name), Some(Expected::Ok { .. })) {
            let clashes = files
                .iter()
                .filter(|other| output_name(other) == output_name(name));
            assert_eq!(
                clashes.count(),
                1,
                "{name}: another corpus file has its stem"
            );
        }
    }
    let run = Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .args([
            "stylize",
            "--style",
            "pattern",
            "--max-side",
            "256",
            "--out",
        ])
        .arg(out.path())
        .args(files.iter().map(|name| inputs.path().join(name)))
        .env("PORTRAITIST_MODELS", models.path())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let failures = expected
        .values()
        .filter(|e| matches!(e, Expected::Error(_)))
        .count();
    assert!(
        stderr.contains(&format!("{failures} of {} photos failed", files.len())),
        "{stderr}"
    );
    for (name, expectation) in &expected {
        let output = out.path().join(output_name(name));
        match expectation {
            Expected::Error(message) => {
                assert!(
                    stderr
                        .lines()
                        .any(|l| l.contains(&format!("{MAIN_SEPARATOR}{name}: "))
                            && l.contains(message.as_str())),
                    "{name}: expected a line naming it with `{message}` in:\n{stderr}"
                );
                assert!(
                    !output.exists(),
                    "{name}: refused, yet {output:?} was written"
                );
            }
            Expected::Ok { width, height, .. } => {
                let result = image::open(&output)
                    .unwrap_or_else(|e| panic!("{name}: no readable output ({e}):\n{stderr}"))
                    .into_rgb8();
                // The corpus photos are all within --max-side, so they keep their size.
                assert_eq!(result.dimensions(), (*width, *height), "{name}");
            }
        }
    }
}
