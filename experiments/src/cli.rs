//! What every training binary shares: the named flags of the common keys, `--config`,
//! `--set KEY=VALUE`, `--run-dir`, `--resume`, `--dry-run`, and the run from there.
//!
//! Every flag is a key of the binary's configuration: flags become `KEY=VALUE` assignments
//! applied like `--set`, so a flag, a TOML file and `--set` are typed and checked by the same
//! code (the config types in `runtime::config` and the binary's sections).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runtime::config::{apply_set, read_table, LoopConfig, Sections};
use runtime::{Outcome, RunDir};

/// Flags every training binary accepts. Step counts accept `250k`, `1M`, `2.5M`.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// TOML file with any configuration keys (unknown keys are rejected).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Sets any configuration key, typed and checked like the TOML file (repeatable), e.g.
    /// `--set replay_ratio=1 --set fire_at=1.25M`; `--help-keys` lists the keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run directory [default: results/runs/<name>__<seed>__<unix time>].
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (its config.toml is used;
    /// flags and --set override it).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "run_dir"])]
    pub resume: Option<PathBuf>,
    /// Resolve and check the configuration, print it as TOML and exit without running.
    #[arg(long)]
    pub dry_run: bool,
    /// List every configuration key with its default and exit.
    #[arg(long)]
    pub help_keys: bool,
    /// Total agent steps (key `steps`).
    #[arg(long, allow_hyphen_values = true)]
    pub steps: Option<String>,
    /// Seed (key `seed`).
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<String>,
    /// Where the networks run: auto, cpu, cuda (key `device`).
    #[arg(long)]
    pub device: Option<String>,
    /// Parallel environments (key `envs`).
    #[arg(long, allow_hyphen_values = true)]
    pub envs: Option<String>,
    /// Actor threads; 0 = synchronous, exactly reproducible (key `actors`).
    #[arg(long, allow_hyphen_values = true)]
    pub actors: Option<String>,
    /// Threads stepping the environments (key `env_threads`).
    #[arg(long, allow_hyphen_values = true)]
    pub env_threads: Option<String>,
    /// Random-policy steps before learning (key `learning_starts`).
    #[arg(long, allow_hyphen_values = true)]
    pub learning_starts: Option<String>,
    /// Replay capacity in transitions (key `buffer_size`).
    #[arg(long, allow_hyphen_values = true)]
    pub buffer_size: Option<String>,
    /// What the schedule triggers: none, fire, fire-exact, fire-tol, full-reset,
    /// shrink-perturb, redo, plasticity-injection, layer-reset (key `intervention`).
    #[arg(long)]
    pub intervention: Option<String>,
    /// Intervene at these steps, repeatable or comma-separated, e.g. 1.25M (key `fire_at`).
    #[arg(long, allow_hyphen_values = true)]
    pub fire_at: Vec<String>,
    /// Intervene every this many steps, e.g. 1M (key `fire_every`).
    #[arg(long, allow_hyphen_values = true)]
    pub fire_every: Option<String>,
    /// Intervene when a plasticity metric crosses a threshold, e.g. 'dormant_ratio>0.2'
    /// (key `fire_when`).
    #[arg(long)]
    pub fire_when: Option<String>,
    /// Minimum steps between metric-triggered interventions (key `fire_cooldown`).
    #[arg(long, allow_hyphen_values = true)]
    pub fire_cooldown: Option<String>,
    /// Steps between evaluations, 0 = never (key `eval_every`).
    #[arg(long, allow_hyphen_values = true)]
    pub eval_every: Option<String>,
    /// Steps between checkpoints (key `checkpoint_every`).
    #[arg(long, allow_hyphen_values = true)]
    pub checkpoint_every: Option<String>,
}

impl CommonArgs {
    /// The named flags as `KEY=VALUE` assignments, then `--set`, in that order.
    fn assignments(&self, extra: &[(&str, Option<String>)]) -> Vec<String> {
        let named = [
            ("steps", &self.steps),
            ("seed", &self.seed),
            ("device", &self.device),
            ("envs", &self.envs),
            ("actors", &self.actors),
            ("env_threads", &self.env_threads),
            ("learning_starts", &self.learning_starts),
            ("buffer_size", &self.buffer_size),
            ("intervention", &self.intervention),
            ("fire_every", &self.fire_every),
            ("fire_when", &self.fire_when),
            ("fire_cooldown", &self.fire_cooldown),
            ("eval_every", &self.eval_every),
            ("checkpoint_every", &self.checkpoint_every),
        ];
        let mut out: Vec<String> = named
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", quoted(k, v))))
            .collect();
        out.extend(
            extra
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", quoted(k, v)))),
        );
        if !self.fire_at.is_empty() {
            out.push(format!("fire_at=\"{}\"", self.fire_at.join(",")));
        }
        out.extend(self.set.iter().cloned());
        out
    }
}

