//! Every training hyper-parameter, with defaults from the CycleGAN and pix2pix papers and the
//! seeds (Adam, lr 2e-4, betas 0.5/0.999). Read from TOML; the run folder keeps a copy.

use serde::{Deserialize, Serialize};

use crate::model::{
    DiscriminatorConfig, GeneratorConfig, ImageDiscriminatorConfig, LatentGeneratorConfig, Preset,
};

/// How generated images are scored against real ones.
#[cfg_attr(
    all(feature = "cli", not(target_arch = "wasm32")),
    derive(clap::ValueEnum)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdversarialLoss {
    /// Least squares (LSGAN): stable, the CycleGAN default.
    Lsgan,
    /// Binary cross-entropy on logits, the classic GAN loss of the seeds (non-saturating for
    /// the generator: it maximises log D(G(z))).
    Bce,
    /// Hinge loss (SNGAN/BigGAN): the discriminator pushes real scores above 1 and fake ones
    /// below -1; the generator raises its scores.
    Hinge,
}

/// Which pairing of the two folders the run learns from.
#[cfg_attr(
    all(feature = "cli", not(target_arch = "wasm32")),
    derive(clap::ValueEnum)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Two unrelated collections (portraits, style photos): CycleGAN with two generators.
    Unpaired,
    /// Before/after pairs with matching file names: pix2pix (adversarial + L1).
    Paired,
    /// One folder of portraits: the textbook GAN, noise z → new portrait.
    Noise,
    /// Content photos and a folder per painterly style: one multi-style network (conditional
    /// instance norm) learnt with VGG19 content and Gram style losses, a PatchGAN with a head
    /// per style, and a total-variation term; each sample of a batch gets its own style.
    Styles,
}

