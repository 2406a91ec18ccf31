//! `classic`: an agent on a classic-control task through the same loop as `atari`, so a
//! newcomer sees learning, logs, checkpoints and interventions in a minute on a CPU. DQN on
//! CartPole-v1, SAC (CleanRL's MLP sizes) on Pendulum-v1.

use anyhow::{bail, Result};
use dqn::{Architecture, Dqn};
use envs::classic::{CartPole, Pendulum};
use fire::Method;
use replay::VectorReplay;
use runtime::config::LoopConfig;
use runtime::{Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::Experiment;
use crate::dqn_keys::DqnKeys;
use crate::sac_keys::SacKeys;

/// The tasks `classic` knows.
pub const TASKS: &[&str] = &["CartPole-v1", "Pendulum-v1"];

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClassicKeys {
    /// The task: CartPole-v1 (DQN) or Pendulum-v1 (SAC).
    pub env: String,
}

impl Default for ClassicKeys {
    fn default() -> Self {
        Self {
            env: "CartPole-v1".into(),
        }
    }
}

/// A `classic` run's configuration. Defaults solve CartPole-v1 in about a minute on a CPU
/// (measured: greedy return 500 within 60k steps with seed 1). The loop's defaults are shared
/// by both tasks; the `dqn` keys apply to CartPole-v1, the `sac` keys to Pendulum-v1.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The task.
    pub env: ClassicKeys,
    /// The agent on CartPole-v1.
    pub dqn: DqnKeys,
    /// The agent on Pendulum-v1.
    pub sac: SacKeys,
}

impl Default for ClassicRunConfig {
    fn default() -> Self {
        Self {
            run: LoopConfig {
                steps: 60_000,
                envs: 1,
                env_threads: 1,
                buffer_size: 50_000,
                learning_starts: 1_000,
                replay_ratio: 1.0,
                batch_size: 64,
                eval_every: 5_000,
                eval_steps: 0,
                eval_episodes: 20,
                log_every: 1_000,
                plasticity_every: 5_000,
                checkpoint_every: 20_000,
                intervention: Method::None,
                device: fire::DeviceChoice::Cpu,
                torch_threads: 1,
                ..LoopConfig::default()
            },
            env: ClassicKeys::default(),
            dqn: DqnKeys {
                learning_rate: 1e-3,
                adam_eps: 1e-8,
                loss: dqn::Loss::Mse,
                double_dqn: true,
                target_update_every: 250,
                epsilon_end: 0.05,
                exploration_fraction: 1.0 / 6.0,
                eval_epsilon: 0.0,
                ..DqnKeys::default()
            },
            sac: SacKeys::cleanrl(),
        }
    }
}

runtime::sections!(ClassicRunConfig {
    run: LoopConfig,
    env: ClassicKeys,
    dqn: DqnKeys,
    sac: SacKeys,
});

impl ClassicRunConfig {
    fn is_sac(&self) -> bool {
        self.env.env == "Pendulum-v1"
    }

    fn metrics(&self) -> &'static [&'static str] {
        if self.is_sac() {
            sac::PLASTICITY_METRICS
        } else {
            dqn::PLASTICITY_METRICS
        }
    }
}

impl Experiment for ClassicRunConfig {
    const NAME: &'static str = "classic";

    fn loop_config(&self) -> &LoopConfig {
        &self.run
    }

    fn validate(&self) -> Result<()> {
        match self.env.env.as_str() {
            "CartPole-v1" => {
                self.run.validate(dqn::PLASTICITY_METRICS)?;
                self.dqn.validate()
            }
            "Pendulum-v1" => {
                self.run.validate(sac::PLASTICITY_METRICS)?;
                crate::sac_keys::check_actors(&self.sac, &self.run)?;
                self.sac.validate()
            }
            other => bail!("unknown env `{other}` (one of: {})", TASKS.join(", ")),
        }
    }

    fn run_name(&self) -> String {
        let agent = if self.is_sac() { "sac" } else { "dqn" };
        format!("{}__{agent}-{}", self.env.env, self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        Ok(format!(
            "{} with {} ({}), {} steps",
            self.env.env,
            self.run.intervention,
            self.run.schedule_text(self.metrics())?,
            fire::schedule::format_steps(self.run.steps),
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
        if self.is_sac() {
            let (agent, replay) = self.sac.build_for(
                &Pendulum::new(),
                self.run.buffer_size,
                seeds.replay(),
                device,
            )?;
            let setup = Setup {
                agent,
                replay,
                make_env: Box::new(|_, _, _| Ok(Pendulum::new())),
                frames_per_step: 1,
                eval_extras: None,
                config_text,
            };
            return runtime::train(&self.run, setup, run, resume, true);
        }
        let arch = Architecture::Mlp {
            obs_dim: 4,
            hidden: self.dqn.hidden.clone(),
        };
        let agent: Dqn<f32> = Dqn::new(&arch, 2, self.dqn.dqn_config(&self.run), device)?;
        let replay = VectorReplay::new(self.run.buffer_size, 4, 1, seeds.replay())?;
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(|_, _, _| Ok(CartPole::new())),
            frames_per_step: 1,
            eval_extras: None,
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }
}
