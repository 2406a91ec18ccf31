//! The Slurm executor: one `sbatch` job array per submission, each task running
//! `sweep task DIR --list FILE --index $SLURM_ARRAY_TASK_ID`, which resumes its run from the
//! checkpoint if there is one and writes the outcome into the run directory itself (without
//! accounting `sacct` does not work, and `scontrol` forgets jobs minutes after they end).
//!
//! Job ids are recorded in `slurm/jobs.jsonl`; which tasks are still queued or running comes
//! from `squeue -r`.
//!
//! At scale: a to-do list longer than the cluster allows in one array (`MaxArraySize - 1`
//! tasks, from `scontrol show config`) goes in several arrays; `squeue` is polled with a
//! backoff ([`Backoff`]); a failing `squeue`, `sbatch`, `scontrol` or `scancel` is tried again
//! ([`retried`]); and a run stopped by the time limit is recognised
//! ([`stopped_by_time_limit`]) so `sweep run` can resubmit it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::state::{now, Outcome, State, SweepDir};

/// One submission, a line of `slurm/jobs.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    /// Unix seconds.
    pub submitted: u64,
    /// Run names by array index.
    pub runs: Vec<String>,
    pub script: PathBuf,
    /// The array this one waits for (`--dependency=afterany:ID`), which keeps
    /// `max_concurrent` a bound over all the arrays of one submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
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

/// How often and how patiently `sweep` talks to Slurm.
///
/// Test hooks (environment variables, seconds, fractions allowed): `SWEEP_SLURM_POLL_MIN_S`
/// and `SWEEP_SLURM_POLL_MAX_S` bound the `squeue` polling interval (default 5 and 60),
/// `SWEEP_SLURM_RETRY_PAUSE_S` is the pause before a failed command is tried again (default 2).
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub poll_min: Duration,
    pub poll_max: Duration,
    pub retry_pause: Duration,
    /// Tries of a failing command before its error is the sweep's.
    pub attempts: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_secs(5),
            poll_max: Duration::from_secs(60),
            retry_pause: Duration::from_secs(2),
            attempts: 3,
        }
    }
}

impl Timing {
    /// The defaults, with the test hooks' values where they are set.
    pub fn from_env() -> Result<Self> {
        let mut t = Self::default();
        let secs = |var: &str, into: &mut Duration| -> Result<()> {
            if let Ok(v) = std::env::var(var) {
                let x: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| anyhow!("{var} must be a number of seconds, not `{v}`"))?;
                *into = Duration::from_secs_f64(x);
            }
            Ok(())
        };
        secs("SWEEP_SLURM_POLL_MIN_S", &mut t.poll_min)?;
        secs("SWEEP_SLURM_POLL_MAX_S", &mut t.poll_max)?;
        secs("SWEEP_SLURM_RETRY_PAUSE_S", &mut t.retry_pause)?;
        t.poll_max = t.poll_max.max(t.poll_min);
        Ok(t)
    }
}

/// The interval between two `squeue` polls: `poll_min` after a submission or after a run
/// ended, then doubling up to `poll_max` while nothing ends.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(timing: &Timing) -> Self {
        Self {
            min: timing.poll_min,
            max: timing.poll_max,
            current: timing.poll_min,
        }
    }

    /// The wait before the next poll; `reset` after something ended.
    pub fn next(&mut self, reset: bool) -> Duration {
        let wait = if reset { self.min } else { self.current };
        self.current = (wait * 2).min(self.max);
        wait
    }

    /// The shortest wait.
    pub fn min(&self) -> Duration {
        self.min
    }
}

/// The first line of a command's complaint, for one-line messages.
fn complaint(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no message)");
    match out.status.code() {
        Some(c) => format!("exit {c}: {line}"),
        None => format!("killed: {line}"),
    }
}

