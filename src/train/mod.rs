//! Native training around the platform-neutral step of [`crate::learn`]: data folders, the loop,
//! checkpoints, samples, reports and export. `config` and `losses` are `learn`'s, re-exported.

pub mod checkpoint;
pub mod data;
pub mod export;
pub mod precision;
pub mod report;
pub mod trainer;

pub use crate::learn::{config, losses};
pub use config::{AdversarialLoss, ConfigError, Mode, TrainConfig};
pub use trainer::{DataSummary, Event, Sources, TrainError, Trainer};
