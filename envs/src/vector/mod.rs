//! Stepping many environments at once, on a pool of threads, into one contiguous batch.
//!
//! [`VecEnv`] owns `n` environments that implement [`FlatEnv`] (write their observation into a
//! caller's slice) and steps them on `threads` threads: a rayon pool, or with one thread the
//! caller's own (handing every step to a pool thread and waiting for it cost two context
//! switches a step, about 8 % of an Atari step). Observations of all environments live in one
//! buffer `[n, obs_len]`, ready to become a tensor with a single copy.
//!
//! **Autoreset** (same step, as EnvPool and SB3): when environment `i` ends an episode
//! (terminated or truncated), its row of the batch already holds the first observation of the
//! next episode, the observation the episode ended on is in [`VecStep::final_obs`] (row `i`),
//! and `infos[i]` carries the episode statistics. A learner that bootstraps must use the final
//! observation for the transition that ended the episode.
//!
//! [`AsyncVecEnv`] is the asynchronous variant (EnvPool's `batch_size < num_envs`): each step
//! hands back whichever environments finished first, so no thread waits for the slowest
//! environment of a batch. Same autoreset; which environments make up a batch depends on
//! timing, so only each environment's own trajectory is reproducible.

mod asynchronous;

pub use asynchronous::{AsyncStep, AsyncVecEnv};
use rayon::prelude::*;

use crate::{Error, Info, Result, Space};

/// The outcome of one step, without the observation (which was written in place).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transition {
    /// Reward for the step (clipped if the environment clips).
    pub reward: f64,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short.
    pub truncated: bool,
    /// Side information, with episode statistics on the last step.
    pub info: Info,
}

/// An environment that writes observations into a provided slice, for batching.
///
/// Actions travel as `f32` rows of `action_space().dim()` values, so one flat `[n, action_dim]`
/// buffer carries a batch of discrete actions (one value, the index, per row: see
/// [`discrete_action`]) or of continuous ones alike, and goes into replay as it is.
pub trait FlatEnv: Send {
    /// Observation element type (`u8` pixels, `f32` states).
    type Elem: Copy + Default + Send + Sync;

    /// Length of one observation.
    fn obs_len(&self) -> usize;
    /// The action space: `Discrete(n)` takes one value per row, `Box` one per dimension.
    fn action_space(&self) -> Space;
    /// Starts an episode; writes the first observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [Self::Elem]) -> Result<Info>;
    /// Steps with one action row; writes the next observation into `obs`.
    fn step_into(&mut self, action: &[f32], obs: &mut [Self::Elem]) -> Result<Transition>;

    /// The environment's whole state (dynamics, generator, step counters, episode statistics,
    /// wrapper buffers), so a checkpoint can resume the episode in flight exactly; `None` when
    /// the environment cannot, and a resume then starts new episodes. (`&mut`: an emulator
    /// may serialise itself only through a non-const call, as ALE does.)
    fn save_state(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Moves to phase `phase` of a continual protocol whose phases change the task itself
    /// (MinAtar's game sequence): the next reset starts an episode of that phase's task. The
    /// loop calls it before the first reset, at every switch and on evaluation environments;
    /// setting the current phase again changes nothing. Environments with one task ignore it.
    fn set_phase(&mut self, phase: u64) -> Result<()> {
        let _ = phase;
        Ok(())
    }

    /// Restores what [`save_state`](Self::save_state) returned and writes the current
    /// observation into `obs`; afterwards the environment steps exactly as the saved one would.
    fn load_state(&mut self, state: &[u8], obs: &mut [Self::Elem]) -> Result<()> {
        let _ = (state, obs);
        Err(Error::NoSnapshot(std::any::type_name::<Self>()))
    }
}

/// The index a discrete environment reads from its action row: one value, a whole number in
/// `0..n` (an `f32` holds every index exactly up to 2^24).
pub fn discrete_action(action: &[f32], n: usize) -> Result<usize> {
    match action {
        [a] if a.fract() == 0.0 && *a >= 0.0 && (*a as usize) < n => Ok(*a as usize),
        _ => Err(Error::InvalidAction {
            action: format!("{action:?}"),
            reason: format!("expected one whole number in 0..{n} ({n} actions)"),
        }),
    }
}

/// The result of stepping every environment once.
#[derive(Debug)]
pub struct VecStep<'a, T> {
    /// `[n, obs_len]` observations (already reset where an episode ended).
    pub obs: &'a [T],
    /// `[n, obs_len]` last observations of episodes that ended this step (other rows are stale).
    pub final_obs: &'a [T],
    /// Per environment.
    pub transitions: &'a [Transition],
}