/// Says why a command is tried again, then pauses.
fn retry_note(what: &str, last: &str, attempt: u32, timing: &Timing) {
    eprintln!(
        "sweep: {what} failed ({last}); trying again in {:.1} s (try {attempt} of {})",
        timing.retry_pause.as_secs_f64(),
        timing.attempts.max(1)
    );
    std::thread::sleep(timing.retry_pause);
}

/// Runs the command `make` builds until it succeeds or `accept` takes its failure as an answer
/// (as `squeue` answers "Invalid job id" for jobs it forgot), trying `timing.attempts` times
/// with `timing.retry_pause` between (a controller that is busy or restarting answers again
/// moments later); then its last error is the sweep's error.
pub fn retried(
    what: &str,
    timing: &Timing,
    mut make: impl FnMut() -> Command,
    accept: impl Fn(&Output) -> bool,
) -> Result<Output> {
    let attempts = timing.attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            retry_note(what, &last, attempt, timing);
        }
        match make().output() {
            Ok(out) if out.status.success() || accept(&out) => return Ok(out),
            Ok(out) => last = complaint(&out),
            Err(e) => last = format!("cannot run it: {e}"),
        }
    }
    bail!("{what} failed {attempts} times; the last time: {last}")
}

/// Tasks per job array when the cluster's `MaxArraySize` cannot be read.
pub const FALLBACK_ARRAY_TASKS: usize = 1000;

/// `MaxArraySize` from `scontrol show config`'s text.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The most tasks one array may have, `MaxArraySize - 1` (at least 1), from the text of
/// `scontrol show config` (`Err`: why it could not be had). Falls back to
/// [`FALLBACK_ARRAY_TASKS`] with a note when the size cannot be read, and errors where the
/// cluster disables arrays (`MaxArraySize = 0`).
pub fn array_tasks(config: Result<String, String>) -> Result<(usize, Option<String>)> {
    let fallback = |why: String| {
        Ok((
            FALLBACK_ARRAY_TASKS,
            Some(format!(
                "cannot read the cluster's MaxArraySize ({why}): job arrays of at most {FALLBACK_ARRAY_TASKS} tasks"
            )),
        ))
    };
    match config {
        Err(why) => fallback(why),
        Ok(text) => match parse_max_array_size(&text) {
            Some(0) => bail!(
                "this cluster disables job arrays (MaxArraySize = 0 in `scontrol show config`), and the Slurm executor submits job arrays"
            ),
            Some(n) => Ok(((n - 1).max(1), None)),
            None => fallback("`scontrol show config` lists no MaxArraySize".into()),
        },
    }
}

/// [`array_tasks`] of this cluster (`scontrol show config`, tried again when it fails).
pub fn cluster_array_tasks(timing: &Timing) -> Result<(usize, Option<String>)> {
    let config = retried(
        "scontrol show config",
        timing,
        || {
            let mut c = Command::new("scontrol");
            c.args(["show", "config"]);
            c
        },
        |_| false,
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .map_err(|e| crate::error_line(&e));
    array_tasks(config)
}

/// Submits `names` as one job array (after array `after` has ended, if given); returns its job
/// id. A failing `sbatch` is tried again (see [`retried`]), but not when the array is in the
/// queue after all (its reply was lost): no run is submitted twice.
pub fn submit(
    dir: &SweepDir,
    spec: &Spec,
    sweep_exe: &Path,
    names: &[String],
    after: Option<&str>,
    timing: &Timing,
) -> Result<String> {
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
    let attempts = timing.attempts.max(1);
    let mut last = String::new();
    let mut job_id = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            retry_note("sbatch", &last, attempt, timing);
            // A submission whose reply was lost is in the queue: it is not submitted twice.
            if let Some(id) = queued_job_with_script(&script_path) {
                job_id = Some(id);
                break;
            }
        }
        let mut c = Command::new("sbatch");
        c.arg("--parsable");
        if let Some(a) = after {
            c.arg(format!("--dependency=afterany:{a}"));
        }
        match c.arg(&script_path).output() {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let id = text
                    .trim()
                    .split(';')
                    .next()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| anyhow!("sbatch printed no job id"))?;
                job_id = Some(id.to_owned());
                break;
            }
            Ok(out) => last = complaint(&out),
            Err(e) => last = format!("cannot run it: {e}"),
        }
    }
    let job_id = job_id.ok_or_else(|| {
        anyhow!(
            "sbatch refused the job array ({}) {attempts} times; the last time: {last}",
            script_path.display()
        )
    })?;
    let sub = Submission {
        job_id: job_id.clone(),
        submitted: now(),
        runs: names.to_vec(),
        script: script_path,
        after: after.map(str::to_owned),
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sdir.join("jobs.jsonl"))?;
    writeln!(f, "{}", serde_json::to_string(&sub)?)?;
    Ok(job_id)
}

