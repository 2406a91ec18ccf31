//! `report`: statistics, tables and figures from fire-rl run directories.
//!
//! The `report` binary reads the run directories written by the `atari`, `classic` and `humanoid`
//! binaries (a sweep's `results/sweeps/<name>/`, or any directories holding runs; see [`runs`]),
//! takes each run's final score of one metric (`eval/episodic_return` by default), and writes to
//! `--out`:
//!
//! - `report.md`: per task and method the mean, median and IQM of the final score with 95 %
//!   bootstrap intervals and the run count; per domain the aggregate over tasks of normalised
//!   scores (IQM, mean, median, optimality gap with stratified bootstrap intervals) and the
//!   probability of improvement of each method over each other, with the tasks each pair
//!   shares; the runs left out (unfinished or failed) with the reason;
//! - `aggregates.csv`: the same numbers, one per row;
//! - figures as PNG and SVG: learning curves per task (IQM over seeds with a 95 % band, the
//!   interventions marked), aggregate intervals, probabilities of improvement, performance
//!   profiles, and the plasticity metrics around the interventions.
//!
//! Continual runs, which play a sequence of levels and write `levels.csv` (the `classic` binary
//! with `levels > 1`), get a level view besides ([`levels`], found automatically; a mix with
//! other runs is fine): a `Continual levels` section in `report.md` with, per task and method,
//! the mean level-final return (the greedy evaluation at each level's end) over every level after
//! the first (mean, median and IQM with bootstrap intervals, the first level's return beside it,
//! the probability of improvement of `fire` over each other method, and the IQM per level); the
//! same numbers in `aggregates.csv` as rows whose appended `view` column reads `levels` (the
//! column and its companion `levels` appear only in reports with a level view); and
//! `levels.png`/`levels.svg`, the level-final return against the level per task. Unfinished runs
//! and unreadable `levels.csv` files are listed with the reason and left out of the view only.
//!
//! The statistics ([`stats`]) are those of `rliable` (Agarwal et al., NeurIPS 2021) and agree with
//! `rliable==1.2.0` on the same scores: point estimates exactly, interval ends within their
//! Monte-Carlo error (checked against a fixture made by rliable itself, `tests/data/`).
//! Normalisation ([`normalize`]): Atari human-normalised with DQN Zoo's random and human scores,
//! HumanoidBench `(R - random) / (bar - random)` with the FIRE paper's bars.
//!
//! What is pooled and what is scored (issue 22):
//!
//! - **Methods** ([`methods`]): a method is the config's `intervention` together with every
//!   config key whose value differs between runs of that intervention on one task (the seed,
//!   paths and keys that cannot change results aside; for `none`, also the schedule and the
//!   intervention's parameters), labelled by those keys: FIRE every 1M and FIRE at 1.25M are
//!   `fire fire_every=1M` and `fire fire_at=1.25M`, never one `fire`. When only the intervention
//!   differs, methods are the bare intervention names. `--method-keys K1,K2`
//!   ([`Options::method_keys`]) names the keys instead.
//! - **Unfinished and failed runs** ([`finished`]): a run whose last step is below its config's
//!   `steps`, or that `sweep-outcome.json` marks failed, is in no table or figure and is listed
//!   under `## Runs left out` with the reason; `--include-unfinished` scores it at its last step
//!   (listed under `## Runs included unfinished`).
//! - **Rectangular data** ([`grid`]): aggregates over tasks (per domain, and the probability of
//!   improvement) need every method on every task with the same number of runs, as rliable's
//!   matrix; otherwise one error names the missing cells, or with `--allow-ragged` the report
//!   warns and aggregates each method over the tasks it has (the probability of improvement
//!   lists the tasks each pair shares). Per-task tables and the level view work on any grid;
//!   classic-control tasks have no normaliser and are never aggregated over tasks. Two runs of
//!   one task and method with the same seed are an error naming both.
//!
//! The crate reads files only: it depends on no other workspace crate and not on libtorch. Figures
//! use `plotters` with a bundled DejaVu Sans (`assets/`, Bitstream Vera licence), so PNG text
//! renders on machines without system fonts.
//!
//! ```no_run
//! let opts = report::Options::new(vec!["results/sweeps/paper".into()], "results/report".into());
//! let summary = report::run(&opts)?;
//! println!("{} runs, report at {}", summary.runs, summary.report_md.display());
//! # anyhow::Ok(())
//! ```

