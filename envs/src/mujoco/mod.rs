//! MuJoCo environments: the HumanoidBench H1 locomotion tasks on MuJoCo 3.17.0 (through
//! `mujoco-rs`, linked against the `libmujoco.so.3.17.0` of PyPI's `mujoco==3.17.0`, which
//! `setup.sh` installs).
//!
//! * [`HumanoidEnv`]: `h1-walk-v0`, `h1-stand-v0`, `h1-run-v0`, `h1-balance_simple-v0`, step for
//!   step and bit for bit what HumanoidBench (gymnasium 0.29.1, MuJoCo 3.17.0) computes, seeded
//!   resets included ([`seeding`] reimplements numpy's `PCG64(SeedSequence(seed))`).
//! * [`ActionRepeat`]: the action-repeat wrapper.
//! * The scene files and meshes ship in `envs/assets/humanoid_bench` (MIT and BSD-3 licences
//!   beside them); `FIRE_RL_HUMANOID_ASSETS` points elsewhere.
//!
//! A [`HumanoidModel`] is loaded once and shared read-only between any number of environments
//! and threads; each environment owns its `MjData`.

mod humanoid;
mod repeat;
pub mod reward;
pub mod seeding;

use std::sync::Once;

pub use humanoid::{
    default_assets_dir, HumanoidConfig, HumanoidEnv, HumanoidModel, SimWarnings, Task, ASSETS_VAR,
    DEFAULT_RANDOMNESS, FRAME_SKIP, MAX_EPISODE_STEPS, NU,
};
/// The MuJoCo binding this module uses (for tools that need raw `MjData` access).
pub use mujoco_rs;
use mujoco_rs::prelude::{MjLogMessage, MjtLogLevel};
pub use repeat::ActionRepeat;

/// The MuJoCo version the library reports (e.g. `3.17.0`).
pub fn mujoco_version() -> &'static str {
    mujoco_rs::mujoco_version()
}

/// Routes MuJoCo's messages away from stdout (which the binaries use for data) and from
/// `MUJOCO_LOG.TXT`: warnings are counted per environment from `mjData.warning` instead, errors
/// go to stderr (MuJoCo then ends the process). Installed once, before the first model loads.
pub(crate) fn quiet_mujoco_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: runs before this crate loads any model or makes any data; the Once holds
        // every other caller until it returns.
        unsafe { mujoco_rs::prelude::set_log_handler(log_handler) };
    });
}

fn log_handler(message: &MjLogMessage) {
    if message.level() == MjtLogLevel::mjLOG_ERROR {
        eprintln!("MuJoCo error: {}", message.subject());
    }
}
