//! Learning one new style for a pack, from images in memory: what `portraitist learn` and the
//! page's "Learn a style" both run, so that the same seed gives the same loss curve on either.
//! A [`Lesson`] holds the [`StyleLearner`], the content photos and the crop generator; each
//! [`Lesson::step`] cuts a batch of random crops from the photos and takes one step, and
//! [`Lesson::pack`] is the base pack with the learnt style added (in memory; the CLI writes it to
//! a folder, the page to an archive). A lesson can also go on learning a style the pack already
//! has (one learnt before, in the page or by `learn`): it starts from that style's offsets and
//! replaces them. The methods that read the device back are async (WebGPU in the browser reads
//! asynchronously); on the CPU they are ready at once, and native callers block on them.

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::{self, FilterType};

use super::adapt::{AdaptConfig, Rows, StyleLearner};
use super::step::{Losses, StepError};
use crate::model::{Generator, Vgg19, VggError};
use crate::pack::{DataSource, PackError, StyleInfo, StylePack, preview};
use crate::rng::Rng;
use crate::stylize::{RenderError, Stylizer, fit_within};

/// Why a lesson cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("the VGG19 weights do not read: {0}")]
    Vgg(#[from] VggError),
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("the preview failed: {0}")]
    Preview(#[from] RenderError),
    #[error("the {name} loss became {value} at step {step}: try fewer steps or other images")]
    NotFinite {
        name: &'static str,
        value: f32,
        step: u64,
    },
}

/// The new style's name and where its images came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewStyle {
    /// a–z, 0–9, `-`, `_`.
    pub id: String,
    /// Empty when going on with a style: its own title and description are kept.
    pub title: String,
    pub description: String,
    /// What the style images were (a file or folder name), and their licence.
    pub source: String,
    pub licence: String,
    /// Go on learning the pack's style `id` (one it gained by learning), not add a new one.
    pub continues: bool,
}

/// One new style being learnt for a pack.
pub struct Lesson {
    base: StylePack,
    style: NewStyle,
    learner: StyleLearner,
    content: Vec<RgbImage>,
    rng: Rng,
    device: Device,
    /// The base pack's styles (a one-style pack's own look as its first one).
    styles: Vec<StyleInfo>,
    style_images: usize,
    /// The style's row in the network's style table, when going on with one the pack has.
    row: Option<usize>,
}

