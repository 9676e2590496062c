//! The page: style gallery, photo input (file, drop, paste, camera), before/after result,
//! strength, colours, output size, download.
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
use crate::image_io::{self, OutputFormat};
use crate::pack::{Index, IndexEntry, Manifest, PackKind, StylePack};
use crate::stylize::{self, Cancelled, Look, RenderError, Stylizer};

/// Largest tile run at once in the browser: keeps WebGPU buffers far below their limits, and on
/// the CPU lets the page breathe (and a cancel land) between tiles.
const BROWSER_TILE: usize = 512;

/// Side of the photo run once when a style loads on WebGPU, so shader compilation happens then
/// and not in the first timed run.
const WARM_UP_SIDE: u32 = 64;

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
}

#[derive(Clone, Copy)]
struct Ui {
    styles: RwSignal<Vec<IndexEntry>>,
    selected: RwSignal<Option<String>>,
    status: RwSignal<String>,
    error: RwSignal<Option<String>>,
    backend_info: RwSignal<String>,
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
        </main>
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
        let result = stylize_current(ui, &style_id).await;
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
    if ui.session.with_value(|s| s.device.is_none()) {
        ui.status.set("Starting the GPU…".into());
        let search = browser::window().location().search().unwrap_or_default();
        let (device, backend, note) = backend::init(backend::forced_by_query(&search)).await;
        if let Some(note) = note {
            web_sys::console::warn_1(&note.into());
        }
        ui.session
            .update_value(|s| s.device = Some((device, backend)));
    }
    let (device, backend) = ui
        .session
        .with_value(|s| s.device.clone())
        .ok_or_else(|| "no device".to_string())?;
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

fn failure(e: RenderError) -> Failure {
    match e {
        RenderError::Cancelled => Failure::Cancelled,
        other => Failure::Message(other.to_string()),
    }
}

async fn load_style(style_id: &str, device: &Device) -> Result<Stylizer, String> {
    let manifest_url = format!("models/{style_id}/style.json");
    let manifest = browser::fetch_bytes(&manifest_url).await?;
    let parsed = Manifest::parse(&manifest_url, &manifest).map_err(|e| e.to_string())?;
    let weights =
        browser::fetch_bytes(&format!("models/{style_id}/{}", parsed.weights.file)).await?;
    let pack =
        StylePack::from_bytes(&manifest_url, &manifest, weights).map_err(|e| e.to_string())?;
    Ok(pack
        .stylizer(device)
        .map_err(|e| e.to_string())?
        .with_pause(pause))
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
