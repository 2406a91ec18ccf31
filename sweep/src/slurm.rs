//! The Slurm executor: one `sbatch` job array per submission, each task running
//! `sweep task DIR --list FILE --index $SLURM_ARRAY_TASK_ID`, which resumes its run from the
//! checkpoint if there is one and writes the outcome into the run directory itself (without
//! accounting `sacct` does not work, and `scontrol` forgets jobs minutes after they end).
//!
//! Job ids are recorded in `slurm/jobs.jsonl`; which tasks are still queued or running comes
//! from `squeue -r`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::state::{now, SweepDir};

/// One submission, a line of `slurm/jobs.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    /// Unix seconds.
    pub submitted: u64,
    /// Run names by array index.
    pub runs: Vec<String>,
    pub script: PathBuf,
}

/// Every submission recorded in the sweep directory.
pub fn submissions(dir: &SweepDir) -> Vec<Submission> {
    std::fs::read_to_string(dir.slurm_dir().join("jobs.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The job script of a submission.
pub fn script(spec: &Spec, dir: &Path, sweep_exe: &Path, list: &Path, n: usize) -> String {
    let s = &spec.slurm;
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=sweep-{}", spec.name),
        match s.max_concurrent {
            0 => format!("#SBATCH --array=0-{}", n - 1),
            m => format!("#SBATCH --array=0-{}%{m}", n - 1),
        },
        format!("#SBATCH --cpus-per-task={}", s.cpus_per_task.max(1)),
        format!("#SBATCH --output={}/slurm/%A_%a.out", dir.display()),
    ];
    if s.gpus > 0 {
        lines.push(format!("#SBATCH --gres=gpu:{}", s.gpus));
    }
    if !s.mem.is_empty() {
        lines.push(format!("#SBATCH --mem={}", s.mem));
    }
    if !s.time.is_empty() {
        lines.push(format!("#SBATCH --time={}", s.time));
    }
    if !s.partition.is_empty() {
        lines.push(format!("#SBATCH --partition={}", s.partition));
    }
    for e in &s.extra {
        lines.push(format!("#SBATCH {e}"));
    }
    lines.push(String::new());
    lines.push(
        "# Each task runs one grid point; it resumes from the run's checkpoint if one exists."
            .into(),
    );
    lines.push(format!(
        "exec {} task {} --list {} --index \"$SLURM_ARRAY_TASK_ID\"",
        shell_quote(&sweep_exe.display().to_string()),
        shell_quote(&dir.display().to_string()),
        shell_quote(&list.display().to_string()),
    ));
    lines.join("\n") + "\n"
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Submits `names` as one job array; returns its job id.
pub fn submit(dir: &SweepDir, spec: &Spec, sweep_exe: &Path, names: &[String]) -> Result<String> {
    let sdir = dir.slurm_dir();
    std::fs::create_dir_all(&sdir).with_context(|| format!("cannot create {}", sdir.display()))?;
    let abs = dir
        .path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.path.display()))?;
    let k = submissions(dir).len();
    let list = abs.join("slurm").join(format!("submission-{k}.runs"));
    std::fs::write(&list, names.join("\n") + "\n")?;
    let script_path = abs.join("slurm").join(format!("submission-{k}.sh"));
    std::fs::write(
        &script_path,
        script(spec, &abs, sweep_exe, &list, names.len()),
    )?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script_path)
        .output()
        .context("cannot run sbatch")?;
    if !out.status.success() {
        bail!(
            "sbatch refused the job array ({}): {}",
            script_path.display(),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let job_id = text
        .trim()
        .split(';')
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("sbatch printed no job id"))?
        .to_owned();
    let sub = Submission {
        job_id: job_id.clone(),
        submitted: now(),
        runs: names.to_vec(),
        script: script_path,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sdir.join("jobs.jsonl"))?;
    writeln!(f, "{}", serde_json::to_string(&sub)?)?;
    Ok(job_id)
}

/// Array tasks of this sweep still known to `squeue` (pending or running): run name ->
/// (`JOBID_INDEX`, state).
pub fn active(dir: &SweepDir) -> Result<BTreeMap<String, (String, String)>> {
    let subs = submissions(dir);
    if subs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<&str> = subs.iter().map(|s| s.job_id.as_str()).collect();
    let out = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i %T", "-j"])
        .arg(ids.join(","))
        .output()
        .context("cannot run squeue")?;
    // squeue fails when none of the ids is known any more (they ended long ago).
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("Invalid job id") {
            String::new()
        } else {
            bail!("squeue failed: {}", err.trim().replace('\n', " "));
        }
    };
    let by_id: BTreeMap<&str, &Submission> = subs.iter().map(|s| (s.job_id.as_str(), s)).collect();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((id, st)) = line.trim().split_once(' ') else {
            continue;
        };
        if !matches!(
            st,
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
        ) {
            continue;
        }
        let Some((job, idx)) = id.split_once('_') else {
            continue;
        };
        let Some(sub) = by_id.get(job) else { continue };
        if let Some(name) = idx.parse::<usize>().ok().and_then(|i| sub.runs.get(i)) {
            map.insert(name.clone(), (id.to_owned(), st.to_owned()));
        }
    }
    Ok(map)
}

/// Cancels every queued or running task of the sweep; returns the job ids cancelled.
pub fn cancel(dir: &SweepDir) -> Result<Vec<String>> {
    let act = active(dir)?;
    let jobs: BTreeSet<String> = act
        .values()
        .filter_map(|(id, _)| id.split_once('_').map(|(j, _)| j.to_owned()))
        .collect();
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let jobs: Vec<String> = jobs.into_iter().collect();
    let out = Command::new("scancel")
        .args(&jobs)
        .output()
        .context("cannot run scancel")?;
    if !out.status.success() {
        bail!(
            "scancel failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        );
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_asks_for_the_resources() {
        let mut spec = Spec::parse("name = \"s\"\nbinary = \"classic\"\n[grid]\nseed = [1, 2]\n[slurm]\ncpus_per_task = 4\ngpus = 1\nmem = \"32G\"\ntime = \"6:00:00\"\nmax_concurrent = 20\nextra = [\"--requeue\"]\n").unwrap();
        let s = script(
            &spec,
            Path::new("/r/s"),
            Path::new("/b/sweep"),
            Path::new("/r/s/slurm/l"),
            2,
        );
        for want in [
            "#SBATCH --array=0-1%20",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --mem=32G",
            "#SBATCH --time=6:00:00",
            "#SBATCH --requeue",
            "exec /b/sweep task /r/s --list /r/s/slurm/l --index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.contains(want), "{want} missing from\n{s}");
        }
        assert!(!s.contains("--partition"));
        spec.slurm.max_concurrent = 0;
        spec.slurm.gpus = 0;
        let s = script(
            &spec,
            Path::new("/r/s"),
            Path::new("/b/sweep"),
            Path::new("/l"),
            2,
        );
        assert!(s.contains("#SBATCH --array=0-1\n") && !s.contains("gres"));
    }
}
