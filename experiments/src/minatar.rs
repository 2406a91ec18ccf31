//! `minatar`: DQN on MinAtar (Young & Tian 2019) through the same loop as `atari`, one game or
//! the continual sequence of C-CHAIN (one network through the games in turn).
//!
//! The one protocol, `young-tian` (the default), is the reference DQN of `kenjyoung/MinAtar`
//! `examples/dqn.py`: conv 16 3x3 -> 128 -> actions, batch 32, replay 100k, target update
//! every 1,000 steps, one update per step, 5M steps, 5,000 random steps first, epsilon 1.0 ->
//! 0.1 over the next 100k steps (`exploration_fraction` 0.02 of the 5M), gamma 0.99, Huber
//! loss, centered RMSprop (lr 2.5e-4, alpha 0.95, eps 0.01; the script's `GRAD_MOMENTUM` is
//! defined but never passed, so momentum 0). Sticky actions 0.1 and difficulty ramping are
//! the package's defaults. The script logs training returns only; evaluations here are ours
//! (greedy, every 250k steps).
//!
//! **A sequence of games** (`games = [...]`, `--games`): the C-CHAIN protocol's
//! SpaceInvaders -> Asterix -> Seaquest of 2M steps each by default. Every game plays with the
//! 6-action set and observations padded with zero channels to the largest game's count, so one
//! network reads them all; the switches are `runtime::levels`' (exact step counts, episodes in
//! flight cut, the level-end evaluation, `games.csv`, `charts/episodic_return/<game>`), and
//! `intervene_at_switch` applies the run's intervention at each.

use anyhow::{ensure, Result};
use dqn::{Architecture, Dqn};
use envs::minatar::{EnvId, MinatarConfig, MinatarEnv, MinatarGame};
use envs::vector::{FlatEnv, Transition};
use envs::{Info, Space};
use fire::Method;
use replay::FrameReplay;
use runtime::config::LoopConfig;
use runtime::levels::{LevelKeys, LevelPlan};
use runtime::{Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::{Experiment, Given};
use crate::dqn_keys::{DqnKeys, DqnOptimizer};
use crate::method_keys::MethodKeys;

/// C-CHAIN's continual MinAtar sequence, and its length per game.
pub const C_CHAIN_GAMES: &str = "SpaceInvaders,Asterix,Seaquest";
/// Steps per game of C-CHAIN's sequence.
pub const C_CHAIN_GAME_STEPS: u64 = 2_000_000;

/// MinAtar's protocols (one so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The reference DQN of `kenjyoung/MinAtar` `examples/dqn.py`.
    YoungTian,
}

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MinatarKeys {
    /// Protocol: young-tian (the reference DQN of kenjyoung/MinAtar examples/dqn.py).
    pub protocol: Protocol,
    /// The game: Asterix, Breakout, Freeway, Seaquest, SpaceInvaders (or snake_case).
    pub game: String,
    /// A continual sequence of games trained in turn by one network (overrides `game`), e.g.
    /// ["SpaceInvaders", "Asterix", "Seaquest"] (C-CHAIN's).
    pub games: Vec<String>,
    /// Steps per game of `games` (default 2M, C-CHAIN's; `steps` is games × game_steps).
    #[serde(deserialize_with = "runtime::config::steps::optional")]
    #[schemars(with = "Option<u64>")]
    pub game_steps: Option<u64>,
    /// Apply the run's intervention at every game switch.
    pub intervene_at_switch: bool,
    /// Probability that a step repeats the previous action (the package's 0.1).
    pub sticky_action_prob: f64,
    /// Asterix, Seaquest and SpaceInvaders get harder over time (the package's default).
    pub difficulty_ramping: bool,
}

impl Default for MinatarKeys {
    fn default() -> Self {
        Self {
            protocol: Protocol::YoungTian,
            game: "Breakout".into(),
            games: Vec::new(),
            game_steps: None,
            intervene_at_switch: false,
            sticky_action_prob: 0.1,
            difficulty_ramping: true,
        }
    }
}

