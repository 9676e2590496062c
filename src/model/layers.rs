//! The rows of the generator's layer table ([`crate::GeneratorConfig::layers`]): one
//! convolution each, with what comes before and after it. Serialised into the SafeTensors export,
//! where the PyTorch reference reads them.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// One convolution of the generator and what comes with it, in forward order: reflect padding
/// (after an optional upsampling), the convolution, an optional instance norm, the activation,
/// and where a residual connection starts or ends. See [`GeneratorConfig::layers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Module path of the convolution's weights (`stem.conv`, `blocks.0.conv`, `head`): its
    /// tensors are `<conv>.weight` and `<conv>.bias` in the exported SafeTensors file.
    pub conv: String,
    /// Module path of the instance norm after it (`<norm>.gamma`, `<norm>.beta`), if any.
    pub norm: Option<String>,
    /// Input channels, the input image's included when `concat_input`.
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Reflect padding on each side, before the (unpadded) convolution.
    pub pad: usize,
    /// Nearest-neighbour ×2 upsampling before the padding.
    pub upsample: bool,
    /// The network's input image is appended to this layer's input channels.
    pub concat_input: bool,
    pub activation: Activation,
    pub residual: Residual,
}

/// What follows a layer's convolution (and norm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    None,
    Relu,
    Tanh,
}

/// A layer's part in a residual connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Residual {
    None,
    /// This layer's input is kept, to be added back later.
    Open,
    /// The kept input is added to this layer's output (after its activation).
    Close,
}

impl Layer {
    pub(crate) fn init_conv(&self, device: &Device) -> Conv2d {
        Conv2dConfig::new([self.cin, self.cout], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Valid)
            .init(device)
    }
}
