//! A tiny seeded random generator whose whole state is one `u64`, so a checkpoint can store it
//! and a resumed run draws exactly the numbers the uninterrupted run would have drawn.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea & Flood 2014): fast, well mixed, trivially serialisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x5DEE_CE66_D1CE_4E5B,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// An independent generator derived from this one's seed and a label, for separate streams.
    pub fn fork(&self, label: u64) -> Self {
        let mut r = Self {
            state: self.state ^ label.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        r.next_u64();
        r
    }

    /// Standard normal (Box–Muller), for latent vectors.
    pub fn normal(&mut self) -> f32 {
        let u1 = self.next_f32().max(f32::MIN_POSITIVE);
        let u2 = self.next_f32();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_state_resumes_it() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        let saved = serde_json::to_string(&a).unwrap();
        let mut resumed: Rng = serde_json::from_str(&saved).unwrap();
        assert_eq!(a.next_u64(), resumed.next_u64());
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn draws_stay_in_range_and_spread_out() {
        let mut r = Rng::new(3);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            counts[r.below(4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 850 && c < 1150), "{counts:?}");
    }
}