/// Text keys are quoted so that `--fire-when 'dormant_ratio>0.2'` stays text.
fn quoted(key: &str, value: &str) -> String {
    if matches!(
        key,
        "fire_when" | "game" | "env" | "task" | "protocol" | "intervention" | "device"
    ) {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// What the user set, as opposed to what defaults filled in: for keys whose defaults depend
/// on others and for checks that only apply to keys set on purpose
/// ([`Experiment::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Given {
    /// Keys this command set: every flag and `--set`, and each key of the `--config` file
    /// whose value is not its default (a run's own `config.toml` lists every key, so it can
    /// serve as a `--config` file). A resumed run's `config.toml` adds none.
    pub keys: BTreeSet<String>,
    /// Whether the table the configuration is read from holds `steps` (from the `--config`
    /// file, whatever its value, a resumed run's `config.toml`, a flag or `--set`).
    pub steps: bool,
}

impl Given {
    /// Whether the user set `key`.
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

/// A training binary's configuration and what it does with it.
pub trait Experiment: Sections {
    /// The binary's name, for messages.
    const NAME: &'static str;
    /// The loop's section.
    fn loop_config(&self) -> &LoopConfig;
    /// Settles keys whose defaults depend on others (`classic`'s `steps` from its levels) and
    /// checks what only the keys the user set can tell (`classic` refuses keys of the agent it
    /// does not train); `given` says which. Runs before [`validate`](Self::validate).
    fn resolve(&mut self, given: &Given) -> Result<()> {
        let _ = given;
        Ok(())
    }
    /// Checks everything that can be checked before any work (files, ROMs included).
    fn validate(&self) -> Result<()>;
    /// The run's name before seed and time, e.g. `Breakout__dqn-fire`.
    fn run_name(&self) -> String;
    /// One line saying what will run.
    fn describe(&self) -> Result<String>;
    /// Trains into `run`; `config_text` is the resolved configuration the run directory keeps.
    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome>;
}

/// Resolves the configuration, then runs the binary: exit 0 when finished, 130 when stopped
/// by a signal (checkpointed), 1 with one error line otherwise.
pub fn main_for<X: Experiment>(args: &CommonArgs, extra: &[(&str, Option<String>)]) -> ExitCode {
    match run::<X>(args, extra) {
        Ok(Outcome::Finished) => ExitCode::SUCCESS,
        // As a shell reports a process ended by the signal: 130 for SIGINT, 143 for SIGTERM.
        Ok(Outcome::Stopped { signal, .. }) => ExitCode::from(128 + signal as u8),
        Err(err) => fire::cli::report_error(X::NAME, &err),
    }
}

fn run<X: Experiment>(args: &CommonArgs, extra: &[(&str, Option<String>)]) -> Result<Outcome> {
    let name = X::NAME;
    if args.help_keys {
        print!("{}", describe_keys::<X>()?);
        return Ok(Outcome::Finished);
    }
    let keys = X::keys();
    let mut given = Given::default();
    let mut table = match (&args.resume, &args.config) {
        (Some(dir), _) => read_table(&RunDir::reopen(dir)?.config_file())?,
        (None, Some(path)) => {
            let table = read_table(path)?;
            let defaults = X::default().to_table()?;
            given.keys.extend(
                table
                    .iter()
                    .filter(|(k, v)| defaults.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone()),
            );
            table
        }
        (None, None) => toml::Table::new(),
    };
    for assignment in args.assignments(extra) {
        let key = apply_set(&mut table, &assignment, &keys)?;
        given.keys.insert(key);
    }
    given.steps = table.contains_key("steps");
    let mut cfg = X::from_table(table)?;
    cfg.resolve(&given)?;
    cfg.validate()?;
    let text = toml::to_string(&cfg.to_table()?).context("serialising the resolved config")?;
    if args.dry_run {
        print!("{text}");
        return Ok(Outcome::Finished);
    }
    let run_dir = match &args.resume {
        Some(dir) => RunDir::reopen(dir)?,
        None => {
            let path = args
                .run_dir
                .clone()
                .unwrap_or_else(|| default_run_dir(&cfg.run_name(), cfg.loop_config().seed));
            RunDir::create(&path)?
        }
    };
    // One process per run: taken before anything in the directory changes.
    let _lock = run_dir.lock()?;
    let resume = args.resume.is_some() && run_dir.has_checkpoint();
    if args.resume.is_some() && !resume {
        eprintln!(
            "{name}: {} has no checkpoint (the run stopped before its first): starting it over",
            run_dir.path().display()
        );
        run_dir.clear_logs()?;
    }
    eprintln!(
        "{name}: {}; logging to {}",
        cfg.describe()?,
        run_dir.path().display()
    );
    let outcome = match cfg.train(&run_dir, resume, text) {
        Ok(outcome) => outcome,
        Err(e) => {
            // A new run refused before it wrote anything (the agent could not be built from
            // these keys) leaves no directory behind; anything written is kept.
            if args.resume.is_none() {
                drop(_lock);
                remove_if_untouched(run_dir.path());
            }
            return Err(e);
        }
    };
    let dir = run_dir.path().display();
    match outcome {
        Outcome::Finished => eprintln!("{name}: done; tensorboard --logdir {dir}"),
        Outcome::Stopped { step, .. } => {
            eprintln!(
                "{name}: stopped at step {step} with a checkpoint; continue with --resume {dir}"
            )
        }
    }
    Ok(outcome)
}

/// Removes a run directory that holds nothing but its lock file (or nothing at all).
fn remove_if_untouched(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    if names.iter().all(|n| n == "run.lock") {
        let _ = std::fs::remove_file(dir.join("run.lock"));
        let _ = std::fs::remove_dir(dir);
    }
}

/// Every key with its default value and its documentation, as a commented TOML file (from
/// the config types and their doc comments, so it cannot drift from the code).
pub fn describe_keys<X: Experiment>() -> Result<String> {
    let defaults = X::default().to_table()?;
    let mut out = format!(
        "# {} configuration keys: use them in --config FILE.toml or as --set KEY=VALUE.\n\n",
        X::NAME
    );
    for (key, doc) in X::key_docs() {
        out.push_str(&format!("# {doc}\n"));
        match defaults.get(&key) {
            Some(value) => out.push_str(&format!("{key} = {value}\n\n")),
            None => out.push_str(&format!("# {key} = (unset)\n\n")),
        }
    }
    Ok(out)
}

/// `results/runs/<name>__<seed>__<unix time>`, CleanRL style.
pub fn default_run_dir(name: &str, seed: u64) -> PathBuf {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("results/runs").join(format!("{name}__{seed}__{time}"))
}
