//! What a sweep directory holds and what each run's state is, read from the files alone (no
//! daemon, no database): a run's outcome is written into its run directory by the process
//! that ran it, so it survives the Slurm controller forgetting the job.
//!
//! ```text
//! results/sweeps/<name>/
//!   sweep.toml            the sweep file, copied
//!   base-config.toml      the base configuration, copied (when the sweep names one)
//!   sweep.json            the binary's path and the sweep executable's path
//!   sweep.lock            held by the `sweep run` using the directory
//!   runs/<point>/         one run directory per grid point (config.toml written up front)
//!       sweep-outcome.json  state, attempts (host, pid, job id, step resumed from, exit)
//!   logs/<point>.log      the run's stdout and stderr, every attempt appended
//!   slurm/                job scripts, task lists, jobs.jsonl (one line per submission)
//! ```

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::spec::{steps_value, Spec};

/// The outcome file inside a run directory.
pub const OUTCOME_FILE: &str = "sweep-outcome.json";

/// A sweep directory.
#[derive(Clone, Debug)]
pub struct SweepDir {
    pub path: PathBuf,
}

/// `sweep.json`: what the runs are started with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// The training binary (absolute path), checked to exist when the sweep was (re)started.
    pub binary: PathBuf,
    /// The `sweep` executable Slurm tasks run (absolute path).
    pub sweep_exe: PathBuf,
}

impl SweepDir {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }
    pub fn spec_file(&self) -> PathBuf {
        self.path.join("sweep.toml")
    }
    pub fn base_config_file(&self) -> PathBuf {
        self.path.join("base-config.toml")
    }
    pub fn meta_file(&self) -> PathBuf {
        self.path.join("sweep.json")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.path.join("sweep.lock")
    }
    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.path.join("runs").join(name)
    }
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }
    pub fn slurm_dir(&self) -> PathBuf {
        self.path.join("slurm")
    }

    /// Opens an existing sweep directory (it must hold `sweep.toml`).
    pub fn open(path: &Path) -> Result<(Self, Spec)> {
        let dir = Self::new(path);
        if !dir.spec_file().is_file() {
            bail!(
                "{} is not a sweep directory (no sweep.toml)",
                path.display()
            );
        }
        let spec = Spec::read(&dir.spec_file())?;
        Ok((dir, spec))
    }

    pub fn meta(&self) -> Result<Meta> {
        let path = self.meta_file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    pub fn write_meta(&self, meta: &Meta) -> Result<()> {
        write_atomic(
            &self.meta_file(),
            serde_json::to_string_pretty(meta)?.as_bytes(),
        )
    }
}

/// Writes a file through a temporary sibling and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where a run stands, as its outcome file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recorded {
    Running,
    Finished,
    /// Stopped by a signal with a checkpoint (Ctrl-C, `sweep cancel`, scancel, preemption).
    Stopped,
    Failed,
}

/// One start of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix seconds.
    pub started: u64,
    pub ended: Option<u64>,
    pub host: String,
    pub pid: u32,
    /// `JOBID_INDEX` under Slurm.
    pub job_id: Option<String>,
    /// The checkpoint's step it resumed from (`None`: a fresh start).
    pub resumed_from: Option<u64>,
    /// `exit 0`, `exit 143`, `signal 9`.
    pub exit: Option<String>,
    /// The stop signal the process running the attempt (`sweep task`, `sweep run`) received
    /// and forwarded to the run, e.g. `SIGTERM` from Slurm's time limit or `scancel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The Slurm state its array task ended in (`TIMEOUT`, `CANCELLED`, `COMPLETED`, ...), as
    /// the `sweep run` that waited for it saw it in `squeue` or `sacct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_state: Option<String>,
}

/// `sweep-outcome.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub state: Recorded,
    /// Failed attempts over the run's life.
    pub failures: u32,
    pub attempts: Vec<Attempt>,
    /// The last lines of the log of the last failed attempt.
    #[serde(default)]
    pub log_tail: Vec<String>,
}

