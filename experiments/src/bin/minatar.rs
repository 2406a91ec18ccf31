//! `minatar`: DQN on MinAtar (Young & Tian 2019) with the interventions, logs, checkpoints and
//! sweeps of `atari`; the `young-tian` protocol (the reference DQN of kenjyoung/MinAtar) by
//! default, one game or the continual sequence of C-CHAIN.
//!
//! ```text
//! cargo run --release --bin minatar -- --game Breakout --fire-every 1M
//! cargo run --release --bin minatar -- --games --intervene-at-switch --intervention fire
//! cargo run --release --bin minatar -- --games SpaceInvaders,Asterix --game-steps 500k
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::cli::{main_for, CommonArgs};
use experiments::minatar::{MinatarRunConfig, C_CHAIN_GAMES};

/// DQN on MinAtar with plasticity interventions. Steps count agent steps (one frame each).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The game: Asterix, Breakout, Freeway, Seaquest, SpaceInvaders (key `game`).
    #[arg(long)]
    game: Option<String>,
    /// A continual sequence of games for one network, comma-separated; alone, C-CHAIN's
    /// SpaceInvaders,Asterix,Seaquest (key `games`).
    #[arg(long, num_args = 0..=1, default_missing_value = C_CHAIN_GAMES)]
    games: Option<String>,
    /// Steps per game of the sequence, e.g. 2M (key `game_steps`; `steps` defaults to
    /// games × game_steps).
    #[arg(long, allow_hyphen_values = true)]
    game_steps: Option<String>,
    /// Apply the intervention at every game switch (key `intervene_at_switch`).
    #[arg(long)]
    intervene_at_switch: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("minatar");
    // A list key as `--set` writes it: TOML strings in brackets.
    let games = args.games.as_ref().map(|list| {
        let items: Vec<String> = list.split(',').map(|g| format!("{:?}", g.trim())).collect();
        format!("[{}]", items.join(", "))
    });
    let extra = [
        ("game", args.game.clone()),
        ("games", games),
        ("game_steps", args.game_steps.clone()),
        (
            "intervene_at_switch",
            args.intervene_at_switch.then(|| "true".to_owned()),
        ),
    ];
    main_for::<MinatarRunConfig>(&args.common, &extra)
}
