//! `classic`: an agent on a classic-control task through the same loop as `atari`, so a
//! newcomer sees learning, logs, checkpoints and interventions in a minute on a CPU. DQN on
//! CartPole-v1 (SAC on Pendulum-v1 joins it with the SAC agent).

use anyhow::{bail, Result};
use dqn::{Architecture, Dqn};
use envs::classic::CartPole;
use fire::Method;
use replay::VectorReplay;
use runtime::config::LoopConfig;
use runtime::{Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::Experiment;
use crate::dqn_keys::DqnKeys;

/// The tasks `classic` knows.
pub const TASKS: &[&str] = &["CartPole-v1"];

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClassicKeys {
    /// The task: CartPole-v1.
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
/// (measured: greedy return 500 within 60k steps with seed 1).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The task.
    pub env: ClassicKeys,
    /// The agent.
    pub dqn: DqnKeys,
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
        }
    }
}

runtime::sections!(ClassicRunConfig {
    run: LoopConfig,
    env: ClassicKeys,
    dqn: DqnKeys,
});

impl Experiment for ClassicRunConfig {
    const NAME: &'static str = "classic";

    fn loop_config(&self) -> &LoopConfig {
        &self.run
    }

    fn validate(&self) -> Result<()> {
        match self.env.env.as_str() {
            "CartPole-v1" => {}
            "Pendulum-v1" => bail!(
                "env Pendulum-v1 needs SAC, which this build does not have yet (tasks: {})",
                TASKS.join(", ")
            ),
            other => bail!("unknown env `{other}` (one of: {})", TASKS.join(", ")),
        }
        self.run.validate(dqn::PLASTICITY_METRICS)?;
        self.dqn.validate()
    }

    fn run_name(&self) -> String {
        format!("{}__dqn-{}", self.env.env, self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        Ok(format!(
            "{} with {} ({}), {} steps",
            self.env.env,
            self.run.intervention,
            self.run.schedule_text(dqn::PLASTICITY_METRICS)?,
            fire::schedule::format_steps(self.run.steps),
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
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
