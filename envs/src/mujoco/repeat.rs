//! Action repeat (2 in the FIRE paper's SAC on HumanoidBench).

use crate::vector::Transition;
use crate::{Env, EpisodeTracker, Error, Info, Result, Space, Step};

use super::HumanoidEnv;

/// Repeats each action `repeat` times on a [`HumanoidEnv`]: rewards are summed, the repeat
/// stops early when the episode terminates or is truncated, and the inner time limit keeps
/// counting environment (not agent) steps, so an episode has at most 1000 / `repeat` agent
/// steps. Episode statistics: the return summed over agent steps, the length in environment
/// steps (the unit the FIRE paper and the `humanoid` binary count in). `reward_terms` and `sim_warnings` are those of
/// the last inner step (warnings: summed).
#[derive(Debug)]
pub struct ActionRepeat {
    env: HumanoidEnv,
    repeat: usize,
    tracker: EpisodeTracker,
}

impl ActionRepeat {
    /// Wraps `env`; `repeat` must be at least 1.
    pub fn new(env: HumanoidEnv, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(Error::Config {
                field: "action_repeat",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            env,
            repeat,
            tracker: EpisodeTracker::default(),
        })
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &HumanoidEnv {
        &self.env
    }

    /// The repeat count.
    pub fn repeat(&self) -> usize {
        self.repeat
    }

    /// See [`HumanoidEnv::obs_len`].
    pub fn obs_len(&self) -> usize {
        self.env.obs_len()
    }

    /// See [`HumanoidEnv::action_space`].
    pub fn action_space(&self) -> Space {
        self.env.action_space()
    }

    /// See [`HumanoidEnv::reset_into`].
    pub fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<Info> {
        self.tracker.clear();
        self.env.reset_into(seed, obs)
    }

    /// Repeats a float32 action; see [`HumanoidEnv::step_into`].
    pub fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<Transition> {
        self.repeat_with(|env| env.step_into(action, obs))
    }

    /// Repeats a float64 action; see [`HumanoidEnv::step_f64`].
    pub fn step_f64(&mut self, action: &[f64]) -> Result<Transition> {
        self.repeat_with(|env| env.step_f64(action))
    }

    fn repeat_with(
        &mut self,
        mut step: impl FnMut(&mut HumanoidEnv) -> Result<Transition>,
    ) -> Result<Transition> {
        let mut total = Transition::default();
        let mut warnings = 0u32;
        for _ in 0..self.repeat {
            let t = step(&mut self.env)?;
            total.reward += t.reward;
            warnings = warnings.saturating_add(t.info.sim_warnings);
            total.terminated = t.terminated;
            total.truncated = t.truncated;
            total.info = t.info;
            if t.terminated || t.truncated {
                break;
            }
        }
        total.info.sim_warnings = warnings;
        // The inner environment's statistics, when its episode ended: their length counts
        // environment steps.
        let inner = total.info.episode;
        total.info.episode = self
            .tracker
            .record(total.reward, total.terminated || total.truncated)
            .map(|ep| crate::EpisodeStats {
                length: inner.map_or(ep.length, |e| e.length),
                ..ep
            });
        Ok(total)
    }
}

impl Env for ActionRepeat {
    type Obs = Vec<f64>;
    type Action = Vec<f64>;

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f64>, Info)> {
        self.tracker.clear();
        self.env.reset(seed)
    }

    fn step(&mut self, action: &Vec<f64>) -> Result<Step<Vec<f64>>> {
        let t = self.step_f64(action)?;
        Ok(Step {
            obs: self.env.observation().to_vec(),
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }
}

impl crate::vector::FlatEnv for ActionRepeat {
    type Elem = f32;

    fn obs_len(&self) -> usize {
        ActionRepeat::obs_len(self)
    }

    fn action_space(&self) -> Space {
        ActionRepeat::action_space(self)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<Info> {
        ActionRepeat::reset_into(self, seed, obs)
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<Transition> {
        ActionRepeat::step_into(self, action, obs)
    }

    fn save_state(&mut self) -> Option<Vec<u8>> {
        let inner = self.env.save_state()?;
        let mut w = crate::snapshot::Writer::new("action-repeat");
        Some(
            w.u64(self.repeat as u64)
                .bytes(&inner)
                .tracker(&self.tracker)
                .finish(),
        )
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        let mut r = crate::snapshot::Reader::new("action-repeat", state)?;
        if r.u64()? != self.repeat as u64 {
            return Err(Error::Snapshot("saved with another action repeat".into()));
        }
        let inner = r.bytes()?;
        let tracker = r.tracker()?;
        r.finish()?;
        self.env.load_state(inner, obs)?;
        self.tracker = tracker;
        Ok(())
    }
}
