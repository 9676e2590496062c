//! The page: style gallery, photo input (file, drop, paste, camera), before/after result,
//! strength, colours, output size, download; and "Create": new portraits from a noise pack, a
//! walk between two of them, download, and "use as input" for the styles.
//!
//! All state lives in [`Ui`], a bundle of signals that is `Copy`, so event handlers and the
//! long-running [`run`] share it without clones. Heavy data (device, loaded style, photos) sits in
//! one local [`Session`].

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

use burn::tensor::Device;
use image::RgbImage;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlInputElement, HtmlVideoElement};

use super::backend::{self, Backend};
use super::browser;
use crate::create::{self, Creator};
use crate::image_io::{self, OutputFormat};
use crate::pack::{Index, IndexEntry, Manifest, PackKind, StylePack};
use crate::stylize::{self, Cancelled, Look, RenderError, Stylizer};

/// Largest tile run at once in the browser: keeps WebGPU buffers far below their limits, and on
/// the CPU lets the page breathe (and a cancel land) between tiles.
const BROWSER_TILE: usize = 512;

/// Side of the photo run once when a style loads on WebGPU, so shader compilation happens then
/// and not in the first timed run.
const WARM_UP_SIDE: u32 = 64;

/// The Create grid: this many portraits per row and column.
const GRID: usize = 4;
/// Created portraits are enlarged this many times (Lanczos) for download and as style input.
const CREATED_SCALE: u32 = 4;

thread_local! {
    /// Set by the cancel button (or a newer request); read by [`pause`] between tiles.
    static CANCEL: Cell<bool> = const { Cell::new(false) };
}

#[derive(Default)]
struct Session {
    device: Option<(Device, Backend)>,
    stylizer: Option<(String, Stylizer)>,
    /// The photo as given, and its name.
    source: Option<(RgbImage, String)>,
    /// `source` fitted to the chosen output size: what runs and what `styled` matches.
    photo: Option<RgbImage>,
    styled: Option<RgbImage>,
    creator: Option<(String, Creator)>,
    /// The portrait on the walk canvas, at the generator's size, and its file name.
    created: Option<(RgbImage, String)>,
}

#[derive(Clone, Copy)]
struct Ui {
    styles: RwSignal<Vec<IndexEntry>>,
    selected: RwSignal<Option<String>>,
    status: RwSignal<String>,
    error: RwSignal<Option<String>>,
    backend_info: RwSignal<String>,
    /// Set when WebGPU failed and the page moved to the CPU.
    gpu_note: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    /// Another run was asked for while one was going: start it when the current one stops.
    pending: RwSignal<bool>,
    /// Completed runs, shown as `data-results` so tests and benchmarks can wait for the next one.
    results: RwSignal<u32>,
    has_result: RwSignal<bool>,
    strength: RwSignal<f64>,
    keep_colors: RwSignal<bool>,
    compare: RwSignal<f64>,
    max_side: RwSignal<u32>,
    camera: RwSignal<bool>,
    dragging: RwSignal<bool>,
    create: Create,
    session: StoredValue<Session, LocalStorage>,
    original_canvas: NodeRef<leptos::html::Canvas>,
    result_canvas: NodeRef<leptos::html::Canvas>,
    video: NodeRef<leptos::html::Video>,
}

impl Ui {
    fn new() -> Self {
        Self {
            styles: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            status: RwSignal::new("Loading styles…".into()),
            error: RwSignal::new(None),
            backend_info: RwSignal::new(String::new()),
            gpu_note: RwSignal::new(None),
            busy: RwSignal::new(false),
            pending: RwSignal::new(false),
            results: RwSignal::new(0),
            has_result: RwSignal::new(false),
            strength: RwSignal::new(100.0),
            keep_colors: RwSignal::new(false),
            compare: RwSignal::new(50.0),
            max_side: RwSignal::new(1024),
            camera: RwSignal::new(false),
            dragging: RwSignal::new(false),
            create: Create::new(),
            session: StoredValue::new_local(Session::default()),
            original_canvas: NodeRef::new(),
            result_canvas: NodeRef::new(),
            video: NodeRef::new(),
        }
    }