/// `n` environments stepped in parallel.
pub struct VecEnv<E: FlatEnv> {
    envs: Vec<E>,
    obs_len: usize,
    action_dim: usize,
    obs: Vec<E::Elem>,
    final_obs: Vec<E::Elem>,
    transitions: Vec<Transition>,
    /// `None`: step on the caller's thread.
    pool: Option<rayon::ThreadPool>,
}

/// One environment's share of a batch: the environment, its observation row, its final
/// observation row and its transition.
type Row<'a, E> = (
    &'a mut E,
    &'a mut [<E as FlatEnv>::Elem],
    &'a mut [<E as FlatEnv>::Elem],
    &'a mut Transition,
);

impl<E: FlatEnv> VecEnv<E> {
    /// Wraps `envs` (at least one, all with the same observation length) and a pool of
    /// `threads` threads (at least one).
    pub fn new(envs: Vec<E>, threads: usize) -> Result<Self> {
        let obs_len = check_envs(&envs, threads)?;
        let pool = if threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("env-{i}"))
                .build()
                .map_err(|e| config("threads", &e.to_string()))?;
            Some(pool)
        };
        let n = envs.len();
        let action_dim = envs[0].action_space().dim();
        Ok(Self {
            envs,
            obs_len,
            action_dim,
            obs: vec![E::Elem::default(); n * obs_len],
            final_obs: vec![E::Elem::default(); n * obs_len],
            transitions: vec![Transition::default(); n],
            pool,
        })
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Always false: a `VecEnv` has at least one environment.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Length of one observation.
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// Values per action row (1 for a discrete action space).
    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// The environments (e.g. for action-space queries).
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every environment; environment `i` gets seed `seed + i` when a seed is given.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[E::Elem]> {
        self.for_each_env(|i, (env, row, _, _)| {
            env.reset_into(seed.map(|s| s.wrapping_add(i as u64)), row)
                .map(|_| ())
        })?;
        Ok(&self.obs)
    }

    /// Starts a new episode in environment `i` alone, without a seed (its generator goes on, as
    /// at an autoreset), and returns its first observation: row `i` of the batch, which it
    /// replaces. For a caller that must abandon an episode in flight (the training loop, after
    /// a step that came back with a non-finite observation but did not end the episode).
    pub fn reset_env(&mut self, i: usize) -> Result<&[E::Elem]> {
        let n = self.envs.len();
        let env = self
            .envs
            .get_mut(i)
            .ok_or_else(|| config("envs", &format!("no environment {i} of {n}")))?;
        let row = &mut self.obs[i * self.obs_len..(i + 1) * self.obs_len];
        env.reset_into(None, row)?;
        Ok(row)
    }

    /// Every environment's [`FlatEnv::save_state`], or `None` if any cannot save.
    pub fn save_states(&mut self) -> Option<Vec<Vec<u8>>> {
        self.envs.iter_mut().map(FlatEnv::save_state).collect()
    }

    /// Restores one state per environment (from [`save_states`](Self::save_states)) instead
    /// of a reset; returns the current observations.
    pub fn load_states(&mut self, states: &[Vec<u8>]) -> Result<&[E::Elem]> {
        if states.len() != self.envs.len() {
            return Err(Error::Snapshot(format!(
                "{} saved environments for {} environments",
                states.len(),
                self.envs.len()
            )));
        }
        self.for_each_env(|i, (env, row, _, _)| env.load_state(&states[i], row))?;
        Ok(&self.obs)
    }

    /// Moves every environment to `phase` (see [`FlatEnv::set_phase`]).
    pub fn set_phase(&mut self, phase: u64) -> Result<()> {
        self.envs.iter_mut().try_for_each(|e| e.set_phase(phase))
    }

    /// Steps every environment with its action row (`actions` is `[n, action_dim]`),
    /// resetting those whose episode ended.
    pub fn step(&mut self, actions: &[f32]) -> Result<VecStep<'_, E::Elem>> {
        let d = self.action_dim;
        if actions.len() != self.envs.len() * d {
            return Err(Error::InvalidAction {
                action: format!("{} action values", actions.len()),
                reason: format!(
                    "expected {d} per environment ({} environments)",
                    self.envs.len()
                ),
            });
        }
        self.for_each_env(|i, (env, row, final_row, transition)| {
            let action = &actions[i * d..(i + 1) * d];
            *transition = step_with_autoreset(env, action, row, final_row)?;
            Ok(())
        })?;
        Ok(VecStep {
            obs: &self.obs,
            final_obs: &self.final_obs,
            transitions: &self.transitions,
        })
    }

    /// Runs `work` on every environment (with its index), on the pool or the caller's thread;
    /// the first error wins.
    fn for_each_env<F>(&mut self, work: F) -> Result<()>
    where
        F: Fn(usize, Row<'_, E>) -> Result<()> + Sync,
    {
        let obs_len = self.obs_len;
        let rows = self
            .envs
            .iter_mut()
            .zip(self.obs.chunks_mut(obs_len))
            .zip(self.final_obs.chunks_mut(obs_len))
            .zip(self.transitions.iter_mut())
            .map(|(((env, row), final_row), transition)| (env, row, final_row, transition))
            .enumerate();
        match &self.pool {
            None => rows.into_iter().try_for_each(|(i, row)| work(i, row)),
            Some(pool) => {
                // A few dozen pointers a step; collecting them keeps one code path for both.
                let rows: Vec<_> = rows.collect();
                pool.install(|| rows.into_par_iter().try_for_each(|(i, row)| work(i, row)))
            }
        }
    }
}

