//! "Learn a style": the user gives one to twenty images in a look (a painting, a few photos), and
//! a new style of the shipped multi-style network is learnt from them on this device, keeping
//! the content of the photo they gave. The learning runs in a Web Worker (`worker`), on WebGPU
//! where the worker finds a hardware adapter and else on the CPU (`?backend=` forces one, as
//! for the page's renders), whose wasm
//! and the VGG19 weights are fetched only when the user starts learning (and are then cached for
//! offline use by the service worker). Progress, time left and a live preview come from the
//! worker; the result joins the gallery as one of the user's own packs (`own`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Object, Reflect, Uint8Array};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlInputElement, MessageEvent, Worker};

use super::backend;
use super::browser;
use super::own;
use super::runner::fetch_pack;
use super::state::{Ui, canvas};
use crate::pack::id_from_title;

/// The worker's loader (trunk's shim for the `portraitist-learn` wasm).
const WORKER: &str = "portraitist-learn_loader.js";
/// The VGG19 weights the losses need, from this origin (trunk's post-build hook puts them there).
const VGG19: &str = "learn/vgg19.bin";
/// Most images a style is learnt from.
const MAX_IMAGES: usize = 20;
/// Training crops: side, and crops per step (the CLI's defaults, `portraitist learn`).
const SIZE: u32 = 128;
const BATCH: u32 = 2;
const SEED: u32 = 1;
/// Steps of a lesson unless the user asks for more: a painting's Gram distance falls to about
/// a tenth of the base style's by then (measured on Van Gogh's Night Café, README).
const DEFAULT_STEPS: u32 = 50;
/// A live preview every this many steps.
const PREVIEW_EVERY: u32 = 5;
/// How long the worker's wasm may take to start (download included).
const READY_WITHIN_MS: i32 = 120_000;

#[derive(Clone, Copy)]
struct Learn {
    /// The chosen images' names; their bytes are in `images`.
    names: RwSignal<Vec<String>>,
    images: StoredValue<Vec<Vec<u8>>, LocalStorage>,
    name: RwSignal<String>,
    steps: RwSignal<u32>,
    /// Learning now (the worker is stepping).
    busy: RwSignal<bool>,
    /// The worker holds a finished lesson that "More steps" can continue.
    can_continue: RwSignal<bool>,
    status: RwSignal<String>,
    /// What the worker learns on: "WebGPU" or "CPU" (`data-backend`), once it has said.
    backend: RwSignal<String>,
    step: RwSignal<u32>,
    total: RwSignal<u32>,
    /// Every step's losses, `step,content,style,tv` (shown as `data-csv` for tests).
    csv: RwSignal<String>,
    /// Finished lessons (`data-learnt`), and the lesson's milliseconds of stepping (`data-ms`).
    learnt: RwSignal<u32>,
    ms: RwSignal<f64>,
    /// The worker and its two handlers (dropped with it).
    worker: StoredValue<Option<Running>, LocalStorage>,
    /// Counts lessons started and stopped: a message, or a `start` resuming after a fetch, that
    /// belongs to an older one is ignored.
    generation: StoredValue<u32>,
    /// The worker of this generation said `ready`.
    ready: StoredValue<bool>,
    preview: NodeRef<leptos::html::Canvas>,
    /// The style and pack names of the lesson in the worker.
    pack_id: StoredValue<String>,
    title: StoredValue<String>,
}

struct Running {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Learn {
    fn new() -> Self {
        Self {
            names: RwSignal::new(Vec::new()),
            images: StoredValue::new_local(Vec::new()),
            name: RwSignal::new(String::new()),
            steps: RwSignal::new(DEFAULT_STEPS),
            busy: RwSignal::new(false),
            can_continue: RwSignal::new(false),
            status: RwSignal::new(String::new()),
            backend: RwSignal::new(String::new()),
            step: RwSignal::new(0),
            total: RwSignal::new(0),
            csv: RwSignal::new(String::new()),
            learnt: RwSignal::new(0),
            ms: RwSignal::new(0.0),
            worker: StoredValue::new_local(None),
            generation: StoredValue::new(0),
            ready: StoredValue::new(false),
            preview: NodeRef::new(),
            pack_id: StoredValue::new(String::new()),
            title: StoredValue::new(String::new()),
        }
    }

