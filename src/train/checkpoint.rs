//! Checkpoints: every network, every optimiser state, the step and the random state, written so
//! that a crash at any moment leaves the previous checkpoint intact.
//!
//! Each checkpoint is a folder `checkpoints/step-NNNNNNN/`. It is written in full under a temporary
//! name, flushed, then renamed into place (a rename is atomic), and only then does the `latest`
//! pointer move to it. Loading trusts `latest` and falls back to the newest complete folder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::atomic::write as write_atomic;
use crate::learn::step::{Nets, TransferNets};
use crate::rng::Rng;

const STATE_FILE: &str = "state.json";
const LATEST: &str = "latest";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: damaged checkpoint ({message})")]
    Damaged { path: PathBuf, message: String },
    #[error(
        "{0}: no checkpoint to resume from (the run saved none yet; start it again without --resume)"
    )]
    NoCheckpoint(PathBuf),
}

/// What besides weights a checkpoint restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub step: u64,
    pub rng: Rng,
}

/// Collects a checkpoint's files in memory, then writes them in one atomic step.
#[derive(Default)]
pub struct Writer {
    files: Vec<(String, Vec<u8>)>,
}

impl Writer {
    pub fn module<M: Module>(&mut self, name: &str, module: &M) {
        let bytes = module
            .clone()
            .into_record()
            .into_bytes()
            .expect("in-memory record");
        self.files.push((format!("{name}.bpk"), bytes.to_vec()));
    }

    pub fn optimizer(&mut self, name: &str, optimizer: &ModuleOptimizer) {
        let bytes = optimizer.into_bytes().expect("in-memory optimizer record");
        self.files
            .push((format!("{name}.optim.bpk"), bytes.to_vec()));
    }

    /// Write everything as `dir/step-NNNNNNN`, move `latest` to it, and keep only the newest
    /// `keep` checkpoints. Returns the checkpoint's folder.
    pub fn commit(
        mut self,
        dir: &Path,
        progress: &Progress,
        keep: usize,
    ) -> Result<PathBuf, CheckpointError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        self.files.push((
            STATE_FILE.into(),
            serde_json::to_vec_pretty(progress).expect("state serialises"),
        ));
        fs::create_dir_all(dir).map_err(io(dir))?;
        sweep(dir);
        let name = step_name(progress.step);
        let final_dir = dir.join(&name);
        let tmp = dir.join(format!(".{name}.partial"));
        let written = (|| {
            fs::create_dir_all(&tmp).map_err(io(&tmp))?;
            for (file, bytes) in &self.files {
                let path = tmp.join(file);
                let mut f = fs::File::create(&path).map_err(io(&path))?;
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(io(&path))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // A full disk: give the space back, so the run can be resumed once there is room.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if final_dir.exists() {
            remove_checkpoint(dir, &final_dir).map_err(io(&final_dir))?;
        }
        fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        write_atomic(&dir.join(LATEST), name.as_bytes()).map_err(|source| CheckpointError::Io {
            path: dir.join(LATEST),
            source,
        })?;
        prune(dir, keep);
        Ok(final_dir)
    }
}

/// A checkpoint folder opened for reading.
pub struct Reader {
    pub dir: PathBuf,
    pub progress: Progress,
}

impl Reader {
    /// The newest complete checkpoint under `dir`.
    pub fn latest(dir: &Path) -> Result<Self, CheckpointError> {
        let pointed = fs::read_to_string(dir.join(LATEST))
            .ok()
            .map(|s| dir.join(s.trim()));
        let mut candidates: Vec<PathBuf> = pointed.into_iter().collect();
        candidates.extend(list(dir).into_iter().rev().map(|(_, p)| p));
        for candidate in candidates {
            if let Ok(reader) = Self::open(&candidate) {
                return Ok(reader);
            }
        }
        Err(CheckpointError::NoCheckpoint(dir.to_path_buf()))
    }

