//! The page: style gallery, photo input (file, drop, paste, camera), before/after result,
//! strength, colours, output size, download; and "Create" (`create_view`). The components only
//! lay out the page and forward events; the work happens in `runner`, the state lives in `state`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::HtmlInputElement;

use super::browser;
use super::camera::{close_camera, open_camera, take_picture};
use super::create_view::CreateView;
use super::learn_view::LearnView;
use super::own;
use super::runner::{download, load_styles, read_file, reblend, run, set_photo};
use super::state::Ui;
use super::style_card::StyleCard;
use crate::image_io::OutputFormat;
use crate::stylize::CancelToken;

#[component]
pub fn App() -> impl IntoView {
    let ui = Ui::new();
    browser::register_service_worker();
    spawn_local(async move {
        load_styles(ui).await;
        own::restore(ui).await;
    });

    // Paste an image from anywhere on the page.
    let paste = window_event_listener(leptos::ev::paste, move |ev| {
        // Taken already (images pasted for "Learn a style").
        if ev.default_prevented() {
            return;
        }
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
    let on_pack = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            spawn_local(async move {
                match browser::file_bytes(&file).await {
                    Ok(bytes) => {
                        own::add(ui, file.name(), bytes).await;
                    }
                    Err(e) => ui.fail(format!("{}: {e}", file.name())),
                }
            });
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
                    <For each=move || ui.styles.get() key=|s| (s.id.clone(), s.title.clone(), s.preview.clone()) let:style>
                        <StyleCard ui style />
                    </For>
                </div>
                {move || mix_controls(ui)}
                {move || own_controls(ui)}
                <p class="add-pack">
                    <label class="pick">
                        "Add a style pack"
                        <input type="file" accept=".tar,application/x-tar" id="add-pack" on:change=on_pack />
                    </label>
                    <span class="hint">"A .tar made by "<code>"portraitist export --format tar"</code>", or drop it on the photo area. It stays in this browser; nothing is uploaded."</span>
                </p>
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
                    on:click=move |_| { ui.pending.set(false); ui.cancel.with_value(CancelToken::cancel); }
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
            <LearnView ui />
            <CreateView ui />
        </main>
    }
}

/// For a style of a multi-style pack: a second style of that pack to mix in, and its share
/// (the network runs again when the slider is released).
fn mix_controls(ui: Ui) -> Option<impl IntoView> {
    let selected = ui.selected.get();
    let card = ui
        .styles
        .get()
        .into_iter()
        .find(|c| Some(&c.id) == selected.as_ref())?;
    if card.mixes_with.is_empty() {
        return None;
    }
    let options = card
        .mixes_with
        .into_iter()
        .map(|(id, title)| {
            let this = id.clone();
            view! {
                <option value=id selected=move || ui.mix_with.get().as_deref() == Some(this.as_str())>
                    {title}
                </option>
            }
        })
        .collect_view();
    Some(view! {
        <div class="mix">
            <label>
                "Mix with "
                <select
                    id="mix-with"
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        ui.mix_with.set((!value.is_empty()).then_some(value));
                        run(ui);
                    }
                >
                    <option value="" selected=move || ui.mix_with.get().is_none()>"nothing"</option>
                    {options}
                </select>
            </label>
            <label>
                "Share "
                <input
                    type="range"
                    min="0"
                    max="100"
                    id="mix"
                    prop:value=move || ui.mix.get()
                    prop:disabled=move || ui.mix_with.get().is_none()
                    on:change=move |ev| {
                        ui.mix.set(event_target_value(&ev).parse().unwrap_or(50.0));
                        run(ui);
                    }
                />
                <span class="share">
                    {move || ui.mix_with.get().map(|_| format!("{:.0} %", ui.mix.get()))}
                </span>
            </label>
        </div>
    })
}

/// For a style of one of the user's own packs: download the pack again, or remove it.
fn own_controls(ui: Ui) -> Option<impl IntoView> {
    let selected = ui.selected.get();
    let card = ui
        .styles
        .get()
        .into_iter()
        .find(|c| Some(&c.id) == selected.as_ref() && c.own)?;
    let (download, remove) = (card.pack.clone(), card.pack.clone());
    let (id, title) = (card.id.clone(), card.title.clone());
    let on_rename = move |_| {
        let asked = browser::window()
            .prompt_with_message_and_default("A new name for this style", &title)
            .ok()
            .flatten();
        if let Some(new) = asked.filter(|n| !n.trim().is_empty()) {
            spawn_local(own::rename(ui, id.clone(), new));
        }
    };
    Some(view! {
        <div class="own">
            <span class="tag">"your own pack"</span>
            <button type="button" id="rename-style" on:click=on_rename>"Rename"</button>
            <button type="button" id="download-pack" on:click=move |_| own::download(ui, &download)>
                "Download this style pack"
            </button>
            <button type="button" id="remove-pack" on:click=move |_| spawn_local(own::remove(ui, remove.clone()))>
                "Remove it from this browser"
            </button>
        </div>
    })
}
