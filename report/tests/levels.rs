//! The level view of continual runs on run directories written here from hand-made `levels.csv`
//! files: the score (mean level-final return over levels 1..N-1) against values computed by hand,
//! the probability of improvement of fire, runs left out with their reason, valid PNG and SVG
//! figures, and sweeps without `levels.csv` reported as before.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_report");

const HEADER: &str = "level,start_step,end_step,return_mean,return_final,eval_return\n";

/// Level-final returns (`eval_return`) per level of CartPole-v1 runs with 4 levels of 100 steps;
/// `None` is written as `NaN` (missing).
const RUNS: [(&str, usize, [Option<f64>; 4]); 10] = [
    // none: scores 50 (mean of 40, 50, 60), 20, 70 (80 and 60; level 2 missing)
    ("none", 1, [Some(100.0), Some(40.0), Some(50.0), Some(60.0)]),
    ("none", 2, [Some(110.0), Some(30.0), Some(20.0), Some(10.0)]),
    ("none", 3, [Some(90.0), Some(80.0), None, Some(60.0)]),
    // fire: scores 300, 150, 110 (each above every none and redo score)
    (
        "fire",
        1,
        [Some(100.0), Some(200.0), Some(300.0), Some(400.0)],
    ),
    (
        "fire",
        2,
        [Some(90.0), Some(150.0), Some(150.0), Some(150.0)],
    ),
    (
        "fire",
        3,
        [Some(80.0), Some(100.0), Some(110.0), Some(120.0)],
    ),
    // redo: scores 5, 2, 8, 100 (four runs: the IQM drops one at each end)
    ("redo", 1, [Some(10.0), Some(5.0), Some(5.0), Some(5.0)]),
    ("redo", 2, [Some(10.0), Some(1.0), Some(2.0), Some(3.0)]),
    ("redo", 3, [Some(10.0), Some(8.0), Some(8.0), Some(8.0)]),
    (
        "redo",
        4,
        [Some(10.0), Some(100.0), Some(100.0), Some(100.0)],
    ),
];

fn run_dir(root: &Path, task: &str, method: &str, seed: usize) -> PathBuf {
    let dir = root
        .join("runs")
        .join(format!("{task}__dqn-{method}__{seed}__1"));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A continual run: config with `levels`, `levels.csv` with `rows` of `evals`, and metrics.csv
/// holding the same returns as `eval/episodic_return` at each level's end.
fn level_run(
    root: &Path,
    method: &str,
    seed: usize,
    levels: u64,
    evals: &[Option<f64>],
) -> PathBuf {
    let dir = run_dir(root, "CartPole-v1", method, seed);
    let schedule = if method == "none" { "false" } else { "true" };
    fs::write(
        dir.join("config.toml"),
        format!(
            "env = \"CartPole-v1\"\nintervention = \"{method}\"\nseed = {seed}\nlevels = {levels}\n\
             level_steps = 100\nfire_at = []\nintervene_at_level = {schedule}\n"
        ),
    )
    .unwrap();
    let mut csv = String::from(HEADER);
    let mut metrics = String::from("step,frames,tag,value\n");
    for (k, e) in evals.iter().enumerate() {
        let (start, end) = (k * 100, (k + 1) * 100);
        let v = e.map_or("NaN".to_string(), |v| v.to_string());
        csv += &format!("{k},{start},{end},1.5,2.5,{v}\n");
        if let Some(v) = e {
            metrics += &format!("{end},{end},eval/episodic_return,{v}\n");
        }
    }
    fs::write(dir.join("levels.csv"), csv).unwrap();
    fs::write(dir.join("metrics.csv"), metrics).unwrap();
    dir
}

/// An Atari run without levels (the format of `tests/end_to_end.rs`).
fn plain_run(root: &Path, method: &str, seed: usize, last: f64) {
    let dir = run_dir(root, "Pong", method, seed);
    fs::write(
        dir.join("config.toml"),
        format!("game = \"Pong\"\nintervention = \"{method}\"\nseed = {seed}\nfire_at = [200]\n"),
    )
    .unwrap();
    let mut csv = String::from("step,frames,tag,value\n");
    for (k, step) in [0u64, 200, 400].iter().enumerate() {
        let v = last * k as f64 / 2.0;
        csv += &format!("{step},{},eval/episodic_return,{v}\n", step * 4);
    }
    fs::write(dir.join("metrics.csv"), csv).unwrap();
}

fn sweep(root: &Path) {
    for (method, seed, evals) in RUNS {
        level_run(root, method, seed, 4, &evals);
    }
    // Unfinished (2 of 4 levels): left out, so its large returns count nowhere.
    level_run(root, "none", 4, 4, &[Some(1000.0), Some(1000.0)]);
    // 3 levels where the task's other runs have 4: left out. (Its own intervention: `levels`
    // differing between runs of one intervention would make them two methods, `none levels=3`
    // and `none levels=4`, see `report::methods`.)
    level_run(root, "full-reset", 5, 3, &[Some(1000.0); 3]);
    // A levels.csv that does not parse: unreadable, the rest reported.
    let bad = level_run(root, "fire", 4, 4, &[Some(1.0); 4]);
    fs::write(bad.join("levels.csv"), "lvl;eval\n0;1\n").unwrap();
    // Runs without levels.csv, reported as before.
    for (seed, last) in [(1, -20.0), (2, -10.0)] {
        plain_run(root, "none", seed, last);
        plain_run(root, "fire", seed, last + 15.0);
    }
}

fn report(root: &Path, out: &Path) -> Output {
    let args = [
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reps",
        "2000",
        "--curve-reps",
        "200",
    ];
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The crate's table format: one decimal from 100 on, else three.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// The cells of the report.md row that starts with `start`.
fn cells<'a>(md: &'a str, start: &str) -> Vec<&'a str> {
    let line = md
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no row `{start}` in\n{md}"));
    line.split('|').map(str::trim).collect()
}

