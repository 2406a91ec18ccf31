//! Every plasticity method of issue 25 trains through the `classic` binary: a short, real
//! learning run per method with seed 1, DQN on CartPole-v1 and SAC on Pendulum-v1, each
//! clearly better than a random policy (CartPole about 22, Pendulum about -1,200 to -1,600),
//! plus the methods' diagnostics and penalty in `metrics.csv`.
//!
//! Budgets and bars from runs on the project's 2-core machine (best greedy evaluation, 10
//! episodes every 5k steps of 20k): l2 240, l2-init 284, parseval 289, crelu 196, layer_norm
//! 146, normalize_project 120, layer-reset every 10k 182. SAC at 64x64, 6k steps: l2-init -111,
//! crelu -110, parseval -177, normalize_project -313 (from -1,155 at 2k).

use std::path::Path;
use std::process::{Command, Output};

fn classic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args)
        .output()
        .expect("run the classic binary")
}

fn rows(run: &Path, tag: &str) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.split(',').nth(2) == Some(tag))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect()
}

fn best(values: &[f64]) -> f64 {
    values.iter().cloned().fold(f64::MIN, f64::max)
}

/// Trains `env` with `sets` (each a `--set` value) and returns the run's directory.
fn train(tmp: &Path, name: &str, base: &[&str], sets: &[&str]) -> std::path::PathBuf {
    let run = tmp.join(name);
    let mut args: Vec<&str> = base.to_vec();
    for s in sets {
        args.extend(["--set", s]);
    }
    let run_dir = run.to_str().unwrap().to_string();
    args.extend(["--run-dir", &run_dir]);
    let out = classic(&args);
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

const CARTPOLE: &[&str] = &[
    "--env",
    "CartPole-v1",
    "--steps",
    "20k",
    "--eval-every",
    "5k",
    "--set",
    "eval_episodes=10",
    "--set",
    "plasticity_every=10k",
];

#[test]
fn dqn_learns_cartpole_with_every_method() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], f64)] = &[
        ("l2", &["regularizer=l2"], 150.0),
        ("l2-init", &["regularizer=l2-init"], 150.0),
        ("parseval", &["regularizer=parseval"], 150.0),
        ("crelu", &["activation=crelu"], 120.0),
        ("layer-norm", &["layer_norm=true"], 100.0),
        ("normalize-project", &["normalize_project=true"], 90.0),
        (
            "layer-reset",
            &["intervention=layer-reset", "fire_every=10k"],
            120.0,
        ),
    ];
    for (name, sets, bar) in cases {
        let run = train(tmp.path(), name, CARTPOLE, sets);
        let evals = rows(&run, "eval/episodic_return");
        assert!(
            best(&evals) >= *bar,
            "{name}: evaluations {evals:?}, bar {bar}"
        );
        for metric in ["active_fraction", "weight_distance", "grad_norm"] {
            let v = rows(&run, &format!("plasticity/{metric}"));
            assert!(
                !v.is_empty() && v.iter().all(|x| x.is_finite()),
                "{name}: {metric} {v:?}"
            );
        }
        let penalty = rows(&run, "losses/regularizer");
        if sets[0].starts_with("regularizer=") {
            assert!(
                !penalty.is_empty() && penalty.iter().all(|p| *p >= 0.0),
                "{name}: {penalty:?}"
            );
        } else {
            assert!(penalty.is_empty(), "{name} logs no penalty");
        }
    }
}

#[test]
fn sac_learns_pendulum_with_the_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let base = &[
        "--env",
        "Pendulum-v1",
        "--steps",
        "6000",
        "--eval-every",
        "2000",
        "--set",
        "sac_hidden=[64, 64]",
        "--set",
        "batch_size=128",
        "--set",
        "eval_episodes=10",
    ];
    let cases: &[(&str, &[&str], f64)] = &[
        ("l2-init", &["regularizer=l2-init"], -250.0),
        ("crelu", &["activation=crelu"], -250.0),
        ("parseval", &["regularizer=parseval"], -300.0),
        ("normalize-project", &["normalize_project=true"], -450.0),
    ];
    for (name, sets, bar) in cases {
        let run = train(tmp.path(), name, base, sets);
        let evals = rows(&run, "eval/episodic_return");
        assert_eq!(evals.len(), 3, "{name}");
        assert!(
            best(&evals) >= *bar,
            "{name}: evaluations {evals:?}, bar {bar}"
        );
    }
}

#[test]
fn method_keys_that_make_no_sense_together_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("never");
    let r = run.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["intervention=redo", "activation=crelu"], "crelu"),
        (
            &["intervention=plasticity-injection", "layer_norm=true"],
            "plain network",
        ),
        (&["regularizer=l3"], "l2-init"),
        (&["regularizer_strength=0.1"], "without a regularizer"),
        (
            &["regularizer=l2", "regularizer_strength=-1"],
            "regularizer_strength",
        ),
        (
            &["intervention=layer-reset", "reset_layers=[]"],
            "reset_layers",
        ),
        (&["reset_layers=[\"q.nothing.*\"]"], "matches no parameter"),
        (&["activation=sigmoid"], "crelu"),
    ];
    for (sets, needle) in cases {
        let mut args = vec!["--steps", "2k", "--run-dir", r];
        for s in *sets {
            args.extend(["--set", s]);
        }
        let out = classic(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sets:?} ran");
        assert!(err.contains(needle), "{sets:?}: {err}");
        assert_eq!(
            err.trim().lines().filter(|l| l.contains("error")).count(),
            1,
            "{err}"
        );
        assert!(!run.exists(), "{sets:?} left {}", run.display());
    }
    // SimBa has its LayerNorms already and no CReLU variant.
    let out = classic(&[
        "--env",
        "Pendulum-v1",
        "--set",
        "network=simba",
        "--set",
        "layer_norm=true",
        "--dry-run",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SimBa"));
}
