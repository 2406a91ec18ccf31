//! MountainCar-v0 (Moore 1990; Sutton & Barto's mountain car, as in Gymnasium 1.x).

use super::Core;
use crate::mujoco::seeding::Pcg64;
use crate::vector::{discrete_action, FlatEnv};
use crate::{Env, Error, Info, Result, Space, Step};

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.5;
const GOAL_VELOCITY: f64 = 0.0;
const FORCE: f64 = 0.001;
const GRAVITY: f64 = 0.0025;
/// Gymnasium registers MountainCar-v0 with a 200-step time limit.
pub const MAX_EPISODE_STEPS: u64 = 200;
const TASK: &str = "MountainCar-v0";

/// Drive an underpowered car up the right hill: actions 0 (push left), 1 (no push) and 2
/// (push right); observation `[position, velocity]`; reward -1 on every step, the last
/// included; terminated when the car reaches position 0.5 with a velocity >= 0; truncated at
/// 200 steps (both flags are set if the 200th step also reaches the goal, as Gymnasium's
/// `TimeLimit` does).
///
/// As in Gymnasium, the state is kept in f64 and observed as f32: the velocity is clipped to
/// [-0.07, 0.07], the position to [-1.2, 0.6], and the car stops (velocity 0) when it hits the
/// left wall. Resets draw the position uniformly from [-0.6, -0.4] (velocity 0) with NumPy's
/// `PCG64(SeedSequence(seed))`, so `reset(Some(s))` returns Gymnasium's `reset(seed=s)`
/// observation bit for bit. An environment never seeded draws as if seeded with 0 (Gymnasium
/// would take a seed from the operating system).
#[derive(Clone, Debug)]
pub struct MountainCar {
    core: Core<2, Pcg64>,
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCar {
    /// A new environment; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Self {
            core: Core::new(Pcg64::from_seed(0)),
        }
    }

    /// Starts an episode from an exact state `[position, velocity]`.
    pub fn set_state(&mut self, state: [f64; 2]) -> Vec<f32> {
        self.core.start(state);
        self.observe()
    }

    /// The exact internal state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.core.state
    }

    fn observe(&self) -> Vec<f32> {
        self.core.state.iter().map(|&v| v as f32).collect()
    }
}

impl Env for MountainCar {
    type Obs = Vec<f32>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![MIN_POSITION as f32, -MAX_SPEED as f32],
            high: vec![MAX_POSITION as f32, MAX_SPEED as f32],
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        if let Some(seed) = seed {
            self.core.rng = Pcg64::from_seed(seed);
        }
        // np.array([np_random.uniform(low=-0.6, high=-0.4), 0]): one draw.
        let mut position = [0.0];
        self.core.rng.uniform_into(-0.6, -0.4, &mut position);
        Ok((self.set_state([position[0], 0.0]), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<Vec<f32>>> {
        self.core.check_running()?;
        if *action > 2 {
            return Err(Error::InvalidAction {
                action: action.to_string(),
                reason: "MountainCar actions are 0 (push left), 1 (none) and 2 (push right)".into(),
            });
        }
        let [position, velocity] = self.core.state;
        // velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)
        let push = (*action as f64 - 1.0) * FORCE;
        let velocity =
            (velocity + (push + (3.0 * position).cos() * -GRAVITY)).clamp(-MAX_SPEED, MAX_SPEED);
        let position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION);
        let velocity = if position == MIN_POSITION && velocity < 0.0 {
            0.0
        } else {
            velocity
        };
        self.core.state = [position, velocity];
        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        let reward = -1.0;
        let (truncated, episode) = self.core.finish_step(reward, terminated, MAX_EPISODE_STEPS);
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

impl FlatEnv for MountainCar {
    flat_env_via_env!(|action| discrete_action(action, 3)?);

    fn save_state(&mut self) -> Option<Vec<u8>> {
        Some(self.core.save(TASK))
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        self.core = Core::load(TASK, state)?;
        obs.copy_from_slice(&self.observe());
        Ok(())
    }
}
