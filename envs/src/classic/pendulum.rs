//! Pendulum-v1 (as in Gymnasium 1.x).

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::vector::FlatEnv;
use crate::{Env, EpisodeTracker, Error, Info, Result, Space, Step};

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f64 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const MASS: f64 = 1.0;
const LENGTH: f64 = 1.0;
/// Gymnasium registers Pendulum-v1 with a 200-step time limit.
pub const MAX_EPISODE_STEPS: u64 = 200;

/// Swing a pendulum up and keep it upright: one action, the torque in [-2, 2] (clipped);
/// observation `[cos theta, sin theta, theta_dot]`; reward
/// `-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)` with theta normalised to [-pi, pi);
/// never terminates, truncated at 200 steps.
#[derive(Clone, Debug)]
pub struct Pendulum {
    core: super::Core<2>,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

impl Pendulum {
    /// A new environment; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Self {
            core: super::Core {
                state: [0.0; 2],
                rng: ChaCha8Rng::seed_from_u64(0),
                steps: 0,
                needs_reset: true,
                tracker: EpisodeTracker::default(),
            },
        }
    }

    /// Starts an episode from an exact state `[theta, theta_dot]`.
    pub fn set_state(&mut self, state: [f64; 2]) -> Vec<f32> {
        self.core.state = state;
        self.core.steps = 0;
        self.core.needs_reset = false;
        self.core.tracker.clear();
        self.observe()
    }

    /// The exact internal state.
    pub fn state(&self) -> [f64; 2] {
        self.core.state
    }

    fn observe(&self) -> Vec<f32> {
        let [theta, theta_dot] = self.core.state;
        vec![theta.cos() as f32, theta.sin() as f32, theta_dot as f32]
    }
}

fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Pendulum {
    type Obs = Vec<f32>;
    type Action = [f32; 1];

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![-1.0, -1.0, -MAX_SPEED as f32],
            high: vec![1.0, 1.0, MAX_SPEED as f32],
        }
    }

    fn action_space(&self) -> Space {
        Space::Box {
            low: vec![-MAX_TORQUE as f32],
            high: vec![MAX_TORQUE as f32],
        }
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        if let Some(seed) = seed {
            self.core.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let theta = self.core.rng.random_range(-PI..PI);
        let theta_dot = self.core.rng.random_range(-1.0..1.0);
        Ok((self.set_state([theta, theta_dot]), Info::default()))
    }

    fn step(&mut self, action: &[f32; 1]) -> Result<Step<Vec<f32>>> {
        if self.core.needs_reset {
            return Err(Error::NeedsReset);
        }
        if action[0].is_nan() {
            return Err(Error::InvalidAction {
                action: "NaN".into(),
                reason: "the torque must be a number".into(),
            });
        }
        // Gymnasium clips the f32 action and keeps it in f32; u^2 is then formed in f32.
        let u = action[0].clamp(-MAX_TORQUE as f32, MAX_TORQUE as f32);
        let [theta, theta_dot] = self.core.state;
        let cost = angle_normalize(theta).powi(2)
            + 0.1 * theta_dot.powi(2)
            + f64::from(0.001f32 * (u * u));
        let new_theta_dot = (theta_dot
            + (3.0 * G / (2.0 * LENGTH) * theta.sin()
                + f64::from(3.0f32 / (MASS * LENGTH * LENGTH) as f32 * u))
                * DT)
            .clamp(-MAX_SPEED, MAX_SPEED);
        self.core.state = [theta + new_theta_dot * DT, new_theta_dot];
        self.core.steps += 1;
        let truncated = self.core.steps >= MAX_EPISODE_STEPS;
        self.core.needs_reset = truncated;
        let reward = -cost;
        let episode = self.core.tracker.record(reward, truncated);
        Ok(Step {
            obs: self.observe(),
            reward,
            terminated: false,
            truncated,
            info: Info {
                episode,
                ..Info::default()
            },
        })
    }
}

impl FlatEnv for Pendulum {
    flat_env_via_env!(|action| {
        let torque: [f32; 1] = action.try_into().map_err(|_| Error::InvalidAction {
            action: format!("{action:?}"),
            reason: "Pendulum takes one torque value".into(),
        })?;
        torque
    });

    fn save_state(&mut self) -> Option<Vec<u8>> {
        Some(self.core.save("Pendulum-v1"))
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        self.core = super::Core::load("Pendulum-v1", state)?;
        obs.copy_from_slice(&self.observe());
        Ok(())
    }
}