    fn look(self) -> Look {
        Look {
            strength: (self.strength.get_untracked() / 100.0) as f32,
            keep_colors: self.keep_colors.get_untracked(),
        }
    }

    fn fail(self, message: String) {
        self.status.set(String::new());
        self.error.set(Some(message));
    }
}

/// The Create view's state.
#[derive(Clone, Copy)]
struct Create {
    /// The noise packs the index lists, and the one in use (the first unless chosen).
    packs: RwSignal<Vec<IndexEntry>>,
    pack: RwSignal<Option<IndexEntry>>,
    /// First seed of the grid; the grid shows this seed and the next GRID² − 1.
    seed: RwSignal<u64>,
    /// Seeds of the walk's two ends.
    from: RwSignal<u64>,
    to: RwSignal<u64>,
    /// The next click on the grid picks the walk's end (else its start).
    picking_end: RwSignal<bool>,
    /// Position on the walk, 0–100.
    walk: RwSignal<f64>,
    /// A grid is being made (the button is disabled meanwhile).
    grid_busy: RwSignal<bool>,
    /// A walk portrait is being made.
    busy: RwSignal<bool>,
    /// A walk render was asked for during a run: do it when the run ends.
    pending: RwSignal<bool>,
    /// Finished grid renders (`data-grids`), for tests.
    grids: RwSignal<u32>,
    /// Finished walk renders (`data-walks`), for tests.
    walks: RwSignal<u32>,
    status: RwSignal<String>,
    grid_canvas: NodeRef<leptos::html::Canvas>,
    walk_canvas: NodeRef<leptos::html::Canvas>,
}

impl Create {
    fn new() -> Self {
        Self {
            packs: RwSignal::new(Vec::new()),
            pack: RwSignal::new(None),
            seed: RwSignal::new(0),
            from: RwSignal::new(0),
            to: RwSignal::new(1),
            picking_end: RwSignal::new(false),
            walk: RwSignal::new(0.0),
            grid_busy: RwSignal::new(false),
            busy: RwSignal::new(false),
            pending: RwSignal::new(false),
            grids: RwSignal::new(0),
            walks: RwSignal::new(0),
            status: RwSignal::new(String::new()),
            grid_canvas: NodeRef::new(),
            walk_canvas: NodeRef::new(),
        }
    }
}

fn canvas(node: NodeRef<leptos::html::Canvas>) -> Option<HtmlCanvasElement> {
    node.get_untracked().map(|c| c.unchecked_into())
}

