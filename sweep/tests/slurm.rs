//! The Slurm executor against a real one-node Slurm (munge, slurmctld, slurmd on loopback)
//! started by `scripts/slurm-cluster.sh`, which installs the packages when they are missing
//! and this is root with apt-get. Three `classic` runs go through a job array; one task is
//! cancelled with `scancel` while it runs; `sweep run` again resubmits only that run, which
//! resumes from its checkpoint, and the sweep completes. The cluster is stopped at the end,
//! also when the test fails.
//!
//! Where Slurm cannot be had (not installed, and not root, no apt-get, or the installation
//! fails), the test prints one `skipped: <why>` line (past the harness's output capture, so
//! `cargo test` shows it) and passes. Installed but failing to start is a failure.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

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

#[test]
fn slurm_sweep_survives_a_cancelled_task_and_resumes_it() {
    if let Some(why) = cannot_start() {
        visible(&format!("skipped: {why}"));
        return;
    }
    let had_packages = have("slurmctld") && have("munged");
    ensure_classic();
    let t = tempfile::tempdir().unwrap();
    // A short state path: munge's socket path must fit in a sockaddr.
    let cluster = match start(&t.path().join("slurm")) {
        Ok(c) => c,
        // The packages could not be installed (no network, no package source): nothing to test.
        Err(why) if !had_packages => {
            visible(&format!("skipped: installing Slurm failed: {why}"));
            return;
        }
        Err(why) => panic!("the cluster did not start: {why}"),
    };
    let env = [("SLURM_CONF", cluster.conf.as_str())];
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
