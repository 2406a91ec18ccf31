//! Everything `sweep run` checks and writes before any run starts: the binary, the sweep
//! directory, the spec against the copy already there, the keys and values (through the
//! binary's own `--help-keys` and `--dry-run`), and each run's resolved `config.toml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

use crate::spec::{Point, Spec};
use crate::state::{write_atomic, Meta, SweepDir};

/// Where the training binary `name` is: in `$SWEEP_BIN_DIR` when that is set, else next to
/// this executable (`target/release/`), else in `target/release/` under the current
/// directory. Errors when it is not built.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("SWEEP_BIN_DIR") {
        tried.push(PathBuf::from(dir).join(name));
    } else if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
    {
        tried.push(dir.join(name));
    }
    if std::env::var_os("SWEEP_BIN_DIR").is_none() {
        tried.push(PathBuf::from("target/release").join(name));
    }
    for p in &tried {
        if p.is_file() {
            return p
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", p.display()));
        }
    }
    bail!(
        "binary `{name}` is not built (looked for {}): run `cargo build --release --bin {name}`",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    )
}

/// Whether a program is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Errors unless the Slurm controller answers (`sinfo`), with sinfo's first message.
pub fn slurm_reachable() -> Result<()> {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%P"])
        .output()
        .map_err(|e| anyhow!("cannot run sinfo: {e}"))?;
    if !out.status.success() {
        bail!(
            "the Slurm controller does not answer (sinfo: {}); is SLURM_CONF set?",
            first_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(())
}

/// Creates the sweep directory (and parents) and checks it can be written.
pub fn ensure_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("cannot create the sweep directory {}: {e}", dir.display()))?;
    let probe = dir.join(format!(".write-test.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| anyhow!("the sweep directory {} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The base configuration's text, if the spec names one.
pub fn base_config_text(spec: &Spec) -> Result<Option<String>> {
    match &spec.config {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p)
            .map(Some)
            .map_err(|e| anyhow!("cannot read the base config {}: {e}", p.display())),
    }
}

/// Errors if the sweep directory already holds a different spec or base config.
pub fn check_unchanged(dir: &SweepDir, spec: &Spec, base: Option<&str>) -> Result<()> {
    if dir.spec_file().is_file() {
        let old = Spec::read(&dir.spec_file())?;
        let changes = old.changes(spec);
        if !changes.is_empty() {
            bail!(
                "the sweep file differs from the one {} was started with ({}): use another --dir, or restore the file",
                dir.path.display(),
                changes.join("; ")
            );
        }
        let old_base = std::fs::read_to_string(dir.base_config_file()).ok();
        if old_base.as_deref() != base {
            bail!(
                "the base config {} changed since {} was started (its copy: {}): use another --dir, or restore the file",
                spec.config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none)".into()),
                dir.path.display(),
                dir.base_config_file().display()
            );
        }
    }
    Ok(())
}

/// The configuration keys a binary knows, from its `--help-keys` listing.
pub fn known_keys(binary: &Path) -> Result<BTreeSet<String>> {
    let out = Command::new(binary)
        .arg("--help-keys")
        .output()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} --help-keys failed: {}",
            binary.display(),
            first_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let (body, unset) = match line.strip_prefix("# ") {
            Some(rest) if rest.ends_with("= (unset)") => (rest, true),
            Some(_) => continue,
            None => (line, false),
        };
        if let Some((key, _)) = body.split_once(" = ") {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && (unset || !line.starts_with('#'))
            {
                keys.insert(key.to_owned());
            }
        }
    }
    if keys.is_empty() {
        bail!("{} --help-keys listed no keys", binary.display());
    }
    Ok(keys)
}

