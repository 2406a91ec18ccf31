//! The training loop every agent runs in, generic over the agent, its environments and its
//! replay.
//!
//! One vector step at a time: act, step the environments, hand each environment's step to
//! replay (only the part of the observation a step adds: the newest frame for Atari), run
//! exactly the updates the replay ratio allows (a counter, so the ratio never depends on
//! speed), then the agent's periodic work, plasticity diagnostics, the intervention schedule,
//! logs, evaluation and checkpoints (the learner's tick).
//!
//! **Two modes.** With `actors = 0` acting, stepping and learning take turns on this thread
//! (stepping itself may be parallel): exactly reproducible for a seed on the CPU. With
//! `actors = N`, N threads each own a slice of the environments and a CPU [`agent::Policy`],
//! and send [`StepMsg`]s to the learner over a bounded channel; the learner ingests them with
//! the same code, publishes weights every `publish_every` updates and after interventions, and
//! actors wait on a condition variable while they are more than `max_lead_updates` updates
//! ahead of the replay ratio (the same rate limiter the synchronous loop counts its updates
//! with), so the ratio holds whatever the threads' speeds. An actor that panics or fails stops
//! the run: the learner's state is consistent, so it checkpoints, then reports the thread and
//! the message.
//!
//! **Non-finite steps.** A step whose reward or next (or final) observation holds NaN or
//! infinity (a physics step that blew up) is not a transition of the task: the loop drops it
//! (replay never sees it), restarts that environment's episode (the environment's own reset
//! when the step ended the episode, [`VecEnv::reset_env`](envs::vector::VecEnv::reset_env)
//! when it did not, so the agent never acts on the broken observation), counts it in
//! `charts/nonfinite_steps` (cumulative, logged at the step it happened, with one terminal
//! line) and goes on. The episode it cut is not logged as one (`charts/episodic_return` would
//! mix in a reward the task never gave). Observations that begin an episode must be finite:
//! one that is not stops the run.
//!
//! **Stops.** Ctrl-C and SIGTERM are polled before every vector step and inside evaluations.
//! A stop during an evaluation abandons it (nothing of it is logged) and checkpoints at once,
//! recording where the step's work stopped; a resume redoes that evaluation and the rest of
//! that step's work (the intervention, a level's end, logs, the checkpoint) before the next
//! step, so it computes what the uninterrupted run computes.
//!
//! **Resume.** A checkpoint holds the agent's tensors and [`LoopState`] (counters, scheduler,
//! the exploration generator). With `checkpoint_replay` it also holds the replay and, in
//! synchronous mode, every environment's state ([`FlatEnv::save_state`]) and a fixed probe:
//! a run killed at any moment and resumed from its last checkpoint then computes exactly what
//! the uninterrupted run computes (the fault-injection test in `experiments/tests` checks the
//! weights and every logged row). A checkpoint whose environment states are not one per
//! `envs` is refused. Without a saved replay the loop refills it at random for
//! `learning_starts` steps, with new episodes; the replay ratio then counts from the end of
//! the refill.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`train()`]: building the run, loading a checkpoint, choosing the mode, the last checkpoint; [`Setup`], [`Outcome`], [`LoopState`] |
//! | `learner` | the learner: ingesting steps, the tick (updates, diagnostics, schedule, interventions, levels, logs, checkpoints), saving |
//! | `step` | one vector step as the learner receives it ([`StepMsg`]) and the non-finite check ([`Finite`]) |
//! | `rate` | the replay-ratio rate limiter both modes use |
//! | `evaluate` | one evaluation on its own environments, abandoned on a stop |
//! | `synchronous` | the `actors = 0` loop |
//! | `threaded` | the `actors > 0` loop: actor threads, weight publication, failures |

mod evaluate;
mod learner;
mod rate;
mod step;
mod synchronous;
mod threaded;

use std::time::Instant;

use agent::Agent;
use anyhow::{ensure, Context, Result};
use envs::vector::FlatEnv;
use fire::schedule::{Scheduler, SchedulerState};
use replay::Replay;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::LoopConfig;
use crate::levels::{LevelPlan, LevelProgress, Shift};
use crate::seeds::Seeds;
use crate::{checkpoint, MetricsLogger, Progress, RunDir, StopSignal};
use learner::{Learner, PendingTick};

pub use step::{Finite, StepMsg};
pub use threaded::ActorFailed;

/// Which environments a factory is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvPurpose {
    /// Training environments (learning rewards, e.g. clipped).
    Train,
    /// Evaluation environments (raw rewards).
    Evaluate,
}

