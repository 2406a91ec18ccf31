//! The training loop every agent runs in, generic over the agent, its environments and its
//! replay.
//!
//! One vector step at a time: act, step the environments, hand each environment's step to
//! replay (only the part of the observation a step adds: the newest frame for Atari), run
//! exactly the updates the replay ratio allows (a counter, so the ratio never depends on
//! speed), then the agent's periodic work, plasticity diagnostics, the intervention schedule,
//! logs, evaluation and checkpoints ([`Learner::tick`]).
//!
//! **Two modes.** With `actors = 0` acting, stepping and learning take turns on this thread
//! (stepping itself may be parallel): exactly reproducible for a seed on the CPU. With
//! `actors = N`, N threads each own a slice of the environments and a CPU [`Policy`], and send
//! [`StepMsg`]s to the learner over a bounded channel; the learner ingests them with the same
//! code, publishes weights every `publish_every` updates and after interventions, and actors
//! wait on a condition variable while they are more than `max_lead_updates` updates ahead of
//! the replay ratio, so the ratio holds whatever the threads' speeds. An actor that panics or
//! fails stops the run: the learner's state is consistent, so it checkpoints, then reports the
//! thread and the message.
//!
//! **Non-finite steps.** A step whose reward or next (or final) observation holds NaN or
//! infinity (a physics step that blew up) is not a transition of the task: the loop drops it
//! (replay never sees it), restarts that environment's episode (the environment's own reset
//! when the step ended the episode, [`VecEnv::reset_env`] when it did not, so the agent never
//! acts on the broken observation), counts it in `charts/nonfinite_steps` (cumulative, logged
//! at the step it happened, with one terminal line) and goes on. The episode it cut is not
//! logged as one (`charts/episodic_return` would mix in a reward the task never gave).
//! Observations that begin an episode must be finite: one that is not stops the run.
//!
//! **Resume.** A checkpoint holds the agent's tensors and [`LoopState`] (counters, scheduler,
//! the exploration generator). With `checkpoint_replay` it also holds the replay and, in
//! synchronous mode, every environment's state ([`FlatEnv::save_state`]) and a fixed probe:
//! a run killed at any moment and resumed from its last checkpoint then computes exactly what
//! the uninterrupted run computes (the fault-injection test in `experiments/tests` checks the
//! weights and every logged row). Without a saved replay the loop refills it at random for
//! `learning_starts` steps, with new episodes; the replay ratio then counts from the end of
//! the refill.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use agent::{ActMode, Agent, Policy};
use anyhow::{bail, ensure, Context, Result};
use envs::vector::{FlatEnv, Transition, VecEnv, VecStep};
use fire::schedule::{Scheduler, SchedulerState};
use fire::Method;
use rand_chacha::ChaCha8Rng;
use replay::{NStep, Replay};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::{LoopConfig, ProbeMode};
use crate::levels::{LevelPlan, LevelProgress, Shift};
use crate::seeds::Seeds;
use crate::{checkpoint, MetricsLogger, Progress, RunDir, StopSignal};

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
    /// Emulator frames (or physics steps) per agent step, for the logs' frame column.
    pub frames_per_step: u64,
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
    /// Agent steps done (summed over environments).
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
}

/// Updates the replay ratio allows after `step` steps.
fn updates_due(ratio: f64, state: &LoopState, step: u64) -> u64 {
    state.updates_before_warmup + (step.saturating_sub(state.warmup_until) as f64 * ratio) as u64
}

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