#[component]
pub fn App() -> impl IntoView {
    let ui = Ui::new();
    browser::register_service_worker();
    spawn_local(load_styles(ui));

    // Paste an image from anywhere on the page.
    let paste = window_event_listener(leptos::ev::paste, move |ev| {
        if let Some(file) = ev
            .clipboard_data()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            ev.prevent_default();
            spawn_local(read_file(ui, file));
        }
    });
    on_cleanup(move || paste.remove());

    let on_file = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            spawn_local(read_file(ui, file));
        }
        input.set_value("");
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        ui.dragging.set(false);
        if let Some(file) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            spawn_local(read_file(ui, file));
        }
    };
    let on_size = move |ev: leptos::ev::Event| {
        ui.max_side
            .set(event_target_value(&ev).parse().unwrap_or(1024));
        let source = ui.session.with_value(|s| s.source.clone());
        if let Some((photo, name)) = source {
            set_photo(ui, photo, name);
        }
    };

    view! {
        <header>
            <h1>"Portraitist"</h1>
            <p class="privacy">"Your photo never leaves this device: the styles run in your browser, and work offline after your first visit."</p>
        </header>
        <main>
            <section aria-labelledby="styles-heading">
                <h2 id="styles-heading">"1. Choose a style"</h2>
                <div class="gallery" role="group" aria-label="Styles">
                    <For each=move || ui.styles.get() key=|s| s.id.clone() let:style>
                        <StyleCard ui style />
                    </For>
                </div>
            </section>
            <section aria-labelledby="photo-heading">
                <h2 id="photo-heading">"2. Give a portrait"</h2>
                <div
                    class="input"
                    class:dragging=move || ui.dragging.get()
                    on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); ui.dragging.set(true); }
                    on:dragleave=move |_| ui.dragging.set(false)
                    on:drop=on_drop
                >
                    <label class="pick">
                        "Choose a photo"
                        <input type="file" accept="image/*" on:change=on_file id="photo" />
                    </label>
                    <button type="button" id="camera" on:click=move |_| spawn_local(open_camera(ui))>"Use the camera"</button>
                    <span class="hint">"or drop or paste one here."</span>
                    <label class="size">
                        "Output size "
                        <select on:change=on_size id="size">
                            <option value="512">"512 px"</option>
                            <option value="1024" selected>"1024 px"</option>
                            <option value="0">"original"</option>
                        </select>
                    </label>
                </div>
                <div class="camera" class:hidden=move || !ui.camera.get()>
                    <video node_ref=ui.video autoplay playsinline muted aria-label="Camera preview"></video>
                    <div>
                        <button type="button" class="primary" id="shutter" on:click=move |_| take_picture(ui)>"Take the picture"</button>
                        <button type="button" on:click=move |_| close_camera(ui)>"Close the camera"</button>
                    </div>
                </div>
            </section>
            <p class="status" role="status" aria-live="polite">
                {move || ui.status.get()}
                <button
                    type="button"
                    id="cancel"
                    class:hidden=move || !ui.busy.get()
                    on:click=move |_| { ui.pending.set(false); CANCEL.set(true); }
                >"Cancel"</button>
            </p>
            {move || ui.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || ui.gpu_note.get().map(|n| view! { <p class="notice" id="gpu-note" role="status">{n}</p> })}
            <section class="result" aria-label="Result" class:hidden=move || ui.session.with_value(|s| s.photo.is_none()) && !ui.busy.get() && !ui.has_result.get()>
                <div class="compare">
                    <canvas node_ref=ui.original_canvas class="original" role="img" aria-label="Your photo"></canvas>
                    <canvas
                        node_ref=ui.result_canvas
                        class="styled"
                        role="img"
                        aria-label="The stylized portrait"
                        class:hidden=move || !ui.has_result.get()
                        style:clip-path=move || format!("inset(0 0 0 {}%)", 100.0 - ui.compare.get())
                    ></canvas>
                </div>
                <div class="controls" class:hidden=move || !ui.has_result.get()>
                    <label>"Before / after "
                        <input type="range" min="0" max="100" id="compare" prop:value=move || ui.compare.get()
                            on:input=move |ev| ui.compare.set(event_target_value(&ev).parse().unwrap_or(50.0)) />
                    </label>
                    <label>"Strength "
                        <input type="range" min="0" max="100" id="strength" prop:value=move || ui.strength.get()
                            on:input=move |ev| { ui.strength.set(event_target_value(&ev).parse().unwrap_or(100.0)); reblend(ui); } />
                    </label>
                    <label>
                        <input type="checkbox" id="keep-colors" prop:checked=move || ui.keep_colors.get()
                            on:change=move |ev| { ui.keep_colors.set(event_target_checked(&ev)); reblend(ui); } />
                        " Keep the original colours"
                    </label>
                    <div class="actions">
                        <button type="button" class="primary" id="download-png" on:click=move |_| download(ui, OutputFormat::Png)>"Download PNG"</button>
                        <button type="button" id="download-jpg" on:click=move |_| download(ui, OutputFormat::Jpeg(92))>"Download JPEG"</button>
                        <span class="backend" id="backend" data-results=move || ui.results.get() title="Where the style ran, and how long it took">{move || ui.backend_info.get()}</span>
                    </div>
                </div>
            </section>
            <CreateView ui />
        </main>
    }
}

