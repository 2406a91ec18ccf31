//! The level view's part of the report: the `## Continual levels` section of `report.md`, its
//! rows of `aggregates.csv`, and its figure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use super::{collect, level_stats, plot, TaskLevels};
use crate::methods::method_cmp;
use crate::stats::Estimate;
use crate::{est, num, Data, Options};

/// What the level view adds to a report.
#[derive(Clone, Debug)]
pub struct Section {
    /// The `## Continual levels` section of `report.md`.
    pub md: String,
    /// Rows of `aggregates.csv`, with the `view` and `levels` columns of [`extend_csv`].
    pub csv_rows: Vec<String>,
    /// `levels.png` and `levels.svg` (none without a finished run).
    pub figures: Vec<PathBuf>,
    /// Every estimate reported (for the report's statement of Monte-Carlo error).
    pub estimates: Vec<Estimate>,
}

fn names(runs: &[(PathBuf, String)]) -> String {
    runs.iter()
        .map(|(p, why)| format!("`{}` ({why})", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the level runs of `data`, computes their statistics, draws `levels.png`/`.svg` into
/// `opts.out`, and returns the report's section; `None` when no run has levels.
pub fn section(data: &Data, opts: &Options) -> Result<Option<Section>> {
    let levels = collect(data);
    if levels.is_empty() {
        return Ok(None);
    }
    let b = &opts.bootstrap;
    let tasks = level_stats(&levels, b);
    let mut all: BTreeSet<&String> = levels.tasks.values().flat_map(|m| m.keys()).collect();
    let methods_present = data.methods();
    all.extend(methods_present.iter());
    let mut methods: Vec<String> = all.into_iter().cloned().collect();
    methods.sort_by(|a, b| method_cmp(a, b));
    let figures = if tasks.is_empty() {
        Vec::new()
    } else {
        plot::draw(&opts.out, &tasks, &methods)?
    };

    let mut md = String::new();
    let mut csv = Vec::new();
    let mut estimates = Vec::new();
    let finished: usize = levels
        .tasks
        .values()
        .flat_map(|m| m.values())
        .map(Vec::len)
        .sum();
    writeln!(md, "## Continual levels\n")?;
    writeln!(
        md,
        "{finished} finished runs with `levels.csv` on {} task{}. A run's level-final return at \
         level k is `eval_return` in its `levels.csv`, the greedy evaluation at the end of level \
         k (levels count from 0; empty or non-finite values are missing). Its **score** is the \
         mean of its level-final returns over every level after the first (levels 1..N-1); \
         `level 0` beside it is the IQM over runs of the first level's return, and `below level \
         0` counts the runs whose score is below their own first level. Mean, median and IQM \
         over runs with 95 % bootstrap intervals ({} replicates, seed {}); the figure and the \
         per-level table show the IQM over runs, as the learning curves do.\n",
        tasks.len(),
        if tasks.len() == 1 { "" } else { "s" },
        b.reps,
        b.seed
    )?;
    if !levels.left_out.is_empty() {
        writeln!(
            md,
            "Runs left out of the level view: {}.\n",
            names(&levels.left_out)
        )?;
    }
    if !levels.unreadable.is_empty() {
        writeln!(
            md,
            "Unreadable levels.csv (left out of the level view): {}.\n",
            names(&levels.unreadable)
        )?;
    }
    let partial: Vec<(PathBuf, String)> = levels
        .tasks
        .values()
        .flat_map(|m| m.values().flatten())
        .filter(|r| r.missing() > 0)
        .map(|r| {
            let why = format!("{} of {} missing", r.missing(), r.rows.len() - 1);
            (data.runs[r.run].dir.clone(), why)
        })
        .collect();
    if !partial.is_empty() {
        writeln!(
            md,
            "Runs with a level-final return missing after level 0 (scored over the levels they \
             have): {}.\n",
            names(&partial)
        )?;
    }
    if tasks.is_empty() {
        return Ok(Some(Section {
            md,
            csv_rows: csv,
            figures,
            estimates,
        }));
    }
    writeln!(md, "![levels.png](levels.png)\n")?;
    // Tasks by their plan: `10 levels of 20000 steps (Acrobot-v1, CartPole-v1)`.
    let mut plans: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for t in &tasks {
        let plan = match t.level_steps {
            Some(s) => format!("{} levels of {s} steps", t.levels),
            None => format!("{} levels (level_steps differ between runs)", t.levels),
        };
        plans.entry(plan).or_default().push(&t.task);
    }
    let plans: Vec<String> = plans
        .into_iter()
        .map(|(p, ts)| format!("{p} ({})", ts.join(", ")))
        .collect();
    writeln!(
        md,
        "### Score: mean level-final return after the first level\n"
    )?;
    writeln!(
        md,
        "Levels: {}. Score: the mean over levels 1..N-1 of a run's level-final return.\n",
        plans.join("; ")
    )?;
    writeln!(
        md,
        "| task | method | runs | level 0 (IQM) | score: mean | score: median | score: IQM | \
         below level 0 |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    let later = |t: &TaskLevels| format!("1..{}", t.levels - 1);
    for t in &tasks {
        let d = t.domain.name();
        for m in &t.methods {
            let (n, mean, median, iqm, _, _) = m.score;
            let first = match m.per_level.first().copied().flatten() {
                Some((e, _)) => est(&e),
                None => "n/a".into(),
            };
            writeln!(
                md,
                "| {} | {} | {n} | {first} | {} | {} | {} | {} of {} |",
                t.task,
                m.method,
                est(&mean),
                est(&median),
                est(&iqm),
                m.below_first.0,
                m.below_first.1
            )?;
            for (name, e) in [("mean", mean), ("median", median), ("IQM", iqm)] {
                estimates.push(e);
                csv.push(row(d, &t.task, &m.method, "", name, n, &e, &later(t)));
            }
            for (k, e) in m.per_level.iter().enumerate() {
                if let Some((e, runs)) = e {
                    estimates.push(*e);
                    let k = k.to_string();
                    csv.push(row(d, &t.task, &m.method, "", "IQM", *runs, e, &k));
                }
            }
        }
    }
    writeln!(md)?;
    if tasks.iter().any(|t| !t.improvement.is_empty()) {
        writeln!(md, "### Probability of improvement of fire\n")?;
        writeln!(
            md,
            "P(X > Y) on the scores: the chance that a run of X scores above a run of Y on the \
             task (Mann-Whitney U / (n_X n_Y)).\n"
        )?;
        writeln!(md, "| task | X | Y | P(X > Y) |")?;
        writeln!(md, "|---|---|---|---|")?;
        for t in &tasks {
            for (y, e) in &t.improvement {
                estimates.push(*e);
                writeln!(md, "| {} | fire | {y} | {} |", t.task, est(e))?;
                let stat = "P(X>Y)";
                csv.push(row(
                    t.domain.name(),
                    &t.task,
                    "fire",
                    y,
                    stat,
                    0,
                    e,
                    &later(t),
                ));
            }
        }
        writeln!(md)?;
    }
    writeln!(md, "### Level-final return per level\n")?;
    writeln!(
        md,
        "IQM over runs of `eval_return` at each level's end (the points of levels.png).\n"
    )?;
    let width = tasks.iter().map(|t| t.levels).max().unwrap_or(0);
    let head: Vec<String> = (0..width).map(|k| k.to_string()).collect();
    writeln!(md, "| task | method | {} |", head.join(" | "))?;
    writeln!(md, "|---|---|{}", "---|".repeat(width as usize))?;
    for t in &tasks {
        for m in &t.methods {
            let cells: Vec<String> = (0..width as usize)
                .map(|k| match m.per_level.get(k) {
                    Some(Some((e, _))) => num(e.point),
                    Some(None) => "n/a".into(),
                    None => String::new(),
                })
                .collect();
            writeln!(md, "| {} | {} | {} |", t.task, m.method, cells.join(" | "))?;
        }
    }
    writeln!(md)?;
    Ok(Some(Section {
        md,
        csv_rows: csv,
        figures,
        estimates,
    }))
}

/// One row of `aggregates.csv` in the level view (`runs` 0: left empty, as probabilities of
/// improvement are elsewhere).
#[allow(clippy::too_many_arguments)]
fn row(
    scope: &str,
    task: &str,
    method: &str,
    other: &str,
    statistic: &str,
    runs: usize,
    e: &Estimate,
    levels: &str,
) -> String {
    let runs = if runs == 0 {
        String::new()
    } else {
        runs.to_string()
    };
    format!(
        "{scope},{task},{method},{other},{statistic},{runs},{},{},{},{},levels,{levels}",
        e.point, e.lo, e.hi, e.mc_se
    )
}

/// `aggregates.csv` with the level view's rows: two columns appended to every row, `view`
/// (`final` for the scores at the final step, `levels` for the level view) and `levels` (empty,
/// a level `k`, or `1..N-1` for the score over the later levels). Without level rows the file is
/// returned unchanged.
pub fn extend_csv(csv: &str, rows: &[String]) -> String {
    if rows.is_empty() {
        return csv.to_string();
    }
    let mut out = String::with_capacity(csv.len() * 2);
    for (i, line) in csv.lines().enumerate() {
        out.push_str(line);
        out.push_str(if i == 0 {
            ",view,levels\n"
        } else {
            ",final,\n"
        });
    }
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_gains_two_columns_only_with_level_rows() {
        let csv = "scope,task\nAtari,Pong\n";
        assert_eq!(extend_csv(csv, &[]), csv);
        assert_eq!(
            extend_csv(csv, &["a,b,levels,0".into()]),
            "scope,task,view,levels\nAtari,Pong,final,\na,b,levels,0\n"
        );
    }
}