/// The job id of this user's queued or running array whose batch script is `script`, if one
/// is (asked once; `None` when `squeue` does not answer).
fn queued_job_with_script(script: &Path) -> Option<String> {
    let out = Command::new("squeue")
        .args(["-h", "--me", "-o", "%F %o"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let want = script.display().to_string();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (id, command) = l.trim().split_once(' ')?;
        (command.trim() == want).then(|| id.to_owned())
    })
}

/// States of a task that is queued or running (or about to run again).
const ACTIVE: &[&str] = &[
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
];

/// Whether a Slurm state is one of a task still queued or running.
pub fn is_active_state(state: &str) -> bool {
    ACTIVE.contains(&state)
}

/// What one `squeue` poll says about the sweep's array tasks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Poll {
    /// Run name -> (`JOBID_INDEX`, state) of the tasks still queued or running.
    pub active: BTreeMap<String, (String, String)>,
    /// `JOBID_INDEX` -> state of every task `squeue` still knows, ended ones included
    /// (`TIMEOUT`, `CANCELLED`, `COMPLETED`, ... for `MinJobAge` seconds after the end).
    pub states: BTreeMap<String, String>,
}

/// Reads `squeue -h -r -t all -o '%i %T'` output against the submissions.
pub fn parse_squeue(text: &str, subs: &[Submission]) -> Poll {
    let by_id: BTreeMap<&str, &Submission> = subs.iter().map(|s| (s.job_id.as_str(), s)).collect();
    let mut poll = Poll::default();
    for line in text.lines() {
        let Some((id, st)) = line.trim().split_once(' ') else {
            continue;
        };
        let st = st.trim();
        let Some((job, idx)) = id.split_once('_') else {
            continue;
        };
        let Some(sub) = by_id.get(job) else { continue };
        poll.states.insert(id.to_owned(), st.to_owned());
        if !ACTIVE.contains(&st) {
            continue;
        }
        if let Some(name) = idx.parse::<usize>().ok().and_then(|i| sub.runs.get(i)) {
            poll.active
                .insert(name.clone(), (id.to_owned(), st.to_owned()));
        }
    }
    poll
}

/// Asks `squeue` (tried again when it fails) about every array of the sweep.
pub fn poll(dir: &SweepDir, timing: &Timing) -> Result<Poll> {
    let subs = submissions(dir);
    if subs.is_empty() {
        return Ok(Poll::default());
    }
    let ids: Vec<&str> = subs.iter().map(|s| s.job_id.as_str()).collect();
    let ids = ids.join(",");
    // squeue fails when none of the ids is known any more (they ended long ago).
    let forgot = |o: &Output| String::from_utf8_lossy(&o.stderr).contains("Invalid job id");
    let out = retried(
        "squeue",
        timing,
        || {
            let mut c = Command::new("squeue");
            c.args(["-h", "-r", "-t", "all", "-o", "%i %T", "-j"])
                .arg(&ids);
            c
        },
        forgot,
    )?;
    if !out.status.success() {
        return Ok(Poll::default());
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout), &subs))
}

/// Array tasks of this sweep still known to `squeue` as pending or running: run name ->
/// (`JOBID_INDEX`, state).
pub fn active(dir: &SweepDir, timing: &Timing) -> Result<BTreeMap<String, (String, String)>> {
    poll(dir, timing).map(|p| p.active)
}

