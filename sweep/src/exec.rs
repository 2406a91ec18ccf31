//! One attempt of one run: start the training binary on the run directory, log its output,
//! forward stop signals to it, and write the outcome into the run directory. The local
//! executor calls this from its worker threads; a Slurm array task calls it through the hidden
//! `sweep task` command.
//!
//! Every attempt starts the binary with `--resume RUN_DIR`: the run directory already holds the
//! resolved `config.toml` (written when the sweep was set up), so a run with a checkpoint
//! continues from it and a run without one starts from step 0 with that configuration.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use crate::state::{checkpoint_step, now, tail_lines, Attempt, Outcome, Recorded, SweepDir};

/// The last stop signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM (once per process) so they can be forwarded to the runs, which
/// then checkpoint and exit, instead of ending this process and orphaning them.
pub fn install_signal_handlers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
            let _ = unsafe { sigaction(signal, &action) };
        }
    });
}

/// The stop signal received, if any.
pub fn stop_signal() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Signal::try_from(s).ok(),
    }
}

/// Sends a signal to a process (errors ignored: it may have just exited).
pub fn signal_pid(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs one attempt of run `name` to its end and records it; `on_spawn` gets the child's pid.
/// Returns what the attempt recorded.
pub fn run_attempt(
    dir: &SweepDir,
    name: &str,
    binary: &Path,
    job_id: Option<String>,
    on_spawn: impl FnOnce(u32),
) -> Result<Recorded> {
    let run = dir.run_dir(name);
    if !run.join("config.toml").is_file() {
        bail!(
            "{} has no config.toml: run `sweep run` on the sweep file to set it up",
            run.display()
        );
    }
    let mut outcome = Outcome::read(&run).unwrap_or(Outcome {
        state: Recorded::Running,
        failures: 0,
        attempts: Vec::new(),
        log_tail: Vec::new(),
    });
    let resumed_from = checkpoint_step(&run);
    let log_path = dir.log_file(name);
    std::fs::create_dir_all(log_path.parent().unwrap_or(Path::new(".")))?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let host = hostname();
    writeln!(
        log,
        "=== sweep: attempt {} of {name} on {host}{}: {} ===",
        outcome.attempts.len() + 1,
        job_id
            .as_ref()
            .map(|j| format!(", Slurm job {j}"))
            .unwrap_or_default(),
        match resumed_from {
            Some(s) => format!("resuming from the checkpoint at step {s}"),
            None => "fresh start (no checkpoint)".into(),
        }
    )?;
    let mut cmd = Command::new(binary);
    cmd.arg("--resume")
        .arg(&run)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    // If this process dies without forwarding a stop, the run still gets SIGTERM (and
    // checkpoints) instead of living on as an orphan.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let pid = child.id();
    outcome.state = Recorded::Running;
    outcome.attempts.push(Attempt {
        started: now(),
        ended: None,
        host,
        pid,
        job_id,
        resumed_from,
        exit: None,
        signal: None,
        slurm_state: None,
    });
    outcome.write(&run)?;
    on_spawn(pid);
    let mut forwarded = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let (Some(sig), false) = (stop_signal(), forwarded) {
            signal_pid(pid, sig);
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (recorded, exit) = match (status.code(), status.signal()) {
        (Some(0), _) => (Recorded::Finished, "exit 0".to_string()),
        (Some(c @ (130 | 143)), _) => (Recorded::Stopped, format!("exit {c}")),
        (Some(c), _) => (Recorded::Failed, format!("exit {c}")),
        (None, Some(s)) if s == Signal::SIGINT as i32 || s == Signal::SIGTERM as i32 => {
            (Recorded::Stopped, format!("signal {s}"))
        }
        (None, Some(s)) => (Recorded::Failed, format!("signal {s}")),
        (None, None) => (Recorded::Failed, "unknown exit".into()),
    };
    if recorded == Recorded::Failed {
        outcome.failures += 1;
        outcome.log_tail = tail_lines(&log_path, 20);
    }
    let _ = writeln!(log, "=== sweep: attempt ended: {exit} ({recorded:?}) ===");
    if let Some(a) = outcome.attempts.last_mut() {
        a.ended = Some(now());
        a.exit = Some(exit);
        a.signal = stop_signal().map(|s| s.as_str().to_owned());
    }
    outcome.state = recorded;
    outcome.write(&run)?;
    Ok(recorded)
}
