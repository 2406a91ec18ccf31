//! The replay subsystem every agent shares.
//!
//! # Brief overview
//!
//! * [`FrameReplay`] stores Atari transitions compactly: every 84x84 frame once (7,056 bytes),
//!   plus one byte of action, four of reward and one of flags, about 7.06 KB per transition.
//!   Stacks are rebuilt at sample time and never reach across the start of an episode (the
//!   first frame is repeated instead, as the environment does at reset). Each environment of a
//!   vector environment writes its own stream, so streams never interleave.
//! * [`VectorReplay`] stores flat `f32` observations (classic control, MuJoCo).
//! * Both sample uniformly with a seeded generator, optionally with n-step returns, into a
//!   [`Batch`] whose arrays are contiguous and ready to become tensors with one copy.
//! * Both save to and load from disk with a format version ([`Error::Version`] on mismatch);
//!   [`generator_state`] / [`generator_from`] carry the sampling generator across, and the
//!   `atari` checkpoints reuse them for the exploration generator.
//!
//! Terminated and truncated are kept apart: a truncated episode bootstraps from its last
//! observation; only a terminated one has a zero discount.
#![warn(missing_docs)]

mod frames;
mod io;
mod vector;

pub use frames::FrameReplay;
pub use vector::VectorReplay;

use std::path::PathBuf;

/// What went wrong in replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid replay {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An insert that does not fit the buffer's shape or stream state.
    #[error("replay insert: {0}")]
    Insert(String),
    /// Sampling needs more transitions.
    #[error("replay holds {have} transitions, need at least {need} to sample")]
    NotEnough {
        /// Transitions that can be sampled.
        have: usize,
        /// Needed.
        need: usize,
    },
    /// Reading or writing a replay file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A replay file of another format version.
    #[error("{}: replay format version {found}, this build reads version {expected}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// A replay file that is not one, or is corrupt.
    #[error("{}: not a replay file of this kind ({reason})", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The state of a ChaCha8 generator (seed, stream, position) as 56 bytes, so replay files and
/// training checkpoints resume sampling and exploration exactly where they stopped.
pub fn generator_state(rng: &rand_chacha::ChaCha8Rng) -> Vec<u8> {
    let mut out = rng.get_seed().to_vec();
    out.extend_from_slice(&rng.get_word_pos().to_le_bytes());
    out.extend_from_slice(&rng.get_stream().to_le_bytes());
    out
}

/// Rebuilds a generator from [`generator_state`]; `None` for bytes of another shape.
pub fn generator_from(bytes: &[u8]) -> Option<rand_chacha::ChaCha8Rng> {
    use rand::SeedableRng;
    if bytes.len() != 32 + 16 + 8 {
        return None;
    }
    let seed: [u8; 32] = bytes[..32].try_into().ok()?;
    let pos = u128::from_le_bytes(bytes[32..48].try_into().ok()?);
    let stream = u64::from_le_bytes(bytes[48..56].try_into().ok()?);
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(seed);
    rng.set_stream(stream);
    rng.set_word_pos(pos);
    Some(rng)
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A sampled batch, each array contiguous in sample order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch<T> {
    /// Number of transitions.
    pub size: usize,
    /// `[size, obs_len]` observations.
    pub obs: Vec<T>,
    /// `[size, action_dim]` actions (discrete actions as one `f32` index).
    pub actions: Vec<f32>,
    /// `[size]` n-step discounted reward sums.
    pub rewards: Vec<f32>,
    /// `[size, obs_len]` observations n steps later (or at the episode's end).
    pub next_obs: Vec<T>,
    /// `[size]` discount to apply to the bootstrap value: `gamma^k`, or 0 after termination.
    pub discounts: Vec<f32>,
}

/// n-step return settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NStep {
    /// Steps summed (1 = ordinary one-step TD).
    pub n: usize,
    /// Discount factor.
    pub gamma: f32,
}

impl NStep {
    /// One-step returns with discount `gamma`.
    pub fn one(gamma: f32) -> Self {
        Self { n: 1, gamma }
    }

    fn validate(&self) -> Result<()> {
        if self.n == 0 || self.n > 100 {
            return Err(Error::Config {
                field: "n_step",
                reason: format!("must be in 1..=100, got {}", self.n),
            });
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::Config {
                field: "gamma",
                reason: format!("must be in [0, 1], got {}", self.gamma),
            });
        }
        Ok(())
    }
}
