//! SIGTERM in the middle of an evaluation (issue 22, item 6). On Slurm a preempted job gets 30 s
//! between SIGTERM and SIGKILL, and an Atari evaluation (125k steps) takes longer: a stop that
//! waited for it lost the checkpoint. A stop now abandons the evaluation, checkpoints within a
//! few seconds, and the resume redoes the evaluation (and the rest of that step's work: a
//! level's row, the switch, its intervention), so the run ends as the uninterrupted run ends.
//! Each test failed on the code before: the stop waited for the evaluation to finish.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(run: &Path, file: &str) -> String {
    std::fs::read_to_string(run.join(file)).unwrap_or_default()
}

fn checkpoint_state(run: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(run.join("checkpoint/state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v["state"].clone())
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    checkpoint_state(run)?["step"].as_u64()
}

/// The checkpoint's file `stem.<generation>.<ext>` (exactly one must exist).
fn checkpoint_file(run: &Path, stem: &str) -> PathBuf {
    let found: Vec<_> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{stem}.")) && name.split('.').count() == 3
        })
        .collect();
    assert_eq!(found.len(), 1, "one {stem} file: {found:?}");
    found[0].clone()
}

/// `metrics.csv` without the wall-clock column (`charts/SPS`).
fn metric_rows(run: &Path) -> Vec<String> {
    read(run, "metrics.csv")
        .lines()
        .filter(|l| !l.contains(",charts/SPS,"))
        .map(str::to_owned)
        .collect()
}

/// `interventions.jsonl` without the wall-clock fields.
fn events(run: &Path) -> Vec<serde_json::Value> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("seconds");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    read(run, "interventions.jsonl")
        .lines()
        .map(|l| {
            let mut v = serde_json::from_str(l).unwrap();
            strip(&mut v);
            v
        })
        .collect()
}

fn classic(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args)
        .output()
        .expect("run the classic binary")
}

/// Runs `args` into `whole` uninterrupted; runs them into `cut` and sends SIGTERM inside the
/// evaluation at `eval_step`, at a moment drawn from `seed`: 0.5-1.5 s after the checkpoint
/// 50 steps before it (checkpoints every 50 steps mark its approach; those 50 training steps
/// take milliseconds, the evaluation seconds even on a fast machine). Checks the stop (exit
/// 143 within 5 s of the signal, that it landed in the evaluation, a checkpoint at
/// `eval_step` that logged nothing of the evaluation), resumes, and checks that the run ends
/// as the uninterrupted one.
fn stop_in_an_evaluation_then_resume(args: &[&str], eval_step: u64, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let with_dir = |run: &Path| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--checkpoint-every", "50", "--set", "buffer_size=5000"].map(String::from));
        a.extend(["--run-dir".to_owned(), run.to_str().unwrap().to_owned()]);
        a
    };
    let whole = tmp.path().join("whole");
    let out = classic(&with_dir(&whole));
    assert!(out.status.success(), "{}", stderr(&out));

    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(with_dir(&cut))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while checkpoint_step(&cut).is_none_or(|s| s < eval_step - 50) {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut moments = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    std::thread::sleep(Duration::from_millis(moments.random_range(500..1_500)));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run must still be evaluating"
    );
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "SIGTERM exits 143: {err}");
    assert!(
        took < Duration::from_secs(5),
        "checkpointed and exited {took:?} after SIGTERM (a long evaluation must not delay it)"
    );
    assert!(
        err.contains(&format!("the evaluation at step {eval_step} is abandoned")),
        "the signal landed in the evaluation at {eval_step}: {err}"
    );
    let state = checkpoint_state(&cut).unwrap();
    assert_eq!(
        state["step"], eval_step,
        "checkpoint at the evaluation's step"
    );
    assert!(
        !state["pending"].is_null(),
        "the rest of the step is pending"
    );
    assert!(
        !read(&cut, "metrics.csv").contains(",eval/episodic_return,"),
        "nothing of an abandoned evaluation is logged"
    );

    let out = classic(&["--resume".to_owned(), cut.to_str().unwrap().to_owned()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("redoing the evaluation"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        checkpoint_state(&cut),
        checkpoint_state(&whole),
        "loop state"
    );
    let (a, b) = (metric_rows(&cut), metric_rows(&whole));
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "metrics.csv differs at row {i}: {:?} after the stop vs {:?} uninterrupted",
            a.get(i),
            b.get(i)
        );
    }
    assert_eq!(read(&cut, "levels.csv"), read(&whole, "levels.csv"));
    assert_eq!(events(&cut), events(&whole), "interventions.jsonl");
    assert!(
        std::fs::read(checkpoint_file(&cut, "tensors")).unwrap()
            == std::fs::read(checkpoint_file(&whole, "tensors")).unwrap(),
        "the final checkpoint's tensors differ"
    );
}

/// DQN on CartPole with one long evaluation (1M steps, seconds even on a fast machine) at the
/// step FIRE is applied: SIGTERM inside it checkpoints within 5 s, and the resume redoes it,
/// then applies FIRE (an evaluation at an intervention's step sees the network before it).
#[test]
fn sigterm_during_an_evaluation_checkpoints_at_once_and_the_resume_redoes_it() {
    stop_in_an_evaluation_then_resume(
        &[
            "--env",
            "CartPole-v1",
            "--steps",
            "1500",
            "--seed",
            "5",
            "--learning-starts",
            "500",
            "--eval-every",
            "1000",
            "--intervention",
            "fire",
            "--fire-at",
            "1000",
            "--set",
            "eval_episodes=0",
            "--set",
            "eval_steps=1000000",
            "--set",
            "checkpoint_replay=true",
            "--set",
            "log_every=100",
            "--set",
            "plasticity_every=500",
        ],
        1_000,
        22,
    );
}

/// A continual run (2 levels of 1,000 steps, FIRE at the switch): SIGTERM inside level 0's
/// closing evaluation, which comes before its `levels.csv` row, the switch's intervention and
/// the next level's offset; the resume does all of them, in that order.
#[test]
fn sigterm_during_a_levels_closing_evaluation_resumes_to_the_same_levels() {
    stop_in_an_evaluation_then_resume(
        &[
            "--env",
            "CartPole-v1",
            "--levels",
            "2",
            "--level-steps",
            "1000",
            "--seed",
            "6",
            "--learning-starts",
            "500",
            "--intervention",
            "fire",
            "--intervene-at-level",
            "--eval-every",
            "0",
            "--set",
            "eval_episodes=0",
            "--set",
            "eval_steps=400000",
            "--set",
            "checkpoint_replay=true",
            "--set",
            "log_every=100",
        ],
        1_000,
        23,
    );
}

/// FIRE at step 1,000, between evaluations (every 2,000 steps): the only evaluation at 1,000 is
/// the one right after the intervention (`eval_after_intervention`). SIGTERM inside it
/// checkpoints with FIRE applied and the evaluation pending; the resume redoes the evaluation
/// and never FIRE again.
#[test]
fn sigterm_during_the_evaluation_after_an_intervention_resumes_without_intervening_again() {
    stop_in_an_evaluation_then_resume(
        &[
            "--env",
            "CartPole-v1",
            "--steps",
            "1500",
            "--seed",
            "7",
            "--learning-starts",
            "500",
            "--eval-every",
            "2000",
            "--intervention",
            "fire",
            "--fire-at",
            "1000",
            "--set",
            "eval_episodes=0",
            "--set",
            "eval_steps=1000000",
            "--set",
            "checkpoint_replay=true",
            "--set",
            "log_every=100",
            "--set",
            "plasticity_every=500",
        ],
        1_000,
        24,
    );
}
