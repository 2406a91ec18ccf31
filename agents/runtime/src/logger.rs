//! Scalars to TensorBoard and CSV; intervention events to JSON lines.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::tfevents::EventWriter;
use crate::{io, Result};

/// One TensorBoard writer per run directory plus `metrics.csv` (`step,frames,tag,value`),
/// `interventions.jsonl` and, for runs with levels, `levels.csv` (one row per finished level,
/// [`crate::levels::LevelRow`]; `games.csv` in a sequence of tasks). Appends when a run resumes.
pub struct MetricsLogger {
    tensorboard: EventWriter,
    csv: BufWriter<File>,
    events: BufWriter<File>,
    /// Opened at the first finished level.
    levels: Option<BufWriter<File>>,
    csv_path: PathBuf,
    events_path: PathBuf,
    levels_path: PathBuf,
    frames_per_step: u64,
}

impl MetricsLogger {
    /// Opens the writers in `dir` (which must exist). `frames_per_step` converts steps to
    /// emulator frames in the CSV (4 for Atari with frame skip 4).
    pub fn open(dir: &Path, frames_per_step: u64) -> Result<Self> {
        Self::open_at(dir, frames_per_step, None)
    }

    /// Opens the writers to continue a run from a checkpoint at `resume_step`: rows and
    /// events after that step (logged after the checkpoint by a process that was killed) and
    /// a torn last line are dropped first, so the resumed run's log reads as one run.
    pub fn open_at(dir: &Path, frames_per_step: u64, resume_step: Option<u64>) -> Result<Self> {
        let csv_path = dir.join("metrics.csv");
        let events_path = dir.join("interventions.jsonl");
        let levels_path = dir.join("levels.csv");
        if let Some(step) = resume_step {
            // A level's row is written at its end step, before the checkpoint of that step.
            keep_lines_up_to(&levels_path, step, |line| {
                line.split(',').nth(2).and_then(|s| s.parse().ok())
            })?;
            keep_lines_up_to(&dir.join("games.csv"), step, |line| {
                line.split(',').nth(3).and_then(|s| s.parse().ok())
            })?;
            keep_lines_up_to(&csv_path, step, |line| {
                line.split(',').next().and_then(|s| s.parse().ok())
            })?;
            keep_lines_up_to(&events_path, step, |line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()?
                    .get("step")?
                    .as_u64()
            })?;
        }
        let new_csv =
            !csv_path.exists() || std::fs::metadata(&csv_path).map_err(io(&csv_path))?.len() == 0;
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
        let mut tensorboard = EventWriter::create(dir)?;
        if let Some(step) = resume_step {
            tensorboard.resumed_at(step)?;
        }
        Ok(Self {
            tensorboard,
            csv,
            events,
            levels: None,
            csv_path,
            events_path,
            levels_path,
            frames_per_step,
        })
    }

    /// Appends one finished level to `levels.csv`, or in a sequence of tasks to `games.csv`
    /// (created with its header).
    pub fn level_row(&mut self, row: &crate::levels::LevelRow) -> Result<()> {
        let (name, header) = row.file();
        if self.levels.is_none() {
            self.levels_path = self.levels_path.with_file_name(name);
            let path = &self.levels_path;
            let new = std::fs::metadata(path)
                .map(|m| m.len() == 0)
                .unwrap_or(true);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io(path))?;
            let mut w = BufWriter::new(file);
            if new {
                writeln!(w, "{header}").map_err(io(path))?;
            }
            self.levels = Some(w);
        }
        let path = &self.levels_path;
        let writer = self.levels.as_mut().expect("opened above");
        writeln!(writer, "{}", row.csv_line()).map_err(io(path))
    }

    /// Logs one scalar at `step` (loop steps summed over environments).
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        self.tensorboard.scalar(tag, value as f32, step)?;
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
        self.tensorboard.flush()?;
        self.csv.flush().map_err(io(&self.csv_path))?;
        if let Some(levels) = &mut self.levels {
            levels.flush().map_err(io(&self.levels_path))?;
        }
        self.events.flush().map_err(io(&self.events_path))
    }
}

/// Rewrites `path` (if it exists) keeping the lines whose step (read by `step_of`) is at most
/// `last`, lines without a step (the header), and nothing after a line with no newline.
fn keep_lines_up_to(path: &Path, last: u64, step_of: impl Fn(&str) -> Option<u64>) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut kept = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break; // torn by a crash mid-write
        }
        match step_of(line.trim_end()) {
            Some(step) if step > last => {}
            _ => kept.push_str(line),
        }
    }
    if kept.len() != text.len() {
        fire::tensor_file::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

impl Drop for MetricsLogger {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
