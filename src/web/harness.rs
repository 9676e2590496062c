//! The page's stylize path without the page, for `bench/dawn` (Node with Dawn, Chrome's WebGPU
//! implementation): the same wasm code the page runs — device choice, pack parsing, the tiled
//! render at the page's tile size — on a GPU without a browser; with `learn`, also the "Learn a
//! style" worker's [`Lesson`] on that device ([`LearnHarness`]). Exported to JavaScript; the page
//! itself does not use it.

use image::RgbImage;
use wasm_bindgen::prelude::*;

use super::backend::{self, Backend};
use super::browser;
use super::state::BROWSER_TILE;
use crate::image_io::{self, OutputFormat};
use crate::pack::{StylePack, StyleRef};
use crate::stylize::Stylizer;

/// One style on the device the page would pick (`backend`: `webgpu`, or `cpu` for the wasm CPU
/// path), ready to stylize photos.
#[wasm_bindgen]
pub struct Harness {
    stylizer: Stylizer,
    backend: Backend,
}

#[wasm_bindgen]
impl Harness {
    /// `manifest` and `weights` are a pack's `style.json` and weights file; `style` names a
    /// style or mix the way the page and the CLI do (`painters:ink`, `painters:ink=0.7,…`).
    /// WebGPU is taken even on a software adapter (the page would pass over one).
    pub async fn open(
        backend: String,
        style: String,
        manifest: Vec<u8>,
        weights: Vec<u8>,
    ) -> Result<Harness, JsError> {
        let (device, backend) = device(&backend).await?;
        let style = StyleRef::parse(&style).map_err(js)?;
        let pack = StylePack::from_bytes("style.json", &manifest, weights).map_err(js)?;
        let stylizer = Stylizer::from_pack_style(&pack, &style, &device).map_err(js)?;
        Ok(Harness { stylizer, backend })
    }

    /// `WebGPU` or `CPU`.
    pub fn backend(&self) -> String {
        self.backend.label().into()
    }

    /// The full-strength result for an encoded photo (JPEG, PNG, WebP), as PNG bytes.
    pub fn stylize(&self, photo: Vec<u8>) -> js_sys::Promise {
        let stylizer = self.stylizer.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let photo = image_io::decode(&photo).map_err(js_value)?;
            let styled = render(&stylizer, &photo).await?;
            let png = image_io::encode(&styled, OutputFormat::Png).map_err(js_value)?;
            Ok(js_sys::Uint8Array::from(png.as_slice()).into())
        })
    }

    /// Milliseconds of each of `runs` renders of the photo resized to `side`×`side`, after one
    /// untimed render of that size (its shapes' kernels compile then). Only the render is timed,
    /// read-back of the result included: decoding and resizing happen once, before.
    pub fn time(&self, photo: Vec<u8>, side: u32, runs: u32) -> js_sys::Promise {
        let stylizer = self.stylizer.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let photo = image_io::decode(&photo).map_err(js_value)?;
            let photo = image::imageops::resize(&photo, side, side, image::imageops::Triangle);
            render(&stylizer, &photo).await?;
            let times = js_sys::Array::new();
            for _ in 0..runs {
                let started = browser::now_ms();
                render(&stylizer, &photo).await?;
                times.push(&JsValue::from(browser::now_ms() - started));
            }
            Ok(times.into())
        })
    }
}

/// The page's render: full strength, tiled at the page's tile size.
async fn render(stylizer: &Stylizer, photo: &RgbImage) -> Result<RgbImage, JsValue> {
    stylizer
        .render(photo, Some(BROWSER_TILE), &mut |_, _| {})
        .await
        .map_err(js_value)
}

/// The page's "Learn a style" without the page: the worker's [`Lesson`] on the device the page
/// would pick (`backend`: `webgpu` or `cpu`), from one style image and one content photo, with
/// the worker's crop side, batch and seed given, so that its loss curve can be checked against
/// `portraitist learn --log` and its steps timed.
#[cfg(feature = "learn")]
#[wasm_bindgen]
pub struct LearnHarness {
    /// Taken out while a step runs.
    lesson: std::rc::Rc<std::cell::RefCell<Option<crate::learn::lesson::Lesson>>>,
    backend: Backend,
}