/// Reads `sacct -n -X -P -o JobID,State` output: `JOBID_INDEX` -> state (its first word:
/// `CANCELLED by 1000` is `CANCELLED`). Lines of pending ranges (`12_[3-5]`) are left out.
pub fn parse_sacct(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (id, st) = l.trim().split_once('|')?;
            let st = st.split_whitespace().next()?;
            (!id.contains('[')).then(|| (id.to_owned(), st.to_owned()))
        })
        .collect()
}

/// The final states `sacct` knows of `tasks` (`JOBID_INDEX`); empty where there is no
/// accounting (`sacct` fails) or no `sacct`. Asked once, not tried again: it only fills in
/// what `squeue` has forgotten.
pub fn sacct_states(tasks: &[String]) -> BTreeMap<String, String> {
    if tasks.is_empty() || !crate::setup::on_path("sacct") {
        return BTreeMap::new();
    }
    Command::new("sacct")
        .args(["-n", "-X", "-P", "-o", "JobID,State", "-j"])
        .arg(tasks.join(","))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_sacct(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// Seconds of a Slurm time (`--time`): `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`;
/// `None` for an empty or unlimited one.
pub fn time_seconds(t: &str) -> Option<u64> {
    let t = t.trim();
    if t.is_empty() || matches!(t, "UNLIMITED" | "INFINITE" | "-1") {
        return None;
    }
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (num(d)?, Some(r)),
        None => (0, None),
    };
    let secs = match rest {
        Some(r) => {
            let p: Vec<&str> = r.split(':').collect();
            match p.as_slice() {
                [h] => num(h)? * 3600,
                [h, m] => num(h)? * 3600 + num(m)? * 60,
                [h, m, s] => num(h)? * 3600 + num(m)? * 60 + num(s)?,
                _ => return None,
            }
        }
        None => {
            let p: Vec<&str> = t.split(':').collect();
            match p.as_slice() {
                [m] => num(m)? * 60,
                [m, s] => num(m)? * 60 + num(s)?,
                [h, m, s] => num(h)? * 3600 + num(m)? * 60 + num(s)?,
                _ => return None,
            }
        }
    };
    Some(days * 86_400 + secs)
}

/// How much shorter than the time limit an attempt may look and still have met it (its start
/// is recorded a moment after the job's).
const TIME_LIMIT_SLACK_S: u64 = 10;

/// Whether a run was stopped by the Slurm time limit with a checkpoint, so resubmitting it
/// resumes it: its state is `stopped` (`state`, as [`crate::state::inspect`] reads it), it has
/// a checkpoint, and either Slurm says its last attempt's task ended in `TIMEOUT`
/// (`slurm_state`, from `squeue` or `sacct`), or, where Slurm no longer knows the task, the
/// attempt's own record shows it was stopped by SIGTERM after running at least the time limit
/// (`limit_s`, from `[slurm] time`). `CANCELLED` (`scancel`, `sweep cancel`) is never a time
/// limit.
pub fn stopped_by_time_limit(
    state: State,
    outcome: Option<&Outcome>,
    has_checkpoint: bool,
    slurm_state: Option<&str>,
    limit_s: Option<u64>,
) -> bool {
    if state != State::Stopped || !has_checkpoint {
        return false;
    }
    let Some(a) = outcome.and_then(|o| o.attempts.last()) else {
        return false;
    };
    match slurm_state {
        Some(s) => s == "TIMEOUT",
        None => {
            let by_sigterm = a.signal.as_deref() == Some("SIGTERM")
                || matches!(a.exit.as_deref(), Some("exit 143" | "signal 15"));
            let ran = a.ended.map(|e| e.saturating_sub(a.started));
            by_sigterm
                && limit_s
                    .zip(ran)
                    .is_some_and(|(limit, ran)| ran + TIME_LIMIT_SLACK_S >= limit)
        }
    }
}

/// What a waiting `sweep run` does with a run stopped by the time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resubmit {
    /// Not stopped by the time limit (or already resubmitted for this task).
    No,
    /// Resubmitted, the `n`th time in this `sweep run`.
    Again(u32),
    /// Stopped by the time limit once more after `max_resubmits` resubmissions: left stopped.
    GaveUp,
}