fn all_finite<T: Finite>(values: &[T]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// What an actor sends the learner after stepping its environments once: actions, outcomes
/// and, per environment, only the part of the next observation replay stores.
pub struct StepMsg<T> {
    /// Index of the first environment of the sender.
    first_env: usize,
    /// `[n, action_dim]`.
    actions: Vec<f32>,
    transitions: Vec<Transition>,
    /// Part of each next (or final, when the episode ended) observation.
    next_parts: Vec<T>,
    /// Part of the reset observation of environments whose episode ended (or was restarted
    /// after a non-finite step).
    reset_parts: Vec<T>,
    /// Per environment: the step's reward or observation was not finite, so it is dropped and
    /// the episode restarted (see the module's documentation).
    nonfinite: Vec<bool>,
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
fn step_envs<E>(
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

/// Everything on the learner's side of the loop.
struct Learner<'a, A: Agent, R> {
    cfg: &'a LoopConfig,
    run: &'a RunDir,
    agent: A,
    replay: R,
    scheduler: Scheduler,
    seeds: Seeds,
    rng: ChaCha8Rng,
    state: LoopState,
    log: MetricsLogger,
    progress: Progress,
    /// The fixed probe (`probe = "fixed"`), once learning has started.
    probe: Option<Tensor>,
    /// Environment states from the checkpoint to continue from, instead of new episodes.
    resume_envs: Option<Vec<Vec<u8>>>,
    /// The environments' states when the synchronous loop ended, for the final checkpoint.
    final_envs: Option<Vec<Vec<u8>>>,
    last_return: Option<f64>,
    sps: (Instant, u64),
    frames_per_step: u64,
    action_dim: usize,
    eval_extras: Option<Box<EvalExtras>>,
    /// Runs one evaluation of the agent at a step, observations shifted by an offset (it owns
    /// the environment factory).
    evaluator: Box<Evaluator<'a, A>>,
    /// Continual levels, if the run has them.
    levels: Option<LevelPlan>,
    /// The latest evaluation `(step, mean return)`, so a level's end reuses one at its step.
    last_eval: Option<(u64, f64)>,
}

type Evaluator<'a, A> = dyn Fn(&mut A, u64, Option<&[f32]>) -> Result<f64> + 'a;

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
    if setup.levels.is_some() {
        ensure!(
            <A::Elem as Shift>::SHIFTS,
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
    let evaluator = move |agent: &mut A, step: u64, offset: Option<&[f32]>| {
        evaluate(agent, &*make_env, cfg, seeds, step, offset)
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
    };
    // Leftovers of writes a killed process never finished.
    for dir in [run.path().to_owned(), run.checkpoint_dir()] {
        fire::tensor_file::remove_stale_temp_files(&dir)?;
    }
    let (mut probe, mut resume_envs) = (None, None);
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
            probe = mine
                .iter()
                .find(|(n, _)| n == "loop.probe")
                .map(|(_, t)| t.shallow_clone());
            let mut envs: Vec<&(String, Tensor)> = mine.iter().collect();
            envs.sort_by(|a, b| a.0.cmp(&b.0));
            let envs: Vec<Vec<u8>> = envs
                .into_iter()
                .filter(|(n, _)| n.starts_with("loop.env."))
                .map(|(_, t)| Vec::<u8>::try_from(t).context("checkpoint: environment state"))
                .collect::<Result<_>>()?;
            resume_envs = (envs.len() == cfg.envs).then_some(envs);
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
        probe,
        resume_envs,
        final_envs: None,
        last_return: None,
        frames_per_step: setup.frames_per_step,
        action_dim,
        eval_extras: setup.eval_extras,
        evaluator: Box::new(evaluator),
        levels: setup.levels,
        last_eval: None,
    };
    let stop = StopSignal::install();
    let result = if cfg.actors == 0 {
        run_synchronous(&mut learner, envs, &stop)
    } else {
        run_threaded(&mut learner, envs, &stop)
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
    Ok(if learner.state.step >= cfg.steps {
        Outcome::Finished
    } else {
        Outcome::Stopped {
            step: learner.state.step,
            signal: stop.signal().unwrap_or(2),
        }
    })
}

/// Mean raw return of the episodes an evaluation at `step` finished (NaN if none did): its own
/// environments and generator (the evaluation stream of [`Seeds`]), so training is unchanged
/// by it; `eval_envs` environments until `eval_steps` steps or `eval_episodes` episodes. Every
/// observation the agent sees is shifted by `offset` (the current level's, in a run with
/// levels). An episode cut by a non-finite step (see the module's documentation) counts
/// towards `eval_episodes` but not in the mean; if it did not end there, its environment is
/// reset so that the agent never acts on the broken observation.
fn evaluate<A, E>(
    agent: &mut A,
    make_env: &EnvFactory<E>,
    cfg: &LoopConfig,
    seeds: Seeds,
    step: u64,
    offset: Option<&[f32]>,
) -> Result<f64>
where
    A: Agent,
    A::Elem: Shift + Finite,
    E: FlatEnv<Elem = A::Elem>,
{
    let shift = |obs: &mut [A::Elem]| {
        if let Some(offset) = offset {
            crate::levels::shift_rows(obs, offset);
        }
    };
    use rand::SeedableRng;
    let seed = seeds.evaluation(step);
    let envs = (0..cfg.eval_envs)
        .map(|i| make_env(EnvPurpose::Evaluate, i, seed.wrapping_add(i as u64)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut vec = VecEnv::new(envs, 1)?;
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
        steps += cfg.eval_envs as u64;
    }
    Ok(if scored > 0 {
        total / scored as f64
    } else {
        f64::NAN
    })
}

/// An actor thread panicked or failed; the learner's state is consistent.
#[derive(Debug, thiserror::Error)]
#[error("actor thread `{thread}` {what}: {message}")]
pub struct ActorFailed {
    thread: String,
    what: &'static str,
    message: String,
}

/// Acting, stepping and learning take turns on this thread: exactly reproducible.
fn run_synchronous<A, E, R>(
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
            part_len == obs_len && plan.offset(0).len() == obs_len,
            "levels need a replay that stores whole observations of {obs_len} values"
        );
    }
    let shift = |level: u64, rows: &mut [A::Elem]| {
        if let Some(plan) = &levels {
            plan.shift(level, rows);
        }
    };
    // A resume with the replay and the environments' states continues the episodes in
    // flight (replay already holds their beginnings); otherwise new episodes start, seeded by
    // the step. Environments hold raw observations: the level's offset is the loop's.
    let mut obs = match learner.resume_envs.take() {
        Some(states) => {
            let mut obs = vec.load_states(&states)?.to_vec();
            shift(learner.state.level.level, &mut obs);
            obs
        }
        None => {
            let mut obs = vec
                .reset(Some(learner.seeds.reset(learner.state.step)))?
                .to_vec();
            shift(learner.state.level.level, &mut obs);
            learner.start_episodes(0, &obs, obs_len)?;
            obs
        }
    };
    let snapshot = |vec: &mut VecEnv<E>| learner_snapshot(cfg, vec);
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
            let after = learner.state.step + cfg.envs as u64;
            if after >= plan.end_of(level) && level + 1 < plan.levels() {
                // The switch: episodes in flight end here as truncated (their last
                // observation, with the old offset, is in `next_parts`), and every environment
                // starts a new episode seen with the new offset.
                for t in &mut msg.transitions {
                    t.truncated |= !t.terminated;
                }
                obs.copy_from_slice(vec.reset(Some(learner.seeds.reset(after)))?);
                plan.shift(level + 1, &mut obs);
                msg.reset_parts.copy_from_slice(&obs);
            }
        }
        learner.ingest(&msg)?;
        learner.tick(cfg.envs as u64, &mut || snapshot(&mut vec))?;
    }
    learner.final_envs = snapshot(&mut vec);
    Ok(())
}

