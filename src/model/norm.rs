//! Instance normalisation whose statistics can be recorded once and replayed.
//!
//! Instance norm normalises each channel by statistics of the *whole* image, so running a large
//! photo tile by tile would normalise every tile differently and show seams. The stylizer
//! therefore records the statistics of every norm layer on a thumbnail of the photo and replays
//! them for each tile ("thumbnail instance normalisation"). Training only uses live statistics.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

pub(crate) const EPSILON: f64 = 1e-5;

/// Per-layer `(mean, variance)` pairs, each shaped `[batch, channels, 1, 1]`, in forward order.
#[derive(Debug, Clone, Default)]
pub struct NormStats {
    mode: Mode,
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    cursor: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    /// Statistics of the input itself (ordinary instance norm).
    #[default]
    Live,
    /// Like `Live`, and keep every layer's statistics.
    Record,
    /// Use previously recorded statistics instead of the input's.
    Replay,
}

impl NormStats {
    /// Ordinary instance normalisation.
    pub fn live() -> Self {
        Self::default()
    }

    /// Normalise as usual and keep each layer's statistics for a later [`NormStats::replay`].
    pub fn record() -> Self {
        Self {
            mode: Mode::Record,
            ..Self::default()
        }
    }

    /// Turn recorded statistics into a replay that starts from the first layer.
    pub fn replay(self) -> Self {
        Self {
            mode: Mode::Replay,
            layers: self.layers,
            cursor: 0,
        }
    }

    /// Number of layers recorded.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    fn stats_for(&mut self, x: &Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        self.next_or(|| channel_stats(x))
    }

    /// The next layer's `(mean, variance)`: `live()` (the input's own) unless replaying.
    pub(crate) fn next_or(
        &mut self,
        live: impl FnOnce() -> (Tensor<4>, Tensor<4>),
    ) -> (Tensor<4>, Tensor<4>) {
        match self.mode {
            Mode::Live => live(),
            Mode::Record => {
                let stats = live();
                self.layers.push(stats.clone());
                stats
            }
            Mode::Replay => {
                // A replay comes from a record of the same network, so every layer finds its
                // entry; should one not, normalising by the input's own statistics is the
                // graceful fallback.
                let stats = self.layers.get(self.cursor).cloned();
                self.cursor += 1;
                stats.unwrap_or_else(live)
            }
        }
    }

    /// Called by networks at the start of a forward pass.
    pub(crate) fn begin(&mut self) {
        self.cursor = 0;
    }
}

fn channel_stats(x: &Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let [b, c, h, w] = x.dims();
    let (var, mean) = x.clone().reshape([b, c, h * w]).var_mean_bias(2);
    (mean.reshape([b, c, 1, 1]), var.reshape([b, c, 1, 1]))
}

/// Instance normalisation with a learnable per-channel scale and shift.
#[derive(Module, Debug)]
pub struct StatNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
}

impl StatNorm {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
        }
    }

    /// Add `d_gamma` and `d_beta` (each `[channels]`) to the scale and shift for good.
    pub(crate) fn shift_affine(&mut self, d_gamma: Tensor<1>, d_beta: Tensor<1>) {
        self.gamma = self.gamma.clone().map(|g| g + d_gamma);
        self.beta = self.beta.clone().map(|b| b + d_beta);
    }

    /// The parameters themselves `(gamma, beta)` (their ids name their gradients).
    #[cfg(any(not(target_arch = "wasm32"), feature = "learn"))] // the CPU training path only
    pub(crate) fn params(&self) -> (&Param<Tensor<1>>, &Param<Tensor<1>>) {
        (&self.gamma, &self.beta)
    }

    /// The learnt per-channel scale and shift `(gamma, beta)`.
    pub(crate) fn affine(&self) -> (Tensor<1>, Tensor<1>) {
        (self.gamma.val(), self.beta.val())
    }

    pub fn forward(&self, x: Tensor<4>, stats: &mut NormStats) -> Tensor<4> {
        self.forward_offset(x, stats, None)
    }

    /// [`Self::forward`] with per-sample offsets `(d_gamma, d_beta)`, each `[batch, channels, 1,
    /// 1]`, added to the scale and shift (a multi-style network's styles).
    pub fn forward_offset(
        &self,
        x: Tensor<4>,
        stats: &mut NormStats,
        offsets: Option<(Tensor<4>, Tensor<4>)>,
    ) -> Tensor<4> {
        let (mean, var) = stats.stats_for(&x);
        let [channels] = self.gamma.dims();
        let mut gamma = self.gamma.val().reshape([1, channels, 1, 1]);
        let mut beta = self.beta.val().reshape([1, channels, 1, 1]);
        if let Some((d_gamma, d_beta)) = offsets {
            gamma = gamma + d_gamma;
            beta = beta + d_beta;
        }
        // (x - mean) / sqrt(var + eps) * gamma + beta, folded into one scale and one shift per
        // channel: two passes over the activations instead of four.
        let scale = gamma / (var + EPSILON).sqrt();
        let shift = beta - mean * scale.clone();
        x * scale + shift
    }
}
