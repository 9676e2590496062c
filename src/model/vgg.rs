//! VGG19 features (up to relu4_1) for perceptual and style losses, loaded from the file that
//! `scripts/convert-vgg19.py` writes (see there for the format and the weights' origin).

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

const MAGIC: &[u8] = b"PTVGG19\n";
/// (name, in, out) of every layer the file must hold, in order.
const LAYERS: [(&str, usize, usize); 9] = [
    ("block1_conv1", 3, 64),
    ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128),
    ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256),
    ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256),
    ("block3_conv4", 256, 256),
    ("block4_conv1", 256, 512),
];
/// Caffe's BGR channel means, on 0..255 pixel values.
const BGR_MEAN: [f32; 3] = [103.939, 116.779, 123.68];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a VGG19 weights file from scripts/convert-vgg19.py: {0}")]
pub struct VggError(String);

/// VGG19's first four blocks, frozen.
#[derive(Module, Debug)]
pub struct Vgg19 {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
}

/// Activations after relu1_1, relu2_1, relu3_1 and relu4_1.
pub struct VggFeatures(pub Vec<Tensor<4>>);

impl Vgg19 {
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, VggError> {
        let mut r = ByteReader { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(VggError("wrong magic bytes".into()));
        }
        if r.u32()? as usize != LAYERS.len() {
            return Err(VggError("unexpected layer count".into()));
        }
        let mut convs = Vec::with_capacity(LAYERS.len());
        for (name, cin, cout) in LAYERS {
            let len = r.u32()? as usize;
            if r.take(len)? != name.as_bytes() {
                return Err(VggError(format!("expected layer {name}")));
            }
            let shape = [r.u32()?, r.u32()?, r.u32()?, r.u32()?].map(|v| v as usize);
            if shape != [cout, cin, 3, 3] {
                return Err(VggError(format!("{name} has shape {shape:?}")));
            }
            let table: Vec<f32> = (0..256).map(|_| r.f32()).collect::<Result<_, _>>()?;
            let n = cout * cin * 9;
            let weights: Vec<f32> = r.take(n)?.iter().map(|&i| table[usize::from(i)]).collect();
            let bias: Vec<f32> = (0..cout).map(|_| r.f32()).collect::<Result<_, _>>()?;
            let mut conv = Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device);
            conv.weight =
                Param::from_tensor(Tensor::from_data(TensorData::new(weights, shape), device));
            conv.bias = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(bias, [cout]),
                device,
            )));
            convs.push(conv);
        }
        if r.at != bytes.len() {
            return Err(VggError("trailing bytes".into()));
        }
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        Ok(Self { convs, pool }.no_grad())
    }

    /// The nine convolutions, in order (for [`crate::engine::cpu::CpuVgg`]).
    pub fn convs(&self) -> &[Conv2d] {
        &self.convs
    }

    /// Features of RGB images in [-1, 1] (`[batch, 3, h, w]`).
    pub fn features(&self, images: Tensor<4>) -> VggFeatures {
        let [b, _, h, w] = images.dims();
        let device = images.device();
        let pixels = (images + 1.0) * 127.5;
        let bgr = pixels.flip([1]);
        let mean = Tensor::<1>::from_data(TensorData::new(BGR_MEAN.to_vec(), [3]), &device)
            .reshape([1, 3, 1, 1]);
        let mut x = bgr - mean.expand([b, 3, h, w]);
        let mut out = Vec::with_capacity(4);
        for (i, conv) in self.convs.iter().enumerate() {
            x = relu(conv.forward(x));
            // relu1_1, relu2_1, relu3_1, relu4_1 are the first layer of each block.
            if matches!(i, 0 | 2 | 4 | 8) {
                out.push(x.clone());
            }
            // Pool after the last conv of blocks 1, 2, 3.
            if matches!(i, 1 | 3 | 7) {
                x = self.pool.forward(x);
            }
        }
        VggFeatures(out)
    }
}

/// Gram matrices `[batch, c, c]` of features, normalised by their size.
pub fn gram(features: &Tensor<4>) -> Tensor<3> {
    let [b, c, h, w] = features.dims();
    let f = features.clone().reshape([b, c, h * w]);
    f.clone().matmul(f.swap_dims(1, 2)) / ((c * h * w) as f64)
}

struct ByteReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl ByteReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], VggError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| VggError("truncated".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, VggError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn f32(&mut self) -> Result<f32, VggError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}
