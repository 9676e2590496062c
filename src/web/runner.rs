//! The work behind the page: loading styles and photos, running the stylizer (cancellable
//! through the [`CancelToken`], falling back from a failing GPU to the CPU), re-blending and
//! downloads.

use std::future::Future;
use std::pin::Pin;

use burn::tensor::Device;
use image::RgbImage;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::backend::{self, Backend};
use super::browser;
use super::own;
use super::state::{BROWSER_TILE, Card, Ui, WARM_UP_SIDE, canvas};
use crate::image_io::{self, OutputFormat};
use crate::pack::{Index, IndexEntry, Manifest, PackKind, StylePack, StyleRef};
use crate::stylize::{self, CancelToken, RenderError, Stylizer};

pub(super) async fn load_styles(ui: Ui) {
    let index = browser::fetch_bytes("models/index.json")
        .await
        .and_then(|b| Index::parse("models/index.json", &b).map_err(|e| e.to_string()));
    match index {
        Ok(index) => {
            let default_pack = index.default_pack().map(str::to_owned);
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
            let cards = Card::all(&transfer);
            // The default: a style of a pack (`pack:style`), or a pack's first card.
            let default = cards
                .iter()
                .find(|c| index.default.as_deref() == Some(c.id.as_str()))
                .or_else(|| {
                    cards
                        .iter()
                        .find(|c| default_pack.as_deref() == Some(c.pack.as_str()))
                })
                .or_else(|| cards.first())
                .map(|c| c.id.clone());
            if cards.is_empty() {
                ui.fail("No styles are installed: models/index.json lists none.".into());
            } else {
                ui.status.set("Choose a photo.".into());
            }
            ui.selected.set(default);
            ui.styles.set(cards);
        }
        Err(e) => ui.fail(format!("Could not load the list of styles: {e}")),
    }
}

pub(super) async fn read_file(ui: Ui, file: web_sys::File) {
    let name = file.name();
    match browser::file_bytes(&file).await {
        // A style pack given where photos go is added to the gallery.
        Ok(bytes) if crate::pack::archive::is_archive(&bytes) => {
            own::add(ui, name, bytes).await;
        }
        Ok(bytes) => match image_io::decode(&bytes) {
            Ok(photo) => set_photo(ui, photo, name),
            Err(e) => ui.fail(format!("{name}: {e}")),
        },
        Err(e) => ui.fail(format!("{name}: {e}")),
    }
}

/// A new photo (or a new size for the current one): show it and run the style.
pub(super) fn set_photo(ui: Ui, source: RgbImage, name: String) {
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
pub(super) fn run(ui: Ui) {
    let Some(style_id) = ui.style_spec() else {
        return;
    };
    if ui.session.with_value(|s| s.photo.is_none()) {
        return;
    }
    if ui.busy.get_untracked() {
        ui.pending.set(true);
        ui.cancel.with_value(CancelToken::cancel);
        return;
    }
    ui.cancel.with_value(CancelToken::clear);
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

pub(super) enum Failure {
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
pub(super) async fn stylize_current(ui: Ui, style_id: &str) -> Result<(Backend, f64), Failure> {
    let (device, backend) = device(ui, ui.status).await;
    let cached = ui
        .session
        .with_value(|s| s.stylizer.as_ref().is_some_and(|(id, _)| id == style_id));
    if !cached {
        ui.status.set("Loading the style…".into());
        let stylizer = load_style(ui, style_id, &device).await?;
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
pub(super) async fn gpu_gone(ui: Ui) -> bool {
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
    ui.cancel.with_value(CancelToken::clear);
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
pub(super) async fn device(ui: Ui, status: RwSignal<String>) -> (Device, Backend) {
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

pub(super) fn failure(e: RenderError) -> Failure {
    match e {
        RenderError::Cancelled => Failure::Cancelled,
        other => Failure::Message(other.to_string()),
    }
}

pub(super) async fn fetch_pack(style_id: &str) -> Result<StylePack, String> {
    let manifest_url = format!("models/{style_id}/style.json");
    let manifest = browser::fetch_bytes(&manifest_url).await?;
    let parsed = Manifest::parse(&manifest_url, &manifest).map_err(|e| e.to_string())?;
    // A look has no weights: its formula is in the code.
    let weights = if parsed.weights.is_none() {
        Vec::new()
    } else {
        browser::fetch_bytes(&format!("models/{style_id}/{}", parsed.weights.file)).await?
    };
    StylePack::from_bytes(&manifest_url, &manifest, weights).map_err(|e| e.to_string())
}

/// The stylizer for `spec` (`pack`, `pack:style` or `pack:a=0.7,b=0.3`), reusing the pack last
/// fetched when it is the same.
pub(super) async fn load_style(ui: Ui, spec: &str, device: &Device) -> Result<Stylizer, String> {
    let style = StyleRef::parse(spec).map_err(|e| e.to_string())?;
    let cached = ui.session.with_value(|s| {
        s.pack
            .as_ref()
            .filter(|(id, _)| *id == style.pack)
            .map(|(_, pack)| pack.clone())
    });
    let pack = match cached.or_else(|| own::pack(ui, &style.pack)) {
        Some(pack) => pack,
        None => {
            let pack = fetch_pack(&style.pack).await?;
            ui.session
                .update_value(|s| s.pack = Some((style.pack.clone(), pack.clone())));
            pack
        }
    };
    Ok(Stylizer::from_pack_style(&pack, &style, device)
        .map_err(|e| e.to_string())?
        .with_yield(yield_now)
        .with_cancel(ui.cancel.get_value()))
}

/// Between tiles: let the page repaint and handle input (a cancel comes in then).
pub(super) fn yield_now() -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(browser::yield_to_browser())
}

/// Re-blend the stored full-strength result: instant, no network run.
pub(super) fn reblend(ui: Ui) {
    let settings = ui.blend();
    ui.session.with_value(|s| {
        if let (Some(photo), Some(styled), Some(c)) =
            (&s.photo, &s.styled, canvas(ui.result_canvas))
            && let Err(e) = browser::paint(&c, &stylize::blend(photo, styled, settings))
        {
            ui.error.set(Some(e));
        }
    })
}

pub(super) fn download(ui: Ui, format: OutputFormat) {
    let settings = ui.blend();
    // `pack:a=0.70,b=0.30` → `pack-a-0.70-b-0.30`: a plain file name.
    let style: String = ui
        .style_spec()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
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
        Some((stylize::blend(photo, styled, settings), stem))
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