/// The count of time-limit resubmissions per run in one `sweep run`, bounded by
/// `max_resubmits`; each ended task is acted on once.
#[derive(Clone, Debug)]
pub struct Resubmissions {
    max: u32,
    done: BTreeMap<String, u32>,
    tasks: BTreeSet<String>,
}

impl Resubmissions {
    pub fn new(max_resubmits: u32) -> Self {
        Self {
            max: max_resubmits,
            done: BTreeMap::new(),
            tasks: BTreeSet::new(),
        }
    }

    /// Decides for run `name`, whose last attempt ran as Slurm task `task` and was (or was
    /// not) stopped by the time limit ([`stopped_by_time_limit`]).
    pub fn decide(&mut self, name: &str, task: &str, timed_out: bool) -> Resubmit {
        if !timed_out || self.tasks.contains(task) {
            return Resubmit::No;
        }
        let done = self.done.entry(name.to_owned()).or_default();
        if *done >= self.max {
            return Resubmit::GaveUp;
        }
        *done += 1;
        self.tasks.insert(task.to_owned());
        Resubmit::Again(*done)
    }
}

/// Cancels every queued or running task of the sweep; returns the job ids cancelled.
pub fn cancel(dir: &SweepDir, timing: &Timing) -> Result<Vec<String>> {
    let act = active(dir, timing)?;
    let jobs: BTreeSet<String> = act
        .values()
        .filter_map(|(id, _)| id.split_once('_').map(|(j, _)| j.to_owned()))
        .collect();
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let jobs: Vec<String> = jobs.into_iter().collect();
    retried(
        "scancel",
        timing,
        || {
            let mut c = Command::new("scancel");
            c.args(&jobs);
            c
        },
        |_| false,
    )?;
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Attempt, Recorded};

    /// An excerpt of `scontrol show config` (Slurm 22.05).
    const CONFIG: &str = "Configuration data as of 2026-12-03T12:21:18
