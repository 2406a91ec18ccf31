//! `atari`: DQN on an Atari game with FIRE (or a baseline) on a schedule.
//!
//! ```text
//! cargo run --release --bin atari -- --game Asterix --config experiments/configs/fire-paper/Asterix-fire.toml
//! cargo run --release --bin atari -- --game DemonAttack --fire-at 1.25M            # the FIRE reference's protocol
//! cargo run --release --bin atari -- --game Asterix --intervention full-reset --fire-at 1.25M
//! cargo run --release --bin atari -- --game Breakout --protocol nature --fire-every 1M
//! cargo run --release --bin atari -- --set replay_ratio=0.25 --set eval_every=0
//! cargo run --release --bin atari -- --resume results/runs/Breakout__dqn-fire__1__1764200000
//! cargo run --release --bin atari -- --help-keys                                    # every key
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::atari::AtariRunConfig;
use experiments::cli::{main_for, CommonArgs};

/// DQN on Atari with plasticity interventions. Steps are agent steps summed over environments
/// (4 frames each) and accept 250k, 1M, 2.5M. Flags and --set override --config, which
/// overrides the defaults of the protocol (fire-paper: the FIRE reference's, FIRE.md section 3).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Game (see `atari-env list`) (key `game`).
    #[arg(long)]
    game: Option<String>,
    /// Protocol: fire-paper (default), nature, machado; sets the preprocessing and the
    /// defaults of replay_ratio, eval_envs, epsilon_hold_warmup (key `protocol`).
    #[arg(long)]
    protocol: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("atari");
    main_for::<AtariRunConfig>(
        &args.common,
        &[
            ("game", args.game.clone()),
            ("protocol", args.protocol.clone()),
        ],
    )
}