/// Settings given on a command line, each replacing the config's own when present.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// A preset also drops an explicit `generator` shape, so the preset decides the size.
    pub preset: Option<Preset>,
    pub size: Option<usize>,
    pub steps: Option<u64>,
    pub batch: Option<usize>,
    pub seed: Option<u64>,
    pub adversarial: Option<AdversarialLoss>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub mode: Mode,
    /// Generator size; `generator` below overrides it when set.
    pub preset: Preset,
    pub generator: Option<GeneratorConfig>,
    /// Feed the input photo to the generator's last convolution too (full-resolution skip):
    /// sharper results for photographic looks learned from pairs.
    pub input_skip: bool,
    /// Discriminator width (first layer's channels) and stride-2 layers.
    pub discriminator_width: usize,
    pub discriminator_layers: usize,
    /// Square crop side in pixels (a multiple of 4).
    pub size: usize,
    pub batch: usize,
    pub steps: u64,
    /// Noise mode: length of the noise vector z.
    pub latent_size: usize,
    /// Noise mode: decay of the generator weights' moving average that samples and exports use.
    pub ema_decay: f32,
    /// Noise mode: weight of the mode-seeking term (MSGAN) that rewards different noise giving
    /// different portraits; 0 turns it off.
    pub mode_seeking_weight: f32,
    pub seed: u64,
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Fraction of the run after which the learning rate decays linearly to zero.
    pub decay_from: f64,
    pub adversarial: AdversarialLoss,
    /// Weight of the cycle-consistency L1 loss (unpaired).
    pub cycle_weight: f32,
    /// Weight of the identity L1 loss, relative to `cycle_weight` (unpaired).
    pub identity_weight: f32,
    /// Weight of the L1 loss to the target (paired).
    pub l1_weight: f32,
    /// Weight of the VGG19 perceptual loss: feature L1 (relu1_1…relu4_1) between the output and
    /// the photo it came from (unpaired) or its target (paired). 0 turns it off.
    pub perceptual_weight: f32,
    /// Weight of the VGG19 style loss: Gram-matrix distance between output and style photos
    /// (unpaired) or targets (paired). 0 turns it off.
    pub style_weight: f32,
    /// VGG19 weights for those losses, as written by `scripts/convert-vgg19.py`.
    pub vgg19: std::path::PathBuf,
    /// Weight of the adversarial term against the others (styles mode; the other modes weigh
    /// it 1).
    pub adversarial_weight: f32,
    /// Weight of the total-variation term, the mean absolute difference of neighbouring output
    /// pixels (styles mode): it smooths speckle.
    pub tv_weight: f32,
    /// Styles mode: the styles' ids, in the order of the network's style table (the style
    /// folder's subfolders; filled in when the run starts).
    pub styles: Vec<String>,
    /// Styles mode: the style table (each style's norm offsets) learns at this multiple of
    /// `learning_rate`. Each style's offsets only learn on its own samples, and at the shared
    /// rate the styles stay alike for hundreds of steps while the shared convolutions learn an
    /// average look.
    pub style_table_lr_factor: f64,
    /// Styles mode: a multiple of `style_weight` for some styles, by id (the others: 1), for
    /// looks whose texture the shared network learns more slowly than the rest, e.g.
    /// `style_scales = { halftone = 2.0 }`. A sample's style term is weighed by its mix of these.
    pub style_scales: std::collections::BTreeMap<String, f32>,
    /// Styles mode: where the photo shows skin ([`super::losses::skin_map`]), its content term
    /// weighs `1 +` this much, so faces keep their features and stay clear of the style's
    /// blotches while the rest takes the style. 0 weighs every pixel alike.
    pub skin_content_weight: f32,
    /// Light colour jitter on content photos: ± this fraction of brightness, contrast, saturation.
    pub jitter: f32,
    /// Cached training images keep at most this multiple of `size` on their shorter side, so
    /// random crops can zoom in as well as cover the whole face.
    pub cache_scale: f32,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (oldest removed first).
    pub keep_checkpoints: usize,
    /// Content images shown in every sample grid.
    pub sample_count: usize,
    /// A new run starts from this pack's generator (its folder) instead of random weights: a
    /// shipped network trained further, or on new data. Its shape and (styles mode) its styles
    /// must be the run's; the discriminator and the optimisers start afresh.
    pub init: Option<std::path::PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Unpaired,
            preset: Preset::Small,
            generator: None,
            input_skip: false,
            discriminator_width: 32,
            discriminator_layers: 3,
            size: 128,
            batch: 1,
            steps: 5000,
            latent_size: 128,
            ema_decay: 0.999,
            mode_seeking_weight: 1.0,
            seed: 1,
            learning_rate: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            decay_from: 0.5,
            adversarial: AdversarialLoss::Lsgan,
            cycle_weight: 10.0,
            identity_weight: 0.5,
            l1_weight: 100.0,
            perceptual_weight: 0.0,
            style_weight: 0.0,
            vgg19: "data/vgg19/vgg19.bin".into(),
            adversarial_weight: 1.0,
            tv_weight: 0.0,
            styles: Vec::new(),
            style_table_lr_factor: 10.0,
            style_scales: Default::default(),
            skin_content_weight: 0.0,
            jitter: 0.1,
            cache_scale: 2.0,
            log_every: 10,
            sample_every: 250,
            checkpoint_every: 250,
            keep_checkpoints: 3,
            sample_count: 4,
            init: None,
        }
    }
}

/// Why a training config cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{0}")]
    Parse(String),
    /// Well-formed, but a value is out of its range.
    #[error("{0}")]
    Invalid(String),
}

/// Whether the PatchGAN ([`crate::model::discriminator`]: 4×4 convolutions padded by 1, `layers`
/// of stride 2, then two of stride 1) leaves at least one score on a `size` crop.
fn patch_fits(size: usize, layers: usize) -> bool {
    let mut side = size;
    for _ in 0..layers {
        if side < 2 {
            return false;
        }
        side = (side - 2) / 2 + 1;
    }
    side >= 3
}

