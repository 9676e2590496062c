//! The page's state: [`Ui`], a `Copy` bundle of signals that event handlers and the runner share
//! without clones, the Create view's signals, and the heavy data of one [`Session`] (device,
//! loaded style, photos).

use burn::tensor::Device;
use image::RgbImage;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

use super::backend::Backend;
use crate::create::Creator;
use crate::pack::{IndexEntry, StylePack};
use crate::stylize::{Blend, CancelToken, Stylizer};

/// Largest tile run at once in the browser: keeps WebGPU buffers far below their limits, and on
/// the CPU lets the page breathe (and a cancel land) between tiles.
pub(super) const BROWSER_TILE: usize = 512;

/// Side of the photo run once when a style loads on WebGPU, so shader compilation happens then
/// and not in the first timed run.
pub(super) const WARM_UP_SIDE: u32 = 64;

/// The Create grid: this many portraits per row and column.
pub(super) const GRID: usize = 4;

/// Created portraits are enlarged this many times (Lanczos) for download and as style input.
pub(super) const CREATED_SCALE: u32 = 4;

#[derive(Default)]
pub(super) struct Session {
    pub(super) device: Option<(Device, Backend)>,
    /// The stylizer and the style (or mix) it runs, as `pack[:style=share,…]`.
    pub(super) stylizer: Option<(String, Stylizer)>,
    /// The last pack fetched, by id: mixing its styles needs no new download.
    pub(super) pack: Option<(String, StylePack)>,
    /// The photo as given, and its name.
    pub(super) source: Option<(RgbImage, String)>,
    /// `source` fitted to the chosen output size: what runs and what `styled` matches.
    pub(super) photo: Option<RgbImage>,
    pub(super) styled: Option<RgbImage>,
    pub(super) creator: Option<(String, Creator)>,
    /// The portrait on the walk canvas, at the generator's size, and its file name.
    pub(super) created: Option<(RgbImage, String)>,
    /// The user's own packs (see `own`), verified, with the archive each came in.
    pub(super) own: Vec<(StylePack, Vec<u8>)>,
}

/// One card of the gallery: a one-style pack, or one style of a multi-style pack.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Card {
    /// `pack` or `pack:style`, as the CLI's `--style` takes it.
    pub(super) id: String,
    pub(super) pack: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) preview: Option<String>,
    /// The other styles of the same pack, `(style id, title)`: what this one can mix with.
    pub(super) mixes_with: Vec<(String, String)>,
    /// A look: a colour grade by formula, no network.
    pub(super) look: bool,
    /// One of the user's own packs (kept in this browser), not a shipped one.
    pub(super) own: bool,
}

impl Card {
    /// The gallery's cards for the index's transfer packs, in index order.
    pub(super) fn all(entries: &[IndexEntry]) -> Vec<Card> {
        entries
            .iter()
            .flat_map(|entry| Self::of(entry, false, &|file| format!("models/{}/{file}", entry.id)))
            .collect()
    }

