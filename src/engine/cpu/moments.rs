//! Per-channel statistics measured chunk by chunk and merged exactly.

/// Count, mean and sum of squared deviations of some values; merged exactly (Chan et al.), so
/// chunks measured apart give the statistics of the whole channel.
#[derive(Clone, Copy, Default)]
pub(super) struct Moments {
    pub(super) n: f64,
    pub(super) mean: f64,
    pub(super) m2: f64,
}

impl Moments {
    pub(super) fn of<'a>(parts: impl Iterator<Item = &'a [f32]> + Clone) -> Self {
        let n: usize = parts.clone().map(<[f32]>::len).sum();
        if n == 0 {
            return Self::default();
        }
        let sum: f64 = parts.clone().map(|p| f64::from(lane_sum(p, |v| v))).sum();
        let mean = (sum / n as f64) as f32;
        let m2: f64 = parts
            .map(|p| f64::from(lane_sum(p, |v| (v - mean) * (v - mean))))
            .sum();
        Self {
            n: n as f64,
            mean: f64::from(mean),
            m2,
        }
    }

    /// The moments of the same values plus `offset`.
    pub(super) fn shifted(self, offset: f32) -> Self {
        Self {
            mean: self.mean + f64::from(offset),
            ..self
        }
    }

    pub(super) fn merge(self, other: Self) -> Self {
        if other.n == 0.0 {
            return self;
        }
        if self.n == 0.0 {
            return other;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        Self {
            n,
            mean: self.mean + delta * other.n / n,
            m2: self.m2 + other.m2 + delta * delta * self.n * other.n / n,
        }
    }

    /// Biased variance, as Burn's `var_mean_bias`.
    pub(super) fn variance(&self) -> f64 {
        if self.n > 0.0 { self.m2 / self.n } else { 0.0 }
    }
}

/// `Σ f(v)` with 16 independent partial sums, which the compiler turns into SIMD adds.
pub(super) fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let blocks = values.chunks_exact(16);
    let rest: f32 = blocks.remainder().iter().map(|&v| f(v)).sum();
    for block in blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}
