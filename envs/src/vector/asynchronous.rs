//! Asynchronous stepping: the next batch is whichever environments finish first.
//!
//! A synchronous step waits for the slowest environment, and in Atari the slowest is often
//! ten times slower than the rest (a step that ends a game also resets it: about 70 emulated
//! frames instead of 4). With more environments than the batch (EnvPool's `batch_size <
//! num_envs`), the threads keep stepping the environments that are not in the batch while
//! the caller acts on the batch, so no thread idles at a barrier.
//!
//! Workers take one task at a time (step or reset one environment) from a shared queue and
//! report its index when done; each environment has at most one task in flight, so its lock is
//! never contended.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{check_envs, config, step_with_autoreset, FlatEnv, Transition};
use crate::{Error, Result};

/// What a worker does to one environment.
enum Task {
    Reset { env: usize, seed: Option<u64> },
    Step { env: usize, action: Vec<f32> },
}

/// One environment and what its last task produced.
struct Slot<E: FlatEnv> {
    env: E,
    obs: Vec<E::Elem>,
    /// Valid when `transition` ended the episode.
    final_obs: Vec<E::Elem>,
    transition: Transition,
}

/// Tasks waiting for a worker. Idle workers sleep on a condition variable (a spinning worker
/// would take a core from the caller or the other workers).
struct Pending {
    state: Mutex<PendingState>,
    available: Condvar,
}

struct PendingState {
    tasks: VecDeque<Task>,
    /// Set when the owner drops: workers finish what is queued and stop.
    closed: bool,
}

impl Pending {
    fn push(&self, tasks: impl Iterator<Item = Task>) {
        let mut state = lock(&self.state);
        let before = state.tasks.len();
        state.tasks.extend(tasks);
        for _ in before..state.tasks.len() {
            self.available.notify_one();
        }
    }

    /// The next task, or `None` once closed and empty.
    fn next(&self) -> Option<Task> {
        let mut state = lock(&self.state);
        loop {
            if let Some(task) = state.tasks.pop_front() {
                return Some(task);
            }
            if state.closed {
                return None;
            }
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.available.notify_all();
    }
}

/// Finished tasks in the order they finished, and how many the caller waits for: the last
/// worker to make that many wakes it, once a batch rather than once a result (a wake-up is a
/// context switch, which on two cores takes the core from a worker).
struct Finished {
    state: Mutex<FinishedState>,
    enough: Condvar,
}

struct FinishedState {
    results: VecDeque<(usize, Result<()>)>,
    wanted: usize,
}

impl Finished {
    fn push(&self, env: usize, result: Result<()>) {
        let mut state = lock(&self.state);
        state.results.push_back((env, result));
        if state.results.len() == state.wanted {
            self.enough.notify_one();
        }
    }

