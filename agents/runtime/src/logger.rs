//! Scalars to TensorBoard and CSV; intervention events to JSON lines.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tensorboard_rs::summary_writer::SummaryWriter;

use crate::{io, Result};

/// One TensorBoard writer per run directory plus `metrics.csv` (`step,frames,tag,value`) and
/// `interventions.jsonl`. Appends when a run resumes.
pub struct MetricsLogger {
    tensorboard: SummaryWriter,
    csv: BufWriter<File>,
    events: BufWriter<File>,
    csv_path: PathBuf,
    events_path: PathBuf,
    frames_per_step: u64,
}

impl MetricsLogger {
    /// Opens the writers in `dir` (which must exist and be writable: tensorboard-rs panics on
    /// I/O errors, so [`crate::RunDir`] checks first). `frames_per_step` converts steps to
    /// emulator frames in the CSV (4 for Atari with frame skip 4).
    pub fn open(dir: &Path, frames_per_step: u64) -> Result<Self> {
        let csv_path = dir.join("metrics.csv");
        let events_path = dir.join("interventions.jsonl");
        let new_csv = !csv_path.exists();
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(io(p))
        };
        let mut csv = BufWriter::new(open(&csv_path)?);
        if new_csv {
            writeln!(csv, "step,frames,tag,value").map_err(io(&csv_path))?;
        }
        let events = BufWriter::new(open(&events_path)?);
        Ok(Self {
            tensorboard: SummaryWriter::new(dir),
            csv,
            events,
            csv_path,
            events_path,
            frames_per_step,
        })
    }

    /// Logs one scalar at `step` (agent steps summed over environments).
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        self.tensorboard
            .add_scalar(tag, value as f32, step as usize);
        writeln!(
            self.csv,
            "{step},{},{tag},{value}",
            step * self.frames_per_step
        )
        .map_err(io(&self.csv_path))
    }

    /// Appends one JSON line describing an event (an intervention and its per-layer report).
    pub fn event(&mut self, event: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(event).map_err(|e| crate::Error::Io {
            path: self.events_path.clone(),
            source: e.into(),
        })?;
        writeln!(self.events, "{line}").map_err(io(&self.events_path))
    }

    /// Flushes every writer to disk.
    pub fn flush(&mut self) -> Result<()> {
        self.tensorboard.flush();
        self.csv.flush().map_err(io(&self.csv_path))?;
        self.events.flush().map_err(io(&self.events_path))
    }
}

impl Drop for MetricsLogger {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