impl Lesson {
    /// `style` joins `base`'s styles; `style_images`: the painting or photos in the look (1–20);
    /// `content`: photos whose content the style must keep (at least one; crops of the shorter
    /// side of one smaller than `config.size` are the whole side). `vgg19`: the bytes of
    /// `scripts/convert-vgg19.py`'s file. `device` must be an autodiff device.
    pub fn new(
        base: StylePack,
        style: NewStyle,
        style_images: &[RgbImage],
        content: Vec<RgbImage>,
        vgg19: &[u8],
        config: AdaptConfig,
        device: &Device,
    ) -> Result<Self, LessonError> {
        if style_images.is_empty() || style_images.len() > 20 {
            return Err(LessonError::Input(format!(
                "a style is learnt from 1 to 20 images, not {}",
                style_images.len()
            )));
        }
        if content.is_empty() {
            return Err(LessonError::Input(
                "learning a style needs at least one content photo".into(),
            ));
        }
        if !(32..=1024).contains(&config.size) || !config.size.is_multiple_of(4) {
            return Err(LessonError::Input(format!(
                "the crop size {} must be a multiple of 4 between 32 and 1024",
                config.size
            )));
        }
        if config.batch == 0 {
            return Err(LessonError::Input("the batch must be at least 1".into()));
        }
        let generator = base.generator(&Device::flex())?;
        let mut styles = base.manifest.styles.clone();
        if styles.is_empty() {
            let m = &base.manifest;
            styles.push(StyleInfo {
                id: m.id.clone(),
                title: m.title.clone(),
                description: m.description.clone(),
                sources: m.training.sources.clone(),
                preview: None,
            });
        }
        let found = styles.iter().position(|s| s.id == style.id);
        let ids = || {
            styles
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let row = match (found, style.continues) {
            (Some(_), false) => {
                return Err(LessonError::Input(format!(
                    "`{}` already has a style `{}`: choose another name (or go on learning it)",
                    base.manifest.id, style.id
                )));
            }
            (None, true) => {
                return Err(LessonError::Input(format!(
                    "`{}` has no style `{}` to go on learning; its styles: {}",
                    base.manifest.id,
                    style.id,
                    ids()
                )));
            }
            (Some(s), true) if base.manifest.styles.is_empty() => {
                debug_assert_eq!(s, 0);
                return Err(LessonError::Input(format!(
                    "`{}` is a one-style pack: its look is its whole network, not a learnt style \
                     to go on with; add a new style instead",
                    base.manifest.id
                )));
            }
            (Some(s), true) => Some(s),
            (None, false) => None,
        };
        let start: Option<Rows> = match row {
            Some(s) => Some(generator.style_row(s).ok_or_else(|| {
                LessonError::Input(format!(
                    "`{}` lists style `{}` but its network has no row for it",
                    base.manifest.id, style.id
                ))
            })?),
            None => None,
        };
        if !crate::pack::valid_id(&style.id) {
            return Err(LessonError::Input(format!(
                "`{}` is not a style id (a–z, 0–9, `-`, `_`)",
                style.id
            )));
        }
        let vgg = Vgg19::from_bytes(vgg19, device)?;
        // Style images at about twice the crop side: their Gram matrices then describe strokes
        // at the scale the network sees them.
        let targets: Vec<_> = style_images
            .iter()
            .map(|image| {
                let image = fit_within(image, 2 * config.size as u32);
                to_tensor(std::slice::from_ref(&image), device)
            })
            .collect();
        let rng = Rng::new(config.seed);
        let learner = StyleLearner::new(&generator, &targets, vgg, config, start.as_ref(), device);
        Ok(Self {
            base,
            style,
            learner,
            content,
            rng,
            device: device.clone(),
            styles,
            style_images: style_images.len(),
            row,
        })
    }

    /// The style being learnt.
    pub fn style_id(&self) -> &str {
        &self.style.id
    }

    pub fn config(&self) -> &AdaptConfig {
        self.learner.config()
    }

    pub fn steps_done(&self) -> u64 {
        self.learner.steps_done()
    }

    /// One step on a batch of random crops of the content photos; the losses `content`,
    /// `style`, `tv`. A loss that is not finite stops the lesson with an error.
    pub async fn step(&mut self) -> Result<Losses, LessonError> {
        let side = self.config().size as u32;
        let crops: Vec<_> = (0..self.config().batch)
            .map(|_| {
                let image = &self.content[self.rng.below(self.content.len())];
                Crop::random(image, side, &mut self.rng).apply(image, side)
            })
            .collect();
        let losses = self.learner.step(to_tensor(&crops, &self.device)).await?;
        if let Some(&(name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) {
            return Err(LessonError::NotFinite {
                name,
                value,
                step: self.steps_done(),
            });
        }
        Ok(losses)
    }

    /// The network with the style learnt so far (the last style, or the row it goes on with),
    /// on the CPU.
    pub async fn generator(&self) -> Result<Generator, LessonError> {
        Ok(self.learner.generator(&Device::flex(), self.row).await?)
    }

    /// The style alone, as it is now, ready to stylize photos on the CPU (the live preview).
    pub async fn stylizer(&self) -> Result<Stylizer, LessonError> {
        let generator = self.generator().await?;
        let mut config = generator.config();
        let count = config.style_count();
        let mut one = vec![0.0; count];
        one[self.row.unwrap_or(count - 1)] = 1.0;
        let generator = generator.with_style(&one);
        config.styles = None;
        Ok(Stylizer::new(
            generator,
            config,
            self.base.manifest.normalization,
            Device::flex(),
        ))
    }

    /// The style's preview picture, as `export` makes them (the built-in portrait | the
    /// portrait in the style): named in [`Self::pack`]'s manifest as `preview-STYLE.jpg`.
    pub async fn preview(&self) -> Result<RgbImage, LessonError> {
        let stylizer = self.stylizer().await?;
        Ok(preview::render(&preview::portrait(), &stylizer).await?)
    }

    /// The base pack with the new style added as its last style (or the style it went on with
    /// updated in place), stored at the base pack's precision, as the pack `id`, titled
    /// "BASE + STYLE" (a continued style keeps the base's title). It records the shipped pack it
    /// builds on (the base's own base, for a base that was learnt too).
    pub async fn pack(&self, id: &str) -> Result<StylePack, LessonError> {
        let (base, style) = (&self.base, &self.style);
        let generator = self.generator().await?;
        let mut manifest = base.manifest.clone();
        manifest.id = id.into();
        if self.row.is_none() {
            manifest.title = format!("{} + {}", base.manifest.title, style.title);
        }
        manifest.based_on = Some(
            base.manifest
                .based_on
                .clone()
                .unwrap_or_else(|| base.manifest.id.clone()),
        );
        manifest.generator = Some(generator.config());
        manifest.evaluation = Default::default();
        let mut styles = self.styles.clone();
        let source = DataSource {
            name: style.source.clone(),
            licence: style.licence.clone(),
            images: self.style_images as u64,
        };
        match self.row {
            Some(s) => {
                let info = &mut styles[s];
                if !style.title.is_empty() {
                    info.title = style.title.clone();
                }
                if !style.description.is_empty() {
                    info.description = style.description.clone();
                }
                if !info.sources.contains(&source) {
                    info.sources.push(source);
                }
                info.preview = Some(format!("preview-{}.jpg", style.id));
            }
            None => styles.push(StyleInfo {
                id: style.id.clone(),
                title: style.title.clone(),
                description: style.description.clone(),
                sources: vec![source],
                preview: Some(format!("preview-{}.jpg", style.id)),
            }),
        }
        manifest.styles = styles;
        let precision = base.manifest.weights.dtype;
        Ok(StylePack::from_network(manifest, &generator, precision)?)
    }
}

/// How one training example is cut from a photo.
#[derive(Debug, Clone, Copy)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub side: u32,
    pub flip: bool,
}

impl Crop {
    /// A random square covering between `size` pixels and the whole shorter side, anywhere.
    pub fn random(image: &RgbImage, size: u32, rng: &mut Rng) -> Self {
        let short = image.width().min(image.height());
        let side = if short <= size {
            short
        } else {
            size + rng.below((short - size + 1) as usize) as u32
        };
        let x = rng.below((image.width() - side + 1) as usize) as u32;
        let y = rng.below((image.height() - side + 1) as usize) as u32;
        Self {
            x,
            y,
            side,
            flip: rng.coin(),
        }
    }

    /// The largest centred square, unflipped (for fixed sample grids).
    pub fn center(image: &RgbImage) -> Self {
        let side = image.width().min(image.height());
        Self {
            x: (image.width() - side) / 2,
            y: (image.height() - side) / 2,
            side,
            flip: false,
        }
    }

    pub fn apply(&self, image: &RgbImage, size: u32) -> RgbImage {
        let square = imageops::crop_imm(image, self.x, self.y, self.side, self.side).to_image();
        let mut out = if self.side == size {
            square
        } else {
            imageops::resize(&square, size, size, FilterType::Triangle)
        };
        if self.flip {
            imageops::flip_horizontal_in_place(&mut out);
        }
        out
    }
}

/// Stack same-sized RGB images into a `[batch, 3, h, w]` tensor in [-1, 1].
pub fn to_tensor(images: &[RgbImage], device: &Device) -> Tensor<4> {
    let (w, h) = images[0].dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; images.len() * 3 * plane];
    for (b, image) in images.iter().enumerate() {
        for (i, p) in image.pixels().enumerate() {
            for c in 0..3 {
                data[(b * 3 + c) * plane + i] = f32::from(p.0[c]) / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [images.len(), 3, h as usize, w as usize]),
        device,
    )
}
