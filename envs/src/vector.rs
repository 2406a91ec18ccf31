//! Stepping many environments at once, on a pool of threads, into one contiguous batch.
//!
//! [`VecEnv`] owns `n` environments that implement [`FlatEnv`] (write their observation into a
//! caller's slice) and a rayon pool of `threads` threads. Observations of all environments live
//! in one buffer `[n, obs_len]`, ready to become a tensor with a single copy.
//!
//! **Autoreset** (same step, as EnvPool and SB3): when environment `i` ends an episode
//! (terminated or truncated), its row of the batch already holds the first observation of the
//! next episode, the observation the episode ended on is in [`VecStep::final_obs`] (row `i`),
//! and `infos[i]` carries the episode statistics. A learner that bootstraps must use the final
//! observation for the transition that ended the episode.

use rayon::prelude::*;

use crate::{Error, Info, Result};

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
pub trait FlatEnv: Send {
    /// Observation element type (`u8` pixels, `f32` states).
    type Elem: Copy + Default + Send + Sync;
    /// Action type.
    type Action: Copy + Send + Sync;

    /// Length of one observation.
    fn obs_len(&self) -> usize;
    /// Starts an episode; writes the first observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [Self::Elem]) -> Result<Info>;
    /// Steps; writes the next observation into `obs`.
    fn step_into(&mut self, action: Self::Action, obs: &mut [Self::Elem]) -> Result<Transition>;
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
    obs: Vec<E::Elem>,
    final_obs: Vec<E::Elem>,
    transitions: Vec<Transition>,
    pool: rayon::ThreadPool,
}

impl<E: FlatEnv> VecEnv<E> {
    /// Wraps `envs` (at least one, all with the same observation length) and a pool of
    /// `threads` threads (at least one).
    pub fn new(envs: Vec<E>, threads: usize) -> Result<Self> {
        let Some(first) = envs.first() else {
            return Err(Error::Config {
                field: "envs",
                reason: "need at least one environment".into(),
            });
        };
        let obs_len = first.obs_len();
        if envs.iter().any(|e| e.obs_len() != obs_len) {
            return Err(Error::Config {
                field: "envs",
                reason: "environments differ in observation length".into(),
            });
        }
        if threads == 0 {
            return Err(Error::Config {
                field: "threads",
                reason: "need at least one thread".into(),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("env-{i}"))
            .build()
            .map_err(|e| Error::Config {
                field: "threads",
                reason: e.to_string(),
            })?;
        let n = envs.len();
        Ok(Self {
            envs,
            obs_len,
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

    /// The environments (e.g. for action-space queries).
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every environment; environment `i` gets seed `seed + i` when a seed is given.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[E::Elem]> {
        let obs_len = self.obs_len;
        let (envs, obs) = (&mut self.envs, &mut self.obs);
        self.pool.install(|| {
            envs.par_iter_mut()
                .zip(obs.par_chunks_mut(obs_len))
                .enumerate()
                .try_for_each(|(i, (env, row))| {
                    env.reset_into(seed.map(|s| s.wrapping_add(i as u64)), row)
                        .map(|_| ())
                })
        })?;
        Ok(&self.obs)
    }

    /// Steps every environment with its action, resetting those whose episode ended.
    pub fn step(&mut self, actions: &[E::Action]) -> Result<VecStep<'_, E::Elem>> {
        if actions.len() != self.envs.len() {
            return Err(Error::InvalidAction {
                action: format!("{} actions", actions.len()),
                reason: format!("expected one per environment ({})", self.envs.len()),
            });
        }
        let obs_len = self.obs_len;
        let Self {
            envs,
            obs,
            final_obs,
            transitions,
            pool,
            ..
        } = self;
        pool.install(|| {
            envs.par_iter_mut()
                .zip(obs.par_chunks_mut(obs_len))
                .zip(final_obs.par_chunks_mut(obs_len))
                .zip(transitions.par_iter_mut())
                .zip(actions.par_iter())
                .try_for_each(|((((env, row), final_row), transition), &action)| {
                    *transition = env.step_into(action, row)?;
                    if transition.terminated || transition.truncated {
                        final_row.copy_from_slice(row);
                        env.reset_into(None, row)?;
                    }
                    Ok::<(), Error>(())
                })
        })?;
        Ok(VecStep {
            obs: &self.obs,
            final_obs: &self.final_obs,
            transitions: &self.transitions,
        })
    }
}