/// Extra scalars `(tag, value)` from an evaluation's mean return.
pub type EvalExtras = dyn Fn(f64) -> Vec<(&'static str, f64)>;

/// Builds environment `index` for `purpose` with construction seed `seed`.
pub type EnvFactory<E> = dyn Fn(EnvPurpose, usize, u64) -> envs::Result<E> + Send + Sync;

/// What a binary hands the loop: its agent, replay and environment factory.
pub struct Setup<A: Agent, E, R> {
    /// The agent (networks built after seeding with [`Seeds::network_init`]).
    pub agent: A,
    /// The replay buffer.
    pub replay: R,
    /// Builds environments.
    pub make_env: Box<EnvFactory<E>>,
    /// Emulator frames (or physics steps) per loop step, for the logs' frame column.
    pub frames_per_step: u64,
    /// Loop steps one decision (one transition of one environment) counts: 1 where the
    /// protocol counts decisions (Atari's agent steps, classic control), the action repeat
    /// where it counts environment steps (HumanoidBench, as the FIRE paper does). Every step
    /// a user reads or writes (keys, logs, events, checkpoints) is in loop steps; the replay
    /// ratio stays updates per decision.
    pub steps_per_decision: u64,
    /// Extra scalars from an evaluation's mean return (e.g. a success rate).
    pub eval_extras: Option<Box<EvalExtras>>,
    /// Continual levels (see [`crate::levels`]); `None` for an ordinary run.
    pub levels: Option<LevelPlan>,
    /// The resolved configuration (TOML), written to the run directory once the run can start
    /// (after the checkpoint loaded, on a resume), so a failed resume changes nothing.
    pub config_text: String,
}

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done.
    Finished,
    /// Ctrl-C or SIGTERM: checkpointed at `step`.
    Stopped {
        /// The step of the checkpoint.
        step: u64,
        /// The signal (2 SIGINT, 15 SIGTERM).
        signal: i32,
    },
}

/// Counters and generator states a checkpoint restores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoopState {
    /// Loop steps done, summed over environments (agent steps, or environment steps where a
    /// decision counts several: `Setup::steps_per_decision`).
    pub step: u64,
    /// Gradient updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
    scheduler: SchedulerState,
    rng: Vec<u8>,
    /// Steps before which actions are random and nothing is learned: `learning_starts`, or
    /// after a resume without a saved replay, the resume step plus `learning_starts`.
    pub warmup_until: u64,
    /// Updates done when that warm-up began (nonzero after such a resume). The replay ratio
    /// counts from there.
    pub updates_before_warmup: u64,
    /// The level being played and its returns so far (runs with levels).
    #[serde(default)]
    pub level: LevelProgress,
    /// Steps dropped because their reward or observation was not finite (`charts/nonfinite_steps`).
    #[serde(default)]
    pub nonfinite_steps: u64,
    /// The rest of step `step`'s work, when a stop abandoned one of its evaluations (a resume
    /// does it first). Absent from checkpoints taken between steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<PendingTick>,
}

/// What a checkpoint gives a resume besides the agent's tensors and the loop's state.
struct Restored {
    /// The fixed probe (`probe = "fixed"`), if it was drawn.
    probe: Option<Tensor>,
    /// Every environment's state, to continue the episodes in flight.
    envs: Option<Vec<Vec<u8>>>,
}

