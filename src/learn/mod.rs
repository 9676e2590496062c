//! Learning, platform-neutral: the training configuration, the losses, one step per mode, and
//! learning a new style for an existing network ([`adapt`], and [`lesson`] around it: crops of
//! content photos, the new pack).
//! Native training (`train`) adds data folders, checkpoints, samples and reports around it; the
//! browser can build it with the `learn` feature.

pub mod adapt;
pub mod config;
pub mod lesson;
pub mod losses;
pub mod step;

pub use config::{AdversarialLoss, ConfigError, Mode, TrainConfig};
pub use step::{Losses, StepError};
