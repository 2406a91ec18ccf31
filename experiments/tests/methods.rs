//! Every plasticity method of issue 25 trains through the `classic` binary: a short, real
//! learning run per method with seed 1, DQN on CartPole-v1 and SAC on Pendulum-v1, each
//! clearly better than a random policy (CartPole about 22, Pendulum about -1,200 to -1,600),
//! plus the methods' diagnostics and penalty in `metrics.csv`; and the same keys through the
//! `atari` binary on the Nature CNN, where the intervention event shows the network's shape.
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

/// The diagnostics Plasticine logs are finite, and the penalty is logged exactly when a
/// regulariser is set: never negative, and positive once theta has moved from theta_0 (the
/// first logged update of L2-to-init may still be at theta_0).
fn assert_diagnostics_and_penalty(run: &Path, name: &str, sets: &[&str]) {
    for metric in ["active_fraction", "weight_distance", "grad_norm"] {
        let v = rows(run, &format!("plasticity/{metric}"));
        assert!(
            !v.is_empty() && v.iter().all(|x| x.is_finite()),
            "{name}: {metric} {v:?}"
        );
    }
    let penalty = rows(run, "losses/regularizer");
    if sets.iter().any(|s| s.starts_with("regularizer=")) {
        assert!(
            penalty.iter().all(|p| *p >= 0.0) && penalty.iter().any(|p| *p > 0.0),
            "{name}: {penalty:?}"
        );
    } else {
        assert!(penalty.is_empty(), "{name} logs no penalty");
    }
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
        assert_diagnostics_and_penalty(&run, name, sets);
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
        (
            &[
                "intervention=layer-reset",
                "reset_layers=q.head.out,q.nothing",
            ],
            "`q.nothing` matches no parameter",
        ),
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

fn atari(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atari"))
        .args(args)
        .output()
        .expect("run the atari binary")
}

/// The parameters of a run's first intervention event, as (name, action, shape).
fn first_event(run: &Path) -> Vec<(String, String, Vec<u64>)> {
    let events = std::fs::read_to_string(run.join("interventions.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    event["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let shape = p["shape"].as_array().unwrap();
            (
                p["name"].as_str().unwrap().to_string(),
                p["action"].as_str().unwrap().to_string(),
                shape.iter().map(|d| d.as_u64().unwrap()).collect(),
            )
        })
        .collect()
}

/// The keys reach the Nature CNN on the real ALE: 1,000 Breakout steps per method (250
/// updates with the nature protocol's replay ratio), the penalty and diagnostics logged, and
/// the network's shape visible in the intervention event: CReLU doubles conv2's input (32 ->
/// 64 channels) and the first dense layer's (3136 -> 6272), LayerNorm adds `q.encoder.norm<k>`
/// and `q.head.norm<k>` parameters that FIRE never orthogonalises, layer-reset touches only
/// the layers it names (`q.encoder.conv3`, `q.head.fc2`).
#[test]
fn atari_trains_the_nature_cnn_with_every_method() {
    let tmp = tempfile::tempdir().unwrap();
    let base = [
        "--game",
        "Breakout",
        "--protocol",
        "nature",
        "--device",
        "cpu",
        "--steps",
        "1000",
        "--envs",
        "4",
        "--learning-starts",
        "500",
        "--buffer-size",
        "2k",
        "--eval-every",
        "0",
        "--set",
        "eval_steps=200",
        "--set",
        "torch_threads=1",
        "--set",
        "log_every=100",
        "--set",
        "plasticity_every=500",
    ];
    let cases: &[(&str, &[&str])] = &[
        ("l2", &["regularizer=l2"]),
        ("l2-init", &["regularizer=l2-init"]),
        ("parseval", &["regularizer=parseval"]),
        ("crelu-fire", &["activation=crelu", "fire_at=[800]"]),
        ("layer-norm-fire", &["layer_norm=true", "fire_at=[800]"]),
        ("normalize-project", &["normalize_project=true"]),
        // Layer names, as the error lists them, in one comma-separated text.
        (
            "layer-reset",
            &[
                "intervention=layer-reset",
                "fire_at=[800]",
                "reset_layers=q.encoder.conv3,q.head.fc2",
            ],
        ),
    ];
    for (name, sets) in cases {
        let run = tmp.path().join(name);
        let run_dir = run.to_str().unwrap().to_string();
        let mut args = base.to_vec();
        for s in *sets {
            args.extend(["--set", s]);
        }
        args.extend(["--run-dir", &run_dir]);
        let out = atari(&args);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let td = rows(&run, "losses/td_loss");
        assert!(!td.is_empty() && td.iter().all(|x| x.is_finite()), "{name}");
        assert_diagnostics_and_penalty(&run, name, sets);
    }

    let crelu = first_event(&tmp.path().join("crelu-fire"));
    let shape = |params: &[(String, String, Vec<u64>)], n: &str| {
        params.iter().find(|p| p.0 == n).unwrap().2.clone()
    };
    assert_eq!(shape(&crelu, "q.encoder.conv2.weight"), [64, 64, 4, 4]);
    assert_eq!(shape(&crelu, "q.head.fc1.weight"), [512, 6272]);

    // LayerNorm's parameters are in the checkpoint (the event lists only what FIRE changed):
    // FIRE never orthogonalises them; the head's, like the rest of the head, is reset.
    let checkpoint = tmp.path().join("layer-norm-fire").join("checkpoint");
    let tensors: Vec<u8> = std::fs::read_dir(&checkpoint)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    let has = |name: &str| tensors.windows(name.len()).any(|w| w == name.as_bytes());
    for name in [
        "q.encoder.norm1.weight",
        "q.encoder.norm3.bias",
        "q.head.norm1.weight",
    ] {
        assert!(has(name), "{name} not in {}", checkpoint.display());
    }
    let layer_norm = first_event(&tmp.path().join("layer-norm-fire"));
    assert!(layer_norm
        .iter()
        .filter(|p| p.0.contains(".norm"))
        .all(|p| p.1 != "orthogonalized"));
    assert!(layer_norm
        .iter()
        .any(|p| p.0 == "q.encoder.conv1.weight" && p.1 == "orthogonalized"));
    assert!(layer_norm
        .iter()
        .any(|p| p.0 == "q.head.norm1.weight" && p.1 == "reset"));

    let reset = first_event(&tmp.path().join("layer-reset"));
    assert!(reset
        .iter()
        .any(|p| p.0 == "q.head.fc2.weight" && p.1 == "reset"));
    for (name, action, _) in &reset {
        assert_eq!(
            action == "reset",
            name.starts_with("q.encoder.conv3.") || name.starts_with("q.head.fc2."),
            "{name}: {action}"
        );
    }
}
