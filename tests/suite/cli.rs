//! The `portraitist` binary end to end: real photos in, files out, clear messages for bad input.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use portraitist::pack::Index;
use tempfile::{TempDir, tempdir};

fn portraitist(args: &[&str], models: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .args(args)
        .env("PORTRAITIST_MODELS", models)
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A models folder with one registered test pack, `pattern`.
fn models() -> TempDir {
    let models = tempdir().unwrap();
    let manifest = common::random_pack(&models.path().join("pattern"), "pattern", 21);
    Index::register(models.path(), &manifest).unwrap();
    models
}

#[test]
fn stylize_turns_a_portrait_into_an_output_of_the_same_size() {
    let models = models();
    let out = tempdir().unwrap();
    let input = common::fixture("astronaut.jpg");
    let run = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            input.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        said.contains("astronaut.png (227×229"),
        "reports what it wrote: {said}"
    );
    let result = image::open(out.path().join("astronaut.png"))
        .unwrap()
        .into_rgb8();
    let original = common::astronaut();
    assert_eq!(result.dimensions(), original.dimensions());
    assert!(
        common::mean_abs_diff(&result, &original) > 5.0,
        "the style changed nothing"
    );
}

#[test]
fn cli_output_equals_the_library_output() {
    let models = models();
    let out = tempdir().unwrap();
    let input = common::fixture("astronaut.jpg");
    let run = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            "--strength",
            "0.6",
            "--keep-colors",
            input.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let cli = image::open(out.path().join("astronaut.png"))
        .unwrap()
        .into_rgb8();
    let pack = portraitist::StylePack::resolve("pattern", models.path()).unwrap();
    let stylizer = portraitist::Stylizer::from_pack(&pack, &burn::tensor::Device::flex()).unwrap();
    let photo = common::astronaut();
    let styled = stylizer
        .render_blocking(&photo, None, &mut |_, _| {})
        .unwrap();
    let expected = portraitist::blend(
        &photo,
        &styled,
        portraitist::Blend {
            strength: 0.6,
            keep_colors: true,
        },
    );
    assert!(common::max_abs_diff(&cli, &expected) <= 1);
}

#[test]
fn stylize_accepts_a_pack_path_and_writes_jpeg_and_webp() {
    let models = models();
    let pack = models.path().join("pattern");
    let input = common::fixture("grace_hopper.jpg");
    for (format, file) in [("jpg", "grace_hopper.jpg"), ("webp", "grace_hopper.webp")] {
        let out = tempdir().unwrap();
        let run = portraitist(
            &[
                "stylize",
                "--style",
                pack.to_str().unwrap(),
                "--format",
                format,
                "--max-side",
                "256",
                input.to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
            ],
            models.path(),
        );
        assert!(run.status.success(), "{}", stderr(&run));
        let result = image::open(out.path().join(file)).unwrap();
        // 512×600 fitted into 256 on the longer side.
        assert_eq!((result.width(), result.height()), (218, 256));
    }
}

