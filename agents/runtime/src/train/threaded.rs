//! The threaded loop (`actors > 0`): actor threads step their slices of the environments with
//! CPU policies and send [`StepMsg`]s; the learner ingests them and ticks.
//!
//! What the threads share ([`Shared`]): the rate limiter's counters under one mutex with a
//! condition variable (actors wait there while they are too far ahead of the replay ratio),
//! the latest published weights under another, and a stop flag. Publication hands actors
//! shallow handles of the weights under the lock and they copy them into their policies after
//! releasing it, so the learner never waits for an actor's copy. An actor that fails or
//! panics sends an [`ActorFailed`] and the learner stops the run with a checkpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use agent::{ActMode, Agent, Policy};
use anyhow::{bail, Result};
use envs::vector::{FlatEnv, VecEnv};
use fire::NamedTensors;
use rand_chacha::ChaCha8Rng;
use replay::Replay;

use super::learner::{Learner, Tick};
use super::rate::RateLimiter;
use super::step::{step_envs, Finite, StepMsg};
use crate::StopSignal;

/// An actor thread panicked or failed; the learner's state is consistent.
#[derive(Debug, thiserror::Error)]
#[error("actor thread `{thread}` {what}: {message}")]
pub struct ActorFailed {
    thread: String,
    what: &'static str,
    message: String,
}

/// The rate limiter's view of the run, shared by the learner and its actors.
struct Counters {
    /// Environment steps sent by all actors.
    sent: u64,
    /// Gradient updates done by the learner.
    updates: u64,
    /// The learner's rate limiter, as of its last tick.
    rate: RateLimiter,
}

/// The latest published policy weights and their version (0: none yet).
struct Published {
    version: u64,
    weights: NamedTensors,
}

struct Shared {
    counters: Mutex<Counters>,
    /// Signalled whenever the learner's counters move or the run stops.
    progressed: Condvar,
    weights: Mutex<Published>,
    stop: AtomicBool,
}

impl Shared {
    fn new(counters: Counters, weights: NamedTensors) -> Self {
        Self {
            counters: Mutex::new(counters),
            progressed: Condvar::new(),
            weights: Mutex::new(Published {
                version: 1,
                weights,
            }),
            stop: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn published(&self) -> MutexGuard<'_, Published> {
        self.weights.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.progressed.notify_all();
    }

    /// Makes `weights` the latest. The previous ones are released after the lock, and actors
    /// still copying them keep their own handles.
    fn publish(&self, weights: NamedTensors) {
        let old = {
            let mut slot = self.published();
            slot.version += 1;
            std::mem::replace(&mut slot.weights, weights)
        };
        drop(old);
    }

    /// The weights published after `version`, with their version: shallow handles (no data
    /// is copied under the lock; a tensor is `Send` but not `Sync`, so each actor gets its own
    /// handles rather than a shared reference). The learner never writes into a published
    /// tensor: each publication is a fresh copy.
    fn newer_than(&self, version: u64) -> Option<(u64, NamedTensors)> {
        let slot = self.published();
        (slot.version != version).then(|| {
            let handles = slot
                .weights
                .iter()
                .map(|(name, t)| (name.clone(), t.shallow_clone()))
                .collect();
            (slot.version, handles)
        })
    }
}

/// Runs the loop with `cfg.actors` threads until `cfg.steps`, a stop or an actor's failure.
pub(super) fn run<A, E, R>(
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
    // Actors own the environments: a resume starts new episodes, after the rest of a step a
    // stop interrupted (an intervention there changes the weights the actors start with).
    if learner.resume_tick(&mut || None)? == Tick::Stopped {
        return Ok(());
    }
    let cfg = learner.cfg;
    let actors = cfg.actors.min(cfg.envs);
    let per_actor = cfg.envs.div_ceil(actors);
    let counters = Counters {
        sent: learner.state.step,
        updates: learner.state.updates,
        rate: learner.rate(),
    };
    let shared = Arc::new(Shared::new(counters, learner.agent.policy_weights()?));
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
            max_lead: cfg.max_lead_updates,
            steps_per_decision: learner.steps_per_decision,
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
            let msg = match rx.recv_timeout(Duration::from_secs(300)) {
                Ok(msg) => msg?,
                Err(_) => bail!("actors sent no step for 300 s"),
            };
            let stride = msg.transitions.len() as u64 * learner.steps_per_decision;
            learner.ingest(&msg)?;
            let intervened = match learner.tick(stride, &mut || None)? {
                Tick::Done { intervened } => intervened,
                Tick::Stopped => break,
            };
            {
                let mut c = shared.lock();
                c.updates = learner.state.updates;
                c.rate = learner.rate();
                shared.progressed.notify_all();
            }
            if intervened || learner.state.updates >= published_at + cfg.publish_every {
                shared.publish(learner.agent.policy_weights()?);
                published_at = learner.state.updates;
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
    max_lead: u64,
    /// Loop steps each environment's decision counts.
    steps_per_decision: u64,
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
        let n = self.vec.len() as u64 * self.steps_per_decision;
        let mut version = 0;
        while !shared.stop.load(Ordering::SeqCst) {
            // The rate limiter: wait while too far ahead of the updates done.
            let mode: ActMode = {
                let mut c = shared.lock();
                while !c.rate.may_act(c.sent, c.updates, self.max_lead)
                    && !shared.stop.load(Ordering::SeqCst)
                {
                    c = shared.progressed.wait(c).unwrap_or_else(|p| p.into_inner());
                }
                c.rate.mode(c.sent)
            };
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            // Copied outside the lock: the learner can publish meanwhile.
            if let Some((latest, weights)) = shared.newer_than(version) {
                self.policy.load_weights(&weights)?;
                version = latest;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn shared(weights: NamedTensors) -> Shared {
        let state: super::super::LoopState = serde_json::from_value(serde_json::json!({
            "step": 0, "updates": 0, "episodes": 0,
            "scheduler": fire::schedule::SchedulerState::default(), "rng": [],
            "warmup_until": 0, "updates_before_warmup": 0,
        }))
        .unwrap();
        let counters = Counters {
            sent: 0,
            updates: 0,
            rate: RateLimiter::new(1.0, 1, &state),
        };
        Shared::new(counters, weights)
    }

    /// An actor holds its copy of the weights without the lock, so the learner publishes
    /// while actors load, and what an actor took stays what was published when it took it.
    #[test]
    fn actors_copy_published_weights_outside_the_lock() {
        let shared = shared(vec![("w".into(), Tensor::from_slice(&[1.0f32, 2.0]))]);
        let (v1, taken) = shared.newer_than(0).expect("version 1 is newer than none");
        assert_eq!(v1, 1);
        assert!(shared.newer_than(v1).is_none(), "nothing newer");
        // While the actor still holds (and would be copying) `taken`, the lock is free.
        assert!(shared.weights.try_lock().is_ok());
        shared.publish(vec![("w".into(), Tensor::from_slice(&[3.0f32, 4.0]))]);
        assert_eq!(Vec::<f32>::try_from(&taken[0].1).unwrap(), [1.0, 2.0]);
        let (v2, fresh) = shared.newer_than(v1).expect("a new publication");
        assert_eq!(v2, 2);
        assert_eq!(fresh[0].0, "w");
        assert_eq!(Vec::<f32>::try_from(&fresh[0].1).unwrap(), [3.0, 4.0]);
    }
}
