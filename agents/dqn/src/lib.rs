//! DQN: Q-networks, an optimiser whose state the agent owns, and the learner.
//!
//! # Brief overview
//!
//! * [`QNetwork`] ([`Architecture::NatureCnn`] for Atari, [`Architecture::MinatarCnn`] for
//!   MinAtar, [`Architecture::Mlp`] for vector
//!   observations) keeps its parameters under role-named paths: `q.encoder.*` and `q.head.*`.
//! * [`Dqn`] holds the online and target networks, the optimiser and theta_0; [`Dqn::update`]
//!   is one TD step on a [`replay::Batch`]; [`Dqn::intervene`] applies FIRE, full reset or
//!   shrink & perturb with the FIRE paper's DQN semantics ([`InterventionParts`]).
//! * `Dqn` implements [`agent::Agent`], so the runtime's loop trains it; [`DqnPolicy`] is the
//!   CPU copy actor threads act with.
//!
//! The training loop (environments, replay, schedules, logging) is the runtime's business.
#![warn(missing_docs)]

mod learner;
mod network;

pub use agent::{Adam, AdamConfig, RmsPropConfig};
pub use learner::{
    Dqn, DqnConfig, DqnPolicy, EpsilonSchedule, InterventionParts, Loss, UpdateStats,
    PLASTICITY_METRICS,
};
pub use network::{Architecture, QNetwork};

pub use agent::{Error, Result};
