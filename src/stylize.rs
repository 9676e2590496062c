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
use image::imageops::{self, FilterType};
use serde::{Deserialize, Serialize};

use crate::engine::CpuGenerator;
use crate::model::{Generator, GeneratorConfig, NormStats};

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
}

/// Strength and colour options applied after the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    /// 0 returns the original exactly, 1 the full style.
    pub strength: f32,
    /// Keep the original's colours (chroma) and take only the brightness from the style.
    pub keep_colors: bool,
}

impl Default for Blend {
    fn default() -> Self {
        Self {
            strength: 1.0,
            keep_colors: false,
        }
    }
}

/// Combine an original photo with its full-strength stylized version (same size).
pub fn blend(original: &RgbImage, styled: &RgbImage, settings: Blend) -> RgbImage {
    assert_eq!(
        original.dimensions(),
        styled.dimensions(),
        "blend needs images of one size"
    );
    let strength = settings.strength.clamp(0.0, 1.0);
    let mut out = original.clone();
    if strength == 0.0 {
        return out;
    }
    for (o, s) in out.pixels_mut().zip(styled.pixels()) {
        let orig = o.0.map(f32::from);
        let mut style = s.0.map(f32::from);
        if settings.keep_colors {
            let [_, cb, cr] = to_ycbcr(orig);
            let [y, _, _] = to_ycbcr(style);
            style = from_ycbcr([y, cb, cr]);
        }
        for c in 0..3 {
            let v = orig[c] + strength * (style[c] - orig[c]);
            o.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Full-range BT.601 YCbCr (the JPEG convention), on 0..255 values.
pub fn to_ycbcr([r, g, b]: [f32; 3]) -> [f32; 3] {
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

pub fn from_ycbcr([y, cb, cr]: [f32; 3]) -> [f32; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
}

/// Downscale (never upscale) so that the longer side is at most `max_side`.
pub fn fit_within(photo: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let longest = w.max(h);
    if longest <= max_side || max_side == 0 {
        return photo.clone();
    }
    let scale = f64::from(max_side) / f64::from(longest);
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    imageops::resize(photo, nw, nh, FilterType::Lanczos3)
}

/// Channel-first f32 pixels, normalised for the network.
#[derive(Debug, Clone)]
struct Planes {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Planes {
    fn zeros(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    fn plane(&self) -> usize {
        self.width * self.height
    }

    fn from_image(image: &RgbImage, norm: &Normalization) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let mut planes = Self::zeros(width, height);
        let plane = planes.plane();
        let (scale, shift) = norm.affine();
        for (i, px) in image.pixels().enumerate() {
            for c in 0..3 {
                planes.data[c * plane + i] = f32::from(px.0[c]) * scale[c] - shift[c];
            }
        }
        planes
    }

    fn to_image(&self, norm: &Normalization) -> RgbImage {
        let plane = self.plane();
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let i = y as usize * self.width + x as usize;
            image::Rgb(std::array::from_fn(|c| {
                to_level(self.data[c * plane + i], norm, c)
            }))
        })
    }

    /// The part `[x0, y0, x1, y1]` of the photo reflect-padded as [`Padding`] says, normalised:
    /// the same values as `from_image`, `pad_for_network` and `crop`, without the whole copies.
    fn window(image: &RgbImage, norm: &Normalization, padding: &Padding, area: [usize; 4]) -> Self {
        let [x0, y0, x1, y1] = area;
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let xs: Vec<usize> = (x0..x1)
            .map(|x| reflect_index(x as isize - padding.left as isize, iw))
            .collect();
        let mut out = Planes::zeros(x1 - x0, y1 - y0);
        let plane = out.plane();
        let (scale, shift) = norm.affine();
        let raw = image.as_raw();
        for (row, y) in (y0..y1).enumerate() {
            let sy = reflect_index(y as isize - padding.top as isize, ih);
            for (col, &sx) in xs.iter().enumerate() {
                let px = &raw[3 * (sy * iw + sx)..][..3];
                for c in 0..3 {
                    out.data[c * plane + row * out.width + col] =
                        f32::from(px[c]) * scale[c] - shift[c];
                }
            }
        }
        out
    }

    /// Reflect-pad to sides that are multiples of 4 and at least the network's minimum, split
    /// evenly between the two sides. Returns the padded planes and the left and top padding.
    fn pad_for_network(self) -> (Planes, usize, usize) {
        let Padding {
            width: pw,
            height: ph,
            left,
            top,
        } = Padding::for_network(self.width, self.height);
        if pw == self.width && ph == self.height {
            return (self, 0, 0);
        }
        let mut out = Planes::zeros(pw, ph);
        let (src_plane, dst_plane) = (self.plane(), out.plane());
        for c in 0..3 {
            for y in 0..ph {
                let sy = reflect_index(y as isize - top as isize, self.height);
                for x in 0..pw {
                    let sx = reflect_index(x as isize - left as isize, self.width);
                    out.data[c * dst_plane + y * pw + x] =
                        self.data[c * src_plane + sy * self.width + sx];
                }
            }
        }
        (out, left, top)
    }

    fn crop(&self, x0: usize, y0: usize, width: usize, height: usize) -> Planes {
        let mut out = Planes::zeros(width, height);
        let (src_plane, dst_plane) = (self.plane(), out.plane());
        for c in 0..3 {
            for y in 0..height {
                let src = c * src_plane + (y0 + y) * self.width + x0;
                let dst = c * dst_plane + y * width;
                out.data[dst..dst + width].copy_from_slice(&self.data[src..src + width]);
            }
        }
        out
    }
}

/// The padded size the network needs for a photo: sides that are multiples of 4 and at least the
/// network's minimum, the padding split evenly between the two sides.
#[derive(Debug, Clone, Copy)]
struct Padding {
    width: usize,
    height: usize,
    left: usize,
    top: usize,
}

impl Padding {
    fn for_network(width: usize, height: usize) -> Self {
        let target =
            |n: usize| round_up(n, GeneratorConfig::MULTIPLE).max(GeneratorConfig::MIN_SIDE);
        let (pw, ph) = (target(width), target(height));
        Self {
            width: pw,
            height: ph,
            left: (pw - width) / 2,
            top: (ph - height) / 2,
        }
    }
}

/// A network output value back to an 8-bit level of channel `c`.
fn to_level(value: f32, norm: &Normalization, c: usize) -> u8 {
    let v = (value * norm.std[c] + norm.mean[c]) * 255.0;
    v.round().clamp(0.0, 255.0) as u8
}

/// Mirror an out-of-range index back into `0..len` (reflection without repeating the edge,
/// as the network's own padding does), for any distance.
fn reflect_index(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period);
    (if m < len as isize { m } else { period - m }) as usize
}

fn round_up(n: usize, multiple: usize) -> usize {
    n.div_ceil(multiple) * multiple
}

/// Overlap between neighbouring tile interiors, blended linearly.
const FEATHER: usize = 32;

/// One tile of a tiled run; rectangles are `[x0, y0, x1, y1]` in padded-image pixels.
#[derive(Debug, Clone, Copy)]
struct Tile {
    /// The part of the output this tile contributes (feathered where it overlaps a neighbour).
    core: [usize; 4],
    /// What the network sees: the core plus context on every side that is not the image border.
    window: [usize; 4],
}

/// Split `0..len` into interiors of at most `core` pixels that overlap by at least [`FEATHER`],
/// starting on multiples of 4 so every tile sees the same downsampling grid as the whole image.
fn spans(len: usize, core: usize) -> Vec<(usize, usize)> {
    if len <= core {
        return vec![(0, len)];
    }
    let step = (core - FEATHER) / GeneratorConfig::MULTIPLE * GeneratorConfig::MULTIPLE;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = start + core;
        if end >= len {
            // The last interior ends at the edge; it may overlap its neighbour by more.
            let start =
                (len.saturating_sub(core)) / GeneratorConfig::MULTIPLE * GeneratorConfig::MULTIPLE;
            out.push((start, len));
            return out;
        }
        out.push((start, end));
        start += step;
    }
}

/// Blend weight of pixel `p` in interior `[start, end)`: ramps up over [`FEATHER`] pixels at
/// edges shared with a neighbour, 1 at the image border and inside. Never zero.
fn feather(p: usize, start: usize, end: usize, len: usize) -> f32 {
    let ramp = |d: usize| ((d as f32 + 0.5) / FEATHER as f32).min(1.0);
    let rising = if start > 0 { ramp(p - start) } else { 1.0 };
    let falling = if end < len { ramp(end - 1 - p) } else { 1.0 };
    rising.min(falling)
}

/// The pixel paths around the network, for `benches/hot_paths.rs` (not a stable API).
#[doc(hidden)]
pub mod hot_paths {
    use super::{Normalization, Padding, Planes, RgbImage};

    /// Photo → the network's normalised, padded input planes (the whole-image path).
    pub fn photo_to_input(photo: &RgbImage, norm: &Normalization) -> Vec<f32> {
        Planes::from_image(photo, norm).pad_for_network().0.data
    }

    /// Network output planes → photo.
    pub fn output_to_photo(
        data: Vec<f32>,
        width: usize,
        height: usize,
        norm: &Normalization,
    ) -> RgbImage {
        Planes {
            width,
            height,
            data,
        }
        .to_image(norm)
    }

    /// One tile's input straight from the photo: `area` is `[x0, y0, x1, y1]` in padded pixels.
    pub fn tile_input(photo: &RgbImage, norm: &Normalization, area: [usize; 4]) -> Vec<f32> {
        let padding = Padding::for_network(photo.width() as usize, photo.height() as usize);
        Planes::window(photo, norm, &padding, area).data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_index_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect_index(-5, 1), 0);
    }

    #[test]
    fn spans_cover_everything_with_overlap_and_aligned_starts() {
        for len in [100, 513, 1024, 2000, 4097] {
            let core = 300;
            let s = spans(len, core);
            assert_eq!(s.first().unwrap().0, 0);
            assert_eq!(s.last().unwrap().1, len);
            for pair in s.windows(2) {
                assert!(pair[1].0 % 4 == 0);
                assert!(
                    pair[0].1 >= pair[1].0 + FEATHER,
                    "{pair:?} overlap too small"
                );
                assert!(pair[0].1 - pair[0].0 <= core);
            }
        }
    }

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

    #[test]
    fn a_window_equals_the_padded_photo_cropped() {
        let photo = RgbImage::from_fn(37, 21, |x, y| {
            image::Rgb([(x * 9) as u8, (y * 11) as u8, ((x + y) * 3) as u8])
        });
        let norm = Normalization {
            mean: [0.4, 0.5, 0.6],
            std: [0.2, 0.3, 0.25],
        };
        let (padded, _, _) = Planes::from_image(&photo, &norm).pad_for_network();
        let padding = Padding::for_network(37, 21);
        assert_eq!(
            (padded.width, padded.height),
            (padding.width, padding.height)
        );
        let (pw, ph) = (padding.width, padding.height);
        for area in [[0, 0, 8, 8], [3, 5, pw, ph - 1], [0, 0, pw, ph]] {
            let [x0, y0, x1, y1] = area;
            let window = Planes::window(&photo, &norm, &padding, area);
            let cropped = padded.crop(x0, y0, x1 - x0, y1 - y0);
            assert_eq!(window.data, cropped.data, "{area:?}");
        }
    }

    #[test]
    fn ycbcr_round_trips() {
        for rgb in [[0.0, 0.0, 0.0], [255.0, 10.0, 100.0], [12.0, 200.0, 255.0]] {
            let back = from_ycbcr(to_ycbcr(rgb));
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 0.01, "{rgb:?} -> {back:?}");
            }
        }
    }
}
