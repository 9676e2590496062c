//! Native training: data, losses, the loop, checkpoints and reports.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod export;
pub mod looks;
pub mod losses;
pub mod precision;
pub mod report;
pub mod trainer;

pub use config::{AdversarialLoss, Mode, TrainConfig};
pub use trainer::{DataSummary, Event, Sources, TrainError, Trainer};
