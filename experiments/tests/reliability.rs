//! Faults and hostile input against a run (issue 15): a second process on a run, SIGTERM,
//! kill -9 mid-run then resume, a damaged checkpoint, a saved replay, and memory that does not
//! fit. Each assertion failed on the code before the fix.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn classic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args)
        .output()
        .expect("run the classic binary")
}

fn spawn_classic(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the classic binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    let bytes = std::fs::read(run.join("checkpoint/state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    state["state"]["step"].as_u64()
}

/// Waits until `run` has a checkpoint at or past `step`.
fn wait_for_checkpoint(run: &Path, step: u64) {
    let start = Instant::now();
    while checkpoint_step(run).is_none_or(|s| s < step) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint at {step} within two minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The checkpoint's file `stem.<generation>.<ext>` (exactly one must exist).
fn checkpoint_file(run: &Path, stem: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{stem}.")) && name.split('.').count() == 3
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {stem} file in the checkpoint: {found:?}"
    );
    found[0].clone()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn one_process_per_run_and_sigterm_exits_143_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("locked");
    let r = run.to_str().unwrap();
    let common = [
        "--steps",
        "200k",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "1k",
    ];
    let mut args = common.to_vec();
    args.extend(["--run-dir", r]);
    let mut first = spawn_classic(&args);
    wait_for_checkpoint(&run, 1000);
    let second = classic(&["--resume", r]);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains("in use by another process") && err.contains(&first.id().to_string()),
        "{err}"
    );
    signal(&first, "-TERM");
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM exits 128 + 15");
    let stopped = checkpoint_step(&run).unwrap();
    assert!((1000..200_000).contains(&stopped));
    // The lock went with the process.
    let again = classic(&["--resume", r, "--steps", &(stopped + 500).to_string()]);
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn after_kill_9_a_resume_continues_the_logs_exactly_from_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("killed");
    let r = run.to_str().unwrap();
    let mut child = spawn_classic(&[
        "--steps",
        "8000",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "1k",
        "--set",
        "log_every=10",
        "--set",
        "plasticity_every=50",
        "--run-dir",
        r,
    ]);
    wait_for_checkpoint(&run, 2000);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-KILL");
    child.wait().unwrap();
    let killed_at = checkpoint_step(&run).unwrap();
    let out = classic(&["--resume", r]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.ends_with('\n'));
    let mut seen = std::collections::HashSet::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "torn line {line:?}");
        let step: u64 = fields[0].parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!(step <= 8000);
        // One environment: every tag is logged at most once per step.
        assert!(
            seen.insert((step, fields[2].to_owned())),
            "duplicate row {line:?} after resuming from {killed_at}"
        );
    }
    assert!(seen.contains(&(8000, "losses/td_loss".to_owned())));
}

#[test]
fn a_failed_resume_leaves_the_run_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("damaged");
    let r = run.to_str().unwrap();
    // checkpoint_replay writes the replay with the checkpoint (it never did before: the
    // checkpoint folder did not exist yet) and records its checksum.
    let out = classic(&[
        "--steps",
        "2000",
        "--eval-every",
        "0",
        "--set",
        "checkpoint_replay=true",
        "--run-dir",
        r,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let replay = checkpoint_file(&run, "replay");
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    let replay_name = replay.file_name().unwrap().to_str().unwrap();
    assert!(
        state.contains(replay_name) && state.contains("crc32c"),
        "{state}"
    );
    // Damage the tensors: same size, other bytes.
    let tensors = checkpoint_file(&run, "tensors");
    let mut bytes = std::fs::read(&tensors).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&tensors, &bytes).unwrap();
    let config = std::fs::read(run.join("config.toml")).unwrap();
    let entries = std::fs::read_dir(&run).unwrap().count();
    let out = classic(&["--resume", r, "--steps", "4000"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), config);
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        entries,
        "no new event file"
    );
}

#[test]
fn a_replay_that_cannot_fit_is_one_line_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("huge");
    let out = Command::new(env!("CARGO_BIN_EXE_atari"))
        .args(["--buffer-size", "1000G", "--run-dir", run.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("buffer_size") && err.contains("GB"), "{err}");
    assert!(!run.exists());
}

/// Rows of `metrics.csv` without the wall-clock column (`charts/SPS`).
fn metric_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(",charts/SPS,"))
        .map(str::to_owned)
        .collect()
}