    /// Stop the worker (if any), and with it every lesson started so far.
    fn stop_worker(self) {
        self.worker.update_value(|running| {
            if let Some(running) = running.take() {
                running.worker.terminate();
            }
        });
        self.generation.update_value(|g| *g += 1);
        self.ready.set_value(false);
        self.can_continue.set(false);
    }

    fn failed(self, message: String) {
        self.stop_worker();
        self.busy.set(false);
        self.status.set(message);
    }
}

#[component]
pub(super) fn LearnView(ui: Ui) -> impl IntoView {
    let learn = Learn::new();
    let add_files = move |files: web_sys::FileList| {
        spawn_local(async move {
            let mut names = Vec::new();
            let mut images = Vec::new();
            for i in 0..files.length().min(MAX_IMAGES as u32) {
                let Some(file) = files.get(i) else { continue };
                match browser::file_bytes(&file).await {
                    Ok(bytes) => {
                        names.push(file.name());
                        images.push(bytes);
                    }
                    Err(e) => learn.status.set(format!("{}: {e}", file.name())),
                }
            }
            if files.length() as usize > MAX_IMAGES {
                learn.status.set(format!(
                    "A style is learnt from at most {MAX_IMAGES} images: the first {MAX_IMAGES} are used."
                ));
            }
            if learn.name.get_untracked().trim().is_empty()
                && let Some(first) = names.first()
            {
                let stem = first.rsplit_once('.').map_or(first.as_str(), |(s, _)| s);
                learn.name.set(stem.replace(['_', '-'], " "));
            }
            learn.images.set_value(images);
            learn.names.set(names);
        });
    };
    let on_images = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            add_files(files);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            add_files(files);
        }
    };
    // Pasted onto the (focused) drop area: images for the style, not the photo.
    let on_paste = move |ev: leptos::ev::ClipboardEvent| {
        if let Some(files) = ev.clipboard_data().and_then(|d| d.files())
            && files.length() > 0
        {
            ev.prevent_default();
            add_files(files);
        }
    };
    let chosen = move || {
        let names = learn.names.get();
        match names.len() {
            0 => "No images chosen yet.".to_string(),
            1 => format!("1 image: {}", names[0]),
            n => format!("{n} images: {}", names.join(", ")),
        }
    };
    view! {
        <section class="learn" aria-labelledby="learn-heading">
            <details id="learn">
                <summary><h2 id="learn-heading">"Learn a style"</h2></summary>
                <p class="hint">
                    "From one painting or a few photos in a look (up to 20). A new style of the
                    painterly styles' network is learnt on this device, keeping the content of your
                    photo (step 2); nothing is uploaded. The first time, the learning code and its image
                    features (about 7 MB) are downloaded; after that it works offline."
                </p>
                <div class="input" tabindex="0" aria-label="Images for the new style: choose, drop or paste them here"
                    on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default() on:drop=on_drop on:paste=on_paste>
                    <label class="pick">
                        "Choose images"
                        <input type="file" accept="image/*" multiple id="learn-images" on:change=on_images />
                    </label>
                    <span class="hint">"or drop them here, or click here and paste."</span>
                    <span id="learn-chosen">{chosen}</span>
                </div>
                <div class="controls">
                    <label>"Name "
                        <input type="text" id="learn-name" maxlength="60" prop:value=move || learn.name.get()
                            on:input=move |ev| learn.name.set(event_target_value(&ev)) />
                    </label>
                    <label>"Steps "
                        <input type="number" id="learn-steps" min="1" max="2000" prop:value=move || learn.steps.get().to_string()
                            on:change=move |ev| learn.steps.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_STEPS).clamp(1, 2000)) />
                    </label>
                    <button type="button" class="primary" id="learn-start" prop:disabled=move || learn.busy.get()
                        on:click=move |_| spawn_local(start(ui, learn))>"Learn"</button>
                    <button type="button" id="learn-more" class:hidden=move || !learn.can_continue.get() || learn.busy.get()
                        on:click=move |_| more(learn)>"More steps"</button>
                    <button type="button" id="learn-cancel" class:hidden=move || !learn.busy.get()
                        on:click=move |_| { learn.failed("Cancelled: nothing learnt in this run was kept.".into()); }>"Cancel"</button>
                </div>
                <progress id="learn-progress" max=move || learn.total.get().max(1) value=move || learn.step.get()
                    class:hidden=move || learn.total.get() == 0></progress>
                <p id="learn-status" role="status" aria-live="polite"
                    data-csv=move || learn.csv.get() data-learnt=move || learn.learnt.get() data-ms=move || learn.ms.get()
                    data-backend=move || learn.backend.get()>
                    {move || learn.status.get()}
                </p>
                <canvas node_ref=learn.preview id="learn-preview" role="img" aria-label="Your photo in the style being learnt"
                    class:hidden=move || learn.step.get() == 0></canvas>
            </details>
        </section>
    }
}

