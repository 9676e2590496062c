//! "Create": new portraits from a noise pack in a grid, a walk between two of them, download,
//! and "use as input" for the styles.

use image::RgbImage;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::browser;
use super::runner::{device, fetch_pack, gpu_gone, set_photo};
use super::state::{CREATED_SCALE, GRID, Ui, canvas};
use crate::create::{self, Creator};
use crate::image_io::{self, OutputFormat};

/// "Create": new portraits from noise (a GAN's generator), a walk between two, and a way to
/// hand one to the styles above.
#[component]
pub(super) fn CreateView(ui: Ui) -> impl IntoView {
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

/// The noise pack's creator on the page's device (loaded once).
pub(super) async fn creator(ui: Ui) -> Result<Creator, String> {
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
    let creator =
        Creator::from_pack(&fetch_pack(&id).await?, &device).map_err(|e| e.to_string())?;
    ui.session
        .update_value(|s| s.creator = Some((id, creator.clone())));
    Ok(creator)
}

/// Render the grid of GRID² portraits from `create.seed`, then the walk.
pub(super) fn create_grid(ui: Ui) {
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
pub(super) fn pick(ui: Ui, seed: u64) {
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
pub(super) fn render_walk(ui: Ui) {
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
pub(super) fn created_portrait(ui: Ui) -> Option<(RgbImage, String)> {
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

pub(super) fn use_created(ui: Ui) {
    if let Some((portrait, name)) = created_portrait(ui) {
        set_photo(ui, portrait, format!("{name}.png"));
        if let Some(canvas) = canvas(ui.original_canvas) {
            canvas.scroll_into_view();
        }
    }
}

pub(super) fn download_created(ui: Ui) {
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
