//! Reuse of the large buffers within one forward pass and (natively) between passes: fresh
//! allocations of that size come straight from the OS, and touching their pages cost more than
//! the arithmetic between them.

use std::cell::RefCell;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` values (whatever they are).
pub(super) fn take(len: usize) -> Vec<f32> {
    let reused = FREE.with(|free| {
        let mut free = free.borrow_mut();
        let best = (0..free.len())
            .filter(|&i| free[i].capacity() >= len)
            .min_by_key(|&i| free[i].capacity());
        best.map(|i| free.swap_remove(i))
    });
    let mut buffer = reused.unwrap_or_default();
    buffer.resize(len, 0.0);
    buffer
}

pub(super) fn give(buffer: Vec<f32>) {
    if buffer.capacity() > 0 {
        FREE.with(|free| free.borrow_mut().push(buffer));
    }
}

/// Natively, the buffers a pass leaves behind serve the next one (eval, batches, the page's
/// re-renders), up to this many values in all (512 MiB); beyond it the largest go back.
const KEEP: usize = 1 << 27;

/// Once a pass is done: natively keep up to [`KEEP`] values of buffers for the next pass (fresh
/// pages cost about a tenth of a 512² pass), in the browser hand them all back (wasm memory never
/// shrinks, and the rest of the page needs it).
pub(super) fn clear() {
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if cfg!(target_arch = "wasm32") {
            free.clear();
            return;
        }
        free.sort_by_key(|b| b.capacity());
        let mut kept = 0;
        free.retain(|b| {
            kept += b.capacity();
            kept <= KEEP
        });
    });
}
