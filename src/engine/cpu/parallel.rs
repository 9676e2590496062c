//! Work on every core natively (rayon), in turn in the browser (inside a simd128 function), and
//! the shared output buffer that parallel chunks write to.

use super::Map;

pub(super) fn for_each_plane(x: &mut Map, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let plane = x.h * x.w;
    for_each_slice(&mut x.data, plane, f);
}

/// `f(index, slice)` for each `len`-long slice of `data`, on all cores (in wasm: in turn,
/// `vectorised`).
pub(super) fn for_each_slice(
    data: &mut [f32],
    len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, s)| f(i, s));
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(len)
        .enumerate()
        .for_each(|(i, s)| vectorised(|| f(i, s)));
}

/// `[f(0), …, f(count − 1)]`, computed on all cores (in wasm: in turn, `vectorised`).
pub(super) fn par_map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..count).into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    (0..count).map(|i| vectorised(|| f(i))).collect()
}

/// Runs `f` inlined into a function compiled with wasm's 128-bit SIMD, so the compiler
/// vectorises its loops (padding copies, bias and statistics, residual adds): the rest of the
/// crate is built for wasm without SIMD, which would leave them scalar.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub(super) fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[target_feature(enable = "simd128")]
    fn simd<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
    // A browser without simd128 cannot instantiate the module anyway: the direct kernels and
    // the gemm crate's wasm kernels use it.
    simd(f)
}

/// A convolution's output, written by parallel chunks, each to pixels no other chunk touches.
pub(super) struct Shared(pub(super) *mut f32);

// SAFETY: chunks write disjoint elements (see the callers) and the buffer outlives the scope.
unsafe impl Sync for Shared {}

unsafe impl Send for Shared {}

impl Shared {
    /// `buffer[at + i] = values[i] + bias`.
    ///
    /// # Safety
    /// `at + values.len()` is inside the buffer and no other thread accesses that range.
    pub(super) unsafe fn write(&self, at: usize, values: &[f32], bias: f32) {
        for (i, v) in values.iter().enumerate() {
            unsafe { *self.0.add(at + i) = v + bias };
        }
    }
}
