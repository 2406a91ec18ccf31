//! The DQN agent's configuration keys, shared by the binaries that train DQN.

use dqn::{AdamConfig, DqnConfig, EpsilonSchedule, InterventionParts, Loss, RmsPropConfig};
use runtime::config::{steps, LoopConfig};
use serde::{Deserialize, Serialize};

/// DQN's optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DqnOptimizer {
    /// Adam (the FIRE paper's DQN): `learning_rate`, `adam_eps`.
    Adam,
    /// RMSprop as torch.optim defines it: `learning_rate`, `rmsprop_alpha`, `rmsprop_eps`.
    Rmsprop,
    /// Centered RMSprop (the MinAtar reference DQN's).
    RmspropCentered,
}

/// DQN's keys. Defaults are the FIRE paper's DQN (FIRE.md section 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DqnKeys {
    /// The optimiser: adam, rmsprop or rmsprop-centered.
    pub optimizer: DqnOptimizer,
    /// The optimiser's learning rate.
    pub learning_rate: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// RMSprop's smoothing constant (torch's `alpha`).
    pub rmsprop_alpha: f64,
    /// RMSprop's epsilon, added to the square root.
    pub rmsprop_eps: f64,
    /// TD loss: huber or mse.
    #[schemars(with = "String")]
    pub loss: Loss,
    /// Double DQN.
    pub double_dqn: bool,
    /// Steps between target network updates.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub target_update_every: u64,
    /// 1 copies the online network at each target update; less blends (soft updates).
    pub target_tau: f64,
    /// Exploration epsilon at the start.
    pub epsilon_start: f64,
    /// Exploration epsilon at the end of the decay.
    pub epsilon_end: f64,
    /// Fraction of `steps` over which epsilon decays linearly.
    pub exploration_fraction: f64,
    /// Hold epsilon at epsilon_start until learning_starts and decay from there (the FIRE
    /// reference); false decays from step 0 (CleanRL).
    pub epsilon_hold_warmup: bool,
    /// Epsilon during evaluation.
    pub eval_epsilon: f64,
    /// Hidden widths of the MLP Q-network (vector observations only).
    pub hidden: Vec<i64>,
    /// Reset the fully connected layers to theta_0 with FIRE or shrink & perturb.
    pub reset_head: bool,
    /// Copy the online network into the target network after an intervention.
    pub sync_target: bool,
    /// Zero Adam's moments after an intervention (the paper keeps them for DQN).
    pub reset_optimizer: bool,
    /// The networks' compute: fp32, or bf16 (autocast-style: bf16 convolutions and matrix
    /// products, fp32 weights, optimiser state, losses and FIRE).
    #[schemars(with = "String")]
    pub precision: agent::Precision,
}

impl Default for DqnKeys {
    fn default() -> Self {
        let parts = InterventionParts::default();
        Self {
            optimizer: DqnOptimizer::Adam,
            learning_rate: 6.25e-5,
            adam_eps: 1.5e-4,
            rmsprop_alpha: 0.95,
            rmsprop_eps: 0.01,
            loss: Loss::Huber,
            double_dqn: false,
            target_update_every: 2_000,
            target_tau: 1.0,
            epsilon_start: 1.0,
            epsilon_end: 0.01,
            exploration_fraction: 0.1,
            epsilon_hold_warmup: false,
            eval_epsilon: 0.001,
            hidden: vec![64, 64],
            reset_head: parts.reset_head,
            sync_target: parts.sync_target,
            reset_optimizer: parts.reset_optimizer,
            precision: agent::Precision::Fp32,
        }
    }
}

impl DqnKeys {
    /// The learner's settings for a run of `run.steps` steps.
    pub fn dqn_config(&self, run: &LoopConfig) -> DqnConfig {
        DqnConfig {
            gamma: run.gamma,
            adam: AdamConfig {
                lr: self.learning_rate,
                eps: self.adam_eps,
                ..AdamConfig::default()
            },
            rmsprop: match self.optimizer {
                DqnOptimizer::Adam => None,
                rms => Some(RmsPropConfig {
                    lr: self.learning_rate,
                    alpha: self.rmsprop_alpha,
                    eps: self.rmsprop_eps,
                    centered: rms == DqnOptimizer::RmspropCentered,
                }),
            },
            loss: self.loss,
            double: self.double_dqn,
            tau: self.target_tau,
            target_update_every: self.target_update_every,
            epsilon: EpsilonSchedule {
                start: self.epsilon_start,
                end: self.epsilon_end,
                hold_until: if self.epsilon_hold_warmup {
                    run.learning_starts
                } else {
                    0
                },
                decay_steps: (self.exploration_fraction * run.steps as f64).max(1.0),
            },
            eval_epsilon: self.eval_epsilon,
            intervention: InterventionParts {
                reset_head: self.reset_head,
                sync_target: self.sync_target,
                reset_optimizer: self.reset_optimizer,
            },
            precision: self.precision,
            // The plasticity methods' keys are applied on top (`MethodKeys::apply_dqn`).
            ..DqnConfig::default()
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        for (name, v) in [
            ("epsilon_start", self.epsilon_start),
            ("epsilon_end", self.epsilon_end),
            ("eval_epsilon", self.eval_epsilon),
            ("exploration_fraction", self.exploration_fraction),
        ] {
            ensure!(
                (0.0..=1.0).contains(&v),
                "{name} must be in [0, 1], got {v}"
            );
        }
        ensure!(
            (0.0..1.0).contains(&self.rmsprop_alpha),
            "rmsprop_alpha must be in [0, 1), got {}",
            self.rmsprop_alpha
        );
        ensure!(
            self.rmsprop_eps.is_finite() && self.rmsprop_eps >= 0.0,
            "rmsprop_eps must be a finite number >= 0, got {}",
            self.rmsprop_eps
        );
        ensure!(
            self.target_tau > 0.0 && self.target_tau <= 1.0,
            "target_tau must be in (0, 1]"
        );
        ensure!(
            self.target_update_every >= 1,
            "target_update_every must be at least 1"
        );
        ensure!(
            !self.hidden.is_empty() && self.hidden.iter().all(|&h| (1..=65_536).contains(&h)),
            "hidden must list widths in 1..=65536"
        );
        AdamConfig {
            lr: self.learning_rate,
            eps: self.adam_eps,
            ..AdamConfig::default()
        }
        .validate()?;
        Ok(())
    }
}
