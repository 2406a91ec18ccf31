//! Finding and reading run directories: `config.toml`, `metrics.csv` and `interventions.jsonl`.
//!
//! A run is any directory that holds both `metrics.csv` and `config.toml`; directories below a run
//! (its `checkpoint/`) are not searched. Bad lines of `metrics.csv` (a torn last line, a wrong
//! number of fields, a number that does not parse, a non-finite value) and of
//! `interventions.jsonl` are skipped and counted, never fatal.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The benchmark family a run belongs to, from the config key that names its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// `game = "..."` (the `atari` binary).
    Atari,
    /// `task = "..."` (the `humanoid` binary, HumanoidBench).
    HumanoidBench,
    /// `env = "..."` (the `classic` binary) or anything else.
    Classic,
    /// `game` with `sticky_action_prob` (the `minatar` binary); a sequence of `games` is one
    /// task named by its games (`SpaceInvaders,Asterix,Seaquest`).
    Minatar,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Atari => "Atari",
            Domain::HumanoidBench => "HumanoidBench",
            Domain::Classic => "classic control",
            Domain::Minatar => "MinAtar",
        }
    }
}

/// Logged rows by tag: `(step, value)` in file order.
pub type Series = BTreeMap<String, Vec<(u64, f64)>>;

/// One run directory, read.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    pub domain: Domain,
    /// The game, environment or task as written in the config (`Breakout`, `h1-walk-v0`).
    pub task: String,
    /// The method: [`Run::intervention`] with the configuration keys that tell this run's method
    /// apart from other runs of its intervention (`fire fire_every=1M`; see [`crate::methods`]).
    /// [`read_run`] sets it to the intervention alone; [`crate::load`] labels it.
    pub method: String,
    /// The config's `intervention` (`none` when the key is absent, or when the run has no
    /// schedule and never intervened: see `unscheduled`).
    pub intervention: String,
    /// The config named an intervention but no schedule (`fire_at`, `fire_every`, `fire_when`,
    /// `intervene_at_level = true`) and the run logged none, so it was relabelled `none` (the
    /// config's name is kept here).
    pub unscheduled: Option<String>,
    pub seed: Option<i64>,
    /// Every logged tag with its `(step, value)` rows in file order.
    pub series: Series,
    /// Steps of the interventions, from `interventions.jsonl` (or, when that file is missing or
    /// empty, from the `interventions/count` tag).
    pub interventions: Vec<u64>,
    /// Lines of `metrics.csv` and `interventions.jsonl` that were skipped.
    pub bad_lines: usize,
    /// The whole `config.toml`.
    pub config: toml::Table,
}

impl Run {
    /// The last step any row of `metrics.csv` was logged at (0 without rows).
    pub fn last_step(&self) -> u64 {
        self.series
            .values()
            .flat_map(|rows| rows.iter().map(|r| r.0))
            .max()
            .unwrap_or(0)
    }

    /// The metric's values per step, by increasing step: rows at the same step averaged (the
    /// episodes several environments finished at once), except evaluations (`eval/` tags),
    /// where the first row at a step counts: at an intervention's step the loop evaluates
    /// before and again right after it (`eval_after_intervention`), and a score is the network
    /// the run trained, not the one an intervention just reset.
    pub fn curve(&self, tag: &str) -> Vec<(u64, f64)> {
        let rows = self.series.get(tag).map(Vec::as_slice).unwrap_or(&[]);
        curve_of(rows, tag.starts_with("eval/"))
    }

    /// The score at `at`: the value at the last logged step (`None`), or at the last logged step
    /// not after `Some(step)`; returns `(step, value)`, or `None` when there is no such row.
    pub fn score(&self, tag: &str, at: Option<u64>) -> Option<(u64, f64)> {
        let curve = self.curve(tag);
        match at {
            None => curve.last().copied(),
            Some(limit) => curve.into_iter().rev().find(|&(s, _)| s <= limit),
        }
    }
}

