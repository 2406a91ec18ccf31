//! The workspace's binaries and the glue they share. Binaries are glue: the training loop is
//! `runtime::train`, the agents are in `agents/*`, and anything a second binary could use
//! belongs in a library crate.
//!
//! * `atari`: DQN on Atari with FIRE and the reset baselines ([`atari`]).
//! * `classic`: DQN on CartPole-v1 and SAC on Pendulum-v1 through the same loop ([`classic`]).
//! * `humanoid`: SAC on the HumanoidBench H1 tasks with FIRE and the reset baselines
//!   ([`humanoid`]).
//! * `minatar`: DQN on MinAtar, one game or a continual sequence of games ([`minatar`]).
//! * `atari-env`: list the games, measure environment speed.
//! * `fire-demo`: FIRE against full reset, shrink & perturb and no intervention on a
//!   sequence of memorisation tasks that makes a network lose plasticity.
//!
//! [`cli`] is what every training binary shares: named flags of the common keys,
//! `--config`, `--set KEY=VALUE`, `--resume`, `--dry-run`.
#![warn(missing_docs)]

pub mod atari;
pub mod classic;
pub mod cli;
pub mod demo;
pub mod dqn_keys;
pub mod humanoid;
pub mod method_keys;
pub mod minatar;
pub mod sac_keys;
