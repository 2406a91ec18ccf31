//! `classic`: DQN on CartPole-v1, Acrobot-v1 and MountainCar-v0 and SAC on Pendulum-v1 through
//! the same loop, logs and checkpoints as `atari`; learns in about a minute on a CPU, and runs
//! the continual protocol (a sequence of levels, each shifting the observations) with
//! `--levels`.
//!
//! ```text
//! cargo run --release --bin classic -- --env CartPole-v1
//! cargo run --release --bin classic -- --env CartPole-v1 --intervention fire --fire-at 30k
//! cargo run --release --bin classic -- --env Acrobot-v1 --levels 10 --level-steps 20k \
//!     --intervention fire --intervene-at-level
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::classic::ClassicRunConfig;
use experiments::cli::{main_for, CommonArgs};

/// An agent on a classic-control task, with the interventions and logs of `atari`.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The task: CartPole-v1, Acrobot-v1, MountainCar-v0 or Pendulum-v1 (key `env`).
    #[arg(long)]
    env: Option<String>,
    /// Levels of the continual protocol, each with its own observation offset; 1 = off
    /// (key `levels`).
    #[arg(long, allow_hyphen_values = true)]
    levels: Option<String>,
    /// Agent steps per level, e.g. 20k (key `level_steps`; `steps` defaults to
    /// levels × level_steps).
    #[arg(long, allow_hyphen_values = true)]
    level_steps: Option<String>,
    /// Apply the intervention at every level switch (key `intervene_at_level`).
    #[arg(long)]
    intervene_at_level: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("classic");
    let extra = [
        ("env", args.env.clone()),
        ("levels", args.levels.clone()),
        ("level_steps", args.level_steps.clone()),
        (
            "intervene_at_level",
            args.intervene_at_level.then(|| "true".to_owned()),
        ),
    ];
    main_for::<ClassicRunConfig>(&args.common, &extra)
}
