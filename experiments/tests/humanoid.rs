//! The `humanoid` binary end to end on small networks: SAC trains on h1-walk-v0 with FIRE,
//! logs the tags, checkpoints and resumes; step keys count environment steps; bad
//! input fails with one line; plasticity injection (resumed after it) and ReDo run; the shipped
//! paper configs parse and validate, and they and the humanoid sweep use the paper's seeds.

use std::path::Path;
use std::process::{Command, Output};

use runtime::config::Sections;

fn humanoid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_humanoid"))
        .args(args)
        .output()
        .expect("run the humanoid binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Small networks and short phases so that a few hundred steps exercise everything.
const SMALL: &[&str] = &[
    "--set",
    "actor_width=16",
    "--set",
    "critic_width=32",
    "--set",
    "batch_size=32",
    "--learning-starts",
    "100",
    "--eval-every",
    "200",
    "--set",
    "eval_episodes=1",
    "--set",
    "log_every=100",
    "--set",
    "plasticity_every=100",
    "--checkpoint-every",
    "200",
    "--device",
    "cpu",
];

fn tags(run: &Path) -> Vec<(u64, u64, String)> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            let step = f.next().unwrap().parse().unwrap();
            let frames = f.next().unwrap().parse().unwrap();
            (step, frames, f.next().unwrap().to_owned())
        })
        .collect()
}

fn checkpoint_step(run: &Path) -> u64 {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    state["state"]["step"].as_u64().unwrap()
}

