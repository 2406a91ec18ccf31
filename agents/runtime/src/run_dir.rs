//! The run directory.

use std::path::{Path, PathBuf};

use crate::{io, Error, Result};

/// A run's directory: `config.toml` (the resolved configuration), `events.out.tfevents.*`,
/// `metrics.csv`, `interventions.jsonl`, `levels.csv` (runs with levels) and `checkpoint/`.
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

    /// Reopens an existing run directory to resume it; it must hold the `config.toml` of a
    /// run (a checkpoint too, unless the run stopped before its first:
    /// [`has_checkpoint`](Self::has_checkpoint)).
    pub fn reopen(path: &Path) -> Result<Self> {
        let dir = Self {
            path: path.to_owned(),
        };
        if !dir.config_file().is_file() {
            return Err(Error::RunDir {
                path: path.to_owned(),
                reason: "is not a run directory (no config.toml)".into(),
            });
        }
        Ok(dir)
    }

    /// Takes the run's lock (`run.lock`, an advisory file lock held while the returned file
    /// lives): a second process on the same run, training or resuming, is refused with the
    /// first one's pid.
    pub fn lock(&self) -> Result<std::fs::File> {
        let path = self.path.join("run.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::Write;
                let mut f = &file;
                let _ = f.set_len(0);
                let _ = writeln!(f, "{}", std::process::id());
                Ok(file)
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                Err(Error::RunDir {
                    path: self.path.clone(),
                    reason: format!(
                        "is in use by another process (pid {}): one process per run",
                        pid.trim()
                    ),
                })
            }
            // Some Lustre and NFS mounts have no file locks: say so once and run unlocked
            // rather than refuse every run there.
            Err(std::fs::TryLockError::Error(e)) if no_file_locks(&e) => {
                eprintln!(
                    "run directory {}: file locks are not supported here ({e}): a second \
                     process on this run would not be refused",
                    self.path.display()
                );
                Ok(file)
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Whether a checkpoint was written.
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint_dir()
            .join(crate::checkpoint::STATE_FILE)
            .is_file()
    }

    /// Removes the logs of a run that stopped before its first checkpoint, so it can start
    /// over in the same directory.
    pub fn clear_logs(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.path).map_err(io(&self.path))? {
            let path = entry.map_err(io(&self.path))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name == "metrics.csv"
                || name == "interventions.jsonl"
                || name == "levels.csv"
                || name.starts_with("events.out.tfevents.")
            {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
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

/// Whether a failed `flock` means the file system has no file locks: ENOLCK (NFS without a
/// lock manager), EOPNOTSUPP or ENOSYS (Linux's numbers), rather than a real error.
fn no_file_locks(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(37 | 38 | 95))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_locks_are_told_apart_from_real_errors() {
        for errno in [37, 38, 95] {
            assert!(
                no_file_locks(&std::io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [11, 13, 28] {
            // EAGAIN, EACCES, ENOSPC stay errors.
            assert!(
                !no_file_locks(&std::io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }

    #[test]
    fn a_second_lock_on_a_run_is_refused_with_the_first_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(&tmp.path().join("run")).unwrap();
        let _held = run.lock().unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}