impl Outcome {
    pub fn read(run_dir: &Path) -> Option<Outcome> {
        let text = std::fs::read_to_string(run_dir.join(OUTCOME_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        write_atomic(
            &run_dir.join(OUTCOME_FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// A run's state as `sweep status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Pending,
    Queued,
    Running,
    Stopped,
    Failed,
    Finished,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Queued => "queued",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::Finished => "finished",
        }
    }
}

/// What the files say about one run.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub name: String,
    pub state: State,
    pub steps_done: u64,
    pub steps_total: Option<u64>,
    pub last_return: Option<f64>,
    pub job_id: Option<String>,
    pub outcome: Option<Outcome>,
}

/// Reads a run's state. A recorded `running` whose run lock is free is a run that died without
/// writing its outcome (killed, node lost): shown as `stopped`, and resumed like one. Where
/// file locks are not supported, a run recorded as running on this machine is running while
/// its process lives; one recorded on another machine stays `running` here (the Slurm
/// executor asks `squeue` whether its task still is).
pub fn inspect(dir: &SweepDir, name: &str) -> RunInfo {
    let run = dir.run_dir(name);
    let outcome = Outcome::read(&run);
    let state = match outcome.as_ref().map(|o| o.state) {
        None => State::Pending,
        Some(Recorded::Finished) => State::Finished,
        Some(Recorded::Failed) => State::Failed,
        Some(Recorded::Stopped) => State::Stopped,
        Some(Recorded::Running) => running_state(
            probe_lock(&run.join("run.lock")),
            outcome.as_ref(),
            name,
            &crate::exec::hostname(),
        ),
    };
    let (steps_done, last_return) = read_metrics_tail(&run.join("metrics.csv"));
    RunInfo {
        name: name.to_owned(),
        state,
        steps_done,
        steps_total: total_steps(&run),
        last_return,
        job_id: outcome
            .as_ref()
            .and_then(|o| o.attempts.last())
            .and_then(|a| a.job_id.clone()),
        outcome,
    }
}

/// The state of a run whose outcome says `running`, from its run lock (`lock`), its last
/// attempt, and this machine's name.
fn running_state(lock: Lock, outcome: Option<&Outcome>, name: &str, here: &str) -> State {
    if recently_started(outcome) {
        return State::Running;
    }
    match lock {
        Lock::Free => State::Stopped,
        Lock::Held => State::Running,
        Lock::Unsupported => match outcome.and_then(|o| o.attempts.last()) {
            // The binary runs as `BINARY --resume <sweep>/runs/<name>`.
            Some(a) if a.host == here => {
                if process_alive(a.pid, &[name]) {
                    State::Running
                } else {
                    State::Stopped
                }
            }
            _ => State::Running,
        },
    }
}

/// Within a few seconds of a start the binary may not have taken its lock yet.
pub fn recently_started(o: Option<&Outcome>) -> bool {
    o.and_then(|o| o.attempts.last())
        .is_some_and(|a| now().saturating_sub(a.started) < 30)
}

/// What a lock file says about its holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Nobody holds it (or there is no lock file).
    Free,
    /// A process holds it (or it cannot be checked for another reason).
    Held,
    /// The file system does not support file locks (some Lustre and NFS mounts).
    Unsupported,
}

static LOCKS_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Whether a lock attempt of this process met a file system without file locks.
pub fn locks_unsupported_seen() -> bool {
    LOCKS_UNSUPPORTED.load(Ordering::SeqCst)
}

/// Whether an error of `flock` means the file system has no file locks: `ENOLCK` (NFS
/// without a lock manager), `EOPNOTSUPP`/`ENOTSUP`, `ENOSYS` (Lustre mounted without
/// `flock`).
pub fn is_unsupported_lock_error(e: &std::io::Error) -> bool {
    use nix::libc;
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)
    ) || e.raw_os_error() == Some(libc::ENOTSUP)
        || e.kind() == std::io::ErrorKind::Unsupported
}