#[test]
fn short_run_with_fire_logs_checkpoints_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("walk");
    let r = run.to_str().unwrap();
    let mut args = vec![
        "--task",
        "h1-walk-v0",
        "--steps",
        "400",
        "--fire-at",
        "300",
        "--run-dir",
        r,
    ];
    args.extend_from_slice(SMALL);
    let out = humanoid(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    // One unit for steps, environment steps: the checkpoint, the log line, every x axis.
    assert_eq!(checkpoint_step(&run), 400);
    assert!(
        stderr(&out).contains("step 300: fire applied"),
        "{}",
        stderr(&out)
    );
    let rows = tags(&run);
    for tag in [
        "losses/qf_loss",
        "losses/qf_values",
        "losses/actor_loss",
        "losses/alpha",
        "losses/alpha_loss",
        "losses/entropy",
        "charts/SPS",
        "charts/updates",
        "eval/episodic_return",
        "eval/success",
        "eval/normalized_score",
        "plasticity/dormant_ratio",
        "plasticity/dfi_critic",
        "interventions/count",
    ] {
        assert!(rows.iter().any(|(_, _, t)| t == tag), "no {tag} logged");
    }
    // FIRE at environment step 300 (decision 150): step and frames columns both say 300.
    let fired: Vec<_> = rows
        .iter()
        .filter(|(_, _, t)| t == "interventions/count")
        .collect();
    assert_eq!(fired.len(), 1);
    assert_eq!((fired[0].0, fired[0].1), (300, 300));
    assert!(rows.iter().all(|(s, f, _)| s == f), "frames = steps");
    assert_eq!(interventions(&run)[0].0, 300);
    // Evaluations every 200 steps, and one right after the intervention at 300.
    let evals: Vec<u64> = rows
        .iter()
        .filter(|(_, _, t)| t == "eval/episodic_return")
        .map(|(s, _, _)| *s)
        .collect();
    assert_eq!(evals, [200, 300, 400]);
    let lengths: Vec<u64> = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(",charts/episodic_length,"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap() as u64)
        .collect();
    assert!(
        lengths.iter().all(|&l| l <= 1_000),
        "episode lengths count environment steps, at most 1000: {lengths:?}"
    );
    assert!(rows
        .iter()
        .any(|(_, _, t)| t == "interventions/dfi_after/critic.q2.block1.fc1.weight"));

    let out = humanoid(&["--resume", r, "--steps", "600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(checkpoint_step(&run), 600);
    let rows = tags(&run);
    assert!(
        rows.iter()
            .any(|(s, _, t)| *s > 400 && t == "losses/qf_loss"),
        "learning goes on after the resume"
    );
}

/// The interventions `interventions.jsonl` logged: `(step, method, parameters)`.
fn interventions(run: &Path) -> Vec<(u64, String, usize)> {
    std::fs::read_to_string(run.join("interventions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                j["step"].as_u64().unwrap(),
                j["method"].as_str().unwrap().to_owned(),
                j["parameters"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// Plasticity injection at environment step 300, a checkpoint after it and a
/// resume that re-creates the injected heads and trains on without injecting again; ReDo at
/// the same step recycles units of the SimBa networks.
#[test]
fn plasticity_injection_resumes_and_redo_recycles() {
    let tmp = tempfile::tempdir().unwrap();
    for (method, extra) in [
        ("plasticity-injection", &[][..]),
        ("redo", &["--set", "redo_tau=0.5"][..]),
    ] {
        let run = tmp.path().join(method);
        let r = run.to_str().unwrap();
        let mut args = vec![
            "--task",
            "h1-walk-v0",
            "--steps",
            "400",
            "--intervention",
            method,
            "--fire-at",
            "300",
            "--run-dir",
            r,
        ];
        args.extend_from_slice(SMALL);
        args.extend_from_slice(extra);
        let out = humanoid(&args);
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let logged = interventions(&run);
        assert_eq!(logged.len(), 1, "{method}: {logged:?}");
        assert_eq!((logged[0].0, logged[0].1.as_str()), (300, method));
        if method == "redo" {
            assert!(logged[0].2 > 0, "ReDo at tau 0.5 recycled nothing");
            continue;
        }
        let out = humanoid(&["--resume", r, "--steps", "600"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(checkpoint_step(&run), 600);
        assert_eq!(interventions(&run).len(), 1, "injected once");
        let rows = tags(&run);
        assert!(rows
            .iter()
            .any(|(s, _, t)| *s > 400 && t == "losses/qf_loss"));
        assert!(rows
            .iter()
            .any(|(_, _, t)| t == "plasticity/weight_norm/critic.injected.out.weight"));
    }
}

fn assert_one_line_failure(args: &[&str], needle: &str) {
    let out = humanoid(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn bad_input_fails_with_one_line() {
    assert_one_line_failure(
        &["--task", "h1-fly-v0", "--dry-run"],
        "h1-balance_simple-v0",
    );
    assert_one_line_failure(
        &["--task", "h1-walk-v0", "--fire-at", "301", "--dry-run"],
        "not a multiple of action_repeat",
    );
    assert_one_line_failure(
        &["--set", "actors=1", "--set", "envs=1", "--dry-run"],
        "use actors = 0",
    );
    assert_one_line_failure(&["--set", "critic_lr=-1", "--dry-run"], "lr");
}

#[test]
fn shipped_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fire-paper-sac");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let table = runtime::config::read_table(&path).unwrap_or_else(|e| panic!("{e:#}"));
            let cfg = experiments::humanoid::HumanoidRunConfig::from_table(table)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            experiments::cli::Experiment::validate(&cfg)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(cfg.run.steps, 1_000_000, "{}", path.display());
            assert_eq!(
                cfg.run.seed,
                0,
                "{}: the paper's first seed",
                path.display()
            );
            if cfg.run.intervention != fire::Method::None {
                assert_eq!(cfg.run.fire_at, vec![500_000], "{}", path.display());
            }
            n += 1;
        }
    }
    assert_eq!(n, 15, "3 tasks x 5 methods in {}", dir.display());
}

/// The sweep of the paper's SAC runs uses the paper's (and its reference code's) seeds.
#[test]
fn the_humanoid_sweep_runs_the_papers_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/humanoid-sac.toml");
    let sweep: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let seeds: Vec<i64> = sweep["grid"]["seed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_integer().unwrap())
        .collect();
    assert_eq!(seeds, [0, 1000, 2000, 3000, 4000], "{}", path.display());
}
