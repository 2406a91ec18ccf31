//! The learner's hyperparameters: [`SacConfig`], with the FIRE paper's SimBa SAC and CleanRL's
//! `sac_continuous_action.py` as presets.

use agent::{AdamConfig, NetworkOptions, Precision, UpdateMethods};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Learner hyperparameters. [`SacConfig::simba`] is the FIRE paper's SAC, [`SacConfig::cleanrl`]
/// CleanRL's `sac_continuous_action.py`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacConfig {
    /// The actor's optimiser.
    pub actor_adam: AdamConfig,
    /// The critics' optimiser.
    pub critic_adam: AdamConfig,
    /// The temperature's optimiser (on `log alpha`).
    pub temperature_adam: AdamConfig,
    /// Temperature alpha at the start and after an intervention.
    pub initial_temperature: f64,
    /// Target entropy per action dimension (the target is this times the dimension).
    pub target_entropy_per_dim: f64,
    /// Polyak factor of the target critic, once per update.
    pub tau: f64,
    /// Normalise observations with running statistics (updated with every batch the agent
    /// acts on in warm-up and in training, never in evaluation or updates).
    pub normalize_observations: bool,
    /// Compute precision of the networks' forward and backward passes in the update: `fp32`,
    /// or `bf16` (autocast: bfloat16 matrix products on fp32 master weights, fp32 optimiser
    /// state, losses, log-probabilities and interventions). Absent from older configurations:
    /// fp32.
    #[serde(default)]
    pub precision: Precision,
    /// The MLP's hidden activation and LayerNorm (SimBa ignores them). Absent from older
    /// configurations: plain.
    #[serde(default)]
    pub network: NetworkOptions,
    /// The regulariser and normalize-and-project's projection, applied to the actor's and the
    /// critics' updates. Absent from older configurations: none.
    #[serde(default)]
    pub methods: UpdateMethods,
    /// Parameter globs `layer-reset` resets to theta_0. Absent from older configurations:
    /// the output layers of the actor and of the critics.
    #[serde(
        default = "default_reset_layers",
        deserialize_with = "agent::reset_layers::patterns"
    )]
    pub reset_layers: Vec<String>,
}

/// What `layer-reset` resets unless told otherwise: the actor's mean and log-std heads and
/// the critics' Q heads (Plasticine's "final" layer reset).
pub fn default_reset_layers() -> Vec<String> {
    ["actor.mean.*", "actor.log_std.*", "critic.out.*"]
        .map(String::from)
        .to_vec()
}

impl SacConfig {
    /// The FIRE paper's SimBa SAC (FIRE.md section 3): AdamW lr 1e-4 weight decay 1e-2 for
    /// actor and critic, temperature from 0.01 with its own Adam (lr 1e-4, no decay), target
    /// entropy -|A|/2, tau 0.005, observations normalised.
    pub fn simba() -> Self {
        let adamw = AdamConfig {
            lr: 1e-4,
            weight_decay: 1e-2,
            ..AdamConfig::default()
        };
        Self {
            actor_adam: adamw,
            critic_adam: adamw,
            temperature_adam: AdamConfig {
                lr: 1e-4,
                ..AdamConfig::default()
            },
            initial_temperature: 0.01,
            target_entropy_per_dim: -0.5,
            tau: 0.005,
            normalize_observations: true,
            precision: Precision::Fp32,
            network: NetworkOptions::default(),
            methods: UpdateMethods::default(),
            reset_layers: default_reset_layers(),
        }
    }

    /// CleanRL's `sac_continuous_action.py`: Adam lr 3e-4 (actor) and 1e-3 (critics and
    /// temperature), alpha from 1 (`log alpha = 0`), target entropy -|A|, tau 0.005, raw
    /// observations.
    pub fn cleanrl() -> Self {
        let adam = |lr| AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        Self {
            actor_adam: adam(3e-4),
            critic_adam: adam(1e-3),
            temperature_adam: adam(1e-3),
            initial_temperature: 1.0,
            target_entropy_per_dim: -1.0,
            tau: 0.005,
            normalize_observations: false,
            precision: Precision::Fp32,
            network: NetworkOptions::default(),
            methods: UpdateMethods::default(),
            reset_layers: default_reset_layers(),
        }
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.actor_adam.validate()?;
        self.critic_adam.validate()?;
        self.temperature_adam.validate()?;
        if !(self.initial_temperature.is_finite() && self.initial_temperature > 0.0) {
            return Err(Error::Config {
                field: "initial_temperature",
                reason: format!("must be positive, got {}", self.initial_temperature),
            });
        }
        if !self.target_entropy_per_dim.is_finite() {
            return Err(Error::Config {
                field: "target_entropy_per_dim",
                reason: "must be a number".into(),
            });
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return Err(Error::Config {
                field: "tau",
                reason: format!("must be in (0, 1], got {}", self.tau),
            });
        }
        Ok(())
    }
}
