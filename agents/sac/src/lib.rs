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
//! * [`Sac`] holds actor, critics, target critics, temperature, three [`agent::Adam`]s, theta_0
//!   and the [`RunningNorm`] observation normaliser (updated while acting in warm-up and in
//!   training).
//!   [`Sac::update`] is one step in the reference's order: actor, temperature, critic, target.
//!   [`Sac::intervene`] applies FIRE, full reset or shrink & perturb, then rebuilds the
//!   optimisers, restores the initial temperature and copies the critic into the target.
//! * `Sac` implements [`agent::Agent`], so the runtime's loop trains it; [`SacPolicy`] is the
//!   CPU actor copy for actor threads.
//!
//! Not here: environments, replay, the training loop, logging (the `runtime` crate and the
//! `classic` and `humanoid` binaries).
#![warn(missing_docs)]

mod learner;
mod network;
mod normalizer;

pub use agent::{Adam, AdamConfig};
pub use learner::{Sac, SacConfig, SacPolicy, PLASTICITY_METRICS};
pub use network::{member_views, squashed_sample, Actor, Architecture, Critic};
pub use normalizer::RunningNorm;

pub use agent::{Error, Result};
