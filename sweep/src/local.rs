//! The local executor: `--jobs` runs at once on this machine, a progress bar, failed runs
//! retried, and Ctrl-C (or `sweep cancel`'s SIGTERM) forwarded so every run checkpoints before
//! `sweep run` returns.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;

use crate::exec::{run_attempt, signal_pid, stop_signal};
use crate::progress::Progress;
use crate::state::{Recorded, SweepDir};

/// How a local sweep ended.
#[derive(Debug, Default)]
pub struct LocalSummary {
    pub finished: usize,
    pub stopped: usize,
    pub failed: Vec<String>,
    /// The stop signal that ended it early, if any.
    pub signal: Option<i32>,
}

/// Runs `names` with `jobs` at once; a failed run is retried up to `max_retries` times.
pub fn run_local(
    dir: &SweepDir,
    all: &[String],
    names: Vec<String>,
    binary: &Path,
    jobs: usize,
    max_retries: u32,
) -> Result<LocalSummary> {
    let queue: Mutex<VecDeque<(String, u32)>> =
        Mutex::new(names.into_iter().map(|n| (n, 0)).collect());
    let children: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    let summary = Mutex::new(LocalSummary::default());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut progress = Progress::new(dir, all);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                s.spawn(|| loop {
                    if stop_signal().is_some() {
                        break;
                    }
                    let Some((name, tries)) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let result = run_attempt(dir, &name, binary, None, |pid| {
                        children.lock().unwrap().insert(name.clone(), pid);
                    });
                    children.lock().unwrap().remove(&name);
                    let mut sum = summary.lock().unwrap();
                    match result {
                        Ok(Recorded::Finished) => sum.finished += 1,
                        Ok(Recorded::Failed) => {
                            if tries < max_retries && stop_signal().is_none() {
                                queue.lock().unwrap().push_back((name, tries + 1));
                            } else {
                                sum.failed.push(name);
                            }
                        }
                        Ok(_) => sum.stopped += 1,
                        Err(e) => {
                            errors.lock().unwrap().push(format!("{name}: {e:#}"));
                            sum.failed.push(name);
                        }
                    }
                })
            })
            .collect();
        let mut forwarded = false;
        while workers.iter().any(|w| !w.is_finished()) {
            if let (Some(sig), false) = (stop_signal(), forwarded) {
                // Runs started from a terminal got Ctrl-C themselves; `sweep cancel` and a
                // `kill` reach only this process.
                for pid in children.lock().unwrap().values() {
                    signal_pid(*pid, sig);
                }
                forwarded = true;
                progress.note(&format!(
                    "stopping: {} running run(s) asked to checkpoint and exit",
                    children.lock().unwrap().len()
                ));
            }
            progress.update(None);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    progress.finish();
    let mut summary = summary.into_inner().unwrap();
    summary.signal = stop_signal().map(|s| s as i32);
    for e in errors.into_inner().unwrap() {
        eprintln!("sweep: {e}");
    }
    Ok(summary)
}