/// Test hook: `SWEEP_TEST_LOCK_ERROR=ENOLCK` (or `EOPNOTSUPP`, `ENOSYS`, or another errno
/// number) makes every lock attempt of `sweep` fail with that error, as on a file system
/// without file locks.
fn injected_lock_error() -> Option<std::io::Error> {
    use nix::libc;
    let v = std::env::var("SWEEP_TEST_LOCK_ERROR").ok()?;
    let errno = match v.trim() {
        "ENOLCK" => libc::ENOLCK,
        "EOPNOTSUPP" | "ENOTSUP" => libc::EOPNOTSUPP,
        "ENOSYS" => libc::ENOSYS,
        other => other.parse().ok()?,
    };
    Some(std::io::Error::from_raw_os_error(errno))
}

/// `file.try_lock()`, remembering when the file system does not support locks (see
/// [`locks_unsupported_seen`]); the test hook [`injected_lock_error`] applies here.
pub fn try_lock(file: &File) -> Result<(), TryLockError> {
    let result = match injected_lock_error() {
        Some(e) => Err(TryLockError::Error(e)),
        None => file.try_lock(),
    };
    if lock_state(&result) == Lock::Unsupported {
        LOCKS_UNSUPPORTED.store(true, Ordering::SeqCst);
    }
    result
}

/// What a lock attempt's result says (a successful attempt is released with the file).
pub fn lock_state(result: &Result<(), TryLockError>) -> Lock {
    match result {
        Ok(()) => Lock::Free,
        Err(TryLockError::WouldBlock) => Lock::Held,
        Err(TryLockError::Error(e)) if is_unsupported_lock_error(e) => Lock::Unsupported,
        Err(TryLockError::Error(_)) => Lock::Held,
    }
}

/// Whether anybody holds the lock file at `path` (taken and released at once when free).
pub fn probe_lock(path: &Path) -> Lock {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => lock_state(&try_lock(&f)),
        Err(_) => Lock::Free,
    }
}

/// Whether process `pid` lives on this machine (not a zombie) with every one of `words` in
/// its command line, so that a reused pid is not mistaken for it.
pub fn process_alive(pid: u32, words: &[&str]) -> bool {
    if pid == 0 {
        return false;
    }
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    });
    if !alive {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    words.iter().all(|w| cmdline.contains(w))
}

/// The run's total steps from its `config.toml`.
pub fn total_steps(run_dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run_dir.join("config.toml")).ok()?;
    let table: toml::Table = text.parse().ok()?;
    steps_value(table.get("steps")?)
}

/// The checkpoint's step (`checkpoint/state.json`, `state.step`).
pub fn checkpoint_step(run_dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run_dir.join("checkpoint").join("state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("state")?.get("step")?.as_u64()
}

/// The last logged step and the last return (evaluation return if any in the tail, else the
/// training episodes' return) from the end of `metrics.csv`.
pub fn read_metrics_tail(path: &Path) -> (u64, Option<f64>) {
    const TAIL: u64 = 256 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return (0, None);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (0, None);
    }
    let mut buf = String::new();
    if f.read_to_string(&mut buf).is_err() {
        return (0, None);
    }
    let mut lines: Vec<&str> = buf.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let (mut step, mut eval, mut train) = (0u64, None, None);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 4 {
            continue;
        }
        let (Ok(s), Ok(v)) = (f[0].parse::<u64>(), f[3].parse::<f64>()) else {
            continue;
        };
        step = step.max(s);
        match f[2] {
            "eval/episodic_return" => eval = Some(v),
            "charts/episodic_return" => train = Some(v),
            _ => {}
        }
    }
    (step, eval.or(train))
}

