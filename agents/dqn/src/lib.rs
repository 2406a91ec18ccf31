//! DQN: Q-networks, an optimiser whose state the agent owns, and the learner.
//!
//! # Brief overview
//!
//! * [`QNetwork`] ([`Architecture::NatureCnn`] for Atari, [`Architecture::Mlp`] for vector
//!   observations) keeps its parameters under role-named paths: `q.encoder.*` and `q.head.*`.
//! * [`Adam`] is Adam/AdamW with its moments as named tensors, so interventions can keep or
//!   reset them and checkpoints can save them.
//! * [`Dqn`] holds the online and target networks, the optimiser and theta_0; [`Dqn::update`]
//!   is one TD step on a [`replay::Batch`]; [`Dqn::intervene`] applies FIRE, full reset or
//!   shrink & perturb with the FIRE paper's DQN semantics ([`InterventionConfig`]).
//!
//! The training loop (environments, replay, schedules, logging) is the runtime's business.
#![warn(missing_docs)]

mod adam;
mod learner;
mod network;

pub use adam::{Adam, AdamConfig};
pub use learner::{Dqn, DqnConfig, DqnIntervention, InterventionConfig, Loss, UpdateStats};
pub use network::{Architecture, QNetwork};

/// What went wrong in the DQN learner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter out of range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A loss or value became NaN or infinite: training diverged.
    #[error("{what} is {value}: training diverged (lower the learning rate?)")]
    NonFinite {
        /// What.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// A parameter became NaN or infinite: training diverged.
    #[error(
        "parameter `{name}` holds NaN or infinity: training diverged (lower the learning rate?)"
    )]
    NonFiniteParameter {
        /// The parameter.
        name: String,
    },
    /// A checkpoint does not match the learner.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// From the `fire` crate.
    #[error(transparent)]
    Fire(#[from] fire::Error),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