pub mod finished;
pub mod grid;
pub mod levels;
pub mod methods;
pub mod normalize;
pub mod plots;
pub mod runs;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use normalize::normalized_label;
use runs::{Domain, Run};
use stats::{Aggregate, Bootstrap, Estimate};

/// What to report and where.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run directories or directories holding runs (searched recursively).
    pub dirs: Vec<PathBuf>,
    /// Output directory (created).
    pub out: PathBuf,
    /// The scored metric tag.
    pub metric: String,
    /// Score at the last logged step (`None`) or at the last logged step not after this one.
    pub at: Option<u64>,
    /// The bootstrap of the tables (rliable's 50,000 replicates by default).
    pub bootstrap: Bootstrap,
    /// Replicates of the bootstrap behind learning-curve bands and performance profiles.
    pub curve_reps: usize,
    /// The configuration keys that make a method besides the intervention (`None`: the keys
    /// whose values differ between runs of an intervention on a task; see [`methods`]).
    pub method_keys: Option<Vec<String>>,
    /// Score unfinished and failed runs at their last step instead of leaving them out.
    pub include_unfinished: bool,
    /// Aggregate over tasks although some method lacks a task or has another number of runs
    /// (a warning in the report) instead of refusing ([`grid`]).
    pub allow_ragged: bool,
}

impl Options {
    /// Defaults: `eval/episodic_return` at the final step, 50,000 replicates (2,000 for curves
    /// and profiles, as rliable's profiles), seed 0; methods told apart by the keys that differ,
    /// unfinished runs left out, ragged grids refused.
    pub fn new(dirs: Vec<PathBuf>, out: PathBuf) -> Self {
        Self {
            dirs,
            out,
            metric: "eval/episodic_return".into(),
            at: None,
            bootstrap: Bootstrap::default(),
            curve_reps: 2000,
            method_keys: None,
            include_unfinished: false,
            allow_ragged: false,
        }
    }
}

/// What [`run`] wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Runs read and not left out.
    pub runs: usize,
    /// Runs left out (unfinished or failed).
    pub left_out: usize,
    pub report_md: PathBuf,
    pub aggregates_csv: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// One scored run.
#[derive(Clone, Debug)]
pub struct Score {
    pub run: usize,
    pub step: u64,
    pub value: f64,
}

/// The runs, read, and their final scores grouped by task and method.
pub struct Data {
    pub runs: Vec<Run>,
    /// Runs that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Runs that have the metric logged but no row at or before `--at`.
    pub unscored: Vec<PathBuf>,
    /// Unfinished and failed runs, left out (not in `runs`), with why ([`finished`]).
    pub left_out: Vec<(PathBuf, String)>,
    /// Unfinished and failed runs scored anyway (`--include-unfinished`; in `runs`), with why.
    pub included_unfinished: Vec<(PathBuf, String)>,
    /// `(domain, task) -> method -> scores`.
    pub scores: BTreeMap<(Domain, String), BTreeMap<String, Vec<Score>>>,
}

impl Data {
    /// Every method present, in display order ([`methods::method_cmp`]): by intervention,
    /// `none` first, then the paper's methods, then the rest alphabetically.
    pub fn methods(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.scores.values().flat_map(|m| m.keys()).collect();
        let mut v: Vec<String> = all.into_iter().cloned().collect();
        v.sort_by(|a, b| methods::method_cmp(a, b));
        v
    }

    /// Domains present, in order.
    pub fn domains(&self) -> Vec<Domain> {
        let s: BTreeSet<Domain> = self.scores.keys().map(|(d, _)| *d).collect();
        s.into_iter().collect()
    }
}

/// The rank of a method's intervention in the display order.
pub(crate) fn method_rank(m: &str) -> usize {
    let m = methods::intervention_of(m);
    const ORDER: [&str; 5] = [
        "none",
        "fire",
        "full-reset",
        "shrink-perturb",
        "plasticity-injection",
    ];
    ORDER.iter().position(|o| *o == m).unwrap_or(ORDER.len())
}

