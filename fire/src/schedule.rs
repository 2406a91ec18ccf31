//! When to intervene: at given steps, every N steps, or when a plasticity metric crosses a
//! threshold (with a cooldown). Steps are agent steps summed over parallel environments.
//!
//! ```
//! use fire::schedule::{parse_steps, Schedule, Scheduler};
//! assert_eq!(parse_steps("2.5M").unwrap(), 2_500_000);
//! let mut s = Scheduler::new(vec![Schedule::every(parse_steps("1M").unwrap()).unwrap()]);
//! assert!(!s.due(999_996, |_| None));
//! assert!(s.due(1_000_000, |_| None));   // crossed 1M
//! assert!(!s.due(1_000_004, |_| None));  // only once per crossing
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parses a step count: `1000000`, `1_000_000`, `250k`, `1M`, `2.5M`, `1G`.
///
/// Suffixes `k`/`K` (10^3), `m`/`M` (10^6), `g`/`G`/`b`/`B` (10^9). The value must be a whole,
/// non-negative number of steps: `0.5`, `1.0000005M`, `-5`, `1X` and the empty string are
/// rejected with the reason.
pub fn parse_steps(input: &str) -> Result<u64> {
    let err = |reason| Error::StepCount {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim().replace('_', "");
    if s.is_empty() {
        return Err(err("empty (expected e.g. 250k, 1M, 2.5M or 1000000)"));
    }
    if s.starts_with('-') {
        return Err(err("a step count cannot be negative"));
    }
    let (number, multiplier): (&str, u128) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c {
                'k' | 'K' => 1_000,
                'm' | 'M' => 1_000_000,
                'g' | 'G' | 'b' | 'B' => 1_000_000_000,
                _ => return Err(err("unknown suffix (use k, M or G)")),
            };
            (&s[..i], m)
        }
        _ => (s.as_str(), 1),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(err(
            "not a number (expected e.g. 250k, 1M, 2.5M or 1000000)",
        ));
    }
    if frac.len() > 18 {
        return Err(err("too many decimals"));
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err("too large"))?
    };
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err("not a number"))?
    };
    let denominator = 10u128.pow(frac.len() as u32);
    let scaled_frac = frac_value * multiplier;
    if !scaled_frac.is_multiple_of(denominator) {
        return Err(err("not a whole number of steps"));
    }
    let total = whole
        .checked_mul(multiplier)
        .and_then(|w| w.checked_add(scaled_frac / denominator))
        .filter(|&t| t <= u64::MAX as u128)
        .ok_or_else(|| err("too large"))?;
    Ok(total as u64)
}

/// Formats a step count the short way (`1M`, `250k`, `2.5M`, `1234`).
pub fn format_steps(steps: u64) -> String {
    for (div, suffix) in [(1_000_000_000u64, "G"), (1_000_000, "M"), (1_000, "k")] {
        if steps >= div {
            let value = steps as f64 / div as f64;
            let text = format!("{value}");
            if text.len() <= 6 && (value * div as f64) as u64 == steps {
                return format!("{text}{suffix}");
            }
        }
    }
    steps.to_string()
}

/// Which side of a threshold triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `metric > threshold`.
    Above,
    /// `metric < threshold`.
    Below,
}

/// "Intervene when `metric` is above (or below) `threshold`, at most once per `cooldown`
/// steps". Parsed from `dormant_ratio>0.2` or `srank<100`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricTrigger {
    /// The metric's name as the agent logs it (e.g. `dormant_ratio`).
    pub metric: String,
    /// Which side of the threshold triggers.
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
    /// Minimum steps between two triggered interventions.
    pub cooldown: u64,
}

impl MetricTrigger {
    /// Whether `value` is on the triggering side of the threshold.
    pub fn holds(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::Above => value > self.threshold,
            Comparison::Below => value < self.threshold,
        }
    }
}

impl FromStr for MetricTrigger {
    type Err = Error;

