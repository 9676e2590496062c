//! Direct stride-1 convolution: each tile of `R` output channels × `4·V` output positions (`16·V`
//! in the AVX-512 tiles) keeps its sums in SIMD registers while every input channel and kernel tap
//! passes through it.
//!
//! This is the browser's convolution. wasm has 128-bit SIMD and no fused multiply-add, and the
//! `gemm` crate's wasm kernels spend much of their time packing operands; here nothing is packed
//! but the weights (once, when the layer is built), and thin layers (3 output channels, 3 input
//! channels, 7×7 kernels) run as fast as wide ones. Natively the same code runs on plain
//! `[f32; 4]` lanes, so the tests check the arithmetic on any machine. Natively, x86-64 CPUs with
//! AVX-512 run the same tiles 16 lanes wide ([`wide`]); others use the shifted matrix products,
//! which are faster than 4-lane tiles there.
//!
//! Positions are the same as in the shifted products: output `j = y·wp + x` over the padded
//! width, tap `(ky, kx)` reading input `j + ky·wp + kx` of each padded plane.

use lanes::F4;

/// The tile shapes in use: `R` output channels × `V` vectors of positions (4 per vector, or 16 in
/// the AVX-512 tiles). Four channels by two vectors keeps 8 sums, 2 inputs and a weight in the 16
/// registers V8 has on x86-64 (a third vector spills); a 3-channel layer (the output head) uses
/// three vectors instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tile {
    R4V2,
    R3V3,
    /// AVX-512 ([`wide`]): 12 channels × 32 positions, 24 of the 32 registers holding sums, the
    /// weights broadcast from memory (12 multiply-adds per input load).
    #[cfg(target_arch = "x86_64")]
    Z12V2,
    /// AVX-512 for channel counts that 12 does not divide (16, 32, 64…): 8 channels × 48
    /// positions, again 24 sums.
    #[cfg(target_arch = "x86_64")]
    Z8V3,
    /// AVX-512, the 3-channel head: 3 channels × 128 positions.
    #[cfg(target_arch = "x86_64")]
    Z3V8,
}

impl Tile {
    pub(super) fn for_channels(cout: usize) -> Self {
        if cout == 3 { Tile::R3V3 } else { Tile::R4V2 }
    }

    /// The AVX-512 tile for `cout` output channels (only where [`wide::available`]).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn wide_for_channels(cout: usize) -> Self {
        match cout {
            3 => Tile::Z3V8,
            c if c % 12 == 0 => Tile::Z12V2,
            _ => Tile::Z8V3,
        }
    }

    /// Output channels per tile.
    pub(super) fn rows(self) -> usize {
        match self {
            Tile::R4V2 => 4,
            Tile::R3V3 => 3,
            #[cfg(target_arch = "x86_64")]
            Tile::Z12V2 => 12,
            #[cfg(target_arch = "x86_64")]
            Tile::Z8V3 => 8,
            #[cfg(target_arch = "x86_64")]
            Tile::Z3V8 => 3,
        }
    }

    /// Positions per tile.
    fn width(self) -> usize {
        match self {
            Tile::R4V2 => 8,
            Tile::R3V3 => 12,
            #[cfg(target_arch = "x86_64")]
            Tile::Z12V2 => 32,
            #[cfg(target_arch = "x86_64")]
            Tile::Z8V3 => 48,
            #[cfg(target_arch = "x86_64")]
            Tile::Z3V8 => 128,
        }
    }
}

/// `weights` (`[cout][cin][tap]`, Burn's layout) as `[block][cin][tap][rows]`, one block per
/// `rows` output channels, the last block zero-filled past `cout`.
pub(super) fn pack(weights: &[f32], cout: usize, cin: usize, taps: usize, rows: usize) -> Vec<f32> {
    let blocks = cout.div_ceil(rows);
    let mut packed = vec![0.0; blocks * cin * taps * rows];
    for co in 0..cout {
        let (block, r) = (co / rows, co % rows);
        for ci in 0..cin {
            for tap in 0..taps {
                packed[((block * cin + ci) * taps + tap) * rows + r] =
                    weights[(co * cin + ci) * taps + tap];
            }
        }
    }
    packed
}