    /// Waits for `count` results and moves them into `into`.
    fn take(&self, count: usize, into: &mut Vec<(usize, Result<()>)>) {
        let mut state = lock(&self.state);
        state.wanted = count;
        while state.results.len() < count {
            state = self
                .enough
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.wanted = usize::MAX;
        into.extend(state.results.drain(..count));
    }
}

/// A batch handed out by [`AsyncVecEnv`]: row `k` belongs to environment `env_ids[k]`.
#[derive(Debug)]
pub struct AsyncStep<'a, T> {
    /// Which environment each row belongs to.
    pub env_ids: &'a [usize],
    /// `[batch, obs_len]` observations (already reset where an episode ended).
    pub obs: &'a [T],
    /// `[batch, obs_len]` last observations of episodes that ended (other rows are stale).
    pub final_obs: &'a [T],
    /// Per row; rows that come from a reset carry a default transition (reward 0).
    pub transitions: &'a [Transition],
}

/// `n` environments on `threads` worker threads, handed out `batch_size` at a time.
///
/// ```text
/// let mut batch = envs.reset(Some(seed))?;        // the first batch_size to finish resetting
/// loop {
///     let actions = policy(batch.obs);            // one action per row
///     batch = envs.step(&actions)?;               // act for those rows, get the next ready ones
/// }
/// ```
pub struct AsyncVecEnv<E: FlatEnv> {
    slots: Arc<[Mutex<Slot<E>>]>,
    pending: Arc<Pending>,
    finished: Arc<Finished>,
    /// Results taken from `finished`, reused between batches.
    arrived: Vec<(usize, Result<()>)>,
    workers: Vec<JoinHandle<()>>,
    batch_size: usize,
    obs_len: usize,
    action_dim: usize,
    /// Tasks sent and not yet reported.
    in_flight: usize,
    /// The environments of the last batch wait for their actions (false before the first
    /// reset and after an error).
    awaiting_actions: bool,
    env_ids: Vec<usize>,
    obs: Vec<E::Elem>,
    final_obs: Vec<E::Elem>,
    transitions: Vec<Transition>,
}

impl<E: FlatEnv + 'static> AsyncVecEnv<E> {
    /// Wraps `envs` (at least one, all with the same observation length), `threads` worker
    /// threads (at least one) and batches of `batch_size` (1 to `envs.len()`).
    pub fn new(envs: Vec<E>, threads: usize, batch_size: usize) -> Result<Self> {
        let obs_len = check_envs(&envs, threads)?;
        let n = envs.len();
        let action_dim = envs[0].action_space().dim();
        if !(1..=n).contains(&batch_size) {
            return Err(config(
                "batch_size",
                &format!("{batch_size} is not between 1 and the number of environments ({n})"),
            ));
        }
        let slots: Arc<[Mutex<Slot<E>>]> = envs
            .into_iter()
            .map(|env| {
                Mutex::new(Slot {
                    env,
                    obs: vec![E::Elem::default(); obs_len],
                    final_obs: vec![E::Elem::default(); obs_len],
                    transition: Transition::default(),
                })
            })
            .collect();
        let pending = Arc::new(Pending {
            state: Mutex::new(PendingState {
                tasks: VecDeque::with_capacity(n),
                closed: false,
            }),
            available: Condvar::new(),
        });
        let finished = Arc::new(Finished {
            state: Mutex::new(FinishedState {
                results: VecDeque::with_capacity(n),
                wanted: usize::MAX,
            }),
            enough: Condvar::new(),
        });
        let workers = (0..threads)
            .map(|i| {
                let (slots, pending, finished) = (slots.clone(), pending.clone(), finished.clone());
                std::thread::Builder::new()
                    .name(format!("env-{i}"))
                    .spawn(move || work(&slots, &pending, &finished))
                    .map_err(|e| config("threads", &e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            pending,
            finished,
            arrived: Vec::with_capacity(batch_size),
            workers,
            batch_size,
            obs_len,
            action_dim,
            in_flight: 0,
            awaiting_actions: false,
            env_ids: vec![0; batch_size],
            obs: vec![E::Elem::default(); batch_size * obs_len],
            final_obs: vec![E::Elem::default(); batch_size * obs_len],
            transitions: vec![Transition::default(); batch_size],
        })
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: an `AsyncVecEnv` has at least one environment.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Environments per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Length of one observation.
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// Waits for any work in flight, resets every environment (environment `i` gets seed
    /// `seed + i` when a seed is given) and returns the first `batch_size` to finish.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<AsyncStep<'_, E::Elem>> {
        self.awaiting_actions = false;
        // Results of steps nobody will act on; an error there is moot after a reset.
        self.arrived.clear();
        self.finished.take(self.in_flight, &mut self.arrived);
        self.in_flight = 0;
        self.pending.push((0..self.len()).map(|env| Task::Reset {
            env,
            seed: seed.map(|s| s.wrapping_add(env as u64)),
        }));
        self.in_flight = self.len();
        self.collect()
    }

    /// Steps the environments of the last batch, row `k` with action row `k` of `actions`
    /// (`[batch_size, action_dim]`), and returns the next `batch_size` environments to finish
    /// (from this step or an earlier one).
    pub fn step(&mut self, actions: &[f32]) -> Result<AsyncStep<'_, E::Elem>> {
        if !self.awaiting_actions {
            return Err(Error::NeedsReset);
        }
        let d = self.action_dim;
        if actions.len() != self.batch_size * d {
            return Err(Error::InvalidAction {
                action: format!("{} action values", actions.len()),
                reason: format!(
                    "expected {d} per row of the batch ({} rows)",
                    self.batch_size
                ),
            });
        }
        self.awaiting_actions = false;
        let envs = &self.env_ids;
        self.pending.push(
            (envs.iter().zip(actions.chunks(d))).map(|(&env, action)| Task::Step {
                env,
                action: action.to_vec(),
            }),
        );
        self.in_flight += self.batch_size;
        self.collect()
    }

    /// Receives the next `batch_size` finished environments and copies them into the batch.
    fn collect(&mut self) -> Result<AsyncStep<'_, E::Elem>> {
        let len = self.obs_len;
        self.arrived.clear();
        self.finished.take(self.batch_size, &mut self.arrived);
        self.in_flight -= self.batch_size;
        for (k, (env, result)) in self.arrived.drain(..).enumerate() {
            result?;
            let slot = lock(&self.slots[env]);
            self.env_ids[k] = env;
            self.obs[k * len..(k + 1) * len].copy_from_slice(&slot.obs);
            if slot.transition.terminated || slot.transition.truncated {
                self.final_obs[k * len..(k + 1) * len].copy_from_slice(&slot.final_obs);
            }
            self.transitions[k].clone_from(&slot.transition);
        }
        self.awaiting_actions = true;
        Ok(AsyncStep {
            env_ids: &self.env_ids,
            obs: &self.obs,
            final_obs: &self.final_obs,
            transitions: &self.transitions,
        })
    }
}