/// The last `n` lines of a file.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_tail_gives_step_and_return() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        std::fs::write(
            &p,
            "step,frames,tag,value\n10,10,charts/episodic_return,12\n20,20,eval/episodic_return,30.5\n25,25,charts/episodic_return,9\n30,30,charts/SPS,100\n31,3",
        )
        .unwrap();
        assert_eq!(read_metrics_tail(&p), (30, Some(30.5)));
        assert_eq!(read_metrics_tail(&dir.path().join("none.csv")), (0, None));
    }

    #[test]
    fn running_without_a_lock_holder_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = SweepDir::new(dir.path());
        let run = sweep.run_dir("a");
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(inspect(&sweep, "a").state, State::Pending);
        let mut o = Outcome {
            state: Recorded::Running,
            failures: 0,
            attempts: vec![Attempt {
                started: now() - 100,
                ..Attempt::default()
            }],
            log_tail: vec![],
        };
        o.write(&run).unwrap();
        assert_eq!(inspect(&sweep, "a").state, State::Stopped);
        let lock = std::fs::File::create(run.join("run.lock")).unwrap();
        lock.lock().unwrap();
        // Another open file description: the lock held above is seen.
        assert_eq!(inspect(&sweep, "a").state, State::Running);
        drop(lock);
        o.state = Recorded::Finished;
        o.write(&run).unwrap();
        assert_eq!(inspect(&sweep, "a").state, State::Finished);
    }

    /// On a file system without file locks (`flock` failing with ENOLCK, EOPNOTSUPP or
    /// ENOSYS) a lock is neither free nor held, and a run recorded as running is judged by its
    /// process: running while it lives on this machine, stopped once it is gone (not running
    /// for ever); on another machine it stays running (Slurm's queue decides there).
    #[test]
    fn without_file_locks_a_running_run_is_judged_by_its_process() {
        use nix::libc;
        for errno in [libc::ENOLCK, libc::EOPNOTSUPP, libc::ENOSYS] {
            let e = std::io::Error::from_raw_os_error(errno);
            assert!(is_unsupported_lock_error(&e), "{e}");
            assert_eq!(lock_state(&Err(TryLockError::Error(e))), Lock::Unsupported);
        }
        let eio = std::io::Error::from_raw_os_error(libc::EIO);
        assert_eq!(lock_state(&Err(TryLockError::Error(eio))), Lock::Held);
        assert_eq!(lock_state(&Err(TryLockError::WouldBlock)), Lock::Held);
        assert_eq!(lock_state(&Ok(())), Lock::Free);

        let name = "seed-7__unsupported-locks";
        /// Killed when dropped, also when an assertion fails.
        struct Child(std::process::Child);
        impl Drop for Child {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let child = Child(
            std::process::Command::new("sh")
                .args([
                    "-c",
                    "i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
                    "sh",
                    "--resume",
                    name,
                ])
                .spawn()
                .unwrap(),
        );
        // Right after exec the new command line may not be readable yet.
        let cmdline = format!("/proc/{}/cmdline", child.0.id());
        let start = std::time::Instant::now();
        while !std::fs::read(&cmdline).is_ok_and(|c| String::from_utf8_lossy(&c).contains(name)) {
            assert!(start.elapsed().as_secs() < 10, "no command line");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let here = crate::exec::hostname();
        let outcome = |host: &str, pid: u32| Outcome {
            state: Recorded::Running,
            failures: 0,
            attempts: vec![Attempt {
                started: now() - 100,
                host: host.into(),
                pid,
                ..Attempt::default()
            }],
            log_tail: vec![],
        };
        let live = outcome(&here, child.0.id());
        assert_eq!(
            running_state(Lock::Unsupported, Some(&live), name, &here),
            State::Running
        );
        // A live process of another run (a reused pid) is not this run's.
        assert_eq!(
            running_state(Lock::Unsupported, Some(&live), "seed-8", &here),
            State::Stopped
        );
        let elsewhere = outcome("another-node", child.0.id());
        assert_eq!(
            running_state(Lock::Unsupported, Some(&elsewhere), name, &here),
            State::Running
        );
        drop(child);
        assert_eq!(
            running_state(Lock::Unsupported, Some(&live), name, &here),
            State::Stopped
        );
        // With working locks the lock decides, as before.
        assert_eq!(
            running_state(Lock::Free, Some(&live), name, &here),
            State::Stopped
        );
        assert_eq!(
            running_state(Lock::Held, Some(&live), name, &here),
            State::Running
        );
    }
}
