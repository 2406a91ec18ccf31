//! Reports that never pool different methods or score unfinished runs (issue 22), on run
//! directories written here: methods told apart by the config keys that differ (or the keys of
//! `--method-keys`), unfinished and failed runs left out (or scored with `--include-unfinished`),
//! and aggregates over tasks only on rliable's matrix (or with `--allow-ragged`, warned).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_report");

/// A run directory `root/runs/NAME` with `config` and `eval/episodic_return` rows `(step, value)`.
fn run(root: &Path, name: &str, config: &str, evals: &[(u64, f64)]) -> PathBuf {
    let dir = root.join("runs").join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.toml"), config).unwrap();
    let mut csv = String::from("step,frames,tag,value\n");
    for (s, v) in evals {
        csv += &format!("{s},{s},eval/episodic_return,{v}\n");
    }
    fs::write(dir.join("metrics.csv"), csv).unwrap();
    dir
}

fn report(root: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reps",
        "500",
        "--curve-reps",
        "100",
    ];
    args.extend_from_slice(extra);
    Command::new(BIN).args(args).output().unwrap()
}

fn success(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn one_error_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// The report.md lines that start with `start`.
fn rows<'a>(md: &'a str, start: &str) -> Vec<&'a str> {
    md.lines().filter(|l| l.starts_with(start)).collect()
}

/// The crate's table format: one decimal from 100 on, else three.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// CartPole runs: `none` (its schedule keys differ, which changes nothing), FIRE every 1M, FIRE
/// at 1.25M, and shrink & perturb with two values of `shrink`; `device`, `torch_threads` and
/// `log_every` differ between all runs and must not matter.
fn schedules(root: &Path) {
    for seed in 1..=3u64 {
        let common = |iv: &str, rest: &str| {
            format!(
                "env = \"CartPole-v1\"\nintervention = \"{iv}\"\nseed = {seed}\nsteps = 2000000\n\
                 device = \"{}\"\ntorch_threads = {seed}\nlog_every = {}\n{rest}",
                if seed == 1 { "cpu" } else { "cuda" },
                1000 * seed
            )
        };
        let end = |v: f64| [(0, 0.0), (2_000_000, v)];
        let none_at = if seed == 1 { "[1250000]" } else { "[]" };
        let s = seed as f64;
        run(
            root,
            &format!("none-{seed}"),
            &common("none", &format!("fire_at = {none_at}\nshrink = 0.2\n")),
            &end(s),
        );
        run(
            root,
            &format!("fire-every-{seed}"),
            &common("fire", "fire_at = []\nfire_every = 1000000\nshrink = 0.2\n"),
            &end(10.0 + s),
        );
        run(
            root,
            &format!("fire-at-{seed}"),
            &common("fire", "fire_at = [1250000]\nshrink = 0.2\n"),
            &end(20.0 + s),
        );
        for (lambda, base) in [(0.4, 30.0), (0.8, 40.0)] {
            run(
                root,
                &format!("sp-{lambda}-{seed}"),
                &common(
                    "shrink-perturb",
                    &format!("fire_at = [1250000]\nshrink = {lambda}\n"),
                ),
                &end(base + s),
            );
        }
    }
}