impl TrainConfig {
    /// This config with the command line's settings in place of its own.
    pub fn with_overrides(mut self, o: &ConfigOverrides) -> Self {
        if let Some(preset) = o.preset {
            self.preset = preset;
            self.generator = None;
        }
        self.size = o.size.unwrap_or(self.size);
        self.steps = o.steps.unwrap_or(self.steps);
        self.batch = o.batch.unwrap_or(self.batch);
        self.seed = o.seed.unwrap_or(self.seed);
        self.adversarial = o.adversarial.unwrap_or(self.adversarial);
        self
    }

    /// Defaults for a mode: the transfer modes share [`TrainConfig::default`]; noise mode
    /// trains the CPU preset at 64 px on batches of 16 with the seeds' BCE loss.
    pub fn for_mode(mode: Mode) -> Self {
        let base = Self {
            mode,
            ..Self::default()
        };
        match mode {
            Mode::Unpaired | Mode::Paired => base,
            Mode::Styles => Self {
                preset: Preset::Tiny,
                size: 128,
                batch: 4,
                steps: 10_000,
                // Content and style are relative distances (about 1 at the start of a run): style
                // weighs three times content, TV smooths speckle, and the adversarial term is a
                // small nudge beside them.
                perceptual_weight: 1.0,
                style_weight: 3.0,
                adversarial_weight: 0.05,
                tv_weight: 0.3,
                decay_from: 0.8,
                learning_rate: 1e-3,
                beta1: 0.9,
                jitter: 0.05,
                ..base
            },
            Mode::Noise => Self {
                preset: Preset::Tiny,
                size: 64,
                batch: 16,
                steps: 4000,
                adversarial: AdversarialLoss::Bce,
                discriminator_width: 16,
                jitter: 0.0,
                decay_from: 1.0,
                ..base
            },
        }
    }

    /// Whether a VGG19 feature network is needed.
    pub fn uses_vgg(&self) -> bool {
        self.mode == Mode::Styles || self.perceptual_weight > 0.0 || self.style_weight > 0.0
    }

