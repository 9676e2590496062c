//! Several styles in one generator: conditional instance normalisation (Dumoulin, Shlens and
//! Kudlur, "A Learned Representation for Artistic Style", 2017). The convolutions are shared;
//! each style has its own offsets of every norm layer's scale and shift, added to the layer's
//! base values. A mix of styles is a convex combination of their offsets: styles blend in
//! norm-parameter space, and a new style is learnt by fitting only its offsets.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, TensorData};

/// One style's offsets, `(gamma, beta)`: a `[channels]` row per norm layer, in the layer table's
/// order.
pub type StyleRows = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Each style's scale and shift offsets, one `[styles, channels]` table per norm layer (in the
/// layer table's order). Offsets start at zero: every style starts as the base network.
#[derive(Module, Debug)]
pub struct StyleTable {
    pub(crate) gamma: Vec<Param<Tensor<2>>>,
    pub(crate) beta: Vec<Param<Tensor<2>>>,
}

impl StyleTable {
    pub fn new(styles: usize, channels: &[usize], device: &Device) -> Self {
        let zeros = |&c: &usize| Initializer::Zeros.init([styles, c], device);
        Self {
            gamma: channels.iter().map(zeros).collect(),
            beta: channels.iter().map(zeros).collect(),
        }
    }

    /// The table with one more row per layer: `gamma[k]` and `beta[k]` for norm layer `k`.
    pub fn push(self, gamma: &[Vec<f32>], beta: &[Vec<f32>]) -> Self {
        self.map_rows(gamma, beta, |table, row| Tensor::cat(vec![table, row], 0))
    }

    /// The table with style `s`'s row of every layer replaced by `gamma[k]` and `beta[k]`.
    pub fn with_row(self, s: usize, gamma: &[Vec<f32>], beta: &[Vec<f32>]) -> Self {
        self.map_rows(gamma, beta, |table, row| {
            let [styles, channels] = table.dims();
            assert!(s < styles, "style {s} of {styles}");
            table.slice_assign([s..s + 1, 0..channels], row)
        })
    }

    /// Each layer's table, changed by `f` with that layer's `[1, channels]` row.
    fn map_rows(
        self,
        gamma: &[Vec<f32>],
        beta: &[Vec<f32>],
        f: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
    ) -> Self {
        assert_eq!(gamma.len(), self.gamma.len(), "a row for every norm layer");
        assert_eq!(beta.len(), self.beta.len(), "a row for every norm layer");
        let map = |tables: Vec<Param<Tensor<2>>>, rows: &[Vec<f32>]| {
            tables
                .into_iter()
                .zip(rows)
                .map(|(table, row)| {
                    let [_, channels] = table.dims();
                    assert_eq!(row.len(), channels, "a style row has one value per channel");
                    let row = Tensor::<2>::from_data(
                        TensorData::new(row.clone(), [1, channels]),
                        &table.device(),
                    );
                    Param::from_tensor(f(table.val(), row))
                })
                .collect()
        };
        Self {
            gamma: map(self.gamma, gamma),
            beta: map(self.beta, beta),
        }
    }

    /// Style `s`'s offsets, one `[channels]` row per norm layer: `(gamma, beta)`. Reads the
    /// tables back: for tables on the CPU (a wasm GPU device cannot read synchronously).
    pub fn row(&self, s: usize) -> StyleRows {
        let read = |tables: &[Param<Tensor<2>>]| {
            tables
                .iter()
                .map(|table| {
                    let [_, channels] = table.dims();
                    table
                        .val()
                        .slice([s..s + 1, 0..channels])
                        .into_data()
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .unwrap_or_default()
                })
                .collect()
        };
        (read(&self.gamma), read(&self.beta))
    }

    /// Number of styles.
    pub fn len(&self) -> usize {
        self.gamma.first().map_or(0, |g| g.dims()[0])
    }

    /// Whether the table holds no style.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Norm layer `k`'s offsets for each sample's mix (`mix`: `[batch, styles]`), each shaped
    /// `[batch, channels, 1, 1]`.
    pub(crate) fn offsets(&self, k: usize, mix: &Tensor<2>) -> (Tensor<4>, Tensor<4>) {
        let [batch, _] = mix.dims();
        let per_sample = |table: &Param<Tensor<2>>| {
            let [_, channels] = table.dims();
            mix.clone()
                .matmul(table.val())
                .reshape([batch, channels, 1, 1])
        };
        (per_sample(&self.gamma[k]), per_sample(&self.beta[k]))
    }
}