/// Reads and scores every run under `opts.dirs`: leaves out unfinished and failed runs (unless
/// `opts.include_unfinished`), labels methods ([`methods::assign`]). Errors (one line each): no
/// runs, every run left out, the metric logged by no run (the message lists the tags present),
/// a `--method-keys` key no config has, two runs of one task and method with the same seed.
pub fn load(opts: &Options) -> Result<Data> {
    let dirs = runs::discover(&opts.dirs)?;
    if dirs.is_empty() {
        let names: Vec<String> = opts.dirs.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "no runs under {} (a run is a directory holding metrics.csv and config.toml)",
            names.join(", ")
        );
    }
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for d in dirs {
        match runs::read_run(&d) {
            Ok(r) => runs.push(r),
            Err(e) => unreadable.push((d, format!("{e:#}"))),
        }
    }
    if runs.is_empty() {
        bail!(
            "none of the {} runs found could be read (first: {}: {})",
            unreadable.len(),
            unreadable[0].0.display(),
            unreadable[0].1
        );
    }
    let mut left_out = Vec::new();
    let mut included_unfinished = Vec::new();
    runs.retain(|r| match finished::not_done(r) {
        None => true,
        Some(why) if opts.include_unfinished => {
            included_unfinished.push((r.dir.clone(), why));
            true
        }
        Some(why) => {
            left_out.push((r.dir.clone(), why));
            false
        }
    });
    if runs.is_empty() {
        bail!(
            "all {} runs are unfinished or failed (first: {}: {}); --include-unfinished scores \
             them at their last step",
            left_out.len(),
            left_out[0].0.display(),
            left_out[0].1
        );
    }
    methods::assign(&mut runs, opts.method_keys.as_deref())?;
    grid::duplicates(&runs)?;
    if !runs.iter().any(|r| r.series.contains_key(&opts.metric)) {
        let tags: BTreeSet<&String> = runs.iter().flat_map(|r| r.series.keys()).collect();
        let tags: Vec<&str> = tags.into_iter().map(String::as_str).collect();
        bail!(
            "metric `{}` is not logged by any of the {} runs; present: {}",
            opts.metric,
            runs.len(),
            tags.join(", ")
        );
    }
    let mut scores: BTreeMap<(Domain, String), BTreeMap<String, Vec<Score>>> = BTreeMap::new();
    let mut unscored = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if !r.series.contains_key(&opts.metric) {
            unscored.push(r.dir.clone());
            continue;
        }
        match r.score(&opts.metric, opts.at) {
            Some((step, value)) => scores
                .entry((r.domain, r.task.clone()))
                .or_default()
                .entry(r.method.clone())
                .or_default()
                .push(Score {
                    run: i,
                    step,
                    value,
                }),
            None => unscored.push(r.dir.clone()),
        }
    }
    Ok(Data {
        runs,
        unreadable,
        unscored,
        left_out,
        included_unfinished,
        scores,
    })
}

/// Aggregate statistics of one domain.
pub struct DomainStats {
    pub domain: Domain,
    /// Tasks aggregated (those with a normaliser), in order.
    pub tasks: Vec<String>,
    /// Tasks left out (no normaliser).
    pub left_out: Vec<String>,
    /// `method -> normalised scores per task` (tasks the method has).
    pub normalized: BTreeMap<String, Vec<Vec<f64>>>,
    /// `method -> tasks it has`, in the order of `normalized`'s columns.
    pub method_tasks: BTreeMap<String, Vec<String>>,
    /// `method -> (aggregate -> estimate)`, every method (over the tasks it has: all of them
    /// unless `ragged`).
    pub aggregates: Vec<(String, Vec<(Aggregate, Estimate)>)>,
    /// The cells that break rliable's matrix ([`grid::ragged`]), aggregated anyway because of
    /// `--allow-ragged`; empty for a rectangular grid.
    pub ragged: Vec<String>,
    /// `(x, y, P(x > y))` over the tasks both have.
    pub improvement: Vec<(String, String, Estimate)>,
    /// The tasks each pair of `improvement` shares, in the same order.
    pub shared: Vec<Vec<String>>,
    /// Thresholds and, per method, the fraction of runs above each with its interval.
    pub profile_taus: Vec<f64>,
    pub profiles: Vec<(String, Vec<Estimate>)>,
}

