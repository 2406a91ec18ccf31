//! What every training loop in the workspace needs, apart from the algorithm.
//!
//! # Brief overview
//!
//! * [`RunDir`]: a run's directory: created (or reopened to resume), the resolved config
//!   written into it, and the paths of everything else in it.
//! * [`MetricsLogger`]: one TensorBoard event writer per run directory (tags follow CleanRL:
//!   `charts/episodic_return`, `losses/td_loss`, ...; plus `plasticity/*`), the same scalars in
//!   `metrics.csv`, and intervention events in `interventions.jsonl`.
//! * [`checkpoint`]: atomic checkpoints: tensors in safetensors, counters and generator states
//!   in JSON, written to temporary names and renamed.
//! * [`StopSignal`]: Ctrl-C and SIGTERM set a flag the loop polls, so it can checkpoint and
//!   flush before exiting.
//! * [`Progress`]: the terminal progress bar (steps, SPS, last return, ETA).
#![warn(missing_docs)]

pub mod checkpoint;
mod logger;
mod progress;
mod run_dir;
mod signal;

pub use logger::MetricsLogger;
pub use progress::Progress;
pub use run_dir::RunDir;
pub use signal::StopSignal;

use std::path::PathBuf;

/// What went wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The run directory cannot be used as asked.
    #[error("run directory {}: {reason}", path.display())]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A checkpoint is missing or does not match.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// From the `fire` crate (tensor files).
    #[error(transparent)]
    Fire(#[from] fire::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}
