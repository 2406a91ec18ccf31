//! Classic control in pure Rust with Gymnasium 1.x's dynamics, rewards, termination and time
//! limits: [`CartPole`] (CartPole-v1) and [`Pendulum`] (Pendulum-v1).
//!
//! Gymnasium draws initial states with NumPy's generator; these draw from ChaCha8 with the
//! same distributions, so a seed gives the same episode every time here but not the same one
//! as in Gymnasium. Tests replay Gymnasium's recorded trajectories from their initial states
//! (`set_state`) to check the dynamics number for number.

mod cartpole;
mod pendulum;

pub use cartpole::CartPole;
pub use pendulum::Pendulum;

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

/// What a classic environment is made of: its state in f64, its generator, the step count
/// towards the time limit, whether it needs a reset, and the episode statistics so far.
#[derive(Clone, Debug)]
struct Core<const N: usize> {
    state: [f64; N],
    rng: rand_chacha::ChaCha8Rng,
    steps: u64,
    needs_reset: bool,
    tracker: crate::EpisodeTracker,
}

impl<const N: usize> Core<N> {
    /// The snapshot [`crate::vector::FlatEnv::save_state`] returns, tagged with the task.
    fn save(&self, task: &str) -> Vec<u8> {
        let mut w = crate::snapshot::Writer::new(task);
        for v in self.state {
            w.f64(v);
        }
        w.rng(&self.rng)
            .u64(self.steps)
            .u64(u64::from(self.needs_reset))
            .tracker(&self.tracker)
            .finish()
    }

    fn load(task: &str, snapshot: &[u8]) -> crate::Result<Self> {
        let mut r = crate::snapshot::Reader::new(task, snapshot)?;
        let mut state = [0.0; N];
        for v in &mut state {
            *v = r.f64()?;
        }
        let core = Self {
            state,
            rng: r.rng()?,
            steps: r.u64()?,
            needs_reset: r.u64()? != 0,
            tracker: r.tracker()?,
        };
        r.finish()?;
        Ok(core)
    }
}
