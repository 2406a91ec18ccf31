//! Continual levels through the `classic` binary (issue 20): levels switch at exact steps with
//! one `levels.csv` row each, the level intervention fires `levels - 1` times, every stored
//! observation carries its level's offset (cut episodes keep the old one), a kill -9 in the
//! middle of a level resumes to the uninterrupted run, the new tasks train, and bad level keys
//! fail before any work.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use replay::{NStep, VectorReplay};
use runtime::levels::LevelKeys;
use runtime::Seeds;

fn classic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args)
        .output()
        .expect("run the classic binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(run: &Path, file: &str) -> String {
    std::fs::read_to_string(run.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `metrics.csv` rows of `tag`, as `(step, value)`.
fn rows_of(run: &Path, tag: &str) -> Vec<(u64, f64)> {
    read(run, "metrics.csv")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 4 && f[2] == tag).then(|| (f[0].parse().unwrap(), f[3].parse().unwrap()))
        })
        .collect()
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    let bytes = std::fs::read(run.join("checkpoint/state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    state["state"]["step"].as_u64()
}

/// One file `stem.<generation>.<ext>` of the checkpoint.
fn checkpoint_file(run: &Path, stem: &str) -> std::path::PathBuf {
    std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{stem}.")) && name.split('.').count() == 3
        })
        .unwrap_or_else(|| panic!("no {stem} file in the checkpoint"))
}

#[test]
fn levels_switch_at_exact_steps_with_one_row_and_one_intervention_each() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("levels");
    let out = classic(&[
        "--env",
        "CartPole-v1",
        "--levels",
        "4",
        "--level-steps",
        "1500",
        "--envs",
        "3",
        "--intervention",
        "fire",
        "--intervene-at-level",
        "--eval-every",
        "0",
        "--set",
        "eval_episodes=2",
        "--set",
        "log_every=500",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("6k steps in 4 levels of 1.5k"),
        "steps default to levels x level_steps: {}",
        stderr(&out)
    );
    assert_eq!(checkpoint_step(&run), Some(6_000));
    let levels = read(&run, "levels.csv");
    let lines: Vec<&str> = levels.lines().collect();
    assert_eq!(
        lines[0],
        "level,start_step,end_step,return_mean,return_final,eval_return"
    );
    assert_eq!(lines.len(), 5, "one row per level: {levels}");
    for (level, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "{line}");
        let (start, end) = (level as u64 * 1_500, (level as u64 + 1) * 1_500);
        assert_eq!(
            f[..3],
            [level.to_string(), start.to_string(), end.to_string()]
        );
        let eval: f64 = f[5].parse().unwrap();
        assert!(
            eval >= 8.0,
            "a greedy CartPole episode lasts 8+ steps: {line}"
        );
        assert!(f[3].parse::<f64>().unwrap() > 0.0, "{line}");
    }
    // The level-end evaluation is logged at the level's end step, and at a switch the
    // evaluation right after the intervention (on the level just closed) follows it.
    let evals = rows_of(&run, "eval/episodic_return");
    let steps: Vec<u64> = evals.iter().map(|r| r.0).collect();
    assert_eq!(steps, [1_500, 1_500, 3_000, 3_000, 4_500, 4_500, 6_000]);
    for (level, line) in lines[1..].iter().enumerate() {
        let closing: f64 = line.split(',').nth(5).unwrap().parse().unwrap();
        assert_eq!(
            closing,
            evals[2 * level].1,
            "levels.csv scores the trained network"
        );
    }
    // The intervention at every switch: exactly levels - 1 = 3 of them, at the switch steps.
    let events = read(&run, "interventions.jsonl");
    let steps: Vec<u64> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1_500, 3_000, 4_500]);
    // charts/level: the current level, logged with the other charts (every 500 steps, at
    // the first vector step of 3 environments past each multiple), moving at the switches.
    let level = rows_of(&run, "charts/level");
    assert_eq!(level.len(), 12, "{level:?}");
    for &(step, value) in &level {
        assert_eq!(
            value,
            (step.min(5_999) / 1_500) as f64,
            "level at step {step}"
        );
    }
    assert!(level.contains(&(1_500, 1.0)) && level.contains(&(6_000, 3.0)));
}

