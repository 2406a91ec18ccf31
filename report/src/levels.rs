//! The level view of continual runs: runs that play a sequence of levels (the `classic` binary
//! with `levels > 1`, each level adding its own fixed offset to the observations) and write
//! `levels.csv`, one row per finished level:
//!
//! ```text
//! level,start_step,end_step,return_mean,return_final,eval_return
//! 0,0,20000,35.2,80.1,120.5
//! ```
//!
//! A run's *level-final return* at level `k` is that row's `eval_return`, the greedy evaluation at
//! the level's end (empty or non-finite: missing). Its *score* is the mean of its level-final
//! returns over every level after the first (levels `1..N-1`; levels count from 0 as in the
//! file): how well it keeps learning once the observations have shifted. Beside it stands the
//! first level's return, so a method that falls below its own first level shows.
//!
//! Runs are grouped by task and method as the rest of the report ([`crate::methods`]); unfinished
//! and failed runs ([`crate::finished`]) are not in it unless `--include-unfinished`.
//! [`level_stats`] gives per task and method the mean, median and IQM of the scores with 95 %
//! bootstrap intervals ([`crate::task_row`]), the IQM over runs of each level's return, and the
//! probability of improvement of `fire` over each other method; [`section`] writes them into
//! `report.md` and `aggregates.csv` and draws `levels.png`/`levels.svg` ([`plot`]).
//!
//! A run belongs to the view when it holds `levels.csv` or its config has `levels > 1`. Left out
//! of it, each with the reason in the report: runs with fewer rows than their `levels` key
//! (unfinished; a torn last line is dropped first, as in `metrics.csv`), runs whose config has no
//! `levels` key or `levels < 2`, runs with another number of levels than most runs of their task,
//! and runs without a finite level-final return after level 0. A `levels.csv` that does not parse
//! (no header with the columns above, a row of the wrong width, a level out of sequence, a value
//! that is not a number, more rows than `levels`) is listed as unreadable. Neither stops the rest
//! of the report.

pub mod plot;
mod section;

pub use section::{extend_csv, section, Section};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context, Result};

use crate::methods::method_cmp;
use crate::runs::{self, Domain};
use crate::stats::{self, Bootstrap, Estimate};
use crate::{task_row, Data, Score, TaskRow};

/// The columns `levels.csv` must have (found by name in its header; other columns are ignored).
pub const COLUMNS: [&str; 6] = [
    "level",
    "start_step",
    "end_step",
    "return_mean",
    "return_final",
    "eval_return",
];

/// One finished level: a row of `levels.csv`. Empty and non-finite returns are `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelRow {
    pub level: u64,
    pub start_step: u64,
    pub end_step: u64,
    /// Mean training episode return over the level.
    pub return_mean: Option<f64>,
    /// The same over its last 10 % of steps.
    pub return_final: Option<f64>,
    /// The greedy evaluation at the level's end: the level-final return.
    pub eval_return: Option<f64>,
}

/// Parses `levels.csv`: its rows, and whether a torn last line (no newline) was dropped. An empty
/// file has no rows. Errors name the line: a header without one of [`COLUMNS`], a row with
/// another number of fields than the header, a step or level that is not a whole number, a
/// return that is not a number, a level out of sequence (rows must be levels 0, 1, 2, ...).
pub fn read_levels(path: &Path) -> Result<(Vec<LevelRow>, bool)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let torn = !text.is_empty() && !text.ends_with('\n');
    let mut lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .collect();
    if torn {
        lines.pop();
    }
    let mut lines = lines.into_iter().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok((Vec::new(), torn));
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut idx = [0usize; 6];
    for (i, c) in COLUMNS.iter().enumerate() {
        idx[i] = names
            .iter()
            .position(|n| n == c)
            .with_context(|| format!("line 1: the header `{header}` has no `{c}` column"))?;
    }
    let mut rows: Vec<LevelRow> = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        ensure!(
            f.len() == names.len(),
            "line {n}: {} fields where the header has {}",
            f.len(),
            names.len()
        );
        let int = |k: usize| {
            f[idx[k]].parse::<u64>().map_err(|_| {
                anyhow!(
                    "line {n}: {} `{}` is not a whole number",
                    COLUMNS[k],
                    f[idx[k]]
                )
            })
        };
        let real = |k: usize| -> Result<Option<f64>> {
            let s = f[idx[k]];
            if s.is_empty() {
                return Ok(None);
            }
            let v: f64 = s
                .parse()
                .map_err(|_| anyhow!("line {n}: {} `{s}` is not a number", COLUMNS[k]))?;
            Ok(v.is_finite().then_some(v))
        };
        let row = LevelRow {
            level: int(0)?,
            start_step: int(1)?,
            end_step: int(2)?,
            return_mean: real(3)?,
            return_final: real(4)?,
            eval_return: real(5)?,
        };
        ensure!(
            row.level == rows.len() as u64,
            "line {n}: level {} where level {} was due (one row per level, counting from 0)",
            row.level,
            rows.len()
        );
        rows.push(row);
    }
    Ok((rows, torn))
}

