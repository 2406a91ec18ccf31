//! `minatar-env`: the MinAtar games from the command line: replay an action file, or measure
//! speed.
//!
//! ```text
//! cargo run --release --bin minatar-env -- rollout --game breakout --seed 1 --actions a.txt
//! cargo run --release --bin minatar-env -- rollout --game seaquest --seed 3 --sticky 0 --no-ramping --actions a.txt
//! cargo run --release --bin minatar-env -- bench --game space_invaders --steps 10000000
//! ```
//!
//! `rollout` makes the environment as the `minatar` 1.0.15 package's
//! `Environment(game, sticky_action_prob=P, difficulty_ramping=not --no-ramping)`, calls
//! `seed(S)` and `reset()`, then for each action of the file calls `act(a)` and prints one JSON
//! line, `{"step": k, "reward": r, "terminal": t, "state": "..."}`: `k` is the action's index
//! in the file counted from 0 (blank lines skipped), `r` the reward as the integer the package
//! returns (`0`, `1`, ...), `t` whether the episode ended, and `state` the state after the
//! step as `0`/`1` characters in the package's `state()` order, row-major `(y, x, channel)`
//! (`100 * channels` characters). After a terminal step it calls `reset()` without reseeding
//! and goes on. The whole file is read and checked before anything is printed.
//!
//! `bench` prints one line, `<number> steps/s`: `act` with uniform random actions drawn
//! beforehand (and
//! `reset()` when an episode ends) on one thread; `--with-state` also writes the observation
//! (`u8`, channel-first) after every step, as a training loop does.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use envs::minatar::rng::RandomState;
use envs::minatar::{Minatar, MinatarConfig, MinatarGame, NUM_ACTIONS};

/// MinAtar (the five games of the `minatar` 1.0.15 package, natively): replay actions,
/// measure speed.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay an action file and print one JSON line per step: {"step": k (the action's index
    /// in the file, from 0), "reward": the integer reward, "terminal": true/false, "state": the
    /// state after the step as 0/1 characters in (y, x, channel) order}; resets (without
    /// reseeding) after each terminal step.
    Rollout(RolloutArgs),
    /// Environment steps per second with random actions; prints `<number> steps/s`.
    Bench(BenchArgs),
}

/// What both subcommands take to make the environment.
#[derive(Parser, Debug)]
struct EnvArgs {
    /// Game: asterix, breakout, freeway, seaquest or space_invaders (or SpaceInvaders, ...).
    #[arg(long)]
    game: String,
    /// Probability that a step repeats the previous action (the package's
    /// sticky_action_prob), in [0, 1].
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    sticky: f64,
    /// Turn difficulty ramping off (the package's difficulty_ramping=False).
    #[arg(long)]
    no_ramping: bool,
}

impl EnvArgs {
    fn make(&self) -> Result<Minatar> {
        let game = MinatarGame::from_name(&self.game)?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.sticky),
            "--sticky must be between 0 and 1, got {}",
            self.sticky
        );
        let config = MinatarConfig {
            sticky_action_prob: self.sticky,
            difficulty_ramping: !self.no_ramping,
        };
        Ok(Minatar::new(game, config)?)
    }
}

#[derive(Parser, Debug)]
struct RolloutArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Seed, as the package's `seed(S)` (0 to 4294967295, NumPy's RandomState range).
    #[arg(long, allow_negative_numbers = true)]
    seed: u64,
    /// Text file with one action index 0..5 per line (n, l, u, r, d, f).
    #[arg(long)]
    actions: PathBuf,
}

#[derive(Parser, Debug)]
struct BenchArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Steps to take.
    #[arg(long, default_value_t = 1_000_000)]
    steps: u64,
    /// Seed of the environment and of the random actions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the observation (u8, channel-first) after every step.
    #[arg(long)]
    with_state: bool,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("minatar-env");
    let result = match args.command {
        Command::Rollout(r) => rollout(r),
        Command::Bench(b) => bench(b),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fire::cli::report_error("minatar-env", &err),
    }
}

/// The actions of the file, each checked: one index in `0..6` per non-blank line.
fn read_actions(path: &Path) -> Result<Vec<usize>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read actions file {}", path.display()))?;
    let mut actions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let field = line.trim();
        if field.is_empty() {
            continue;
        }
        let Ok(a) = field.parse::<i64>() else {
            bail!(
                "{} line {n}: `{field}` is not an action index (a whole number 0..5)",
                path.display()
            );
        };
        if !(0..NUM_ACTIONS as i64).contains(&a) {
            bail!(
                "{} line {n}: action {a} is outside 0..5 (MinAtar has 6 actions)",
                path.display()
            );
        }
        actions.push(a as usize);
    }
    Ok(actions)
}

fn rollout(args: RolloutArgs) -> Result<()> {
    let mut env = args.env.make()?;
    env.seed(args.seed).context("--seed")?;
    let actions = read_actions(&args.actions)?;
    env.reset();
    let mut cells = vec![0u8; env.state_len()];
    let mut line = String::with_capacity(cells.len() + 64);
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    for (k, &a) in actions.iter().enumerate() {
        let (reward, terminal) = env.act(a)?;
        env.state_into(&mut cells)?;
        line.clear();
        // Rewards are whole numbers in the package (Python ints); print them as such.
        line.push_str(&format!(
            "{{\"step\": {k}, \"reward\": {}, \"terminal\": {terminal}, \"state\": \"",
            reward as i64
        ));
        line.extend(cells.iter().map(|&c| if c == 1 { '1' } else { '0' }));
        line.push_str("\"}\n");
        out.write_all(line.as_bytes())?;
        if terminal {
            env.reset();
        }
    }
    out.flush()?;
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(args.steps >= 1, "--steps must be at least 1");
    let mut env = args.env.make()?;
    env.seed(args.seed).context("--seed")?;
    env.reset();
    // Random actions drawn beforehand (as benchmarks/minatar_env.py does), from a generator
    // of their own, and cycled.
    let mut draws = RandomState::new(args.seed as u32 ^ 0x5eed);
    let actions: Vec<usize> = (0..1 << 16)
        .map(|_| draws.randint(0, NUM_ACTIONS as i64) as usize)
        .collect();
    let mut obs = vec![0u8; env.state_len()];
    let mut checksum = 0u64;
    let start = Instant::now();
    for step in 0..args.steps {
        let a = actions[step as usize % actions.len()];
        let (reward, terminal) = env.act(a)?;
        checksum = checksum.wrapping_add(reward as u64);
        if args.with_state {
            env.state_channels_first_into(&mut obs)?;
            checksum = checksum.wrapping_add(u64::from(obs[0]));
        }
        if terminal {
            env.reset();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    println!("{:.0} steps/s", args.steps as f64 / seconds);
    Ok(())
}