/// "Create": new portraits from noise (a GAN's generator), a walk between two, and a way to
/// hand one to the styles above.
#[component]
fn CreateView(ui: Ui) -> impl IntoView {
    let c = ui.create;
    let on_grid_click = move |ev: leptos::ev::MouseEvent| {
        let Some(canvas) = canvas(c.grid_canvas) else {
            return;
        };
        let (w, h) = (
            f64::from(canvas.client_width().max(1)),
            f64::from(canvas.client_height().max(1)),
        );
        let col = ((f64::from(ev.offset_x()) / w * GRID as f64) as usize).min(GRID - 1);
        let row = ((f64::from(ev.offset_y()) / h * GRID as f64) as usize).min(GRID - 1);
        pick(ui, c.seed.get_untracked() + (row * GRID + col) as u64);
    };
    view! {
        <section aria-labelledby="create-heading" class="create" class:hidden=move || c.pack.get().is_none()>
            <h2 id="create-heading">"Or create a new portrait"</h2>
            <p class="hint">
                {move || c.pack.get().map(|p| p.description).unwrap_or_default()}
                " Click a portrait to start a walk, a second to end it, then slide between them."
            </p>
            <div class="create-actions">
                <label class:hidden=move || c.packs.get().len() < 2>"Generator "
                    <select id="generator" on:change=move |ev| {
                        let id = event_target_value(&ev);
                        c.pack.set(c.packs.get_untracked().into_iter().find(|p| p.id == id));
                        if c.grids.get_untracked() > 0 {
                            create_grid(ui);
                        }
                    }>
                        <For each=move || c.packs.get() key=|p| p.id.clone() let:p>
                            <option value=p.id.clone()>{p.title.clone()}</option>
                        </For>
                    </select>
                </label>
                <button type="button" class="primary" id="create" prop:disabled=move || c.grid_busy.get() on:click=move |_| {
                    if c.grids.get_untracked() > 0 {
                        c.seed.update(|s| *s = s.wrapping_add((GRID * GRID) as u64));
                    }
                    create_grid(ui);
                }>{move || if c.grids.get() > 0 { "More portraits" } else { "Create portraits" }}</button>
                <span class="status" role="status">{move || c.status.get()}</span>
            </div>
            <div class="create-grid" class:hidden=move || c.grids.get() == 0>
                <canvas node_ref=c.grid_canvas id="create-grid" data-grids=move || c.grids.get()
                    data-seed=move || c.seed.get() role="img"
                    aria-label="New portraits made by the GAN; click one to pick it"
                    on:click=on_grid_click></canvas>
                <div class="walk">
                    <canvas node_ref=c.walk_canvas id="walk" data-walks=move || c.walks.get() role="img"
                        aria-label="The picked portrait, or a blend on the walk between two"></canvas>
                    <label>{move || format!("Walk from #{} to #{} ", c.from.get(), c.to.get())}
                        <input type="range" min="0" max="100" id="walk-position" prop:value=move || c.walk.get()
                            on:input=move |ev| { c.walk.set(event_target_value(&ev).parse().unwrap_or(0.0)); render_walk(ui); } />
                    </label>
                    <div class="actions">
                        <button type="button" class="primary" id="use-created" on:click=move |_| use_created(ui)>"Stylize this portrait"</button>
                        <button type="button" id="download-created" on:click=move |_| download_created(ui)>"Download PNG"</button>
                    </div>
                </div>
            </div>
        </section>
    }
}

#[component]
fn StyleCard(ui: Ui, style: IndexEntry) -> impl IntoView {
    let id = StoredValue::new(style.id.clone());
    let is_selected = move || ui.selected.get().as_deref() == Some(id.get_value().as_str());
    let preview = style
        .preview
        .as_ref()
        .map(|p| format!("models/{}/{}", style.id, p));
    let alt = format!("{} applied to a sample portrait", style.title);
    view! {
        <button
            type="button"
            class="style"
            class:selected=is_selected
            aria-pressed=move || is_selected().to_string()
            title=style.description.clone()
            on:click=move |_| {
                ui.selected.set(Some(id.get_value()));
                run(ui);
            }
        >
            {match preview {
                Some(src) => view! { <img src=src alt=alt /> }.into_any(),
                None => view! { <span class="no-preview" aria-hidden="true"></span> }.into_any(),
            }}
            <span class="title">{style.title.clone()}</span>
        </button>
    }
}