/// The environments' states for a checkpoint: only with a saved replay (without it, a resume
/// starts new episodes anyway), and only if every environment can save its state.
fn learner_snapshot<E: FlatEnv>(cfg: &LoopConfig, vec: &mut VecEnv<E>) -> Option<Vec<Vec<u8>>> {
    cfg.checkpoint_replay.then(|| vec.save_states()).flatten()
}

/// The rate limiter's view of the run, shared by the learner and its actors.
struct Counters {
    /// Environment steps sent by all actors.
    sent: u64,
    /// Gradient updates done by the learner.
    updates: u64,
    warmup_until: u64,
    updates_before_warmup: u64,
}

struct Shared {
    counters: Mutex<Counters>,
    /// Signalled whenever the learner's counters move or the run stops.
    progressed: Condvar,
    /// The latest published weights and their version.
    weights: Mutex<(u64, fire::NamedTensors)>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.progressed.notify_all();
    }
}

fn run_threaded<A, E, R>(
    learner: &mut Learner<'_, A, R>,
    envs: Vec<E>,
    stop: &StopSignal,
) -> Result<()>
where
    A: Agent,
    A::Elem: Finite,
    E: FlatEnv<Elem = A::Elem> + 'static,
    R: Replay<Elem = A::Elem>,
{
    let cfg = learner.cfg;
    let actors = cfg.actors.min(cfg.envs);
    let per_actor = cfg.envs.div_ceil(actors);
    let shared = Arc::new(Shared {
        counters: Mutex::new(Counters {
            sent: learner.state.step,
            updates: learner.state.updates,
            warmup_until: learner.state.warmup_until,
            updates_before_warmup: learner.state.updates_before_warmup,
        }),
        progressed: Condvar::new(),
        weights: Mutex::new((1, learner.agent.policy_weights()?)),
        stop: AtomicBool::new(false),
    });
    let (tx, rx) = crossbeam_channel::bounded::<Result<StepMsg<A::Elem>>>(4 * actors);
    let part_len = learner.replay.part_len();
    let mut envs = envs;
    let mut handles = Vec::new();
    let mut first_env = 0;
    let fault = actor_fault();
    while !envs.is_empty() {
        let index = handles.len();
        let rest = envs.split_off(per_actor.min(envs.len()));
        let mine = std::mem::replace(&mut envs, rest);
        let n = mine.len();
        let threads = (cfg.env_threads / actors).max(1);
        // The learner records the first observation of each episode before any step arrives.
        let mut vec = VecEnv::new(mine, threads)?;
        let seed = learner.seeds.reset(learner.state.step + first_env as u64);
        let obs = vec.reset(Some(seed))?.to_vec();
        learner.start_episodes(first_env, &obs, vec.obs_len())?;
        let actor = Actor {
            vec,
            obs,
            first_env,
            policy: learner.agent.policy()?,
            rng: learner.seeds.actor(index),
            part_len,
            ratio: cfg.replay_ratio,
            max_lead: cfg.max_lead_updates,
            fault,
        };
        let (tx, shared) = (tx.clone(), shared.clone());
        let name = format!("actor-{index}");
        let thread = name.clone();
        handles.push(std::thread::Builder::new().name(name).spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| actor.run(&shared, &tx)));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(ActorFailed {
                    thread,
                    what: "failed",
                    message: format!("{e:#}"),
                }),
                Err(panic) => Some(ActorFailed {
                    thread,
                    what: "panicked",
                    message: panic_message(&*panic),
                }),
            };
            if let Some(f) = failure {
                let _ = tx.send(Err(f.into()));
            }
        })?);
        first_env += n;
    }
    drop(tx);
    let mut published_at = learner.state.updates;
    let result = (|| -> Result<()> {
        while learner.state.step < cfg.steps {
            if stop.requested() {
                learner.progress.println("stopping: writing a checkpoint");
                break;
            }
            let msg = match rx.recv_timeout(std::time::Duration::from_secs(300)) {
                Ok(msg) => msg?,
                Err(_) => bail!("actors sent no step for 300 s"),
            };
            let stride = msg.transitions.len() as u64;
            learner.ingest(&msg)?;
            // Actors own the environments: a resume starts new episodes.
            let intervened = learner.tick(stride, &mut || None)?;
            {
                let mut c = shared.lock();
                c.updates = learner.state.updates;
                c.warmup_until = learner.state.warmup_until;
                shared.progressed.notify_all();
            }
            if intervened || learner.state.updates >= published_at + cfg.publish_every {
                let weights = learner.agent.policy_weights()?;
                published_at = learner.state.updates;
                let mut slot = shared.weights.lock().unwrap_or_else(|p| p.into_inner());
                *slot = (slot.0 + 1, weights);
            }
        }
        Ok(())
    })();
    shared.stop();
    drop(rx);
    let mut panicked = None;
    for h in handles {
        let name = h.thread().name().unwrap_or("actor").to_owned();
        if h.join().is_err() && panicked.is_none() {
            panicked = Some(name);
        }
    }
    result?;
    if let Some(thread) = panicked {
        bail!("actor thread `{thread}` panicked");
    }
    Ok(())
}