    /// The losses this run logs, in `losses.csv` column order.
    pub fn loss_columns(&self) -> Vec<&'static str> {
        let mut columns = match self.mode {
            Mode::Unpaired => vec![
                "g_adv",
                "f_adv",
                "cycle",
                "identity",
                "d_style",
                "d_content",
            ],
            Mode::Paired => vec!["g_adv", "l1", "d"],
            // d_real and d_fake are the discriminator's mean scores (logits) on each;
            // mode_seeking the MSGAN term (lower: samples differ more).
            Mode::Noise => vec!["g_adv", "d", "d_real", "d_fake", "mode_seeking"],
            // Its VGG terms are its own: content (features of the photo) and style (Gram
            // matrices of the sample's style).
            Mode::Styles => return vec!["g_adv", "d", "content", "style", "tv"],
        };
        if self.uses_vgg() {
            columns.extend(["perceptual", "style"]);
        }
        columns
    }

    pub fn generator_config(&self) -> GeneratorConfig {
        let config = self
            .generator
            .clone()
            .unwrap_or_else(|| self.preset.generator());
        let config = if self.input_skip {
            config.with_input_skip(Some(true))
        } else {
            config
        };
        match self.mode {
            Mode::Styles => config.with_styles(Some(self.styles.len())),
            _ => config,
        }
    }

    /// Styles mode: each style's multiple of `style_weight` ([`Self::style_scales`]), in the
    /// order of [`Self::styles`].
    pub fn style_scale_table(&self) -> Vec<f32> {
        self.styles
            .iter()
            .map(|id| self.style_scales.get(id).copied().unwrap_or(1.0))
            .collect()
    }

    /// Noise mode's generator: the preset's width (tiny 16, small 32, large 64 channels at
    /// full resolution) at `size` pixels.
    pub fn latent_generator_config(&self) -> LatentGeneratorConfig {
        let width = match self.preset {
            Preset::Tiny => 16,
            Preset::Small => 32,
            Preset::Large => 64,
        };
        LatentGeneratorConfig::new(self.latent_size, self.size, width)
    }

    /// Noise mode's whole-image discriminator.
    pub fn image_discriminator_config(&self) -> ImageDiscriminatorConfig {
        ImageDiscriminatorConfig::new(self.size, self.discriminator_width)
    }

    pub fn discriminator_config(&self) -> DiscriminatorConfig {
        let channels = match self.mode {
            Mode::Unpaired | Mode::Noise | Mode::Styles => 3,
            // pix2pix's discriminator judges (input, output) pairs.
            Mode::Paired => 6,
        };
        let heads = match self.mode {
            Mode::Styles => self.styles.len().max(1),
            _ => 1,
        };
        DiscriminatorConfig::new(self.discriminator_width)
            .with_layers(self.discriminator_layers)
            .with_channels(channels)
            .with_heads(heads)
    }

    /// Learning rate at `step`: constant, then linear decay to zero from `decay_from`.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        let start = (self.steps as f64 * self.decay_from).floor();
        let step = step as f64;
        if step < start || self.steps == 0 {
            return self.learning_rate;
        }
        let remaining = (self.steps as f64 - start).max(1.0);
        self.learning_rate * (1.0 - (step - start) / remaining).max(0.0)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs always serialise")
    }

    /// Read a config; keys it leaves out take the defaults of its `mode` ([`Self::for_mode`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let parse = |e: &dyn std::fmt::Display| ConfigError::Parse(e.to_string());
        let user: toml::Table = toml::from_str(text).map_err(|e| parse(&e))?;
        let mode = match user.get("mode") {
            Some(value) => {
                Mode::deserialize(value.clone()).map_err(|e| parse(&format!("mode: {e}")))?
            }
            None => Mode::Unpaired,
        };
        let mut table = toml::Table::try_from(Self::for_mode(mode)).map_err(|e| parse(&e))?;
        table.extend(user);
        // The generator's `channels` has a default in code but none in serde: a config that names
        // only width and blocks (as the README shows) gets the image's three channels.
        if let Some(toml::Value::Table(generator)) = table.get_mut("generator") {
            generator
                .entry("channels")
                .or_insert(toml::Value::Integer(3));
        }
        let config: Self = table.try_into().map_err(|e: toml::de::Error| parse(&e))?;
        config.validate()?;
        Ok(config)
    }

    /// Whether every value is in its range; the error names the first that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError::Invalid(m));
        if self.size < 32
            || self.size > 2048
            || !self.size.is_multiple_of(GeneratorConfig::MULTIPLE)
        {
            return fail(format!(
                "size {} must be a multiple of 4 between 32 and 2048",
                self.size
            ));
        }
        if self.batch == 0 || self.batch > 64 {
            return fail(format!("batch {} must be between 1 and 64", self.batch));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return fail(format!(
                "learning_rate {} must be in (0, 1)",
                self.learning_rate
            ));
        }
        if !(self.style_table_lr_factor > 0.0 && self.style_table_lr_factor <= 100.0) {
            return fail(format!(
                "style_table_lr_factor {} must be in (0, 100]",
                self.style_table_lr_factor
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return fail("beta1 and beta2 must be in [0, 1)".into());
        }
        if !(0.0..=1.0).contains(&self.decay_from) {
            return fail("decay_from must be in [0, 1]".into());
        }
        if self.discriminator_width == 0
            || self.discriminator_width > 512
            || !(1..=5).contains(&self.discriminator_layers)
        {
            return fail("discriminator_width must be 1–512 and discriminator_layers 1–5".into());
        }
        if self.mode != Mode::Noise && !patch_fits(self.size, self.discriminator_layers) {
            return fail(format!(
                "size {} is too small for discriminator_layers {}: its patches would be empty \
                 (fewer layers, or a larger size)",
                self.size, self.discriminator_layers
            ));
        }
        if self.checkpoint_every == 0 || self.sample_every == 0 || self.log_every == 0 {
            return fail("log_every, sample_every and checkpoint_every must be at least 1".into());
        }
        if self.cache_scale < 1.0 || self.cache_scale > 8.0 {
            return fail("cache_scale must be between 1 and 8".into());
        }
        if !(self.perceptual_weight >= 0.0 && self.style_weight >= 0.0) {
            return fail("perceptual_weight and style_weight must be 0 or more".into());
        }
        if self.keep_checkpoints == 0 {
            return fail("keep_checkpoints must be at least 1".into());
        }
        if !(self.adversarial_weight >= 0.0 && self.tv_weight >= 0.0) {
            return fail("adversarial_weight and tv_weight must be 0 or more".into());
        }
        if !(self.skin_content_weight.is_finite()
            && (0.0..=100.0).contains(&self.skin_content_weight))
        {
            return fail(format!(
                "skin_content_weight = {} must be in [0, 100]",
                self.skin_content_weight
            ));
        }
        for (id, scale) in &self.style_scales {
            if !(scale.is_finite() && (0.0..=100.0).contains(scale)) {
                return fail(format!("style_scales.{id} = {scale} must be in [0, 100]"));
            }
            if !self.styles.is_empty() && !self.styles.contains(id) {
                return fail(format!(
                    "style_scales names `{id}`, which is not one of this run's styles ({})",
                    self.styles.join(", ")
                ));
            }
        }
        if self.styles.len() > 256 {
            return fail(format!("{} styles: at most 256", self.styles.len()));
        }
        if self.mode == Mode::Noise {
            self.latent_generator_config()
                .check()
                .map_err(|e| ConfigError::Invalid(format!("noise mode: {e}")))?;
            if !(0.0..1.0).contains(&self.ema_decay) {
                return fail("ema_decay must be in [0, 1)".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop too small for the discriminator's depth is refused by name (it used to reach the
    /// convolutions and fail there); each accepted pair leaves the PatchGAN a score, as Burn's
    /// discriminator computes it.
    #[test]
    fn crops_too_small_for_the_discriminator_are_refused() {
        let at = |size, layers| TrainConfig {
            size,
            discriminator_layers: layers,
            ..TrainConfig::default()
        };
        let error = at(32, 4).validate().unwrap_err().to_string();
        assert!(
            error.contains("size 32") && error.contains("discriminator_layers 4"),
            "{error}"
        );
        assert!(at(64, 5).validate().is_err());
        let device = burn::tensor::Device::flex();
        for (size, layers) in [(32, 3), (64, 4), (36, 3), (128, 5)] {
            let config = at(size, layers);
            assert!(config.validate().is_ok(), "{size} px, {layers} layers");
            let d = config.discriminator_config().init(&device);
            let scores = d.forward(burn::tensor::Tensor::<4>::zeros(
                [1, 3, size, size],
                &device,
            ));
            let [_, _, h, w] = scores.dims();
            assert!(
                h >= 1 && w >= 1,
                "{size} px, {layers} layers: {h}×{w} scores"
            );
        }
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = TrainConfig::default();
        assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn overrides_replace_only_what_they_give_and_a_preset_drops_the_explicit_shape() {
        let base = TrainConfig {
            generator: Some(GeneratorConfig::new(8, 2)),
            ..TrainConfig::default()
        };
        let same = base.clone().with_overrides(&ConfigOverrides::default());
        assert_eq!(same, base);
        let changed = base.clone().with_overrides(&ConfigOverrides {
            preset: Some(Preset::Tiny),
            steps: Some(7),
            adversarial: Some(AdversarialLoss::Hinge),
            ..ConfigOverrides::default()
        });
        assert_eq!(changed.preset, Preset::Tiny);
        assert_eq!(changed.generator, None);
        assert_eq!(changed.steps, 7);
        assert_eq!(changed.adversarial, AdversarialLoss::Hinge);
        assert_eq!(
            (changed.size, changed.batch, changed.seed),
            (base.size, base.batch, base.seed)
        );
    }

    #[test]
    fn partial_toml_keeps_defaults_and_unknown_keys_are_refused() {
        let config = TrainConfig::from_toml("steps = 10\npreset = \"tiny\"\n").unwrap();
        assert_eq!(config.steps, 10);
        assert_eq!(config.preset, Preset::Tiny);
        assert_eq!(config.learning_rate, 2e-4);
        let err = TrainConfig::from_toml("stepz = 10").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
        assert!(err.to_string().contains("stepz"), "{err}");
        let err = TrainConfig::from_toml("size = 30").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    }

    #[test]
    fn a_noise_config_takes_the_noise_defaults_for_what_it_leaves_out() {
        let config = TrainConfig::from_toml("mode = \"noise\"\nsteps = 10\n").unwrap();
        assert_eq!(config.steps, 10);
        assert_eq!(config.batch, 16);
        assert_eq!(config.size, 64);
        assert_eq!(config.adversarial, AdversarialLoss::Bce);
        assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);
        let err = TrainConfig::from_toml("mode = \"noise\"\nsize = 48\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("48"), "{err}");
        assert!(TrainConfig::from_toml("mode = \"sideways\"").is_err());
    }

    #[test]
    fn a_generator_override_and_the_input_skip_combine_with_presets() {
        let config = TrainConfig::from_toml("generator = { width = 16, blocks = 6 }\n").unwrap();
        assert_eq!(config.generator_config(), GeneratorConfig::new(16, 6));
        let config = TrainConfig::from_toml("preset = \"tiny\"\ninput_skip = true\n").unwrap();
        let generator = config.generator_config();
        assert_eq!((generator.width, generator.blocks), (12, 5));
        assert!(generator.has_input_skip());
        assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn learning_rate_decays_linearly_over_the_second_half() {
        let config = TrainConfig {
            steps: 100,
            ..TrainConfig::default()
        };
        assert_eq!(config.learning_rate_at(0), 2e-4);
        assert_eq!(config.learning_rate_at(49), 2e-4);
        assert!((config.learning_rate_at(75) - 1e-4).abs() < 1e-12);
        assert_eq!(config.learning_rate_at(100), 0.0);
    }

    #[test]
    fn style_scales_follow_the_style_order_and_name_only_the_runs_styles() {
        let text = "mode = \"styles\"\nstyles = [\"ink\", \"halftone\", \"pencil\"]\n\
                    style_scales = { halftone = 2.0, ink = 0.5 }\n";
        let config = TrainConfig::from_toml(text).unwrap();
        assert_eq!(config.style_scale_table(), vec![0.5, 2.0, 1.0]);
        assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);
        let err = TrainConfig::from_toml(&text.replace("ink = 0.5", "inc = 0.5")).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("`inc`"), "{err}");
        let err = TrainConfig::from_toml(&text.replace("2.0", "-1.0")).unwrap_err();
        assert!(err.to_string().contains("halftone"), "{err}");
        // Before a run fills in its styles, any id is accepted (the run checks it).
        assert!(TrainConfig::from_toml("style_scales = { anything = 3.0 }\n").is_ok());
    }

    #[test]
    fn skin_content_weight_defaults_to_0_and_is_refused_out_of_range() {
        assert_eq!(TrainConfig::from_toml("").unwrap().skin_content_weight, 0.0);
        let config = TrainConfig::from_toml("skin_content_weight = 4.0\n").unwrap();
        assert_eq!(config.skin_content_weight, 4.0);
        assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);
        for bad in ["-1.0", "101.0", "nan"] {
            let err =
                TrainConfig::from_toml(&format!("skin_content_weight = {bad}\n")).unwrap_err();
            assert!(
                err.to_string().contains("skin_content_weight"),
                "{bad}: {err}"
            );
        }
    }
}
