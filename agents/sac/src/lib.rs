//! Soft actor-critic: a tanh-Gaussian actor, a clipped double-Q critic ensemble, an owned
//! optimiser state, and the interventions with the FIRE paper's SAC semantics.
//!
//! # Brief overview
//!
//! * [`Architecture`]: [`Architecture::Mlp`] (CleanRL's `sac_continuous_action.py` sizes,
//!   for small tasks such as Pendulum) or [`Architecture::Simba`] (the FIRE reference's SimBa
//!   actor and critics, for HumanoidBench). Parameters are role-named: `actor.*` (a [`Actor`])
//!   and `critic.*` (a [`Critic`]: both Q-networks as one batched ensemble, every tensor with
//!   the member dimension first; [`member_views`] names each member's matrices on its own).
//! * [`SquashedGaussian`]: the policy, the one place actions are sampled, squashed by `tanh`
//!   and scaled to the action box, for the learner and for [`SacPolicy`], the CPU copy actor
//!   threads act with.
//! * [`Sac`] holds the policy, critics, target critics, temperature, three [`agent::Adam`]s,
//!   theta_0 and the [`RunningNorm`] observation normaliser (updated while acting in warm-up
//!   and in training). [`Sac::update`] is one step in the reference's order: actor,
//!   temperature, critic, target. [`Sac::intervene`] applies FIRE, full reset or shrink &
//!   perturb (then rebuilds the optimisers, restores the initial temperature and copies the
//!   critic into the target), ReDo ([`Sac::redo`]) or plasticity injection ([`Sac::inject`]).
//! * `Sac` implements [`agent::Agent`], so the runtime's loop trains it.
//!
//! Modules: `config` (hyperparameters), `network` (architecture and initialisers), `actor`,
//! `critic`, `policy`, `normalizer`, `learner` (construction, acting, the update), `intervene`,
//! `inject`, `redo`, `checkpoint`, `diagnostics`.
//!
//! Not here: environments, replay, the training loop, logging (the `runtime` crate and the
//! `classic` and `humanoid` binaries).
#![warn(missing_docs)]

mod actor;
mod checkpoint;
mod config;
mod critic;
mod diagnostics;
mod inject;
mod intervene;
mod learner;
#[cfg(test)]
mod methods_tests;
mod network;
mod normalizer;
mod policy;
mod redo;
#[cfg(test)]
mod testutil;

pub use actor::Actor;
pub use agent::{Adam, AdamConfig};
pub use config::SacConfig;
pub use critic::{member_views, Critic};
pub use diagnostics::PLASTICITY_METRICS;
pub use learner::Sac;
pub use network::Architecture;
pub use normalizer::RunningNorm;
pub use policy::{squashed_sample, SacPolicy, SquashedGaussian};

pub use agent::{Error, Result};
