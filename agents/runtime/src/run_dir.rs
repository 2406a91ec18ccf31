//! The run directory.

use std::path::{Path, PathBuf};

use crate::{io, Error, Result};

/// A run's directory: `config.toml` (the resolved configuration), `events.out.tfevents.*`,
/// `metrics.csv`, `interventions.jsonl` and `checkpoint/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a new run directory (its parents too). Fails if it exists and is not empty,
    /// so no run overwrites another; fails before any training if it cannot be written.
    pub fn create(path: &Path) -> Result<Self> {
        if path.exists() && std::fs::read_dir(path).map_err(io(path))?.next().is_some() {
            return Err(Error::RunDir {
                path: path.to_owned(),
                reason:
                    "exists and is not empty (use --resume to continue it, or another --run-dir)"
                        .into(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::RunDir {
            path: path.to_owned(),
            reason: format!("cannot create it: {e}"),
        })?;
        let probe = path.join(".write-test");
        std::fs::write(&probe, b"").map_err(|e| Error::RunDir {
            path: path.to_owned(),
            reason: format!("cannot write in it: {e}"),
        })?;
        std::fs::remove_file(&probe).map_err(io(&probe))?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Reopens an existing run directory to resume it; it must hold a checkpoint.
    pub fn reopen(path: &Path) -> Result<Self> {
        let dir = Self {
            path: path.to_owned(),
        };
        if !dir
            .checkpoint_dir()
            .join(crate::checkpoint::STATE_FILE)
            .is_file()
        {
            return Err(Error::RunDir {
                path: path.to_owned(),
                reason: "holds no checkpoint to resume from".into(),
            });
        }
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the resolved configuration lives.
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.toml")
    }

    /// Where checkpoints live.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join("checkpoint")
    }

    /// Writes the resolved configuration (atomically).
    pub fn write_config(&self, text: &str) -> Result<()> {
        fire::tensor_file::write_atomic(&self.config_file(), text.as_bytes())?;
        Ok(())
    }
}
