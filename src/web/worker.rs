//! "Learn a style" off the page's thread: a dedicated Web Worker (its own wasm, built with the
//! `learn` feature and loaded only when the user starts learning) runs a [`Lesson`] on WebGPU
//! where the worker has a hardware adapter, else on the CPU (the page's own rule, `backend`),
//! and reports each step, a live preview now and then, and at the end the new pack as an archive.
//! The page (`learn_view`) talks to it in plain JavaScript objects:
//!
//! * out, first: `{kind: "ready"}` once its wasm runs (a message sent before would be lost);
//! * in: `{kind: "start", base, vgg19, styles: [bytes…], names: [name…], width, height, rgb,
//!   steps, size, batch, seed, previewEvery, packId, styleId, styleTitle, backend}` (`base` a
//!   pack archive, `styles` the encoded images, `rgb` the content photo's pixels, `backend`
//!   `"webgpu"`, `"cpu"` or absent: the page's `?backend=`), then `{kind: "more", steps}` to go
//!   on from where it stopped;
//! * out: `{kind: "backend", name, note}` (`"WebGPU"` or `"CPU"`, and why not WebGPU), then
//!   `{kind: "progress", step, total, content, style, tv, leftMs, workMs}` (`leftMs`: this
//!   run's time left at its pace so far, `workMs`: all runs' time stepping), `{kind: "preview", width, height, rgb}` (the user's photo
//!   in the style so far), `{kind: "done", archive, steps}` and `{kind: "error", message}` (a
//!   panic too).
//!
//! Cancel is the page terminating the worker: nothing it learnt is kept.

use std::cell::{Cell, RefCell};

use image::RgbImage;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::image_io::{self, OutputFormat};
use crate::learn::adapt::AdaptConfig;
use crate::learn::lesson::{Lesson, NewStyle};
use crate::pack::StylePack;
use crate::pack::archive::PackFile;
use crate::stylize::fit_within;
use crate::web::backend::{self, Backend};

/// Longest side of the live preview and of the new style's preview image.
const PREVIEW_SIDE: u32 = 256;

struct State {
    lesson: Lesson,
    /// The content photo, fitted to [`PREVIEW_SIDE`]: the live preview.
    preview: RgbImage,
    pack_id: String,
    preview_every: u64,
    /// Milliseconds spent stepping in earlier runs.
    work_ms: f64,
}

thread_local! {
    /// The lesson between runs (taken out while one runs).
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    /// A run is under way.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or(0.0, |p| p.now())
}

fn post(fields: &[(&str, JsValue)]) {
    let message = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&message, &(*name).into(), value);
    }
    let _ = scope().post_message(&message);
}

fn fail(message: String) {
    post(&[("kind", "error".into()), ("message", message.into())]);
}

fn field(data: &JsValue, name: &str) -> Result<JsValue, String> {
    Reflect::get(data, &name.into())
        .ok()
        .filter(|v| !v.is_undefined())
        .ok_or_else(|| format!("the message lacks `{name}`"))
}

fn text(data: &JsValue, name: &str) -> Result<String, String> {
    field(data, name)?
        .as_string()
        .ok_or_else(|| format!("`{name}` is not text"))
}

fn number(data: &JsValue, name: &str) -> Result<f64, String> {
    field(data, name)?
        .as_f64()
        .ok_or_else(|| format!("`{name}` is not a number"))
}

fn bytes(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

/// Start listening for the page's messages.
pub fn start() {
    // A panic reaches the page as an error message, not only as a trap in the console.
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        fail(format!("the learning code failed: {info}"));
    }));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let data = event.data();
        if BUSY.get() {
            return fail("still learning: wait for `done` before the next message".into());
        }
        BUSY.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            let result = match text(&data, "kind").as_deref() {
                Ok("start") => match begin(&data).await {
                    Ok(()) => run(None).await,
                    Err(e) => Err(e),
                },
                Ok("more") => match number(&data, "steps") {
                    Ok(n) => run(Some(n as u64)).await,
                    Err(e) => Err(e),
                },
                Ok(other) => Err(format!("unknown message `{other}`")),
                Err(e) => Err(e.clone()),
            };
            BUSY.set(false);
            if let Err(e) = result {
                fail(e);
            }
        });
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&[("kind", "ready".into())]);
}