/// The observation length shared by `envs`; an error unless there is at least one
/// environment, all with the same observation length, and at least one thread.
fn check_envs<E: FlatEnv>(envs: &[E], threads: usize) -> Result<usize> {
    if let Some(first) = envs.first() {
        let space = first.action_space();
        if envs.iter().any(|e| e.action_space() != space) {
            return Err(config("envs", "environments differ in action space"));
        }
    }
    let first = envs
        .first()
        .ok_or_else(|| config("envs", "need at least one environment"))?;
    let obs_len = first.obs_len();
    if envs.iter().any(|e| e.obs_len() != obs_len) {
        return Err(config("envs", "environments differ in observation length"));
    }
    if threads == 0 {
        return Err(config("threads", "need at least one thread"));
    }
    Ok(obs_len)
}

/// One step with same-step autoreset: the step's observation goes to `obs`; if the episode
/// ended, it is kept in `final_obs` and `obs` gets the next episode's first observation.
fn step_with_autoreset<E: FlatEnv>(
    env: &mut E,
    action: &[f32],
    obs: &mut [E::Elem],
    final_obs: &mut [E::Elem],
) -> Result<Transition> {
    let transition = env.step_into(action, obs)?;
    if transition.terminated || transition.truncated {
        final_obs.copy_from_slice(obs);
        env.reset_into(None, obs)?;
    }
    Ok(transition)
}

fn config(field: &'static str, reason: &str) -> Error {
    Error::Config {
        field,
        reason: reason.to_owned(),
    }
}
