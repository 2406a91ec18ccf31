//! The workspace's binaries and the glue they share. Binaries are glue: anything a second
//! binary could use belongs in a library crate (`fire`, `envs`, the agents).
//!
//! * `fire-demo`: FIRE against full reset, shrink & perturb and no intervention on a
//!   sequence of memorisation tasks that makes a network lose plasticity.
#![warn(missing_docs)]

pub mod demo;
