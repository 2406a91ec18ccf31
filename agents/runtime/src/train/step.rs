//! One vector step as the learner receives it, and the check that keeps non-finite steps out
//! of replay.
//!
//! [`step_envs`] steps a [`VecEnv`] (the synchronous loop's, or one actor's slice) and packs
//! what the learner needs into a [`StepMsg`]: the actions, the transitions, and per
//! environment only the part of the next observation replay stores. A step whose reward or
//! observation is not finite is marked in the message and its environment restarted here, so
//! the observation acted on next is always the first of a healthy episode.

use anyhow::{bail, Result};
use envs::vector::{FlatEnv, Transition, VecEnv, VecStep};

/// Observation elements the loop checks for NaN and infinity before replay stores them.
pub trait Finite: Copy {
    /// Whether the value is a finite number (pixels always are).
    fn is_finite(self) -> bool;
}

impl Finite for f32 {
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Finite for u8 {
    fn is_finite(self) -> bool {
        true
    }
}

pub(super) fn all_finite<T: Finite>(values: &[T]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// What an actor sends the learner after stepping its environments once: actions, outcomes
/// and, per environment, only the part of the next observation replay stores.
pub struct StepMsg<T> {
    /// Index of the first environment of the sender.
    pub(super) first_env: usize,
    /// `[n, action_dim]`.
    pub(super) actions: Vec<f32>,
    pub(super) transitions: Vec<Transition>,
    /// Part of each next (or final, when the episode ended) observation.
    pub(super) next_parts: Vec<T>,
    /// Part of the reset observation of environments whose episode ended (or was restarted
    /// after a non-finite step).
    pub(super) reset_parts: Vec<T>,
    /// Per environment: the step's reward or observation was not finite, so it is dropped and
    /// the episode restarted (see the loop's documentation).
    pub(super) nonfinite: Vec<bool>,
}

impl<T: Copy + Default + Finite> StepMsg<T> {
    fn from_step(
        first_env: usize,
        actions: &[f32],
        step: &VecStep<'_, T>,
        obs_len: usize,
        part_len: usize,
    ) -> Self {
        let n = step.transitions.len();
        fn part<T>(batch: &[T], i: usize, obs_len: usize, part_len: usize) -> &[T] {
            &batch[(i + 1) * obs_len - part_len..(i + 1) * obs_len]
        }
        let mut next_parts = Vec::with_capacity(n * part_len);
        let mut reset_parts = vec![T::default(); n * part_len];
        let mut nonfinite = vec![false; n];
        for (i, t) in step.transitions.iter().enumerate() {
            let done = t.terminated || t.truncated;
            let source = if done { step.final_obs } else { step.obs };
            next_parts.extend_from_slice(part(source, i, obs_len, part_len));
            // The whole observation, not only the stored part: the agent acts on all of it.
            nonfinite[i] = !((t.reward as f32).is_finite()
                && all_finite(&source[i * obs_len..(i + 1) * obs_len]));
            if done {
                reset_parts[i * part_len..(i + 1) * part_len]
                    .copy_from_slice(part(step.obs, i, obs_len, part_len));
            }
        }
        Self {
            first_env,
            actions: actions.to_vec(),
            transitions: step.transitions.to_vec(),
            next_parts,
            reset_parts,
            nonfinite,
        }
    }
}

/// Steps `vec` with `actions` (its environments are `first_env..` of the run) into a message
/// and writes the observations to act on next into `obs`. An environment whose step was not
/// finite and did not end its episode is reset here, so that `obs` and the message's reset
/// part hold the first observation of its new episode; an observation that begins an episode
/// and is not finite is an error.
pub(super) fn step_envs<E>(
    vec: &mut VecEnv<E>,
    actions: &[f32],
    first_env: usize,
    obs: &mut [E::Elem],
    part_len: usize,
) -> Result<StepMsg<E::Elem>>
where
    E: FlatEnv,
    E::Elem: Finite,
{
    let obs_len = vec.obs_len();
    let mut msg = {
        let step = vec.step(actions)?;
        let msg = StepMsg::from_step(first_env, actions, &step, obs_len, part_len);
        obs.copy_from_slice(step.obs);
        msg
    };
    for (i, t) in msg.transitions.iter().enumerate() {
        let done = t.terminated || t.truncated;
        if !done && msg.nonfinite[i] {
            let row = vec.reset_env(i)?;
            obs[i * obs_len..(i + 1) * obs_len].copy_from_slice(row);
            msg.reset_parts[i * part_len..(i + 1) * part_len]
                .copy_from_slice(&row[obs_len - part_len..]);
        }
        if (done || msg.nonfinite[i]) && !all_finite(&obs[i * obs_len..(i + 1) * obs_len]) {
            bail!(
                "environment {}: the first observation of a new episode is not finite",
                first_env + i
            );
        }
    }
    Ok(msg)
}