async fn load_styles(ui: Ui) {
    let index = browser::fetch_bytes("models/index.json")
        .await
        .and_then(|b| Index::parse("models/index.json", &b).map_err(|e| e.to_string()));
    match index {
        Ok(index) => {
            let noise: Vec<IndexEntry> = index
                .styles
                .iter()
                .filter(|s| s.kind == PackKind::Noise)
                .cloned()
                .collect();
            ui.create.pack.set(noise.first().cloned());
            ui.create.packs.set(noise);
            let transfer: Vec<IndexEntry> = index
                .styles
                .into_iter()
                .filter(|s| s.kind == PackKind::Transfer)
                .collect();
            let default = index
                .default
                .filter(|d| transfer.iter().any(|s| &s.id == d))
                .or_else(|| transfer.first().map(|s| s.id.clone()));
            if transfer.is_empty() {
                ui.fail("No styles are installed: models/index.json lists none.".into());
            } else {
                ui.status.set("Choose a photo.".into());
            }
            ui.selected.set(default);
            ui.styles.set(transfer);
        }
        Err(e) => ui.fail(format!("Could not load the list of styles: {e}")),
    }
}

async fn read_file(ui: Ui, file: web_sys::File) {
    let name = file.name();
    match browser::file_bytes(&file).await {
        Ok(bytes) => match image_io::decode(&bytes) {
            Ok(photo) => set_photo(ui, photo, name),
            Err(e) => ui.fail(format!("{name}: {e}")),
        },
        Err(e) => ui.fail(format!("{name}: {e}")),
    }
}

/// A new photo (or a new size for the current one): show it and run the style.
fn set_photo(ui: Ui, source: RgbImage, name: String) {
    let photo = stylize::fit_within(&source, ui.max_side.get_untracked());
    if let Some(c) = canvas(ui.original_canvas)
        && let Err(e) = browser::paint(&c, &photo)
    {
        ui.fail(e);
        return;
    }
    ui.session.update_value(|s| {
        s.source = Some((source, name));
        s.photo = Some(photo);
        s.styled = None;
    });
    ui.has_result.set(false);
    ui.error.set(None);
    run(ui);
}

/// Stylize the current photo with the selected style. A request during a run cancels that run
/// and starts again when it has stopped.
fn run(ui: Ui) {
    let Some(style_id) = ui.selected.get_untracked() else {
        return;
    };
    if ui.session.with_value(|s| s.photo.is_none()) {
        return;
    }
    if ui.busy.get_untracked() {
        ui.pending.set(true);
        CANCEL.set(true);
        return;
    }
    CANCEL.set(false);
    ui.busy.set(true);
    ui.error.set(None);
    spawn_local(async move {
        let mut result = stylize_current(ui, &style_id).await;
        if matches!(result, Err(Failure::Message(_))) && gpu_gone(ui).await {
            result = stylize_current(ui, &style_id).await;
        }
        ui.busy.set(false);
        match result {
            Ok((backend, ms)) => {
                ui.backend_info
                    .set(format!("{} · {:.0} ms", backend.label(), ms));
                ui.status
                    .set("Done. Compare, adjust strength or colours, or download.".into());
                ui.has_result.set(true);
                reblend(ui);
                ui.results.update(|n| *n += 1);
            }
            Err(Failure::Cancelled) => ui.status.set("Cancelled.".into()),
            Err(Failure::Message(e)) => ui.fail(e),
        }
        if ui.pending.get_untracked() {
            ui.pending.set(false);
            run(ui);
        }
    });
}

enum Failure {
    Cancelled,
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Message(message)
    }
}

