//! The shape of the data: aggregates over tasks need rliable's matrix, every method on every
//! task of the domain with the same number of runs; and one run per task, method and seed.
//!
//! [`ragged`] names the cells that break the matrix: a method with no runs on a task, or with
//! another number of runs than most cells of the domain. [`crate::domain_stats`] refuses such a
//! grid with one error (`ragged grid: method redo has no runs on Pong; method fire has 5 runs on
//! Breakout, others 6 (use --allow-ragged to aggregate anyway)`), or, with `--allow-ragged`,
//! aggregates each method over the tasks it has and the report says so. Per-task tables and the
//! level view never need the matrix and work on any grid.
//!
//! [`duplicates`] refuses two runs of one task and method with the same seed, naming both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::normalize::normalizer;
use crate::runs::{Domain, Run};
use crate::{Data, DomainStats, Options};

/// At most this many cells are named in a message; the rest are counted.
const NAMED: usize = 12;

/// The cells that break the matrix of `per` (`method -> task -> scores`) over `tasks`, methods
/// in display order; empty for a rectangular grid.
pub fn ragged(
    tasks: &[String],
    methods: &[&String],
    per: &BTreeMap<String, BTreeMap<String, Vec<f64>>>,
) -> Vec<String> {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for m in methods {
        for t in tasks {
            if let Some(v) = per[*m].get(t) {
                *counts.entry(v.len()).or_default() += 1;
            }
        }
    }
    // The common number of runs: the most frequent (the larger on a tie).
    let want = counts
        .iter()
        .max_by_key(|(n, c)| (**c, **n))
        .map_or(0, |(n, _)| *n);
    let mut out = Vec::new();
    for t in tasks {
        for m in methods {
            match per[*m].get(t) {
                None => out.push(format!("method {m} has no runs on {t}")),
                Some(v) if v.len() != want => out.push(format!(
                    "method {m} has {} run{} on {t}, others {want}",
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// The cells joined for a message, at most 12 of them (the rest counted).
pub fn describe(cells: &[String]) -> String {
    let mut s = cells[..cells.len().min(NAMED)].join("; ");
    if cells.len() > NAMED {
        s += &format!("; and {} more", cells.len() - NAMED);
    }
    s
}

/// `method -> task -> normalised scores`.
pub type Grid = BTreeMap<String, BTreeMap<String, Vec<f64>>>;

/// The tasks of `domain` with a normaliser, those without, and the normalised scores of the
/// first; `None` when no task has a normaliser (the domain has no aggregates).
pub fn normalized(data: &Data, domain: Domain) -> Option<(Vec<String>, Vec<String>, Grid)> {
    let mut tasks = Vec::new();
    let mut left_out = Vec::new();
    for (d, t) in data.scores.keys() {
        if *d != domain {
            continue;
        }
        if normalizer(domain, t).is_some() {
            tasks.push(t.clone());
        } else {
            left_out.push(t.clone());
        }
    }
    if tasks.is_empty() {
        return None;
    }
    let mut per = Grid::new();
    for t in &tasks {
        let n = normalizer(domain, t).expect("filtered above");
        for (m, s) in &data.scores[&(domain, t.clone())] {
            per.entry(m.clone())
                .or_default()
                .insert(t.clone(), s.iter().map(|x| n.apply(x.value)).collect());
        }
    }
    Some((tasks, left_out, per))
}

/// The error of [`crate::domain_stats`] for a ragged grid, without computing anything else (so
/// that [`crate::run`] fails before it creates `--out`).
pub fn check(data: &Data, opts: &Options) -> Result<()> {
    if opts.allow_ragged {
        return Ok(());
    }
    let methods = data.methods();
    let mut cells = Vec::new();
    for domain in data.domains() {
        if let Some((tasks, _, per)) = normalized(data, domain) {
            let ms: Vec<&String> = methods.iter().filter(|m| per.contains_key(*m)).collect();
            cells.extend(ragged(&tasks, &ms, &per));
        }
    }
    if !cells.is_empty() {
        bail!("{}", refusal(&cells));
    }
    Ok(())
}

/// The error for ragged `cells`.
pub fn refusal(cells: &[String]) -> String {
    format!(
        "ragged grid: {} (use --allow-ragged to aggregate anyway)",
        describe(cells)
    )
}

/// The warning of a domain aggregated although ragged (`--allow-ragged`); empty when not.
pub fn warning(ds: &DomainStats) -> String {
    if ds.ragged.is_empty() {
        return String::new();
    }
    let partial: Vec<String> = ds
        .method_tasks
        .iter()
        .filter(|(_, ts)| ts.len() < ds.tasks.len())
        .map(|(m, ts)| format!("{m} over {}", ts.join(", ")))
        .collect();
    format!(
        "\n**Warning: ragged grid** ({}). Aggregated anyway (`--allow-ragged`): each method over \
         the runs and tasks it has{}, so aggregates of methods with different tasks are not \
         comparable.\n",
        describe(&ds.ragged),
        if partial.is_empty() {
            String::new()
        } else {
            format!(" ({})", partial.join("; "))
        }
    )
}

/// The `tasks` cell of a probability of improvement: `all 3`, or `2 of 3: Breakout, Pong`.
pub fn shared_cell(common: &[String], of: usize) -> String {
    if common.len() == of {
        format!("all {of}")
    } else {
        format!("{} of {of}: {}", common.len(), common.join(", "))
    }
}

/// An error naming the directories of every two runs with the same task, method and seed.
pub fn duplicates(runs: &[Run]) -> Result<()> {
    let mut seen: BTreeMap<(Domain, &str, &str, i64), Vec<&PathBuf>> = BTreeMap::new();
    for r in runs {
        if let Some(seed) = r.seed {
            seen.entry((r.domain, &r.task, &r.method, seed))
                .or_default()
                .push(&r.dir);
        }
    }
    let groups: Vec<String> = seen
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|((_, task, method, seed), dirs)| {
            let dirs: Vec<String> = dirs.iter().map(|d| format!("`{}`", d.display())).collect();
            format!(
                "{} share task {task}, method {method} and seed {seed}",
                dirs.join(" and ")
            )
        })
        .collect();
    if !groups.is_empty() {
        bail!(
            "duplicate seeds: {} (each seed once per task and method: remove the copies, or tell \
             the methods apart with --method-keys)",
            describe(&groups)
        );
    }
    Ok(())
}
