//! What every agent shares, and the one interface the training loop drives.
//!
//! # Brief overview
//!
//! * [`Agent`]: acting on a batch of observations, one gradient update from a replay
//!   [`Batch`], logged statistics, interventions ([`fire::MethodConfig`]), plasticity
//!   measurement, checkpoint state, the divergence check, and a CPU [`Policy`] copy for actor
//!   threads with the weights it needs. `dqn` and `sac` implement it; the loop in `runtime` is
//!   generic over it, so no agent writes its own loop.
//! * [`ActMode`]: random warm-up, training at a step (the agent's exploration schedule), or
//!   evaluation.
//! * [`Adam`]: Adam/AdamW owning its moments as named tensors, so an intervention can keep,
//!   reset or mask them ([`redo::recycle`] zeroes the moments of recycled neurons) and a
//!   checkpoint can save them; its step is libtorch's fused kernel (through the C shim
//!   `torch_shim.cpp`, as tch does not bind it).
//! * [`RmsProp`]: `torch.optim.RMSprop` (centered or not) with the same named state, for the
//!   MinAtar reference DQN; [`Optimizer`] is either, behind the calls agents make.
//! * [`Precision`] and [`autocast`]: opt-in bf16 compute for forward and backward passes with
//!   fp32 master weights, optimiser state and losses.
//! * [`methods`]: the plasticity methods built into networks and updates rather than applied
//!   as interventions: [`Activation`] (ReLU, CReLU) and LayerNorm ([`NetworkOptions`]), and
//!   [`UpdateAids`], a regulariser on the loss and normalize-and-project's projection.
//! * [`reset_layers`]: the `layer-reset` key's patterns (a list or comma-separated text of
//!   parameter or layer globs) and the check that each names some parameter.
//! * [`DeviceStats`]: loss and value sums kept on the device until a log line reads them.
//! * [`state`]: the checkpoint key scheme (`online.*`, `target.*`, `initial.*`, `adam.*`),
//!   theta_0 in and out of a checkpoint ([`state::initial_tensors`], [`state::load_initial`])
//!   or grown with new parameters ([`state::extend_initial`]), and [`state::check_finite`].
//! * [`zero_grads`] before a backward pass and [`polyak`], a target network's step toward its
//!   online network (a copy at `tau = 1`).
//! * [`td_target`]: `r + discount * next`, the bootstrap masked by a select where the
//!   discount is zero, so a terminal transition's target never depends on its next value.
//!
//! Agents depend on this crate, never on each other.
#![warn(missing_docs)]

mod adam;
mod fused;
pub mod methods;
mod optimizer;
mod params;
mod precision;
pub mod redo;
pub mod reset_layers;
mod rmsprop;
pub mod state;
mod stats;
mod target;

pub use adam::{Adam, AdamConfig};
pub use methods::{Activation, NetworkOptions, UpdateAids, UpdateMethods};
pub use optimizer::{Optimizer, OptimizerConfig};
pub use params::{clear_grads, polyak, polyak_lists, zero_grads};
pub use precision::{autocast, Precision};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use stats::DeviceStats;
pub use target::td_target;

use fire::{MethodConfig, NamedTensors, ParamReport};
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use tch::Tensor;

/// What went wrong in an agent.
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
    /// A checkpoint does not match the agent.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The intervention does not apply to this agent (or not now).
    #[error("intervention {method}: {reason}")]
    Intervention {
        /// The method.
        method: fire::Method,
        /// Why.
        reason: String,
    },
    /// From the `fire` crate.
    #[error(transparent)]
    Fire(#[from] fire::Error),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActMode {
    /// Random warm-up before learning (and the refill after a resume without replay): uniform
    /// random actions; the network need not run.
    Warmup,
    /// Training at `step` (agent steps summed over environments): explore as the agent's
    /// schedule says.
    Train {
        /// The loop's step count.
        step: u64,
    },
    /// Evaluation: (nearly) greedy, or the policy's mean.
    Evaluate,
}