    /// Parses `NAME>VALUE` or `NAME<VALUE`; the cooldown starts at 0 (set it separately).
    fn from_str(input: &str) -> Result<Self> {
        let err = |reason: &str| Error::Schedule {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (at, comparison) = match (input.find('>'), input.find('<')) {
            (Some(i), None) => (i, Comparison::Above),
            (None, Some(i)) => (i, Comparison::Below),
            _ => {
                return Err(err(
                    "expected METRIC>VALUE or METRIC<VALUE, e.g. dormant_ratio>0.2",
                ))
            }
        };
        let metric = input[..at].trim();
        let value = input[at + 1..].trim();
        if metric.is_empty()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c))
        {
            return Err(err("the metric name must be letters, digits, _ / . or -"));
        }
        let threshold: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| err("the threshold must be a finite number"))?;
        Ok(MetricTrigger {
            metric: metric.to_owned(),
            comparison,
            threshold,
            cooldown: 0,
        })
    }
}

impl fmt::Display for MetricTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.comparison {
            Comparison::Above => '>',
            Comparison::Below => '<',
        };
        write!(f, "{}{}{}", self.metric, op, self.threshold)?;
        if self.cooldown > 0 {
            write!(f, " (cooldown {})", format_steps(self.cooldown))?;
        }
        Ok(())
    }
}

/// One rule for when to intervene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// At each of these steps (sorted, without duplicates).
    At(Vec<u64>),
    /// At every multiple of the period (never at step 0).
    Every(u64),
    /// When a metric crosses a threshold.
    OnMetric(MetricTrigger),
}

impl Schedule {
    /// At the given steps.
    pub fn at(mut steps: Vec<u64>) -> Result<Schedule> {
        if steps.is_empty() {
            return Err(Error::Schedule {
                input: String::new(),
                reason: "no steps given".into(),
            });
        }
        steps.sort_unstable();
        steps.dedup();
        Ok(Schedule::At(steps))
    }

    /// Every `period` steps; the period must be positive.
    pub fn every(period: u64) -> Result<Schedule> {
        if period == 0 {
            return Err(Error::Schedule {
                input: "0".into(),
                reason: "the period must be at least one step".into(),
            });
        }
        Ok(Schedule::Every(period))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::At(steps) => {
                let list: Vec<String> = steps.iter().map(|&s| format_steps(s)).collect();
                write!(f, "at {}", list.join(", "))
            }
            Schedule::Every(p) => write!(f, "every {}", format_steps(*p)),
            Schedule::OnMetric(t) => write!(f, "when {t}"),
        }
    }
}

/// Where a [`Scheduler`] stands; saved in checkpoints so a resumed run does not fire twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// The last step [`Scheduler::due`] was asked about.
    pub last_step: u64,
    /// The step of the last intervention it allowed.
    pub last_fired: Option<u64>,
}

/// Decides, step by step, whether any of its schedules is due.
#[derive(Clone, Debug, Default)]
pub struct Scheduler {
    schedules: Vec<Schedule>,
    state: SchedulerState,
}

impl Scheduler {
    /// A scheduler over these rules (none: never due).
    pub fn new(schedules: Vec<Schedule>) -> Self {
        Self {
            schedules,
            state: SchedulerState::default(),
        }
    }

    /// Restores a saved position.
    pub fn with_state(mut self, state: SchedulerState) -> Self {
        self.state = state;
        self
    }

    /// The current position.
    pub fn state(&self) -> SchedulerState {
        self.state
    }

