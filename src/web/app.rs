//! The page: style gallery, photo input, before/after result, strength, colours, download.

use burn::tensor::Device;
use image::RgbImage;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlInputElement};

use super::backend::{self, Backend};
use super::browser;
use crate::image_io::{self, OutputFormat};
use crate::pack::{Index, IndexEntry, PackKind, StylePack};
use crate::stylize::{self, Look, Stylizer};

/// Largest tile run at once in the browser: keeps WebGPU buffers far below their limits and lets
/// the page breathe between tiles on the CPU.
const BROWSER_TILE: usize = 512;

#[derive(Default)]
struct Session {
    device: Option<(Device, Backend)>,
    stylizer: Option<(String, Stylizer)>,
    photo: Option<RgbImage>,
    styled: Option<RgbImage>,
}

#[component]
pub fn App() -> impl IntoView {
    let styles = RwSignal::new(Vec::<IndexEntry>::new());
    let selected = RwSignal::new(None::<String>);
    let status = RwSignal::new(String::from("Loading styles…"));
    let error = RwSignal::new(None::<String>);
    let backend_info = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let has_result = RwSignal::new(false);
    let strength = RwSignal::new(100.0f64);
    let keep_colors = RwSignal::new(false);
    let compare = RwSignal::new(50.0f64);
    let max_side = RwSignal::new(1024u32);
    let session = StoredValue::new_local(Session::default());
    let original_canvas = NodeRef::<leptos::html::Canvas>::new();
    let result_canvas = NodeRef::<leptos::html::Canvas>::new();

    browser::register_service_worker();
    spawn_local(async move {
        match browser::fetch_bytes("models/index.json")
            .await
            .and_then(|b| Index::parse("models/index.json", &b).map_err(|e| e.to_string()))
        {
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
                status.set(if transfer.is_empty() {
                    "No styles are installed.".into()
                } else {
                    "Choose a photo.".into()
                });
                selected.set(default);
                styles.set(transfer);
            }
            Err(e) => {
                status.set(String::new());
                error.set(Some(format!("Could not load the style list: {e}")));
            }
        }
    });

    let canvas = |node: NodeRef<leptos::html::Canvas>| -> Option<HtmlCanvasElement> {
        node.get_untracked().map(|c| c.unchecked_into())
    };

    // Re-blend the stored result: instant, no network run.
    let reblend = move || {
        session.with_value(|s| {
            if let (Some(photo), Some(styled), Some(c)) =
                (&s.photo, &s.styled, canvas(result_canvas))
            {
                let look = Look {
                    strength: (strength.get_untracked() / 100.0) as f32,
                    keep_colors: keep_colors.get_untracked(),
                };
                if let Err(e) = browser::paint(&c, &stylize::blend(photo, styled, look)) {
                    error.set(Some(e));
                }
            }
        })
    };

    let run = {
        move || {
            let Some(style_id) = selected.get_untracked() else {
                return;
            };
            if session.with_value(|s| s.photo.is_none()) || busy.get_untracked() {
                return;
            }
            busy.set(true);
            error.set(None);
            spawn_local(async move {
                let result = stylize_current(session, &style_id, status).await;
                busy.set(false);
                match result {
                    Ok((backend, ms)) => {
                        backend_info.set(format!("{} · {:.0} ms", backend.label(), ms));
                        status.set("Done. Adjust strength or colours, or download.".into());
                        has_result.set(true);
                        reblend();
                    }
                    Err(e) => {
                        status.set(String::new());
                        error.set(Some(e));
                    }
                }
            });
        }
    };

    let load_photo = {
        move |bytes: Vec<u8>, name: String| match image_io::decode(&bytes) {
            Ok(photo) => {
                let photo = stylize::fit_within(&photo, max_side.get_untracked());
                if let Some(c) = canvas(original_canvas) {
                    let _ = browser::paint(&c, &photo);
                }
                session.update_value(|s| {
                    s.photo = Some(photo);
                    s.styled = None;
                });
                has_result.set(false);
                run();
            }
            Err(e) => {
                error.set(Some(format!("{name}: {e}")));
            }
        }
    };

    let on_file = {
        let load_photo = load_photo.clone();
        move |ev: leptos::ev::Event| {
            let input: HtmlInputElement = event_target(&ev);
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                let load_photo = load_photo.clone();
                spawn_local(async move {
                    match browser::file_bytes(&file).await {
                        Ok(bytes) => load_photo(bytes, file.name()),
                        Err(e) => error.set(Some(format!("{}: {e}", file.name()))),
                    }
                });
            }
            input.set_value("");
        }
    };

    let on_drop = {
        let load_photo = load_photo.clone();
        move |ev: leptos::ev::DragEvent| {
            ev.prevent_default();
            if let Some(file) = ev
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0))
            {
                let load_photo = load_photo.clone();
                spawn_local(async move {
                    match browser::file_bytes(&file).await {
                        Ok(bytes) => load_photo(bytes, file.name()),
                        Err(e) => error.set(Some(format!("{}: {e}", file.name()))),
                    }
                });
            }
        }
    };

    let download = {
        move |format: OutputFormat| {
            let Some((photo, styled)) =
                session.with_value(|s| Some((s.photo.clone()?, s.styled.clone()?)))
            else {
                return;
            };
            let (photo, styled) = (&photo, &styled);
            let look = Look {
                strength: (strength.get_untracked() / 100.0) as f32,
                keep_colors: keep_colors.get_untracked(),
            };
            let image = stylize::blend(photo, styled, look);
            let (mime, name) = match format {
                OutputFormat::Jpeg(_) => ("image/jpeg", "portrait.jpg"),
                _ => ("image/png", "portrait.png"),
            };
            match image_io::encode(&image, format) {
                Ok(bytes) => {
                    if let Err(e) = browser::download(&bytes, mime, name) {
                        error.set(Some(e));
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        }
    };

    let reblend_strength = reblend.clone();
    let reblend_colors = reblend.clone();
    let run_on_style = run.clone();
    let download_png = download.clone();
    let download_jpg = download;

    view! {
        <header>
            <h1>"Portraitist"</h1>
            <p class="privacy">"Your photo never leaves this device: styles run in your browser."</p>
        </header>
        <main>
            <section aria-label="Styles" class="gallery">
                <For each=move || styles.get() key=|s| s.id.clone() let:style>
                    {
                        let id = style.id.clone();
                        let id_for_class = id.clone();
                        let run = run_on_style.clone();
                        let preview = style.preview.clone().map(|p| format!("models/{}/{}", style.id, p));
                        view! {
                            <button
                                class="style"
                                class:selected=move || selected.get().as_deref() == Some(id_for_class.as_str())
                                on:click=move |_| { selected.set(Some(id.clone())); run(); }
                                title=style.description.clone()
                            >
                                {preview.map(|src| view! { <img src=src alt="" /> })}
                                <span>{style.title.clone()}</span>
                            </button>
                        }
                    }
                </For>
            </section>
            <section class="input" on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default() on:drop=on_drop>
                <label class="pick">
                    "Choose a photo"
                    <input type="file" accept="image/*" on:change=on_file id="photo" />
                </label>
                <span>" or drop one here. "</span>
                <label>
                    "Size "
                    <select on:change=move |ev| max_side.set(event_target_value(&ev).parse().unwrap_or(1024)) aria-label="Output size">
                        <option value="512">"512 px"</option>
                        <option value="1024" selected>"1024 px"</option>
                        <option value="0">"original"</option>
                    </select>
                </label>
            </section>
            <p class="status" role="status">{move || status.get()} {move || if busy.get() { " (working…)" } else { "" }}</p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <section class="compare" aria-label="Before and after">
                <canvas node_ref=original_canvas class="original" aria-label="Original photo"></canvas>
                <canvas
                    node_ref=result_canvas
                    class="result"
                    aria-label="Stylized portrait"
                    style=move || format!("clip-path: inset(0 0 0 {}%)", 100.0 - compare.get())
                ></canvas>
            </section>
            <section class="controls" class:hidden=move || !has_result.get()>
                <label>"Before / after "
                    <input type="range" min="0" max="100" prop:value=move || compare.get() on:input=move |ev| compare.set(event_target_value(&ev).parse().unwrap_or(50.0)) />
                </label>
                <label>"Strength "
                    <input type="range" min="0" max="100" id="strength" prop:value=move || strength.get()
                        on:input=move |ev| { strength.set(event_target_value(&ev).parse().unwrap_or(100.0)); reblend_strength(); } />
                </label>
                <label>
                    <input type="checkbox" id="keep-colors" prop:checked=move || keep_colors.get()
                        on:change=move |ev| { keep_colors.set(event_target_checked(&ev)); reblend_colors(); } />
                    " Keep original colours"
                </label>
                <button id="download-png" on:click=move |_| download_png(OutputFormat::Png)>"Download PNG"</button>
                <button id="download-jpg" on:click=move |_| download_jpg(OutputFormat::Jpeg(92))>"Download JPEG"</button>
                <span class="backend" id="backend">{move || backend_info.get()}</span>
            </section>
        </main>
    }
}

/// Load the device and the style (once each), then stylize the stored photo.
async fn stylize_current(
    session: StoredValue<Session, LocalStorage>,
    style_id: &str,
    status: RwSignal<String>,
) -> Result<(Backend, f64), String> {
    if session.with_value(|s| s.device.is_none()) {
        status.set("Starting the GPU…".into());
        let search = browser::window().location().search().unwrap_or_default();
        let (device, backend, note) = backend::init(backend::forced_by_query(&search)).await;
        if let Some(note) = note {
            web_sys::console::warn_1(&note.into());
        }
        session.update_value(|s| s.device = Some((device, backend)));
    }
    let (device, backend) = session.with_value(|s| s.device.clone()).expect("set above");
    let cached = session.with_value(|s| s.stylizer.as_ref().is_some_and(|(id, _)| id == style_id));
    if !cached {
        status.set("Loading the style…".into());
        let manifest_url = format!("models/{style_id}/style.json");
        let manifest = browser::fetch_bytes(&manifest_url).await?;
        let parsed =
            crate::pack::Manifest::parse(&manifest_url, &manifest).map_err(|e| e.to_string())?;
        let weights =
            browser::fetch_bytes(&format!("models/{style_id}/{}", parsed.weights.file)).await?;
        let pack =
            StylePack::from_bytes(&manifest_url, &manifest, weights).map_err(|e| e.to_string())?;
        let stylizer = pack
            .stylizer(&device)
            .map_err(|e| e.to_string())?
            .with_pause(pause);
        session.update_value(|s| s.stylizer = Some((style_id.to_string(), stylizer)));
    }
    let stylizer = session
        .with_value(|s| s.stylizer.as_ref().map(|(_, st)| st.clone()))
        .expect("set above");
    let photo = session.with_value(|s| s.photo.clone()).ok_or("no photo")?;
    status.set("Stylizing…".into());
    let started = browser::now_ms();
    let styled = stylizer
        .render(&photo, Some(BROWSER_TILE), &mut |done, total| {
            if total > 1 {
                status.set(format!("Stylizing… tile {done} of {total}"));
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    let ms = browser::now_ms() - started;
    session.update_value(|s| s.styled = Some(styled));
    Ok((backend, ms))
}

fn pause() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(browser::yield_to_browser())
}
