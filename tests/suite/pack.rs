//! Style packs: round trip, verification, and every way a pack can be wrong.

use crate::common;

use std::fs;

use burn::tensor::Device;
use portraitist::Stylizer;
use portraitist::pack::{Index, Manifest, PackError, Precision, StyleInfo, StylePack, StyleRef};
use portraitist::stylize::Normalization;
use portraitist::train::precision::choose_precision;
use tempfile::tempdir;

fn render(stylizer: &Stylizer) -> image::RgbImage {
    stylizer
        .render_blocking(&common::astronaut(), None, &mut |_, _| {})
        .unwrap()
}

#[test]
fn saved_pack_loads_and_gives_identical_output() {
    let dir = tempdir().unwrap();
    let config = common::test_config();
    let generator = common::random_generator(&config, 11);
    let device = Device::flex();
    let direct = Stylizer::new(
        generator.clone(),
        config.clone(),
        Normalization::default(),
        device.clone(),
    );
    let manifest = Manifest::new("roundtrip", "Round trip", config);
    StylePack::save(dir.path(), manifest, &generator, Precision::F32).unwrap();

    let loaded = Stylizer::from_pack(&StylePack::load(dir.path()).unwrap(), &device).unwrap();
    assert_eq!(render(&direct), render(&loaded));
}

#[test]
fn pack_loads_from_bytes_like_the_browser() {
    let dir = tempdir().unwrap();
    let manifest = common::random_pack(dir.path(), "bytes", 3);
    let json = fs::read(dir.path().join("style.json")).unwrap();
    let weights = fs::read(dir.path().join(&manifest.weights.file)).unwrap();
    let from_bytes = StylePack::from_bytes("style.json", &json, weights).unwrap();
    let from_dir = StylePack::load(dir.path()).unwrap();
    let device = Device::flex();
    assert_eq!(
        render(&Stylizer::from_pack(&from_bytes, &device).unwrap()),
        render(&Stylizer::from_pack(&from_dir, &device).unwrap())
    );
}

#[test]
fn different_weights_give_different_output() {
    // Guards the round-trip test: it would pass vacuously if weights did not matter.
    let (a, b) = (tempdir().unwrap(), tempdir().unwrap());
    common::random_pack(a.path(), "a", 1);
    common::random_pack(b.path(), "b", 2);
    let device = Device::flex();
    let out_a = render(&Stylizer::from_pack(&StylePack::load(a.path()).unwrap(), &device).unwrap());
    let out_b = render(&Stylizer::from_pack(&StylePack::load(b.path()).unwrap(), &device).unwrap());
    assert!(common::mean_abs_diff(&out_a, &out_b) > 1.0);
}

