//! `classic`: an agent on a classic-control task through the same loop as `atari`, so a
//! newcomer sees learning, logs, checkpoints and interventions in a minute on a CPU. DQN on
//! CartPole-v1, Acrobot-v1 and MountainCar-v0, SAC (CleanRL's MLP sizes) on Pendulum-v1.
//! Every task runs as a continual sequence of levels with `levels > 1` ([`runtime::levels`]).

use anyhow::{bail, Result};
use dqn::{Architecture, Dqn};
use envs::classic::{Acrobot, CartPole, MountainCar, Pendulum};
use envs::vector::FlatEnv;
use fire::Method;
use replay::VectorReplay;
use runtime::config::LoopConfig;
use runtime::levels::LevelKeys;
use runtime::{Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::{Experiment, Given};
use crate::dqn_keys::DqnKeys;
use crate::method_keys::MethodKeys;
use crate::sac_keys::SacKeys;

/// The key (or keys) of the other agent that does what an agent's key does, if any: DQN's on
/// the SAC task and SAC's on the DQN tasks.
fn counterpart(key: &str) -> Option<&'static str> {
    Some(match key {
        // DQN keys, SAC's counterparts.
        "learning_rate" => "actor_lr / critic_lr",
        "hidden" => "sac_hidden",
        "target_tau" | "target_update_every" => "critic_tau",
        "epsilon_start" | "epsilon_end" | "exploration_fraction" | "epsilon_hold_warmup" => {
            "initial_temperature / target_entropy_per_dim"
        }
        // SAC keys, DQN's counterparts.
        "actor_lr" | "critic_lr" | "temperature_lr" => "learning_rate",
        "sac_hidden" | "network" | "actor_blocks" | "actor_width" | "critic_blocks"
        | "critic_width" => "hidden",
        "critic_tau" => "target_tau",
        "initial_temperature" | "target_entropy_per_dim" => {
            "epsilon_start / epsilon_end / exploration_fraction"
        }
        _ => return None,
    })
}

/// The tasks `classic` knows.
pub const TASKS: &[&str] = &["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"];

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClassicKeys {
    /// The task: CartPole-v1, Acrobot-v1, MountainCar-v0 (DQN) or Pendulum-v1 (SAC).
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
/// by every task; the `dqn` keys apply to the discrete tasks, the `sac` keys to Pendulum-v1,
/// and setting a key of the agent a task does not train is an error that names the key to
/// use instead.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The task.
    pub env: ClassicKeys,
    /// The continual levels (off by default).
    pub levels: LevelKeys,
    /// The agent on CartPole-v1.
    pub dqn: DqnKeys,
    /// The agent on Pendulum-v1.
    pub sac: SacKeys,
    /// The plasticity methods built into the network and the update (either agent).
    pub methods: MethodKeys,
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
            levels: LevelKeys::default(),
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
            methods: MethodKeys::default(),
        }
    }
}

runtime::sections!(ClassicRunConfig {
    run: LoopConfig,
    env: ClassicKeys,
    levels: LevelKeys,
    dqn: DqnKeys,
    sac: SacKeys,
    methods: MethodKeys,
});

impl ClassicRunConfig {
    fn is_sac(&self) -> bool {
        self.env.env == "Pendulum-v1"
    }

