//! The browser front end (wasm only): a Leptos app over the same `Stylizer` and `StylePack` as
//! the CLI. `app`, `style_card`, `create_view`, `learn_view` and `camera` are the components,
//! `state` the page's signals and session, `runner` the work behind them (stylize, cancel, GPU
//! fallback, downloads); `own` the user's own packs (added, kept in the browser), `backend` picks
//! WebGPU or the CPU, `browser` wraps the few Web APIs the app needs (fetch, files, canvas,
//! downloads). `worker` is the "Learn a style" Web Worker (its own wasm, with `learn`).

mod app;
mod backend;
mod browser;
mod camera;
mod create_view;
pub mod harness;
mod learn_view;
mod own;
mod runner;
mod state;
mod style_card;
#[cfg(feature = "learn")]
pub mod worker;

pub use app::App;

/// Mount the app on the page.
pub fn start() {
    leptos::mount::mount_to_body(App);
}