/// A policy an actor thread owns: a CPU copy of what the agent acts with.
pub trait Policy: Send + 'static {
    /// Observation element (`u8` pixels, `f32` states).
    type Elem;

    /// Action rows `[n, action_dim]` for observations `[n, obs_len]`.
    fn act(&mut self, obs: &[Self::Elem], mode: ActMode, rng: &mut ChaCha8Rng) -> Result<Vec<f32>>;
    /// Takes newly published weights (from [`Agent::policy_weights`]).
    fn load_weights(&mut self, weights: &[(String, Tensor)]) -> Result<()>;
}

/// A learning agent as the training loop sees it.
///
/// Observations arrive as flat slices of `[n, obs_len]` elements and actions leave as flat
/// `[n, action_dim]` `f32` rows (a discrete action is one value, its index), the layout of
/// `envs::vector` and `replay`.
pub trait Agent {
    /// Observation element (`u8` pixels, `f32` states).
    type Elem: tch::kind::Element + Copy + Default + Send + Sync + 'static;
    /// The CPU policy actor threads act with.
    type Policy: Policy<Elem = Self::Elem>;

    /// Shape of one observation (`[4, 84, 84]`, `[obs_dim]`).
    fn obs_shape(&self) -> &[i64];
    /// Action rows for `obs` (`[n, obs_len]`).
    fn act(&mut self, obs: &[Self::Elem], mode: ActMode, rng: &mut ChaCha8Rng) -> Result<Vec<f32>>;
    /// Sees the observations that enter training (first and next observations of every
    /// step), e.g. to update a running normaliser. Most agents need nothing.
    fn observe(&mut self, _obs: &[Self::Elem]) -> Result<()> {
        Ok(())
    }
    /// One gradient update. It should not wait for the device: statistics stay there until
    /// [`take_stats`](Self::take_stats).
    fn update(&mut self, batch: &Batch<Self::Elem>) -> Result<()>;
    /// Called once the updates due at `step` are done; `stride` steps passed since the last
    /// call (periodic work on the step clock, such as DQN's target network copy).
    fn after_step(&mut self, _step: u64, _stride: u64) -> Result<()> {
        Ok(())
    }
    /// Scalars to log (`losses/...` averaged since the last call, exploration state), read
    /// from the device; an error if training diverged.
    fn take_stats(&mut self, mode: ActMode) -> Result<Vec<(&'static str, f64)>>;
    /// Applies an intervention with this agent's semantics; `probe` is a batch of observations
    /// (`[n, obs_shape]` on any device) for methods that score neurons (ReDo).
    fn intervene(
        &mut self,
        method: &MethodConfig,
        probe: Option<&Tensor>,
    ) -> Result<Vec<ParamReport>>;
    /// Plasticity diagnostics on a probe batch (`plasticity/<name>` when logged).
    fn plasticity(&self, probe: &Tensor) -> Result<Vec<(&'static str, f64)>>;
    /// Names [`plasticity`](Self::plasticity) reports, for triggers on them.
    fn plasticity_metrics(&self) -> &'static [&'static str];
    /// The trainable parameters (shallow clones), for weight and gradient norms.
    fn params(&self) -> NamedTensors;
    /// Everything a checkpoint must hold to resume exactly.
    fn state_tensors(&self) -> NamedTensors;
    /// Restores [`state_tensors`](Self::state_tensors).
    fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()>;
    /// An error if a pending statistic or any parameter is NaN or infinite: called before a
    /// checkpoint replaces the last good one.
    fn check_finite(&self) -> Result<()>;
    /// A new CPU policy for an actor thread.
    fn policy(&self) -> Result<Self::Policy>;
    /// CPU copies of the weights a [`Policy`] needs.
    fn policy_weights(&self) -> Result<NamedTensors>;
}
