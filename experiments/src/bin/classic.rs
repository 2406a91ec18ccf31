//! `classic`: DQN on CartPole-v1 through the same loop, logs and checkpoints as `atari`; learns
//! in about a minute on a CPU.
//!
//! ```text
//! cargo run --release --bin classic -- --env CartPole-v1
//! cargo run --release --bin classic -- --env CartPole-v1 --intervention fire --fire-at 30k
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::classic::ClassicRunConfig;
use experiments::cli::{main_for, CommonArgs};

/// An agent on a classic-control task, with the interventions and logs of `atari`.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The task: CartPole-v1 (key `env`).
    #[arg(long)]
    env: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("classic");
    main_for::<ClassicRunConfig>(&args.common, &[("env", args.env.clone())])
}
