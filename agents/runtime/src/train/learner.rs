//! The learner's side of the loop: everything both modes do with a vector step once the
//! environments produced it.
//!
//! [`Learner::ingest`] stores a step in replay (dropping non-finite ones) and logs finished
//! episodes; [`Learner::tick`] then does the step's work in a fixed order: the updates the
//! rate limiter allows, the agent's periodic work, plasticity diagnostics, the evaluation,
//! the scheduled intervention, a level's end (its evaluation, `levels.csv` row, intervention
//! and switch), logs and the periodic checkpoint. [`Learner::save`] writes a checkpoint.
//!
//! An evaluation at an intervention's step sees the network before it; with
//! `eval_after_intervention` a second one at the same step (same seeds) sees it after, as the
//! FIRE reference evaluates after reinitialising on resume, so curves show the drop.
//!
//! A stop during one of the step's evaluations ends the tick there ([`Tick::Stopped`]) and
//! records what is left as a [`PendingTick`] in the loop state, so the checkpoint that follows
//! holds it and [`Learner::resume_tick`] does exactly that rest on resume.

use std::collections::BTreeMap;
use std::time::Instant;

use agent::{ActMode, Agent};
use anyhow::{bail, Result};
use fire::schedule::Scheduler;
use fire::Method;
use rand_chacha::ChaCha8Rng;
use replay::{NStep, Replay};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::evaluate::{Evaluator, Level};
use super::rate::RateLimiter;
use super::step::{all_finite, Finite, StepMsg};
use super::{EvalExtras, LoopState};
use crate::config::{LoopConfig, ProbeMode};
use crate::levels::LevelPlan;
use crate::seeds::Seeds;
use crate::{checkpoint, MetricsLogger, Progress, RunDir, StopSignal};

/// Everything on the learner's side of the loop.
pub(super) struct Learner<'a, A: Agent, R> {
    pub(super) cfg: &'a LoopConfig,
    pub(super) run: &'a RunDir,
    pub(super) agent: A,
    pub(super) replay: R,
    pub(super) scheduler: Scheduler,
    pub(super) seeds: Seeds,
    pub(super) rng: ChaCha8Rng,
    pub(super) state: LoopState,
    pub(super) log: MetricsLogger,
    pub(super) progress: Progress,
    /// The fixed probe (`probe = "fixed"`), once learning has started.
    pub(super) probe: Option<Tensor>,
    /// Environment states from the checkpoint to continue from, instead of new episodes.
    pub(super) resume_envs: Option<Vec<Vec<u8>>>,
    /// The environments' states when the synchronous loop ended, for the final checkpoint.
    pub(super) final_envs: Option<Vec<Vec<u8>>>,
    pub(super) last_return: Option<f64>,
    pub(super) sps: (Instant, u64),
    pub(super) frames_per_step: u64,
    /// Loop steps per decision (see [`Setup`](super::Setup)).
    pub(super) steps_per_decision: u64,
    pub(super) action_dim: usize,
    pub(super) eval_extras: Option<Box<EvalExtras>>,
    /// Runs one evaluation (it owns the environment factory).
    pub(super) evaluator: Box<Evaluator<'a, A>>,
    /// Continual levels, if the run has them.
    pub(super) levels: Option<LevelPlan>,
    /// The latest evaluation `(step, mean return)`, so a level's end reuses one at its step.
    pub(super) last_eval: Option<(u64, f64)>,
    /// Ctrl-C and SIGTERM, which evaluations poll.
    pub(super) stop: StopSignal,
}

/// How a tick ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tick {
    /// The step's work is done; `intervened` when the weights changed in a way actors must
    /// see now (an intervention).
    Done { intervened: bool },
    /// A stop abandoned one of the step's evaluations: the rest is pending in the loop state,
    /// and the loop must stop and checkpoint.
    Stopped,
}

/// The rest of a step's work that a stop during one of its evaluations left undone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct PendingTick {
    /// Steps the tick's data covered (`crossed` needs it for the logs and the checkpoint).
    stride: u64,
    /// Where the tick stopped.
    at: Resume,
}

