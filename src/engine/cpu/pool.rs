//! Reuse of the large buffers within one forward pass: fresh allocations of that size come
//! straight from the OS, and touching their pages cost more than the arithmetic between them.

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

/// Hand the memory back once a pass is done.
pub(super) fn clear() {
    FREE.with(|free| free.borrow_mut().clear());
}
