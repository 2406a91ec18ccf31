//! The Slurm executor against a real one-node Slurm (munge, slurmctld, slurmd on loopback)
//! started by `scripts/slurm-cluster.sh`, which installs the packages when they are missing
//! and this is root with apt-get. Each test starts its own cluster (`MaxArraySize = 5`, so
//! arrays hold at most 4 tasks) and stops it at the end, also when the test fails; the tests
//! take turns, since the daemons' ports are fixed.
//!
//! - three `classic` runs go through a job array; one task is cancelled with `scancel` while
//!   it runs; `sweep run` again resubmits only that run, which resumes from its checkpoint,
//!   and the sweep completes;
//! - seven runs go in two arrays (4 and 3 tasks, the second after the first) through an
//!   `sbatch` that loses its first reply and a `squeue` that fails now and then;
//! - a run stopped by the time limit (1 minute, Slurm's least) is resubmitted by the same
//!   `sweep run` and resumes; its second task, cancelled, is not resubmitted.
//!
//! `sweep` polls `squeue` every 0.2 to 1 s here (the test hooks `SWEEP_SLURM_POLL_MIN_S`,
//! `SWEEP_SLURM_POLL_MAX_S`; by default 5 to 60 s) and pauses 0.2 s before trying a failed
//! command again (`SWEEP_SLURM_RETRY_PAUSE_S`; by default 2 s).
//!
//! Where Slurm cannot be had (not installed, and not root, no apt-get, or the installation
//! fails), a test prints one `skipped: <why>` line (past the harness's output capture, so
//! `cargo test` shows it) and passes. Installed but failing to start is a failure.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The cluster's MaxArraySize in these tests: arrays of at most 4 tasks.
const MAX_ARRAY_SIZE: &str = "5";