#[test]
fn corrupted_weights_are_refused_by_checksum() {
    let dir = tempdir().unwrap();
    let manifest = common::random_pack(dir.path(), "corrupt", 4);
    let path = dir.path().join(&manifest.weights.file);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let err = StylePack::load(dir.path()).unwrap_err();
    assert!(matches!(err, PackError::HashMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("generator.bpk"),
        "message names the file: {err}"
    );
}

#[test]
fn truncated_weights_are_refused_with_their_size() {
    let dir = tempdir().unwrap();
    let manifest = common::random_pack(dir.path(), "truncated", 5);
    let path = dir.path().join(&manifest.weights.file);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let err = StylePack::load(dir.path()).unwrap_err();
    assert!(matches!(err, PackError::WrongSize { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn missing_weights_are_named() {
    let dir = tempdir().unwrap();
    let manifest = common::random_pack(dir.path(), "missing", 6);
    fs::remove_file(dir.path().join(&manifest.weights.file)).unwrap();
    let err = StylePack::load(dir.path()).unwrap_err();
    assert!(matches!(err, PackError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("generator.bpk"));
}

#[test]
fn weights_that_do_not_fit_the_config_are_refused() {
    let dir = tempdir().unwrap();
    common::random_pack(dir.path(), "mismatch", 7);
    let path = dir.path().join("style.json");
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["generator"]["width"] = 8.into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    // The checksum still matches: the problem is only caught when the weights are applied.
    let pack = StylePack::load(dir.path()).unwrap();
    let err = pack.generator(&Device::flex()).unwrap_err();
    assert!(matches!(err, PackError::WeightsMismatch { .. }), "{err}");
}

#[test]
fn newer_format_versions_are_refused_by_version() {
    let dir = tempdir().unwrap();
    common::random_pack(dir.path(), "future", 8);
    let path = dir.path().join("style.json");
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["format_version"] = 99.into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = StylePack::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, PackError::UnsupportedVersion { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn hostile_manifests_are_refused_cleanly() {
    let dir = tempdir().unwrap();
    common::random_pack(dir.path(), "hostile", 9);
    let good: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("style.json")).unwrap()).unwrap();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for (field, value) in [
        ("/generator/width", serde_json::json!(1_000_000_000u64)),
        ("/generator/blocks", serde_json::json!(1u64 << 40)),
        ("/id", serde_json::json!("../../etc")),
        ("/title", serde_json::json!("x".repeat(100_000))),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(field).unwrap() = value;
        cases.push(serde_json::to_vec(&v).unwrap());
    }
    let mut weights_escape = good.clone();
    weights_escape["weights"]["file"] = "../../secret".into();
    cases.push(serde_json::to_vec(&weights_escape).unwrap());
    cases.push(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes());
    cases.push(b"{\"format_version\": 1, ".to_vec());
    cases.push(vec![b' '; 2 << 20]);
    for bytes in cases {
        let err = Manifest::parse("style.json", &bytes).unwrap_err();
        assert!(matches!(err, PackError::InvalidManifest { .. }), "{err}");
        assert!(err.to_string().len() < 500, "message stays readable: {err}");
    }
}

#[test]
fn half_precision_is_chosen_only_when_outputs_stay_within_one_level() {
    let device = Device::flex();
    let generator = common::random_generator(&common::test_config(), 12);
    let (precision, diff) = choose_precision(&generator, &device);
    assert!(diff.is_finite());
    assert_eq!(
        precision == Precision::F16,
        diff <= 1.0,
        "diff {diff} levels → {precision:?}"
    );
}

#[test]
fn half_precision_pack_is_half_the_size_and_matches_within_one_level() {
    let (full_dir, half_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let config = common::test_config();
    let generator = common::random_generator(&config, 13);
    let full = StylePack::save(
        full_dir.path(),
        Manifest::new("f", "F", config.clone()),
        &generator,
        Precision::F32,
    )
    .unwrap();
    let half = StylePack::save(
        half_dir.path(),
        Manifest::new("h", "H", config),
        &generator,
        Precision::F16,
    )
    .unwrap();
    assert!(
        half.weights.bytes * 10 < full.weights.bytes * 6,
        "{} vs {}",
        half.weights.bytes,
        full.weights.bytes
    );
    let device = Device::flex();
    let a =
        render(&Stylizer::from_pack(&StylePack::load(full_dir.path()).unwrap(), &device).unwrap());
    let b =
        render(&Stylizer::from_pack(&StylePack::load(half_dir.path()).unwrap(), &device).unwrap());
    assert!(
        common::max_abs_diff(&a, &b) <= 2,
        "f16 weights moved pixels by {}",
        common::max_abs_diff(&a, &b)
    );
}

#[test]
fn index_registers_packs_and_resolves_ids() {
    let models = tempdir().unwrap();
    let a = common::random_pack(&models.path().join("alpha"), "alpha", 1);
    let b = common::random_pack(&models.path().join("beta"), "beta", 2);
    Index::register(models.path(), &a).unwrap();
    let index = Index::register(models.path(), &b).unwrap();
    assert_eq!(index.default.as_deref(), Some("alpha"));
    let ids: Vec<_> = index.styles.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "beta"]);
    // Registering again replaces rather than duplicates.
    let again = Index::register(models.path(), &b).unwrap();
    assert_eq!(again.styles.len(), 2);
    assert_eq!(Index::load(models.path()).unwrap(), again);

    assert_eq!(
        StylePack::resolve("beta", models.path())
            .unwrap()
            .manifest
            .id,
        "beta"
    );
    let err = StylePack::resolve("gamma", models.path()).unwrap_err();
    assert!(matches!(err, PackError::UnknownStyle(_)), "{err}");
}

/// A multi-style pack: saved and loaded, each style and any mix reachable by name, equal to the
/// network baked from that mix; a style list that does not match the network is refused.
#[test]
fn a_multi_style_pack_round_trips_and_mixes_by_name() {
    let dir = tempdir().unwrap();
    let config = common::test_config().with_styles(Some(2));
    let generator = common::perturb_styles(common::random_generator(&config, 5), 9);
    let style = |id: &str| StyleInfo {
        id: id.into(),
        title: id.to_uppercase(),
        ..StyleInfo::default()
    };
    let mut manifest = Manifest::new("duo", "Duo", config);
    manifest.styles = vec![style("warm"), style("cool")];
    StylePack::save(dir.path(), manifest.clone(), &generator, Precision::F32).unwrap();
    let pack = StylePack::load(dir.path()).unwrap();
    let device = Device::flex();
    let by_name = |text: &str| {
        let style = StyleRef::parse(text).unwrap();
        render(&Stylizer::from_pack_style(&pack, &style, &device).unwrap())
    };
    let (warm, cool) = (by_name("duo:warm"), by_name("duo:cool"));
    assert!(common::mean_abs_diff(&warm, &cool) > 1.0);
    assert_eq!(by_name("duo"), warm, "a pack alone is its first style");
    let direct = Stylizer::new(
        generator.with_style(&[0.25, 0.75]),
        common::test_config(),
        Normalization::default(),
        device.clone(),
    );
    assert_eq!(by_name("duo:warm=1,cool=3"), render(&direct));

    let unknown = StyleRef::parse("duo:sepia").unwrap();
    let err = Stylizer::from_pack_style(&pack, &unknown, &device).unwrap_err();
    assert!(err.to_string().contains("warm, cool"), "{err}");
    manifest.styles.pop();
    let err = StylePack::save(
        tempdir().unwrap().path(),
        manifest,
        &generator,
        Precision::F32,
    )
    .unwrap_err();
    assert!(matches!(err, PackError::InvalidManifest { .. }), "{err}");
}

/// A look is a pack without a network: it loads from a folder and from bytes with no weights,
/// stylizes exactly as its formula, cannot be mixed, and malformed looks are refused by name.
#[test]
fn a_look_pack_applies_its_formula_exactly() {
    use portraitist::looks::LookName;

    let dir = tempdir().unwrap();
    let models = dir.path().join("models");
    let out = models.join("grade");
    let manifest = portraitist::train::export::export_look(
        &out,
        "grade",
        "Grade",
        "A formula.",
        LookName::TealOrange,
        None,
    )
    .unwrap();
    assert_eq!(manifest.look(), Some(LookName::TealOrange));
    let files: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.ends_with(".bpk")),
        "no weights: {files:?}"
    );
    let index = Index::load(&models).unwrap();
    assert_eq!(index.styles[0].look.as_deref(), Some("teal-orange"));

    let device = Device::flex();
    let photo = common::astronaut();
    let pack = StylePack::load(&out).unwrap();
    let styled = Stylizer::from_pack(&pack, &device)
        .unwrap()
        .render_blocking(&photo, Some(64), &mut |_, _| {})
        .unwrap();
    assert_eq!(
        styled,
        LookName::TealOrange.apply(&photo),
        "the formula, exactly"
    );
    assert_ne!(styled, photo);
    let bytes = fs::read(out.join("style.json")).unwrap();
    let from_bytes = StylePack::from_bytes("style.json", &bytes, Vec::new()).unwrap();
    assert_eq!(
        render(&Stylizer::from_pack(&from_bytes, &device).unwrap()),
        LookName::TealOrange.apply(&common::astronaut())
    );
    let err = Stylizer::from_pack_weights(&pack, &[0.5, 0.5], &device).unwrap_err();
    assert!(err.to_string().contains("no styles to mix"), "{err}");
    let err = pack.generator(&device).unwrap_err();
    assert!(err.to_string().contains("no network"), "{err}");

    let good: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let network = common::test_config();
    let mut unknown = good.clone();
    unknown["look"] = "neon".into();
    let mut with_network = good.clone();
    with_network["generator"] = serde_json::to_value(&network).unwrap();
    let mut with_weights = good.clone();
    with_weights["weights"] =
        serde_json::json!({"file": "generator.bpk", "sha256": "00", "bytes": 1, "dtype": "f32"});
    let mut noise_look = good.clone();
    noise_look["kind"] = "noise".into();
    for (case, expected) in [
        (unknown, "unknown look `neon`"),
        (with_network, "no `generator`"),
        (with_weights, "a look has no `weights`"),
        (noise_look, "no `generator` or `latent_generator`"),
    ] {
        let err = Manifest::parse("style.json", &serde_json::to_vec(&case).unwrap()).unwrap_err();
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    // A network's pack without its weights entry is refused too.
    let network_dir = dir.path().join("net");
    common::random_pack(&network_dir, "net", 3);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(network_dir.join("style.json")).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("weights");
    let err = Manifest::parse("style.json", &serde_json::to_vec(&manifest).unwrap()).unwrap_err();
    assert!(err.to_string().contains("needs `weights`"), "{err}");
}

/// The shipped colour grades are looks: the built-in `modern` and `classical` give their
/// formulas' output exactly.
#[test]
fn the_shipped_colour_grades_are_their_formulas() {
    use portraitist::looks::LookName;

    let device = Device::flex();
    for (id, look) in [
        ("modern", LookName::TealOrange),
        ("classical", LookName::SepiaPrint),
    ] {
        let pack = StylePack::resolve(id, std::path::Path::new("no-models-here")).unwrap();
        assert_eq!(pack.manifest.look(), Some(look), "{id}");
        let styled = render(&Stylizer::from_pack(&pack, &device).unwrap());
        assert_eq!(styled, look.apply(&common::astronaut()), "{id}");
    }
}

/// A pack as one file (`pack::archive`): the shipped multi-style pack and its previews go into a
/// tar and come back verified, system tar reads what we write and we read what it writes, and a
/// damaged or truncated archive is refused by name.
#[test]
fn a_pack_archive_round_trips_through_our_reader_and_system_tar() {
    use portraitist::pack::archive::{self, PackFile};

    let shipped_dir = common::repo_models().join("painters");
    let shipped = StylePack::load(&shipped_dir).unwrap();
    let preview = PackFile {
        name: "preview.jpg".into(),
        bytes: fs::read(shipped_dir.join("preview.jpg")).unwrap(),
    };
    let bytes = shipped.to_archive(std::slice::from_ref(&preview)).unwrap();
    assert!(archive::is_archive(&bytes));
    assert_eq!(bytes.len() % 512, 0);
    let (back, others) = StylePack::from_archive("painters.tar", &bytes).unwrap();
    assert_eq!(back.manifest, shipped.manifest);
    assert_eq!(others, std::slice::from_ref(&preview));
    let device = Device::flex();
    let params = |p: &StylePack| common::param_values(&p.generator(&device).unwrap());
    assert_eq!(params(&back), params(&shipped));

    // System tar unpacks it into a pack folder that loads; it packs a folder we then read.
    let dir = tempdir().unwrap();
    let file = dir.path().join("painters.tar");
    fs::write(&file, &bytes).unwrap();
    let tar = |args: &[&str]| {
        let out = std::process::Command::new("tar")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tar(&["-xf", "painters.tar"]);
    let unpacked = StylePack::load(&dir.path().join("painters")).unwrap();
    assert_eq!(params(&unpacked), params(&shipped));
    assert_eq!(
        fs::read(dir.path().join("painters/preview.jpg")).unwrap(),
        preview.bytes
    );
    tar(&["-cf", "theirs.tar", "painters"]);
    let theirs = StylePack::load(&dir.path().join("theirs.tar")).unwrap();
    assert_eq!(params(&theirs), params(&shipped));
    // `load` takes the archive's path like a folder's.
    assert_eq!(params(&StylePack::load(&file).unwrap()), params(&shipped));

    // A flipped byte in a header, in the weights, or a cut: each refused, naming the problem.
    let mut header = bytes.clone();
    header[3] ^= 1;
    let err = StylePack::from_archive("x.tar", &header)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum") && err.contains("x.tar"), "{err}");
    let weights_at = bytes.windows(4).position(|w| w == b"NRUB").map(|i| i + 100);
    let mut damaged = bytes.clone();
    damaged[weights_at.unwrap_or(2048)] ^= 0x55;
    let err = StylePack::from_archive("x.tar", &damaged).unwrap_err();
    assert!(matches!(err, PackError::HashMismatch { .. }), "{err}");
    assert!(
        err.to_string().starts_with("x.tar: painters/generator.bpk"),
        "{err}"
    );
    let err = StylePack::from_archive("x.tar", &bytes[..bytes.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    // An archive without a manifest says so.
    let note = |name: &str| PackFile {
        name: name.into(),
        bytes: b"hi".to_vec(),
    };
    let empty = archive::write("x", &[note("notes.txt")]).unwrap();
    let err = StylePack::from_archive("x.tar", &empty)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("style.json") && err.contains("missing"),
        "{err}"
    );
    // Two packs in one archive: refused, not one picked.
    let copy = std::process::Command::new("cp")
        .args(["-r", "painters", "painters-copy"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(copy.success());
    tar(&["-cf", "two.tar", "painters", "painters-copy"]);
    let err = StylePack::load(&dir.path().join("two.tar"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("one pack"), "{err}");
    // Long names use ustar's prefix field (system tar agrees); a file name over 100 bytes is refused.
    let long_id = "p".repeat(64);
    let long = archive::write(&long_id, &[note(&"n".repeat(90))]).unwrap();
    fs::write(dir.path().join("long.tar"), &long).unwrap();
    let listed = std::process::Command::new("tar")
        .args(["-tf", "long.tar"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        format!("{long_id}/{}", "n".repeat(90))
    );
    let err = archive::write("x", &[note(&"n".repeat(101))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("over 100 bytes"), "{err}");
}