impl<E: FlatEnv> Drop for AsyncVecEnv<E> {
    fn drop(&mut self) {
        // Workers finish the tasks in flight and stop.
        self.pending.close();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: take a task, run it, report the environment, until the queue closes.
fn work<E: FlatEnv>(slots: &[Mutex<Slot<E>>], pending: &Pending, finished: &Finished) {
    while let Some(task) = pending.next() {
        let env = match task {
            Task::Reset { env, .. } | Task::Step { env, .. } => env,
        };
        // A panicking environment becomes an error for the caller instead of a worker that
        // silently stops reporting (and a caller that waits forever).
        let result = catch_unwind(AssertUnwindSafe(|| {
            let slot = &mut *lock(&slots[env]);
            run(slot, task)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Panicked { env, message })
        });
        finished.push(env, result);
    }
}

fn run<E: FlatEnv>(slot: &mut Slot<E>, task: Task) -> Result<()> {
    match task {
        Task::Reset { seed, .. } => {
            slot.transition = Transition::default();
            slot.env.reset_into(seed, &mut slot.obs).map(|_| ())
        }
        Task::Step { action, .. } => {
            slot.transition =
                step_with_autoreset(&mut slot.env, &action, &mut slot.obs, &mut slot.final_obs)?;
            Ok(())
        }
    }
}

/// The lock of a slot; a panic inside it was already reported as an error, so a poisoned
/// slot is still usable (the environment needs a reset, which the caller learns from the
/// error).
fn lock<T>(slot: &Mutex<T>) -> MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Observation `[id, t, sum of actions]`; episode `k` of environment `id` lasts `id + 2`
    /// steps; every step sleeps a little, odd environments longer, so batches mix; action 99
    /// panics.
    struct Counter {
        id: u32,
        t: u32,
        sum: u32,
    }

    impl FlatEnv for Counter {
        type Elem = u32;
        fn obs_len(&self) -> usize {
            3
        }
        fn action_space(&self) -> crate::Space {
            crate::Space::Discrete(100)
        }
        fn reset_into(&mut self, _seed: Option<u64>, obs: &mut [u32]) -> Result<crate::Info> {
            (self.t, self.sum) = (0, 0);
            obs.copy_from_slice(&[self.id, 0, 0]);
            Ok(crate::Info::default())
        }
        fn step_into(&mut self, action: &[f32], obs: &mut [u32]) -> Result<Transition> {
            let action = action[0] as u32;
            assert!(action != 99, "action 99");
            std::thread::sleep(Duration::from_micros(50 + 200 * u64::from(self.id % 2)));
            self.t += 1;
            self.sum += action;
            obs.copy_from_slice(&[self.id, self.t, self.sum]);
            Ok(Transition {
                reward: f64::from(action),
                terminated: self.t == self.id + 2,
                ..Transition::default()
            })
        }
    }

    fn counters(n: u32, threads: usize, batch: usize) -> AsyncVecEnv<Counter> {
        let envs = (0..n).map(|id| Counter { id, t: 0, sum: 0 }).collect();
        AsyncVecEnv::new(envs, threads, batch).unwrap()
    }

    #[test]
    fn every_environment_follows_its_own_trajectory() {
        let mut envs = counters(6, 3, 2);
        let batch = envs.reset(Some(0)).unwrap();
        let mut ids = batch.env_ids.to_vec();
        // What each environment should show next, replayed on the caller's side.
        let mut expected_t = [0u32; 6];
        let mut expected_sum = [0u32; 6];
        let mut steps_of = [0usize; 6];
        for round in 0..300u32 {
            let actions: Vec<f32> = ids
                .iter()
                .map(|&i| ((i as u32 + round) % 3) as f32)
                .collect();
            for (&i, &a) in ids.iter().zip(&actions) {
                expected_t[i] += 1;
                expected_sum[i] += a as u32;
            }
            let batch = envs.step(&actions).unwrap();
            for (k, &i) in batch.env_ids.iter().enumerate() {
                let row = &batch.obs[3 * k..3 * k + 3];
                let tr = &batch.transitions[k];
                steps_of[i] += 1;
                if tr.terminated {
                    assert_eq!(
                        expected_t[i],
                        i as u32 + 2,
                        "env {i} ended at the wrong step"
                    );
                    let fin = &batch.final_obs[3 * k..3 * k + 3];
                    assert_eq!(fin, [i as u32, expected_t[i], expected_sum[i]]);
                    assert_eq!(row, [i as u32, 0, 0], "the row holds the reset observation");
                    (expected_t[i], expected_sum[i]) = (0, 0);
                } else {
                    assert_eq!(row, [i as u32, expected_t[i], expected_sum[i]]);
                }
            }
            ids = batch.env_ids.to_vec();
            let mut unique = ids.clone();
            unique.dedup();
            assert_eq!(
                unique.len(),
                2,
                "an environment twice in one batch: {ids:?}"
            );
        }
        assert!(
            steps_of.iter().all(|&s| s > 0),
            "every environment gets stepped: {steps_of:?}"
        );
    }

    #[test]
    fn misuse_is_an_error_not_a_hang() {
        let envs: Vec<Counter> = Vec::new();
        assert!(AsyncVecEnv::new(envs, 1, 1).is_err());
        let one = || {
            vec![Counter {
                id: 0,
                t: 0,
                sum: 0,
            }]
        };
        assert!(AsyncVecEnv::new(one(), 0, 1).is_err());
        assert!(AsyncVecEnv::new(one(), 1, 0).is_err());
        assert!(AsyncVecEnv::new(one(), 1, 2).is_err());

        let mut envs = counters(4, 2, 2);
        assert!(matches!(envs.step(&[0.0, 0.0]), Err(Error::NeedsReset)));
        envs.reset(None).unwrap();
        assert!(matches!(
            envs.step(&[0.0]),
            Err(Error::InvalidAction { .. })
        ));
        // The panicking environments report in a later batch (two others are ready first).
        let mut result = envs.step(&[99.0, 99.0]).map(|_| ());
        for _ in 0..2 {
            if result.is_ok() {
                result = envs.step(&[0.0, 0.0]).map(|_| ());
            }
        }
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Panicked { .. }), "{err}");
        assert!(matches!(envs.step(&[0.0, 0.0]), Err(Error::NeedsReset)));
        // A reset recovers, with work still in flight from before.
        envs.reset(Some(1)).unwrap();
        envs.step(&[1.0, 1.0]).unwrap();
        // Dropping with work in flight returns (the workers finish and stop).
    }
}