/// The shipped multi-style pack new styles join: the first in the gallery (the default).
fn base_pack(ui: Ui) -> Option<String> {
    ui.styles.with_untracked(|cards| {
        cards
            .iter()
            .find(|c| !c.own && !c.look && !c.mixes_with.is_empty())
            .map(|c| c.pack.clone())
    })
}

fn set(object: &Object, name: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &name.into(), &value.into());
}

async fn start(ui: Ui, learn: Learn) {
    // The photo as given (not fitted to the output size): what `portraitist learn --content` reads.
    let Some(photo) = ui
        .session
        .with_value(|s| s.source.as_ref().map(|(p, _)| p.clone()))
    else {
        learn
            .status
            .set("Choose a photo first (step 2): the new style learns to keep its content.".into());
        return;
    };
    // In name order, as the CLI reads a folder.
    let mut named: Vec<(String, Vec<u8>)> = learn
        .names
        .get_untracked()
        .into_iter()
        .zip(learn.images.get_value())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if named.is_empty() {
        learn
            .status
            .set("Choose one to twenty images in the look first.".into());
        return;
    }
    let title = learn.name.get_untracked().trim().to_string();
    if title.is_empty() {
        learn.status.set("Give the new style a name.".into());
        return;
    }
    let Some(base_id) = base_pack(ui) else {
        learn
            .status
            .set("No multi-style pack is installed to learn a style for.".into());
        return;
    };
    learn.stop_worker();
    let generation = learn.generation.get_value();
    learn.busy.set(true);
    learn.step.set(0);
    learn.total.set(0);
    learn.csv.set(String::new());
    learn.backend.set(String::new());
    learn.status.set(
        "Loading the learning code and VGG19 (once; afterwards they are kept for offline use)…"
            .into(),
    );
    let prepared = async {
        let vgg19 = browser::fetch_bytes(VGG19).await.map_err(|e| {
            format!(
                "{e}: this site was built without the VGG19 weights learning needs \
                 (scripts/convert-vgg19.py makes them; then build the site again)"
            )
        })?;
        let base = fetch_pack(&base_id).await?;
        let archive = base.to_archive(&[]).map_err(|e| e.to_string())?;
        Ok::<_, String>((vgg19, archive, base))
    }
    .await;
    if learn.generation.get_value() != generation {
        return; // cancelled, or started again, meanwhile
    }
    let (vgg19, archive, base) = match prepared {
        Ok(p) => p,
        Err(e) => return learn.failed(format!("Learning could not start: {e}")),
    };
    let style_id = id_from_title(&title);
    if base.manifest.styles.iter().any(|s| s.id == style_id) {
        return learn.failed(format!(
            "{} already has a style called `{style_id}`: choose another name.",
            base.manifest.title
        ));
    }
    // A new pack id: another lesson of the same name gets the next number.
    let mut pack_id = format!("{base_id}-{style_id}");
    for n in 2.. {
        if !own::has(ui, &pack_id) {
            break;
        }
        pack_id = format!("{base_id}-{style_id}-{n}");
    }
    learn.pack_id.set_value(pack_id.clone());
    learn.title.set_value(title.clone());
    let message = Object::new();
    set(&message, "kind", "start");
    set(&message, "base", Uint8Array::from(archive.as_slice()));
    set(&message, "vgg19", Uint8Array::from(vgg19.as_slice()));
    let (styles, names) = (Array::new(), Array::new());
    for (name, image) in &named {
        styles.push(&Uint8Array::from(image.as_slice()));
        names.push(&name.into());
    }
    set(&message, "styles", styles);
    set(&message, "names", names);
    set(&message, "width", photo.width());
    set(&message, "height", photo.height());
    set(&message, "rgb", Uint8Array::from(photo.as_raw().as_slice()));
    set(&message, "steps", learn.steps.get_untracked());
    set(&message, "size", SIZE);
    set(&message, "batch", BATCH);
    set(&message, "seed", SEED);
    set(&message, "previewEvery", PREVIEW_EVERY);
    set(&message, "packId", pack_id);
    set(&message, "styleId", style_id);
    set(&message, "styleTitle", title);
    let search = browser::window().location().search().unwrap_or_default();
    match backend::forced_by_query(&search) {
        Some(backend::Backend::WebGpu) => set(&message, "backend", "webgpu"),
        Some(backend::Backend::Cpu) => set(&message, "backend", "cpu"),
        None => {}
    }

    let worker = match Worker::new(WORKER) {
        Ok(w) => w,
        Err(e) => {
            return learn.failed(format!(
                "The learning worker could not start: {}",
                browser::describe(e)
            ));
        }
    };
    // The worker says `ready` once its wasm runs; a message sent before that would be lost.
    let pending = Rc::new(RefCell::new(Some(message)));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let worker = worker.clone();
        move |event: MessageEvent| {
            if learn.generation.get_value() != generation {
                return; // a stopped lesson's last words
            }
            let data = event.data();
            let kind = Reflect::get(&data, &"kind".into())
                .ok()
                .and_then(|k| k.as_string())
                .unwrap_or_default();
            if kind == "ready" {
                learn.ready.set_value(true);
                if let Some(message) = pending.borrow_mut().take() {
                    learn.status.set("Learning…".into());
                    if let Err(e) = worker.post_message(&message) {
                        learn.failed(format!(
                            "Learning could not start: {}",
                            browser::describe(e)
                        ));
                    }
                }
                return;
            }
            handle(ui, learn, &kind, &data);
        }
    });
    // A script that does not load fires a plain error event; an exception in it an ErrorEvent.
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        if learn.generation.get_value() != generation {
            return;
        }
        let why = e
            .dyn_ref::<web_sys::ErrorEvent>()
            .map(|e| e.message())
            .unwrap_or_else(|| format!("{WORKER} did not load"));
        learn.failed(format!("The learning worker stopped: {why}"));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    learn.worker.set_value(Some(Running {
        worker,
        _on_message: on_message,
        _on_error: on_error,
    }));
    // A wasm that fails to start says nothing: give up after a while.
    spawn_local(async move {
        browser::sleep_ms(READY_WITHIN_MS).await;
        if learn.generation.get_value() == generation && !learn.ready.get_value() {
            learn.failed(format!(
                "The learning code did not start within {} s.",
                READY_WITHIN_MS / 1000
            ));
        }
    });
}

