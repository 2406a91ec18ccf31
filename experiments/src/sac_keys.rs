//! The SAC agent's configuration keys, shared by the binaries that train SAC (`classic` on
//! Pendulum-v1, `humanoid`).

use anyhow::Result;
use sac::{AdamConfig, Architecture, SacConfig};
use serde::{Deserialize, Serialize};

/// Which networks SAC uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SacNetwork {
    /// CleanRL's MLPs (`sac_hidden` widths).
    Mlp,
    /// The FIRE paper's SimBa actor and critics.
    Simba,
}

/// SAC's keys. Defaults are the FIRE paper's SimBa SAC (FIRE.md section 3); [`SacKeys::cleanrl`]
/// gives CleanRL's `sac_continuous_action.py`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SacKeys {
    /// Networks: simba or mlp.
    pub network: SacNetwork,
    /// Hidden widths of the MLP actor and critics (network = mlp).
    pub sac_hidden: Vec<i64>,
    /// SimBa actor residual blocks.
    pub actor_blocks: usize,
    /// SimBa actor width.
    pub actor_width: i64,
    /// SimBa critic residual blocks.
    pub critic_blocks: usize,
    /// SimBa critic width.
    pub critic_width: i64,
    /// Actor learning rate.
    pub actor_lr: f64,
    /// Critic learning rate.
    pub critic_lr: f64,
    /// Learning rate of the temperature (log alpha).
    pub temperature_lr: f64,
    /// AdamW decoupled weight decay of actor and critics (0 = Adam).
    pub weight_decay: f64,
    /// Temperature alpha at the start and after an intervention.
    pub initial_temperature: f64,
    /// Target entropy per action dimension (the paper: -0.5, CleanRL: -1).
    pub target_entropy_per_dim: f64,
    /// Polyak factor of the target critics per update.
    pub critic_tau: f64,
    /// Normalise observations with running mean and variance (updated with every observation
    /// acted on in warm-up and training, as the FIRE reference).
    pub normalize_observations: bool,
    /// The networks' compute: fp32, or bf16 (autocast-style: bf16 matrix products, fp32
    /// weights, optimiser state, losses and FIRE).
    #[schemars(with = "String")]
    pub precision: agent::Precision,
}

impl Default for SacKeys {
    fn default() -> Self {
        let simba = SacConfig::simba();
        Self {
            network: SacNetwork::Simba,
            sac_hidden: vec![256, 256],
            actor_blocks: 1,
            actor_width: 128,
            critic_blocks: 2,
            critic_width: 512,
            actor_lr: simba.actor_adam.lr,
            critic_lr: simba.critic_adam.lr,
            temperature_lr: simba.temperature_adam.lr,
            weight_decay: simba.actor_adam.weight_decay,
            initial_temperature: simba.initial_temperature,
            target_entropy_per_dim: simba.target_entropy_per_dim,
            critic_tau: simba.tau,
            normalize_observations: simba.normalize_observations,
            precision: agent::Precision::Fp32,
        }
    }
}

impl SacKeys {
    /// CleanRL's `sac_continuous_action.py` (MLP 256x256, Adam, autotuned alpha from 1).
    pub fn cleanrl() -> Self {
        let c = SacConfig::cleanrl();
        Self {
            network: SacNetwork::Mlp,
            actor_lr: c.actor_adam.lr,
            critic_lr: c.critic_adam.lr,
            temperature_lr: c.temperature_adam.lr,
            weight_decay: c.actor_adam.weight_decay,
            initial_temperature: c.initial_temperature,
            target_entropy_per_dim: c.target_entropy_per_dim,
            critic_tau: c.tau,
            normalize_observations: c.normalize_observations,
            precision: agent::Precision::Fp32,
            ..Self::default()
        }
    }

    /// The networks.
    pub fn architecture(&self) -> Architecture {
        match self.network {
            SacNetwork::Mlp => Architecture::Mlp {
                hidden: self.sac_hidden.clone(),
            },
            SacNetwork::Simba => Architecture::Simba {
                actor_blocks: self.actor_blocks,
                actor_width: self.actor_width,
                critic_blocks: self.critic_blocks,
                critic_width: self.critic_width,
            },
        }
    }

    /// The learner's settings.
    pub fn sac_config(&self) -> SacConfig {
        let adam = |lr, weight_decay| AdamConfig {
            lr,
            weight_decay,
            ..AdamConfig::default()
        };
        SacConfig {
            actor_adam: adam(self.actor_lr, self.weight_decay),
            critic_adam: adam(self.critic_lr, self.weight_decay),
            temperature_adam: adam(self.temperature_lr, 0.0),
            initial_temperature: self.initial_temperature,
            target_entropy_per_dim: self.target_entropy_per_dim,
            tau: self.critic_tau,
            normalize_observations: self.normalize_observations,
            precision: self.precision,
            // The plasticity methods' keys are applied on top (`MethodKeys::apply_sac`).
            ..SacConfig::simba()
        }
    }

    /// Checks every value before any work.
    pub fn validate(&self) -> Result<()> {
        self.sac_config().validate()?;
        let widths_ok = match self.network {
            SacNetwork::Mlp => {
                !self.sac_hidden.is_empty() && self.sac_hidden.iter().all(|&w| w > 0)
            }
            SacNetwork::Simba => self.actor_width > 0 && self.critic_width > 0,
        };
        anyhow::ensure!(
            widths_ok,
            "network widths must be positive (sac_hidden, actor_width, critic_width)"
        );
        Ok(())
    }
}

/// SAC's observation normaliser is updated by the learner while it acts; actor threads act
/// with published statistics and would never update it, so that combination is refused.
pub fn check_actors(keys: &SacKeys, run: &runtime::config::LoopConfig) -> Result<()> {
    anyhow::ensure!(
        !(keys.normalize_observations && run.actors > 0),
        "actors = {} with normalize_observations = true: SAC updates its observation \
         statistics while acting on the learner's thread; use actors = 0",
        run.actors
    );
    Ok(())
}

impl SacKeys {
    /// The agent these keys describe (with `methods`' network and update), sized for `env`'s observations and action box, and its
    /// replay of `buffer_size` transitions (sampled with `replay_seed`).
    pub fn build_for(
        &self,
        env: &impl envs::vector::FlatEnv,
        methods: &crate::method_keys::MethodKeys,
        buffer_size: usize,
        replay_seed: u64,
        device: tch::Device,
    ) -> Result<(sac::Sac, replay::VectorReplay)> {
        let (low, high) = box_bounds(&env.action_space())?;
        let obs_dim = env.obs_len();
        let mut config = self.sac_config();
        methods.apply_sac(&mut config);
        let agent = sac::Sac::new(
            &self.architecture(),
            obs_dim as i64,
            &low,
            &high,
            config,
            device,
        )?;
        let replay = replay::VectorReplay::new(buffer_size, obs_dim, low.len(), replay_seed)?;
        Ok((agent, replay))
    }
}

/// The bounds of a box action space, or an error for a discrete one.
pub fn box_bounds(space: &envs::Space) -> Result<(Vec<f32>, Vec<f32>)> {
    match space {
        envs::Space::Box { low, high } => Ok((low.clone(), high.clone())),
        envs::Space::Discrete(n) => {
            anyhow::bail!("SAC needs continuous actions, the task has {n} discrete ones")
        }
    }
}