/// Load the device and the style (once each), then stylize the stored photo. Returns the backend
/// that ran and the milliseconds the run took.
async fn stylize_current(ui: Ui, style_id: &str) -> Result<(Backend, f64), Failure> {
    let (device, backend) = device(ui, ui.status).await;
    let cached = ui
        .session
        .with_value(|s| s.stylizer.as_ref().is_some_and(|(id, _)| id == style_id));
    if !cached {
        ui.status.set("Loading the style…".into());
        let stylizer = load_style(style_id, &device).await?;
        if backend == Backend::WebGpu {
            ui.status
                .set("Preparing the GPU (compiling shaders, once per style)…".into());
            let sample = RgbImage::from_pixel(WARM_UP_SIDE, WARM_UP_SIDE, image::Rgb([128; 3]));
            stylizer
                .render(&sample, None, &mut |_, _| {})
                .await
                .map_err(failure)?;
        }
        ui.session
            .update_value(|s| s.stylizer = Some((style_id.to_string(), stylizer)));
    }
    let stylizer = ui
        .session
        .with_value(|s| s.stylizer.as_ref().map(|(_, st)| st.clone()))
        .ok_or_else(|| "no style".to_string())?;
    let photo = ui
        .session
        .with_value(|s| s.photo.clone())
        .ok_or_else(|| "no photo".to_string())?;
    ui.status.set(format!(
        "Stylizing {}×{} on the {}…",
        photo.width(),
        photo.height(),
        backend.label()
    ));
    let started = browser::now_ms();
    let styled = stylizer
        .render(&photo, Some(BROWSER_TILE), &mut |done, total| {
            if total > 1 && done < total {
                ui.status.set(format!(
                    "Stylizing on the {}… part {} of {total}",
                    backend.label(),
                    done + 1
                ));
            }
        })
        .await
        .map_err(failure)?;
    let ms = browser::now_ms() - started;
    ui.session.update_value(|s| s.styled = Some(styled));
    Ok((backend, ms))
}

/// After a failed run: whether it failed because the WebGPU device is gone (lost, or reporting
/// errors). If so the page switches to the CPU for good, forgets what lived on the GPU, and says
/// so; the caller runs again.
async fn gpu_gone(ui: Ui) -> bool {
    if ui.session.with_value(|s| s.device.as_ref().map(|d| d.1)) != Some(Backend::WebGpu) {
        return false;
    }
    // A read fails as soon as the device goes, but its lost callback runs later as its own
    // task: give it up to a second.
    let mut reason = backend::gpu_failure();
    for _ in 0..20 {
        if reason.is_some() {
            break;
        }
        browser::sleep_ms(50).await;
        reason = backend::gpu_failure();
    }
    let Some(reason) = reason else {
        return false;
    };
    CANCEL.set(false);
    ui.session.update_value(|s| {
        s.device = Some((Device::flex(), Backend::Cpu));
        s.stylizer = None;
        s.creator = None;
    });
    let note = format!("WebGPU stopped working ({reason}); continuing on the CPU");
    web_sys::console::warn_1(&note.clone().into());
    ui.gpu_note.set(Some(note));
    true
}

/// The page's device, started on first use (WebGPU where there is an adapter, else the CPU).
async fn device(ui: Ui, status: RwSignal<String>) -> (Device, Backend) {
    if let Some(device) = ui.session.with_value(|s| s.device.clone()) {
        return device;
    }
    status.set("Starting the GPU…".into());
    let search = browser::window().location().search().unwrap_or_default();
    let (device, backend, note) = backend::init(backend::forced_by_query(&search)).await;
    if let Some(note) = note {
        web_sys::console::warn_1(&note.into());
    }
    // Another task may have started one meanwhile: keep the first.
    ui.session.update_value(|s| {
        s.device.get_or_insert((device, backend));
    });
    ui.session
        .with_value(|s| s.device.clone())
        .expect("set just above")
}

fn failure(e: RenderError) -> Failure {
    match e {
        RenderError::Cancelled => Failure::Cancelled,
        other => Failure::Message(other.to_string()),
    }
}

async fn fetch_pack(style_id: &str) -> Result<StylePack, String> {
    let manifest_url = format!("models/{style_id}/style.json");
    let manifest = browser::fetch_bytes(&manifest_url).await?;
    let parsed = Manifest::parse(&manifest_url, &manifest).map_err(|e| e.to_string())?;
    let weights =
        browser::fetch_bytes(&format!("models/{style_id}/{}", parsed.weights.file)).await?;
    StylePack::from_bytes(&manifest_url, &manifest, weights).map_err(|e| e.to_string())
}

async fn load_style(style_id: &str, device: &Device) -> Result<Stylizer, String> {
    Ok(fetch_pack(style_id)
        .await?
        .stylizer(device)
        .map_err(|e| e.to_string())?
        .with_pause(pause))
}