/// A `minatar` run's configuration: the `young-tian` protocol by default.
#[derive(Clone, Debug, PartialEq)]
pub struct MinatarRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The game or games.
    pub env: MinatarKeys,
    /// The agent.
    pub dqn: DqnKeys,
    /// The plasticity methods built into the network and the update.
    pub methods: MethodKeys,
}

impl Default for MinatarRunConfig {
    fn default() -> Self {
        Self {
            run: LoopConfig {
                steps: 5_000_000,
                envs: 1,
                env_threads: 1,
                buffer_size: 100_000,
                learning_starts: 5_000,
                replay_ratio: 1.0,
                batch_size: 32,
                gamma: 0.99,
                eval_every: 250_000,
                eval_steps: 50_000,
                eval_episodes: 10,
                log_every: 1_000,
                plasticity_every: 50_000,
                checkpoint_every: 250_000,
                // The update is small: one thread is fastest and repeats exactly.
                torch_threads: 1,
                ..LoopConfig::default()
            },
            env: MinatarKeys::default(),
            dqn: DqnKeys {
                optimizer: DqnOptimizer::RmspropCentered,
                learning_rate: 2.5e-4,
                rmsprop_alpha: 0.95,
                rmsprop_eps: 0.01,
                loss: dqn::Loss::Huber,
                double_dqn: false,
                target_update_every: 1_000,
                target_tau: 1.0,
                epsilon_start: 1.0,
                epsilon_end: 0.1,
                exploration_fraction: 100_000.0 / 5_000_000.0,
                epsilon_hold_warmup: true,
                eval_epsilon: 0.0,
                ..DqnKeys::default()
            },
            methods: MethodKeys::default(),
        }
    }
}

runtime::sections!(MinatarRunConfig {
    run: LoopConfig,
    env: MinatarKeys,
    dqn: DqnKeys,
    methods: MethodKeys,
});

impl MinatarRunConfig {
    /// The games the run plays, in order (one for a single-game run).
    pub fn games(&self) -> Result<Vec<MinatarGame>> {
        if self.env.games.is_empty() {
            return Ok(vec![MinatarGame::from_name(&self.env.game)?]);
        }
        self.env
            .games
            .iter()
            .enumerate()
            .map(|(i, name)| {
                ensure!(
                    !name.trim().is_empty(),
                    "games: entry {} is empty (write e.g. SpaceInvaders,Asterix,Seaquest)",
                    i + 1
                );
                Ok(MinatarGame::from_name(name.trim())?)
            })
            .collect()
    }

    fn continual(&self) -> bool {
        !self.env.games.is_empty()
    }

    /// The level protocol's keys for the game sequence (one level per game).
    fn level_keys(&self) -> LevelKeys {
        LevelKeys {
            levels: self.env.games.len().max(1) as u64,
            level_steps: self.env.game_steps,
            level_offset_std: 0.0,
            intervene_at_level: self.env.intervene_at_switch,
        }
    }

    fn env_config(&self) -> MinatarConfig {
        MinatarConfig {
            sticky_action_prob: self.env.sticky_action_prob,
            difficulty_ramping: self.env.difficulty_ramping,
        }
    }
}

impl Experiment for MinatarRunConfig {
    const NAME: &'static str = "minatar";

    fn loop_config(&self) -> &LoopConfig {
        &self.run
    }

    fn resolve(&mut self, given: &Given) -> Result<()> {
        ensure!(
            self.env.game_steps != Some(0),
            "game_steps must be positive"
        );
        if !self.continual() {
            ensure!(
                !given.has("game_steps") && !given.has("intervene_at_switch"),
                "game_steps and intervene_at_switch are for a sequence of games (--games)"
            );
            return Ok(());
        }
        ensure!(
            !given.has("game"),
            "set game (one game) or games (a sequence), not both"
        );
        if self.env.game_steps.is_none() && !given.steps {
            self.env.game_steps = Some(C_CHAIN_GAME_STEPS);
        }
        let mut keys = self.level_keys();
        keys.resolve_steps(&mut self.run, given.steps)
            .map_err(in_game_terms)?;
        self.env.game_steps = keys.level_steps;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let games = self.games()?;
        let p = self.env.sticky_action_prob;
        ensure!(
            (0.0..=1.0).contains(&p),
            "sticky_action_prob must be in [0, 1], got {p}"
        );
        self.run.validate(dqn::PLASTICITY_METRICS)?;
        self.dqn.validate()?;
        self.methods.validate(&self.run, false)?;
        if self.continual() {
            ensure!(games.len() >= 2, "games needs at least two games");
            self.level_keys()
                .validate(&self.run)
                .map_err(in_game_terms)?;
        }
        Ok(())
    }

