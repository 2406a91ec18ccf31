//! `humanoid`: SAC on a HumanoidBench H1 task with FIRE (or a baseline) on a schedule.
//! Configuration and glue; the loop is `runtime::train`.
//!
//! One unit for steps: environment steps, as the FIRE paper counts them (with action repeat 2,
//! 1M steps are 500k decisions). Every step a user writes (`steps`, `learning_starts`,
//! `fire_at`, `eval_every`, ...) or reads (log lines, `metrics.csv`'s `step` and `frames`
//! columns, TensorBoard's x axis, `interventions.jsonl`, `charts/SPS`) is one; the loop counts
//! `action_repeat` steps per decision, so step keys must be multiples of it. `replay_ratio` is
//! updates per decision (the paper: 2, one per environment step).

use std::sync::Arc;

use anyhow::{ensure, Result};
use envs::mujoco::{ActionRepeat, HumanoidConfig, HumanoidEnv, HumanoidModel, Task};
use fire::Method;
use runtime::config::LoopConfig;
use runtime::{Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::Experiment;
use crate::method_keys::MethodKeys;
use crate::sac_keys::SacKeys;

/// The task's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HumanoidKeys {
    /// Task: h1-walk-v0, h1-stand-v0, h1-run-v0, h1-balance_simple-v0.
    pub task: String,
    /// Half-width of the uniform reset noise on every joint position.
    pub randomness: f64,
    /// Environment steps per decision (the paper: 2); rewards are summed over them.
    pub action_repeat: usize,
}

impl Default for HumanoidKeys {
    fn default() -> Self {
        Self {
            task: "h1-walk-v0".into(),
            randomness: envs::mujoco::DEFAULT_RANDOMNESS,
            action_repeat: 2,
        }
    }
}

/// Everything a `humanoid` run is configured by, in one flat key space. Defaults are the FIRE
/// paper's SAC protocol (FIRE.md section 3); step keys count environment steps.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanoidRunConfig {
    /// The loop (step keys in environment steps).
    pub run: LoopConfig,
    /// The task.
    pub env: HumanoidKeys,
    /// The agent.
    pub sac: SacKeys,
    /// The plasticity methods built into the networks and the update.
    pub methods: MethodKeys,
}

impl Default for HumanoidRunConfig {
    fn default() -> Self {
        Self {
            run: LoopConfig {
                steps: 1_000_000,
                envs: 1,
                env_threads: 1,
                actors: 0,
                buffer_size: 1_000_000,
                // 5,000 random decisions.
                learning_starts: 10_000,
                // Two updates per decision (one per environment step).
                replay_ratio: 2.0,
                batch_size: 256,
                n_step: 1,
                gamma: 0.99,
                // Every 10k decisions, 10 deterministic episodes.
                eval_every: 20_000,
                eval_steps: 0,
                eval_episodes: 10,
                eval_envs: 1,
                log_every: 2_000,
                plasticity_every: 20_000,
                checkpoint_every: 100_000,
                checkpoint_replay: true,
                intervention: Method::Fire,
                // Batch-256 products of these sizes gain little from more CPU threads, and
                // libtorch's threads spin against the environment's when cores are shared.
                torch_threads: 1,
                ..LoopConfig::default()
            },
            env: HumanoidKeys::default(),
            sac: SacKeys::default(),
            methods: MethodKeys::default(),
        }
    }
}

runtime::sections!(HumanoidRunConfig {
    run: LoopConfig,
    env: HumanoidKeys,
    sac: SacKeys,
    methods: MethodKeys,
});

/// Return of a uniformly random policy per task (FIRE.md section 3), for the normalised score.
pub fn random_return(task: Task) -> f64 {
    match task {
        Task::Walk => 2.377,
        Task::Stand => 10.545,
        Task::Run => 2.02,
        Task::BalanceSimple => 9.391,
    }
}

/// `eval/success` (1 when the mean evaluation return is at or above the task's success bar)
/// and `eval/normalized_score` (`(R - random) / (bar - random)`).
pub fn eval_extras(task: Task, mean_return: f64) -> Vec<(&'static str, f64)> {
    let bar = task.success_bar();
    let random = random_return(task);
    vec![
        ("eval/success", f64::from(u8::from(mean_return >= bar))),
        (
            "eval/normalized_score",
            (mean_return - random) / (bar - random),
        ),
    ]
}

impl HumanoidRunConfig {
    /// The task (an error listing the tasks for an unknown name).
    pub fn task(&self) -> Result<Task> {
        Ok(Task::from_name(&self.env.task)?)
    }

