//! Classic control in pure Rust with Gymnasium 1.x's dynamics, rewards, termination and time
//! limits: [`CartPole`] (CartPole-v1), [`Pendulum`] (Pendulum-v1), [`Acrobot`] (Acrobot-v1)
//! and [`MountainCar`] (MountainCar-v0).
//!
//! Two generators draw the initial states:
//!
//! * [`Acrobot`] and [`MountainCar`] use NumPy's `Generator(PCG64(SeedSequence(seed)))`, as
//!   Gymnasium's `seeding.np_random` does (reimplemented bit for bit in
//!   [`crate::mujoco::seeding`]), with Gymnasium's draws: `reset(Some(s))` gives exactly
//!   Gymnasium's `env.reset(seed=s)`, and each later `reset(None)` continues the generator as
//!   Gymnasium's does, so whole episodes match Gymnasium's from the seed on.
//! * [`CartPole`] and [`Pendulum`] came first and draw from ChaCha8 with Gymnasium's
//!   distributions: a seed gives the same episode every time here but not the one it gives in
//!   Gymnasium. They keep ChaCha8 so that their seeds, results and saved snapshots stay valid.
//!
//! Tests replay Gymnasium's recorded trajectories (from the seed, or from a recorded state
//! through `set_state`) to check the dynamics number for number
//! (`envs/tests/classic.rs`, fixture made by `envs/tests/data/record_classic.py`).

/// The `FlatEnv` methods every classic task writes alike (observations are the `Env`'s own
/// `Vec<f32>`); `$parse` reads the action row `$action` as the task's action.
macro_rules! flat_env_via_env {
    (|$action:ident| $parse:expr) => {
        type Elem = f32;

        fn obs_len(&self) -> usize {
            crate::Env::observation_space(self).dim()
        }

        fn action_space(&self) -> crate::Space {
            crate::Env::action_space(self)
        }

        fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> crate::Result<crate::Info> {
            super::reset_flat(self, seed, obs)
        }

        fn step_into(
            &mut self,
            $action: &[f32],
            obs: &mut [f32],
        ) -> crate::Result<crate::vector::Transition> {
            let a = $parse;
            super::step_flat(self, &a, obs)
        }
    };
}

mod acrobot;
mod cartpole;
mod mountain_car;
mod numpy_f32;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::MountainCar;
pub use pendulum::Pendulum;

use crate::mujoco::seeding::Pcg64;
use crate::snapshot::{Reader, Writer};
use rand_chacha::ChaCha8Rng;

/// [`crate::vector::FlatEnv::reset_into`] for an [`crate::Env`] with `Vec<f32>` observations.
fn reset_flat<E: crate::Env<Obs = Vec<f32>>>(
    env: &mut E,
    seed: Option<u64>,
    obs: &mut [f32],
) -> crate::Result<crate::Info> {
    let (first, info) = env.reset(seed)?;
    obs.copy_from_slice(&first);
    Ok(info)
}

/// [`crate::vector::FlatEnv::step_into`] for an [`crate::Env`] with `Vec<f32>` observations,
/// once the action row is read as the environment's own action.
fn step_flat<E: crate::Env<Obs = Vec<f32>>>(
    env: &mut E,
    action: &E::Action,
    obs: &mut [f32],
) -> crate::Result<crate::vector::Transition> {
    let step = env.step(action)?;
    obs.copy_from_slice(&step.obs);
    Ok(crate::vector::Transition {
        reward: step.reward,
        terminated: step.terminated,
        truncated: step.truncated,
        info: step.info,
    })
}

/// A generator a classic environment keeps, saved in its snapshots so that resets after a
/// restore draw the same numbers.
trait Generator: Clone + std::fmt::Debug {
    fn write(&self, w: &mut Writer);
    fn read(r: &mut Reader<'_>) -> crate::Result<Self>;
}

impl Generator for ChaCha8Rng {
    fn write(&self, w: &mut Writer) {
        w.rng(self);
    }

    fn read(r: &mut Reader<'_>) -> crate::Result<Self> {
        r.rng()
    }
}

impl Generator for Pcg64 {
    fn write(&self, w: &mut Writer) {
        let (state, inc) = self.parts();
        w.u128(state).u128(inc);
    }

