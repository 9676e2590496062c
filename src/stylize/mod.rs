//! The one inference path, shared by the CLI and the browser: photo → tensor → generator → photo.
//!
//! * Any size and aspect ratio: the photo is reflect-padded to what the network accepts and the
//!   result cropped back.
//! * Large photos run in overlapping tiles with feathered seams. Instance norm needs whole-image
//!   statistics, so they are recorded once on the photo, downscaled to [`STATS_SIDE`] if larger,
//!   and replayed for every tile ([`NormStats`]); each tile also gets enough context around it
//!   that its interior is exact.
//! * [`blend`] applies strength and "keep original colours" to a stored full-strength result, so
//!   front ends can change them instantly without running the network again.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use serde::{Deserialize, Serialize};

mod blend;
mod planes;

pub use blend::{Blend, blend, fit_within, from_ycbcr, to_ycbcr};
#[doc(hidden)]
pub use planes::hot_paths;
use planes::{Padding, Planes, Tile, feather, round_up, spans, to_level};

use crate::engine::CpuGenerator;
use crate::looks::LookName;
use crate::model::{Generator, GeneratorConfig, NormStats};
use crate::pack::{PackError, StylePack, StyleRef};

/// Per-channel normalisation of 0..1 pixel values: `(v - mean) / std`. The pack records it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Normalization {
    /// Maps 0..1 to -1..1, matching the generator's tanh output.
    fn default() -> Self {
        Self {
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

impl Normalization {
    /// `(scale, shift)` such that an 8-bit level `v` normalises to `v * scale - shift`.
    fn affine(&self) -> ([f32; 3], [f32; 3]) {
        (
            std::array::from_fn(|c| 1.0 / (255.0 * self.std[c])),
            std::array::from_fn(|c| self.mean[c] / self.std[c]),
        )
    }
}

/// Why a run produced no image.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Reading a result back from the device failed (e.g. a lost GPU).
    #[error("the {backend} backend failed while running the style: {message}")]
    Backend { backend: String, message: String },
    /// The front end's [`CancelToken`] asked to stop.
    #[error("cancelled")]
    Cancelled,
}

/// A request to stop a run, shared by the front end (which cancels) and the stylizer (which
/// stops at the next tile). Clones share one flag; the run that stops for it clears it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the current run (if any) to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forget an earlier request: a new run is starting.
    pub fn clear(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Default tile (window) side for native runs: a photo larger than this runs in tiles. Browsers
/// use smaller tiles to stay inside WebGPU's buffer limits.
pub const DEFAULT_TILE: usize = 2048;

/// Longest side of the copy on which a tiled run measures instance-norm statistics (at least the
/// tile side). Up to this size tiling reproduces the whole-image result; beyond it the
/// statistics come from a downscaled copy, a close approximation.
pub const STATS_SIDE: usize = 1024;

/// Something to await between tiles, so a single-threaded front end (the browser) can repaint
/// and handle input during a long run.
pub type Yield = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A loaded generator ready to stylize photos on one device.
#[derive(Debug, Clone)]
pub struct Stylizer {
    engine: Engine,
    config: GeneratorConfig,
    normalization: Normalization,
    device: Device,
    yield_now: Option<Yield>,
    cancel: CancelToken,
}

impl Stylizer {
    pub fn new(
        generator: Generator,
        config: GeneratorConfig,
        normalization: Normalization,
        device: Device,
    ) -> Self {
        // On the CPU the network runs on our own convolution path (3–4× faster than Burn's CPU
        // backend for these shapes, see bench/); elsewhere through Burn on the device.
        let engine = if device == Device::flex() {
            Engine::Cpu(Box::new(CpuGenerator::new(&generator)))
        } else {
            Engine::Burn(Box::new(generator.to_device(&device)))
        };
        Self {
            engine,
            config,
            normalization,
            device,
            yield_now: None,
            cancel: CancelToken::new(),
        }
    }

    /// A stylizer that applies `look` (exact, instant: no network runs).
    pub fn look(look: LookName, device: Device) -> Self {
        Self {
            engine: Engine::Look(look),
            config: GeneratorConfig::new(1, 0),
            normalization: Normalization::default(),
            device,
            yield_now: None,
            cancel: CancelToken::new(),
        }
    }

    /// A stylizer with a (transfer) pack's network and normalisation, on `device`; a
    /// multi-style pack's first style.
    pub fn from_pack(pack: &StylePack, device: &Device) -> Result<Self, PackError> {
        Self::from_pack_weights(pack, &[], device)
    }

    /// A stylizer for the style or mix of styles `style` names in `pack` (see [`StyleRef`]).
    pub fn from_pack_style(
        pack: &StylePack,
        style: &StyleRef,
        device: &Device,
    ) -> Result<Self, PackError> {
        Self::from_pack_weights(pack, &style.weights(&pack.manifest)?, device)
    }

    /// A stylizer for a mix of a multi-style pack's styles: `weights[s]` is style `s`'s share
    /// (empty: the first style).
    pub fn from_pack_weights(
        pack: &StylePack,
        weights: &[f32],
        device: &Device,
    ) -> Result<Self, PackError> {
        if let Some(look) = pack.manifest.look() {
            // One style, like any one-style pack: `[]` or `[1.0]`.
            if weights.len() > 1 {
                return Err(PackError::BadMix(format!(
                    "`{}` is a look applied by code: it has no styles to mix",
                    pack.manifest.id
                )));
            }
            return Ok(Self::look(look, device.clone()));
        }
        let generator = pack.generator(device)?;
        let generator = match generator.config().styles {
            Some(count) if weights.is_empty() => {
                let mut first = vec![0.0; count];
                first[0] = 1.0;
                generator.with_style(&first)
            }
            Some(count) if weights.len() != count => {
                return Err(PackError::BadMix(format!(
                    "`{}` holds {count} styles; {} shares were given",
                    pack.manifest.id,
                    weights.len()
                )));
            }
            _ => generator.with_style(weights),
        };
        let mut config = pack.transfer_config()?.clone();
        config.styles = None;
        Ok(Self::new(
            generator,
            config,
            pack.manifest.normalization,
            device.clone(),
        ))
    }

    /// Await `yield_now` before the network runs and after every tile.
    pub fn with_yield(mut self, yield_now: Yield) -> Self {
        self.yield_now = Some(yield_now);
        self
    }

    /// Stop with [`RenderError::Cancelled`] at the next tile once `cancel` is cancelled.
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    async fn breathe(&self) -> Result<(), RenderError> {
        if let Some(yield_now) = self.yield_now {
            yield_now().await;
        }
        if self.cancel.is_cancelled() {
            self.cancel.clear();
            return Err(RenderError::Cancelled);
        }
        Ok(())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Smallest tile side that still leaves a useful interior after the context margins.
    pub fn min_tile(&self) -> usize {
        2 * self.margin() + 64
    }

    fn margin(&self) -> usize {
        round_up(self.config.receptive_radius(), GeneratorConfig::MULTIPLE)
    }

    /// The full-strength stylized photo, same size as `photo`.
    ///
    /// `tile` is the largest side run at once (`None`: never tile); smaller values than
    /// [`Stylizer::min_tile`] are raised to it. `progress(done, total)` is called after each tile.
    pub async fn render(
        &self,
        photo: &RgbImage,
        tile: Option<usize>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RgbImage, RenderError> {
        if let Engine::Look(look) = &self.engine {
            self.breathe().await?;
            let out = look.apply(photo);
            progress(1, 1);
            return Ok(out);
        }
        let tile = tile.map(|t| round_up(t.max(self.min_tile()), GeneratorConfig::MULTIPLE));
        let padding = Padding::for_network(photo.width() as usize, photo.height() as usize);
        match tile {
            Some(tile) if padding.width.max(padding.height) > tile => {
                let stats = self.thumbnail_stats(photo, tile).await?;
                self.render_tiled(photo, &padding, tile, &stats, progress)
                    .await
            }
            _ => {
                let (width, height) = (photo.width() as usize, photo.height() as usize);
                let (padded, pad_x, pad_y) =
                    Planes::from_image(photo, &self.normalization).pad_for_network();
                let out = self.run(padded, &mut NormStats::live()).await?;
                progress(1, 1);
                Ok(out
                    .crop(pad_x, pad_y, width, height)
                    .to_image(&self.normalization))
            }
        }
    }

    /// Blocking [`Stylizer::render`] for native front ends.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn render_blocking(
        &self,
        photo: &RgbImage,
        tile: Option<usize>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RgbImage, RenderError> {
        pollster::block_on(self.render(photo, tile, progress))
    }

    /// Run the network tile by tile over the (virtually) padded photo. Memory stays near one f32
    /// copy of the photo whatever its size: each window is normalised straight from the photo's
    /// pixels, and the feathered sum is kept only for the photo's own pixels.
    async fn render_tiled(
        &self,
        photo: &RgbImage,
        padding: &Padding,
        tile: usize,
        stats: &NormStats,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RgbImage, RenderError> {
        let (width, height) = (photo.width() as usize, photo.height() as usize);
        let (left, top) = (padding.left, padding.top);
        let tiles = self.tiles(padding.width, padding.height, tile);
        let plane = width * height;
        let mut acc = vec![0f32; 3 * plane];
        // The feather weights are a product of a horizontal and a vertical ramp over a grid of
        // tiles, so their sum at a pixel is the product of the two axes' sums.
        let mut weight_x = vec![0f32; width];
        let mut weight_y = vec![0f32; height];
        let [first_x, first_y, ..] = tiles[0].core;
        for t in &tiles {
            let [x0, y0, x1, y1] = t.core;
            if y0 == first_y {
                for x in x0.max(left)..x1.min(left + width) {
                    weight_x[x - left] += feather(x, x0, x1, padding.width);
                }
            }
            if x0 == first_x {
                for y in y0.max(top)..y1.min(top + height) {
                    weight_y[y - top] += feather(y, y0, y1, padding.height);
                }
            }
        }
        for (done, t) in tiles.iter().enumerate() {
            let [wx0, wy0, wx1, wy1] = t.window;
            let [x0, y0, x1, y1] = t.core;
            let window = Planes::window(photo, &self.normalization, padding, t.window);
            let out = self.run(window, &mut stats.clone()).await?;
            let out_plane = out.plane();
            debug_assert_eq!((out.width, out.height), (wx1 - wx0, wy1 - wy0));
            for y in y0.max(top)..y1.min(top + height) {
                let wy = feather(y, y0, y1, padding.height);
                for x in x0.max(left)..x1.min(left + width) {
                    let w = wy * feather(x, x0, x1, padding.width);
                    let src = (y - wy0) * out.width + (x - wx0);
                    let dst = (y - top) * width + (x - left);
                    for c in 0..3 {
                        acc[c * plane + dst] += w * out.data[c * out_plane + src];
                    }
                }
            }
            progress(done + 1, tiles.len());
        }
        let norm = &self.normalization;
        Ok(RgbImage::from_fn(width as u32, height as u32, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let i = y * width + x;
            let weight = weight_x[x] * weight_y[y];
            image::Rgb(std::array::from_fn(|c| {
                to_level(acc[c * plane + i] / weight, norm, c)
            }))
        }))
    }

    /// The tile grid for a padded image: interiors overlapping by [`FEATHER`], each with a
    /// context window around it.
    fn tiles(&self, width: usize, height: usize, tile: usize) -> Vec<Tile> {
        let margin = self.margin();
        let xs = spans(width, tile - 2 * margin);
        let ys = spans(height, tile - 2 * margin);
        let mut tiles = Vec::with_capacity(xs.len() * ys.len());
        for &(y0, y1) in &ys {
            for &(x0, x1) in &xs {
                tiles.push(Tile {
                    core: [x0, y0, x1, y1],
                    window: [
                        x0.saturating_sub(margin),
                        y0.saturating_sub(margin),
                        (x1 + margin).min(width),
                        (y1 + margin).min(height),
                    ],
                });
            }
        }
        tiles
    }

    /// Instance-norm statistics of the photo, measured on a copy of at most
    /// `max(tile, STATS_SIDE)` pixels on its longer side.
    async fn thumbnail_stats(
        &self,
        photo: &RgbImage,
        tile: usize,
    ) -> Result<NormStats, RenderError> {
        let thumb = fit_within(photo, tile.max(STATS_SIDE) as u32);
        let (padded, _, _) = Planes::from_image(&thumb, &self.normalization).pad_for_network();
        let mut stats = NormStats::record();
        self.run(padded, &mut stats).await?;
        Ok(stats.replay())
    }

    async fn run(&self, input: Planes, stats: &mut NormStats) -> Result<Planes, RenderError> {
        self.breathe().await?;
        let (width, height) = (input.width, input.height);
        let generator = match &self.engine {
            Engine::Cpu(generator) => {
                let data = generator.forward_with(input.data, height, width, stats);
                return Ok(Planes {
                    width,
                    height,
                    data,
                });
            }
            Engine::Burn(generator) => generator,
            Engine::Look(look) => {
                return Err(
                    self.backend_error(format!("the look `{}` has no network to run", look.name()))
                );
            }
        };
        // The planes move into the tensor: no copy of the pixels on the way in.
        let x = Tensor::<4>::from_data(
            TensorData::new(input.data, [1, 3, height, width]),
            &self.device,
        );
        let data = generator
            .forward_with(x, stats)
            .into_data_async()
            .await
            .map_err(|e| self.backend_error(e))?;
        let data = data
            .try_into_vec::<f32>()
            .map_err(|e| self.backend_error(format!("{e:?}")))?;
        Ok(Planes {
            width,
            height,
            data,
        })
    }

    fn backend_error(&self, message: impl std::fmt::Display) -> RenderError {
        RenderError::Backend {
            backend: format!("{:?}", self.device),
            message: message.to_string(),
        }
    }
}

/// Where the network runs.
#[derive(Debug, Clone)]
enum Engine {
    /// Burn, on any device.
    Burn(Box<Generator>),
    /// Our CPU path (same maths, compared in tests).
    Cpu(Box<CpuGenerator>),
    /// No network: a parametric look, applied pixel by pixel.
    Look(LookName),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the whole image's own norm statistics, tiling must reproduce the whole-image result:
    /// this checks the context margins, the 4-pixel grid alignment and the feathering.
    #[test]
    fn tiles_with_whole_image_statistics_match_the_whole_image() {
        let device = Device::flex();
        device.seed(7);
        let config = GeneratorConfig::new(4, 2);
        let stylizer = Stylizer::new(
            config.init(&device),
            config,
            Normalization::default(),
            device,
        );
        let photo = RgbImage::from_fn(300, 212, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x * y) % 251) as u8,
            ])
        });
        let norm = Normalization::default();
        let (padded, pad_x, pad_y) = Planes::from_image(&photo, &norm).pad_for_network();
        let mut stats = NormStats::record();
        let whole = pollster::block_on(stylizer.run(padded, &mut stats)).unwrap();
        let whole = whole.crop(pad_x, pad_y, 300, 212).to_image(&norm);
        let tile = stylizer.min_tile();
        let mut tiles = 0;
        let padding = Padding::for_network(300, 212);
        let tiled = pollster::block_on(stylizer.render_tiled(
            &photo,
            &padding,
            tile,
            &stats.replay(),
            &mut |_, total| tiles = total,
        ))
        .unwrap();
        assert!(tiles >= 4, "expected several tiles, got {tiles}");
        // Equal up to float rounding in the feathered sums: at most one level, rarely.
        let diffs: Vec<u8> = whole
            .as_raw()
            .iter()
            .zip(tiled.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max_diff = diffs.iter().copied().max().unwrap();
        let off = diffs.iter().filter(|&&d| d > 0).count();
        assert!(
            max_diff <= 1,
            "tiled differs from whole by {max_diff} levels"
        );
        assert!(
            off * 1000 < diffs.len(),
            "{off} of {} values differ",
            diffs.len()
        );
    }
}
