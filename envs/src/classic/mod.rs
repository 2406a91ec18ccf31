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