/// `export --format tar` writes a pack as one file, and `stylize --style FILE` gives exactly what
/// the pack folder gives.
#[test]
fn a_pack_exported_as_one_file_stylizes_like_its_folder() {
    let models = models();
    let work = tempdir().unwrap();
    let archive = work.path().join("pattern.tar");
    let run = portraitist(
        &[
            "export",
            "--format",
            "tar",
            "--style",
            "pattern",
            "--out",
            archive.to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("pattern.tar"));
    let input = common::fixture("grace_hopper.jpg");
    let stylize = |style: &str, out: &str| {
        let out = work.path().join(out);
        let run = portraitist(
            &[
                "stylize",
                "--style",
                style,
                "--max-side",
                "128",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            models.path(),
        );
        assert!(run.status.success(), "{}", stderr(&run));
        image::open(out.join("grace_hopper.png"))
            .unwrap()
            .into_rgb8()
    };
    let from_file = stylize(archive.to_str().unwrap(), "from-file");
    let from_folder = stylize("pattern", "from-folder");
    assert_eq!(from_file, from_folder);
    // Without a pack to put in it: the format says what it needs.
    let run = portraitist(
        &[
            "export",
            "--format",
            "tar",
            "--look",
            "teal-orange",
            "--out",
            "x.tar",
        ],
        models.path(),
    );
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("--format tar packs an existing pack"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn several_photos_are_all_written_and_name_clashes_are_avoided() {
    let models = models();
    let inputs = tempdir().unwrap();
    let out = tempdir().unwrap();
    fs::copy(
        common::fixture("astronaut.jpg"),
        inputs.path().join("me.jpg"),
    )
    .unwrap();
    common::astronaut()
        .save(inputs.path().join("me.png"))
        .unwrap();
    let (a, b) = (inputs.path().join("me.jpg"), inputs.path().join("me.png"));
    let run = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(out.path().join("me.png").is_file() && out.path().join("me-2.png").is_file());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `width`×`height` but that holds no pixel data.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(width.to_be_bytes());
    chunk.extend(height.to_be_bytes());
    chunk.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&chunk);
    png.extend(crc32(&chunk).to_be_bytes());
    png.extend(0u32.to_be_bytes());
    png.extend(b"IEND");
    png.extend(crc32(b"IEND").to_be_bytes());
    png
}

#[test]
fn bad_inputs_get_a_clear_message_and_a_failing_exit_without_panics() {
    let models = models();
    let dir = tempdir().unwrap();
    let jpeg = fs::read(common::fixture("astronaut.jpg")).unwrap();
    let mut tiny_png = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(
            &mut std::io::Cursor::new(&mut tiny_png),
            image::ImageFormat::Png,
        )
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.jpg", Vec::new(), "the file is empty"),
        (
            "notes.jpg",
            b"these are my holiday notes, not a photo\n".to_vec(),
            "not an image",
        ),
        (
            "truncated.jpg",
            jpeg[..jpeg.len() / 2].to_vec(),
            "corrupt or truncated",
        ),
        ("dot.png", tiny_png, "1×1 pixels"),
        ("huge.png", png_header_only(20_000, 20_000), "20000×20000"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let out = tempdir().unwrap();
        let run = portraitist(
            &[
                "stylize",
                "--style",
                "pattern",
                path.to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
            ],
            models.path(),
        );
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: message should name the file: {err}"
        );
        assert!(
            err.contains(expected),
            "{name}: expected `{expected}` in: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            fs::read_dir(out.path()).unwrap().count(),
            0,
            "{name}: no output written"
        );
    }
}

#[test]
fn one_bad_photo_does_not_stop_the_others() {
    let models = models();
    let dir = tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    fs::write(&bad, b"nope").unwrap();
    let good = common::fixture("astronaut.jpg");
    let out = tempdir().unwrap();
    let run = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            bad.to_str().unwrap(),
            good.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        models.path(),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("1 of 2 photos failed"),
        "{}",
        stderr(&run)
    );
    assert!(out.path().join("astronaut.png").is_file());
}

#[test]
fn unknown_style_and_damaged_pack_are_reported() {
    let models = models();
    let out = tempdir().unwrap();
    let input = common::fixture("astronaut.jpg");
    let args = |style: &'static str| {
        vec![
            "stylize",
            "--style",
            style,
            input.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let run = portraitist(
        &args("nonexistent")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        models.path(),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("no style named `nonexistent`"),
        "{}",
        stderr(&run)
    );

    let weights = models.path().join("pattern/generator.bpk");
    let mut bytes = fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&weights, bytes).unwrap();
    let run = portraitist(
        &args("pattern")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        models.path(),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("checksum"), "{}", stderr(&run));
    assert!(!stderr(&run).contains("panicked"));
}

#[test]
fn styles_lists_registered_packs() {
    let models = models();
    let run = portraitist(&["styles"], models.path());
    assert!(run.status.success());
    let listing = String::from_utf8_lossy(&run.stdout);
    assert!(
        listing.contains("pattern") && listing.contains("(default)"),
        "{listing}"
    );

    let line = listing.lines().find(|l| l.starts_with("pattern")).unwrap();
    assert!(
        !line.contains("[built in]"),
        "a folder's pack is not marked built in: {listing}"
    );

    // An empty folder still offers the shipped styles, compiled into the binary.
    let empty = tempdir().unwrap();
    let run = portraitist(&["styles"], empty.path());
    assert!(run.status.success());
    let listing = String::from_utf8_lossy(&run.stdout);
    let shipped = Index::load(&common::repo_models()).unwrap();
    assert!(!shipped.styles.is_empty(), "the repository ships styles");
    for entry in &shipped.styles {
        assert!(
            listing.contains(&entry.id) && listing.contains(&entry.title),
            "lists the built-in `{}`: {listing}",
            entry.id
        );
    }
    assert!(listing.contains("[built in]"), "{listing}");
}

/// An installed binary run from any folder, with no models folder given, uses its shipped styles.
#[test]
fn the_binary_stylizes_with_a_shipped_style_from_outside_the_repository() {
    let shipped = Index::load(&common::repo_models()).unwrap();
    let style = shipped
        .styles
        .iter()
        .find(|s| s.kind == portraitist::pack::PackKind::Transfer)
        .expect("the repository ships a transfer style");
    let elsewhere = tempdir().unwrap();
    let input = common::fixture("astronaut.jpg");
    let run = Command::new(env!("CARGO_BIN_EXE_portraitist"))
        .current_dir(elsewhere.path())
        .env_remove("PORTRAITIST_MODELS")
        .args(["stylize", "--style", &style.id])
        .arg(&input)
        .args(["--out", "out"])
        .output()
        .expect("the binary runs");
    assert!(run.status.success(), "{}", stderr(&run));
    let written = elsewhere.path().join("out").join("astronaut.png");
    let result = image::open(&written).unwrap().into_rgb8();
    assert_eq!(result.dimensions(), common::astronaut().dimensions());

    // The same pack from the repository's folder gives the same pixels.
    let from_folder = tempdir().unwrap();
    let run = portraitist(
        &[
            "stylize",
            "--style",
            &style.id,
            input.to_str().unwrap(),
            "--out",
            from_folder.path().to_str().unwrap(),
        ],
        &common::repo_models(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let reference = image::open(from_folder.path().join("astronaut.png"))
        .unwrap()
        .into_rgb8();
    assert_eq!(result, reference, "built-in and folder packs agree");
}

/// A models folder overrides a built-in pack of the same id.
#[test]
fn a_models_folder_overrides_a_built_in_style() {
    let shipped = Index::load(&common::repo_models()).unwrap();
    let id = &shipped.styles[0].id;
    let models = tempdir().unwrap();
    let manifest = common::random_pack(&models.path().join(id), id, 5);
    Index::register(models.path(), &manifest).unwrap();
    let pack = portraitist::StylePack::resolve(id, models.path()).unwrap();
    assert_eq!(pack.dir(), Some(models.path().join(id).as_path()));
    assert_eq!(pack.manifest.title, manifest.title);
    // Without the folder the built-in one is found, with no folder of its own.
    let empty = tempdir().unwrap();
    let builtin = portraitist::StylePack::resolve(id, empty.path()).unwrap();
    assert_eq!(builtin.dir(), None);
    assert_eq!(builtin.manifest.title, shipped.styles[0].title);
}

#[test]
fn out_of_range_options_are_rejected_by_the_parser() {
    let models = models();
    let run = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            "--strength",
            "1.5",
            "x.jpg",
            "--out",
            "o",
        ],
        models.path(),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr(&run).contains("not between 0 and 1"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn grade_writes_before_and_after_pairs_with_the_known_look() {
    use portraitist::looks::LookName;
    let out = tempdir().unwrap();
    let photos = [
        common::fixture("astronaut.jpg"),
        common::fixture("grace_hopper.jpg"),
    ];
    let mut args = vec!["grade", "--look", "sepia-print", "--max-side", "300"];
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", out.path().to_str().unwrap()]);
    let run = portraitist(&args, out.path());
    assert!(run.status.success(), "{}", stderr(&run));
    for name in ["astronaut.png", "grace_hopper.png"] {
        let before = image::open(out.path().join("before").join(name))
            .unwrap()
            .into_rgb8();
        let after = image::open(out.path().join("after").join(name))
            .unwrap()
            .into_rgb8();
        assert!(
            before.width().max(before.height()) <= 300,
            "--max-side applies"
        );
        assert_eq!(
            after,
            LookName::SepiaPrint.apply(&before),
            "{name}: the documented look"
        );
        assert_ne!(after, before);
    }

    let bad = portraitist(
        &["grade", "--look", "neon", "--out", "x", "a.jpg"],
        out.path(),
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown look `neon`; known: sepia-print, teal-orange"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn eval_writes_a_report_a_contact_sheet_and_records_the_figures_in_the_pack() {
    use portraitist::looks::LookName;
    let models = models();
    let work = tempdir().unwrap();
    let (photos, style_set) = (work.path().join("photos"), work.path().join("style"));
    for dir in [&photos, &style_set] {
        fs::create_dir_all(dir).unwrap();
    }
    for name in ["astronaut.jpg", "grace_hopper.jpg"] {
        fs::copy(common::fixture(name), photos.join(name)).unwrap();
    }
    let graded = LookName::SepiaPrint.apply(&common::astronaut());
    graded.save(style_set.join("graded.png")).unwrap();
    fs::write(photos.join("notes.txt"), "not a photo").unwrap();
    fs::write(photos.join("broken.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    let vgg = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vgg19/vgg19.bin");
    assert!(
        vgg.is_file(),
        "run scripts/convert-vgg19.py first (scripts/test does)"
    );
    let out = work.path().join("report");
    let run = portraitist(
        &[
            "eval",
            "--style",
            "pattern",
            "--photos",
            photos.to_str().unwrap(),
            "--style-set",
            style_set.to_str().unwrap(),
            "--look",
            "sepia-print",
            "--vgg19",
            vgg.to_str().unwrap(),
            "--max-side",
            "128",
            "--record",
            "--out",
            out.to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("broken.jpg"),
        "a broken photo is named: {}",
        stderr(&run)
    );

    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| astronaut.jpg |") && report.contains("| grace_hopper.jpg |"),
        "{report}"
    );
    let sheet = image::open(out.join("contact.png")).unwrap();
    assert_eq!(sheet.height(), 2 * 256 + 3 * 4, "one row per photo");
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    let m = &summary["metrics"];
    let f = |k: &str| {
        m[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {m}"))
    };
    assert_eq!(f("photos"), 2.0);
    assert!(
        f("ssim_luma") > 0.0 && f("ssim_luma") < 0.99,
        "random weights change the photo"
    );
    assert!(
        f("delta_e2000_photo") > 3.0,
        "an ungraded photo is far from its grade"
    );
    assert!(f("delta_e2000") > 0.0 && f("vgg_feature_distance") > 0.0);
    assert!(f("vgg_gram_distance") > 0.0 && f("vgg_gram_distance_photo") > 0.0);
    assert!(f("histogram_distance_photo") > 0.0 && f("histogram_distance_photo") <= 1.0);
    assert!(f("ms_per_photo") > 0.0);

    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(models.path().join("pattern").join("style.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["evaluation"]["metrics"], *m,
        "--record stores the means"
    );
    // The pack still loads after its manifest gained the figures.
    let again = portraitist(&["styles"], models.path());
    assert!(again.status.success(), "{}", stderr(&again));

    // A truth folder is matched by file name: the photos as their own truth give ΔE 0.
    let same = portraitist(
        &[
            "eval",
            "--style",
            "pattern",
            "--photos",
            photos.to_str().unwrap(),
            "--truth",
            photos.to_str().unwrap(),
            "--vgg19",
            "missing.bin",
            "--max-side",
            "64",
            "--out",
            out.to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(same.status.success(), "{}", stderr(&same));
    assert!(
        stderr(&same).contains("no VGG19 feature or Gram distances"),
        "{}",
        stderr(&same)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["metrics"]["delta_e2000_photo"].as_f64(), Some(0.0));
    assert!(summary["metrics"].get("vgg_feature_distance").is_none());

    let missing = portraitist(
        &[
            "eval",
            "--style",
            "pattern",
            "--photos",
            "no/such/dir",
            "--out",
            out.to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no/such/dir"),
        "{}",
        stderr(&missing)
    );
}

/// `eval --results` scores any tool's outputs with the same code as a style run here: our own
/// outputs, saved by `stylize` and scored as results, give our figures (without a time); a face
/// box adds the figures inside it; a photo without a result is named and left out.
#[test]
fn eval_scores_results_from_any_tool_like_its_own_and_inside_the_face() {
    let models = models();
    let work = tempdir().unwrap();
    let photos = work.path().join("photos");
    fs::create_dir_all(&photos).unwrap();
    for name in ["astronaut.jpg", "grace_hopper.jpg"] {
        fs::copy(common::fixture(name), photos.join(name)).unwrap();
    }
    let faces = work.path().join("faces.json");
    fs::write(&faces, r#"{"astronaut": [0.3, 0.1, 0.75, 0.55]}"#).unwrap();
    let vgg = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vgg19/vgg19.bin");
    let results = work.path().join("results");
    let styled = portraitist(
        &[
            "stylize",
            "--style",
            "pattern",
            "--max-side",
            "128",
            photos.join("astronaut.jpg").to_str().unwrap(),
            photos.join("grace_hopper.jpg").to_str().unwrap(),
            "--out",
            results.to_str().unwrap(),
        ],
        models.path(),
    );
    assert!(styled.status.success(), "{}", stderr(&styled));
    let eval = |source: &[&str], out: &Path| -> serde_json::Value {
        let mut args = vec!["eval"];
        args.extend(source);
        let (p, f, v, o) = (
            photos.to_str().unwrap(),
            faces.to_str().unwrap(),
            vgg.to_str().unwrap(),
            out.to_str().unwrap(),
        );
        args.extend([
            "--photos",
            p,
            "--faces",
            f,
            "--vgg19",
            v,
            "--max-side",
            "128",
            "--out",
            o,
        ]);
        let run = portraitist(&args, models.path());
        assert!(run.status.success(), "{}", stderr(&run));
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap()
    };
    let ours = eval(&["--style", "pattern"], &work.path().join("ours"));
    let theirs = eval(
        &["--results", results.to_str().unwrap(), "--style", "peer"],
        &work.path().join("theirs"),
    );
    assert_eq!(theirs["style"], "peer");
    let (a, b) = (&ours["metrics"], &theirs["metrics"]);
    for key in [
        "ssim_luma",
        "vgg_feature_distance",
        "face_ssim_luma",
        "face_vgg_feature_distance",
    ] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        // PNG round trip of the same pixels: the same figures.
        assert!((x - y).abs() < 1e-6, "{key}: {x} vs {y}");
    }
    assert!(a["ms_per_photo"].as_f64().unwrap() > 0.0);
    assert!(
        b.get("ms_per_photo").is_none(),
        "no time for results made elsewhere"
    );
    // The face is a harder test of content than the whole photo's background.
    assert_ne!(a["face_ssim_luma"], a["ssim_luma"]);

    fs::remove_file(results.join("grace_hopper.png")).unwrap();
    let fewer = eval(
        &["--results", results.to_str().unwrap()],
        &work.path().join("fewer"),
    );
    assert_eq!(fewer["metrics"]["photos"].as_f64(), Some(1.0));
    let report = fs::read_to_string(work.path().join("fewer/report.md")).unwrap();
    assert!(
        report.contains("No result in the results folder for (left out): grace_hopper.jpg"),
        "{report}"
    );
}

/// `learn` adds a style to a one-style pack from one image: the new pack holds the old look as
/// its first style, unchanged to the pixel, and the new one; the style loss falls as it learns;
/// an id the pack already has is refused. `learn --continue` goes on learning the new style
/// from where it stopped, and refuses a style that is not there or is a whole network.
#[test]
fn learn_adds_a_style_to_a_pack_and_continue_goes_on_learning_it() {
    let models = models();
    let work = tempdir().unwrap();
    let vgg = work.path().join("vgg19.bin");
    fs::write(&vgg, crate::vgg::synthetic_vgg()).unwrap();
    let painting = work.path().join("stripes.png");
    image::RgbImage::from_fn(96, 96, |x, y| {
        if (x + y) % 12 < 6 {
            image::Rgb([220, 40, 30])
        } else {
            image::Rgb([20, 30, 160])
        }
    })
    .save(&painting)
    .unwrap();
    let content = work.path().join("content");
    fs::create_dir_all(&content).unwrap();
    fs::copy(
        common::fixture("astronaut.jpg"),
        content.join("astronaut.jpg"),
    )
    .unwrap();
    let out = models.path().join("pattern-plus");
    let log = work.path().join("learn.csv");
    let (p, c, v, o, l) = (
        painting.to_str().unwrap(),
        content.to_str().unwrap(),
        vgg.to_str().unwrap(),
        out.to_str().unwrap(),
        log.to_str().unwrap(),
    );
    // `learn` with these images into `out`, logging to `log`: `extra` names the rest.
    let learn_into = |pack: &str, id: &str, out: &str, log: &str, extra: &[&str]| {
        let mut args = vec![
            "learn",
            "--pack",
            pack,
            "--images",
            p,
            "--content",
            c,
            "--id",
            id,
            "--out",
            out,
            "--size",
            "48",
            "--vgg19",
            v,
            "--log",
            log,
        ];
        args.extend_from_slice(extra);
        portraitist(&args, models.path())
    };
    let learn = |id: &str| {
        learn_into(
            "pattern",
            id,
            o,
            l,
            &["--title", "Stripes", "--steps", "40"],
        )
    };
    let run = learn("stripes");
    assert!(run.status.success(), "{}", stderr(&run));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("style.json")).unwrap()).unwrap();
    let ids: Vec<&str> = manifest["styles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pattern", "stripes"]);
    assert!(out.join("preview-stripes.jpg").is_file());

    let csv = fs::read_to_string(&log).unwrap();
    let style: Vec<f32> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(style.len(), 40);
    let (early, late) = (
        style[..5].iter().sum::<f32>(),
        style[35..].iter().sum::<f32>(),
    );
    assert!(late < early, "the style loss falls: {early} → {late}");

    let stylize = |style: &str, dir: &str| {
        let dir = work.path().join(dir);
        let run = portraitist(
            &[
                "stylize",
                "--style",
                style,
                "--max-side",
                "96",
                common::fixture("astronaut.jpg").to_str().unwrap(),
                "--out",
                dir.to_str().unwrap(),
            ],
            models.path(),
        );
        assert!(run.status.success(), "{}", stderr(&run));
        image::open(dir.join("astronaut.png")).unwrap().into_rgb8()
    };
    let old = stylize("pattern", "old");
    // The same network and offsets; only half-precision storage (chosen where it keeps every
    // output within one 8-bit level) may separate them.
    let kept = common::max_abs_diff(&stylize("pattern-plus:pattern", "kept"), &old);
    assert!(kept <= 1, "the old look is kept: max diff {kept}");
    let new = stylize("pattern-plus:stripes", "new");
    assert!(
        common::mean_abs_diff(&new, &old) > 1.0,
        "the new style differs"
    );

    let again = learn("pattern");
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already has a style `pattern`"),
        "{}",
        stderr(&again)
    );

    // `--continue` goes on learning `stripes` from its offsets: the same seed cuts the same
    // first crop, and the style loss there starts below the first run's start.
    let out2 = models.path().join("pattern-more");
    let log2 = work.path().join("more.csv");
    let (o2, l2) = (out2.to_str().unwrap(), log2.to_str().unwrap());
    let go_on =
        |pack: &str, id: &str| learn_into(pack, id, o2, l2, &["--continue", "--steps", "10"]);
    let run = go_on("pattern-plus", "stripes");
    assert!(run.status.success(), "{}", stderr(&run));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out2.join("style.json")).unwrap()).unwrap();
    let styles = manifest["styles"].as_array().unwrap();
    let ids: Vec<&str> = styles.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["pattern", "stripes"],
        "the style is updated, not added"
    );
    assert_eq!(styles[1]["title"], "Stripes", "its title is kept");
    let more: Vec<f32> = fs::read_to_string(&log2)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(more.len(), 10);
    // The same first crop: the learnt offsets start below the base's by at least half of what
    // the first run gained on average.
    let gained = (early - late) / 5.0;
    assert!(
        more[0] < style[0] - 0.5 * gained,
        "it starts from the learnt style: {} vs a fresh start's {} (the first run gained {gained})",
        more[0],
        style[0]
    );
    let kept = common::max_abs_diff(&stylize("pattern-more:pattern", "kept2"), &old);
    assert!(kept <= 1, "the other style is kept: max diff {kept}");
    let continued = stylize("pattern-more:stripes", "continued");
    let (moved, from_old) = (
        common::mean_abs_diff(&continued, &new),
        common::mean_abs_diff(&continued, &old),
    );
    assert!(moved > 0.0, "ten more steps change the style");
    assert!(
        moved < from_old,
        "it goes on from the learnt style ({moved}), not from the base ({from_old})"
    );

    let missing = go_on("pattern-plus", "nope");
    assert!(!missing.status.success());
    assert!(
        stderr(&missing)
            .contains("has no style `nope` to go on learning; its styles: pattern, stripes"),
        "{}",
        stderr(&missing)
    );
    let whole = go_on("pattern", "pattern");
    assert!(!whole.status.success());
    assert!(
        stderr(&whole).contains("one-style pack"),
        "{}",
        stderr(&whole)
    );
    let untitled = learn_into("pattern", "x", o, l, &[]);
    assert!(!untitled.status.success());
    assert!(
        stderr(&untitled).contains("needs a --title"),
        "{}",
        stderr(&untitled)
    );
}

/// `train --style-photos` names a folder of photos; `--style`, its older name, still works.
#[test]
fn train_takes_style_photos_and_the_old_flag_name() {
    let models = models();
    for flag in ["--style-photos", "--style"] {
        let run = portraitist(&["train", flag, "nowhere", "--out", "run"], models.path());
        assert!(!run.status.success());
        let said = stderr(&run);
        assert!(
            said.contains("give --content and --style-photos"),
            "{flag}: parsed, then asks for the content folder: {said}"
        );
    }
}
