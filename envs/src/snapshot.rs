//! Byte snapshots of an environment's whole state (dynamics, generator, counters, episode
//! statistics), so a checkpoint resumes the episodes in flight exactly where they were instead
//! of restarting them. See [`crate::vector::FlatEnv::save_state`].
//!
//! The format is private to each environment and versioned by a tag: a snapshot is only ever
//! read back by the same build that wrote it, through the checkpoint that holds it, and a
//! snapshot of another environment is refused rather than misread.

use rand_chacha::ChaCha8Rng;

use crate::{EpisodeTracker, Error, Result};

/// Appends fields in order; [`Reader`] takes them back in the same order.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    /// A snapshot of the environment kind `tag` (checked by [`Reader::new`]).
    pub(crate) fn new(tag: &str) -> Self {
        let mut w = Self(Vec::with_capacity(128));
        w.bytes(tag.as_bytes());
        w
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Bit for bit, NaN payloads included.
    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    pub(crate) fn f64s(&mut self, v: &[f64]) -> &mut Self {
        self.u64(v.len() as u64);
        for &x in v {
            self.f64(x);
        }
        self
    }

    pub(crate) fn u128(&mut self, v: u128) -> &mut Self {
        self.u64(v as u64).u64((v >> 64) as u64)
    }

    /// Seed, stream and word position: the generator continues with the same numbers.
    pub(crate) fn rng(&mut self, rng: &ChaCha8Rng) -> &mut Self {
        self.bytes(&rng.get_seed());
        self.u64(rng.get_stream());
        let pos = rng.get_word_pos();
        self.u64(pos as u64).u64((pos >> 64) as u64)
    }

    pub(crate) fn tracker(&mut self, t: &EpisodeTracker) -> &mut Self {
        self.f64(t.episode_return).u64(t.length)
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// Reads what a [`Writer`] wrote; every shortfall or leftover is an [`Error::Snapshot`].
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Refuses a snapshot of another environment kind than `tag`.
    pub(crate) fn new(tag: &str, snapshot: &'a [u8]) -> Result<Self> {
        let mut r = Self { rest: snapshot };
        let found = r.bytes()?;
        if found != tag.as_bytes() {
            return Err(Error::Snapshot(format!(
                "a snapshot of `{}` given to `{tag}`",
                String::from_utf8_lossy(found)
            )));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Snapshot("truncated".into()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| Error::Snapshot("length overflow".into()))?;
        self.take(n)
    }

    pub(crate) fn f64s(&mut self) -> Result<Vec<f64>> {
        let n = self.u64()?;
        if n > (self.rest.len() / 8) as u64 {
            return Err(Error::Snapshot("truncated".into()));
        }
        (0..n).map(|_| self.f64()).collect()
    }

    pub(crate) fn u128(&mut self) -> Result<u128> {
        let lo = self.u64()?;
        Ok(u128::from(lo) | u128::from(self.u64()?) << 64)
    }

    pub(crate) fn rng(&mut self) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let seed: [u8; 32] = self
            .bytes()?
            .try_into()
            .map_err(|_| Error::Snapshot("generator seed is not 32 bytes".into()))?;
        let stream = self.u64()?;
        let (lo, hi) = (self.u64()?, self.u64()?);
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng.set_word_pos(u128::from(lo) | u128::from(hi) << 64);
        Ok(rng)
    }

    pub(crate) fn tracker(&mut self) -> Result<EpisodeTracker> {
        Ok(EpisodeTracker {
            episode_return: self.f64()?,
            length: self.u64()?,
        })
    }

    /// Everything must have been read: a longer snapshot is another format.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Snapshot(format!("{} unread bytes", self.rest.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fields_round_trip_and_the_generator_continues() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let _: u32 = rng.random(); // mid-stream, not at a block boundary
        let tracker = EpisodeTracker {
            episode_return: -0.25,
            length: 17,
        };
        let bytes = Writer::new("toy")
            .u64(3)
            .f64(f64::NAN)
            .rng(&rng)
            .tracker(&tracker)
            .finish();
        let mut r = Reader::new("toy", &bytes).unwrap();
        assert_eq!(r.u64().unwrap(), 3);
        assert!(r.f64().unwrap().is_nan());
        let mut restored = r.rng().unwrap();
        let t = r.tracker().unwrap();
        r.finish().unwrap();
        assert_eq!((t.episode_return, t.length), (-0.25, 17));
        let expected: Vec<u64> = (0..5).map(|_| rng.random()).collect();
        let got: Vec<u64> = (0..5).map(|_| restored.random()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn another_kind_or_a_cut_snapshot_is_refused() {
        let bytes = Writer::new("cartpole").u64(1).finish();
        let err = Reader::new("pendulum", &bytes).err().unwrap().to_string();
        assert!(err.contains("`cartpole` given to `pendulum`"), "{err}");
        let mut r = Reader::new("cartpole", &bytes[..bytes.len() - 1]).unwrap();
        assert!(r.u64().is_err());
        let r = Reader::new("cartpole", &bytes).unwrap();
        assert!(r.finish().is_err(), "an unread field is an error");
    }
}
