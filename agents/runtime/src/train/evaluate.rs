//! One evaluation of the agent: its own environments and generator, so training is unchanged
//! by it, and abandoned as soon as a stop is requested.
//!
//! An evaluation is a pure function of the agent, the step and the level's offset: its
//! environments are built for it, seeded from the evaluation stream of [`Seeds`](crate::seeds::Seeds) at the step.
//! That is what lets a stop abandon one (a long Atari evaluation would otherwise outlast the
//! 30 s a cluster gives between SIGTERM and SIGKILL) and a resume redo it with the same
//! result.

use agent::{ActMode, Agent};
use anyhow::{ensure, Result};
use envs::vector::{FlatEnv, VecEnv};
use rand_chacha::ChaCha8Rng;

use super::step::{all_finite, Finite};
use super::{EnvFactory, EnvPurpose};
use crate::config::LoopConfig;
use crate::levels::Shift;
use crate::StopSignal;

/// Runs one evaluation of the agent at a step, observations shifted by an offset (it owns the
/// environment factory); `None` when the stop signal's flag abandoned it.
pub(super) type Evaluator<'a, A> =
    dyn Fn(&mut A, u64, Level<'_>, StopSignal) -> Result<Option<f64>> + 'a;

/// The level an evaluation plays: its observation offset (levels of offsets) and its phase
/// ([`FlatEnv::set_phase`]: the task, in a sequence of tasks; 0 otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Level<'a> {
    pub(super) offset: Option<&'a [f32]>,
    pub(super) phase: u64,
}

/// Mean raw return of the episodes an evaluation seeded with `seed` (the evaluation stream of
/// [`Seeds`](crate::seeds::Seeds) at the step) finished (NaN if none did), or
/// `None` if `stop` was requested before it finished (polled before every vector step). Its
/// own environments and generator; `eval_envs` environments until `eval_steps` steps (in loop
/// steps: `steps_per_decision` per decision) or `eval_episodes` episodes. Every observation the
/// agent sees is shifted by `level.offset` (the current level's, in a run with levels), and
/// its environments play `level.phase`. An episode
/// cut by a non-finite step (see the loop's documentation) counts towards `eval_episodes` but
/// not in the mean; if it did not end there, its environment is reset so that the agent never
/// acts on the broken observation.
pub(super) fn evaluate<A, E>(
    agent: &mut A,
    make_env: &EnvFactory<E>,
    cfg: &LoopConfig,
    seed: u64,
    steps_per_decision: u64,
    level: Level<'_>,
    stop: StopSignal,
) -> Result<Option<f64>>
where
    A: Agent,
    A::Elem: Shift + Finite,
    E: FlatEnv<Elem = A::Elem>,
{
    let shift = |obs: &mut [A::Elem]| {
        if let Some(offset) = level.offset {
            crate::levels::shift_rows(obs, offset);
        }
    };
    use rand::SeedableRng;
    let envs = (0..cfg.eval_envs)
        .map(|i| make_env(EnvPurpose::Evaluate, i, seed.wrapping_add(i as u64)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut vec = VecEnv::new(envs, 1)?;
    vec.set_phase(level.phase)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let obs_len = vec.obs_len();
    let mut obs = vec.reset(Some(seed))?.to_vec();
    ensure!(
        all_finite(&obs),
        "evaluation: a first observation is not finite"
    );
    shift(&mut obs);
    let (mut total, mut scored, mut episodes, mut steps) = (0.0, 0u64, 0u64, 0u64);
    let mut restart = Vec::new();
    while !(cfg.eval_steps > 0 && steps >= cfg.eval_steps
        || cfg.eval_episodes > 0 && episodes >= cfg.eval_episodes)
    {
        if stop.requested() {
            return Ok(None);
        }
        let actions = agent.act(&obs, ActMode::Evaluate, &mut rng)?;
        let step = vec.step(&actions)?;
        for (i, t) in step.transitions.iter().enumerate() {
            let done = t.terminated || t.truncated;
            let source = if done { step.final_obs } else { step.obs };
            let finite = (t.reward as f32).is_finite()
                && all_finite(&source[i * obs_len..(i + 1) * obs_len]);
            match (finite, &t.info.episode) {
                (true, Some(ep)) => {
                    total += ep.episode_return;
                    scored += 1;
                    episodes += 1;
                }
                (true, None) => {}
                (false, ep) => {
                    episodes += u64::from(ep.is_some() || !done);
                    if !done {
                        restart.push(i);
                    }
                }
            }
        }
        obs.copy_from_slice(step.obs);
        for i in restart.drain(..) {
            obs[i * obs_len..(i + 1) * obs_len].copy_from_slice(vec.reset_env(i)?);
        }
        ensure!(
            all_finite(&obs),
            "evaluation: the first observation of a new episode is not finite"
        );
        shift(&mut obs);
        steps += cfg.eval_envs as u64 * steps_per_decision;
    }
    Ok(Some(if scored > 0 {
        total / scored as f64
    } else {
        f64::NAN
    }))
}