/// A finished run of the level view.
#[derive(Clone, Debug)]
pub struct LevelRun {
    /// Index into [`Data::runs`].
    pub run: usize,
    /// One per level, `levels` of them.
    pub rows: Vec<LevelRow>,
    /// The config's `level_steps`.
    pub level_steps: Option<u64>,
}

impl LevelRun {
    /// The level-final return of the first level (level 0).
    pub fn first(&self) -> Option<f64> {
        self.rows.first().and_then(|r| r.eval_return)
    }

    /// The score: the mean level-final return over levels `1..N-1` (those present).
    pub fn score(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .rows
            .iter()
            .skip(1)
            .filter_map(|r| r.eval_return)
            .collect();
        (!v.is_empty()).then(|| stats::mean(&v))
    }

    /// Levels after the first without a level-final return.
    pub fn missing(&self) -> usize {
        self.rows
            .iter()
            .skip(1)
            .filter(|r| r.eval_return.is_none())
            .count()
    }
}

/// The runs of the level view, read.
#[derive(Clone, Debug, Default)]
pub struct Levels {
    /// `(domain, task) -> method -> finished runs`.
    pub tasks: BTreeMap<(Domain, String), BTreeMap<String, Vec<LevelRun>>>,
    /// Runs left out of the view, with why.
    pub left_out: Vec<(PathBuf, String)>,
    /// Runs whose `levels.csv` could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Levels {
    /// No run has levels.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.left_out.is_empty() && self.unreadable.is_empty()
    }
}

/// `levels` and `level_steps` from a run's config (integers, or step counts as strings).
fn config_levels(dir: &Path) -> (Option<u64>, Option<u64>) {
    let table: Option<toml::Table> = fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| t.parse().ok());
    let get = |k: &str| match table.as_ref().and_then(|t| t.get(k)) {
        Some(toml::Value::Integer(i)) => u64::try_from(*i).ok(),
        Some(toml::Value::String(s)) => runs::parse_step(s).ok(),
        _ => None,
    };
    // A sequence of games (`minatar --games`): one level per game.
    let games = match table.as_ref().and_then(|t| t.get("games")) {
        Some(toml::Value::Array(a)) if a.len() > 1 => Some(a.len() as u64),
        _ => None,
    };
    (
        get("levels").filter(|&n| n > 1).or(games),
        get("level_steps").or_else(|| get("game_steps")),
    )
}

