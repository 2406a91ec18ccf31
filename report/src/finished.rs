//! Which runs are done: unfinished and failed runs are left out of every table and figure
//! (or, with `--include-unfinished`, scored at their last step and listed as such).
//!
//! - **Failed**: the run directory's `sweep-outcome.json` (written by `sweep`, see
//!   `sweep/src/state.rs`) says `"state": "failed"`. The reason is the last attempt's `exit`
//!   (`exit 1`, `signal 9`) with the last line of the log tail the outcome keeps.
//! - **Unfinished**: the config's `steps` is above the run's last step, the larger of the last
//!   step logged in `metrics.csv` and the step of its checkpoint (`checkpoint/state.json`,
//!   written at the end of every run, so a run whose `log_every` does not divide `steps` still
//!   counts as finished). A run whose outcome says `finished` is finished; a config without
//!   `steps` cannot tell and counts as finished.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::runs::{parse_step, Run};

/// The outcome file `sweep` writes into each run directory.
pub const OUTCOME_FILE: &str = "sweep-outcome.json";

/// Why a run is not done: `unfinished: last step 40000 of 100000`, `failed: exit 1 (...)`;
/// `None` for a finished run.
pub fn not_done(run: &Run) -> Option<String> {
    let outcome: Option<serde_json::Value> = fs::read_to_string(run.dir.join(OUTCOME_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match outcome
        .as_ref()
        .and_then(|o| o.get("state"))
        .and_then(|s| s.as_str())
    {
        Some("failed") => return Some(format!("failed: {}", failure(outcome.as_ref()?))),
        Some("finished") => return None,
        _ => {}
    }
    let steps = match run.config.get("steps")? {
        toml::Value::Integer(i) => u64::try_from(*i).ok()?,
        toml::Value::Float(f) if *f >= 0.0 => *f as u64,
        toml::Value::String(s) => parse_step(s).ok()?,
        _ => return None,
    };
    let last = run.last_step().max(checkpoint_step(&run.dir).unwrap_or(0));
    (last < steps).then(|| format!("unfinished: last step {last} of {steps}"))
}

/// The checkpoint's step (`checkpoint/state.json`, `state.step`).
fn checkpoint_step(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("checkpoint").join("state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("state")?.get("step")?.as_u64()
}

/// `exit 1 (last log line)` from an outcome.
fn failure(outcome: &serde_json::Value) -> String {
    let exit = outcome
        .get("attempts")
        .and_then(|a| a.as_array())
        .and_then(|a| a.last())
        .and_then(|a| a.get("exit"))
        .and_then(|e| e.as_str())
        .unwrap_or("no exit recorded")
        .to_string();
    let line = outcome
        .get("log_tail")
        .and_then(|t| t.as_array())
        .and_then(|t| {
            t.iter()
                .filter_map(|l| l.as_str())
                .map(str::trim)
                .rfind(|l| !l.is_empty())
        });
    match line {
        Some(l) => {
            let mut l: String = l.replace('`', "'");
            if l.chars().count() > 200 {
                l = l.chars().take(200).collect::<String>() + "...";
            }
            format!("{exit} ({l})")
        }
        None => exit,
    }
}

/// The `## Runs left out` section (and `## Runs included unfinished`), empty when neither has a
/// run.
pub fn markdown(left_out: &[(PathBuf, String)], included: &[(PathBuf, String)]) -> String {
    let mut md = String::new();
    let list = |md: &mut String, runs: &[(PathBuf, String)], prefix: &str| {
        for (p, why) in runs {
            let _ = writeln!(md, "- `{}`: {prefix}{why}", p.display());
        }
        md.push('\n');
    };
    if !left_out.is_empty() {
        md.push_str("## Runs left out\n\n");
        md.push_str(
            "Not in any table or figure (`--include-unfinished` scores unfinished and failed \
             runs at their last step):\n\n",
        );
        list(&mut md, left_out, "");
    }
    if !included.is_empty() {
        md.push_str("## Runs included unfinished\n\n");
        md.push_str("Scored at their last step (`--include-unfinished`):\n\n");
        list(&mut md, included, "included ");
    }
    md
}
