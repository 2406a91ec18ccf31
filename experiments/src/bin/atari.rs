//! `atari`: DQN on an Atari game with FIRE (or a baseline) on a schedule.
//!
//! ```text
//! cargo run --release --bin atari -- --game Breakout --fire-every 1M
//! cargo run --release --bin atari -- --game DemonAttack --fire-at 1.25M            # the paper's protocol
//! cargo run --release --bin atari -- --game Asterix --intervention full-reset --fire-at 1.25M
//! cargo run --release --bin atari -- --fire-when 'dormant_ratio>0.2' --fire-cooldown 500k
//! cargo run --release --bin atari -- --resume results/runs/Breakout__dqn-fire__1__1764200000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::atari::{
    default_run_dir, train, AtariRunConfig, DeviceChoice, InterventionChoice, Outcome, Protocol,
};
use fire::parse_steps;
use runtime::RunDir;

/// DQN on Atari with plasticity interventions. Steps are agent steps summed over environments
/// (4 frames each) and accept 250k, 1M, 2.5M. Flags override `--config`, which overrides the
/// paper's defaults (FIRE.md section 3).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Game (see `atari-env list`).
    #[arg(long)]
    game: Option<String>,
    /// Total agent steps [default: 2.5M].
    #[arg(long, value_parser = steps)]
    steps: Option<u64>,
    /// Seed [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Where the networks run [default: auto].
    #[arg(long, value_enum)]
    device: Option<DeviceChoice>,
    /// TOML file with any hyperparameters (unknown keys are rejected).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Run directory [default: results/runs/<game>__dqn-<intervention>__<seed>__<time>].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "run_dir", "game", "seed"])]
    resume: Option<PathBuf>,
    /// Random-policy steps before learning [default: 20k].
    #[arg(long, value_parser = steps)]
    learning_starts: Option<u64>,
    /// Parallel environments [default: 4].
    #[arg(long)]
    envs: Option<usize>,
    /// Actor threads stepping the environments apart from the learner, over crossbeam
    /// channels; 0 = synchronous, exactly reproducible for a seed [default: 0].
    #[arg(long)]
    actors: Option<usize>,
    /// Threads stepping the environments (shared among the actors) [default: 2].
    #[arg(long)]
    env_threads: Option<usize>,
    /// Preprocessing protocol [default: paper].
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Replay capacity [default: 1M].
    #[arg(long, value_parser = steps)]
    buffer_size: Option<u64>,
    /// What the schedule triggers [default: fire].
    #[arg(long, value_enum)]
    intervention: Option<InterventionChoice>,
    /// Intervene at these steps (repeatable or comma-separated), e.g. 1.25M.
    #[arg(long, value_parser = steps, value_delimiter = ',')]
    fire_at: Vec<u64>,
    /// Intervene every this many steps, e.g. 1M.
    #[arg(long, value_parser = steps)]
    fire_every: Option<u64>,
    /// Intervene when a plasticity metric crosses a threshold, e.g. 'dormant_ratio>0.2'.
    #[arg(long)]
    fire_when: Option<String>,
    /// Minimum steps between metric-triggered interventions, e.g. 500k.
    #[arg(long, value_parser = steps)]
    fire_cooldown: Option<u64>,
    /// Steps between evaluations (0 = never) [default: 250k].
    #[arg(long, value_parser = steps)]
    eval_every: Option<u64>,
    /// Steps between checkpoints [default: 100k].
    #[arg(long, value_parser = steps)]
    checkpoint_every: Option<u64>,
}

fn steps(s: &str) -> Result<u64, String> {
    parse_steps(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("atari");
    match run(args) {
        Ok(Outcome::Finished) => ExitCode::SUCCESS,
        // As a shell reports a process ended by SIGINT.
        Ok(Outcome::Stopped(_)) => ExitCode::from(130),
        Err(err) => fire::cli::report_error("atari", &err),
    }
}

fn run(args: Args) -> Result<Outcome> {
    let (cfg, run_dir, resume) = if let Some(dir) = &args.resume {
        let run = RunDir::reopen(dir)?;
        let mut cfg = AtariRunConfig::from_toml_file(&run.config_file())?;
        apply_flags(&mut cfg, &args)?;
        (cfg, run, true)
    } else {
        let mut cfg = match &args.config {
            Some(path) => AtariRunConfig::from_toml_file(path)?,
            None => AtariRunConfig::default(),
        };
        apply_flags(&mut cfg, &args)?;
        cfg.validate()?;
        let path = args
            .run_dir
            .clone()
            .unwrap_or_else(|| default_run_dir(&cfg));
        (cfg, RunDir::create(&path)?, false)
    };
    cfg.validate()?;
    let text = toml::to_string(&cfg).context("serialising the resolved config")?;
    run_dir.write_config(&text)?;
    eprintln!(
        "atari: {} with {:?} ({}), {} steps, {} envs, device {:?}; logging to {}",
        cfg.game,
        cfg.intervention,
        schedule_text(&cfg)?,
        fire::schedule::format_steps(cfg.steps),
        cfg.envs,
        cfg.device()?,
        run_dir.path().display()
    );
    let outcome = train(&cfg, &run_dir, resume, true)?;
    let dir = run_dir.path().display();
    match outcome {
        Outcome::Finished => eprintln!("atari: done; tensorboard --logdir {dir}"),
        Outcome::Stopped(step) => {
            eprintln!(
                "atari: stopped at step {step} with a checkpoint; continue with --resume {dir}"
            )
        }
    }
    Ok(outcome)
}

fn schedule_text(cfg: &AtariRunConfig) -> Result<String> {
    let rules: Vec<String> = cfg.schedules()?.iter().map(|s| s.to_string()).collect();
    Ok(if rules.is_empty() {
        "no schedule: never applied".into()
    } else {
        rules.join("; ")
    })
}

fn apply_flags(cfg: &mut AtariRunConfig, a: &Args) -> Result<()> {
    if let Some(v) = &a.game {
        cfg.game = v.clone();
    }
    if let Some(v) = a.steps {
        cfg.steps = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.device {
        cfg.device = v;
    }
    if let Some(v) = a.learning_starts {
        cfg.learning_starts = v;
    }
    if let Some(v) = a.envs {
        cfg.envs = v;
    }
    if let Some(v) = a.actors {
        cfg.actors = v;
    }
    if let Some(v) = a.env_threads {
        cfg.env_threads = v;
    }
    if let Some(v) = a.protocol {
        cfg.protocol = v;
    }
    if let Some(v) = a.buffer_size {
        cfg.buffer_size = usize::try_from(v).context("--buffer-size is too large")?;
    }
    if let Some(v) = a.intervention {
        cfg.intervention = v;
    }
    if !a.fire_at.is_empty() {
        cfg.fire_at = a.fire_at.clone();
    }
    if let Some(v) = a.fire_every {
        cfg.fire_every = Some(v);
    }
    if let Some(v) = &a.fire_when {
        cfg.fire_when = Some(v.clone());
    }
    if let Some(v) = a.fire_cooldown {
        cfg.fire_cooldown = v;
    }
    if let Some(v) = a.eval_every {
        cfg.eval_every = v;
    }
    if let Some(v) = a.checkpoint_every {
        cfg.checkpoint_every = v;
    }
    Ok(())
}
