//! The terminal progress bar.

use std::io::IsTerminal;

/// Steps done of the total, steps per second, the last episode's return and the ETA. Hidden
/// when stderr is not a terminal (logs stay clean).
pub struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar for `total` steps starting at `done`.
    pub fn new(total: u64, done: u64) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {human_pos}/{human_len} steps  {per_sec}  {msg}  ETA {eta}",
            )
            .expect("static template"),
        );
        bar.set_position(done);
        Self { bar }
    }

    /// Moves to `step` and shows the last return.
    pub fn update(&self, step: u64, last_return: Option<f64>) {
        self.bar.set_position(step);
        if let Some(r) = last_return {
            self.bar.set_message(format!("return {r:.1}"));
        }
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