/// Offsets of std 100 put each level's observations far from every other level's (tens of
/// units against CartPole's few), so each stored observation tells its level: `obs -
/// offset(level)` must be a CartPole state for
/// exactly one level. Both observations of every transition carry the same level (an episode
/// cut by a switch ends with the old offset), and every level is in the replay.
#[test]
fn every_stored_observation_carries_its_levels_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("offsets");
    let seed = 5;
    let out = classic(&[
        "--levels",
        "3",
        "--level-steps",
        "1000",
        "--seed",
        &seed.to_string(),
        "--eval-every",
        "0",
        "--set",
        "level_offset_std=100",
        "--set",
        "checkpoint_replay=true",
        "--set",
        "eval_episodes=1",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = LevelKeys {
        levels: 3,
        level_steps: Some(1_000),
        level_offset_std: 100.0,
        intervene_at_level: false,
    };
    let plan = keys.plan(Seeds::new(seed), 4).unwrap();
    let level_of = |obs: &[f32]| -> Vec<u64> {
        (0..3)
            .filter(|&level| {
                let o = plan.offset(level).expect("levels of offsets");
                let raw: Vec<f32> = obs.iter().zip(o).map(|(x, o)| x - o).collect();
                // A CartPole state, terminal ones (just past the limits) included.
                raw[0].abs() <= 3.0
                    && raw[2].abs() <= 0.5
                    && raw[1].abs() < 20.0
                    && raw[3].abs() < 20.0
            })
            .collect()
    };
    let replay = VectorReplay::load(&checkpoint_file(&run, "replay")).unwrap();
    assert_eq!(replay.len(), 3_000);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let batch = replay
        .sample_with(4_000, NStep::one(0.99), &mut rng)
        .unwrap();
    let mut seen = [0usize; 3];
    for (obs, next) in batch.obs.chunks(4).zip(batch.next_obs.chunks(4)) {
        let (a, b) = (level_of(obs), level_of(next));
        assert_eq!(a.len(), 1, "{obs:?} belongs to one level: {a:?}");
        assert_eq!(a, b, "a transition stays in its level: {obs:?} -> {next:?}");
        seen[a[0] as usize] += 1;
    }
    assert!(
        seen.iter().all(|&n| n > 1_000),
        "every level stored: {seen:?}"
    );
}

/// A run killed with SIGKILL in the middle of a level and resumed ends with the same logs,
/// levels and checkpoint tensors as the uninterrupted run.
#[test]
fn a_kill_in_the_middle_of_a_level_resumes_to_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |run: &Path| -> Vec<String> {
        [
            "--levels",
            "3",
            "--level-steps",
            "4000",
            "--intervention",
            "shrink-perturb",
            "--intervene-at-level",
            "--eval-every",
            "2000",
            "--checkpoint-every",
            "500",
            "--set",
            "checkpoint_replay=true",
            "--set",
            "eval_episodes=2",
            "--set",
            "log_every=250",
            "--set",
            "plasticity_every=1000",
            "--run-dir",
            run.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let whole = tmp.path().join("whole");
    let out = Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args(&whole))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args(&cut))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while checkpoint_step(&cut).is_none_or(|s| s < 5_500) {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at = checkpoint_step(&cut).unwrap();
    assert!(at < 12_000, "killed before the end (checkpoint at {at})");
    let out = classic(&["--resume", cut.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(read(&whole, "levels.csv"), read(&cut, "levels.csv"));
    let rows = |run: &Path| -> Vec<String> {
        read(run, "metrics.csv")
            .lines()
            .filter(|l| !l.contains(",charts/SPS,"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(rows(&whole), rows(&cut), "metrics.csv, SPS aside");
    assert_eq!(
        std::fs::read(checkpoint_file(&whole, "tensors")).unwrap(),
        std::fs::read(checkpoint_file(&cut, "tensors")).unwrap(),
        "final checkpoint tensors"
    );
}

/// Acrobot-v1 and MountainCar-v0 train DQN through the shared loop, levels included.
#[test]
fn acrobot_and_mountain_car_train_dqn_with_levels() {
    let tmp = tempfile::tempdir().unwrap();
    for env in ["Acrobot-v1", "MountainCar-v0"] {
        let run = tmp.path().join(env);
        let out = classic(&[
            "--env",
            env,
            "--levels",
            "2",
            "--level-steps",
            "1500",
            "--intervention",
            "fire",
            "--intervene-at-level",
            "--eval-every",
            "0",
            "--set",
            "eval_episodes=1",
            "--run-dir",
            run.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{env}: {}", stderr(&out));
        assert_eq!(read(&run, "levels.csv").lines().count(), 3, "{env}");
        assert!(!rows_of(&run, "losses/td_loss").is_empty(), "{env}");
        assert_eq!(
            read(&run, "interventions.jsonl").lines().count(),
            1,
            "{env}"
        );
    }
}

#[test]
fn bad_level_keys_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("never");
    let r = run.to_str().unwrap();
    for (args, needle) in [
        (vec!["--levels", "0"], "levels must be at least 1"),
        (
            vec!["--levels", "2", "--level-steps", "0"],
            "level_steps must be positive",
        ),
        (
            vec!["--levels", "2", "--set", "level_offset_std=-1"],
            "level_offset_std",
        ),
        (
            vec!["--levels", "2", "--set", "level_offset_std=nan"],
            "level_offset_std",
        ),
        (
            vec!["--levels", "2", "--set", "level_offset_std=inf"],
            "level_offset_std",
        ),
        (
            vec!["--levels", "2", "--level-steps", "1000", "--steps", "3000"],
            "disagrees",
        ),
        (vec!["--intervene-at-level"], "needs levels > 1"),
        (
            vec!["--levels", "3", "--steps", "1000"],
            "not a multiple of levels",
        ),
        (
            vec!["--levels", "2", "--level-steps", "1001", "--envs", "2"],
            "multiple of envs",
        ),
        (vec!["--levels", "2", "--actors", "1"], "actors = 0"),
        (vec!["--env", "LunarLander-v2"], "MountainCar-v0"),
    ] {
        let mut all = args.clone();
        all.extend(["--run-dir", r]);
        let out = classic(&all);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!run.exists(), "{args:?} left a run directory");
    }
    // The resolved configuration holds the settled step counts.
    let out = classic(&["--dry-run", "--levels", "5", "--level-steps", "2k"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("steps = 10000") && text.contains("level_steps = 2000"),
        "{text}"
    );
    let out = classic(&["--help-keys"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "levels = 1",
        "level_offset_std = 2.0",
        "intervene_at_level = false",
    ] {
        assert!(text.contains(key), "--help-keys lists {key}: {text}");
    }
}
