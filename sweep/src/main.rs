//! `sweep`: run a grid of training runs locally or on Slurm, see where they stand, cancel them.
//!
//! ```text
//! sweep run experiments/sweeps/cartpole-methods.toml            # local, --jobs from the cores
//! sweep run SWEEP.toml --executor slurm                         # job arrays; waits for them
//! sweep status results/sweeps/cartpole-methods
//! sweep cancel results/sweeps/cartpole-methods
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use sweep::exec::{install_signal_handlers, run_attempt, signal_pid, stop_signal};
use sweep::progress::Progress;
use sweep::setup;
use sweep::slurm;
use sweep::spec::Spec;
use sweep::state::{checkpoint_step, inspect, now, Recorded, RunInfo, State, SweepDir};

/// Runs a grid of fire-rl training runs, locally or as Slurm job arrays; run it again to
/// continue: finished runs are skipped, stopped ones resume, failed ones are retried.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Executor {
    /// Processes on this machine.
    Local,
    /// `sbatch` job arrays.
    Slurm,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Sets up the sweep directory and runs what is not done.
    Run {
        /// The sweep file (TOML: name, binary, config, [set], [grid], [slurm]).
        spec: PathBuf,
        /// Where the runs go.
        #[arg(long, value_enum, default_value = "local")]
        executor: Executor,
        /// Runs at once (local) [default: the cores divided by each run's threads].
        #[arg(long)]
        jobs: Option<usize>,
        /// The sweep directory [default: results/sweeps/<name>].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Times a failed run is started again in this invocation.
        #[arg(long, default_value_t = 2)]
        max_retries: u32,
        /// Slurm: submit and return instead of waiting for the tasks.
        #[arg(long)]
        no_wait: bool,
    },
    /// Prints each run's state, steps done, last return and job id.
    Status {
        /// The sweep directory.
        dir: PathBuf,
    },
    /// Stops what is running or queued (runs checkpoint first); `sweep run` continues them.
    Cancel {
        /// The sweep directory.
        dir: PathBuf,
    },
    /// One Slurm array task (used by the job scripts).
    #[command(hide = true)]
    Task {
        dir: PathBuf,
        #[arg(long)]
        list: PathBuf,
        #[arg(long)]
        index: usize,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_owned();
            eprintln!("sweep: error: {first} (see sweep --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Cmd::Run {
            spec,
            executor,
            jobs,
            dir,
            max_retries,
            no_wait,
        } => run(&spec, executor, jobs, dir, max_retries, no_wait),
        Cmd::Status { dir } => status(&dir),
        Cmd::Cancel { dir } => cancel(&dir),
        Cmd::Task { dir, list, index } => task(&dir, &list, index),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sweep: error: {}", sweep::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The sweep directory's lock, held by the `sweep run` using it; records its pid. Where the
/// file system has no file locks this says so in one line and goes on unlocked (the pid is
/// still recorded, for `sweep cancel`).
fn take_lock(dir: &SweepDir) -> Result<File> {
    let path = dir.lock_file();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let record_pid = || {
        let mut f = &file;
        let _ = file.set_len(0);
        let _ = writeln!(f, "{}", std::process::id());
    };
    match sweep::state::try_lock(&file) {
        Ok(()) => {
            record_pid();
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is in use by another `sweep run` (pid {}): one at a time per sweep",
            dir.path.display(),
            std::fs::read_to_string(&path).unwrap_or_default().trim()
        ),
        Err(std::fs::TryLockError::Error(e)) if sweep::state::is_unsupported_lock_error(&e) => {
            record_pid();
            eprintln!("{}", locks_note(dir));
            Ok(file)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the sweep directory"),
    }
}

/// The line that says a sweep directory's file system has no file locks.
fn locks_note(dir: &SweepDir) -> String {
    format!(
        "sweep: file locks are not supported on {}: a second sweep run on this directory would not be refused; run states are read from the outcome files",
        dir.path.display()
    )
}

/// Where file locks are not supported, a run recorded as running under Slurm whose task is no
/// longer queued or running (and did not just start) died without writing its outcome: it
/// is stopped, as a free run lock would have said.
fn settle(info: &mut RunInfo, active: &BTreeMap<String, (String, String)>) {
    if info.state == State::Running
        && sweep::state::locks_unsupported_seen()
        && info.job_id.is_some()
        && !active.contains_key(&info.name)
        && !sweep::state::recently_started(info.outcome.as_ref())
    {
        info.state = State::Stopped;
    }
}

fn run(
    spec_path: &Path,
    executor: Executor,
    jobs: Option<usize>,
    dir: Option<PathBuf>,
    max_retries: u32,
    no_wait: bool,
) -> Result<ExitCode> {
    let spec_text = std::fs::read_to_string(spec_path)
        .map_err(|e| anyhow!("cannot read {}: {e}", spec_path.display()))?;
    let spec = Spec::parse(&spec_text)
        .with_context(|| format!("{} is not a valid sweep file", spec_path.display()))?;
    let binary = setup::find_binary(&spec.binary)?;
    if executor == Executor::Slurm && !setup::on_path("sbatch") {
        bail!("--executor slurm needs `sbatch` on the PATH, and it is not there (is this a Slurm login node? for a local test cluster: eval \"$(scripts/slurm-cluster.sh start)\")");
    }
    if executor == Executor::Slurm {
        setup::slurm_reachable()?;
    }
    if jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let base = setup::base_config_text(&spec)?;
    let dir =
        SweepDir::new(&dir.unwrap_or_else(|| PathBuf::from("results/sweeps").join(&spec.name)));
    setup::ensure_writable(&dir.path)?;
    setup::check_unchanged(&dir, &spec, base.as_deref())?;
    let _lock = take_lock(&dir)?;
    let known = setup::known_keys(&binary)?;
    setup::check_keys(&spec, &known)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let fresh = setup::prepare_runs(&dir, &spec, &binary, cores)?;
    setup::record(&dir, &spec_text, base.as_deref(), &binary)?;
    let names: Vec<String> = spec.points().into_iter().map(|p| p.name).collect();
    if fresh > 0 {
        eprintln!(
            "sweep: {} set up ({} of {} runs new); binary {}",
            dir.path.display(),
            fresh,
            names.len(),
            binary.display()
        );
    }
    install_signal_handlers();
    match executor {
        Executor::Local => run_local(&dir, &names, &binary, jobs, cores, max_retries),
        Executor::Slurm => run_slurm(&dir, &spec, &names, max_retries, no_wait),
    }
}

fn run_local(
    dir: &SweepDir,
    names: &[String],
    binary: &Path,
    jobs: Option<usize>,
    cores: usize,
    max_retries: u32,
) -> Result<ExitCode> {
    let mut todo = Vec::new();
    let mut skipped_running = 0;
    for n in names {
        match inspect(dir, n).state {
            State::Finished => {}
            State::Running => skipped_running += 1,
            _ => todo.push(n.clone()),
        }
    }
    if skipped_running > 0 {
        eprintln!(
            "sweep: {skipped_running} run(s) are running elsewhere (a Slurm job?): left alone"
        );
    }
    let jobs = jobs.unwrap_or_else(|| {
        let threads = names
            .iter()
            .filter_map(|n| std::fs::read_to_string(dir.run_dir(n).join("config.toml")).ok())
            .map(|t| setup::threads_per_run(&t, cores))
            .max()
            .unwrap_or(1);
        (cores / threads).max(1)
    });
    let finished = names.len() - todo.len() - skipped_running;
    eprintln!(
        "sweep: {} runs: {finished} finished, {} to run, {jobs} at once; Ctrl-C stops them with a checkpoint",
        names.len(),
        todo.len()
    );
    let sum = sweep::local::run_local(dir, names, todo, binary, jobs, max_retries)?;
    if let Some(sig) = sum.signal {
        eprintln!(
            "sweep: stopped ({} run(s) checkpointed); `sweep run` again continues them",
            sum.stopped
        );
        return Ok(ExitCode::from(128 + sig as u8));
    }
    finish_message(dir, names)
}

fn finish_message(dir: &SweepDir, names: &[String]) -> Result<ExitCode> {
    let infos: Vec<_> = names.iter().map(|n| inspect(dir, n)).collect();
    let failed: Vec<&str> = infos
        .iter()
        .filter(|i| i.state == State::Failed)
        .map(|i| i.name.as_str())
        .collect();
    let done = infos.iter().filter(|i| i.state == State::Finished).count();
    if !failed.is_empty() {
        eprintln!(
            "sweep: {} run(s) failed: {} (log tails in their sweep-outcome.json, logs in {}/logs)",
            failed.len(),
            failed.join(", "),
            dir.path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "sweep: {done}/{} runs finished; report with `report {}`",
        names.len(),
        dir.path.display()
    );
    Ok(if done == names.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn failures(dir: &SweepDir, names: &[String]) -> BTreeMap<String, u32> {
    names
        .iter()
        .map(|n| {
            let f = inspect(dir, n).outcome.map(|o| o.failures).unwrap_or(0);
            (n.clone(), f)
        })
        .collect()
}

/// Names for a message: the first few, then how many more.
fn some_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&String> = names.into_iter().collect();
    let mut text = names
        .iter()
        .take(5)
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// Records the Slurm state its task ended in on a run's last attempt (once).
fn record_slurm_state(dir: &SweepDir, info: &RunInfo, ended: &BTreeMap<String, String>) {
    let (Some(task), Some(outcome)) = (&info.job_id, &info.outcome) else {
        return;
    };
    let Some(state) = ended.get(task) else { return };
    if outcome.state == Recorded::Running
        || slurm::is_active_state(state)
        || outcome
            .attempts
            .last()
            .is_none_or(|a| a.slurm_state.is_some())
    {
        return;
    }
    let mut outcome = outcome.clone();
    if let Some(a) = outcome.attempts.last_mut() {
        a.slurm_state = Some(state.clone());
    }
    let _ = outcome.write(&dir.run_dir(&info.name));
}

fn run_slurm(
    dir: &SweepDir,
    spec: &Spec,
    names: &[String],
    max_retries: u32,
    no_wait: bool,
) -> Result<ExitCode> {
    let meta = dir.meta()?;
    let timing = slurm::Timing::from_env()?;
    let limit_s = slurm::time_seconds(&spec.slurm.time);
    let max_resubmits = spec.slurm.max_resubmits;
    let mut resubmissions = slurm::Resubmissions::new(max_resubmits);
    // Submissions per run in this `sweep run`: bounded, should a task fail before it can
    // record anything.
    let mut submitted: BTreeMap<String, u32> = BTreeMap::new();
    let most = 1 + max_retries + max_resubmits;
    // The last state Slurm gave each task this `sweep run` saw.
    let mut ended: BTreeMap<String, String> = BTreeMap::new();
    let mut gave_up: BTreeSet<String> = BTreeSet::new();
    let mut array_tasks: Option<usize> = None;
    let at_start = failures(dir, names);
    let mut first = true;
    loop {
        let poll = slurm::poll(dir, &timing)?;
        ended.extend(poll.states.clone());
        let mut infos: Vec<RunInfo> = names
            .iter()
            .filter(|n| !poll.active.contains_key(*n))
            .map(|n| inspect(dir, n))
            .collect();
        for info in &mut infos {
            settle(info, &poll.active);
        }
        if !first {
            // What squeue has forgotten (MinJobAge), sacct may know.
            let unknown: Vec<String> = infos
                .iter()
                .filter(|i| i.state == State::Stopped)
                .filter_map(|i| i.job_id.clone())
                .filter(|j| !ended.contains_key(j))
                .collect();
            ended.extend(slurm::sacct_states(&unknown));
        }
        let mut todo = Vec::new();
        let mut resubmitted = Vec::new();
        for info in &infos {
            record_slurm_state(dir, info, &ended);
            let n = &info.name;
            let go = match info.state {
                State::Finished | State::Running | State::Queued => false,
                State::Failed => {
                    info.outcome
                        .as_ref()
                        .map_or(0, |o| o.failures)
                        .saturating_sub(at_start[n])
                        <= max_retries
                }
                State::Stopped if first => true,
                State::Stopped => {
                    let task = info.job_id.clone().unwrap_or_default();
                    let timed_out = slurm::stopped_by_time_limit(
                        info.state,
                        info.outcome.as_ref(),
                        checkpoint_step(&dir.run_dir(n)).is_some(),
                        ended.get(&task).map(String::as_str),
                        limit_s,
                    );
                    match resubmissions.decide(n, &task, timed_out) {
                        slurm::Resubmit::Again(_) => {
                            resubmitted.push(n.clone());
                            true
                        }
                        slurm::Resubmit::GaveUp => {
                            gave_up.insert(n.clone());
                            false
                        }
                        slurm::Resubmit::No => false,
                    }
                }
                State::Pending => first,
            };
            if go && submitted.get(n).copied().unwrap_or(0) < most {
                todo.push(n.clone());
            }
        }
        if todo.is_empty() && !first && poll.active.is_empty() {
            break;
        }
        if !resubmitted.is_empty() {
            eprintln!(
                "sweep: {} run(s) stopped by the Slurm time limit ({}) with a checkpoint, resubmitted to resume (each at most {max_resubmits} times): {}",
                resubmitted.len(),
                if spec.slurm.time.is_empty() {
                    "the partition's".to_string()
                } else {
                    format!("time = {}", spec.slurm.time)
                },
                some_names(&resubmitted)
            );
        }
        if !todo.is_empty() {
            let per_array = match array_tasks {
                Some(n) => n,
                None => {
                    let (n, note) = slurm::cluster_array_tasks(&timing)?;
                    if let Some(note) = note {
                        eprintln!("sweep: {note}");
                    }
                    *array_tasks.insert(n)
                }
            };
            let arrays: Vec<&[String]> = todo.chunks(per_array).collect();
            let chained = spec.slurm.max_concurrent > 0 && arrays.len() > 1;
            if arrays.len() > 1 {
                eprintln!(
                    "sweep: {} runs to submit in {} job arrays of at most {per_array} tasks (the cluster's MaxArraySize - 1){}",
                    todo.len(),
                    arrays.len(),
                    if chained {
                        ", each after the one before, so that max_concurrent holds for all"
                    } else {
                        ""
                    }
                );
            }
            let mut previous: Option<String> = None;
            for runs in arrays {
                let after = if chained { previous.as_deref() } else { None };
                let job = slurm::submit(dir, spec, &meta.sweep_exe, runs, after, &timing)?;
                eprintln!(
                    "sweep: submitted job array {job} ({} task(s){}{}); binary {}",
                    runs.len(),
                    match spec.slurm.max_concurrent {
                        0 => String::new(),
                        m => format!(", at most {m} at once"),
                    },
                    after
                        .map(|a| format!(", after array {a}"))
                        .unwrap_or_default(),
                    meta.binary.display()
                );
                for n in runs {
                    *submitted.entry(n.clone()).or_default() += 1;
                }
                previous = Some(job);
            }
        } else if first {
            eprintln!(
                "sweep: nothing to submit ({} active task(s))",
                poll.active.len()
            );
        }
        first = false;
        if no_wait {
            eprintln!(
                "sweep: not waiting; `sweep status {}` shows the runs",
                dir.path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(code) = wait_for_tasks(dir, names, &timing, &mut ended)? {
            return Ok(code);
        }
    }
    if !gave_up.is_empty() {
        eprintln!(
            "sweep: {} run(s) reached the time limit again after {max_resubmits} resubmission(s) and stay stopped: {} (raise [slurm] time or max_resubmits; `sweep run` again resumes them)",
            gave_up.len(),
            some_names(&gave_up)
        );
    }
    finish_message(dir, names)
}

/// Waits with the progress bar until none of the sweep's tasks is queued or running, polling
/// `squeue` with a backoff (sooner again once a run has ended); records the states it sees
/// in `ended`. `Some(exit code)` when a stop signal ended the waiting.
fn wait_for_tasks(
    dir: &SweepDir,
    names: &[String],
    timing: &slurm::Timing,
    ended: &mut BTreeMap<String, String>,
) -> Result<Option<ExitCode>> {
    let mut progress = Progress::new(dir, names);
    let mut backoff = slurm::Backoff::new(timing);
    let mut reset = true;
    loop {
        let poll = slurm::poll(dir, timing)?;
        ended.extend(poll.states);
        if poll.active.is_empty() {
            break;
        }
        let queued: BTreeSet<String> = poll
            .active
            .iter()
            .filter(|(_, (_, st))| st == "PENDING")
            .map(|(n, _)| n.clone())
            .collect();
        let wait = backoff.next(reset);
        reset = false;
        let since = Instant::now();
        progress.update(Some(&queued));
        let ended_runs = progress.ended();
        loop {
            if stop_signal().is_some() {
                progress.finish();
                eprintln!(
                    "sweep: stopped waiting; the Slurm jobs go on (`sweep status {0}`, `sweep cancel {0}`)",
                    dir.path.display()
                );
                return Ok(Some(ExitCode::from(130)));
            }
            let elapsed = since.elapsed();
            if elapsed >= wait {
                break;
            }
            // A run ended (its outcome file says so): see its task leave the queue soon.
            if elapsed >= backoff.min() && progress.ended() != ended_runs {
                reset = true;
                break;
            }
            progress.update(Some(&queued));
            std::thread::sleep((wait - elapsed).min(Duration::from_millis(250)));
        }
    }
    progress.finish();
    Ok(None)
}

fn status(path: &Path) -> Result<ExitCode> {
    let (dir, spec) = SweepDir::open(path)?;
    let names: Vec<String> = spec.points().into_iter().map(|p| p.name).collect();
    // `None`: Slurm was not asked, or did not answer.
    let asked = if !slurm::submissions(&dir).is_empty() && setup::on_path("squeue") {
        slurm::Timing::from_env()
            .and_then(|t| slurm::active(&dir, &t))
            .ok()
    } else {
        None
    };
    let active = asked.clone().unwrap_or_default();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(3).max(3);
    let mut out = format!(
        "{:<width$}  {:<8}  {:>21}  {:>11}  {:<12}  attempts\n",
        "run", "state", "steps", "last return", "job id"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &names {
        let mut info = inspect(&dir, n);
        if asked.is_some() {
            settle(&mut info, &active);
        }
        if let Some((id, st)) = active.get(n) {
            info.job_id = Some(id.clone());
            if st == "PENDING" {
                info.state = State::Queued;
            } else if info.state != State::Finished {
                info.state = State::Running;
            }
        }
        *counts.entry(info.state.name()).or_default() += 1;
        let steps = match info.steps_total {
            Some(t) => format!("{}/{}", info.steps_done, t),
            None => info.steps_done.to_string(),
        };
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>21}  {:>11}  {:<12}  {}\n",
            n,
            info.state.name(),
            steps,
            info.last_return
                .map(|r| format!("{r:.1}"))
                .unwrap_or_else(|| "-".into()),
            info.job_id.clone().unwrap_or_else(|| "-".into()),
            info.outcome.as_ref().map(|o| o.attempts.len()).unwrap_or(0),
        ));
    }
    let summary: Vec<String> = counts.iter().map(|(s, c)| format!("{c} {s}")).collect();
    out.push_str(&format!("{} runs: {}\n", names.len(), summary.join(", ")));
    if sweep::state::locks_unsupported_seen() {
        eprintln!("{}", locks_note(&dir));
    }
    // A closed pipe (`sweep status DIR | head`) is not an error worth a message.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn cancel(path: &Path) -> Result<ExitCode> {
    let (dir, _spec) = SweepDir::open(path)?;
    let mut did = false;
    // A local `sweep run` holds the lock: ask it to stop its runs (they checkpoint). Without
    // file locks, the pid it recorded names it while that process lives.
    let lock_path = dir.lock_file();
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
    {
        let lock = sweep::state::lock_state(&sweep::state::try_lock(&f));
        let recorded: Option<u32> = std::fs::read_to_string(&lock_path)
            .unwrap_or_default()
            .trim()
            .parse()
            .ok();
        let holder = match lock {
            sweep::state::Lock::Free => None,
            sweep::state::Lock::Held => {
                Some(recorded.ok_or_else(|| anyhow!("{} holds no pid", lock_path.display()))?)
            }
            sweep::state::Lock::Unsupported => {
                eprintln!("{}", locks_note(&dir));
                recorded.filter(|&p| {
                    p != std::process::id() && sweep::state::process_alive(p, &["sweep", "run"])
                })
            }
        };
        if let Some(pid) = holder {
            signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
            eprintln!("sweep: asked `sweep run` (pid {pid}) to stop its runs; waiting for their checkpoints");
            let start = now();
            let running = || match lock {
                sweep::state::Lock::Unsupported => {
                    sweep::state::process_alive(pid, &["sweep", "run"])
                }
                _ => sweep::state::try_lock(&f).is_err(),
            };
            while running() {
                if now() - start > 300 {
                    bail!("pid {pid} did not stop within 300 s");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            did = true;
        }
    }
    if !slurm::submissions(&dir).is_empty() {
        if !setup::on_path("scancel") {
            bail!("this sweep has Slurm jobs but `scancel` is not on the PATH");
        }
        let jobs = slurm::cancel(&dir, &slurm::Timing::from_env()?)?;
        if !jobs.is_empty() {
            eprintln!(
                "sweep: cancelled Slurm job(s) {} (their runs checkpoint on SIGTERM)",
                jobs.join(", ")
            );
            did = true;
        }
    }
    if !did {
        eprintln!("sweep: nothing running or queued in {}", dir.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn task(path: &Path, list: &Path, index: usize) -> Result<ExitCode> {
    install_signal_handlers();
    let (dir, _spec) = SweepDir::open(path)?;
    let meta = dir.meta()?;
    let names: Vec<String> = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read {}", list.display()))?
        .lines()
        .map(str::to_owned)
        .collect();
    let name = names
        .get(index)
        .ok_or_else(|| anyhow!("{} has no run at index {index}", list.display()))?;
    if inspect(&dir, name).state == State::Finished {
        eprintln!("sweep: {name} is already finished");
        return Ok(ExitCode::SUCCESS);
    }
    let job_id = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(j), Ok(t)) => Some(format!("{j}_{t}")),
        _ => std::env::var("SLURM_JOB_ID").ok(),
    };
    let recorded = run_attempt(&dir, name, &meta.binary, job_id, |_| {})?;
    eprintln!("sweep: {name}: {recorded:?}");
    Ok(match recorded {
        Recorded::Finished => ExitCode::SUCCESS,
        Recorded::Stopped => ExitCode::from(143),
        _ => ExitCode::FAILURE,
    })
}
