//! The local executor end to end with the real `classic` binary: bad input refused before any
//! run starts, a sweep run twice (the second does nothing), a run cancelled mid-way and
//! resumed from its checkpoint, a failing run retried with its log tail recorded.

mod common;

use common::*;
use std::process::{Command, Stdio};

const TINY: &str =
    "steps = 600\nlearning_starts = 100\neval_every = 0\nlog_every = 100\nplasticity_every = 1000";

fn one_line_error(o: &std::process::Output, want: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected a failure, got success: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("sweep: error: "), "{err}");
    assert!(err.contains(want), "`{want}` not in: {err}");
}

fn no_run_started(dir: &std::path::Path) {
    let runs = dir.join("runs");
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for e in entries.flatten() {
            assert!(
                !e.path().join("metrics.csv").exists()
                    && !e.path().join("sweep-outcome.json").exists(),
                "a run started in {}",
                e.path().display()
            );
        }
    }
}

#[test]
fn unknown_keys_and_bad_values_are_refused_before_any_run() {
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let spec = write_spec(
        t.path(),
        "a",
        TINY,
        "seed = [1, 2]\nlerning_rate = [0.1]",
        "",
    );
    let o = sweep(t.path(), &["run", spec.to_str().unwrap(), "--dir", d], &[]);
    one_line_error(&o, "unknown key `lerning_rate` in [grid]");
    no_run_started(&dir);

    let spec = write_spec(
        t.path(),
        "b",
        &format!("{TINY}\nbogus = 1"),
        "seed = [1]",
        "",
    );
    let o = sweep(t.path(), &["run", spec.to_str().unwrap(), "--dir", d], &[]);
    one_line_error(&o, "unknown key `bogus` in [set]");

    // A known key with a value the binary refuses: its own message, through --dry-run.
    let spec = write_spec(
        t.path(),
        "c",
        TINY,
        "seed = [1]\nintervention = [\"none\", \"firre\"]",
        "",
    );
    let o = sweep(t.path(), &["run", spec.to_str().unwrap(), "--dir", d], &[]);
    one_line_error(&o, "run intervention-firre__seed-1: classic: error:");
    no_run_started(&dir);
    assert!(
        !dir.join("sweep.toml").exists(),
        "a refused sweep was recorded"
    );
}

#[test]
fn missing_binary_missing_sbatch_and_unwritable_dir_are_one_line_errors() {
    let t = tempfile::tempdir().unwrap();
    let spec = write_spec(t.path(), "m", TINY, "seed = [1]", "");
    let s = spec.to_str().unwrap();
    let empty = t.path().join("no-binaries");
    std::fs::create_dir(&empty).unwrap();
    let o = sweep(
        t.path(),
        &["run", s],
        &[("SWEEP_BIN_DIR", empty.to_str().unwrap())],
    );
    one_line_error(&o, "binary `classic` is not built");
    one_line_error(&o, "cargo build --release --bin classic");

    ensure_classic();
    let o = sweep(
        t.path(),
        &["run", s, "--executor", "slurm"],
        &[("PATH", empty.to_str().unwrap())],
    );
    one_line_error(&o, "needs `sbatch` on the PATH");

    let file = t.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let o = sweep(
        t.path(),
        &["run", s, "--dir", file.join("sub").to_str().unwrap()],
        &[],
    );
    one_line_error(&o, "cannot create the sweep directory");

    let o = sweep(
        t.path(),
        &["run", t.path().join("none.toml").to_str().unwrap()],
        &[],
    );
    one_line_error(&o, "cannot read");
    let o = sweep(t.path(), &["status", t.path().to_str().unwrap()], &[]);
    one_line_error(&o, "is not a sweep directory");
}