/// Per-domain aggregates of normalised scores. A grid that is not rliable's matrix (some method
/// without a task, or with another number of runs) is an error naming the cells, unless
/// `opts.allow_ragged` ([`grid`]).
pub fn domain_stats(data: &Data, opts: &Options) -> Result<Vec<DomainStats>> {
    let methods = data.methods();
    let mut out = Vec::new();
    for domain in data.domains() {
        let Some((tasks, left_out, per)) = grid::normalized(data, domain) else {
            continue;
        };
        let ms: Vec<&String> = methods.iter().filter(|m| per.contains_key(*m)).collect();
        let ragged = grid::ragged(&tasks, &ms, &per);
        if !ragged.is_empty() && !opts.allow_ragged {
            bail!("{}", grid::refusal(&ragged));
        }
        let mut normalized = BTreeMap::new();
        let mut method_tasks = BTreeMap::new();
        for m in &ms {
            normalized.insert((*m).clone(), per[*m].values().cloned().collect::<Vec<_>>());
            method_tasks.insert((*m).clone(), per[*m].keys().cloned().collect::<Vec<_>>());
        }
        let mut aggregates = Vec::new();
        for m in &ms {
            let cols = &normalized[*m];
            let est = Aggregate::ALL
                .iter()
                .map(|&a| (a, opts.bootstrap.estimate(cols, |t| a.eval(t))))
                .collect();
            aggregates.push(((*m).clone(), est));
        }
        let mut improvement = Vec::new();
        let mut shared = Vec::new();
        for x in &ms {
            for y in &ms {
                if x == y {
                    continue;
                }
                let common: Vec<&String> = per[*x]
                    .keys()
                    .filter(|t| per[*y].contains_key(*t))
                    .collect();
                if common.is_empty() {
                    continue;
                }
                let cx: Vec<Vec<f64>> = common.iter().map(|t| per[*x][*t].clone()).collect();
                let cy: Vec<Vec<f64>> = common.iter().map(|t| per[*y][*t].clone()).collect();
                let e = opts
                    .bootstrap
                    .estimate_pair(&cx, &cy, stats::probability_of_improvement);
                improvement.push(((*x).clone(), (*y).clone(), e));
                shared.push(common.into_iter().cloned().collect());
            }
        }
        let all: Vec<f64> = ms
            .iter()
            .flat_map(|m| normalized[*m].iter().flatten().copied())
            .collect();
        let hi = all.iter().copied().fold(1.0f64, f64::max) * 1.05;
        let lo = all.iter().copied().fold(0.0f64, f64::min);
        let profile_taus: Vec<f64> = (0..=100)
            .map(|i| lo + (hi - lo) * i as f64 / 100.0)
            .collect();
        let pb = Bootstrap {
            reps: opts.curve_reps,
            ..opts.bootstrap
        };
        let profiles = ms
            .iter()
            .map(|m| {
                let cols = &normalized[*m];
                let taus = profile_taus.clone();
                let e = pb.estimate_many(cols, taus.len(), move |t| {
                    stats::score_distribution(t, &taus)
                });
                ((*m).clone(), e)
            })
            .collect();
        out.push(DomainStats {
            domain,
            tasks,
            left_out,
            normalized,
            method_tasks,
            aggregates,
            ragged,
            improvement,
            shared,
            profile_taus,
            profiles,
        });
    }
    Ok(out)
}

/// A learning curve of one method on one task: per x, the IQM over runs and its 95 % band.
pub struct Curve {
    pub method: String,
    /// `(step, IQM, lower, upper, runs)`.
    pub points: Vec<(u64, f64, f64, f64, usize)>,
    /// Steps of the interventions of its runs.
    pub interventions: Vec<u64>,
}