#[test]
fn runs_of_different_configurations_are_different_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    schedules(&root);
    let out = tmp.path().join("out");
    success(&report(&root, &out, &[]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    // One row per method with its own three runs (mean = the middle seed's score), in order:
    // by intervention, then by the keys' values.
    let want = [
        ("none", 2.0),
        ("fire fire_at=1.25M", 22.0),
        ("fire fire_every=1M", 12.0),
        ("shrink-perturb shrink=0.4", 32.0),
        ("shrink-perturb shrink=0.8", 42.0),
    ];
    let table = rows(&md, "| CartPole-v1 | ");
    for (i, (m, mean)) in want.iter().enumerate() {
        let row = format!("| CartPole-v1 | {m} | 3 | {} [", num(*mean));
        assert!(table[i].starts_with(&row), "row {i}: want `{row}` in\n{md}");
    }
    assert!(rows(&md, "| CartPole-v1 | fire | ").is_empty(), "{md}");
    for key in ["device=", "torch_threads=", "log_every=", "seed="] {
        assert!(!md.contains(key), "`{key}` in a label:\n{md}");
    }

    // --method-keys: exactly the intervention and those keys, shown whenever a run sets them
    // (never the schedule or the intervention's parameters for `none`).
    success(&report(
        &root,
        &out,
        &["--method-keys", "fire_every,shrink"],
    ));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    for row in [
        "| CartPole-v1 | none | 3 | 2.000 [",
        "| CartPole-v1 | fire shrink=0.2 | 3 | 22.000 [",
        "| CartPole-v1 | fire fire_every=1M shrink=0.2 | 3 | 12.000 [",
        "| CartPole-v1 | shrink-perturb shrink=0.4 | 3 | 32.000 [",
    ] {
        assert!(md.contains(row), "no `{row}` in\n{md}");
    }
    // Without shrink, both shrink & perturb settings pool: their seeds repeat, an error.
    let err = one_error_line(&report(&root, &out, &["--method-keys", "fire_every"]));
    assert!(
        err.contains("duplicate seeds") && err.contains("method shrink-perturb and seed 1"),
        "{err}"
    );
    let err = one_error_line(&report(&root, &out, &["--method-keys", "fire_evry"]));
    assert!(
        err.contains("--method-keys") && err.contains("`fire_evry`"),
        "{err}"
    );
}

/// CartPole runs of 100k steps, finished but for two: one logged to 40k, one a sweep marked
/// failed; on Acrobot two finished runs whose last row is below `steps` (100.5k, logging every
/// 1k): one has its final checkpoint, the other a sweep outcome `finished`.
fn progress(root: &Path) -> (PathBuf, PathBuf) {
    let cfg = |env: &str, iv: &str, seed: u32, steps: u64| {
        format!(
            "env = \"{env}\"\nintervention = \"{iv}\"\nseed = {seed}\nsteps = {steps}\n\
             fire_at = [50000]\n"
        )
    };
    for (seed, v) in [(1, 10.0), (2, 20.0), (3, 30.0)] {
        let end = [(50_000, v / 2.0), (100_000, v)];
        run(
            root,
            &format!("none-{seed}"),
            &cfg("CartPole-v1", "none", seed, 100_000),
            &end,
        );
        let end = [(50_000, v), (100_000, v + 30.0)];
        run(
            root,
            &format!("fire-{seed}"),
            &cfg("CartPole-v1", "fire", seed, 100_000),
            &end,
        );
    }
    let cut = run(
        root,
        "fire-4",
        &cfg("CartPole-v1", "fire", 4, 100_000),
        &[(20_000, 500.0), (40_000, 1000.0)],
    );
    fs::write(
        cut.join("sweep-outcome.json"),
        r#"{"state": "stopped", "failures": 0, "attempts": [], "log_tail": []}"#,
    )
    .unwrap();
    let failed = run(
        root,
        "none-4",
        &cfg("CartPole-v1", "none", 4, 100_000),
        &[(100_000, 1000.0)],
    );
    fs::write(
        failed.join("sweep-outcome.json"),
        r#"{"state": "failed", "failures": 1,
            "attempts": [{"started": 1, "ended": 2, "host": "h", "pid": 7, "job_id": null,
                          "resumed_from": null, "exit": "exit 1"}],
            "log_tail": ["step 4000: loss 3.2", "error: loss diverged at step 5000", ""]}"#,
    )
    .unwrap();
    let ck = run(
        root,
        "acrobot-none-1",
        &cfg("Acrobot-v1", "none", 1, 100_500),
        &[(100_000, -80.0)],
    );
    fs::create_dir_all(ck.join("checkpoint")).unwrap();
    fs::write(
        ck.join("checkpoint/state.json"),
        r#"{"format": 3, "state": {"step": 100500}}"#,
    )
    .unwrap();
    let done = run(
        root,
        "acrobot-fire-1",
        &cfg("Acrobot-v1", "fire", 1, 100_500),
        &[(100_000, -70.0)],
    );
    fs::write(
        done.join("sweep-outcome.json"),
        r#"{"state": "finished", "failures": 0, "attempts": [], "log_tail": []}"#,
    )
    .unwrap();
    (cut, failed)
}

