//! Browser entry point: mounts the app. Built by trunk (`index.html`).

fn main() {
    console_error_panic_hook::set_once();
    portraitist::web::start();
}
