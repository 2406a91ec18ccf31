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
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use sweep::exec::{install_signal_handlers, run_attempt, signal_pid, stop_signal};
use sweep::progress::Progress;
use sweep::setup;
use sweep::slurm;
use sweep::spec::Spec;
use sweep::state::{inspect, now, Recorded, State, SweepDir};

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

/// The sweep directory's lock, held by the `sweep run` using it; records its pid.
fn take_lock(dir: &SweepDir) -> Result<File> {
    let path = dir.lock_file();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            let mut f = &file;
            let _ = file.set_len(0);
            let _ = writeln!(f, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is in use by another `sweep run` (pid {}): one at a time per sweep",
            dir.path.display(),
            std::fs::read_to_string(&path).unwrap_or_default().trim()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the sweep directory"),
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

fn run_slurm(
    dir: &SweepDir,
    spec: &Spec,
    names: &[String],
    max_retries: u32,
    no_wait: bool,
) -> Result<ExitCode> {
    let meta = dir.meta()?;
    let at_start = failures(dir, names);
    let mut first = true;
    loop {
        let active = slurm::active(dir)?;
        let now_failures = failures(dir, names);
        let todo: Vec<String> = names
            .iter()
            .filter(|n| !active.contains_key(*n))
            .filter(|n| match inspect(dir, n).state {
                State::Finished | State::Running => false,
                State::Failed => now_failures[*n] - at_start[*n] <= max_retries,
                _ => first,
            })
            .cloned()
            .collect();
        if !todo.is_empty() {
            let job = slurm::submit(dir, spec, &meta.sweep_exe, &todo)?;
            eprintln!(
                "sweep: submitted job array {job} ({} task(s){}); binary {}",
                todo.len(),
                match spec.slurm.max_concurrent {
                    0 => String::new(),
                    m => format!(", at most {m} at once"),
                },
                meta.binary.display()
            );
        } else if first {
            eprintln!("sweep: nothing to submit ({} active task(s))", active.len());
        }
        first = false;
        if no_wait {
            eprintln!(
                "sweep: not waiting; `sweep status {}` shows the runs",
                dir.path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let mut progress = Progress::new(dir, names);
        loop {
            let active = slurm::active(dir)?;
            if active.is_empty() {
                break;
            }
            if stop_signal().is_some() {
                progress.finish();
                eprintln!(
                    "sweep: stopped waiting; the Slurm jobs go on (`sweep status {0}`, `sweep cancel {0}`)",
                    dir.path.display()
                );
                return Ok(ExitCode::from(130));
            }
            let queued: BTreeSet<String> = active
                .iter()
                .filter(|(_, (_, st))| st == "PENDING")
                .map(|(n, _)| n.clone())
                .collect();
            progress.update(Some(&queued));
            std::thread::sleep(Duration::from_millis(500));
        }
        progress.finish();
        let retry = names.iter().any(|n| {
            inspect(dir, n).state == State::Failed
                && failures(dir, std::slice::from_ref(n))[n] - at_start[n] <= max_retries
        });
        if !retry {
            break;
        }
    }
    finish_message(dir, names)
}

fn status(path: &Path) -> Result<ExitCode> {
    let (dir, spec) = SweepDir::open(path)?;
    let names: Vec<String> = spec.points().into_iter().map(|p| p.name).collect();
    let active = if !slurm::submissions(&dir).is_empty() && setup::on_path("squeue") {
        slurm::active(&dir).unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    let width = names.iter().map(|n| n.len()).max().unwrap_or(3).max(3);
    let mut out = format!(
        "{:<width$}  {:<8}  {:>21}  {:>11}  {:<12}  attempts\n",
        "run", "state", "steps", "last return", "job id"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &names {
        let mut info = inspect(&dir, n);
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
    // A closed pipe (`sweep status DIR | head`) is not an error worth a message.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn cancel(path: &Path) -> Result<ExitCode> {
    let (dir, _spec) = SweepDir::open(path)?;
    let mut did = false;
    // A local `sweep run` holds the lock: ask it to stop its runs (they checkpoint).
    let lock_path = dir.lock_file();
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
    {
        if f.try_lock().is_err() {
            let pid: u32 = std::fs::read_to_string(&lock_path)
                .unwrap_or_default()
                .trim()
                .parse()
                .map_err(|_| anyhow!("{} holds no pid", lock_path.display()))?;
            signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
            eprintln!("sweep: asked `sweep run` (pid {pid}) to stop its runs; waiting for their checkpoints");
            let start = now();
            while f.try_lock().is_err() {
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
        let jobs = slurm::cancel(&dir)?;
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
