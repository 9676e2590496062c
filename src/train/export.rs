//! Turn a training run into a style pack the CLI and the web app load.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use image::RgbImage;

use super::checkpoint::{self, Reader};
use super::precision::{choose_latent_precision, choose_precision};
use super::report::LossLog;
use super::trainer::{CHECKPOINTS, CONFIG_FILE, DataSummary, TrainError};
use crate::create::Creator;
use crate::image_io::{self, OutputFormat};
use crate::learn::config::{Mode, TrainConfig};
use crate::looks::LookName;
use crate::model::{Generator, GeneratorConfig};
use crate::pack::{DataSource, Index, Manifest, Precision, StyleInfo, StylePack, TrainingSummary};
use crate::photos;
use crate::stylize::{self, Stylizer};

use crate::pack::preview::{FILE as PREVIEW_FILE, HEIGHT as PREVIEW_HEIGHT};

pub struct ExportRequest<'a> {
    pub run_dir: &'a Path,
    pub checkpoint: Option<u64>,
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    /// Pack folder, usually `models/<id>`; its parent's `index.json` gets the entry.
    pub out: &'a Path,
    /// Photo for the preview (default: a built-in public-domain portrait).
    pub preview_photo: Option<&'a Path>,
    /// Licence statements for the data folders, in the order of the run's folders.
    pub licences: &'a [String],
}

pub fn export(request: &ExportRequest) -> Result<Manifest, TrainError> {
    let run = request.run_dir;
    let (config, reader) = open_run(run, request.checkpoint)?;
    let device = Device::flex();
    if config.mode == Mode::Noise {
        return export_noise(request, &config, &reader, &device);
    }
    let generator = reader.module("g", config.generator_config().init(&device))?;
    let (precision, diff) = choose_precision(&generator, &device);

    let mut manifest = Manifest::new(request.id, request.title, config.generator_config());
    manifest.description = request.description.to_string();
    manifest.training = summary(
        run,
        &config,
        reader.progress.step,
        request.licences,
        precision,
        diff,
    );
    manifest.styles = style_infos(&config, &manifest.training.sources);
    save_with_previews(
        request.out,
        manifest,
        &generator,
        precision,
        request.preview_photo,
    )
}

/// Write a look's pack into `out`: `style.json` naming `look` (a parametric colour grade that
/// the stylizer applies by formula, no network) and its preview made from `preview_photo`
/// (default: a built-in public-domain portrait); register it in `out`'s parent's index.
pub fn export_look(
    out: &Path,
    id: &str,
    title: &str,
    description: &str,
    look: LookName,
    preview_photo: Option<&Path>,
) -> Result<Manifest, TrainError> {
    let mut manifest = Manifest::new_look(id, title, look);
    manifest.description = description.to_string();
    manifest.preview = Some(PREVIEW_FILE.into());
    let manifest = StylePack::save_look(out, manifest)?;
    let photo = preview_source(preview_photo)?;
    let stylizer = Stylizer::look(look, Device::flex());
    let jpeg = image_io::encode(&preview(&photo, &stylizer)?, OutputFormat::Jpeg(88))?;
    write_file(&out.join(PREVIEW_FILE), &jpeg)?;
    if let Some(models) = out.parent() {
        Index::register(models, &manifest)?;
    }
    Ok(manifest)
}

/// The photo previews are made from.
fn preview_source(path: Option<&Path>) -> Result<RgbImage, TrainError> {
    match path {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            image_io::decode(&bytes).map_err(|source| TrainError::Decode {
                path: path.to_path_buf(),
                source,
            })
        }
        None => Ok(crate::pack::preview::portrait()),
    }
}

/// Write a transfer pack (`manifest` with `generator` stored at `precision`) into `out`, with
/// its preview (and one per style of a multi-style pack) made from `preview_photo` (default: a
/// built-in public-domain portrait), and register it in the index of `out`'s parent folder.
pub fn save_with_previews(
    out: &Path,
    mut manifest: Manifest,
    generator: &Generator,
    precision: Precision,
    preview_photo: Option<&Path>,
) -> Result<Manifest, TrainError> {
    let device = Device::flex();
    manifest.preview = Some(PREVIEW_FILE.into());
    let manifest = StylePack::save(out, manifest, generator, precision)?;
    let photo = preview_source(preview_photo)?;
    let pack = StylePack::load(out)?;
    let stylizer = Stylizer::from_pack(&pack, &device)?;
    let jpeg = image_io::encode(&preview(&photo, &stylizer)?, OutputFormat::Jpeg(88))?;
    write_file(&out.join(PREVIEW_FILE), &jpeg)?;
    // A multi-style pack: a preview per style too (the manifest names them).
    let count = manifest.styles.len();
    for (s, style) in manifest.styles.iter().enumerate() {
        let mut one = vec![0.0; count];
        one[s] = 1.0;
        let stylizer = Stylizer::from_pack_weights(&pack, &one, &device)?;
        let jpeg = image_io::encode(&preview(&photo, &stylizer)?, OutputFormat::Jpeg(88))?;
        let file = style.preview.as_deref().unwrap_or(PREVIEW_FILE);
        write_file(&out.join(file), &jpeg)?;
    }
    if let Some(models) = out.parent() {
        Index::register(models, &manifest)?;
    }
    Ok(manifest)
}

