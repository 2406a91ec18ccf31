//! What every training loop in the workspace needs, apart from the algorithm.
//!
//! # Brief overview
//!
//! * [`RunDir`]: a run's directory: created (or reopened to resume), the resolved config
//!   written into it, and the paths of everything else in it.
//! * [`MetricsLogger`]: a TensorBoard event file (our own writer: every I/O error is a
//!   `Result`, and a resume marks its step so TensorBoard drops what came after the checkpoint) (tags follow CleanRL:
//!   `charts/episodic_return`, `losses/td_loss`, ...; plus `plasticity/*`), the same scalars in
//!   `metrics.csv`, and intervention events in `interventions.jsonl`.
//! * [`checkpoint`]: atomic checkpoints: tensors in safetensors, counters and generator states
//!   in JSON, written to temporary names and renamed.
//! * [`StopSignal`]: Ctrl-C and SIGTERM set a flag the loop polls, so it can checkpoint and
//!   flush before exiting.
//! * [`Progress`]: the terminal progress bar (steps, SPS, last return, ETA).
//! * [`train()`]: the training loop every agent runs in, generic over the [`agent::Agent`], its
//!   environments ([`envs::vector::FlatEnv`]) and its [`replay::Replay`]; synchronous or with
//!   actor threads and an exact replay-ratio rate limiter ([`train`](mod@train)).
//! * [`config`]: [`config::LoopConfig`], the keys every binary shares, and the flat key space
//!   (`--set KEY=VALUE`, TOML files) over a binary's config sections.
//! * [`Seeds`]: every seed of a run, derived from the run seed in one place.
//! * [`levels`]: continual levels (a fixed observation offset per level, switches at exact
//!   steps, `levels.csv`).
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod levels;
mod logger;
mod progress;
mod run_dir;
pub mod seeds;
mod signal;
mod tfevents;
pub mod train;

pub use logger::MetricsLogger;
pub use progress::Progress;
pub use run_dir::RunDir;
pub use seeds::Seeds;
pub use signal::StopSignal;
pub use train::{train, EnvPurpose, Outcome, Setup};

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