#[test]
fn level_scores_improvement_and_left_out_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    sweep(&root);
    let out = tmp.path().join("out");
    report(&root, &out);
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    // The level view's part of report.md (the final scores of the same runs precede it).
    let view = &md[md.find("## Continual levels").unwrap()..md.find("## Figures").unwrap()];

    // The score: mean over levels 1..3 of each run, then mean, median, IQM over runs; beside it
    // the IQM of level 0 and the runs below their own level 0. Three runs: nothing trimmed.
    // (task, method, runs, level 0, mean, median, IQM, below level 0)
    let want = [
        (
            "none",
            3,
            100.0,
            (50.0 + 20.0 + 70.0) / 3.0,
            50.0,
            140.0 / 3.0,
            "3 of 3",
        ),
        (
            "fire",
            3,
            90.0,
            (300.0 + 150.0 + 110.0) / 3.0,
            150.0,
            560.0 / 3.0,
            "0 of 3",
        ),
        // 2, 5, 8, 100: the IQM keeps 5 and 8; the median is their mean too
        (
            "redo",
            4,
            10.0,
            (5.0 + 2.0 + 8.0 + 100.0) / 4.0,
            6.5,
            6.5,
            "3 of 4",
        ),
    ];
    for (m, n, first, mean, median, iqm, below) in want {
        let c = cells(view, &format!("| CartPole-v1 | {m} | {n} | "));
        for (cell, v) in [(4, first), (5, mean), (6, median), (7, iqm)] {
            assert!(
                c[cell].starts_with(&format!("{} [", num(v))),
                "{m}: cell {cell} `{}`, want {}",
                c[cell],
                num(v)
            );
        }
        assert_eq!(c[8], below, "{m}");
    }
    // none's level 0 is 100, 110 and 90: the IQM of three values is their mean.
    assert!(cells(view, "| CartPole-v1 | none | 3 | ")[4].starts_with("100.0 ["));

    // Every fire run beats every other run: P = 1 with a degenerate interval.
    for y in ["none", "redo"] {
        let row = format!("| CartPole-v1 | fire | {y} | 1.000 [1.000, 1.000] |");
        assert!(md.contains(&row), "no `{row}` in\n{md}");
    }

    // Per level: IQM over runs (level 2 of none has two runs, seed 3's is missing); redo's four
    // runs drop one at each end.
    let c = cells(view, "| CartPole-v1 | none | 100.0 |");
    assert_eq!(c[4..8], ["50.000", "35.000", "43.333", ""][..], "{c:?}");
    let c = cells(view, "| CartPole-v1 | fire | 90.000 |");
    assert_eq!(c[4..7], ["150.0", "186.7", "223.3"][..], "{c:?}");
    let c = cells(view, "| CartPole-v1 | redo | 10.000 |");
    assert_eq!(c[4..7], ["6.500", "6.500", "6.500"][..], "{c:?}");

    // Left out with the reason; unreadable named; a missing level noted.
    let left = md
        .lines()
        .find(|l| l.starts_with("Runs left out of the level view:"))
        .unwrap_or_else(|| panic!("no left-out line in\n{md}"));
    assert!(
        left.contains("CartPole-v1__dqn-none__4__1` (unfinished: 2 of 4 levels in levels.csv)"),
        "{left}"
    );
    assert!(
        left.contains(
            "CartPole-v1__dqn-full-reset__5__1` (levels = 3 where most runs of CartPole-v1 have 4)"
        ),
        "{left}"
    );
    let bad = md
        .lines()
        .find(|l| l.starts_with("Unreadable levels.csv"))
        .unwrap_or_else(|| panic!("no unreadable line in\n{md}"));
    assert!(
        bad.contains(
            "CartPole-v1__dqn-fire__4__1` (line 1: the header `lvl;eval` has no `level` column)"
        ),
        "{bad}"
    );
    assert!(
        md.contains("CartPole-v1__dqn-none__3__1` (1 of 3 missing)"),
        "{md}"
    );

    // The runs without levels are reported as before, and not in the level view.
    assert!(md.contains("| Pong | fire | 2 | "), "{md}");
    assert!(!view.contains("Pong"), "{view}");

    // aggregates.csv: the same numbers as rows of the `levels` view.
    let csv = fs::read_to_string(out.join("aggregates.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "scope,task,method,other,statistic,runs,point,ci_low,ci_high,mc_se,view,levels"
    );
    for l in lines.clone() {
        assert_eq!(l.split(',').count(), 12, "{l}");
    }
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Atari,Pong,fire,,mean,2,") && l.ends_with(",final,")),
        "{csv}"
    );
    let find = |start: &str, levels: &str| -> Vec<f64> {
        let l = csv
            .lines()
            .find(|l| l.starts_with(start) && l.ends_with(&format!(",levels,{levels}")))
            .unwrap_or_else(|| panic!("no `{start}...,levels,{levels}` in\n{csv}"));
        l.split(',')
            .skip(6)
            .take(3)
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let v = find("classic control,CartPole-v1,none,,mean,3,", "1..3");
    assert!(
        (v[0] - 140.0 / 3.0).abs() < 1e-9 && v[1] <= v[0] && v[0] <= v[2],
        "{v:?}"
    );
    assert_eq!(
        find("classic control,CartPole-v1,fire,none,P(X>Y),,", "1..3"),
        [1.0; 3]
    );
    assert_eq!(
        find("classic control,CartPole-v1,none,,IQM,2,", "2")[0],
        35.0
    );
    assert_eq!(
        find("classic control,CartPole-v1,redo,,IQM,4,", "0"),
        [10.0; 3]
    );

    // The figure: valid PNG and SVG with the axis labels and the methods, shown in report.md.
    assert!(md.contains("![levels.png](levels.png)"), "{md}");
    let img = image::open(out.join("levels.png")).unwrap();
    assert!(
        img.width() >= 600 && img.height() >= 400,
        "{}x{}",
        img.width(),
        img.height()
    );
    let dark = img
        .to_rgb8()
        .pixels()
        .filter(|p| p.0.iter().map(|&c| c as u32).sum::<u32>() < 300)
        .count();
    assert!(dark > 500, "levels.png looks blank ({dark} dark pixels)");
    let svg = fs::read_to_string(out.join("levels.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for t in [
        "level",
        "greedy return at the level's end",
        "none",
        "fire",
        "redo",
    ] {
        assert!(
            texts.contains(&t),
            "levels.svg has no text `{t}`: {texts:?}"
        );
    }
    let at = |t: &str| texts.iter().position(|x| *x == t).unwrap();
    assert!(
        at("none") < at("fire") && at("fire") < at("redo"),
        "legend order {texts:?}"
    );
}

#[test]
fn unfinished_runs_only() {
    // Every level run unfinished: the section lists them, draws nothing, and the rest stands.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    level_run(&root, "fire", 1, 4, &[Some(1.0), Some(2.0), Some(3.0)]);
    let dir = run_dir(&root, "CartPole-v1", "none", 2);
    fs::write(
        dir.join("config.toml"),
        "env = \"CartPole-v1\"\nseed = 2\nlevels = 4\n",
    )
    .unwrap();
    fs::write(
        dir.join("metrics.csv"),
        "step,frames,tag,value\n10,10,eval/episodic_return,5\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    report(&root, &out);
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Continual levels"), "{md}");
    assert!(
        md.contains("(unfinished: 3 of 4 levels in levels.csv)"),
        "{md}"
    );
    assert!(
        md.contains("(unfinished: no levels.csv yet (0 of 4 levels))"),
        "{md}"
    );
    assert!(
        !out.join("levels.png").exists() && !md.contains("levels.png"),
        "{md}"
    );
    assert!(md.contains("| CartPole-v1 | fire | 1 | "), "{md}");
}

#[test]
fn runs_without_levels_are_reported_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    for (seed, last) in [(1, -20.0), (2, -10.0)] {
        plain_run(&root, "none", seed, last);
        plain_run(&root, "fire", seed, last + 15.0);
    }
    let out = tmp.path().join("out");
    report(&root, &out);
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        !md.contains("Continual levels") && !md.contains("levels.png"),
        "{md}"
    );
    assert!(!out.join("levels.png").exists() && !out.join("levels.svg").exists());
    let csv = fs::read_to_string(out.join("aggregates.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "scope,task,method,other,statistic,runs,point,ci_low,ci_high,mc_se"
    );
    assert!(csv.lines().all(|l| l.split(',').count() == 10), "{csv}");
}