/// The proof of issue 15. A 12,000-step synchronous run (DQN on CartPole, a saved replay,
/// FIRE at 6,000, an evaluation every 3,000, plasticity every 1,000 on a refreshed probe,
/// checkpoints every 500, logs every 350 so checkpoints fall between log lines) is killed with SIGKILL 6 times, each resumed with `--resume`, and ends
/// with the same weights, optimiser, statistics and environment states (the checkpoint's tensor
/// file byte for byte), the same counters, and the same `metrics.csv` rows (SPS aside) as the
/// same run never interrupted.
///
/// The kill moments come from a fixed seed: kill k waits until the checkpoint passes a random
/// step, then a random 0-400 ms more, so it lands anywhere in the work between checkpoints
/// (inside a checkpoint write included) whatever the machine's speed.
#[test]
fn repeated_kill_9_and_resume_ends_exactly_where_the_uninterrupted_run_ends() {
    use rand::{Rng, SeedableRng};
    const KILLS: usize = 6;
    let tmp = tempfile::tempdir().unwrap();
    let args = |run: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "--steps",
            "12000",
            "--seed",
            "3",
            "--learning-starts",
            "1000",
            "--eval-every",
            "3000",
            "--checkpoint-every",
            "500",
            "--intervention",
            "fire",
            "--fire-at",
            "6000",
            "--set",
            "checkpoint_replay=true",
            "--set",
            "log_every=350",
            "--set",
            "plasticity_every=1000",
            "--set",
            "eval_episodes=3",
            "--run-dir",
        ]
        .map(String::from)
        .to_vec();
        a.push(run.to_str().unwrap().to_owned());
        a
    };
    let whole = tmp.path().join("uninterrupted");
    let out = Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(args(&whole))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let killed = tmp.path().join("killed");
    let r = killed.to_str().unwrap().to_owned();
    let mut moments = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    let mut targets: Vec<u64> = (0..KILLS)
        .map(|_| moments.random_range(1_000..11_000))
        .collect();
    targets.sort_unstable();
    let mut landed = Vec::new();
    for (k, &target) in targets.iter().enumerate() {
        let mut child = if k == 0 {
            Command::new(env!("CARGO_BIN_EXE_classic"))
                .args(args(&killed))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        } else {
            Command::new(env!("CARGO_BIN_EXE_classic"))
                .args(["--resume", &r])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        wait_for_checkpoint(&killed, target);
        std::thread::sleep(Duration::from_millis(moments.random_range(0..400)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "kill {k} must land before the run ends (target step {target})"
        );
        signal(&child, "-KILL");
        child.wait().unwrap();
        landed.push(checkpoint_step(&killed).unwrap());
    }
    let out = classic(&["--resume", &r]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        landed.iter().all(|&s| s < 12_000),
        "every kill interrupted the run: {landed:?}"
    );

    let state = |run: &Path| -> serde_json::Value {
        let bytes = std::fs::read(run.join("checkpoint/state.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["state"].clone()
    };
    assert_eq!(state(&killed), state(&whole), "counters and generators");
    assert!(
        std::fs::read(checkpoint_file(&killed, "tensors")).unwrap()
            == std::fs::read(checkpoint_file(&whole, "tensors")).unwrap(),
        "the final checkpoint's tensors differ after {KILLS} kills (at checkpoints {landed:?})"
    );
    let (a, b) = (metric_rows(&killed), metric_rows(&whole));
    assert!(a.len() > 500, "{} rows", a.len());
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "metrics.csv differs at row {i}: {:?} after kills vs {:?} uninterrupted",
            a.get(i),
            b.get(i)
        );
    }
}

/// Issue 22, item 8: a checkpoint holds one state per environment; resuming it with another
/// `envs` used to drop them silently (every episode in flight restarted, and with fewer
/// environments a replay stream stayed open for good). It is one line naming both numbers,
/// before anything in the run changes.
#[test]
fn resuming_with_another_number_of_environments_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("two");
    let r = run.to_str().unwrap();
    let out = classic(&[
        "--steps",
        "1500",
        "--envs",
        "2",
        "--eval-every",
        "0",
        "--set",
        "checkpoint_replay=true",
        "--run-dir",
        r,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read(run.join("config.toml")).unwrap();
    let entries = std::fs::read_dir(&run).unwrap().count();
    for envs in ["1", "3"] {
        let out = classic(&["--resume", r, "--steps", "3000", "--envs", envs]);
        assert!(!out.status.success(), "--envs {envs} resumed");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 2, "{err}"); // the run's line, then the error
        let last = err.trim().lines().last().unwrap();
        assert!(
            last.contains("states of 2 environments") && last.contains(&format!("envs = {envs}")),
            "{err}"
        );
        assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), config);
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), entries);
    }
    // The same number resumes.
    let out = classic(&["--resume", r, "--steps", "3000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(checkpoint_step(&run), Some(3000));
}