/// One actor thread: its environments, their current observations and a CPU policy.
struct Actor<E: FlatEnv, P> {
    vec: VecEnv<E>,
    obs: Vec<E::Elem>,
    first_env: usize,
    policy: P,
    rng: ChaCha8Rng,
    part_len: usize,
    ratio: f64,
    max_lead: u64,
    fault: Option<u64>,
}

impl<E: FlatEnv, P: Policy<Elem = E::Elem>> Actor<E, P>
where
    E::Elem: Finite,
{
    fn run(
        mut self,
        shared: &Shared,
        tx: &crossbeam_channel::Sender<Result<StepMsg<E::Elem>>>,
    ) -> Result<()> {
        let n = self.vec.len() as u64;
        let mut version = 0;
        while !shared.stop.load(Ordering::SeqCst) {
            // Rate limiter: past warm-up, wait while the updates due for what was sent run
            // more than `max_lead` ahead of the updates done.
            let mode = {
                let mut c = shared.lock();
                loop {
                    let due = c.updates_before_warmup
                        + (c.sent.saturating_sub(c.warmup_until) as f64 * self.ratio) as u64;
                    if c.sent < c.warmup_until
                        || due <= c.updates + self.max_lead
                        || shared.stop.load(Ordering::SeqCst)
                    {
                        break;
                    }
                    c = shared.progressed.wait(c).unwrap_or_else(|p| p.into_inner());
                }
                if c.sent < c.warmup_until {
                    ActMode::Warmup
                } else {
                    ActMode::Train { step: c.sent }
                }
            };
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            {
                let slot = shared.weights.lock().unwrap_or_else(|p| p.into_inner());
                if slot.0 != version {
                    self.policy.load_weights(&slot.1)?;
                    version = slot.0;
                }
            }
            if let (Some(at), ActMode::Train { step }) = (self.fault, mode) {
                assert!(step < at, "fault injected at step {at} (FIRE_RL_FAULT)");
            }
            let actions = self.policy.act(&self.obs, mode, &mut self.rng)?;
            let msg = step_envs(
                &mut self.vec,
                &actions,
                self.first_env,
                &mut self.obs,
                self.part_len,
            )?;
            shared.lock().sent += n;
            if tx.send(Ok(msg)).is_err() {
                break; // the learner is done
            }
        }
        Ok(())
    }
}

