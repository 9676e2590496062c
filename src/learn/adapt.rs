//! A new style for an existing network, learnt in minutes: only the new style's offsets of the
//! norms' scales and shifts train (a few thousand numbers), while the shared convolutions stay
//! fixed (Dumoulin, Shlens and Kudlur 2017 showed this converges far faster than training a
//! network). The loss is the styles mode's without its discriminator: VGG19 content (relu3_1,
//! relu4_1) to the photo, Gram matrices (relu1_1…relu4_1) to the style images' mean ones (both
//! relative distances), and total variation. Platform-neutral like the rest of `learn`: `portraitist learn` runs it
//! natively, and the page can run it in the browser.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::step::{
    Emphasis, Losses, StepError, mean_grams, read_losses_async, total_variation, vgg_terms,
};
use crate::engine::cpu::CpuVgg;
use crate::model::{Generator, NormStats, Vgg19};

/// A style's offsets, one `[channels]` row per norm layer: `(gamma, beta)`.
pub type Rows = crate::model::StyleRows;

/// The trainable part: one `[channels]` offset of the scale and of the shift per norm layer.
#[derive(Module, Debug)]
pub struct StyleOffsets {
    gamma: Vec<Param<Tensor<1>>>,
    beta: Vec<Param<Tensor<1>>>,
}

/// How a new style is learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptConfig {
    pub steps: u64,
    /// Content crops per step.
    pub batch: usize,
    /// Side of the content crops (a multiple of 4).
    pub size: usize,
    pub learning_rate: f64,
    /// Weights of the three terms; the defaults are the styles mode's (see its config).
    pub content_weight: f32,
    pub style_weight: f32,
    pub tv_weight: f32,
    pub seed: u64,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            steps: 400,
            batch: 2,
            size: 128,
            learning_rate: 0.01,
            content_weight: 1.0,
            style_weight: 3.0,
            tv_weight: 0.3,
            seed: 1,
        }
    }
}

/// Learns one new style of `generator`; feed it content batches with [`Self::step`].
pub struct StyleLearner {
    /// The network as it was given, where it was given (the CPU): the learnt network is built
    /// from it, never read back from the device (a GPU in the browser cannot read synchronously).
    base: Generator,
    generator: Generator,
    offsets: StyleOffsets,
    optimizer: ModuleOptimizer,
    vgg: Vgg19,
    /// On the CPU: VGG19 on our own CPU path (see [`vgg_terms`]).
    cpu_vgg: Option<CpuVgg>,
    /// The style images' mean Gram matrix per VGG19 layer: the target.
    grams: Vec<Tensor<3>>,
    config: AdaptConfig,
    device: Device,
    step: u64,
}

impl StyleLearner {
    /// `style_images`: each `[1, 3, h, w]` in [-1, 1], any sizes. `device` must be an autodiff
    /// device (`device.autodiff()`). The style starts from `start`'s offsets (a style the
    /// network has, to go on learning it), else as the network's base (zero offsets).
    pub fn new(
        generator: &Generator,
        style_images: &[Tensor<4>],
        vgg: Vgg19,
        config: AdaptConfig,
        start: Option<&Rows>,
        device: &Device,
    ) -> Self {
        let base = generator.clone();
        let generator = base.clone().to_device(device).no_grad();
        let vgg = vgg.to_device(device).no_grad();
        let channels = generator.config().norm_channels();
        let init = |k: usize, rows: Option<&Vec<Vec<f32>>>| match rows {
            Some(rows) => Param::from_tensor(Tensor::<1>::from_data(
                burn::tensor::TensorData::new(rows[k].clone(), [channels[k]]),
                device,
            )),
            None => Initializer::Zeros.init([channels[k]], device),
        };
        let offsets = StyleOffsets {
            gamma: (0..channels.len())
                .map(|k| init(k, start.map(|s| &s.0)))
                .collect(),
            beta: (0..channels.len())
                .map(|k| init(k, start.map(|s| &s.1)))
                .collect(),
        };
        let grams = mean_grams(
            &vgg,
            style_images
                .iter()
                .map(|image| image.clone().to_device(device)),
        );
        let cpu_vgg =
            (device.clone().without_autodiff() == Device::flex()).then(|| CpuVgg::new(&vgg));
        Self {
            base,
            generator,
            offsets,
            cpu_vgg,
            optimizer: AdamConfig::new().with_beta_1(0.9).init(),
            vgg,
            grams,
            config,
            device: device.clone(),
            step: 0,
        }
    }

    pub fn config(&self) -> &AdaptConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// One step on a batch of content photos `[batch, 3, size, size]` in [-1, 1]; returns the
    /// losses named `content`, `style`, `tv`. Async for a GPU in the browser, where reading the
    /// losses back waits for the device; on the CPU it is ready at once.
    pub async fn step(&mut self, content: Tensor<4>) -> Result<Losses, StepError> {
        let content = content.to_device(&self.device);
        let offsets = &self.offsets;
        let offset = |k: usize| {
            let row = |p: &Param<Tensor<1>>| {
                let [c] = p.dims();
                p.val().reshape([1, c, 1, 1])
            };
            Some((row(&offsets.gamma[k]), row(&offsets.beta[k])))
        };
        let fake = self
            .generator
            .forward_offsets(content.clone(), &offset, &mut NormStats::live());
        let [content_loss, style_loss, vgg_term] = vgg_terms(
            &self.vgg,
            self.cpu_vgg.as_ref(),
            &fake,
            content,
            &self.grams,
            [self.config.content_weight, self.config.style_weight],
            Emphasis::default(),
            &self.device,
        );
        let tv = total_variation(&fake);
        let loss = vgg_term + tv.clone() * self.config.tv_weight;
        let mut grads = loss.backward();
        let grads = GradientsParams::from_module(&mut grads, &self.offsets);
        let lr = self.config.learning_rate;
        self.offsets = self.optimizer.step(lr, self.offsets.clone(), grads);
        self.step += 1;
        read_losses_async(vec![
            ("content", content_loss),
            ("style", style_loss),
            ("tv", tv),
        ])
        .await
    }

    /// The learnt offsets, one row per norm layer: `(gamma, beta)`, read back in one go.
    pub async fn rows(&self) -> Result<Rows, StepError> {
        let params = self.offsets.gamma.iter().chain(&self.offsets.beta);
        let flat: Vec<Tensor<1>> = params.map(|p| p.val().detach()).collect();
        let values = Tensor::cat(flat, 0)
            .into_data_async()
            .await
            .map_err(|e| StepError::ReadBack(e.to_string()))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| StepError::ReadBack(format!("{e:?}")))?;
        let channels = self.generator.config().norm_channels();
        let mut rest = values.as_slice();
        let mut take = |c: usize| {
            let (row, tail) = rest.split_at(c);
            rest = tail;
            row.to_vec()
        };
        let gamma = channels.iter().map(|&c| take(c)).collect();
        let beta = channels.iter().map(|&c| take(c)).collect();
        Ok((gamma, beta))
    }

    /// The network, on `device`, with the learnt style as style `row` (`None`: added as the
    /// last style).
    pub async fn generator(
        &self,
        device: &Device,
        row: Option<usize>,
    ) -> Result<Generator, StepError> {
        let (gamma, beta) = self.rows().await?;
        let generator = self.base.clone().to_device(device);
        Ok(match row {
            Some(s) => generator.with_style_row(s, &gamma, &beta),
            None => generator.with_new_style(&gamma, &beta),
        })
    }
}