/// `rows` per step by increasing step: the first row at a step when `first_only`, else their
/// mean (see [`Run::curve`]).
fn curve_of(rows: &[(u64, f64)], first_only: bool) -> Vec<(u64, f64)> {
    let mut by_step: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for &(s, v) in rows {
        let e = by_step.entry(s).or_insert((0.0, 0));
        if first_only && e.1 > 0 {
            continue;
        }
        e.0 += v;
        e.1 += 1;
    }
    by_step
        .into_iter()
        .map(|(s, (sum, n))| (s, sum / n as f64))
        .collect()
}

/// Every run under `roots` (each a run or a directory holding runs at any depth), sorted by path.
pub fn discover(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for root in roots {
        let meta = fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        walk(root, 0, &mut found)?;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn is_run(dir: &Path) -> bool {
    dir.join("metrics.csv").is_file() && dir.join("config.toml").is_file()
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    if is_run(dir) {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    if depth >= 16 {
        return Ok(()); // deep enough: guards against symlink loops
    }
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries.flatten() {
        if entry
            .file_type()
            .map(|t| t.is_dir() || t.is_symlink())
            .unwrap_or(false)
        {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, depth + 1, found)?;
            }
        }
    }
    Ok(())
}

/// Strips Gym/ALE decorations from a game id: `ALE/Breakout-v5`, `BreakoutNoFrameskip-v4` and
/// `Breakout` all give `Breakout`.
pub fn game_name(id: &str) -> String {
    let id = id.rsplit('/').next().unwrap_or(id);
    let id = match id.rfind("-v") {
        Some(i) if id[i + 2..].chars().all(|c| c.is_ascii_digit()) && i + 2 < id.len() => &id[..i],
        _ => id,
    };
    let id = id.strip_suffix("NoFrameskip").unwrap_or(id);
    let id = id.strip_suffix("Deterministic").unwrap_or(id);
    id.to_string()
}

/// Reads one run directory.
pub fn read_run(dir: &Path) -> Result<Run> {
    let config_path = dir.join("config.toml");
    let text = fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let config: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", config_path.display()))?;
    let string = |k: &str| config.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let games: Vec<String> = config
        .get("games")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (domain, task) = if config.contains_key("sticky_action_prob") {
        let task = if games.is_empty() {
            string("game").unwrap_or_default()
        } else {
            games.join(",")
        };
        (Domain::Minatar, task)
    } else if let Some(g) = string("game") {
        (Domain::Atari, game_name(&g))
    } else if let Some(t) = string("task") {
        (Domain::HumanoidBench, t)
    } else if let Some(e) = string("env") {
        (Domain::Classic, e)
    } else {
        bail!(
            "{} names no task (no `game`, `task` or `env` key)",
            config_path.display()
        );
    };
    let method = string("intervention").unwrap_or_else(|| "none".into());
    let seed = config.get("seed").and_then(|v| v.as_integer());

    let (series, mut bad_lines) = read_metrics(&dir.join("metrics.csv"))?;
    let (mut interventions, bad) = read_interventions(&dir.join("interventions.jsonl"));
    bad_lines += bad;
    if interventions.is_empty() {
        if let Some(rows) = series.get("interventions/count") {
            interventions = rows.iter().map(|&(s, _)| s).collect();
        }
    }
    interventions.sort_unstable();
    interventions.dedup();
    // `intervene_at_level`: the continual protocol's intervention at every level switch.
    let scheduled = ["fire_at", "fire_every", "fire_when", "intervene_at_level"]
        .iter()
        .any(|k| match config.get(*k) {
            None => false,
            Some(toml::Value::Array(a)) => !a.is_empty(),
            Some(toml::Value::String(s)) => !s.is_empty(),
            Some(toml::Value::Integer(i)) => *i > 0,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => true,
        });
    let mut method = method;
    let mut unscheduled = None;
    if method != "none" && !scheduled && interventions.is_empty() {
        unscheduled = Some(std::mem::replace(&mut method, "none".into()));
    }
    Ok(Run {
        dir: dir.to_path_buf(),
        domain,
        task,
        intervention: method.clone(),
        method,
        unscheduled,
        seed,
        series,
        interventions,
        bad_lines,
        config,
    })
}

/// Parses `metrics.csv` (`step,frames,tag,value`): the series by tag and the number of lines
/// skipped. A last line without its newline may be torn by a crash and is skipped.
pub fn read_metrics(path: &Path) -> Result<(Series, usize)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.ends_with('\n');
    let mut lines: Vec<&str> = text.lines().collect();
    let mut bad = 0;
    if !complete && !lines.is_empty() {
        lines.pop();
        bad += 1;
    }
    let mut series = Series::new();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 && line.starts_with("step,") {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(line) {
            // A well-formed NaN (an evaluation that finished no episode) is a missing value,
            // not a bad line.
            Some((_, _, value)) if !value.is_finite() => {}
            Some((step, tag, value)) => series
                .entry(tag.to_string())
                .or_default()
                .push((step, value)),
            None => bad += 1,
        }
    }
    Ok((series, bad))
}

