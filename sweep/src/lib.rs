//! `sweep`: runs a grid of fire-rl training runs (the cross product of a sweep file's `[grid]`)
//! on this machine or as Slurm job arrays, and can be run again and again: finished runs are
//! skipped, interrupted ones resume from their checkpoints, failed ones are retried.
//!
//! The crate starts the training binaries (`atari`, `classic`, `humanoid`, `minatar`) as processes and
//! talks to them only through their command line (`--help-keys`, `--dry-run`, `--resume`) and
//! their run directories, so it has no libtorch dependency. Its siblings: `experiments` (the
//! binaries), `runtime` (the run directory and checkpoint format it reads), `report` (the
//! statistics and figures of a finished sweep).
//!
//! - [`spec`]: the sweep file, the grid, run names, what changed;
//! - [`setup`]: the checks before any run starts and each run's resolved `config.toml`;
//! - [`state`]: the sweep directory's layout and each run's state, read from files;
//! - [`exec`]: one attempt of one run (used locally and by Slurm array tasks);
//! - [`local`] and [`slurm`]: the two executors;
//! - [`progress`]: the progress bar.

pub mod exec;
pub mod local;
pub mod progress;
pub mod setup;
pub mod slurm;
pub mod spec;
pub mod state;

/// An error and its causes on one line, `outer: cause`, causes already in the line left out.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}
