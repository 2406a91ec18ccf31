//! The synchronous loop (`actors = 0`): acting, stepping and learning take turns on the
//! caller's thread, so a seed gives one run, exactly.
//!
//! It owns the training environments, so it also owns what only it can do: continuing the
//! episodes in flight from a checkpoint's environment states, the continual levels' offsets
//! and switches (every environment stops at one step count), and the environments' states
//! for each checkpoint.

use agent::Agent;
use anyhow::{ensure, Result};
use envs::vector::{FlatEnv, VecEnv};
use replay::Replay;

use super::learner::{Learner, Tick};
use super::step::{step_envs, Finite};
use crate::config::LoopConfig;
use crate::levels::Shift;
use crate::StopSignal;

/// Runs the loop until `cfg.steps` or a stop; leaves the environments' states in
/// `learner.final_envs` for the last checkpoint.
pub(super) fn run<A, E, R>(
    learner: &mut Learner<'_, A, R>,
    envs: Vec<E>,
    stop: &StopSignal,
) -> Result<()>
where
    A: Agent,
    A::Elem: Shift + Finite,
    E: FlatEnv<Elem = A::Elem>,
    R: Replay<Elem = A::Elem>,
{
    let cfg = learner.cfg;
    let mut vec = VecEnv::new(envs, cfg.env_threads)?;
    let obs_len = vec.obs_len();
    let part_len = learner.replay.part_len();
    let levels = learner.levels.clone();
    if let Some(plan) = &levels {
        ensure!(
            !plan.shifts()
                || (part_len == obs_len && plan.offset(0).map(<[f32]>::len) == Some(obs_len)),
            "levels need a replay that stores whole observations of {obs_len} values"
        );
    }
    let shift = |level: u64, rows: &mut [A::Elem]| {
        if let Some(plan) = &levels {
            plan.shift(level, rows);
        }
    };
    let snapshot = |vec: &mut VecEnv<E>| env_states(cfg, vec);
    // Loop steps one vector step covers.
    let stride = cfg.envs as u64 * learner.steps_per_decision;
    // A resume with the replay and the environments' states continues the episodes in
    // flight (replay already holds their beginnings); otherwise new episodes start, seeded by
    // the step. Environments hold raw observations: the level's offset is the loop's. The
    // rest of a step a stop interrupted comes first: it may end a level, and so change the
    // offset the observations are seen with.
    let mut obs = match learner.resume_envs.take() {
        Some(states) => {
            let mut obs = vec.load_states(&states)?.to_vec();
            if learner.resume_tick(&mut || snapshot(&mut vec))? == Tick::Stopped {
                learner.final_envs = snapshot(&mut vec);
                return Ok(());
            }
            shift(learner.state.level.level, &mut obs);
            obs
        }
        None => {
            if learner.resume_tick(&mut || None)? == Tick::Stopped {
                return Ok(());
            }
            // In a sequence of tasks, the current level's (a saved state holds its own).
            vec.set_phase(learner.state.level.level)?;
            let mut obs = vec
                .reset(Some(learner.seeds.reset(learner.state.step)))?
                .to_vec();
            shift(learner.state.level.level, &mut obs);
            learner.start_episodes(0, &obs, obs_len)?;
            obs
        }
    };
    while learner.state.step < cfg.steps {
        if stop.requested() {
            learner.progress.println("stopping: writing a checkpoint");
            break;
        }
        let mode = learner.mode();
        let actions = learner.agent.act(&obs, mode, &mut learner.rng)?;
        let mut msg = step_envs(&mut vec, &actions, 0, &mut obs, part_len)?;
        if let Some(plan) = &levels {
            let level = learner.state.level.level;
            plan.shift(level, &mut obs);
            plan.shift(level, &mut msg.next_parts);
            plan.shift(level, &mut msg.reset_parts);
            let after = learner.state.step + stride;
            if after >= plan.end_of(level) && level + 1 < plan.levels() {
                // The switch: episodes in flight end here as truncated (their last
                // observation, with the old offset, is in `next_parts`), and every environment
                // starts a new episode seen with the new offset.
                for t in &mut msg.transitions {
                    t.truncated |= !t.terminated;
                }
                vec.set_phase(level + 1)?;
                obs.copy_from_slice(vec.reset(Some(learner.seeds.reset(after)))?);
                plan.shift(level + 1, &mut obs);
                msg.reset_parts.copy_from_slice(&obs);
            }
        }
        learner.ingest(&msg)?;
        if learner.tick(stride, &mut || snapshot(&mut vec))? == Tick::Stopped {
            break;
        }
    }
    learner.final_envs = snapshot(&mut vec);
    Ok(())
}

/// The environments' states for a checkpoint: only with a saved replay (without it, a resume
/// starts new episodes anyway), and only if every environment can save its state.
fn env_states<E: FlatEnv>(cfg: &LoopConfig, vec: &mut VecEnv<E>) -> Option<Vec<Vec<u8>>> {
    cfg.checkpoint_replay.then(|| vec.save_states()).flatten()
}