/// Where a tick stopped, with what it had computed that the rest reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Resume {
    /// In the periodic evaluation; the plasticity metrics the schedule reads next (as
    /// `f64::to_bits`, so NaN and every value survive JSON exactly).
    Evaluation { metrics: Vec<(String, u64)> },
    /// In the evaluation right after the scheduled intervention (which is done).
    AfterIntervention,
    /// In the evaluation at a level's end; whether the schedule intervened at this step.
    LevelEnd { intervened: bool },
    /// In the evaluation right after the intervention at the end of `level` (the intervention
    /// and the switch to the next level are done; it evaluates on `level`, as the evaluation
    /// before it did).
    AfterLevelIntervention { level: u64 },
}

/// Whether a part of a tick went on or a stop abandoned its evaluation.
enum Flow<T> {
    Go(T),
    /// Stopped; resume there.
    Pause(Resume),
}

/// Whether a multiple of `every` lies in `(step - stride, step]`.
pub(super) fn crossed(step: u64, stride: u64, every: u64) -> bool {
    every > 0 && step / every > step.saturating_sub(stride) / every
}

impl<A: Agent, R: Replay<Elem = A::Elem>> Learner<'_, A, R> {
    /// Records the first observations of environments `first..` (a batch `[n, obs_len]`).
    pub(super) fn start_episodes(
        &mut self,
        first: usize,
        obs: &[A::Elem],
        obs_len: usize,
    ) -> Result<()>
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

    /// The replay ratio's rate limiter for the run as it stands.
    pub(super) fn rate(&self) -> RateLimiter {
        RateLimiter::new(self.cfg.replay_ratio, self.steps_per_decision, &self.state)
    }

    /// How the agent acts at the current step.
    pub(super) fn mode(&self) -> ActMode {
        self.rate().mode(self.state.step)
    }

    /// Stores one vector step of environments `msg.first_env..`.
    pub(super) fn ingest(&mut self, msg: &StepMsg<A::Elem>) -> Result<()> {
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
                    let at = self.state.step + self.stride_of(msg);
                    self.state.level.record(plan, ep.episode_return, at);
                }
                self.state.episodes += 1;
                self.last_return = Some(ep.episode_return);
                self.log
                    .scalar("charts/episodic_return", ep.episode_return, self.state.step)?;
                if let Some(task) = self
                    .levels
                    .as_ref()
                    .and_then(|p| p.task(self.state.level.level))
                {
                    let tag = format!("charts/episodic_return/{task}");
                    self.log.scalar(&tag, ep.episode_return, self.state.step)?;
                }
                self.log
                    .scalar("charts/episodic_length", ep.length as f64, self.state.step)?;
            }
        }
        self.state.step += self.stride_of(msg);
        Ok(())
    }

    /// Loop steps a message covers.
    fn stride_of(&self, msg: &StepMsg<A::Elem>) -> u64 {
        msg.transitions.len() as u64 * self.steps_per_decision
    }

    /// Everything after new data: updates, the agent's periodic work, diagnostics, schedule,
    /// logs, evaluation, checkpoints. `stride` is how many steps the data covered; `envs`
    /// gives the environments' states for a checkpoint.
    pub(super) fn tick(
        &mut self,
        stride: u64,
        envs: &mut dyn FnMut() -> Option<Vec<Vec<u8>>>,
    ) -> Result<Tick> {
        let metrics = self.learn(stride)?;
        let metrics = metrics
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_bits()))
            .collect();
        self.finish(stride, Resume::Evaluation { metrics }, envs)
    }

    /// On a resume, the rest of the step a stop interrupted (nothing if none was).
    pub(super) fn resume_tick(
        &mut self,
        envs: &mut dyn FnMut() -> Option<Vec<Vec<u8>>>,
    ) -> Result<Tick> {
        let Some(pending) = self.state.pending.take() else {
            return Ok(Tick::Done { intervened: false });
        };
        self.progress.println(&format!(
            "step {}: redoing the evaluation the stop abandoned",
            self.state.step
        ));
        self.finish(pending.stride, pending.at, envs)
    }

    /// The updates due, the agent's periodic work and the plasticity diagnostics; returns the
    /// diagnostics' metrics (empty when none were due).
    fn learn(&mut self, stride: u64) -> Result<BTreeMap<&'static str, f64>> {
        let cfg = self.cfg;
        let step = self.state.step;
        let nstep = NStep {
            n: cfg.n_step,
            gamma: cfg.gamma as f32,
        };
        let due = self.rate().due(step);
        while self.state.updates < due {
            let batch = self.replay.sample(cfg.batch_size, nstep)?;
            self.agent.update(&batch)?;
            self.state.updates += 1;
        }
        let learning = step > self.state.warmup_until && !self.replay.is_empty();
        if learning && cfg.probe == ProbeMode::Fixed && self.probe.is_none() {
            self.probe = Some(self.draw_obs(cfg.probe_size, self.seeds.probe(step))?);
        }
        self.agent.after_step(step, stride)?;
        let mut latest = BTreeMap::new();
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
        Ok(latest)
    }

    /// The step's work from `at` on: the evaluation, the scheduled intervention (and the
    /// evaluation after it), a level's end, logs, the checkpoint.
    fn finish(
        &mut self,
        stride: u64,
        at: Resume,
        envs: &mut dyn FnMut() -> Option<Vec<Vec<u8>>>,
    ) -> Result<Tick> {
        let cfg = self.cfg;
        let step = self.state.step;
        let level = self.state.level.level;
        // Whether the weights changed at this step, and whether a level's end is still to do.
        let (mut intervened, level_left) = match at {
            Resume::Evaluation { metrics } => {
                // Evaluation at an intervention's step sees the network before it, as the FIRE
                // reference evaluates, saves at the midpoint and intervenes on resuming.
                if cfg.eval_every > 0
                    && crossed(step, stride, cfg.eval_every)
                    && self.evaluate_and_log(step, level, true)?.is_none()
                {
                    let at = Resume::Evaluation { metrics };
                    return Ok(self.pause(PendingTick { stride, at }));
                }
                let latest: BTreeMap<String, f64> = metrics
                    .into_iter()
                    .map(|(k, bits)| (k, f64::from_bits(bits)))
                    .collect();
                let due = cfg.intervention != Method::None
                    && self.scheduler.due(step, |name| latest.get(name).copied());
                if due {
                    self.intervene()?;
                    if let Flow::Pause(at) = self.evaluate_after_intervention(step, None)? {
                        return Ok(self.pause(PendingTick { stride, at }));
                    }
                }
                (due, true)
            }
            Resume::AfterIntervention => {
                if let Flow::Pause(at) = self.evaluate_after_intervention(step, None)? {
                    return Ok(self.pause(PendingTick { stride, at }));
                }
                (true, true)
            }
            Resume::LevelEnd { intervened } => (intervened, true),
            Resume::AfterLevelIntervention { level } => {
                if let Flow::Pause(at) = self.evaluate_after_intervention(step, Some(level))? {
                    return Ok(self.pause(PendingTick { stride, at }));
                }
                (true, false)
            }
        };
        if level_left {
            match self.finish_level(step, intervened)? {
                Flow::Go(level_intervened) => intervened |= level_intervened,
                Flow::Pause(at) => return Ok(self.pause(PendingTick { stride, at })),
            }
        }
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
        Ok(Tick::Done { intervened })
    }

    /// With `eval_after_intervention`, the evaluation right after an intervention: after a
    /// level's intervention on `level` (the level just finished, which its closing evaluation
    /// scored), after a scheduled one on the current level if evaluations are on
    /// (`eval_every`); with the seeds of the evaluation before it, logged at the same step.
    /// Not remembered as the step's score (a level's end scores the network it trained).
    fn evaluate_after_intervention(&mut self, step: u64, level: Option<u64>) -> Result<Flow<()>> {
        let evaluating = level.is_some() || self.cfg.eval_every > 0;
        if !(evaluating && self.cfg.eval_after_intervention) {
            return Ok(Flow::Go(()));
        }
        let on = level.unwrap_or(self.state.level.level);
        Ok(match self.evaluate_and_log(step, on, false)? {
            Some(_) => Flow::Go(()),
            None => Flow::Pause(match level {
                None => Resume::AfterIntervention,
                Some(level) => Resume::AfterLevelIntervention { level },
            }),
        })
    }

    /// Records `pending` for the checkpoint the stop writes next.
    fn pause(&mut self, pending: PendingTick) -> Tick {
        self.progress.println(&format!(
            "stopping: the evaluation at step {} is abandoned (a resume redoes it); writing a \
             checkpoint",
            self.state.step
        ));
        self.state.pending = Some(pending);
        Tick::Stopped
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
    /// already intervened at this step), the next level, and the evaluation after the
    /// intervention (on the level just finished). Returns whether it intervened, or where a
    /// stop abandoned an evaluation.
    fn finish_level(&mut self, step: u64, intervened: bool) -> Result<Flow<bool>> {
        let Some(plan) = self.levels.clone() else {
            return Ok(Flow::Go(false));
        };
        let level = self.state.level.level;
        if step < plan.end_of(level) {
            return Ok(Flow::Go(false));
        }
        let eval_return = match self.last_eval {
            Some((at, score)) if at == step => score,
            _ => match self.evaluate_and_log(step, level, true)? {
                Some(score) => score,
                None => return Ok(Flow::Pause(Resume::LevelEnd { intervened })),
            },
        };
        let (row, next) = self.state.level.finish(&plan, eval_return);
        self.log.level_row(&row)?;
        if level + 1 >= plan.levels() {
            return Ok(Flow::Go(false));
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
        if intervene {
            if let Flow::Pause(at) = self.evaluate_after_intervention(step, Some(level))? {
                return Ok(Flow::Pause(at));
            }
        }
        Ok(Flow::Go(intervene))
    }

    /// Evaluates at `step` with `level`'s offset (in a run with levels) and logs the score;
    /// `remember` keeps it as the step's score for a level's end. `None`, and nothing logged,
    /// if a stop abandoned it.
    fn evaluate_and_log(&mut self, step: u64, level: u64, remember: bool) -> Result<Option<f64>> {
        let on = Level {
            offset: self.levels.as_ref().and_then(|plan| plan.offset(level)),
            phase: if self.levels.is_some() { level } else { 0 },
        };
        let Some(score) = (self.evaluator)(&mut self.agent, step, on, self.stop)? else {
            return Ok(None);
        };
        if remember {
            self.last_eval = Some((step, score));
        }
        self.log.scalar("eval/episodic_return", score, step)?;
        if let Some(extras) = &self.eval_extras {
            for (tag, value) in extras(score) {
                self.log.scalar(tag, value, step)?;
            }
        }
        Ok(Some(score))
    }

    /// Checkpoints the agent, the loop's state and, with `checkpoint_replay`, the replay, the
    /// fixed probe and `envs` (the environments' states, when the caller has them).
    pub(super) fn save(&mut self, envs: Option<Vec<Vec<u8>>>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossed_finds_a_multiple_in_the_strides_window() {
        assert!(crossed(1_000, 1, 1_000));
        assert!(!crossed(999, 1, 1_000));
        assert!(crossed(1_002, 4, 1_000));
        assert!(!crossed(1_004, 4, 1_000));
        assert!(!crossed(1_000, 1, 0), "0 = never");
    }

    #[test]
    fn a_pending_tick_keeps_every_metric_bit_for_bit_through_json() {
        let pending = PendingTick {
            stride: 4,
            at: Resume::Evaluation {
                metrics: [("dormant_ratio", f64::NAN), ("srank", 0.1 + 0.2)]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_bits()))
                    .collect(),
            },
        };
        let text = serde_json::to_string(&pending).unwrap();
        let back: PendingTick = serde_json::from_str(&text).unwrap();
        assert_eq!(back, pending, "{text}");
        for at in [
            Resume::LevelEnd { intervened: true },
            Resume::AfterIntervention,
            Resume::AfterLevelIntervention { level: 3 },
        ] {
            let pending = PendingTick { stride: 1, at };
            let text = serde_json::to_string(&pending).unwrap();
            assert_eq!(serde_json::from_str::<PendingTick>(&text).unwrap(), pending);
        }
    }
}