    fn run_name(&self) -> String {
        let games = match self.games() {
            Ok(g) => g.iter().map(|g| g.title()).collect::<Vec<_>>().join("-"),
            Err(_) => self.env.game.clone(),
        };
        format!("MinAtar-{games}__dqn-{}", self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        let games = self.games()?;
        let mut schedule = self.run.schedule_text(dqn::PLASTICITY_METRICS)?;
        let what = if self.continual() {
            if self.env.intervene_at_switch && self.run.intervention != Method::None {
                schedule = match self.run.schedules(dqn::PLASTICITY_METRICS)?.is_empty() {
                    true => "at every game switch".into(),
                    false => format!("{schedule}; at every game switch"),
                };
            }
            let per = self.env.game_steps.unwrap_or(C_CHAIN_GAME_STEPS);
            let names: Vec<&str> = games.iter().map(|g| g.title()).collect();
            format!(
                "{} ({} each)",
                names.join(" -> "),
                fire::schedule::format_steps(per)
            )
        } else {
            games[0].title().to_owned()
        };
        Ok(format!(
            "MinAtar {what} with {} ({schedule}), {} steps, sticky {}, ramping {}",
            self.run.intervention,
            fire::schedule::format_steps(self.run.steps),
            self.env.sticky_action_prob,
            self.env.difficulty_ramping,
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let games = self.games()?;
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
        let config = self.env_config();
        let probe = GameSequence::new(&games, config)?;
        let channels = probe.channels();
        let arch = Architecture::MinatarCnn {
            channels: channels as i64,
        };
        let mut dqn_config = self.dqn.dqn_config(&self.run);
        self.methods.apply_dqn(&mut dqn_config);
        let agent: Dqn<u8> = Dqn::new(&arch, 6, dqn_config, device)?;
        let replay = FrameReplay::new(
            self.run.buffer_size,
            self.run.envs,
            probe.obs_len(),
            1,
            seeds.replay(),
        )?;
        let levels = self.continual().then(|| {
            let names = games.iter().map(|g| g.title().to_owned()).collect();
            let per = self.env.game_steps.expect("resolved before the run");
            LevelPlan::tasks(names, per, self.env.intervene_at_switch)
        });
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(move |_, _, _| GameSequence::new(&games, config)),
            frames_per_step: 1,
            steps_per_decision: 1,
            eval_extras: None,
            levels,
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }
}

/// A level protocol's error in this binary's words: its keys are `games`, `game_steps` and
/// `intervene_at_switch`.
fn in_game_terms(e: anyhow::Error) -> anyhow::Error {
    let text = e
        .to_string()
        .replace("intervene_at_level", "intervene_at_switch")
        .replace("level_steps", "game_steps")
        .replace("level", "game");
    anyhow::anyhow!("{text}")
}

/// MinAtar games played in turn (one for a single-game run): the 6-action set, observations
/// `[C, 10, 10]` as `u8` 0/1 with `C` the largest game's channel count (a game with fewer
/// fills the first channels, the rest stay zero). The loop moves it to game `k` with
/// `set_phase(k)`; the next reset starts that game.
#[derive(Clone, Debug)]
pub struct GameSequence {
    games: Vec<MinatarEnv>,
    phase: usize,
    channels: usize,
}

impl GameSequence {
    /// The games with `config`, at the first.
    pub fn new(games: &[MinatarGame], config: MinatarConfig) -> envs::Result<Self> {
        let games = games
            .iter()
            .map(|&game| {
                MinatarEnv::new(
                    EnvId {
                        game,
                        minimal_actions: false,
                    },
                    config,
                )
            })
            .collect::<envs::Result<Vec<_>>>()?;
        let channels = games
            .iter()
            .map(|g| g.inner().channels())
            .max()
            .unwrap_or(0);
        Ok(Self {
            games,
            phase: 0,
            channels,
        })
    }

    /// Channels of every observation (the largest game's).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The current game's observation cells: a prefix of a padded observation.
    fn split<'a>(&self, obs: &'a mut [u8]) -> (&'a mut [u8], &'a mut [u8]) {
        obs.split_at_mut(self.games[self.phase].obs_len())
    }
}

/// numpy's `RandomState` takes a 32-bit seed: fold the loop's 64-bit one into it.
fn seed32(seed: u64) -> u64 {
    (seed ^ (seed >> 32)) & 0xffff_ffff
}

impl FlatEnv for GameSequence {
    type Elem = u8;

    fn obs_len(&self) -> usize {
        self.channels * 100
    }

    fn action_space(&self) -> Space {
        Space::Discrete(6)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [u8]) -> envs::Result<Info> {
        let (own, pad) = self.split(obs);
        pad.fill(0);
        self.games[self.phase].reset_into(seed.map(seed32), own)
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [u8]) -> envs::Result<Transition> {
        let (own, _) = self.split(obs);
        self.games[self.phase].step_into(action, own)
    }

    fn set_phase(&mut self, phase: u64) -> envs::Result<()> {
        match usize::try_from(phase)
            .ok()
            .filter(|&p| p < self.games.len())
        {
            Some(p) => {
                self.phase = p;
                Ok(())
            }
            None => Err(envs::Error::Config {
                field: "phase",
                reason: format!("game {phase} of a sequence of {}", self.games.len()),
            }),
        }
    }

    /// The current game's index, then its whole state.
    fn save_state(&mut self) -> Option<Vec<u8>> {
        let mut out = (self.phase as u64).to_le_bytes().to_vec();
        out.extend(self.games[self.phase].save_state()?);
        Some(out)
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [u8]) -> envs::Result<()> {
        let damaged = || envs::Error::Snapshot("not a MinAtar game sequence's state".into());
        let (head, rest) = state.split_first_chunk::<8>().ok_or_else(damaged)?;
        self.set_phase(u64::from_le_bytes(*head))?;
        let (own, pad) = self.split(obs);
        pad.fill(0);
        self.games[self.phase].load_state(rest, own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `young-tian` preset is `kenjyoung/MinAtar` `examples/dqn.py`'s DQN
    /// (../shared/CONTINUAL.md section 3; RMSprop's momentum is the script's omission, 0).
    #[test]
    fn the_default_is_the_reference_dqn() {
        let c = MinatarRunConfig::default();
        let (run, dqn, env) = (&c.run, &c.dqn, &c.env);
        assert_eq!(env.protocol, Protocol::YoungTian);
        assert_eq!(
            (run.steps, run.buffer_size, run.batch_size),
            (5_000_000, 100_000, 32)
        );
        assert_eq!(
            (run.learning_starts, run.replay_ratio, run.gamma),
            (5_000, 1.0, 0.99)
        );
        assert_eq!(dqn.optimizer, DqnOptimizer::RmspropCentered);
        assert_eq!(
            (dqn.learning_rate, dqn.rmsprop_alpha, dqn.rmsprop_eps),
            (2.5e-4, 0.95, 0.01)
        );
        assert_eq!((dqn.loss, dqn.double_dqn), (dqn::Loss::Huber, false));
        assert_eq!((dqn.target_update_every, dqn.target_tau), (1_000, 1.0));
        assert_eq!((dqn.epsilon_start, dqn.epsilon_end), (1.0, 0.1));
        assert!(
            dqn.epsilon_hold_warmup,
            "uniform random actions before replay start"
        );
        let decay = dqn.dqn_config(run).epsilon.decay_steps;
        assert_eq!(decay, 100_000.0, "epsilon decays over 100k steps");
        assert_eq!(
            (env.sticky_action_prob, env.difficulty_ramping),
            (0.1, true)
        );
        let rms = dqn.dqn_config(run).rmsprop.expect("RMSprop, not Adam");
        assert!(rms.centered);
    }
}