/// Errors on the first `[set]`, `[grid]`, `[[when]]` or `[variants]` key the binary does not
/// know.
pub fn check_keys(spec: &Spec, known: &BTreeSet<String>) -> Result<()> {
    let variants: Vec<(String, &toml::Table)> = spec
        .variants
        .iter()
        .filter_map(|(n, v)| Some((format!("variants.{n}"), v.as_table()?)))
        .collect();
    let sections = [
        ("set".to_string(), &spec.set),
        ("grid".to_string(), &spec.grid),
    ]
    .into_iter()
    .chain(spec.when.iter().map(|w| ("[when] set".to_string(), &w.set)))
    .chain(variants);
    for (section, table) in sections {
        for key in table.keys() {
            if !known.contains(key) {
                bail!(
                    "unknown key `{key}` in [{section}]: `{}` has no such configuration key (see `{} --help-keys`)",
                    spec.binary,
                    spec.binary
                );
            }
        }
    }
    Ok(())
}

/// The resolved configuration of one point, from the binary's `--dry-run` (which checks every
/// value the way a real start would).
pub fn dry_run(binary: &Path, spec: &Spec, point: &Point) -> Result<String> {
    let mut cmd = Command::new(binary);
    if let Some(c) = &spec.config {
        cmd.arg("--config").arg(c);
    }
    for a in spec.assignments(point) {
        cmd.arg("--set").arg(a);
    }
    let out = cmd
        .arg("--dry-run")
        .output()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "run {}: {}",
            point.name,
            first_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    String::from_utf8(out.stdout)
        .map_err(|_| anyhow!("run {}: dry run printed non-UTF-8", point.name))
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_owned()
}

/// Dry-runs every point whose run directory has no `config.toml` yet (`threads` at once), and
/// only when all succeed writes them. Returns how many were set up.
pub fn prepare_runs(dir: &SweepDir, spec: &Spec, binary: &Path, threads: usize) -> Result<usize> {
    let todo: Vec<&Point> = Vec::new();
    let points = spec.points();
    let mut todo = todo;
    todo.extend(
        points
            .iter()
            .filter(|p| !dir.run_dir(&p.name).join("config.toml").is_file()),
    );
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, Result<String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(todo.len().max(1)) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(p) = todo.get(i) else { break };
                let r = dry_run(binary, spec, p);
                let failed = r.is_err();
                results.lock().unwrap().push((i, r));
                if failed {
                    *next.lock().unwrap() = todo.len(); // stop the others early
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut configs = Vec::new();
    for (i, r) in results {
        configs.push((todo[i], r?));
    }
    for (p, text) in &configs {
        let run = dir.run_dir(&p.name);
        std::fs::create_dir_all(&run)
            .with_context(|| format!("cannot create {}", run.display()))?;
        write_atomic(&run.join("config.toml"), text.as_bytes())?;
    }
    Ok(configs.len())
}

/// Copies the spec and base config into the sweep directory (first start) and records the
/// binary's and this executable's paths.
pub fn record(dir: &SweepDir, spec_text: &str, base: Option<&str>, binary: &Path) -> Result<()> {
    if !dir.spec_file().is_file() {
        write_atomic(&dir.spec_file(), spec_text.as_bytes())?;
        if let Some(b) = base {
            write_atomic(&dir.base_config_file(), b.as_bytes())?;
        }
    }
    let sweep_exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find this executable's path")?;
    dir.write_meta(&Meta {
        binary: binary.to_owned(),
        sweep_exe,
    })
}

/// Threads one run uses, from its resolved configuration: libtorch's (0 = every core), the
/// actors and the environment threads beyond the first.
pub fn threads_per_run(config_text: &str, cores: usize) -> usize {
    let t: toml::Table = config_text.parse().unwrap_or_default();
    let int = |k: &str| t.get(k).and_then(|v| v.as_integer()).unwrap_or(0).max(0) as usize;
    let torch = match int("torch_threads") {
        0 => cores,
        n => n,
    };
    (torch + int("actors") + int("env_threads").saturating_sub(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_from_config() {
        assert_eq!(threads_per_run("torch_threads = 1\nactors = 0", 8), 1);
        assert_eq!(threads_per_run("torch_threads = 0\nactors = 2", 8), 10);
        assert_eq!(
            threads_per_run("torch_threads = 2\nactors = 1\nenv_threads = 4", 8),
            6
        );
    }
}
