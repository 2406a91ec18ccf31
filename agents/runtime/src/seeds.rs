//! Every seed of a run, derived from the run seed in one place.
//!
//! | stream | what it seeds | derived as |
//! |---|---|---|
//! | network init | libtorch's generator before the networks are built | `seed` |
//! | environment `i` | its emulator / physics at construction | `seed * 1000 + i` |
//! | environment reset at step `s` | the vector env's reset (env `i` gets `+ i`) | `seed * 1_000_003 + s` |
//! | exploration | the learner's acting generator (epsilon draws, random actions) | `seed` |
//! | replay sampling | the buffer's sampler | `seed` |
//! | actor `k` | an actor thread's acting generator | `seed * 31 + k` |
//! | evaluation at step `s` | its environments and its own acting generator | `seed ^ 0xE7A1 ^ s` |
//! | probe at step `s` | the plasticity probe drawn from replay | ChaCha8 seed `seed`, stream 1, word `s` |
//! | intervention batch at step `s` | the batch ReDo scores neurons on | ChaCha8 seed `seed`, stream 2, word `s` |
//! | levels | the observation offsets of a continual run's levels, drawn once | ChaCha8 seed `seed`, stream 3 |
//!
//! Evaluation, probes and intervention batches draw from their own streams, so turning it on or off, or changing how often it
//! runs, leaves training unchanged. The formulas are the ones the first `atari` loop used, so
//! runs from before this module reproduce.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The named seed streams of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    run: u64,
}

impl Seeds {
    /// The streams of run seed `run`.
    pub fn new(run: u64) -> Self {
        Self { run }
    }

    /// libtorch's generator, before building networks.
    pub fn network_init(self) -> i64 {
        self.run as i64
    }

    /// Environment `index` at construction.
    pub fn environment(self, index: usize) -> u64 {
        self.run.wrapping_mul(1000).wrapping_add(index as u64)
    }

    /// The vector environment's reset at `step` (environment `i` adds `i`).
    pub fn reset(self, step: u64) -> u64 {
        self.run.wrapping_mul(1_000_003).wrapping_add(step)
    }

    /// The learner's acting generator.
    pub fn exploration(self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.run)
    }

    /// The replay sampler.
    pub fn replay(self) -> u64 {
        self.run
    }

    /// Actor thread `index`'s acting generator.
    pub fn actor(self, index: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.run.wrapping_mul(31).wrapping_add(index as u64))
    }

    /// The plasticity probe drawn at `step`: a generator of its own, positioned by the step,
    /// so a probe depends only on the replay's contents and the step (a resumed run draws the
    /// same one) and never moves the replay's own sampler.
    pub fn probe(self, step: u64) -> ChaCha8Rng {
        self.positioned(1, step)
    }

    /// The batch an intervention that scores neurons (ReDo) draws at `step`, like a training
    /// batch but from its own stream.
    pub fn intervention(self, step: u64) -> ChaCha8Rng {
        self.positioned(2, step)
    }

    /// The observation offsets of a continual run's levels ([`crate::levels`]), drawn once.
    pub fn levels(self) -> ChaCha8Rng {
        self.positioned(3, 0)
    }

    fn positioned(self, stream: u64, step: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.run);
        rng.set_stream(stream);
        // 2^20 words per step: far more than any batch draws.
        rng.set_word_pos(u128::from(step) << 20);
        rng
    }

    /// The evaluation at `step`: environments and acting generator.
    pub fn evaluation(self, step: u64) -> u64 {
        self.run ^ 0xE7A1 ^ step
    }
}