/// Set up the lesson from a `start` message.
async fn begin(data: &JsValue) -> Result<(), String> {
    let base = StylePack::from_archive("the base pack", &bytes(&field(data, "base")?))
        .map_err(|e| e.to_string())?
        .0;
    let names: Vec<String> = Array::from(&field(data, "names")?)
        .iter()
        .map(|n| n.as_string().unwrap_or_default())
        .collect();
    let mut style_images = Vec::new();
    for (i, image) in Array::from(&field(data, "styles")?).iter().enumerate() {
        let name = names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("image {}", i + 1));
        style_images.push(image_io::decode(&bytes(&image)).map_err(|e| format!("{name}: {e}"))?);
    }
    let (width, height) = (
        number(data, "width")? as u32,
        number(data, "height")? as u32,
    );
    let photo = RgbImage::from_raw(width, height, bytes(&field(data, "rgb")?))
        .ok_or("the content photo's pixels do not match its size")?;
    let config = AdaptConfig {
        steps: number(data, "steps")? as u64,
        size: number(data, "size")? as usize,
        batch: number(data, "batch")? as usize,
        seed: number(data, "seed")? as u64,
        ..AdaptConfig::default()
    };
    let vgg19 = bytes(&field(data, "vgg19")?);
    let forced = match field(data, "backend")
        .ok()
        .and_then(|b| b.as_string())
        .as_deref()
    {
        Some("webgpu") => Some(Backend::WebGpu),
        Some("cpu") => Some(Backend::Cpu),
        _ => None,
    };
    let (device, used, note) = backend::init(forced).await;
    post(&[
        ("kind", "backend".into()),
        ("name", used.label().into()),
        ("note", note.map_or(JsValue::NULL, JsValue::from)),
    ]);
    let device = device.autodiff();
    let preview = fit_within(&photo, PREVIEW_SIDE);
    let style = NewStyle {
        id: text(data, "styleId")?,
        title: text(data, "styleTitle")?,
        description: String::new(),
        source: names.join(", "),
        licence: "the images' own (learnt in the browser)".into(),
        continues: false,
    };
    let lesson = Lesson::new(
        base,
        style,
        &style_images,
        vec![photo],
        &vgg19,
        config,
        &device,
    )
    .map_err(|e| e.to_string())?;
    let state = State {
        lesson,
        preview,
        pack_id: text(data, "packId")?,
        preview_every: number(data, "previewEvery")?.max(1.0) as u64,
        work_ms: 0.0,
    };
    STATE.with(|s| *s.borrow_mut() = Some(state));
    Ok(())
}

/// Take the configured steps (or `more`), reporting each, then send the pack. The lesson is
/// kept for `more` only when the run ends well (after an error the page stops the worker).
async fn run(more: Option<u64>) -> Result<(), String> {
    let mut state = STATE
        .with(|cell| cell.borrow_mut().take())
        .ok_or("nothing is being learnt: start first")?;
    take_steps(&mut state, more).await?;
    STATE.with(|cell| *cell.borrow_mut() = Some(state));
    Ok(())
}

async fn take_steps(state: &mut State, more: Option<u64>) -> Result<(), String> {
    let from = state.lesson.steps_done();
    let steps = more.unwrap_or(state.lesson.config().steps);
    let total = from + steps;
    let started = now_ms();
    for _ in 0..steps {
        let losses = state.lesson.step().await.map_err(|e| e.to_string())?;
        if let Some(failure) = backend::gpu_failure() {
            return Err(format!(
                "{failure}; learn again on the CPU (add ?backend=cpu to the address)"
            ));
        }
        let step = state.lesson.steps_done();
        let value = |name: &str| {
            losses
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(f64::NAN, |(_, v)| f64::from(*v))
        };
        post(&[
            ("kind", "progress".into()),
            ("step", (step as f64).into()),
            ("total", (total as f64).into()),
            ("content", value("content").into()),
            ("style", value("style").into()),
            ("tv", value("tv").into()),
            (
                "leftMs",
                left_ms(now_ms() - started, step - from, total - step).into(),
            ),
            ("workMs", (state.work_ms + now_ms() - started).into()),
        ]);
        if step.is_multiple_of(state.preview_every) || step == total {
            post_preview(state).await?;
        }
    }
    state.work_ms += now_ms() - started;
    let archive = pack_archive(state).await?;
    post(&[
        ("kind", "done".into()),
        ("archive", Uint8Array::from(archive.as_slice()).into()),
        ("steps", (state.lesson.steps_done() as f64).into()),
    ]);
    Ok(())
}

/// Time left for `left` more steps after `done` steps of this run took `ms`.
fn left_ms(ms: f64, done: u64, left: u64) -> f64 {
    if done == 0 {
        f64::NAN
    } else {
        ms / done as f64 * left as f64
    }
}

/// The photo in the style so far, rendered on the CPU (one small image: no upload to the GPU).
async fn post_preview(state: &State) -> Result<(), String> {
    let stylizer = state.lesson.stylizer().await.map_err(|e| e.to_string())?;
    let mut progress = |_, _| {};
    let image = stylizer
        .render(&state.preview, None, &mut progress)
        .await
        .map_err(|e| e.to_string())?;
    post(&[
        ("kind", "preview".into()),
        ("width", image.width().into()),
        ("height", image.height().into()),
        ("rgb", Uint8Array::from(image.as_raw().as_slice()).into()),
    ]);
    Ok(())
}

/// The base pack with the new style, as an archive holding the new style's preview (made from
/// the built-in portrait, as the CLI makes it: never the user's photo).
async fn pack_archive(state: &State) -> Result<Vec<u8>, String> {
    let pack = state
        .lesson
        .pack(&state.pack_id)
        .await
        .map_err(|e| e.to_string())?;
    let preview = state.lesson.preview().await.map_err(|e| e.to_string())?;
    let preview = image_io::encode(&preview, OutputFormat::Jpeg(88)).map_err(|e| e.to_string())?;
    let style = state.lesson.style_id();
    pack.to_archive(&[PackFile {
        name: format!("preview-{style}.jpg"),
        bytes: preview,
    }])
    .map_err(|e| e.to_string())
}