    /// Refuses keys of the agent this task does not train (they would be ignored), naming
    /// this agent's key to use instead. Only keys the user set count, not defaults.
    fn check_agent_keys(&self, given: &Given) -> Result<()> {
        if !TASKS.contains(&self.env.env.as_str()) {
            return Ok(()); // validate names the tasks
        }
        let (other, own, keys) = if self.is_sac() {
            ("DQN", "SAC", runtime::config::field_names::<DqnKeys>())
        } else {
            ("SAC", "DQN", runtime::config::field_names::<SacKeys>())
        };
        let set: Vec<&str> = keys.iter().copied().filter(|k| given.has(k)).collect();
        let Some(first) = set.first() else {
            return Ok(());
        };
        let instead = match counterpart(first) {
            Some(keys) => format!(": use {keys}"),
            None => ", which has no such key".into(),
        };
        let also = match &set[1..] {
            [] => String::new(),
            rest => format!(" (also {other} keys: {})", rest.join(", ")),
        };
        bail!(
            "{first} is a {other} key; {} trains {own}{instead}{also}",
            self.env.env
        )
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

    fn resolve(&mut self, given: &Given) -> Result<()> {
        self.check_agent_keys(given)?;
        self.levels.resolve_steps(&mut self.run, given.steps)
    }

    fn validate(&self) -> Result<()> {
        match self.env.env.as_str() {
            "CartPole-v1" | "Acrobot-v1" | "MountainCar-v0" => {
                self.run.validate(dqn::PLASTICITY_METRICS)?;
                self.dqn.validate()?;
                self.methods.validate(&self.run, false)?;
            }
            "Pendulum-v1" => {
                self.run.validate(sac::PLASTICITY_METRICS)?;
                crate::sac_keys::check_actors(&self.sac, &self.run)?;
                self.sac.validate()?;
                let simba = self.sac.network == crate::sac_keys::SacNetwork::Simba;
                self.methods.validate(&self.run, simba)?;
            }
            other => bail!("unknown env `{other}` (one of: {})", TASKS.join(", ")),
        }
        self.levels.validate(&self.run)
    }

    fn run_name(&self) -> String {
        let agent = if self.is_sac() { "sac" } else { "dqn" };
        format!("{}__{agent}-{}", self.env.env, self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        let mut schedule = self.run.schedule_text(self.metrics())?;
        let levels = match self.levels.level_steps {
            Some(per_level) if self.levels.levels > 1 => {
                if self.levels.intervene_at_level && self.run.intervention != Method::None {
                    schedule = if self.run.schedules(self.metrics())?.is_empty() {
                        "at every level switch".into()
                    } else {
                        format!("{schedule}; at every level switch")
                    };
                }
                format!(
                    " in {} levels of {}",
                    self.levels.levels,
                    fire::schedule::format_steps(per_level)
                )
            }
            _ => String::new(),
        };
        Ok(format!(
            "{} with {} ({schedule}), {} steps{levels}",
            self.env.env,
            self.run.intervention,
            fire::schedule::format_steps(self.run.steps),
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        match self.env.env.as_str() {
            "Pendulum-v1" => self.train_sac(run, resume, config_text),
            "Acrobot-v1" => self.train_dqn(Acrobot::new, run, resume, config_text),
            "MountainCar-v0" => self.train_dqn(MountainCar::new, run, resume, config_text),
            _ => self.train_dqn(CartPole::new, run, resume, config_text),
        }
    }
}

impl ClassicRunConfig {
    /// DQN (an MLP over the state) on a discrete task made by `make`.
    fn train_dqn<E: FlatEnv<Elem = f32> + 'static>(
        &self,
        make: fn() -> E,
        run: &RunDir,
        resume: bool,
        config_text: String,
    ) -> Result<Outcome> {
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
        let probe = make();
        let obs_dim = probe.obs_len();
        let actions = match probe.action_space() {
            envs::Space::Discrete(n) => n,
            other => bail!(
                "{}: DQN needs discrete actions, not {other:?}",
                self.env.env
            ),
        };
        let arch = Architecture::Mlp {
            obs_dim: obs_dim as i64,
            hidden: self.dqn.hidden.clone(),
        };
        let mut dqn_config = self.dqn.dqn_config(&self.run);
        self.methods.apply_dqn(&mut dqn_config);
        let agent: Dqn<f32> = Dqn::new(&arch, actions as i64, dqn_config, device)?;
        let replay = VectorReplay::new(self.run.buffer_size, obs_dim, 1, seeds.replay())?;
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(move |_, _, _| Ok(make())),
            frames_per_step: 1,
            steps_per_decision: 1,
            eval_extras: None,
            levels: self.levels.plan(seeds, obs_dim),
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }

    /// SAC on Pendulum-v1.
    fn train_sac(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
        let probe = Pendulum::new();
        let (agent, replay) = self.sac.build_for(
            &probe,
            &self.methods,
            self.run.buffer_size,
            seeds.replay(),
            device,
        )?;
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(|_, _, _| Ok(Pendulum::new())),
            frames_per_step: 1,
            steps_per_decision: 1,
            eval_extras: None,
            levels: self.levels.plan(seeds, probe.obs_len()),
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }
}