#[test]
fn unfinished_and_failed_runs_are_left_out_unless_included() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    let (cut, failed) = progress(&root);
    let out = tmp.path().join("out");
    success(&report(&root, &out, &[]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("8 runs (2 more left out: see Runs left out)"),
        "{md}"
    );
    assert!(md.contains("| CartPole-v1 | none | 3 | 20.000 ["), "{md}");
    assert!(md.contains("| CartPole-v1 | fire | 3 | 50.000 ["), "{md}");
    assert!(md.contains("| Acrobot-v1 | none | 1 | -80.000 ["), "{md}");
    assert!(md.contains("| Acrobot-v1 | fire | 1 | -70.000 ["), "{md}");
    assert!(md.contains("\n## Runs left out\n"), "{md}");
    let line = format!(
        "- `{}`: unfinished: last step 40000 of 100000",
        cut.display()
    );
    assert!(md.lines().any(|l| l == line), "no `{line}` in\n{md}");
    let line = format!(
        "- `{}`: failed: exit 1 (error: loss diverged at step 5000)",
        failed.display()
    );
    assert!(md.lines().any(|l| l == line), "no `{line}` in\n{md}");
    let runs = &md[md.find("\n## Runs\n").unwrap()..];
    assert!(
        !runs.contains("`fire-4`") && !runs.contains("`none-4`"),
        "{runs}"
    );
    assert!(!md.contains("1000.0"), "a left-out score counted:\n{md}");

    // --include-unfinished: scored at their last step, listed as included.
    success(&report(&root, &out, &["--include-unfinished"]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    let mean = |v: [f64; 4]| num(v.iter().sum::<f64>() / 4.0);
    let row = format!(
        "| CartPole-v1 | fire | 4 | {} [",
        mean([40.0, 50.0, 60.0, 1000.0])
    );
    assert!(md.contains(&row), "no `{row}` in\n{md}");
    let row = format!(
        "| CartPole-v1 | none | 4 | {} [",
        mean([10.0, 20.0, 30.0, 1000.0])
    );
    assert!(md.contains(&row), "no `{row}` in\n{md}");
    assert!(
        md.contains("| CartPole-v1 | fire | 4 | 40000 | 1000.0 | - | `fire-4` |"),
        "{md}"
    );
    assert!(
        !md.contains("## Runs left out") && md.contains("\n## Runs included unfinished\n"),
        "{md}"
    );
    let line = format!(
        "- `{}`: included unfinished: last step 40000 of 100000",
        cut.display()
    );
    assert!(md.lines().any(|l| l == line), "no `{line}` in\n{md}");
    assert!(md.contains("`: included failed: exit 1 ("), "{md}");

    // Nothing finished: one error line that says how to score them anyway.
    let lone = tmp.path().join("lone");
    let dir = run(
        &lone,
        "fire-4",
        &fs::read_to_string(cut.join("config.toml")).unwrap(),
        &[(40_000, 1.0)],
    );
    let err = one_error_line(&report(&lone, &tmp.path().join("out2"), &[]));
    assert!(
        err.contains("unfinished: last step 40000 of 100000")
            && err.contains(&dir.display().to_string())
            && err.contains("--include-unfinished"),
        "{err}"
    );
}

/// Breakout and Pong with none, fire and redo; redo never ran on Pong, fire has two runs on
/// Breakout where every other cell has three.
fn ragged(root: &Path) {
    let finals: [(&str, &str, &[f64]); 5] = [
        ("Breakout", "none", &[5.0, 7.0, 30.0]),
        ("Breakout", "fire", &[10.0, 20.0]),
        ("Breakout", "redo", &[2.0, 3.0, 4.0]),
        ("Pong", "none", &[-20.0, -10.0, 0.0]),
        ("Pong", "fire", &[-5.0, 5.0, 15.0]),
    ];
    for (game, iv, scores) in finals {
        for (i, v) in scores.iter().enumerate() {
            let seed = i + 1;
            run(
                root,
                &format!("{game}-{iv}-{seed}"),
                &format!(
                    "game = \"{game}\"\nintervention = \"{iv}\"\nseed = {seed}\nsteps = 400\n\
                     fire_at = [200]\n"
                ),
                &[(0, 0.0), (400, *v)],
            );
        }
    }
}

#[test]
fn ragged_grids_are_refused_or_aggregated_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    ragged(&root);
    let out = tmp.path().join("out");
    let err = one_error_line(&report(&root, &out, &[]));
    assert_eq!(
        err.trim_end(),
        "error: ragged grid: method fire has 2 runs on Breakout, others 3; method redo has no \
         runs on Pong (use --allow-ragged to aggregate anyway)"
    );
    assert!(!out.exists(), "--out created before the error");

    success(&report(&root, &out, &["--allow-ragged"]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains(
            "**Warning: ragged grid** (method fire has 2 runs on Breakout, others 3; method redo \
             has no runs on Pong)"
        ) && md.contains("(redo over Breakout)"),
        "{md}"
    );
    // Per-task tables as always.
    assert!(md.contains("| Breakout | fire | 2 | 15.000 ["), "{md}");
    assert!(md.contains("| Pong | fire | 3 | 5.000 ["), "{md}");
    // redo aggregated over the task it has: its human-normalised Breakout scores.
    let redo: f64 = [2.0, 3.0, 4.0]
        .iter()
        .map(|r| (r - 1.7) / (30.5 - 1.7))
        .sum::<f64>()
        / 3.0;
    let row = format!("| redo | 3 | {} [", num(redo));
    assert!(md.contains(&row), "no `{row}` in\n{md}");
    // P(X > Y) says which tasks each pair shares.
    let poi = |x: &str, y: &str| -> String {
        let start = format!("| {x} | {y} | ");
        let r = rows(&md, &start);
        assert_eq!(r.len(), 1, "no single `{start}` row in\n{md}");
        r[0].rsplit('|').nth(1).unwrap().trim().to_string()
    };
    assert_eq!(poi("redo", "none"), "1 of 2: Breakout");
    assert_eq!(poi("fire", "none"), "all 2");
    let csv = fs::read_to_string(out.join("aggregates.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Atari,Breakout,redo,none,P(X>Y),")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Atari,,fire,none,P(X>Y),")),
        "{csv}"
    );
}

/// A continual classic sweep that skips redo on Pendulum (as `continual-classic.toml`): classic
/// control has no normaliser, so nothing is aggregated over tasks and the report has no error.
#[test]
fn classic_tasks_are_never_aggregated_so_a_skipped_method_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    for env in ["CartPole-v1", "Pendulum-v1"] {
        for iv in ["none", "fire", "redo"] {
            if env == "Pendulum-v1" && iv == "redo" {
                continue;
            }
            for seed in 1..=2 {
                let dir = run(
                    &root,
                    &format!("{env}-{iv}-{seed}"),
                    &format!(
                        "env = \"{env}\"\nintervention = \"{iv}\"\nseed = {seed}\nsteps = 200\n\
                         levels = 2\nlevel_steps = 100\nfire_at = []\nintervene_at_level = true\n"
                    ),
                    &[(100, 1.0), (200, seed as f64)],
                );
                fs::write(
                    dir.join("levels.csv"),
                    format!(
                        "level,start_step,end_step,return_mean,return_final,eval_return\n\
                         0,0,100,1,1,1\n1,100,200,1,1,{seed}\n"
                    ),
                )
                .unwrap();
            }
        }
    }
    let out = tmp.path().join("out");
    success(&report(&root, &out, &[]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("ragged"), "{md}");
    assert!(md.contains("| CartPole-v1 | redo | 2 | "), "{md}");
    assert!(md.contains("| Pendulum-v1 | fire | 2 | "), "{md}");
    assert!(md.contains("## Continual levels"), "{md}");
}

/// A sweep's `[variants]` name their methods: runs `..__variant-<name>` are labelled `<name>`
/// (or `<intervention> variant=<name>`), and the keys the variants set stay out of the label,
/// while a key that differs inside one variant still tells its runs apart.
#[test]
fn sweep_variants_are_labelled_by_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sweep");
    let variants = [
        (
            "none",
            "none",
            "regularizer = \"none\"\nlayer_norm = false\n",
            1.0,
        ),
        (
            "l2",
            "none",
            "regularizer = \"l2\"\nlayer_norm = false\n",
            2.0,
        ),
        (
            "layer-norm",
            "none",
            "regularizer = \"none\"\nlayer_norm = true\n",
            3.0,
        ),
        (
            "layer-reset",
            "layer-reset",
            "regularizer = \"none\"\nlayer_norm = false\n",
            4.0,
        ),
        (
            "ln",
            "fire",
            "regularizer = \"none\"\nlayer_norm = true\n",
            5.0,
        ),
    ];
    for seed in 1..=2u64 {
        for (name, iv, keys, score) in variants {
            run(
                &root,
                &format!("env-CartPole-v1__seed-{seed}__variant-{name}"),
                &format!(
                    "env = \"CartPole-v1\"\nintervention = \"{iv}\"\nseed = {seed}\nsteps = 1000\n\
                     intervene_at_level = true\n{keys}"
                ),
                &[(0, 0.0), (1000, score + seed as f64)],
            );
        }
    }
    // Inside variant l2, two strengths: two methods.
    run(
        &root,
        "env-CartPole-v1__seed-1__variant-l2__regularizer_strength-0.1",
        "env = \"CartPole-v1\"\nintervention = \"none\"\nseed = 1\nsteps = 1000\n\
         regularizer = \"l2\"\nlayer_norm = false\nregularizer_strength = 0.1\n",
        &[(0, 0.0), (1000, 9.0)],
    );
    let out = tmp.path().join("out");
    success(&report(&root, &out, &[]));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    for row in [
        "| CartPole-v1 | none | 2 | 2.500 [",
        "| CartPole-v1 | l2 | 2 | 3.500 [",
        "| CartPole-v1 | l2 regularizer_strength=0.1 | 1 | 9.000 [",
        "| CartPole-v1 | layer-norm | 2 | 4.500 [",
        "| CartPole-v1 | layer-reset | 2 | 5.500 [",
        "| CartPole-v1 | fire variant=ln | 2 | 6.500 [",
    ] {
        assert!(md.contains(row), "no `{row}` in\n{md}");
    }
    assert!(!md.contains("layer_norm="), "{md}");
}
