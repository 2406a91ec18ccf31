//! CartPole-v1 (Barto, Sutton & Anderson 1983, as in Gymnasium 1.x).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::vector::{discrete_action, FlatEnv};
use crate::{Env, EpisodeTracker, Error, Info, Result, Space, Step};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
const HALF_LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * HALF_LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
/// Gymnasium registers CartPole-v1 with a 500-step time limit.
pub const MAX_EPISODE_STEPS: u64 = 500;

/// Balance a pole on a cart: actions 0 (push left) and 1 (push right), reward 1 per step,
/// terminated when the pole leans over 12 degrees or the cart leaves [-2.4, 2.4], truncated
/// at 500 steps. The state is kept in f64 and observed as f32, as in Gymnasium.
#[derive(Clone, Debug)]
pub struct CartPole {
    core: super::Core<4>,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPole {
    /// A new environment; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Self {
            core: super::Core {
                state: [0.0; 4],
                rng: ChaCha8Rng::seed_from_u64(0),
                steps: 0,
                needs_reset: true,
                tracker: EpisodeTracker::default(),
            },
        }
    }

    /// Starts an episode from an exact state `[x, x_dot, theta, theta_dot]`.
    pub fn set_state(&mut self, state: [f64; 4]) -> Vec<f32> {
        self.core.state = state;
        self.core.steps = 0;
        self.core.needs_reset = false;
        self.core.tracker.clear();
        self.observe()
    }

    /// The exact internal state.
    pub fn state(&self) -> [f64; 4] {
        self.core.state
    }

    fn observe(&self) -> Vec<f32> {
        self.core.state.iter().map(|&v| v as f32).collect()
    }
}

impl Env for CartPole {
    type Obs = Vec<f32>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::MAX,
            (THETA_THRESHOLD * 2.0) as f32,
            f32::MAX,
        ];
        Space::Box {
            low: high.iter().map(|h| -h).collect(),
            high: high.to_vec(),
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        if let Some(seed) = seed {
            self.core.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let state = std::array::from_fn(|_| self.core.rng.random_range(-0.05..0.05));
        Ok((self.set_state(state), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<Vec<f32>>> {
        if self.core.needs_reset {
            return Err(Error::NeedsReset);
        }
        let force = match action {
            0 => -FORCE_MAG,
            1 => FORCE_MAG,
            other => {
                return Err(Error::InvalidAction {
                    action: other.to_string(),
                    reason: "CartPole actions are 0 (left) and 1 (right)".into(),
                })
            }
        };
        let [x, x_dot, theta, theta_dot] = self.core.state;
        let (sin, cos) = theta.sin_cos();
        let temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        // Explicit Euler, in Gymnasium's order.
        self.core.state = [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ];
        self.core.steps += 1;
        let [x, _, theta, _] = self.core.state;
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        let truncated = !terminated && self.core.steps >= MAX_EPISODE_STEPS;
        let reward = 1.0;
        self.core.needs_reset = terminated || truncated;
        let episode = self.core.tracker.record(reward, self.core.needs_reset);
        Ok(Step {
            obs: self.observe(),
            reward,
            terminated,
            truncated,
            info: Info {
                episode,
                ..Info::default()
            },
        })
    }
}

impl FlatEnv for CartPole {
    flat_env_via_env!(|action| discrete_action(action, 2)?);

    fn save_state(&mut self) -> Option<Vec<u8>> {
        Some(self.core.save("CartPole-v1"))
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        self.core = super::Core::load("CartPole-v1", state)?;
        obs.copy_from_slice(&self.observe());
        Ok(())
    }
}
