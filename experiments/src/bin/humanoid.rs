//! `humanoid`: SAC on a HumanoidBench H1 task with FIRE (or a baseline) on a schedule.
//!
//! ```text
//! cargo run --release --bin humanoid -- --task h1-walk-v0 --fire-at 500k         # the paper's protocol
//! cargo run --release --bin humanoid -- --task h1-run-v0 --intervention shrink-perturb --fire-at 500k
//! cargo run --release --bin humanoid -- --config experiments/configs/fire-paper-sac/h1-walk-fire.toml
//! cargo run --release --bin humanoid -- --resume results/runs/h1-walk-v0__sac-fire__1__1764200000
//! cargo run --release --bin humanoid -- --help-keys                               # every key
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::cli::{main_for, CommonArgs};
use experiments::humanoid::HumanoidRunConfig;

/// SAC (SimBa) on HumanoidBench H1 tasks with plasticity interventions. Every step, in keys,
/// flags, logs and checkpoints, counts environment steps (1M = 500k decisions with action
/// repeat 2); step keys accept 250k, 1M and must be multiples of action_repeat. Flags
/// and --set override --config, which overrides the FIRE paper's defaults (FIRE.md section 3).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Task: h1-walk-v0, h1-stand-v0, h1-run-v0, h1-balance_simple-v0 (key `task`).
    #[arg(long)]
    task: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("humanoid");
    main_for::<HumanoidRunConfig>(&args.common, &[("task", args.task.clone())])
}
