//! How the process's allocator keeps freed memory while training on the CPU.
//!
//! A training step allocates and frees the same few hundred buffers each step, many of them larger
//! than glibc's default threshold for serving an allocation by its own `mmap` (128 KiB, raised
//! only as such blocks are freed, and only in the main thread's arena). Each of those is a fresh
//! mapping: the kernel zeroes and maps it page by page, and `munmap` hands it back at the end of
//! the step. On the paired `tiny` step at 256² that was 10 page faults per kilobyte of work and a
//! fifth of the step's time (`perf stat -e page-faults`, bench/HISTORY.md 2026-12-07, fourth
//! session). Serving blocks up to 32 MiB from the heaps and keeping up to 1 GiB of freed memory
//! in them instead makes the second step onwards reuse the first step's pages; the peak resident
//! size stays what it was, but the process no longer shrinks between steps.

/// Keeps freed memory for reuse from now on (glibc on Linux; elsewhere nothing). Idempotent.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes glibc's tuning parameters; both values are in range
            // (the threshold's maximum is 32 MiB on 64-bit targets).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}