/// Values of runs on a common step grid: the runs' own steps when all runs log the same steps
/// (evaluations), else the mean of each run's rows in 100 equal bins (training episodes).
pub fn align(curves: &[Vec<(u64, f64)>]) -> Vec<(u64, Vec<f64>)> {
    let steps: Vec<Vec<u64>> = curves
        .iter()
        .map(|c| c.iter().map(|p| p.0).collect())
        .collect();
    if steps.windows(2).all(|w| w[0] == w[1]) {
        let n = steps.first().map_or(0, Vec::len);
        return (0..n)
            .map(|i| (steps[0][i], curves.iter().map(|c| c[i].1).collect()))
            .collect();
    }
    let max = curves
        .iter()
        .flat_map(|c| c.last())
        .map(|p| p.0)
        .max()
        .unwrap_or(0)
        .max(1);
    let bins = 100u64;
    let width = max.div_ceil(bins).max(1);
    let mut grid: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for c in curves {
        let mut acc: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
        for &(s, v) in c {
            let b = (s / width).min(bins - 1);
            let e = acc.entry(b).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
        for (b, (sum, n)) in acc {
            grid.entry(b).or_default().push(sum / n as f64);
        }
    }
    grid.into_iter()
        .map(|(b, v)| (b * width + width / 2, v))
        .collect()
}

/// Learning curves of the scored metric for one task, one per method.
pub fn task_curves(data: &Data, key: &(Domain, String), opts: &Options) -> Vec<Curve> {
    let b = Bootstrap {
        reps: opts.curve_reps,
        ..opts.bootstrap
    };
    let mut out = Vec::new();
    let methods = data.methods();
    for m in methods.iter().filter(|m| data.scores[key].contains_key(*m)) {
        let runs: Vec<&Run> = data.scores[key][m]
            .iter()
            .map(|s| &data.runs[s.run])
            .collect();
        let curves: Vec<Vec<(u64, f64)>> = runs.iter().map(|r| r.curve(&opts.metric)).collect();
        let points = align(&curves)
            .into_iter()
            .map(|(s, v)| {
                let e = b.estimate(std::slice::from_ref(&v), |t| stats::iqm(&t[0]));
                (s, e.point, e.lo, e.hi, v.len())
            })
            .collect();
        let mut interventions: Vec<u64> = runs
            .iter()
            .flat_map(|r| r.interventions.iter().copied())
            .collect();
        interventions.sort_unstable();
        interventions.dedup();
        out.push(Curve {
            method: m.clone(),
            points,
            interventions,
        });
    }
    out
}

/// The plasticity tags drawn around interventions, with their axis labels.
pub const PLASTICITY: [(&str, &str); 3] = [
    ("plasticity/dormant_ratio", "dormant ratio"),
    ("plasticity/effective_rank", "effective rank"),
    ("plasticity/dfi_encoder", "DfI (encoder)"),
];

/// Formats a number for tables: one decimal from 100 on, else three.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

pub(crate) fn est(e: &Estimate) -> String {
    format!("{} [{}, {}]", num(e.point), num(e.lo), num(e.hi))
}

fn check_writable(out: &Path) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("cannot create --out {}", out.display()))?;
    let probe = out.join(".report-write-test");
    fs::write(&probe, b"").with_context(|| format!("cannot write to --out {}", out.display()))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

/// Per task and method: `(runs, mean, median, IQM, first and last scored step)`.
pub type TaskRow = (usize, Estimate, Estimate, Estimate, u64, u64);

/// The per-task statistics of one method's scores (bootstrap over runs).
pub fn task_row(scores: &[Score], b: &Bootstrap) -> TaskRow {
    let v = vec![scores.iter().map(|s| s.value).collect::<Vec<f64>>()];
    let mean = b.estimate(&v, |t| stats::mean(&t[0]));
    let median = b.estimate(&v, |t| stats::median(&t[0]));
    let iqm = b.estimate(&v, |t| stats::iqm(&t[0]));
    let first = scores.iter().map(|s| s.step).min().unwrap_or(0);
    let last = scores.iter().map(|s| s.step).max().unwrap_or(0);
    (scores.len(), mean, median, iqm, first, last)
}