/// Reads the `levels.csv` of every run in `data` that has levels.
pub fn collect(data: &Data) -> Levels {
    let mut out = Levels::default();
    let mut finished: Vec<((Domain, String), String, u64, LevelRun)> = Vec::new();
    for (i, r) in data.runs.iter().enumerate() {
        // A sequence of games writes the same rows, with the game's name, to `games.csv`.
        let path = match r.dir.join("games.csv") {
            games if games.exists() => games,
            _ => r.dir.join("levels.csv"),
        };
        let (levels, level_steps) = config_levels(&r.dir);
        if !path.exists() {
            if let Some(n) = levels.filter(|&n| n > 1) {
                let why = format!("unfinished: no levels.csv yet (0 of {n} levels)");
                out.left_out.push((r.dir.clone(), why));
            }
            continue;
        }
        let (rows, torn) = match read_levels(&path) {
            Ok(x) => x,
            Err(e) => {
                out.unreadable.push((r.dir.clone(), format!("{e:#}")));
                continue;
            }
        };
        let torn_note = if torn {
            "; a torn last line dropped"
        } else {
            ""
        };
        let why = match levels {
            None => Some("config.toml has no `levels` key".to_string()),
            Some(n) if n < 2 => Some(format!("levels = {n}: no level after the first")),
            Some(n) if (rows.len() as u64) < n => Some(format!(
                "unfinished: {} of {n} levels in levels.csv{torn_note}",
                rows.len()
            )),
            Some(n) if rows.len() as u64 > n => {
                let why = format!("{} rows but levels = {n} in config.toml", rows.len());
                out.unreadable.push((r.dir.clone(), why));
                continue;
            }
            Some(_) if rows.iter().skip(1).all(|x| x.eval_return.is_none()) => {
                Some("no finite eval_return after level 0".to_string())
            }
            Some(_) => None,
        };
        match why {
            Some(why) => out.left_out.push((r.dir.clone(), why)),
            None => finished.push((
                (r.domain, r.task.clone()),
                r.method.clone(),
                rows.len() as u64,
                LevelRun {
                    run: i,
                    rows,
                    level_steps,
                },
            )),
        }
    }
    // One number of levels per task: the most common one (the larger on a tie).
    let mut counts: BTreeMap<&(Domain, String), BTreeMap<u64, usize>> = BTreeMap::new();
    for (key, _, n, _) in &finished {
        *counts.entry(key).or_default().entry(*n).or_default() += 1;
    }
    let modal: BTreeMap<(Domain, String), u64> = counts
        .into_iter()
        .map(|(k, c)| {
            let n = c.iter().max_by_key(|(n, c)| (**c, **n)).map(|(n, _)| *n);
            (k.clone(), n.unwrap_or(0))
        })
        .collect();
    for (key, method, n, run) in finished {
        let want = modal[&key];
        if n == want {
            out.tasks
                .entry(key)
                .or_default()
                .entry(method)
                .or_default()
                .push(run);
        } else {
            let why = format!("levels = {n} where most runs of {} have {want}", key.1);
            out.left_out.push((data.runs[run.run].dir.clone(), why));
        }
    }
    out.left_out.sort();
    out
}

/// The level view of one method on one task.
#[derive(Clone, Debug)]
pub struct MethodLevels {
    pub method: String,
    /// The runs' scores (mean level-final return over levels `1..N-1`).
    pub scores: Vec<f64>,
    /// Runs, mean, median and IQM of the scores ([`crate::task_row`]; the steps are the runs'
    /// last `end_step`).
    pub score: TaskRow,
    /// Per level: the IQM over runs of its level-final return, and how many runs have one
    /// (`None`: no run has).
    pub per_level: Vec<Option<(Estimate, usize)>>,
    /// Runs whose score is below their own level 0, of the runs with both.
    pub below_first: (usize, usize),
}

/// The level view of one task.
#[derive(Clone, Debug)]
pub struct TaskLevels {
    pub domain: Domain,
    pub task: String,
    /// Levels of its runs (N).
    pub levels: u64,
    /// Steps per level, when its runs agree.
    pub level_steps: Option<u64>,
    /// In display order.
    pub methods: Vec<MethodLevels>,
    /// `(Y, P(fire > Y))` on the scores, for every other method Y of the task (when it has
    /// `fire`).
    pub improvement: Vec<(String, Estimate)>,
}