#[cfg(feature = "learn")]
#[wasm_bindgen]
impl LearnHarness {
    /// `manifest` and `weights`: the base pack's `style.json` and weights file; `vgg19`:
    /// `scripts/convert-vgg19.py`'s file; `style` and `content`: encoded images (the painting,
    /// the photo whose content is kept). The new style is called `look`.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        backend: String,
        manifest: Vec<u8>,
        weights: Vec<u8>,
        vgg19: Vec<u8>,
        style: Vec<u8>,
        content: Vec<u8>,
        size: u32,
        batch: u32,
        seed: u32,
    ) -> Result<LearnHarness, JsError> {
        use crate::learn::adapt::AdaptConfig;
        use crate::learn::lesson::{Lesson, NewStyle};
        let (device, backend) = device(&backend).await?;
        let base = StylePack::from_bytes("style.json", &manifest, weights).map_err(js)?;
        let style = image_io::decode(&style).map_err(|e| js(format!("the style image: {e}")))?;
        let content =
            image_io::decode(&content).map_err(|e| js(format!("the content photo: {e}")))?;
        let config = AdaptConfig {
            size: size as usize,
            batch: batch as usize,
            seed: u64::from(seed),
            ..AdaptConfig::default()
        };
        let new = NewStyle {
            id: "look".into(),
            title: "Look".into(),
            ..NewStyle::default()
        };
        let lesson = Lesson::new(
            base,
            new,
            &[style],
            vec![content],
            &vgg19,
            config,
            &device.autodiff(),
        )
        .map_err(js)?;
        Ok(LearnHarness {
            lesson: std::rc::Rc::new(std::cell::RefCell::new(Some(lesson))),
            backend,
        })
    }

    /// `WebGPU` or `CPU`.
    pub fn backend(&self) -> String {
        self.backend.label().into()
    }

    /// One step, read back: resolves to `[content, style, tv, milliseconds]` (the losses as
    /// `portraitist learn --log` writes them; the time includes the read-back).
    pub fn step(&self) -> js_sys::Promise {
        let cell = self.lesson.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut lesson = cell
                .borrow_mut()
                .take()
                .ok_or_else(|| js_value("a step is already under way"))?;
            let started = browser::now_ms();
            let losses = lesson.step().await;
            let ms = browser::now_ms() - started;
            *cell.borrow_mut() = Some(lesson);
            let losses = losses.map_err(js_value)?;
            if let Some(failure) = backend::gpu_failure() {
                return Err(js_value(failure));
            }
            let out = js_sys::Array::new();
            for name in ["content", "style", "tv"] {
                let value = losses
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(f64::NAN, |(_, v)| f64::from(*v));
                out.push(&JsValue::from(value));
            }
            out.push(&JsValue::from(ms));
            Ok(out.into())
        })
    }
}

/// The device for `webgpu` or `cpu`, as the page picks it; WebGPU even on a software adapter.
async fn device(backend: &str) -> Result<(burn::tensor::Device, Backend), JsError> {
    let forced = match backend {
        "webgpu" => Backend::WebGpu,
        "cpu" => Backend::Cpu,
        other => {
            return Err(JsError::new(&format!(
                "unknown backend `{other}`: webgpu or cpu"
            )));
        }
    };
    let (device, backend, note) = backend::init(Some(forced)).await;
    if backend != forced {
        return Err(JsError::new(
            &note.unwrap_or_else(|| "WebGPU is not available".into()),
        ));
    }
    Ok((device, backend))
}

/// The largest difference of any channel of any pixel between two encoded images of one size.
#[wasm_bindgen(js_name = maxDifference)]
pub fn max_difference(a: &[u8], b: &[u8]) -> Result<u8, JsError> {
    let (a, b): (RgbImage, RgbImage) = (
        image_io::decode(a).map_err(js)?,
        image_io::decode(b).map_err(js)?,
    );
    if a.dimensions() != b.dimensions() {
        return Err(JsError::new(&format!(
            "sizes differ: {:?} and {:?}",
            a.dimensions(),
            b.dimensions()
        )));
    }
    Ok(a.iter()
        .zip(b.iter())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0))
}

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn js_value(e: impl std::fmt::Display) -> JsValue {
    js(e).into()
}
