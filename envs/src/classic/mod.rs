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