/// A run's configuration and the reader of its checkpoint at `step` (default: the latest).
fn open_run(run_dir: &Path, step: Option<u64>) -> Result<(TrainConfig, Reader), TrainError> {
    let config_path = run_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|source| TrainError::Io {
        path: config_path.clone(),
        source,
    })?;
    let config = TrainConfig::from_toml(&text).map_err(TrainError::Config)?;
    let dir = run_dir.join(CHECKPOINTS);
    let reader = match step {
        Some(step) => Reader::at_step(&dir, step)?,
        None => Reader::latest(&dir)?,
    };
    Ok((config, reader))
}

/// A noise run's pack: the moving-average generator, and a preview grid of the portraits of
/// seeds 0–7 (as `portraitist generate --seed 0 --count 8` makes them).
fn export_noise(
    request: &ExportRequest,
    config: &TrainConfig,
    reader: &Reader,
    device: &Device,
) -> Result<Manifest, TrainError> {
    let latent = config.latent_generator_config();
    let generator = reader.module("ema", latent.init(device))?;
    let (precision, diff) = choose_latent_precision(&generator, device);
    let mut manifest = Manifest::new_noise(request.id, request.title, latent);
    manifest.description = request.description.to_string();
    manifest.training = summary(
        request.run_dir,
        config,
        reader.progress.step,
        request.licences,
        precision,
        diff,
    );
    manifest.preview = Some(PREVIEW_FILE.into());
    let manifest = StylePack::save(request.out, manifest, &generator, precision)?;
    let pack = StylePack::load(request.out)?;
    let creator = Creator::from_pack(&pack, device)?;
    let seeds: Vec<u64> = (0..8).collect();
    let images = pollster::block_on(creator.render_seeds(&seeds))?;
    let side = PREVIEW_HEIGHT / 2;
    let filter = image::imageops::FilterType::Lanczos3;
    let tiles: Vec<RgbImage> = images
        .iter()
        .map(|image| image::imageops::resize(image, side, side, filter))
        .collect();
    let rows: Vec<Vec<RgbImage>> = tiles.chunks(4).map(<[RgbImage]>::to_vec).collect();
    let jpeg = image_io::encode(&photos::grid(&rows), OutputFormat::Jpeg(88))?;
    write_file(&request.out.join(PREVIEW_FILE), &jpeg)?;
    if let Some(models) = request.out.parent() {
        Index::register(models, &manifest)?;
    }
    Ok(manifest)
}

/// A styles run's styles for the manifest: each id with the title and description from its
/// folder's optional `about.txt` (first line the title, the rest the description), and its
/// folder as the source (the run's folders are the content photos, then one per style).
fn style_infos(config: &TrainConfig, sources: &[DataSource]) -> Vec<StyleInfo> {
    config
        .styles
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let source = sources.get(i + 1).cloned();
            let about = source
                .as_ref()
                .and_then(|s| std::fs::read_to_string(Path::new(&s.name).join("about.txt")).ok())
                .unwrap_or_default();
            let mut lines = about.lines();
            let title = lines
                .next()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| title_of(id));
            StyleInfo {
                id: id.clone(),
                title,
                description: lines.collect::<Vec<_>>().join(" ").trim().to_string(),
                sources: source.into_iter().collect(),
                preview: Some(format!("preview-{id}.jpg")),
            }
        })
        .collect()
}