/// Reads the runs, computes everything and writes `report.md`, `aggregates.csv` and the figures
/// into `opts.out`.
pub fn run(opts: &Options) -> Result<Summary> {
    // Fail on bad input and an unwritable --out before the (long) statistics.
    let data = load(opts)?;
    grid::check(&data, opts)?;
    check_writable(&opts.out)?;
    let domains = domain_stats(&data, opts)?;
    let mut md = String::new();
    let mut csv =
        String::from("scope,task,method,other,statistic,runs,point,ci_low,ci_high,mc_se\n");
    let b = &opts.bootstrap;
    let at = match opts.at {
        None => "the last logged step of each run".to_string(),
        Some(s) => format!("the last logged step at or before {s}"),
    };
    let bad: usize = data.runs.iter().map(|r| r.bad_lines).sum();
    writeln!(md, "# Report: `{}`\n", opts.metric)?;
    let left = match data.left_out.len() {
        0 => String::new(),
        n => format!(" ({n} more left out: see Runs left out)"),
    };
    writeln!(
        md,
        "{} runs{left} from {}; score = `{}` at {at}. Intervals: 95 % percentile bootstrap, {} \
         replicates (seed {}); stratified over tasks for aggregates, as rliable.\n",
        data.runs.len(),
        opts.dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect::<Vec<_>>()
            .join(", "),
        opts.metric,
        b.reps,
        b.seed
    )?;
    if bad > 0 {
        let worst: Vec<String> = data
            .runs
            .iter()
            .filter(|r| r.bad_lines > 0)
            .map(|r| format!("`{}` ({})", r.dir.display(), r.bad_lines))
            .collect();
        writeln!(
            md,
            "Skipped {bad} bad lines (torn or malformed): {}.\n",
            worst.join(", ")
        )?;
    }
    for (p, why) in &data.unreadable {
        writeln!(md, "Unreadable run `{}`: {why}.\n", p.display())?;
    }
    if !data.unscored.is_empty() {
        let names: Vec<String> = data
            .unscored
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        writeln!(
            md,
            "Runs without a `{}` score (left out): {}.\n",
            opts.metric,
            names.join(", ")
        )?;
    }

    let relabelled: Vec<String> = data
        .runs
        .iter()
        .filter_map(|r| {
            r.unscheduled
                .as_ref()
                .map(|m| format!("`{}` ({m})", r.dir.display()))
        })
        .collect();
    if !relabelled.is_empty() {
        writeln!(
            md,
            "Counted as `none` (an intervention named but no schedule, and none logged): {}.\n",
            relabelled.join(", ")
        )?;
    }
    md.push_str(&finished::markdown(
        &data.left_out,
        &data.included_unfinished,
    ));

    // Per task.
    writeln!(md, "## Final scores per task\n")?;
    writeln!(
        md,
        "Raw `{}`; mean, median and IQM over runs with 95 % bootstrap intervals.\n",
        opts.metric
    )?;
    writeln!(
        md,
        "| task | method | runs | mean | median | IQM | scored at step |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    let mut mc_max: f64 = 0.0;
    let mut mc_rel: f64 = 0.0;
    let mut track = |e: &Estimate| {
        mc_max = mc_max.max(e.mc_se);
        let width = (e.hi - e.lo).abs();
        if width > 0.0 {
            mc_rel = mc_rel.max(e.mc_se / width);
        }
    };
    for ((domain, task), by_method) in &data.scores {
        for m in data.methods().iter().filter(|m| by_method.contains_key(*m)) {
            let (n, mean, median, iqm, first, last) = task_row(&by_method[m], b);
            let steps = if first == last {
                first.to_string()
            } else {
                format!("{first}..{last} (differs between runs)")
            };
            writeln!(
                md,
                "| {task} | {m} | {n} | {} | {} | {} | {steps} |",
                est(&mean),
                est(&median),
                est(&iqm)
            )?;
            for (name, e) in [("mean", mean), ("median", median), ("IQM", iqm)] {
                track(&e);
                writeln!(
                    csv,
                    "{},{task},{m},,{name},{n},{},{},{},{}",
                    domain.name(),
                    e.point,
                    e.lo,
                    e.hi,
                    e.mc_se
                )?;
            }
        }
    }
    writeln!(md)?;

    // Aggregates.
    for ds in &domains {
        let label = normalized_label(ds.domain);
        writeln!(md, "## {}: aggregate {label}s\n", ds.domain.name())?;
        writeln!(
            md,
            "Over {} tasks ({}); {}.{}\n",
            ds.tasks.len(),
            ds.tasks.join(", "),
            match ds.domain {
                Domain::Atari =>
                    "human-normalised (R - random) / (human - random) with DQN Zoo's Atari-57 table",
                _ => "(R - random) / (bar - random) with the FIRE paper's success bars",
            },
            if ds.left_out.is_empty() {
                String::new()
            } else {
                format!(" Left out (no normaliser): {}.", ds.left_out.join(", "))
            }
        )?;
        writeln!(
            md,
            "| method | runs | IQM | mean | median | optimality gap |"
        )?;
        writeln!(md, "|---|---|---|---|---|---|")?;
        for (m, es) in &ds.aggregates {
            let runs: usize = ds.normalized[m].iter().map(Vec::len).sum();
            let get = |a: Aggregate| es.iter().find(|(x, _)| *x == a).map(|(_, e)| *e).unwrap();
            writeln!(
                md,
                "| {m} | {runs} | {} | {} | {} | {} |",
                est(&get(Aggregate::Iqm)),
                est(&get(Aggregate::Mean)),
                est(&get(Aggregate::Median)),
                est(&get(Aggregate::OptimalityGap))
            )?;
            for (a, e) in es {
                track(e);
                writeln!(
                    csv,
                    "{},,{m},,{},{runs},{},{},{},{}",
                    ds.domain.name(),
                    a.name(),
                    e.point,
                    e.lo,
                    e.hi,
                    e.mc_se
                )?;
            }
        }
        md.push_str(&grid::warning(ds));
        writeln!(md)?;
        if !ds.improvement.is_empty() {
            writeln!(md, "### Probability of improvement\n")?;
            writeln!(
                md,
                "P(X > Y): the chance that a run of X scores above a run of Y on a task, averaged \
                 over the tasks both have (Mann-Whitney U / (n_X n_Y)), listed under `tasks`.\n"
            )?;
            writeln!(md, "| X | Y | P(X > Y) | tasks |")?;
            writeln!(md, "|---|---|---|---|")?;
            for ((x, y, e), common) in ds.improvement.iter().zip(&ds.shared) {
                track(e);
                let all = common.len() == ds.tasks.len();
                let tasks = grid::shared_cell(common, ds.tasks.len());
                writeln!(md, "| {x} | {y} | {} | {tasks} |", est(e))?;
                writeln!(
                    csv,
                    "{},{},{x},{y},P(X>Y),,{},{},{},{}",
                    ds.domain.name(),
                    if all { String::new() } else { common.join(";") },
                    e.point,
                    e.lo,
                    e.hi,
                    e.mc_se
                )?;
            }
            writeln!(md)?;
        }
    }

    // Continual levels (runs with levels.csv).
    let level_view = levels::section(&data, opts)?;
    if let Some(s) = &level_view {
        s.estimates.iter().for_each(&mut track);
        md.push_str(&s.md);
    }

    // Figures.
    let mut figures = plots::draw_all(&data, &domains, opts)?;
    writeln!(md, "## Figures\n")?;
    for f in figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        let name = f.file_name().unwrap().to_string_lossy();
        writeln!(md, "![{name}]({name})\n")?;
    }
    writeln!(md, "## Runs\n")?;
    writeln!(
        md,
        "| task | method | seed | scored at step | score | interventions at | run |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for ((_, task), by_method) in &data.scores {
        for m in data.methods().iter().filter(|m| by_method.contains_key(*m)) {
            let mut rows: Vec<&Score> = by_method[m].iter().collect();
            rows.sort_by_key(|s| (data.runs[s.run].seed, s.run));
            for s in rows {
                let r = &data.runs[s.run];
                let seed = r.seed.map_or("-".to_string(), |x| x.to_string());
                let iv: Vec<String> = r.interventions.iter().map(u64::to_string).collect();
                writeln!(
                    md,
                    "| {task} | {m} | {seed} | {} | {} | {} | `{}` |",
                    s.step,
                    num(s.value),
                    if iv.is_empty() {
                        "-".to_string()
                    } else {
                        iv.join(", ")
                    },
                    r.dir
                        .file_name()
                        .map_or(r.dir.display().to_string(), |n| n.to_string_lossy().into())
                )?;
            }
        }
    }
    writeln!(md)?;
    writeln!(md, "## Method\n")?;
    writeln!(
        md,
        "Statistics as rliable (Agarwal et al., 2021): IQM = `scipy.stats.trim_mean(x, 0.25)` over \
         all runs, mean and median over tasks of per-task means, optimality gap with gamma = 1. \
         Interval ends carry Monte-Carlo error from the finite bootstrap: at most {} in absolute \
         terms and {:.1} % of an interval's width here (standard error, from the order statistics \
         of the replicates). Learning-curve bands and performance profiles use {} replicates.",
        num(mc_max),
        100.0 * mc_rel,
        opts.curve_reps
    )?;

    if let Some(s) = level_view {
        figures.extend(s.figures);
        csv = levels::extend_csv(&csv, &s.csv_rows);
    }

    let report_md = opts.out.join("report.md");
    let aggregates_csv = opts.out.join("aggregates.csv");
    fs::write(&report_md, md).with_context(|| format!("cannot write {}", report_md.display()))?;
    fs::write(&aggregates_csv, csv)
        .with_context(|| format!("cannot write {}", aggregates_csv.display()))?;
    Ok(Summary {
        runs: data.runs.len(),
        left_out: data.left_out.len(),
        report_md,
        aggregates_csv,
        figures,
    })
}