    /// One pack's cards; `url` gives the address of one of its files (a preview).
    pub(super) fn of(entry: &IndexEntry, own: bool, url: &dyn Fn(&str) -> String) -> Vec<Card> {
        let url = |file: &String| url(file);
        if entry.styles.is_empty() {
            return vec![Card {
                id: entry.id.clone(),
                pack: entry.id.clone(),
                title: entry.title.clone(),
                description: entry.description.clone(),
                preview: entry.preview.as_ref().map(url),
                mixes_with: Vec::new(),
                look: entry.look.is_some(),
                own,
            }];
        }
        entry
            .styles
            .iter()
            .map(|style| Card {
                id: format!("{}:{}", entry.id, style.id),
                pack: entry.id.clone(),
                title: style.title.clone(),
                description: style.description.clone(),
                preview: style.preview.as_ref().or(entry.preview.as_ref()).map(url),
                mixes_with: entry
                    .styles
                    .iter()
                    .filter(|other| other.id != style.id)
                    .map(|other| (other.id.clone(), other.title.clone()))
                    .collect(),
                look: false,
                own,
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
pub(super) struct Ui {
    pub(super) styles: RwSignal<Vec<Card>>,
    /// The selected card's id.
    pub(super) selected: RwSignal<Option<String>>,
    /// A second style of the selected card's pack to mix in, and its share (0–100).
    pub(super) mix_with: RwSignal<Option<String>>,
    pub(super) mix: RwSignal<f64>,
    pub(super) status: RwSignal<String>,
    pub(super) error: RwSignal<Option<String>>,
    pub(super) backend_info: RwSignal<String>,
    /// Set when WebGPU failed and the page moved to the CPU.
    pub(super) gpu_note: RwSignal<Option<String>>,
    pub(super) busy: RwSignal<bool>,
    /// Another run was asked for while one was going: start it when the current one stops.
    pub(super) pending: RwSignal<bool>,
    /// Completed runs, shown as `data-results` so tests and benchmarks can wait for the next one.
    pub(super) results: RwSignal<u32>,
    pub(super) has_result: RwSignal<bool>,
    pub(super) strength: RwSignal<f64>,
    pub(super) keep_colors: RwSignal<bool>,
    pub(super) compare: RwSignal<f64>,
    pub(super) max_side: RwSignal<u32>,
    pub(super) camera: RwSignal<bool>,
    pub(super) dragging: RwSignal<bool>,
    pub(super) create: Create,
    pub(super) session: StoredValue<Session, LocalStorage>,
    /// Cancelled by the cancel button or a newer request; the stylizer stops at the next tile.
    pub(super) cancel: StoredValue<CancelToken>,
    pub(super) original_canvas: NodeRef<leptos::html::Canvas>,
    pub(super) result_canvas: NodeRef<leptos::html::Canvas>,
    pub(super) video: NodeRef<leptos::html::Video>,
}

impl Ui {
    pub(super) fn new() -> Self {
        Self {
            styles: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            mix_with: RwSignal::new(None),
            mix: RwSignal::new(50.0),
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
            cancel: StoredValue::new(CancelToken::new()),
            original_canvas: NodeRef::new(),
            result_canvas: NodeRef::new(),
            video: NodeRef::new(),
        }
    }

    /// What to run: the selected card, or its mix with a second style of its pack
    /// (`pack:a=0.7,b=0.3`).
    pub(super) fn style_spec(self) -> Option<String> {
        let selected = self.selected.get_untracked()?;
        let share = self.mix.get_untracked() / 100.0;
        match (self.mix_with.get_untracked(), selected.split_once(':')) {
            (Some(other), Some((pack, style))) if share > 0.0 && other != style => Some(format!(
                "{pack}:{style}={:.2},{other}={:.2}",
                1.0 - share,
                share
            )),
            _ => Some(selected),
        }
    }

    pub(super) fn blend(self) -> Blend {
        Blend {
            strength: (self.strength.get_untracked() / 100.0) as f32,
            keep_colors: self.keep_colors.get_untracked(),
        }
    }

    pub(super) fn fail(self, message: String) {
        self.status.set(String::new());
        self.error.set(Some(message));
    }
}

/// The Create view's state.
#[derive(Clone, Copy)]
pub(super) struct Create {
    /// The noise packs the index lists, and the one in use (the first unless chosen).
    pub(super) packs: RwSignal<Vec<IndexEntry>>,
    pub(super) pack: RwSignal<Option<IndexEntry>>,
    /// First seed of the grid; the grid shows this seed and the next GRID² − 1.
    pub(super) seed: RwSignal<u64>,
    /// Seeds of the walk's two ends.
    pub(super) from: RwSignal<u64>,
    pub(super) to: RwSignal<u64>,
    /// The next click on the grid picks the walk's end (else its start).
    pub(super) picking_end: RwSignal<bool>,
    /// Position on the walk, 0–100.
    pub(super) walk: RwSignal<f64>,
    /// A grid is being made (the button is disabled meanwhile).
    pub(super) grid_busy: RwSignal<bool>,
    /// A walk portrait is being made.
    pub(super) busy: RwSignal<bool>,
    /// A walk render was asked for during a run: do it when the run ends.
    pub(super) pending: RwSignal<bool>,
    /// Finished grid renders (`data-grids`), for tests.
    pub(super) grids: RwSignal<u32>,
    /// Finished walk renders (`data-walks`), for tests.
    pub(super) walks: RwSignal<u32>,
    pub(super) status: RwSignal<String>,
    pub(super) grid_canvas: NodeRef<leptos::html::Canvas>,
    pub(super) walk_canvas: NodeRef<leptos::html::Canvas>,
}

impl Create {
    pub(super) fn new() -> Self {
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

pub(super) fn canvas(node: NodeRef<leptos::html::Canvas>) -> Option<HtmlCanvasElement> {
    node.get_untracked().map(|c| c.unchecked_into())
}