/// `old-master` → `Old master`.
fn title_of(id: &str) -> String {
    let words = id.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Original | stylized, side by side (see [`crate::pack::preview`]).
fn preview(photo: &RgbImage, stylizer: &stylize::Stylizer) -> Result<RgbImage, TrainError> {
    Ok(pollster::block_on(crate::pack::preview::render(
        photo, stylizer,
    ))?)
}

fn summary(
    run: &Path,
    config: &TrainConfig,
    step: u64,
    licences: &[String],
    precision: Precision,
    diff: f32,
) -> TrainingSummary {
    let data: DataSummary = std::fs::read(run.join("data.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let sources = data
        .folders
        .iter()
        .enumerate()
        .map(|(i, (folder, count))| DataSource {
            name: folder.clone(),
            licence: licences
                .get(i)
                .cloned()
                .unwrap_or_else(|| "unspecified".into()),
            images: *count as u64,
        })
        .collect();
    let columns = config.loss_columns();
    let mut metrics = std::collections::BTreeMap::new();
    if let Ok(log) = LossLog::open_read_only(&run.join("losses.csv"), &columns) {
        let rows: Vec<_> = log.read().into_iter().filter(|(s, _)| *s <= step).collect();
        let tail = &rows[rows.len().saturating_sub(20)..];
        for (i, name) in columns.iter().enumerate() {
            if !tail.is_empty() {
                let mean =
                    tail.iter().map(|(_, v)| f64::from(v[i])).sum::<f64>() / tail.len() as f64;
                metrics.insert(format!("final_{name}"), mean);
            }
        }
    }
    metrics.insert("f16_max_diff_8bit_levels".into(), f64::from(diff));
    TrainingSummary {
        sources,
        steps: step,
        metrics,
        notes: format!(
            "{:?} training, preset {}, {} px, batch {}, {:?} loss, weights stored as {:?} ({})",
            config.mode,
            config.preset,
            config.size,
            config.batch,
            config.adversarial,
            precision,
            checkpoint::step_name(step)
        ),
    }
}

/// Where `portraitist export --format safetensors` takes its weights from.
pub enum WeightsSource<'a> {
    /// A style pack: an id in `models_dir` or a pack folder.
    Pack {
        style: &'a str,
        models_dir: &'a Path,
    },
    /// A training run's checkpoint (default: the latest).
    Run {
        run_dir: &'a Path,
        checkpoint: Option<u64>,
    },
}

/// What [`export_safetensors`] wrote.
#[derive(Debug)]
pub struct SafetensorsExport {
    pub parameters: usize,
    pub bytes: u64,
}

/// Metadata key holding the image-to-image generator's shape (JSON, as in `style.json`).
pub const GENERATOR_METADATA: &str = "portraitist.generator";
/// Metadata key holding the image-to-image generator's layer table (JSON list of
/// [`crate::model::Layer`]): what other tools build the network from.
pub const LAYERS_METADATA: &str = "portraitist.layers";
/// Metadata key holding the noise generator's shape (JSON).
pub const LATENT_GENERATOR_METADATA: &str = "portraitist.latent_generator";

/// Write a generator's weights as a SafeTensors file (f32, tensor names are the module paths, e.g.
/// `blocks.0.first.conv.weight`), with its shape and (image-to-image) its layer table in the
/// metadata, so other tools (PyTorch, the benchmarks' reference in `bench/reference`) can rebuild
/// the network. Written atomically.
pub fn export_safetensors(
    source: &WeightsSource,
    out: &Path,
) -> Result<SafetensorsExport, TrainError> {
    let device = Device::flex();
    let bytes = match *source {
        WeightsSource::Pack { style, models_dir } => {
            let pack = StylePack::resolve(style, models_dir)?;
            if let Some(config) = pack.manifest.latent_generator.clone() {
                let generator = pack.latent_generator(&device)?;
                safetensors_bytes(&generator, &[(LATENT_GENERATOR_METADATA, json(&config))])?
            } else {
                let config = pack.transfer_config()?.clone();
                let generator = pack.generator(&device)?;
                safetensors_bytes(&generator, &transfer_metadata(&config))?
            }
        }
        WeightsSource::Run {
            run_dir,
            checkpoint,
        } => {
            let (config, reader) = open_run(run_dir, checkpoint)?;
            if config.mode == Mode::Noise {
                let latent = config.latent_generator_config();
                let generator = reader.module("ema", latent.init(&device))?;
                safetensors_bytes(&generator, &[(LATENT_GENERATOR_METADATA, json(&latent))])?
            } else {
                let shape = config.generator_config();
                let generator = reader.module("g", shape.init(&device))?;
                safetensors_bytes(&generator, &transfer_metadata(&shape))?
            }
        }
    };
    let (bytes, parameters) = bytes;
    write_file(out, &bytes)?;
    Ok(SafetensorsExport {
        parameters,
        bytes: bytes.len() as u64,
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("network configs always serialise")
}

fn transfer_metadata(config: &GeneratorConfig) -> [(&'static str, String); 2] {
    [
        (GENERATOR_METADATA, json(config)),
        (LAYERS_METADATA, json(&config.layers())),
    ]
}

/// The file's bytes, and the network's parameter count.
fn safetensors_bytes<M: Module>(
    network: &M,
    metadata: &[(&str, String)],
) -> Result<(Vec<u8>, usize), TrainError> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (key, value) in metadata {
        store = store.metadata(*key, value.clone());
    }
    network
        .save_into(&mut store)
        .map_err(|e| TrainError::Usage(format!("could not write SafeTensors: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| TrainError::Usage(format!("could not write SafeTensors: {e}")))?;
    Ok((bytes, network.num_params()))
}

/// [`crate::atomic::write`], its error naming the file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::atomic::write(path, bytes).map_err(|source| TrainError::Io {
        path: path.into(),
        source,
    })
}