#[test]
fn second_run_does_nothing_and_a_changed_spec_says_what_changed() {
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let spec = write_spec(t.path(), "idem", TINY, "seed = [1, 2]", "");
    let s = spec.to_str().unwrap();
    let o = sweep(t.path(), &["run", s, "--dir", d, "--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for seed in [1, 2] {
        let run = dir.join(format!("runs/seed-{seed}"));
        assert_eq!(outcome(&run)["state"], "finished");
        assert_eq!(checkpoint_step(&run), Some(600));
    }
    assert!(dir.join("sweep.toml").is_file());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert!(meta["binary"].as_str().unwrap().ends_with("/classic"));

    let o = sweep(t.path(), &["run", s, "--dir", d], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 finished, 0 to run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        outcome(&dir.join("runs/seed-1"))["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let st = sweep(t.path(), &["status", d], &[]);
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(table.contains("seed-1") && table.contains("finished") && table.contains("600/600"));
    assert!(table.contains("2 runs: 2 finished"), "{table}");

    let spec = write_spec(t.path(), "idem", TINY, "seed = [1, 2, 3]", "");
    let o = sweep(t.path(), &["run", spec.to_str().unwrap(), "--dir", d], &[]);
    one_line_error(&o, "grid.seed: [1, 2] -> [1, 2, 3]");
}

/// Starts `sweep run` in the background and waits until its run has a checkpoint.
fn start_and_wait_for_checkpoint(
    t: &std::path::Path,
    spec: &std::path::Path,
    dir: &std::path::Path,
) -> std::process::Child {
    let child = Command::new(SWEEP)
        .args([
            "run",
            spec.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ])
        .current_dir(t)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = dir.join("runs/seed-1");
    wait_for("a checkpoint", 120, || checkpoint_step(&run).is_some());
    child
}

const LONG: &str = "steps = 8000\nlearning_starts = 100\neval_every = 0\ncheckpoint_every = 500\nplasticity_every = 1000";

#[test]
fn cancelled_run_checkpoints_and_resumes_where_it_stopped() {
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("out");
    let spec = write_spec(t.path(), "resume", LONG, "seed = [1]", "");
    let mut child = start_and_wait_for_checkpoint(t.path(), &spec, &dir);
    let run = dir.join("runs/seed-1");
    let pid = outcome(&run)["attempts"][0]["pid"].as_u64().unwrap();
    let o = sweep(t.path(), &["cancel", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "sweep run exits as SIGTERM asks");
    assert!(!alive(pid), "the run (pid {pid}) outlived `sweep run`");
    assert_eq!(outcome(&run)["state"], "stopped");
    let stopped_at = checkpoint_step(&run).unwrap();
    assert!(stopped_at > 0 && stopped_at < 8000, "{stopped_at}");
    let before = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let st = sweep(t.path(), &["status", dir.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&st.stdout).contains("stopped"));

    let total = 8000;
    let o = sweep(
        t.path(),
        &[
            "run",
            spec.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = outcome(&run);
    assert_eq!(out["state"], "finished");
    assert_eq!(
        out["attempts"][1]["resumed_from"].as_u64(),
        Some(stopped_at)
    );
    assert_eq!(checkpoint_step(&run), Some(total));
    // Resumed, not restarted: the metrics written before the stop are still the file's start
    // (a restart clears them and writes new rows, with other SPS values).
    let after = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(after.starts_with(&before) && after.len() > before.len());
    let log = std::fs::read_to_string(dir.join("logs/seed-1.log")).unwrap();
    assert!(log.contains(&format!(
        "resuming from the checkpoint at step {stopped_at}"
    )));
}

#[test]
fn failing_run_is_retried_and_its_log_tail_recorded() {
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("out");
    let spec = write_spec(t.path(), "fail", LONG, "seed = [1]", "");
    let mut child = start_and_wait_for_checkpoint(t.path(), &spec, &dir);
    let o = sweep(t.path(), &["cancel", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    child.wait().unwrap();
    // A damaged checkpoint: every resume fails the same way.
    let run = dir.join("runs/seed-1");
    std::fs::write(run.join("checkpoint/state.json"), "{ not json").unwrap();
    let o = sweep(
        t.path(),
        &[
            "run",
            spec.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--max-retries",
            "1",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 run(s) failed: seed-1"),
        "{}",
        stderr(&o)
    );
    let out = outcome(&run);
    assert_eq!(out["state"], "failed");
    assert_eq!(out["failures"], 2, "first try and one retry");
    assert_eq!(out["attempts"].as_array().unwrap().len(), 3);
    let tail: Vec<String> = serde_json::from_value(out["log_tail"].clone()).unwrap();
    assert!(
        tail.iter().any(|l| l.contains("classic: error:")),
        "no error line in the tail: {tail:?}"
    );
    let st = sweep(t.path(), &["status", dir.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&st.stdout).contains("failed"));
}

/// On a file system without file locks (Lustre mounted without `flock`, NFS without a lock
/// manager: `flock` fails with ENOSYS, ENOLCK or EOPNOTSUPP; injected here through the test
/// hook `SWEEP_TEST_LOCK_ERROR=ENOLCK`, since no such file system is at hand) `sweep run`
/// says so in one line at start and runs the sweep instead of refusing it. A run is running
/// while its process lives and stopped once that process is gone without writing its outcome
/// (instead of running for ever), and the next `sweep run` resumes it from its checkpoint.
#[test]
fn without_file_locks_the_sweep_runs_and_reads_run_states_from_the_outcome_files() {
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let hook = [("SWEEP_TEST_LOCK_ERROR", "ENOLCK")];
    let note = format!(
        "sweep: file locks are not supported on {d}: a second sweep run on this directory would not be refused; run states are read from the outcome files"
    );
    let spec = write_spec(t.path(), "nolocks", LONG, "seed = [1]", "");
    let s = spec.to_str().unwrap();
    let log = t.path().join("first-run.log");
    let mut child = Command::new(SWEEP)
        .args(["run", s, "--dir", d])
        .env("SWEEP_TEST_LOCK_ERROR", "ENOLCK")
        .current_dir(t.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let run = dir.join("runs/seed-1");
    wait_for("a checkpoint", 120, || checkpoint_step(&run).is_some());
    let pid = outcome(&run)["attempts"][0]["pid"].as_u64().unwrap();
    let st = sweep(t.path(), &["status", d], &hook);
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(
        table.contains("1 runs: 1 running"),
        "a live run's process: {table}"
    );
    assert!(stderr(&st).contains(&note), "{}", stderr(&st));
    // Killed without a word: the run gets SIGTERM (PR_SET_PDEATHSIG), checkpoints and exits,
    // and nobody writes its outcome, which still says running.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the run's process to end", 60, || !alive(pid));
    let first = std::fs::read_to_string(&log).unwrap();
    assert_eq!(first.lines().next(), Some(note.as_str()), "{first}");
    assert_eq!(first.matches(&note).count(), 1, "{first}");
    let mut out = outcome(&run);
    assert_eq!(out["state"], "running");
    // As if it had died long after its start (a run just started may not hold its lock yet).
    out["attempts"][0]["started"] = (out["attempts"][0]["started"].as_u64().unwrap() - 100).into();
    std::fs::write(run.join("sweep-outcome.json"), out.to_string()).unwrap();
    let st = sweep(t.path(), &["status", d], &hook);
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(table.contains("1 runs: 1 stopped"), "{table}");
    let stopped_at = checkpoint_step(&run).unwrap();
    assert!(stopped_at < 8000, "{stopped_at}");

    let o = sweep(t.path(), &["run", s, "--dir", d], &hook);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&note), "{}", stderr(&o));
    assert!(stderr(&o).contains("1/1 runs finished"), "{}", stderr(&o));
    let out = outcome(&run);
    assert_eq!(out["state"], "finished");
    assert_eq!(
        out["attempts"][1]["resumed_from"].as_u64(),
        Some(stopped_at)
    );
    assert_eq!(checkpoint_step(&run), Some(8000));
}