/// The statistics of the level view, per task in order; methods in the crate's display order.
pub fn level_stats(levels: &Levels, b: &Bootstrap) -> Vec<TaskLevels> {
    let mut out = Vec::new();
    for ((domain, task), by_method) in &levels.tasks {
        let mut names: Vec<&String> = by_method.keys().collect();
        names.sort_by(|a, b| method_cmp(a, b));
        let runs: Vec<&LevelRun> = by_method.values().flatten().collect();
        let n = runs.first().map_or(0, |r| r.rows.len());
        let steps: BTreeSet<Option<u64>> = runs.iter().map(|r| r.level_steps).collect();
        let mut methods = Vec::new();
        for m in names {
            let rs = &by_method[m];
            let scored: Vec<Score> = rs
                .iter()
                .filter_map(|r| {
                    r.score().map(|value| Score {
                        run: r.run,
                        step: r.rows.last().map_or(0, |x| x.end_step),
                        value,
                    })
                })
                .collect();
            let per_level = (0..n)
                .map(|k| {
                    let v: Vec<f64> = rs.iter().filter_map(|r| r.rows[k].eval_return).collect();
                    (!v.is_empty()).then(|| {
                        let e = b.estimate(std::slice::from_ref(&v), |t| stats::iqm(&t[0]));
                        (e, v.len())
                    })
                })
                .collect();
            let both: Vec<(f64, f64)> = rs
                .iter()
                .filter_map(|r| Some((r.score()?, r.first()?)))
                .collect();
            methods.push(MethodLevels {
                method: m.clone(),
                scores: scored.iter().map(|s| s.value).collect(),
                score: task_row(&scored, b),
                per_level,
                below_first: (both.iter().filter(|(s, f)| s < f).count(), both.len()),
            });
        }
        let mut improvement = Vec::new();
        if let Some(fire) = methods.iter().find(|m| m.method == "fire") {
            for y in methods.iter().filter(|m| m.method != "fire") {
                let e = b.estimate_pair(
                    std::slice::from_ref(&fire.scores),
                    std::slice::from_ref(&y.scores),
                    stats::probability_of_improvement,
                );
                improvement.push((y.method.clone(), e));
            }
        }
        out.push(TaskLevels {
            domain: *domain,
            task: task.clone(),
            levels: n as u64,
            level_steps: if steps.len() == 1 {
                steps.into_iter().next().flatten()
            } else {
                None
            },
            methods,
            improvement,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Vec<LevelRow>, bool)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("levels.csv");
        fs::write(&p, text).unwrap();
        read_levels(&p)
    }

    const HEADER: &str = "level,start_step,end_step,return_mean,return_final,eval_return\n";

    #[test]
    fn missing_returns_and_torn_lines() {
        let (rows, torn) = parse(&format!(
            "{HEADER}0,0,10,1.5,2,3\n1,10,20,NaN,,inf\n2,20,30,4,5,6\n3,30,40,7,8,"
        ))
        .unwrap();
        assert!(torn);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].eval_return, Some(3.0));
        assert_eq!(
            (
                rows[1].return_mean,
                rows[1].return_final,
                rows[1].eval_return
            ),
            (None, None, None)
        );
        let run = LevelRun {
            run: 0,
            rows,
            level_steps: Some(10),
        };
        assert_eq!(
            (run.first(), run.score(), run.missing()),
            (Some(3.0), Some(6.0), 1)
        );
        assert_eq!(parse("").unwrap(), (Vec::new(), false));
        assert_eq!(parse("level,start").unwrap(), (Vec::new(), true));
    }

    #[test]
    fn columns_by_name() {
        let (rows, _) = parse(
            "eval_return,level,start_step,end_step,return_mean,return_final,x\n7,0,0,5,1,2,y\n",
        )
        .unwrap();
        assert_eq!(rows[0].eval_return, Some(7.0));
        assert_eq!(rows[0].end_step, 5);
    }

    #[test]
    fn bad_files_say_where() {
        let e = parse("level,eval_return\n0,1\n").unwrap_err().to_string();
        assert!(e.contains("no `start_step` column"), "{e}");
        let e = parse(&format!("{HEADER}0,0,10,1,2\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: 5 fields"), "{e}");
        let e = parse(&format!("{HEADER}0,0,10,1,2,3\n2,10,20,1,2,3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3: level 2 where level 1"), "{e}");
        let e = parse(&format!("{HEADER}0,0,10,1,2,abc\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("eval_return `abc` is not a number"), "{e}");
        let e = parse(&format!("{HEADER}0,0,-10,1,2,3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("end_step `-10` is not a whole number"), "{e}");
    }
}