/// `FIRE_RL_FAULT=actor-panic@STEP` makes actors panic once they act past STEP: a test hook
/// for the failure path, never set in normal use.
fn actor_fault() -> Option<u64> {
    std::env::var("FIRE_RL_FAULT")
        .ok()?
        .strip_prefix("actor-panic@")?
        .parse()
        .ok()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Whether a multiple of `every` lies in `(step - stride, step]`.
fn crossed(step: u64, stride: u64, every: u64) -> bool {
    every > 0 && step / every > step.saturating_sub(stride) / every
}

impl<A: Agent, R: Replay<Elem = A::Elem>> Learner<'_, A, R> {
    /// Records the first observations of environments `first..` (a batch `[n, obs_len]`).
    fn start_episodes(&mut self, first: usize, obs: &[A::Elem], obs_len: usize) -> Result<()>
    where
        A::Elem: Finite,
    {
        if let Some(i) = obs.chunks(obs_len).position(|row| !all_finite(row)) {
            bail!(
                "environment {}: the first observation of an episode is not finite",
                first + i
            );
        }
        self.agent.observe(obs)?;
        for (i, row) in obs.chunks(obs_len).enumerate() {
            let part = self.replay.part_of(row);
            self.replay.start_episode(first + i, part)?;
        }
        Ok(())
    }

    fn mode(&self) -> ActMode {
        if self.state.step < self.state.warmup_until {
            ActMode::Warmup
        } else {
            ActMode::Train {
                step: self.state.step,
            }
        }
    }

    /// Stores one vector step of environments `msg.first_env..`.
    fn ingest(&mut self, msg: &StepMsg<A::Elem>) -> Result<()> {
        let p = self.replay.part_len();
        let d = self.action_dim;
        for (k, t) in msg.transitions.iter().enumerate() {
            let env = msg.first_env + k;
            if msg.nonfinite[k] {
                // Dropped: the episode in flight ends without this step, a new one begins.
                self.state.nonfinite_steps += 1;
                let count = self.state.nonfinite_steps;
                self.log
                    .scalar("charts/nonfinite_steps", count as f64, self.state.step)?;
                self.progress.println(&format!(
                    "step {}: environment {env} returned a non-finite observation or reward; \
                     the step is dropped and its episode restarted ({count} so far)",
                    self.state.step
                ));
                self.replay
                    .start_episode(env, &msg.reset_parts[k * p..(k + 1) * p])?;
                continue;
            }
            let done = t.terminated || t.truncated;
            let next = &msg.next_parts[k * p..(k + 1) * p];
            self.replay.add_step(
                env,
                &msg.actions[k * d..(k + 1) * d],
                t.reward as f32,
                t.terminated,
                next,
                done,
            )?;
            if done {
                self.replay
                    .start_episode(env, &msg.reset_parts[k * p..(k + 1) * p])?;
            }
            if let Some(ep) = t.info.episode {
                if let Some(plan) = &self.levels {
                    let at = self.state.step + msg.transitions.len() as u64;
                    self.state.level.record(plan, ep.episode_return, at);
                }
                self.state.episodes += 1;
                self.last_return = Some(ep.episode_return);
                self.log
                    .scalar("charts/episodic_return", ep.episode_return, self.state.step)?;
                self.log
                    .scalar("charts/episodic_length", ep.length as f64, self.state.step)?;
            }
        }
        self.state.step += msg.transitions.len() as u64;
        Ok(())
    }

    /// Everything after new data: updates, the agent's periodic work, diagnostics, schedule,
    /// logs, evaluation, checkpoints. `stride` is how many steps the data covered. Returns
    /// whether the weights changed in a way actors must see now (an intervention).
    fn tick(
        &mut self,
        stride: u64,
        envs: &mut dyn FnMut() -> Option<Vec<Vec<u8>>>,
    ) -> Result<bool> {
        let cfg = self.cfg;
        let step = self.state.step;
        let nstep = NStep {
            n: cfg.n_step,
            gamma: cfg.gamma as f32,
        };
        while self.state.updates < updates_due(cfg.replay_ratio, &self.state, step) {
            let batch = self.replay.sample(cfg.batch_size, nstep)?;
            self.agent.update(&batch)?;
            self.state.updates += 1;
        }
        let learning = step > self.state.warmup_until && !self.replay.is_empty();
        if learning && cfg.probe == ProbeMode::Fixed && self.probe.is_none() {
            self.probe = Some(self.draw_obs(cfg.probe_size, self.seeds.probe(step))?);
        }
        self.agent.after_step(step, stride)?;
        let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
        if learning && crossed(step, stride, cfg.plasticity_every) {
            let probe = match &self.probe {
                Some(p) => p.shallow_clone(),
                None => self.draw_obs(cfg.probe_size, self.seeds.probe(step))?,
            };
            latest = self.agent.plasticity(&probe)?.into_iter().collect();
            for (k, v) in &latest {
                self.log.scalar(&format!("plasticity/{k}"), *v, step)?;
            }
            for n in fire::metrics::param_norms(&self.agent.params())? {
                self.log.scalar(
                    &format!("plasticity/weight_norm/{}", n.name),
                    n.weight_norm,
                    step,
                )?;
                self.log.scalar(
                    &format!("plasticity/grad_norm/{}", n.name),
                    n.grad_norm,
                    step,
                )?;
            }
        }
        // Evaluation at an intervention's step sees the network before it, as the FIRE
        // reference evaluates, saves at the midpoint and intervenes on resuming.
        if cfg.eval_every > 0 && crossed(step, stride, cfg.eval_every) {
            self.evaluate_and_log(step)?;
        }
        let mut intervened = false;
        if cfg.intervention != Method::None
            && self.scheduler.due(step, |name| latest.get(name).copied())
        {
            self.intervene()?;
            intervened = true;
        }
        intervened |= self.finish_level(step, intervened)?;
        if crossed(step, stride, cfg.log_every) {
            if self.levels.is_some() {
                let level = self.state.level.level as f64;
                self.log.scalar("charts/level", level, step)?;
            }
            for (tag, value) in self.agent.take_stats(self.mode())? {
                self.log.scalar(tag, value, step)?;
            }
            let (clock, from) = self.sps;
            let sps = (step - from) as f64 / clock.elapsed().as_secs_f64().max(1e-9);
            self.log.scalar("charts/SPS", sps, step)?;
            self.log
                .scalar("charts/updates", self.state.updates as f64, step)?;
            self.sps = (Instant::now(), step);
        }
        if cfg.checkpoint_every > 0 && crossed(step, stride, cfg.checkpoint_every) {
            self.save(envs())?;
        }
        self.progress.update(step, self.last_return);
        Ok(intervened)
    }

    /// `size` observations from replay drawn with `rng` (the replay's own sampler, and so
    /// the training batches, are left as they were).
    fn draw_obs(&self, size: usize, mut rng: ChaCha8Rng) -> Result<Tensor> {
        let b = self
            .replay
            .sample_with(size, NStep::one(self.cfg.gamma as f32), &mut rng)?;
        let mut shape = vec![size as i64];
        shape.extend_from_slice(self.agent.obs_shape());
        Ok(Tensor::from_slice(&b.obs).f_view(shape.as_slice())?)
    }

    fn intervene(&mut self) -> Result<()> {
        let step = self.state.step;
        let started = Instant::now();
        // ReDo scores neurons on a training batch, as Sokar et al. do: `batch_size` transitions
        // drawn like the next update's, from a stream of their own.
        // Only ReDo reads it: the other methods get none rather than a batch drawn for nothing.
        let method = self.cfg.method();
        let batch = match method.method == Method::Redo && !self.replay.is_empty() {
            true => Some(self.draw_obs(self.cfg.batch_size, self.seeds.intervention(step))?),
            false => None,
        };
        let reports = self.agent.intervene(&method, batch.as_ref())?;
        let total_sfe = reports.iter().fold(0.0, |sum, r| sum + r.sfe);
        self.log.scalar("interventions/count", 1.0, step)?;
        self.log.scalar("interventions/sfe", total_sfe, step)?;
        for r in &reports {
            self.log
                .scalar(&format!("interventions/sfe/{}", r.name), r.sfe, step)?;
            if let Some(d) = r.dfi_after {
                self.log
                    .scalar(&format!("interventions/dfi_after/{}", r.name), d, step)?;
            }
        }
        self.log.event(&serde_json::json!({
            "step": step, "frames": step * self.frames_per_step, "method": method.method,
            "seconds": started.elapsed().as_secs_f64(), "parameters": reports,
        }))?;
        self.progress.println(&format!(
            "step {step}: {} applied (SFE {total_sfe:.3e})",
            method.method
        ));
        Ok(())
    }

    /// At the end of a level: its greedy evaluation (the one at this step if there was one),
    /// its `levels.csv` row, then at a switch the level intervention (unless the schedule
    /// already intervened at this step) and the next level. Returns whether it intervened.
    fn finish_level(&mut self, step: u64, intervened: bool) -> Result<bool> {
        let Some(plan) = self.levels.clone() else {
            return Ok(false);
        };
        let level = self.state.level.level;
        if step < plan.end_of(level) {
            return Ok(false);
        }
        let eval_return = match self.last_eval {
            Some((at, score)) if at == step => score,
            _ => self.evaluate_and_log(step)?,
        };
        let (row, next) = self.state.level.finish(&plan, eval_return);
        self.log.level_row(&row)?;
        if level + 1 >= plan.levels() {
            return Ok(false);
        }
        self.progress.println(&format!(
            "step {step}: level {level} done (greedy return {eval_return:.1}); level {} starts",
            level + 1
        ));
        let intervene = plan.intervenes() && self.cfg.intervention != Method::None && !intervened;
        if intervene {
            self.intervene()?;
        }
        self.state.level = next;
        Ok(intervene)
    }

    /// Evaluates at `step` (with the current level's offset) and logs the score.
    fn evaluate_and_log(&mut self, step: u64) -> Result<f64> {
        let offset = self
            .levels
            .as_ref()
            .map(|plan| plan.offset(self.state.level.level));
        let score = (self.evaluator)(&mut self.agent, step, offset)?;
        self.last_eval = Some((step, score));
        self.log.scalar("eval/episodic_return", score, step)?;
        if let Some(extras) = &self.eval_extras {
            for (tag, value) in extras(score) {
                self.log.scalar(tag, value, step)?;
            }
        }
        Ok(score)
    }

    /// Checkpoints the agent, the loop's state and, with `checkpoint_replay`, the replay, the
    /// fixed probe and `envs` (the environments' states, when the caller has them).
    fn save(&mut self, envs: Option<Vec<Vec<u8>>>) -> Result<()> {
        // Losses are checked when they are logged; weights that diverged since then must not
        // replace the last good checkpoint.
        self.agent.check_finite()?;
        self.state.scheduler = self.scheduler.state();
        self.state.rng = replay::generator_state(&self.rng);
        if !self.run.path().is_dir() {
            bail!(
                "run directory {} disappeared: stopping without a checkpoint",
                self.run.path().display()
            );
        }
        // Logs first: a resume keeps exactly the rows up to the checkpoint's step, so they
        // must be on disk before the checkpoint that claims them.
        self.log.flush()?;
        let mut writer = checkpoint::Writer::begin(&self.run.checkpoint_dir())?;
        let mut tensors = self.agent.state_tensors();
        if self.cfg.checkpoint_replay {
            self.replay.save(&writer.path("replay", "bin"))?;
            if let Some(p) = &self.probe {
                tensors.push(("loop.probe".into(), p.shallow_clone()));
            }
            for (i, env) in envs.into_iter().flatten().enumerate() {
                tensors.push((format!("loop.env.{i:04}"), Tensor::from_slice(&env)));
            }
        }
        writer.commit(tensors, &self.state)?;
        Ok(())
    }
}