/// The noise pack's creator on the page's device (loaded once).
async fn creator(ui: Ui) -> Result<Creator, String> {
    let id = ui
        .create
        .pack
        .get_untracked()
        .map(|p| p.id)
        .ok_or("no noise pack is installed")?;
    if let Some(creator) = ui.session.with_value(|s| {
        s.creator
            .as_ref()
            .filter(|(loaded, _)| *loaded == id)
            .map(|(_, c)| c.clone())
    }) {
        return Ok(creator);
    }
    let (device, _) = device(ui, ui.create.status).await;
    ui.create
        .status
        .set("Loading the portrait generator…".into());
    let creator = fetch_pack(&id)
        .await?
        .creator(&device)
        .map_err(|e| e.to_string())?;
    ui.session
        .update_value(|s| s.creator = Some((id, creator.clone())));
    Ok(creator)
}

/// Render the grid of GRID² portraits from `create.seed`, then the walk.
fn create_grid(ui: Ui) {
    let c = ui.create;
    if c.grid_busy.get_untracked() {
        return;
    }
    c.grid_busy.set(true);
    spawn_local(async move {
        let first = c.seed.get_untracked();
        let result = async {
            let creator = creator(ui).await?;
            c.status.set("Creating portraits…".into());
            browser::yield_to_browser().await;
            let started = browser::now_ms();
            let seeds: Vec<u64> = (0..(GRID * GRID) as u64)
                .map(|i| first.wrapping_add(i))
                .collect();
            let images = creator
                .render_seeds(&seeds)
                .await
                .map_err(|e| e.to_string())?;
            let side = creator.config().size as u32;
            let mut grid = RgbImage::new(side * GRID as u32, side * GRID as u32);
            for (i, image) in images.iter().enumerate() {
                let (x, y) = ((i % GRID) as u32 * side, (i / GRID) as u32 * side);
                image::imageops::replace(&mut grid, image, i64::from(x), i64::from(y));
            }
            if let Some(canvas) = canvas(c.grid_canvas) {
                browser::paint(&canvas, &grid)?;
            }
            Ok::<f64, String>(browser::now_ms() - started)
        }
        .await;
        c.grid_busy.set(false);
        match result {
            Ok(ms) => {
                c.status
                    .set(format!("{} portraits in {ms:.0} ms.", GRID * GRID));
                c.grids.update(|n| *n += 1);
                c.from.set(first);
                c.to.set(first.wrapping_add(1));
                c.picking_end.set(false);
                c.walk.set(0.0);
                render_walk(ui);
            }
            Err(_) if gpu_gone(ui).await => create_grid(ui),
            Err(e) => {
                c.status.set(String::new());
                ui.fail(format!("Creating portraits failed: {e}"));
            }
        }
    });
}

/// A click on the grid: the walk's start, then its end, alternately.
fn pick(ui: Ui, seed: u64) {
    let c = ui.create;
    if c.picking_end.get_untracked() {
        c.to.set(seed);
        c.walk.set(100.0);
    } else {
        c.from.set(seed);
        c.walk.set(0.0);
    }
    c.picking_end.update(|p| *p = !*p);
    render_walk(ui);
}

/// Render the portrait at the walk's position onto the walk canvas.
fn render_walk(ui: Ui) {
    let c = ui.create;
    if c.busy.get_untracked() {
        c.pending.set(true);
        return;
    }
    c.busy.set(true);
    spawn_local(async move {
        let (from, to) = (c.from.get_untracked(), c.to.get_untracked());
        let t = (c.walk.get_untracked() / 100.0) as f32;
        let result = async {
            let creator = creator(ui).await?;
            let z = create::slerp(&creator.latent(from), &creator.latent(to), t);
            let image = creator
                .render(&[z])
                .await
                .map_err(|e| e.to_string())?
                .pop()
                .ok_or("no image")?;
            if let Some(canvas) = canvas(c.walk_canvas) {
                browser::paint(&canvas, &image)?;
            }
            let name = if t <= 0.0 {
                format!("portrait-{from}")
            } else if t >= 1.0 {
                format!("portrait-{to}")
            } else {
                format!("portrait-{from}-{to}-{:02}", (t * 100.0).round())
            };
            ui.session.update_value(|s| s.created = Some((image, name)));
            Ok::<(), String>(())
        }
        .await;
        c.busy.set(false);
        match result {
            Ok(()) => c.walks.update(|n| *n += 1),
            Err(_) if gpu_gone(ui).await => c.pending.set(true),
            Err(e) => ui.fail(format!("Creating the portrait failed: {e}")),
        }
        if c.pending.get_untracked() {
            c.pending.set(false);
            render_walk(ui);
        }
    });
}