    fn read(r: &mut Reader<'_>) -> crate::Result<Self> {
        let (state, inc) = (r.u128()?, r.u128()?);
        if inc & 1 == 0 {
            // PCG's increment is always odd; an even one is not a generator this wrote.
            return Err(crate::Error::Snapshot("PCG64 increment is even".into()));
        }
        Ok(Pcg64::from_parts(state, inc))
    }
}

/// What a classic environment is made of: its state in f64, its generator, the step count
/// towards the time limit, whether it needs a reset, and the episode statistics so far.
#[derive(Clone, Debug)]
struct Core<const N: usize, R = ChaCha8Rng> {
    state: [f64; N],
    rng: R,
    steps: u64,
    needs_reset: bool,
    tracker: crate::EpisodeTracker,
}

impl<const N: usize, R: Generator> Core<N, R> {
    /// Before the first reset: a zero state that needs a reset.
    fn new(rng: R) -> Self {
        Self {
            state: [0.0; N],
            rng,
            steps: 0,
            needs_reset: true,
            tracker: crate::EpisodeTracker::default(),
        }
    }

    /// Starts an episode from `state`.
    fn start(&mut self, state: [f64; N]) {
        self.state = state;
        self.steps = 0;
        self.needs_reset = false;
        self.tracker.clear();
    }

    /// Fails with [`crate::Error::NeedsReset`] unless an episode is running.
    fn check_running(&self) -> crate::Result<()> {
        if self.needs_reset {
            Err(crate::Error::NeedsReset)
        } else {
            Ok(())
        }
    }

    /// Counts a step that gave `reward`; returns `truncated` for a `limit`-step time limit
    /// (Gymnasium's `TimeLimit`: `elapsed >= limit`, whether or not the step also terminated)
    /// and the episode statistics if the episode ended.
    fn finish_step(
        &mut self,
        reward: f64,
        terminated: bool,
        limit: u64,
    ) -> (bool, Option<crate::EpisodeStats>) {
        self.steps += 1;
        let truncated = self.steps >= limit;
        self.needs_reset = terminated || truncated;
        (truncated, self.tracker.record(reward, self.needs_reset))
    }

    /// Appends the fields to a snapshot: state, generator, steps, needs-reset, statistics.
    fn write(&self, w: &mut Writer) {
        for v in self.state {
            w.f64(v);
        }
        self.rng.write(w);
        w.u64(self.steps)
            .u64(u64::from(self.needs_reset))
            .tracker(&self.tracker);
    }

    /// Reads what [`write`](Self::write) appended.
    fn read(r: &mut Reader<'_>) -> crate::Result<Self> {
        let mut state = [0.0; N];
        for v in &mut state {
            *v = r.f64()?;
        }
        Ok(Self {
            state,
            rng: R::read(r)?,
            steps: r.u64()?,
            needs_reset: r.u64()? != 0,
            tracker: r.tracker()?,
        })
    }

    /// The snapshot [`crate::vector::FlatEnv::save_state`] returns, tagged with the task.
    fn save(&self, task: &str) -> Vec<u8> {
        let mut w = Writer::new(task);
        self.write(&mut w);
        w.finish()
    }

    fn load(task: &str, snapshot: &[u8]) -> crate::Result<Self> {
        let mut r = Reader::new(task, snapshot)?;
        let core = Self::read(&mut r)?;
        r.finish()?;
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg64_cores_round_trip_and_a_damaged_generator_is_refused() {
        let mut core = Core::<2, Pcg64>::new(Pcg64::from_seed(7));
        core.rng.next_u64();
        core.start([0.25, -1.5]);
        let bytes = core.save("toy");
        let mut back = Core::<2, Pcg64>::load("toy", &bytes).unwrap();
        assert_eq!(
            (back.state, back.steps, back.needs_reset),
            ([0.25, -1.5], 0, false)
        );
        assert_eq!(back.rng.next_u64(), core.rng.next_u64());
        // The tag (length and 3 bytes), 2 state values, PCG's state, then its increment.
        let mut even = bytes.clone();
        even[8 + 3 + 16 + 16] &= !1;
        let err = Core::<2, Pcg64>::load("toy", &even)
            .unwrap_err()
            .to_string();
        assert!(err.contains("increment"), "{err}");
        assert!(Core::<2, Pcg64>::load("toy", &bytes[..bytes.len() - 1]).is_err());
    }
}
