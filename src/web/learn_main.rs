//! The "Learn a style" Web Worker's entry point (see `portraitist::web::worker`, which also sets
//! the panic hook). Built by trunk (`index.html`) with the `learn` feature.

fn main() {
    portraitist::web::worker::start();
}