    /// The checkpoint of a given step.
    pub fn at_step(dir: &Path, step: u64) -> Result<Self, CheckpointError> {
        Self::open(&dir.join(step_name(step)))
    }

    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(STATE_FILE);
        let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        let progress = serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Damaged {
            path,
            message: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            progress,
        })
    }

    pub fn module<M: Module>(&self, name: &str, module: M) -> Result<M, CheckpointError> {
        let path = self.dir.join(format!("{name}.bpk"));
        let damaged = |message: String| CheckpointError::Damaged {
            path: path.clone(),
            message,
        };
        let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| damaged(e.to_string()))?;
        module
            .try_load_record(record)
            .map_err(|e| damaged(e.to_string()))
    }

    pub fn optimizer(
        &self,
        name: &str,
        optimizer: ModuleOptimizer,
    ) -> Result<ModuleOptimizer, CheckpointError> {
        let path = self.dir.join(format!("{name}.optim.bpk"));
        let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        optimizer
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| CheckpointError::Damaged {
                path,
                message: e.to_string(),
            })
    }

    /// The raw bytes of a module's weights (for export).
    pub fn module_bytes(&self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        let path = self.dir.join(format!("{name}.bpk"));
        fs::read(&path).map_err(|source| CheckpointError::Io { path, source })
    }
}

pub fn step_name(step: u64) -> String {
    format!("step-{step:07}")
}

/// Complete checkpoint folders, oldest first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .filter(|(_, p)| p.join(STATE_FILE).is_file())
        .collect();
    found.sort();
    found
}

fn prune(dir: &Path, keep: usize) {
    let all = list(dir);
    if all.len() > keep {
        for (_, path) in &all[..all.len() - keep] {
            let _ = remove_checkpoint(dir, path);
        }
    }
}

/// Delete a checkpoint folder so that a kill midway never leaves a half-deleted `step-N`: it is
/// renamed to a hidden name first (atomic), then deleted.
fn remove_checkpoint(dir: &Path, path: &Path) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let doomed = dir.join(format!(".{name}.deleting"));
    if doomed.exists() {
        fs::remove_dir_all(&doomed)?;
    }
    fs::rename(path, &doomed)?;
    fs::remove_dir_all(&doomed)
}

/// Remove what a killed run leaves behind: `.step-N.partial` and `.step-N.deleting` folders and
/// `.latest.tmp*` files (never read as checkpoints, but they take space).
fn sweep(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".step-") && (name.ends_with(".partial") || name.ends_with(".deleting"))
        {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(".latest.tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}
/// Every network and optimiser state of a run, from a checkpoint.
impl Nets {
    pub(super) fn load(self, reader: &Reader) -> Result<Self, CheckpointError> {
        Ok(match self {
            Nets::Transfer(nets) => Nets::Transfer(Box::new(nets.load(reader)?)),
            Nets::Noise(n) => {
                let mut n = *n;
                n.g = reader.module("g", n.g)?;
                n.opt_g = reader.optimizer("g", n.opt_g)?;
                n.d = reader.module("d", n.d)?;
                n.opt_d = reader.optimizer("d", n.opt_d)?;
                n.ema = reader.module("ema", n.ema)?;
                Nets::Noise(Box::new(n))
            }
        })
    }
}

impl TransferNets {
    pub(super) fn load(mut self, reader: &Reader) -> Result<Self, CheckpointError> {
        self.g = reader.module("g", self.g)?;
        self.opt_g = reader.optimizer("g", self.opt_g)?;
        self.d = reader.module("d", self.d)?;
        self.opt_d = reader.optimizer("d", self.opt_d)?;
        if let Some(opt) = self.opt_styles.take() {
            self.opt_styles = Some(reader.optimizer("g_styles", opt)?);
        }
        if let Some(mut back) = self.back.take() {
            back.f = reader.module("f", back.f)?;
            back.opt_f = reader.optimizer("f", back.opt_f)?;
            back.d_content = reader.module("d_content", back.d_content)?;
            back.opt_d_content = reader.optimizer("d_content", back.opt_d_content)?;
            self.back = Some(back);
        }
        Ok(self)
    }
}
