//! The progress bar: overall steps of every run, and how many runs are done, running, failed.
//! Without a terminal it prints a line whenever those counts change.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::state::{inspect, State, SweepDir};

pub struct Progress<'a> {
    dir: &'a SweepDir,
    names: Vec<String>,
    bar: ProgressBar,
    last: Option<Instant>,
    last_counts: String,
    tty: bool,
    ended: usize,
}

impl<'a> Progress<'a> {
    pub fn new(dir: &'a SweepDir, names: &[String]) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if !tty {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {human_pos}/{human_len} steps  {msg}  [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self {
            dir,
            names: names.to_vec(),
            bar,
            last: None,
            last_counts: String::new(),
            tty,
            ended: 0,
        }
    }

    /// Re-reads the runs (at most once a second); `queued` names runs waiting in a queue.
    pub fn update(&mut self, queued: Option<&BTreeSet<String>>) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        let (mut done, mut running, mut failed, mut waiting, mut stopped) = (0, 0, 0, 0, 0);
        let (mut steps, mut total) = (0u64, 0u64);
        for n in &self.names {
            let info = inspect(self.dir, n);
            let t = info.steps_total.unwrap_or(info.steps_done);
            total += t;
            steps += info.steps_done.min(t);
            match info.state {
                State::Finished => done += 1,
                State::Running => running += 1,
                State::Failed => failed += 1,
                _ if queued.is_some_and(|q| q.contains(n)) => waiting += 1,
                State::Stopped => stopped += 1,
                _ => {}
            }
        }
        self.ended = done + failed + stopped;
        let n = self.names.len();
        let mut counts = format!("runs: {done}/{n} done, {running} running, {failed} failed");
        if queued.is_some() {
            counts.push_str(&format!(", {waiting} queued"));
        }
        self.bar.set_length(total.max(1));
        self.bar.set_position(steps);
        if self.tty {
            self.bar.set_message(counts);
        } else if counts != self.last_counts {
            eprintln!("sweep: {counts}; {steps}/{total} steps");
            self.last_counts = counts;
        }
    }

    /// Runs finished, failed or stopped at the last update.
    pub fn ended(&self) -> usize {
        self.ended
    }

    /// A line above the bar.
    pub fn note(&self, line: &str) {
        if self.tty {
            self.bar.println(format!("sweep: {line}"));
        } else {
            eprintln!("sweep: {line}");
        }
    }

    pub fn finish(&mut self) {
        self.last = None;
        self.update(None);
        self.bar.finish();
    }
}
