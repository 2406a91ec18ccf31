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
//! * [`Replay`] is what the training loop sees of either: per-environment streams fed one step
//!   at a time with the *part* of an observation a step adds (the newest frame for
//!   [`FrameReplay`], the whole observation for [`VectorReplay`]), so the message an actor sends
//!   the learner is that part and nothing more.
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

/// A replay buffer as the training loop feeds and samples it: one stream per environment.
///
/// Feed each stream with [`start_episode`](Self::start_episode) (the part of the first
/// observation), then [`add_step`](Self::add_step) per step (the action row, the reward,
/// whether the step terminated the episode, the part of the next observation, or of the final
/// one when the episode ended, and whether it ended for either reason).
pub trait Replay: Send + Sized {
    /// Observation element (`u8` pixels, `f32` states).
    type Elem: Copy + Default + Send + Sync + 'static;

    /// Elements a step adds: the length of [`part_of`](Self::part_of)'s result.
    fn part_len(&self) -> usize;
    /// The part of a whole observation the buffer stores for a step: its last
    /// [`part_len`](Self::part_len) elements (the newest frame of a stack, or everything).
    fn part_of<'a>(&self, obs: &'a [Self::Elem]) -> &'a [Self::Elem] {
        &obs[obs.len() - self.part_len()..]
    }
    /// Begins an episode in `stream`.
    fn start_episode(&mut self, stream: usize, part: &[Self::Elem]) -> Result<()>;
    /// Records one step of `stream`.
    fn add_step(
        &mut self,
        stream: usize,
        action: &[f32],
        reward: f32,
        terminated: bool,
        next_part: &[Self::Elem],
        episode_over: bool,
    ) -> Result<()>;
    /// Samples `size` transitions uniformly with replacement.
    fn sample(&mut self, size: usize, nstep: NStep) -> Result<Batch<Self::Elem>>;
    /// Samples as [`sample`](Self::sample) does, drawing from `rng` and leaving the buffer's
    /// own generator untouched, so the training batches do not depend on these draws.
    fn sample_with(
        &self,
        size: usize,
        nstep: NStep,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Batch<Self::Elem>>;
    /// Transitions that can be sampled.
    fn len(&self) -> usize;
    /// Whether nothing can be sampled.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Saves contents, stream positions and the sampling generator.
    fn save(&self, path: &std::path::Path) -> Result<()>;
    /// Loads what [`save`](Self::save) wrote.
    fn load(path: &std::path::Path) -> Result<Self>;
}

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