/// One layer's shape for [`chunk`].
pub(super) struct Layer<'a> {
    pub tile: Tile,
    pub cin: usize,
    pub cout: usize,
    /// Packed by [`pack`] with `tile.rows()`.
    pub weights: &'a [f32],
    /// Each tap's offset in a padded plane: `ky·wp + kx`.
    pub offsets: &'a [usize],
    /// Padded plane length.
    pub plane: usize,
}

/// `out` (`[cout, nc]`) = the convolution at positions `c0 .. c0 + nc` of `input` (the padded
/// planes), without bias.
///
/// Panics unless `input` holds every value the tiles read: the last tile reads up to a tile's
/// width (8 or 12 positions) past the last position, plus the largest tap offset.
pub(super) fn chunk(layer: &Layer, input: &[f32], c0: usize, nc: usize, out: &mut [f32]) {
    let taps = layer.offsets.len();
    let max_offset = layer.offsets.iter().copied().max().unwrap_or(0);
    let rows = layer.tile.rows();
    assert!(out.len() >= layer.cout * nc, "output chunk too small");
    assert_eq!(
        layer.weights.len(),
        layer.cout.div_ceil(rows) * layer.cin * taps * rows,
        "packed weights do not match the layer"
    );
    // The last tile reads up to a tile's width past position c0 + nc − 1 of the last plane.
    let width = layer.tile.width();
    let last = (layer.cin - 1) * layer.plane + c0 + nc.div_ceil(width) * width + max_offset;
    assert!(last <= input.len(), "padded input lacks its slack");
    // SAFETY: every read is below `last` (checked above); writes stay inside `out`'s
    // `[cout, nc]` (full tiles end at or before nc, the tail goes through a local buffer).
    unsafe {
        match layer.tile {
            Tile::R4V2 => run::<4, 2>(layer, input.as_ptr(), c0, nc, out),
            Tile::R3V3 => run::<3, 3>(layer, input.as_ptr(), c0, nc, out),
            // SAFETY: these tiles are only chosen where the CPU has AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Tile::Z12V2 => wide::run::<12, 2>(layer, input.as_ptr(), c0, nc, out),
            #[cfg(target_arch = "x86_64")]
            Tile::Z8V3 => wide::run::<8, 3>(layer, input.as_ptr(), c0, nc, out),
            #[cfg(target_arch = "x86_64")]
            Tile::Z3V8 => wide::run::<3, 8>(layer, input.as_ptr(), c0, nc, out),
        }
    }
}

/// Every block of `R` output channels over every tile of the chunk (the chunk's input stays in
/// cache while the blocks take turns).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
unsafe fn run<const R: usize, const V: usize>(
    layer: &Layer,
    input: *const f32,
    c0: usize,
    nc: usize,
    out: &mut [f32],
) {
    let width = 4 * V;
    let block_len = layer.cin * layer.offsets.len() * R;
    for (block, weights) in layer.weights.chunks_exact(block_len).enumerate() {
        let rows = R.min(layer.cout - block * R);
        let out = &mut out[block * R * nc..];
        let mut q = 0;
        while q + width <= nc {
            // SAFETY: rows r < `rows` write out[r·nc + q .. + width], inside the chunk.
            unsafe {
                tile::<R, V>(
                    layer,
                    input.add(c0 + q),
                    weights,
                    out.as_mut_ptr().add(q),
                    nc,
                    rows,
                )
            };
            q += width;
        }
        if q < nc {
            let mut tail = [0.0f32; 64];
            // SAFETY: the local buffer holds R·width ≤ 64 values at row stride `width`.
            unsafe {
                tile::<R, V>(
                    layer,
                    input.add(c0 + q),
                    weights,
                    tail.as_mut_ptr(),
                    width,
                    rows,
                )
            };
            for r in 0..rows {
                out[r * nc + q..(r + 1) * nc].copy_from_slice(&tail[r * width..r * width + nc - q]);
            }
        }
    }
}

