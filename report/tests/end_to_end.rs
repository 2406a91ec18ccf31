//! The `report` binary on synthetic run directories written here: the numbers of report.md and
//! aggregates.csv against values computed by hand in this file, valid PNG and SVG figures, and one
//! clear error line for bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_report");

/// Final eval returns per (game, method), one per seed 1..=3.
const FINAL: [(&str, &str, [f64; 3]); 4] = [
    ("Breakout", "none", [5.0, 7.0, 30.0]),
    ("Breakout", "fire", [10.0, 20.0, 40.0]),
    ("Pong", "none", [-20.0, -10.0, 0.0]),
    ("Pong", "fire", [-5.0, 5.0, 15.0]),
];

/// Random and human scores of DQN Zoo's table for the two games.
fn normalise(game: &str, r: f64) -> f64 {
    match game {
        "Breakout" => (r - 1.7) / (30.5 - 1.7),
        "Pong" => (r + 20.7) / (14.6 + 20.7),
        _ => unreachable!(),
    }
}

fn write_run(root: &Path, game: &str, method: &str, seed: usize, last: f64, torn: bool) -> PathBuf {
    let dir = root
        .join("runs")
        .join(format!("{game}__dqn-{method}__{seed}__1"));
    fs::create_dir_all(dir.join("checkpoint")).unwrap();
    let fire_at = if method == "none" { "[]" } else { "[200]" };
    fs::write(
        dir.join("config.toml"),
        format!("game = \"{game}\"\nintervention = \"{method}\"\nseed = {seed}\nsteps = 400\nfire_at = {fire_at}\n"),
    )
    .unwrap();
    let mut csv = String::from("step,frames,tag,value\n");
    for (k, step) in [0u64, 100, 200, 300, 400].iter().enumerate() {
        let v = if *step == 400 {
            last
        } else {
            last * k as f64 / 4.0
        };
        csv += &format!("{step},{},eval/episodic_return,{v}\n", step * 4);
        csv += &format!("{step},{},charts/episodic_return,{}\n", step * 4, v + 1.0);
        let dormant = if method == "fire" && *step >= 200 {
            0.05
        } else {
            0.1 + 0.05 * k as f64
        };
        csv += &format!("{step},{},plasticity/dormant_ratio,{dormant}\n", step * 4);
        csv += &format!(
            "{step},{},plasticity/effective_rank,{}\n",
            step * 4,
            100.0 - 10.0 * k as f64
        );
        csv += &format!(
            "{step},{},plasticity/dfi_encoder,{}\n",
            step * 4,
            5.0 + k as f64
        );
    }
    if torn {
        csv += "400,1600,eval/episodic_ret"; // a crash mid-line
    }
    fs::write(dir.join("metrics.csv"), csv).unwrap();
    if method != "none" {
        fs::write(
            dir.join("interventions.jsonl"),
            format!("{{\"step\":200,\"frames\":800,\"method\":\"{method}\",\"parameters\":[]}}\n"),
        )
        .unwrap();
    }
    fs::write(dir.join("checkpoint/state.json"), "{}").unwrap();
    dir
}

fn sweep(root: &Path) {
    for (game, method, finals) in FINAL {
        for (i, last) in finals.iter().enumerate() {
            write_run(
                root,
                game,
                method,
                i + 1,
                *last,
                game == "Pong" && method == "fire" && i == 2,
            );
        }
    }
}