    /// Checks that every step key is a whole number of decisions (a multiple of
    /// `action_repeat`): the loop moves `action_repeat` steps at a time.
    pub fn check_step_keys(&self) -> Result<()> {
        let r = self.env.action_repeat as u64;
        ensure!(r >= 1, "action_repeat must be at least 1");
        let run = &self.run;
        let keys = [
            ("steps", Some(run.steps)),
            ("learning_starts", Some(run.learning_starts)),
            ("eval_every", Some(run.eval_every)),
            ("eval_steps", Some(run.eval_steps)),
            ("log_every", Some(run.log_every)),
            ("plasticity_every", Some(run.plasticity_every)),
            ("checkpoint_every", Some(run.checkpoint_every)),
            ("fire_every", run.fire_every),
            ("fire_cooldown", Some(run.fire_cooldown)),
        ];
        let fire_at = run.fire_at.iter().map(|&s| ("fire_at", Some(s)));
        for (key, value) in keys.into_iter().chain(fire_at) {
            if let Some(v) = value {
                ensure!(
                    v.is_multiple_of(r),
                    "{key} = {v} is not a multiple of action_repeat = {r} (step keys count \
                     environment steps, {r} per decision)"
                );
            }
        }
        Ok(())
    }

    fn humanoid_config(&self) -> HumanoidConfig {
        HumanoidConfig {
            randomness: self.env.randomness,
            ..HumanoidConfig::default()
        }
    }
}

impl Experiment for HumanoidRunConfig {
    const NAME: &'static str = "humanoid";

    fn loop_config(&self) -> &LoopConfig {
        &self.run
    }

    fn validate(&self) -> Result<()> {
        let task = self.task()?;
        ensure!(
            self.env.randomness.is_finite() && self.env.randomness >= 0.0,
            "randomness must be a non-negative number, got {}",
            self.env.randomness
        );
        self.check_step_keys()?;
        self.run.validate(sac::PLASTICITY_METRICS)?;
        crate::sac_keys::check_actors(&self.sac, &self.run)?;
        self.sac.validate()?;
        let simba = self.sac.network == crate::sac_keys::SacNetwork::Simba;
        self.methods.validate(&self.run, simba)?;
        // The scene files and the MuJoCo library, before any work.
        HumanoidModel::load(task, &self.humanoid_config().assets_dir)?;
        Ok(())
    }

    fn run_name(&self) -> String {
        format!("{}__sac-{}", self.env.task, self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        Ok(format!(
            "{} with {} ({}), {} environment steps (action repeat {}), device {:?}",
            self.env.task,
            self.run.intervention,
            self.run.schedule_text(sac::PLASTICITY_METRICS)?,
            fire::schedule::format_steps(self.run.steps),
            self.env.action_repeat,
            self.run.device.resolve()?
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let task = self.task()?;
        let cfg = &self.run;
        let device = cfg.device.resolve()?;
        let seeds = Seeds::new(cfg.seed);
        tch::manual_seed(seeds.network_init());
        let env_config = self.humanoid_config();
        let model: Arc<HumanoidModel> = HumanoidModel::load(task, &env_config.assets_dir)?;
        let repeat = self.env.action_repeat;
        let make = move || -> envs::Result<ActionRepeat> {
            ActionRepeat::new(HumanoidEnv::with_model(model.clone(), &env_config)?, repeat)
        };
        let (agent, replay) = self.sac.build_for(
            &make()?,
            &self.methods,
            cfg.buffer_size,
            seeds.replay(),
            device,
        )?;
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(move |_, _, _| make()),
            // The loop's steps are environment steps already.
            frames_per_step: 1,
            steps_per_decision: repeat as u64,
            eval_extras: Some(Box::new(move |r| eval_extras(task, r))),
            levels: None,
            config_text,
        };
        runtime::train(cfg, setup, run, resume, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_keys_must_be_whole_decisions() {
        let mut c = HumanoidRunConfig::default();
        c.run.fire_at = vec![500_000];
        c.check_step_keys().unwrap();
        c.run.fire_at = vec![3];
        let err = c.check_step_keys().unwrap_err().to_string();
        assert!(err.contains("fire_at = 3 is not a multiple"), "{err}");
        c.run.fire_at = vec![];
        c.run.eval_every = 1_001;
        let err = c.check_step_keys().unwrap_err().to_string();
        assert!(err.contains("eval_every = 1001"), "{err}");
    }

    #[test]
    fn scores_follow_the_task_bars() {
        let walk = eval_extras(Task::Walk, 700.0);
        assert_eq!(walk[0], ("eval/success", 1.0));
        assert!((walk[1].1 - 1.0).abs() < 1e-12);
        let stand = eval_extras(Task::Stand, 10.545);
        assert_eq!(stand[0], ("eval/success", 0.0));
        assert!(stand[1].1.abs() < 1e-12);
    }
}
