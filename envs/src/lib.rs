//! Environments with Gymnasium's semantics, for the agents of this workspace.
//!
//! # Brief overview
//!
//! * [`Env`] mirrors Gymnasium's API: `reset(seed) -> (obs, info)` and
//!   `step(action) -> (obs, reward, terminated, truncated, info)` as a [`Step`].
//!   `terminated` means the MDP ended (a pole fell); `truncated` means a time limit cut the
//!   episode short, so a learner must still bootstrap from the next state.
//! * [`Space`] describes observations and actions.
//! * [`EpisodeStats`] travels in [`Info`] on the step that ends an episode: the raw, unclipped
//!   return and the length of the whole episode.
//! * [`classic`]: CartPole-v1, Acrobot-v1, MountainCar-v0 and Pendulum-v1 with Gymnasium's
//!   exact dynamics (Acrobot and MountainCar bit-identical from the seed), for fast runs.
//! * [`atari`]: Atari 2600 games on ALE 0.12.1 (ale-py's C++ core) with the standard DQN
//!   preprocessing.
//! * [`minatar`]: the five MinAtar games in pure Rust, step for step and draw for draw those
//!   of the `minatar` 1.0.15 package.
//! * [`mujoco`]: the HumanoidBench H1 tasks on MuJoCo 3.17.0.
//! * [`vector`]: many environments stepped in parallel into one batch, synchronously
//!   ([`vector::VecEnv`]) or asynchronously ([`vector::AsyncVecEnv`]).
//!
//! ```
//! use envs::{classic::CartPole, Env};
//! let mut env = CartPole::new();
//! let (obs, _) = env.reset(Some(7)).unwrap();
//! assert_eq!(obs.len(), 4);
//! let step = env.step(&1).unwrap();
//! assert_eq!(step.reward, 1.0);
//! ```
#![warn(missing_docs)]

pub mod atari;
pub mod classic;
pub mod minatar;
pub mod mujoco;
mod snapshot;
pub mod vector;

use serde::Serialize;

/// What went wrong in an environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An action outside the action space.
    #[error("invalid action {action}: {reason}")]
    InvalidAction {
        /// The action, formatted.
        action: String,
        /// Why it is invalid.
        reason: String,
    },
    /// `step` before the first `reset`, or after an episode ended without a reset.
    #[error("step called on an environment that needs a reset")]
    NeedsReset,
    /// A configuration value is out of range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The game name is not an Atari game ALE supports.
    #[error("unknown game `{game}`; available: {}", list(available))]
    UnknownGame {
        /// What the user typed.
        game: String,
        /// Games with a ROM in the ROM directory.
        available: Vec<String>,
    },
    /// The game is known but its ROM is not in the ROM directory.
    #[error("no ROM for {game} at {}; available: {}", path.display(), list(available))]
    RomMissing {
        /// The game.
        game: String,
        /// Where the ROM was looked for.
        path: std::path::PathBuf,
        /// Games with a ROM in the ROM directory.
        available: Vec<String>,
    },
    /// The ROM directory is missing or unreadable.
    #[error("ROM directory {}: {reason}", dir.display())]
    RomDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// An environment panicked on a worker thread of an [`vector::AsyncVecEnv`].
    #[error("environment {env} panicked: {message}")]
    Panicked {
        /// Index of the environment.
        env: usize,
        /// The panic's message.
        message: String,
    },
    /// The task name is not one of the MuJoCo tasks.
    #[error("unknown task `{task}`; available: {}", available.join(", "))]
    UnknownTask {
        /// What the user typed.
        task: String,
        /// The tasks.
        available: Vec<String>,
    },
    /// A scene file of a MuJoCo task is missing.
    #[error("MuJoCo scene {} not found: run ./setup.sh (or set FIRE_RL_HUMANOID_ASSETS)", path.display())]
    AssetsMissing {
        /// The file looked for.
        path: std::path::PathBuf,
    },
    /// MuJoCo failed (loading a model, allocating data, a non-finite state).
    #[error("MuJoCo: {reason}")]
    Mujoco {
        /// What failed.
        reason: String,
    },
    /// A ROM file cannot be used.
    #[error("ROM {}: {reason}", path.display())]
    Rom {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The emulator reported an error (a C++ exception in ALE, caught).
    #[error("ALE: {0}")]
    Emulator(String),
    /// A saved environment state cannot be restored (another environment's, or damaged).
    #[error("environment snapshot: {0}")]
    Snapshot(String),
    /// The environment cannot save or restore its state.
    #[error("{0} cannot save its state")]
    NoSnapshot(&'static str),
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none (run ./setup.sh to install the ROMs)".to_owned()
    } else {
        items.join(", ")
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An observation or action space.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Space {
    /// Actions `0..n`.
    Discrete(usize),
    /// A box of f32 values with per-dimension bounds.
    Box {
        /// Lower bounds.
        low: Vec<f32>,
        /// Upper bounds.
        high: Vec<f32>,
    },
}

impl Space {
    /// Number of dimensions of a box, or 1 for a discrete space.
    pub fn dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box { low, .. } => low.len(),
        }
    }
}

/// Statistics of a finished episode (the whole game, not one life; raw, unclipped rewards).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EpisodeStats {
    /// Sum of raw rewards.
    pub episode_return: f64,
    /// Number of agent steps.
    pub length: u64,
}

/// Side information of a step or reset.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Info {
    /// Set on the step that ends an episode.
    pub episode: Option<EpisodeStats>,
    /// Named reward components of the step (MuJoCo tasks: HumanoidBench's info keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_terms: Option<std::collections::BTreeMap<&'static str, f64>>,
    /// Simulator warnings the step raised (MuJoCo: unstable simulation, bad acceleration...);
    /// 0 normally.
    #[serde(skip_serializing_if = "is_zero")]
    pub sim_warnings: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What one step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Step<O> {
    /// The next observation.
    pub obs: O,
    /// The reward for the transition.
    pub reward: f64,
    /// The episode reached a terminal state of the MDP.
    pub terminated: bool,
    /// The episode was cut short (time limit); not a terminal state.
    pub truncated: bool,
    /// Side information.
    pub info: Info,
}

impl<O> Step<O> {
    /// Whether the episode is over for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A Gymnasium-style environment.
pub trait Env: Send {
    /// Observation type.
    type Obs;
    /// Action type.
    type Action;

    /// The observation space.
    fn observation_space(&self) -> Space;
    /// The action space.
    fn action_space(&self) -> Space;
    /// Starts a new episode; `Some(seed)` reseeds the environment's random generator.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Self::Obs, Info)>;
    /// Advances one step.
    fn step(&mut self, action: &Self::Action) -> Result<Step<Self::Obs>>;
}

/// Tracks the running return and length of the current episode.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EpisodeTracker {
    episode_return: f64,
    length: u64,
}

impl EpisodeTracker {
    /// Adds a step; returns the episode's statistics when `done`, and starts a new count.
    pub(crate) fn record(&mut self, reward: f64, done: bool) -> Option<EpisodeStats> {
        self.episode_return += reward;
        self.length += 1;
        done.then(|| {
            let stats = EpisodeStats {
                episode_return: self.episode_return,
                length: self.length,
            };
            *self = Self::default();
            stats
        })
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}