fn parse_row(line: &str) -> Option<(u64, &str, f64)> {
    let mut f = line.trim_end_matches('\r').split(',');
    let step = f.next()?.parse().ok()?;
    let _frames: u64 = f.next()?.parse().ok()?;
    let tag = f.next()?;
    let value: f64 = f.next()?.parse().ok()?;
    if f.next().is_some() || tag.is_empty() {
        return None;
    }
    Some((step, tag, value))
}

/// Steps of the interventions in `interventions.jsonl` (absent file: none) and bad lines.
fn read_interventions(path: &Path) -> (Vec<u64>, usize) {
    let Ok(text) = fs::read_to_string(path) else {
        return (Vec::new(), 0);
    };
    let mut steps = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
        {
            Some(s) => steps.push(s),
            None => bad += 1,
        }
    }
    (steps, bad)
}

/// Parses a step count as users type it: `1250000`, `1_250_000`, `250k`, `1.25M`.
pub fn parse_step(s: &str) -> Result<u64> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G' | 'b' | 'B') => (&t[..t.len() - 1], 1e9),
        _ => (t.as_str(), 1.0),
    };
    if mult == 1.0 {
        if let Ok(v) = num.parse::<u64>() {
            return Ok(v);
        }
    }
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("`{s}` is not a step count (e.g. 1250000, 250k, 1.25M)"))?;
    let steps = v * mult;
    if steps.fract() != 0.0 {
        bail!("`{s}` is not a whole number of steps");
    }
    Ok(steps as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_names() {
        assert_eq!(game_name("ALE/Breakout-v5"), "Breakout");
        assert_eq!(game_name("BreakoutNoFrameskip-v4"), "Breakout");
        assert_eq!(game_name("DemonAttack"), "DemonAttack");
    }

    #[test]
    fn steps() {
        assert_eq!(parse_step("1.25M").unwrap(), 1_250_000);
        assert_eq!(parse_step("250k").unwrap(), 250_000);
        assert_eq!(parse_step("1_000").unwrap(), 1000);
        assert!(parse_step("1X").is_err());
        assert!(parse_step("-5").is_err());
        assert!(parse_step("0.5").is_err());
    }

    #[test]
    fn evaluations_count_the_row_before_an_intervention_other_tags_average() {
        // Step 300: the evaluation before FIRE (250) and the one right after it (40).
        let rows = [(200, 100.0), (300, 250.0), (300, 40.0), (400, 120.0)];
        assert_eq!(
            curve_of(&rows, true),
            [(200, 100.0), (300, 250.0), (400, 120.0)]
        );
        assert_eq!(
            curve_of(&rows, false),
            [(200, 100.0), (300, 145.0), (400, 120.0)]
        );
    }

    #[test]
    fn metrics_skip_bad_and_torn_lines_and_drop_nan_values_without_counting_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        fs::write(
            &p,
            "step,frames,tag,value\n0,0,eval/r,1.5\n10,40,eval/r,2\nnot,a,row\n10,40,eval/r,NaN\n20,80,eval/r,3",
        )
        .unwrap();
        let (s, bad) = read_metrics(&p).unwrap();
        assert_eq!(s["eval/r"], vec![(0, 1.5), (10, 2.0)]);
        // `not,a,row` and the torn last line; the NaN is a well-formed missing value.
        assert_eq!(bad, 2);
    }
}