/// The walk's portrait, enlarged for use outside the small canvas.
fn created_portrait(ui: Ui) -> Option<(RgbImage, String)> {
    ui.session.with_value(|s| {
        s.created.as_ref().map(|(image, name)| {
            let (w, h) = (
                image.width() * CREATED_SCALE,
                image.height() * CREATED_SCALE,
            );
            let big = image::imageops::resize(image, w, h, image::imageops::FilterType::Lanczos3);
            (big, name.clone())
        })
    })
}

fn use_created(ui: Ui) {
    if let Some((portrait, name)) = created_portrait(ui) {
        set_photo(ui, portrait, format!("{name}.png"));
        if let Some(canvas) = canvas(ui.original_canvas) {
            canvas.scroll_into_view();
        }
    }
}

fn download_created(ui: Ui) {
    let Some((portrait, name)) = created_portrait(ui) else {
        return;
    };
    match image_io::encode(&portrait, OutputFormat::Png) {
        Ok(bytes) => {
            if let Err(e) = browser::download(&bytes, "image/png", &format!("{name}.png")) {
                ui.fail(e);
            }
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Between tiles: let the page repaint and handle input, then stop if asked to.
fn pause() -> Pin<Box<dyn Future<Output = Result<(), Cancelled>>>> {
    Box::pin(async {
        browser::yield_to_browser().await;
        if CANCEL.replace(false) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    })
}

/// Re-blend the stored full-strength result: instant, no network run.
fn reblend(ui: Ui) {
    let look = ui.look();
    ui.session.with_value(|s| {
        if let (Some(photo), Some(styled), Some(c)) =
            (&s.photo, &s.styled, canvas(ui.result_canvas))
            && let Err(e) = browser::paint(&c, &stylize::blend(photo, styled, look))
        {
            ui.error.set(Some(e));
        }
    })
}

fn download(ui: Ui, format: OutputFormat) {
    let look = ui.look();
    let style = ui.selected.get_untracked().unwrap_or_default();
    let made = ui.session.with_value(|s| {
        let (photo, styled) = (s.photo.as_ref()?, s.styled.as_ref()?);
        let stem = s
            .source
            .as_ref()
            .map(|(_, name)| {
                name.rsplit_once('.')
                    .map_or(name.as_str(), |(stem, _)| stem)
            })
            .unwrap_or("portrait")
            .to_string();
        Some((stylize::blend(photo, styled, look), stem))
    });
    let Some((image, stem)) = made else {
        return;
    };
    let (mime, ext) = match format {
        OutputFormat::Jpeg(_) => ("image/jpeg", "jpg"),
        _ => ("image/png", "png"),
    };
    match image_io::encode(&image, format) {
        Ok(bytes) => {
            if let Err(e) = browser::download(&bytes, mime, &format!("{stem}-{style}.{ext}")) {
                ui.fail(e);
            }
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

fn video(ui: Ui) -> Option<HtmlVideoElement> {
    ui.video.get_untracked().map(|v| v.unchecked_into())
}

async fn open_camera(ui: Ui) {
    let Some(video) = video(ui) else { return };
    ui.error.set(None);
    match browser::camera_stream().await {
        Ok(stream) => {
            video.set_src_object(Some(&stream));
            ui.camera.set(true);
            ui.status
                .set("Frame your face, then take the picture.".into());
        }
        Err(e) => ui.fail(format!("The camera is not available: {e}")),
    }
}

fn close_camera(ui: Ui) {
    if let Some(video) = video(ui) {
        browser::stop_camera(&video);
    }
    ui.camera.set(false);
}

fn take_picture(ui: Ui) {
    let Some(video) = video(ui) else { return };
    match browser::grab_frame(&video) {
        Ok(photo) => {
            close_camera(ui);
            set_photo(ui, photo, "camera.png".into());
        }
        Err(e) => ui.fail(format!("Could not take the picture: {e}")),
    }
}
