//! Shared by the integration tests: the real `sweep` and `classic` binaries, and tiny sweeps.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const SWEEP: &str = env!("CARGO_BIN_EXE_sweep");

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Makes sure the real `classic` binary sits next to `sweep` (where `sweep` looks for it):
/// `cargo test --workspace` builds it; `cargo test -p sweep` alone does not, so build it.
pub fn ensure_classic() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let classic = Path::new(SWEEP).with_file_name("classic");
        if classic.is_file() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "experiments",
                "--bin",
                "classic",
            ])
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building classic failed");
        assert!(
            classic.is_file(),
            "{} missing after the build",
            classic.display()
        );
    });
}

/// `sweep ARGS` in `cwd`, with extra environment variables.
pub fn sweep(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(SWEEP);
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("sweep runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a sweep file of `classic` runs: `set` and `grid` are TOML lines.
pub fn write_spec(dir: &Path, name: &str, set: &str, grid: &str, slurm: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nbinary = \"classic\"\n[set]\n{set}\n[grid]\n{grid}\n[slurm]\n{slurm}\n"
        ),
    )
    .unwrap();
    path
}

/// Waits until `f` holds (polling every 100 ms) or panics after `secs`.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sweep-outcome.json` of a run, parsed.
pub fn outcome(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("sweep-outcome.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", run.display()));
    serde_json::from_str(&text).unwrap()
}

/// The checkpoint's step.
pub fn checkpoint_step(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("checkpoint/state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["state"]["step"].as_u64()
}

/// Steps of the `charts/episodic_return` rows of metrics.csv, in file order.
pub fn episode_steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("charts/episodic_return"))
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect()
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
