//! Atari 2600 games on the Arcade Learning Environment 0.12.1 (the C++ core of ale-py, built by
//! `setup.sh` and bound by [`ale`]), with the standard DQN preprocessing.
//!
//! * [`AtariEnv`]: one game, every preprocessing step a switch in [`AtariConfig`], with the
//!   FIRE reference code's preset ([`AtariConfig::fire_paper`]), Mnih et al.'s as CleanRL runs
//!   it ([`AtariConfig::nature`]) and Machado et al.'s ([`AtariConfig::machado`]).
//! * [`ale`]: one raw emulator (frame by frame; screens, RAM, state cloning).
//! * [`games`]: names as users type them (`Breakout`, `BeamRider`, `MsPacman`) to ROM files,
//!   the ROM directory (`ALE_ROM_DIR` overrides it), and the list of available games.
//!
//! Every input ALE would answer with `exit(1)` (unknown game, missing, unreadable or
//! unrecognised ROM) is an [`crate::Error`] here instead.

pub mod ale;
mod config;
mod downsample;
mod env;
pub mod games;

pub use config::AtariConfig;
pub use env::AtariEnv;