/// Trains as `cfg` says, logging into `run`; resumes from its checkpoint when `resume`.
pub fn train<A, E, R>(
    cfg: &LoopConfig,
    setup: Setup<A, E, R>,
    run: &RunDir,
    resume: bool,
    progress_to_terminal: bool,
) -> Result<Outcome>
where
    A: Agent,
    A::Elem: Shift + Finite,
    E: FlatEnv<Elem = A::Elem> + 'static,
    R: Replay<Elem = A::Elem>,
{
    let seeds = Seeds::new(cfg.seed);
    if let Some(plan) = &setup.levels {
        ensure!(
            <A::Elem as Shift>::SHIFTS || !plan.shifts(),
            "levels are for flat observations, not pixels"
        );
        ensure!(cfg.actors == 0, "levels need actors = 0");
    }
    if cfg.torch_threads > 0 {
        tch::set_num_threads(cfg.torch_threads as i32);
    }
    let make_env = setup.make_env;
    let envs = (0..cfg.envs)
        .map(|i| make_env(EnvPurpose::Train, i, seeds.environment(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let action_dim = envs[0].action_space().dim();
    let spd = setup.steps_per_decision;
    ensure!(spd >= 1, "steps_per_decision must be at least 1");
    let evaluator = move |agent: &mut A, step: u64, level: evaluate::Level<'_>, stop| {
        let seed = seeds.evaluation(step);
        evaluate::evaluate(agent, &*make_env, cfg, seed, spd, level, stop)
    };
    let metrics = setup.agent.plasticity_metrics();
    let mut agent = setup.agent;
    let mut replay = setup.replay;
    let mut scheduler = Scheduler::new(cfg.schedules(metrics)?);
    let mut rng = seeds.exploration();
    let mut state = LoopState {
        step: 0,
        updates: 0,
        episodes: 0,
        scheduler: scheduler.state(),
        rng: Vec::new(),
        warmup_until: cfg.learning_starts,
        updates_before_warmup: 0,
        level: LevelProgress::default(),
        nonfinite_steps: 0,
        pending: None,
    };
    // Leftovers of writes a killed process never finished.
    for dir in [run.path().to_owned(), run.checkpoint_dir()] {
        fire::tensor_file::remove_stale_temp_files(&dir)?;
    }
    let mut restored = Restored {
        probe: None,
        envs: None,
    };
    // Everything that can fail on a resume happens before the run directory changes.
    if resume {
        let dir = run.checkpoint_dir();
        let (tensors, saved): (Vec<(String, Tensor)>, LoopState) = checkpoint::load(&dir)?;
        let (mine, agents): (Vec<_>, Vec<_>) = tensors
            .into_iter()
            .partition(|(n, _)| n.starts_with("loop."));
        agent.load_state(&agents)?;
        scheduler = scheduler.with_state(saved.scheduler);
        rng = replay::generator_from(&saved.rng)
            .context("checkpoint: exploration generator state")?;
        state = saved;
        let saved_replay = match cfg.checkpoint_replay {
            true => checkpoint::file(&dir, "replay")?,
            false => None,
        };
        if let Some(path) = saved_replay {
            replay = R::load(&path)?;
            restored = restore_loop_tensors(&mine, cfg.envs)?;
        } else {
            // Without a saved replay, refill it before learning again.
            state.warmup_until = state.step + cfg.learning_starts;
            state.updates_before_warmup = state.updates;
        }
    }
    run.write_config(&setup.config_text)?;
    let log = MetricsLogger::open_at(
        run.path(),
        setup.frames_per_step,
        resume.then_some(state.step),
    )?;
    let total = if progress_to_terminal { cfg.steps } else { 0 };
    // From here on a signal is a stop the loop handles (before, it ends the process: nothing
    // has changed yet).
    let stop = StopSignal::install();
    let mut learner = Learner {
        cfg,
        run,
        agent,
        replay,
        progress: Progress::new(total, state.step),
        sps: (Instant::now(), state.step),
        state,
        scheduler,
        seeds,
        rng,
        log,
        probe: restored.probe,
        resume_envs: restored.envs,
        final_envs: None,
        last_return: None,
        frames_per_step: setup.frames_per_step,
        steps_per_decision: spd,
        action_dim,
        eval_extras: setup.eval_extras,
        evaluator: Box::new(evaluator),
        levels: setup.levels,
        last_eval: None,
        stop,
    };
    let result = if cfg.actors == 0 {
        synchronous::run(&mut learner, envs, &stop)
    } else {
        threaded::run(&mut learner, envs, &stop)
    };
    // A clean end (done, Ctrl-C, SIGTERM) or a failed actor checkpoints where the learner is.
    // After an error of the learner itself, a diverged loss above all, the last periodic
    // checkpoint is kept rather than overwritten with weights that may be the cause; the logs
    // are flushed either way.
    let envs = learner.final_envs.take();
    let saved = match &result {
        Ok(()) => learner.save(envs),
        // An actor's failure or a log write error (a full disk): the learner is consistent.
        Err(e) if e.is::<ActorFailed>() || e.is::<crate::Error>() => learner.save(envs),
        Err(_) => learner.log.flush().map_err(Into::into),
    };
    learner.progress.finish();
    result?;
    saved?;
    Ok(
        if learner.state.step >= cfg.steps && learner.state.pending.is_none() {
            Outcome::Finished
        } else {
            Outcome::Stopped {
                step: learner.state.step,
                signal: stop.signal().unwrap_or(2),
            }
        },
    )
}

/// The fixed probe and the environments' states among a checkpoint's `loop.*` tensors (they
/// are saved with the replay). States of a number of environments other than `envs` are an
/// error: they would silently restart every episode in flight, or leave replay streams open.
fn restore_loop_tensors(mine: &[(String, Tensor)], envs: usize) -> Result<Restored> {
    let probe = mine
        .iter()
        .find(|(n, _)| n == "loop.probe")
        .map(|(_, t)| t.shallow_clone());
    let mut states: Vec<&(String, Tensor)> = mine
        .iter()
        .filter(|(n, _)| n.starts_with("loop.env."))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    let states: Vec<Vec<u8>> = states
        .into_iter()
        .map(|(_, t)| Vec::<u8>::try_from(t).context("checkpoint: environment state"))
        .collect::<Result<_>>()?;
    // None saved: actor threads own their environments, or some environment cannot save its
    // state; the episodes start over, as documented.
    ensure!(
        states.is_empty() || states.len() == envs,
        "checkpoint: it holds the states of {} environments but the run has envs = {envs}; \
         resume with envs = {} (the saved replay has one stream per environment)",
        states.len(),
        states.len()
    );
    Ok(Restored {
        probe,
        envs: (!states.is_empty()).then_some(states),
    })
}