/// `R × 4V` sums at input position `x` (already offset to the tile's first position), written to
/// `out` at row stride `stride`, rows below `rows` only.
#[inline]
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
unsafe fn tile<const R: usize, const V: usize>(
    layer: &Layer,
    x: *const f32,
    weights: &[f32],
    out: *mut f32,
    stride: usize,
    rows: usize,
) {
    let mut sums = [[F4::zero(); V]; R];
    let mut w = weights.as_ptr();
    for ci in 0..layer.cin {
        // SAFETY (the whole block): the caller checked every read position.
        let plane = unsafe { x.add(ci * layer.plane) };
        for &offset in layer.offsets {
            let at = unsafe { plane.add(offset) };
            let mut v = [F4::zero(); V];
            for (j, v) in v.iter_mut().enumerate() {
                *v = unsafe { F4::load(at.add(4 * j)) };
            }
            for sum in sums.iter_mut() {
                let s = unsafe { F4::splat(w) };
                for (sum, &v) in sum.iter_mut().zip(&v) {
                    *sum = sum.mul_add(s, v);
                }
                w = unsafe { w.add(1) };
            }
        }
    }
    for (r, sum) in sums.iter().enumerate().take(rows) {
        for (j, sum) in sum.iter().enumerate() {
            unsafe { sum.store(out.add(r * stride + 4 * j)) };
        }
    }
}

/// The same tiles on AVX-512's sixteen lanes and 32 registers, with fused multiply-adds: the
/// native path on x86-64 CPUs that have AVX-512F (checked at run time), where it beats the
/// shifted matrix products: nothing is packed per call, and the sums never leave the registers.
#[cfg(target_arch = "x86_64")]
pub(super) mod wide {
    use super::Layer;
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };

    /// Whether this CPU runs the AVX-512 tiles.
    pub(in super::super) fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
    }

    /// The largest `R × 16V` tile: the tail's buffer.
    const TAIL: usize = 384;

    /// As [`super::run`], on `R × 16V` tiles.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `input` hold every value [`super::chunk`] checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run<const R: usize, const V: usize>(
        layer: &Layer,
        input: *const f32,
        c0: usize,
        nc: usize,
        out: &mut [f32],
    ) {
        let width = 16 * V;
        assert!(R * width <= TAIL, "tile larger than its tail buffer");
        let block_len = layer.cin * layer.offsets.len() * R;
        for (block, weights) in layer.weights.chunks_exact(block_len).enumerate() {
            let rows = R.min(layer.cout - block * R);
            let out = &mut out[block * R * nc..];
            let mut q = 0;
            while q + width <= nc {
                // SAFETY: rows r < `rows` write out[r·nc + q .. + width], inside the chunk.
                unsafe {
                    tile::<R, V>(
                        layer,
                        input.add(c0 + q),
                        weights,
                        out.as_mut_ptr().add(q),
                        nc,
                        rows,
                    )
                };
                q += width;
            }
            if q < nc {
                let mut tail = [0.0f32; TAIL];
                // SAFETY: the local buffer holds R·width values at row stride `width`.
                unsafe {
                    tile::<R, V>(
                        layer,
                        input.add(c0 + q),
                        weights,
                        tail.as_mut_ptr(),
                        width,
                        rows,
                    )
                };
                for r in 0..rows {
                    out[r * nc + q..(r + 1) * nc]
                        .copy_from_slice(&tail[r * width..r * width + nc - q]);
                }
            }
        }
    }

    /// `R × 16V` sums at input position `x`, written to `out` at row stride `stride`, rows below
    /// `rows` only. Plain loops over the registers (no closures: they would not inherit the
    /// target feature).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const V: usize>(
        layer: &Layer,
        x: *const f32,
        weights: &[f32],
        out: *mut f32,
        stride: usize,
        rows: usize,
    ) {
        let mut sums = [[_mm512_setzero_ps(); V]; R];
        let mut w = weights.as_ptr();
        for ci in 0..layer.cin {
            // SAFETY (the whole block): the caller checked every read position, and the packed
            // weights hold cin · taps · R values per block.
            let plane = unsafe { x.add(ci * layer.plane) };
            for &offset in layer.offsets {
                let at = unsafe { plane.add(offset) };
                let mut v: [__m512; V] = [_mm512_setzero_ps(); V];
                for (j, v) in v.iter_mut().enumerate() {
                    *v = unsafe { _mm512_loadu_ps(at.add(16 * j)) };
                }
                for sum in sums.iter_mut() {
                    let s = _mm512_set1_ps(unsafe { *w });
                    for (sum, &v) in sum.iter_mut().zip(&v) {
                        *sum = _mm512_fmadd_ps(s, v, *sum);
                    }
                    w = unsafe { w.add(1) };
                }
            }
        }
        for (r, sum) in sums.iter().enumerate().take(rows) {
            for (j, &sum) in sum.iter().enumerate() {
                unsafe { _mm512_storeu_ps(out.add(r * stride + 16 * j), sum) };
            }
        }
    }
}