    /// The rules.
    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Whether to intervene now, at `step` (steps advance by the number of environments, so a
    /// milestone counts as reached when it lies in `(last step asked, step]`). `metric` looks
    /// up the latest value of a named metric; metric triggers wait while it returns `None`.
    pub fn due(&mut self, step: u64, metric: impl Fn(&str) -> Option<f64>) -> bool {
        let previous = self.state.last_step;
        let crossed = |m: u64| previous < m && m <= step;
        let due = self.schedules.iter().any(|schedule| match schedule {
            Schedule::At(steps) => steps.iter().any(|&m| crossed(m)),
            Schedule::Every(period) => {
                let milestone = step / period * period;
                milestone > 0 && crossed(milestone)
            }
            Schedule::OnMetric(trigger) => {
                let cooled = self
                    .state
                    .last_fired
                    .is_none_or(|last| step.saturating_sub(last) >= trigger.cooldown);
                cooled && metric(&trigger.metric).is_some_and(|v| trigger.holds(v))
            }
        });
        self.state.last_step = self.state.last_step.max(step);
        if due {
            self.state.last_fired = Some(step);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_users_type() {
        let cases = [
            ("1M", 1_000_000),
            ("1m", 1_000_000),
            ("250k", 250_000),
            ("250K", 250_000),
            ("2.5M", 2_500_000),
            ("1.25M", 1_250_000),
            ("1_000_000", 1_000_000),
            ("1000000", 1_000_000),
            (" 42 ", 42),
            ("0", 0),
            (".5k", 500),
            ("1G", 1_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_steps(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects_bad_step_counts_with_a_reason() {
        let cases = [
            ("1X", "suffix"),
            ("-5", "negative"),
            ("0.5", "whole"),
            ("1.0000005M", "whole"),
            ("", "empty"),
            ("   ", "empty"),
            ("M", "not a number"),
            ("1.2.3", "not a number"),
            ("abc", "suffix"),
            ("99999999999999999999G", "too large"),
        ];
        for (text, reason) in cases {
            let err = parse_steps(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains(&format!("`{text}`")), "{err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for steps in [1_000_000, 250_000, 2_500_000, 1_234, 1_250_000, 7] {
            assert_eq!(parse_steps(&format_steps(steps)).unwrap(), steps);
        }
        assert_eq!(format_steps(1_000_000), "1M");
        assert_eq!(format_steps(1_250_000), "1.25M");
    }

    #[test]
    fn every_fires_once_per_multiple_with_four_envs() {
        let mut s = Scheduler::new(vec![Schedule::every(10).unwrap()]);
        let fired: Vec<u64> = (1..=12)
            .map(|i| i * 4)
            .filter(|&step| s.due(step, |_| None))
            .collect();
        assert_eq!(fired, vec![12, 20, 32, 40]);
        assert!(Schedule::every(0).is_err());
    }

    #[test]
    fn at_fires_at_each_listed_step_once() {
        let mut s = Scheduler::new(vec![Schedule::at(vec![8, 3, 8]).unwrap()]);
        let fired: Vec<u64> = (1..=10).filter(|&step| s.due(step, |_| None)).collect();
        assert_eq!(fired, vec![3, 8]);
    }

    #[test]
    fn metric_trigger_respects_threshold_and_cooldown() {
        let mut t: MetricTrigger = "dormant_ratio>0.2".parse().unwrap();
        t.cooldown = 100;
        let mut s = Scheduler::new(vec![Schedule::OnMetric(t)]);
        let value = |step: u64| if step >= 50 { Some(0.5) } else { Some(0.1) };
        let fired: Vec<u64> = (1..=30)
            .map(|i| i * 10)
            .filter(|&step| {
                s.due(step, |name| {
                    (name == "dormant_ratio").then(|| value(step)).flatten()
                })
            })
            .collect();
        assert_eq!(fired, vec![50, 150, 250]);
    }

    #[test]
    fn trigger_parse_errors() {
        for bad in ["dormant", "x>y", ">0.3", "a>1<2", "a>nan"] {
            assert!(bad.parse::<MetricTrigger>().is_err(), "{bad}");
        }
        let t: MetricTrigger = "srank < 50".parse().unwrap();
        assert_eq!(t.comparison, Comparison::Below);
        assert!(t.holds(49.0) && !t.holds(50.0));
    }

    #[test]
    fn resumed_scheduler_does_not_fire_again() {
        let mut s = Scheduler::new(vec![Schedule::at(vec![100]).unwrap()]);
        assert!(s.due(100, |_| None));
        let mut resumed = Scheduler::new(s.schedules().to_vec()).with_state(s.state());
        assert!(!resumed.due(104, |_| None));
    }
}
