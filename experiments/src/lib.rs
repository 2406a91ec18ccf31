//! The workspace's binaries and the glue they share. Binaries are glue: anything a second
//! binary could use belongs in a library crate (`fire`, `envs`, the agents).
//!
//! * `atari`: DQN on Atari with FIRE and the reset baselines ([`atari`]).
//! * `atari-env`: list the games, measure environment speed.
//! * `fire-demo`: FIRE against full reset, shrink & perturb and no intervention on a
//!   sequence of memorisation tasks that makes a network lose plasticity.
#![warn(missing_docs)]

pub mod atari;
pub mod demo;