fn number(data: &JsValue, name: &str) -> f64 {
    Reflect::get(data, &name.into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

fn handle(ui: Ui, learn: Learn, kind: &str, data: &JsValue) {
    match kind {
        "backend" => {
            let name = Reflect::get(data, &"name".into())
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default();
            if let Some(note) = Reflect::get(data, &"note".into())
                .ok()
                .and_then(|v| v.as_string())
            {
                web_sys::console::info_1(&format!("Learn a style: {note}").into());
            }
            learn.status.set(format!("Learning {}…", on(&name)));
            learn.backend.set(name);
        }
        "progress" => {
            let step = number(data, "step") as u32;
            let total = number(data, "total") as u32;
            let (content, style, tv) = (
                number(data, "content"),
                number(data, "style"),
                number(data, "tv"),
            );
            learn.step.set(step);
            learn.total.set(total);
            learn
                .csv
                .update(|csv| csv.push_str(&format!("{step},{content},{style},{tv}\n")));
            let first_style = learn.csv.with_untracked(|csv| {
                csv.lines()
                    .next()
                    .and_then(|l| l.split(',').nth(2)?.parse::<f64>().ok())
            });
            learn.ms.set(number(data, "workMs"));
            let left = number(data, "leftMs");
            learn.status.set(format!(
                "Step {step} of {total} {} · style distance {style:.2}{} · content {content:.2} · {}",
                on(&learn.backend.get_untracked()),
                first_style.map_or(String::new(), |f| format!(" (from {f:.2})")),
                time_left(left)
            ));
        }
        "preview" => {
            let (w, h) = (number(data, "width") as u32, number(data, "height") as u32);
            let rgb = Reflect::get(data, &"rgb".into()).map(|v| Uint8Array::new(&v).to_vec());
            if let (Ok(rgb), Some(canvas)) = (rgb, canvas(learn.preview))
                && let Some(image) = image::RgbImage::from_raw(w, h, rgb)
            {
                let _ = browser::paint(&canvas, &image);
            }
        }
        "done" => {
            let archive = Reflect::get(data, &"archive".into())
                .map(|v| Uint8Array::new(&v).to_vec())
                .unwrap_or_default();
            let steps = number(data, "steps");
            learn.busy.set(false);
            learn.can_continue.set(true);
            let title = learn.title.get_value();
            learn
                .status
                .set(format!("Learnt “{title}” in {steps} steps; adding it…"));
            let name = format!("{}.tar", learn.pack_id.get_value());
            spawn_local(async move {
                let added = own::add(ui, name, archive).await;
                learn.status.set(if added {
                    format!(
                        "Learnt “{title}” in {steps} steps: it is in the gallery and kept in this \
                         browser. “More steps” goes on from here."
                    )
                } else {
                    format!("Learnt “{title}”, but the pack could not be added (the message above says why).")
                });
                learn.learnt.update(|n| *n += 1);
            });
        }
        "error" => {
            let message = Reflect::get(data, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_default();
            learn.failed(format!("Learning stopped: {message}"));
        }
        _ => {}
    }
}

/// "on WebGPU", "on the CPU".
fn on(backend: &str) -> String {
    match backend {
        "CPU" => "on the CPU".into(),
        "" => String::new(),
        other => format!("on {other}"),
    }
}

fn time_left(ms: f64) -> String {
    if !ms.is_finite() {
        return "estimating the time left".into();
    }
    let s = (ms / 1000.0).round() as u64;
    if s >= 60 {
        format!("about {} min {} s left", s / 60, s % 60)
    } else {
        format!("about {s} s left")
    }
}

fn more(learn: Learn) {
    let Some(worker) = learn
        .worker
        .with_value(|r| r.as_ref().map(|r| r.worker.clone()))
    else {
        return;
    };
    let steps = learn.steps.get_untracked();
    let message = Object::new();
    set(&message, "kind", "more");
    set(&message, "steps", steps);
    learn.busy.set(true);
    learn.can_continue.set(false);
    learn.status.set("Learning more…".into());
    if let Err(e) = worker.post_message(&message) {
        learn.failed(format!(
            "Learning could not go on: {}",
            browser::describe(e)
        ));
    }
}