/// Held by the test whose cluster is up (the daemons' ports are fixed).
static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, stopped when dropped.
struct Cluster {
    state: PathBuf,
    conf: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/slurm-cluster.sh"))
            .arg("stop")
            .env("FIRE_RL_SLURM_DIR", &self.state)
            .status();
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Why Slurm cannot be started here, if it cannot.
fn cannot_start() -> Option<String> {
    let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if missing.is_empty() {
        return None;
    }
    if !is_root() {
        return Some(format!(
            "{} not installed and not root to install them",
            missing.join(", ")
        ));
    }
    if !have("apt-get") {
        return Some(format!(
            "{} not installed and no apt-get",
            missing.join(", ")
        ));
    }
    None
}

/// Prints past the test harness's capture (which takes only `print!`/`eprint!`), so the line
/// shows in `cargo test` output.
fn visible(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn start(state: &Path) -> Result<Cluster, String> {
    let out = Command::new(root().join("scripts/slurm-cluster.sh"))
        .arg("start")
        .env("FIRE_RL_SLURM_DIR", state)
        .env("FIRE_RL_SLURM_MAX_ARRAY_SIZE", MAX_ARRAY_SIZE)
        .output()
        .expect("slurm-cluster.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let conf = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export SLURM_CONF="))
        .unwrap_or("")
        .to_owned();
    let cluster = Cluster {
        state: state.to_owned(),
        conf,
    };
    if out.status.success() && !cluster.conf.is_empty() {
        Ok(cluster)
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "))
    }
}

/// A cluster for one test, or why there is none (the test is then skipped). `t` holds its
/// state; the guard keeps the other tests' clusters away until this one is dropped.
fn cluster(t: &Path) -> Option<(Cluster, std::sync::MutexGuard<'static, ()>)> {
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = cannot_start() {
        visible(&format!("skipped: {why}"));
        return None;
    }
    let had_packages = have("slurmctld") && have("munged");
    ensure_classic();
    // A short state path: munge's socket path must fit in a sockaddr.
    match start(&t.join("slurm")) {
        Ok(c) => Some((c, guard)),
        // The packages could not be installed (no network, no package source): nothing to test.
        Err(why) if !had_packages => {
            visible(&format!("skipped: installing Slurm failed: {why}"));
            None
        }
        Err(why) => panic!("the cluster did not start: {why}"),
    }
}

/// The environment of every `sweep` these tests start: the cluster, and quick polls.
fn slurm_env(cluster: &Cluster) -> Vec<(&str, &str)> {
    vec![
        ("SLURM_CONF", cluster.conf.as_str()),
        ("SWEEP_SLURM_POLL_MIN_S", "0.2"),
        ("SWEEP_SLURM_POLL_MAX_S", "1"),
        ("SWEEP_SLURM_RETRY_PAUSE_S", "0.2"),
    ]
}

/// `slurm/jobs.jsonl`, parsed.
fn jobs(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("slurm/jobs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn slurm_sweep_survives_a_cancelled_task_and_resumes_it() {
    let t = tempfile::tempdir().unwrap();
    let Some((cluster, _turn)) = cluster(t.path()) else {
        return;
    };
    let env = slurm_env(&cluster);
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let spec = write_spec(
        t.path(),
        "slurm-test",
        "steps = 6000\nlearning_starts = 100\neval_every = 0\ncheckpoint_every = 500\nplasticity_every = 1000",
        "seed = [1, 2, 3]",
        "cpus_per_task = 1\nmax_concurrent = 2",
    );
    let s = spec.to_str().unwrap();

    let o = sweep(
        t.path(),
        &["run", s, "--executor", "slurm", "--no-wait", "--dir", d],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("submitted job array"), "{}", stderr(&o));

    // Cancel the first task once its run is under way with a checkpoint.
    let run = dir.join("runs/seed-1");
    wait_for("seed-1 running with a checkpoint", 90, || {
        checkpoint_step(&run).is_some()
            && run.join("sweep-outcome.json").is_file()
            && outcome(&run)["state"] == "running"
    });
    let job = outcome(&run)["attempts"][0]["job_id"]
        .as_str()
        .expect("the task recorded its job id")
        .to_owned();
    assert!(job.ends_with("_0"), "{job}");
    let st = Command::new("scancel")
        .arg(&job)
        .env("SLURM_CONF", &cluster.conf)
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("the cancelled task's outcome", 60, || {
        outcome(&run)["state"] != "running"
    });
    let out = outcome(&run);
    assert_eq!(out["state"], "stopped", "{out}");
    let stopped_at = checkpoint_step(&run).unwrap();
    assert!(stopped_at > 0 && stopped_at < 6000, "{stopped_at}");
    let before = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    // The outcome is written just before the task exits; let Slurm see it end.
    wait_for("the cancelled task to leave the queue", 60, || {
        let o = Command::new("squeue")
            .args(["-h", "-r", "-o", "%i", "-j", &job])
            .env("SLURM_CONF", &cluster.conf)
            .output()
            .unwrap();
        !String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == job)
    });

    // Again: only the cancelled run is submitted (the others are queued, running or done);
    // it resumes, and this time `sweep run` waits for everything.
    let o = sweep(
        t.path(),
        &["run", s, "--executor", "slurm", "--dir", d],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("submitted job array"), "{}", stderr(&o));
    assert!(stderr(&o).contains("(1 task(s)"), "{}", stderr(&o));
    assert!(stderr(&o).contains("3/3 runs finished"), "{}", stderr(&o));

    for seed in [1, 2, 3] {
        let r = dir.join(format!("runs/seed-{seed}"));
        assert_eq!(outcome(&r)["state"], "finished", "seed {seed}");
        assert_eq!(checkpoint_step(&r), Some(6000), "seed {seed}");
    }
    let out = outcome(&run);
    let attempts = out["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{out}");
    assert!(
        attempts[0]["exit"].as_str().unwrap().contains("143"),
        "{out}"
    );
    assert_eq!(attempts[1]["resumed_from"].as_u64(), Some(stopped_at));
    let second_job = attempts[1]["job_id"].as_str().unwrap();
    assert_ne!(
        second_job.split('_').next(),
        job.split('_').next(),
        "a new job array"
    );
    // Resumed, not restarted: the rows from before the cancel still start the file.
    let after = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(after.starts_with(&before) && after.len() > before.len());

    let jobs = std::fs::read_to_string(dir.join("slurm/jobs.jsonl")).unwrap();
    assert_eq!(jobs.lines().count(), 2);
    let st = sweep(t.path(), &["status", d], &env);
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(
        table.contains(second_job) && table.contains("3 runs: 3 finished"),
        "{table}"
    );
    let o = sweep(t.path(), &["cancel", d], &env);
    assert!(
        stderr(&o).contains("nothing running or queued"),
        "{}",
        stderr(&o)
    );
    drop(cluster);
}

/// Writes an executable shell script.
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Where a program is on the PATH.
fn which(program: &str) -> String {
    let o = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{program} not on the PATH");
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Seven runs on a cluster whose MaxArraySize is 5 go in two job arrays, of 4 and 3 tasks, the
/// second after the first (so `max_concurrent = 2` holds over both), and all finish. On the
/// way, the first `sbatch` submits its array but answers with an error (a lost reply: tried
/// again, and found in the queue instead of submitted twice) and every fourth `squeue` fails
/// (tried again).
#[test]
fn a_grid_larger_than_max_array_size_goes_in_several_arrays_through_flaky_slurm_commands() {
    let t = tempfile::tempdir().unwrap();
    let Some((cluster, _turn)) = cluster(t.path()) else {
        return;
    };
    let wrap = t.path().join("wrap");
    std::fs::create_dir(&wrap).unwrap();
    let count = |name: &str| wrap.join(format!("{name}.count")).display().to_string();
    script(
        &wrap.join("sbatch"),
        &format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             if [ $n -eq 1 ]; then {real} \"$@\" >/dev/null\n\
             echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2; exit 1; fi\n\
             exec {real} \"$@\"\n",
            c = count("sbatch"),
            real = which("sbatch")
        ),
    );
    script(
        &wrap.join("squeue"),
        &format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             if [ $((n % 4)) -eq 2 ]; then\n\
             echo 'squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1; fi\n\
             exec {real} \"$@\"\n",
            c = count("squeue"),
            real = which("squeue")
        ),
    );
    let path = format!("{}:{}", wrap.display(), std::env::var("PATH").unwrap());
    let mut env = slurm_env(&cluster);
    env.push(("PATH", &path));
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let spec = write_spec(
        t.path(),
        "slurm-arrays",
        "steps = 1500\nlearning_starts = 100\neval_every = 0\ncheckpoint_every = 500\nplasticity_every = 1000",
        "seed = [1, 2, 3, 4, 5, 6, 7]",
        "cpus_per_task = 1\nmax_concurrent = 2",
    );
    let start = std::time::Instant::now();
    let o = sweep(
        t.path(),
        &[
            "run",
            spec.to_str().unwrap(),
            "--executor",
            "slurm",
            "--dir",
            d,
        ],
        &env,
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    visible(&format!(
        "7 runs in job arrays: {:.1} s",
        start.elapsed().as_secs_f64()
    ));
    for want in [
        "7 runs to submit in 2 job arrays of at most 4 tasks",
        "sweep: sbatch failed (exit 1: sbatch: error: Batch job submission failed: Socket timed out",
        "sweep: squeue failed (exit 1: squeue: error: slurm_load_jobs error: Socket timed out",
        "trying again in 0.2 s (try 2 of 3)",
        "7/7 runs finished",
    ] {
        assert!(err.contains(want), "`{want}` not in: {err}");
    }
    let jobs = jobs(&dir);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let sizes: Vec<usize> = jobs
        .iter()
        .map(|j| j["runs"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 3]);
    assert!(sizes.iter().all(|&n| n <= 4));
    assert_eq!(jobs[1]["after"], jobs[0]["job_id"], "{jobs:?}");
    for seed in 1..=7 {
        let run = dir.join(format!("runs/seed-{seed}"));
        let out = outcome(&run);
        assert_eq!(out["state"], "finished", "seed {seed}: {out}");
        assert_eq!(checkpoint_step(&run), Some(1500), "seed {seed}");
        let attempts = out["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "seed {seed} ran once: {out}");
        let array = &jobs[if seed <= 4 { 0 } else { 1 }]["job_id"];
        let task = attempts[0]["job_id"].as_str().unwrap();
        assert!(
            task.starts_with(&format!("{}_", array.as_str().unwrap())),
            "seed {seed}: {task}"
        );
        assert_eq!(
            attempts[0]["slurm_state"], "COMPLETED",
            "seed {seed}: {out}"
        );
    }
    let st = sweep(t.path(), &["status", d], &env);
    let table = String::from_utf8_lossy(&st.stdout);
    assert!(table.contains("7 runs: 7 finished"), "{table}");
    drop(cluster);
}

/// A child process killed when dropped (a failed test leaves no `sweep run` behind).
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A run that needs longer than its time limit (`time = "1"`, a minute, Slurm's least; the
/// controller stops it 60 to 90 s after its start) gets SIGTERM and checkpoints; the same
/// `sweep run` sees the task end in TIMEOUT, resubmits the run, and it resumes from that
/// checkpoint. Its second task, cancelled with `scancel`, is not resubmitted (CANCELLED is no
/// time limit), and `sweep run` ends saying the run is not finished. About 90 s.
#[test]
fn a_run_stopped_by_the_time_limit_is_resubmitted_and_resumes() {
    let t = tempfile::tempdir().unwrap();
    let Some((cluster, _turn)) = cluster(t.path()) else {
        return;
    };
    let env = slurm_env(&cluster);
    let dir = t.path().join("out");
    let d = dir.to_str().unwrap();
    let spec = write_spec(
        t.path(),
        "slurm-time",
        "steps = \"10M\"\nlearning_starts = 100\neval_every = 0\ncheckpoint_every = 2000\nplasticity_every = 5000\nlog_every = 1000",
        "seed = [1]",
        "cpus_per_task = 1\ntime = \"1\"\nmax_resubmits = 2",
    );
    let log = t.path().join("sweep-run.log");
    let mut cmd = Command::new(SWEEP);
    cmd.args([
        "run",
        spec.to_str().unwrap(),
        "--executor",
        "slurm",
        "--dir",
        d,
    ])
    .current_dir(t.path())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let start = std::time::Instant::now();
    let mut child = Background(cmd.spawn().unwrap());
    let run = dir.join("runs/seed-1");
    let attempts = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("sweep-outcome.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|o| o["attempts"].as_array().cloned())
            .unwrap_or_default()
    };
    wait_for("the time limit, a resubmission and its resume", 240, || {
        attempts()
            .get(1)
            .is_some_and(|a| a["resumed_from"].is_u64())
            && outcome(&run)["state"] == "running"
    });
    let timed_out = start.elapsed().as_secs_f64();
    let a = attempts();
    assert_eq!(a[0]["slurm_state"], "TIMEOUT", "{a:?}");
    assert_eq!(a[0]["exit"], "exit 143", "checkpointed on SIGTERM: {a:?}");
    assert_eq!(a[0]["signal"], "SIGTERM", "{a:?}");
    let ran = a[0]["ended"].as_u64().unwrap() - a[0]["started"].as_u64().unwrap();
    assert!(ran >= 55, "stopped after {ran} s, before the limit");
    let resumed_from = a[1]["resumed_from"].as_u64().unwrap();
    assert!(resumed_from > 0, "{a:?}");
    let second = a[1]["job_id"].as_str().unwrap().to_owned();
    assert_ne!(
        second.split('_').next(),
        a[0]["job_id"].as_str().unwrap().split('_').next(),
        "a new job array"
    );
    let st = Command::new("scancel")
        .arg(&second)
        .env("SLURM_CONF", &cluster.conf)
        .status()
        .unwrap();
    assert!(st.success());
    let mut code = None;
    wait_for("`sweep run` to end", 120, || {
        code = child.0.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    visible(&format!(
        "time limit: TIMEOUT and resubmission after {timed_out:.0} s, all in {:.0} s",
        start.elapsed().as_secs_f64()
    ));
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(Some(1)), "{err}");
    for want in [
        "1 run(s) stopped by the Slurm time limit (time = 1) with a checkpoint, resubmitted to resume (each at most 2 times): seed-1",
        "0/1 runs finished",
    ] {
        assert!(err.contains(want), "`{want}` not in: {err}");
    }
    assert_eq!(
        err.matches("submitted job array").count(),
        2,
        "the cancelled task is not resubmitted: {err}"
    );
    let out = outcome(&run);
    assert_eq!(out["state"], "stopped", "{out}");
    let a = out["attempts"].as_array().unwrap();
    assert_eq!(a.len(), 2, "{out}");
    assert_eq!(a[1]["slurm_state"], "CANCELLED", "{out}");
    let log = std::fs::read_to_string(dir.join("logs/seed-1.log")).unwrap();
    assert!(log.contains(&format!(
        "resuming from the checkpoint at step {resumed_from}"
    )));
    assert_eq!(jobs(&dir).len(), 2);
    drop(cluster);
}