fn report(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn iqm(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    let kept = &v[cut..v.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

#[test]
fn report_numbers_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    sweep(&root);
    let out = tmp.path().join("out");
    let o = report(&[
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reps",
        "2000",
        "--curve-reps",
        "200",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = fs::read_to_string(out.join("report.md")).unwrap();

    // Per task: mean, median and IQM (3 runs: nothing trimmed) of the raw final scores.
    for (game, method, f) in FINAL {
        let mean = f.iter().sum::<f64>() / 3.0;
        let row = format!("| {game} | {method} | 3 | {} [", num(mean));
        let line = md
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("no row `{row}` in\n{md}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            cells[5].starts_with(&format!("{} [", num(f[1]))),
            "median in {line}"
        );
        assert!(
            cells[6].starts_with(&format!("{} [", num(mean))),
            "IQM in {line}"
        );
        assert_eq!(cells[7], "400", "scored step in {line}");
    }

    // Aggregates of human-normalised scores over the two games.
    for method in ["none", "fire"] {
        let per_task: Vec<Vec<f64>> = FINAL
            .iter()
            .filter(|r| r.1 == method)
            .map(|(g, _, f)| f.iter().map(|x| normalise(g, *x)).collect())
            .collect();
        let all: Vec<f64> = per_task.iter().flatten().copied().collect();
        let means: Vec<f64> = per_task
            .iter()
            .map(|t| t.iter().sum::<f64>() / 3.0)
            .collect();
        let mean = (means[0] + means[1]) / 2.0;
        let median = mean; // two tasks: the median of two means is their mean
        let gap = 1.0 - all.iter().map(|x| x.min(1.0)).sum::<f64>() / 6.0;
        let row = format!("| {method} | 6 | {} [", num(iqm(all.clone())));
        let line = md
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("no row `{row}` in\n{md}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            cells[4].starts_with(&format!("{} [", num(mean))),
            "mean in {line}"
        );
        assert!(
            cells[5].starts_with(&format!("{} [", num(median))),
            "median in {line}"
        );
        assert!(
            cells[6].starts_with(&format!("{} [", num(gap))),
            "optimality gap in {line}"
        );
    }

    // Probability of improvement: Breakout fire beats none in 7 of 9 pairs (10 > 5, 7; 20 > 5, 7;
    // 40 > all three), Pong in 8 of 9 (-5 > -20, -10; 5 and 15 > all three).
    let p = (7.0 / 9.0 + 8.0 / 9.0) / 2.0;
    let row = format!("| fire | none | {} [", num(p));
    assert!(md.contains(&row), "no `{row}` in\n{md}");

    // The run list: one row per run with its score and intervention steps.
    assert!(
        md.contains("| Breakout | fire | 3 | 400 | 40.000 | 200 | `Breakout__dqn-fire__3__1` |"),
        "{md}"
    );
    assert!(
        md.contains("| Pong | none | 1 | 400 | -20.000 | - | `Pong__dqn-none__1__1` |"),
        "{md}"
    );

    // The torn line is reported, the interventions counted in the curves.
    assert!(md.contains("Skipped 1 bad lines"), "{md}");

    // aggregates.csv: the same numbers, parseable.
    let csv = fs::read_to_string(out.join("aggregates.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "scope,task,method,other,statistic,runs,point,ci_low,ci_high,mc_se"
    );
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("Atari,Breakout,fire,,mean,"))
        .unwrap()
        .split(',')
        .collect();
    let (point, lo, hi): (f64, f64, f64) = (
        row[6].parse().unwrap(),
        row[7].parse().unwrap(),
        row[8].parse().unwrap(),
    );
    assert!(
        (point - 70.0 / 3.0).abs() < 1e-9 && lo <= point && point <= hi && lo >= 10.0 && hi <= 40.0
    );
    for l in csv.lines().skip(1) {
        assert_eq!(l.split(',').count(), 10, "{l}");
    }

    // Figures: valid PNG and SVG, each referenced from report.md.
    for stem in [
        "curves",
        "plasticity",
        "aggregates_atari",
        "profile_atari",
        "improvement_atari",
    ] {
        let png = out.join(format!("{stem}.png"));
        let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            img.width() >= 600 && img.height() >= 300,
            "{stem}: {}x{}",
            img.width(),
            img.height()
        );
        // Not blank: some pixels are far from white.
        let rgb = img.to_rgb8();
        let dark = rgb
            .pixels()
            .filter(|p| p.0.iter().map(|&c| c as u32).sum::<u32>() < 300)
            .count();
        assert!(dark > 500, "{stem}.png looks blank ({dark} dark pixels)");
        if stem == "curves" {
            // The title band holds only text: dark pixels there mean the bundled font rendered.
            let title = (0..rgb.width())
                .flat_map(|x| (0..50).map(move |y| (x, y)))
                .filter(|&(x, y)| {
                    rgb.get_pixel(x, y).0.iter().map(|&c| c as u32).sum::<u32>() < 300
                })
                .count();
            assert!(
                title > 200,
                "no title text in curves.png ({title} dark pixels)"
            );
        }
        let svg = fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(svg.contains("<text"), "{stem}.svg has no text");
        assert!(
            md.contains(&format!("({stem}.png)")),
            "report.md does not show {stem}.png"
        );
    }
}

#[test]
fn score_at_a_step() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    sweep(&root);
    let out = tmp.path().join("out");
    let o = report(&[
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--at",
        "250",
        "--reps",
        "500",
        "--curve-reps",
        "100",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    // At step 200 (the last at or before 250) each run logged half its final score.
    let mean = (10.0 + 20.0 + 40.0) / 3.0 / 2.0;
    let row = format!("| Breakout | fire | 3 | {} [", num(mean));
    assert!(md.contains(&row), "no `{row}` in\n{md}");
    assert!(md.contains("| 200 |"), "{md}");
}

/// Two runs of one task and method with the same seed are one error naming both directories
/// (issue 22: they used to be counted twice with a warning); without the copy the report stands.
#[test]
fn duplicate_seeds_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    let a = write_run(&root, "Pong", "fire", 1, 3.0, false);
    let b = root.join("copy/Pong__dqn-fire__1__2");
    fs::create_dir_all(&b).unwrap();
    for f in ["config.toml", "metrics.csv"] {
        fs::copy(a.join(f), b.join(f)).unwrap();
    }
    // `--intervention fire` without a schedule never intervenes: a baseline, relabelled.
    let c = root.join("runs/Pong__dqn-fire__9__1");
    fs::create_dir_all(&c).unwrap();
    fs::copy(a.join("metrics.csv"), c.join("metrics.csv")).unwrap();
    fs::write(
        c.join("config.toml"),
        "game = \"Pong\"\nintervention = \"fire\"\nseed = 9\nfire_at = []\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let args = [
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reps",
        "200",
        "--curve-reps",
        "100",
    ];
    let err = one_error_line(&report(&args));
    assert!(
        err.contains("duplicate seeds")
            && err.contains(&format!("`{}`", a.display()))
            && err.contains(&format!("`{}`", b.display()))
            && err.contains("task Pong, method fire and seed 1"),
        "{err}"
    );
    assert!(!out.exists(), "--out created before the error");

    fs::remove_dir_all(&b).unwrap();
    let o = report(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Counted as `none`") && md.contains("Pong__dqn-fire__9__1` (fire)"),
        "{md}"
    );
    assert!(md.contains("| Pong | none | 1 | 3.000 ["), "{md}");
    assert!(md.contains("| Pong | fire | 1 | 3.000 ["), "{md}");
}

fn one_error_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn bad_input_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(empty.join("a/b")).unwrap();
    let err = one_error_line(&report(&[empty.to_str().unwrap()]));
    assert!(err.contains("no runs under"), "{err}");

    let err = one_error_line(&report(&[tmp.path().join("missing").to_str().unwrap()]));
    assert!(err.contains("cannot read"), "{err}");

    let root = tmp.path().join("sweep");
    sweep(&root);
    let out = tmp.path().join("out");
    let err = one_error_line(&report(&[
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--metric",
        "eval/nope",
    ]));
    assert!(err.contains("`eval/nope` is not logged"), "{err}");
    assert!(
        err.contains("eval/episodic_return") && err.contains("plasticity/dormant_ratio"),
        "{err}"
    );

    // A file where the output directory should go (unwritable even for root).
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let bad_out = file.join("out");
    let err = one_error_line(&report(&[
        root.to_str().unwrap(),
        "--out",
        bad_out.to_str().unwrap(),
    ]));
    assert!(err.contains("cannot create --out"), "{err}");

    let err = one_error_line(&report(&[
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--at",
        "1X",
    ]));
    assert!(err.contains("--at"), "{err}");
}
