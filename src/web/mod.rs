//! The browser front end (wasm only): a Leptos app over the same `Stylizer` and `StylePack` as
//! the CLI. `app` holds the components, `backend` picks WebGPU or the CPU, `browser` wraps the
//! few Web APIs the app needs (fetch, files, canvas, downloads).

mod app;
mod backend;
mod browser;

pub use app::App;

/// Mount the app on the page.
pub fn start() {
    leptos::mount::mount_to_body(App);
}