/// Four `f32` lanes: wasm's `v128`, or a plain array elsewhere (which the compiler vectorises).
mod lanes {
    #[cfg(target_arch = "wasm32")]
    use core::arch::wasm32::{
        f32x4_add, f32x4_mul, f32x4_splat, v128, v128_load, v128_load32_splat, v128_store,
    };

    #[derive(Clone, Copy)]
    pub(super) struct F4(
        #[cfg(target_arch = "wasm32")] v128,
        #[cfg(not(target_arch = "wasm32"))] [f32; 4],
    );

    #[cfg(target_arch = "wasm32")]
    impl F4 {
        #[inline]
        #[target_feature(enable = "simd128")]
        pub(super) fn zero() -> Self {
            F4(f32x4_splat(0.0))
        }

        /// # Safety
        /// `p .. p + 4` must be readable.
        #[inline]
        #[target_feature(enable = "simd128")]
        pub(super) unsafe fn load(p: *const f32) -> Self {
            F4(unsafe { v128_load(p.cast()) })
        }

        /// All four lanes `*p`.
        ///
        /// # Safety
        /// `p` must be readable.
        #[inline]
        #[target_feature(enable = "simd128")]
        pub(super) unsafe fn splat(p: *const f32) -> Self {
            F4(unsafe { v128_load32_splat(p.cast()) })
        }

        /// `self + a · b` (rounded twice: wasm has no fused multiply-add without relaxed SIMD).
        #[inline]
        #[target_feature(enable = "simd128")]
        pub(super) fn mul_add(self, a: Self, b: Self) -> Self {
            F4(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }

        /// # Safety
        /// `p .. p + 4` must be writable.
        #[inline]
        #[target_feature(enable = "simd128")]
        pub(super) unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p.cast(), self.0) }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    impl F4 {
        #[inline(always)]
        pub(super) fn zero() -> Self {
            F4([0.0; 4])
        }

        /// # Safety
        /// `p .. p + 4` must be readable.
        #[inline(always)]
        pub(super) unsafe fn load(p: *const f32) -> Self {
            F4(unsafe { p.cast::<[f32; 4]>().read_unaligned() })
        }

        /// # Safety
        /// `p` must be readable.
        #[inline(always)]
        pub(super) unsafe fn splat(p: *const f32) -> Self {
            F4([unsafe { *p }; 4])
        }

        #[inline(always)]
        pub(super) fn mul_add(self, a: Self, b: Self) -> Self {
            F4(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }

        /// # Safety
        /// `p .. p + 4` must be writable.
        #[inline(always)]
        pub(super) unsafe fn store(self, p: *mut f32) {
            unsafe { p.cast::<[f32; 4]>().write_unaligned(self.0) }
        }
    }
}
