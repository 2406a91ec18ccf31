//! The terminal progress bar.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the rate looks: long enough to be steady, short enough that the ETA follows
/// the switch from the fast random warm-up to the slower learning phase within a minute.
const WINDOW: Duration = Duration::from_secs(30);

/// Steps done of the total, the recent rate, the ETA at that rate and the last episode's
/// return. Hidden when stderr is not a terminal (logs stay clean).
pub struct Progress {
    bar: indicatif::ProgressBar,
    total: u64,
    /// `(time, step)` samples of the last [`WINDOW`].
    recent: Mutex<VecDeque<(Instant, u64)>>,
    last_return: Mutex<Option<f64>>,
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
                "{bar:30} {human_pos}/{human_len} steps  {msg}",
            )
            .expect("static template"),
        );
        bar.set_position(done);
        Self {
            bar,
            total,
            recent: Mutex::new(VecDeque::from([(Instant::now(), done)])),
            last_return: Mutex::new(None),
        }
    }

    /// Moves to `step` and shows the last return.
    pub fn update(&self, step: u64, last_return: Option<f64>) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_position(step);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // One sample per 100 ms is plenty; older than the window goes.
        if recent
            .back()
            .is_none_or(|&(t, _)| now - t >= Duration::from_millis(100))
        {
            recent.push_back((now, step));
        }
        while recent.len() > 2 && recent.front().is_some_and(|&(t, _)| now - t > WINDOW) {
            recent.pop_front();
        }
        let mut shown = self.last_return.lock().unwrap_or_else(|p| p.into_inner());
        if last_return.is_some() {
            *shown = last_return;
        }
        let (&(t0, s0), &(t1, s1)) = (
            recent.front().expect("a sample"),
            recent.back().expect("a sample"),
        );
        let rate = rate_between(t0, s0, t1, s1);
        let mut msg = format!(
            "{}  ETA {}",
            format_rate(rate),
            format_eta(rate, self.total.saturating_sub(step))
        );
        if let Some(r) = *shown {
            msg.push_str(&format!("  return {r:.1}"));
        }
        self.bar.set_message(msg);
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

fn rate_between(t0: Instant, s0: u64, t1: Instant, s1: u64) -> Option<f64> {
    let seconds = (t1 - t0).as_secs_f64();
    (seconds >= 0.5 && s1 > s0).then(|| (s1 - s0) as f64 / seconds)
}

/// `1,234 steps/s`, `56.7 steps/s`: three significant figures at most.
fn format_rate(rate: Option<f64>) -> String {
    match rate {
        None => "- steps/s".into(),
        Some(r) if r >= 100.0 => format!("{} steps/s", thousands(r.round() as u64)),
        Some(r) if r >= 10.0 => format!("{r:.1} steps/s"),
        Some(r) => format!("{r:.2} steps/s"),
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3h 05m`, `12m 30s`, `45s`, from the recent rate.
fn format_eta(rate: Option<f64>, remaining: u64) -> String {
    let Some(rate) = rate else {
        return "-".into();
    };
    let secs = (remaining as f64 / rate).round() as u64;
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_and_etas_readable() {
        assert_eq!(format_rate(Some(716.2491)), "716 steps/s");
        assert_eq!(format_rate(Some(12_345.6)), "12,346 steps/s");
        assert_eq!(format_rate(Some(71.62)), "71.6 steps/s");
        assert_eq!(format_rate(None), "- steps/s");
        assert_eq!(format_eta(Some(70.0), 2_500_000), "9h 55m");
        assert_eq!(format_eta(Some(100.0), 75_000), "12m 30s");
        assert_eq!(format_eta(Some(1000.0), 45_000), "45s");
    }
}