AccountingStorageBackupHost = (null)
KillWait                = 30 sec
MaxArraySize            = 5
MaxJobCount             = 10000
MinJobAge               = 300 sec
";

    #[test]
    fn arrays_hold_at_most_max_array_size_minus_one_tasks() {
        assert_eq!(parse_max_array_size(CONFIG), Some(5));
        assert_eq!(array_tasks(Ok(CONFIG.into())).unwrap(), (4, None));
        let big = CONFIG.replace("= 5", "= 1001");
        assert_eq!(array_tasks(Ok(big)).unwrap(), (1000, None));
        let one = CONFIG.replace("= 5", "= 1");
        assert_eq!(array_tasks(Ok(one)).unwrap(), (1, None));
        let zero = CONFIG.replace("= 5", "= 0");
        assert!(array_tasks(Ok(zero))
            .unwrap_err()
            .to_string()
            .contains("disables job arrays"));
        let (n, note) = array_tasks(Err("scontrol: command not found".into())).unwrap();
        assert_eq!(n, FALLBACK_ARRAY_TASKS);
        let note = note.unwrap();
        assert!(
            note.contains("cannot read the cluster's MaxArraySize")
                && note.contains("scontrol: command not found")
                && note.contains("at most 1000 tasks"),
            "{note}"
        );
        let (n, note) = array_tasks(Ok("KillWait = 30 sec\n".into())).unwrap();
        assert!(n == 1000 && note.unwrap().contains("lists no MaxArraySize"));
    }

    #[test]
    fn polls_back_off_from_the_least_to_the_most_and_start_over_when_a_run_ends() {
        let t = Timing::default();
        assert_eq!(
            (t.poll_min, t.poll_max, t.attempts),
            (Duration::from_secs(5), Duration::from_secs(60), 3)
        );
        let mut b = Backoff::new(&t);
        let waits: Vec<u64> = (0..7).map(|_| b.next(false).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(b.next(true).as_secs(), 5);
        assert_eq!(b.next(false).as_secs(), 10);
    }

    /// A command that fails twice and then succeeds is tried three times; one that always
    /// fails gives up after three tries with its own last error. (The script runs through
    /// `sh`: executing a file just written races with other tests' forks, ETXTBSY.)
    #[test]
    fn failing_slurm_commands_are_tried_again_then_give_up_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let flaky = dir.path().join("flaky");
        std::fs::write(
            &flaky,
            "#!/bin/sh\nn=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"\n\
             [ $n -ge \"$2\" ] && { echo ok $n; exit 0; }\n\
             echo \"squeue: error: Socket timed out on send/recv operation ($n)\" >&2; exit 1\n",
        )
        .unwrap();
        let timing = Timing {
            retry_pause: Duration::from_millis(10),
            ..Timing::default()
        };
        let run = |succeed_at: &str| {
            let _ = std::fs::remove_file(&count);
            retried(
                "squeue",
                &timing,
                || {
                    let mut c = Command::new("sh");
                    c.arg(&flaky).arg(&count).arg(succeed_at);
                    c
                },
                |_| false,
            )
        };
        let out = run("3").unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 3");
        let err = run("4").unwrap_err().to_string();
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "3");
        assert!(
            err.contains("squeue failed 3 times")
                && err
                    .contains("exit 1: squeue: error: Socket timed out on send/recv operation (3)"),
            "{err}"
        );
        // An answer the caller accepts ("Invalid job id") is not tried again.
        let _ = std::fs::remove_file(&count);
        let out = retried(
            "squeue",
            &timing,
            || {
                let mut c = Command::new("sh");
                c.arg(&flaky).arg(&count).arg("9");
                c
            },
            |o| String::from_utf8_lossy(&o.stderr).contains("Socket timed out"),
        )
        .unwrap();
        assert!(!out.status.success());
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "1");
    }

    fn sub(id: &str, runs: &[&str]) -> Submission {
        Submission {
            job_id: id.into(),
            submitted: 0,
            runs: runs.iter().map(|r| r.to_string()).collect(),
            script: PathBuf::from("/s.sh"),
            after: None,
        }
    }

    #[test]
    fn squeue_output_gives_the_active_tasks_and_every_known_state() {
        let subs = [sub("12", &["a", "b", "c"]), sub("13", &["d", "e"])];
        // `squeue -h -r -t all -o '%i %T' -j 12,13`, recorded from a one-node Slurm 22.05.
        let text = "12_2 RUNNING\n12_0 TIMEOUT\n12_1 CANCELLED\n13_0 PENDING\n13_1 COMPLETED\n99_0 RUNNING\n";
        let p = parse_squeue(text, &subs);
        assert_eq!(
            p.active.keys().map(String::as_str).collect::<Vec<_>>(),
            ["c", "d"]
        );
        assert_eq!(p.active["d"], ("13_0".to_string(), "PENDING".to_string()));
        assert_eq!(p.states["12_0"], "TIMEOUT");
        assert_eq!(p.states["12_1"], "CANCELLED");
        assert!(!p.states.contains_key("99_0"), "another user's job");
    }

    /// The resubmission decision on recorded `sacct` output (accounting on; the test cluster
    /// has none): the task that hit the time limit is resubmitted, `max_resubmits` times at
    /// most, the cancelled one and the one that ran out of memory are not; without Slurm's
    /// word, the attempt's own SIGTERM after the whole time limit decides.
    #[test]
    fn runs_stopped_by_the_time_limit_are_resubmitted_up_to_max_resubmits() {
        // `sacct -n -X -P -o JobID,State -j 4711,4712`
        let sacct = "4711_0|TIMEOUT\n4711_1|CANCELLED by 1000\n4711_2|COMPLETED\n4711_3|OUT_OF_MEMORY\n4712_[0-3]|PENDING\n4712_4|RUNNING\n";
        let states = parse_sacct(sacct);
        assert_eq!(states.len(), 5);
        assert_eq!(states["4711_1"], "CANCELLED");
        assert!(!states.keys().any(|k| k.contains('[')));
        let stopped = |task: &str, signal: Option<&str>, ran: u64| Outcome {
            state: Recorded::Stopped,
            failures: 0,
            attempts: vec![Attempt {
                started: 1000,
                ended: Some(1000 + ran),
                job_id: Some(task.into()),
                exit: Some("exit 143".into()),
                signal: signal.map(str::to_owned),
                ..Attempt::default()
            }],
            log_tail: vec![],
        };
        let limit = time_seconds("1:00:00");
        let decide = |task: &str, o: &Outcome, has_checkpoint: bool| {
            stopped_by_time_limit(
                State::Stopped,
                Some(o),
                has_checkpoint,
                states.get(task).map(String::as_str),
                limit,
            )
        };
        let o = stopped("4711_0", Some("SIGTERM"), 3630);
        assert!(decide("4711_0", &o, true), "TIMEOUT");
        assert!(!decide("4711_0", &o, false), "no checkpoint to resume");
        assert!(!decide(
            "4711_1",
            &stopped("4711_1", Some("SIGTERM"), 3630),
            true
        ));
        assert!(!decide("4711_3", &stopped("4711_3", None, 3630), true));
        assert!(!stopped_by_time_limit(
            State::Finished,
            Some(&o),
            true,
            Some("TIMEOUT"),
            limit
        ));
        // Forgotten by Slurm (no accounting, past MinJobAge): SIGTERM after the whole limit.
        assert!(decide(
            "4799_0",
            &stopped("4799_0", Some("SIGTERM"), 3595),
            true
        ));
        assert!(!decide(
            "4799_0",
            &stopped("4799_0", Some("SIGTERM"), 1200),
            true
        ));
        let mut ctrl_c = stopped("4799_0", Some("SIGINT"), 3600);
        ctrl_c.attempts[0].exit = Some("exit 130".into());
        assert!(
            !decide("4799_0", &ctrl_c, true),
            "Ctrl-C is not a time limit"
        );
        // The run's exit 143 alone says SIGTERM reached it.
        assert!(decide("4799_0", &stopped("4799_0", None, 3600), true));
        let no_limit = stopped_by_time_limit(
            State::Stopped,
            Some(&stopped("4799_0", Some("SIGTERM"), 9999)),
            true,
            None,
            None,
        );
        assert!(!no_limit, "without [slurm] time only Slurm's word counts");

        let mut r = Resubmissions::new(3);
        assert_eq!(r.decide("a", "4711_0", true), Resubmit::Again(1));
        assert_eq!(r.decide("a", "4711_0", true), Resubmit::No, "once per task");
        assert_eq!(r.decide("a", "4720_0", true), Resubmit::Again(2));
        assert_eq!(r.decide("a", "4721_0", true), Resubmit::Again(3));
        assert_eq!(r.decide("a", "4722_0", true), Resubmit::GaveUp);
        assert_eq!(r.decide("b", "4711_1", false), Resubmit::No);
        assert_eq!(
            Resubmissions::new(0).decide("c", "1_0", true),
            Resubmit::GaveUp
        );
    }

    #[test]
    fn slurm_times_in_seconds() {
        for (t, s) in [
            ("1", Some(60)),
            ("0:30", Some(30)),
            ("90:00", Some(5400)),
            ("6:00:00", Some(21_600)),
            ("2-0", Some(172_800)),
            ("1-2:30", Some(95_400)),
            ("1-0:0:5", Some(86_405)),
            ("", None),
            ("UNLIMITED", None),
            ("x", None),
        ] {
            assert_eq!(time_seconds(t), s, "{t}");
        }
    }

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
