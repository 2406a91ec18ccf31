//! NumPy's legacy `numpy.random.RandomState`, reimplemented for the draws MinAtar makes.
//!
//! The `minatar` package shares one `RandomState(seed)` between its `Environment` wrapper and
//! the game. Every draw it makes is one of:
//!
//! * `rand()` / `rand(n)`: [`RandomState::rand`], the 53-bit double NumPy builds from two
//!   32-bit outputs, `((a >> 5) * 2^26 + (b >> 6)) / 2^53`;
//! * `randint(n)`, `randint(low, high)`, `randint(low, high, size)`:
//!   [`RandomState::randint`], NumPy's legacy bounded integers ("masked rejection"): with
//!   `range = high - low - 1`, draw 32-bit outputs, AND them with the smallest all-ones mask
//!   covering `range`, and keep the first that is at most `range`. A range of 0
//!   (`randint(1)`) draws nothing. (Legacy `randint` returns int64, but NumPy takes this
//!   32-bit path whenever the range fits in 32 bits, as every MinAtar range does.)
//!
//! The generator is MT19937 (Matsumoto & Nishimura 1998) seeded as `RandomState(s)` seeds an
//! int: `init_genrand(s)`, the reference seeding, for `0 <= s <= 2^32 - 1` (NumPy refuses other
//! ints with "Seed must be between 0 and 2**32 - 1"). All of this was checked against NumPy
//! 2.4.6, values and the number of 32-bit outputs each call consumes
//! (`envs/tests/data/record_minatar.py` records them; `envs/tests/minatar.rs` compares).

/// Words of MT19937's state.
const N: usize = 624;
/// MT19937's middle word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// NumPy's legacy `RandomState`: MT19937 and the draws MinAtar uses.
///
/// Invariant: `pos <= N`; `pos == N` means the next output regenerates the whole state first
/// (as right after seeding).
#[derive(Clone)]
pub struct RandomState {
    mt: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for RandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomState")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl RandomState {
    /// `numpy.random.RandomState(seed)` for an int seed (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, pos: N }
    }

    /// How many outputs of the current block of 624 are used (NumPy's `get_state()[2]`).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next 32-bit output (`genrand_int32`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Regenerates the 624 words.
    fn twist(&mut self) {
        // Branch-free, so that the loops vectorise.
        let mix = |hi: u32, lo: u32, far: u32| {
            let y = (hi & UPPER_MASK) | (lo & LOWER_MASK);
            far ^ (y >> 1) ^ ((y & 1).wrapping_neg() & MATRIX_A)
        };
        for i in 0..N - M {
            self.mt[i] = mix(self.mt[i], self.mt[i + 1], self.mt[i + M]);
        }
        for i in N - M..N - 1 {
            self.mt[i] = mix(self.mt[i], self.mt[i + 1], self.mt[i + M - N]);
        }
        self.mt[N - 1] = mix(self.mt[N - 1], self.mt[0], self.mt[M - 1]);
        self.pos = 0;
    }

    /// `rand()`: a double in [0, 1) from two outputs.
    #[inline]
    pub fn rand(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// `randint(low, high)`: an integer in `low..high` by masked rejection; `high > low`.
    /// (`randint(n)` is `randint(0, n)`; `randint(low, high, size)` is `size` calls of this.)
    #[inline]
    pub fn randint(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(high > low, "randint({low}, {high}): empty range");
        let range = (high - low - 1) as u32;
        if range == 0 {
            return low;
        }
        // The smallest 2^k - 1 >= range.
        let mut mask = range;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let value = self.next_u32() & mask;
            if value <= range {
                return low + i64::from(value);
            }
        }
    }

    /// The state as words: the 624 words and the position (for snapshots).
    pub(crate) fn parts(&self) -> (&[u32; N], usize) {
        (&self.mt, self.pos)
    }

    /// The generator [`parts`](Self::parts) described; `None` for a position past 624.
    pub(crate) fn from_parts(mt: [u32; N], pos: usize) -> Option<Self> {
        (pos <= N).then_some(Self { mt, pos })
    }
}

/// Words of the generator's state (for snapshots).
pub(crate) const STATE_WORDS: usize = N;

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference values of MT19937's authors: `init_genrand(5489)`, the first outputs.
    #[test]
    fn the_reference_sequence_of_seed_5489() {
        let mut r = RandomState::new(5489);
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
        // The 10,000th output of the reference implementation (std::mt19937's check value).
        let mut r = RandomState::new(5489);
        let tenth_thousand = (0..10_000).map(|_| r.next_u32()).last().unwrap();
        assert_eq!(tenth_thousand, 4_123_659_995);
    }

    #[test]
    fn randint_of_one_value_draws_nothing_and_ranges_stay_inside() {
        let mut r = RandomState::new(3);
        assert_eq!(r.randint(0, 1), 0);
        assert_eq!(r.position(), N, "randint(1) consumed an output");
        for _ in 0..1000 {
            let v = r.randint(1, 9);
            assert!((1..9).contains(&v), "{v}");
            let u = r.rand();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn parts_round_trip_and_a_bad_position_is_refused() {
        let mut r = RandomState::new(11);
        r.next_u32();
        let (mt, pos) = r.parts();
        let mut back = RandomState::from_parts(*mt, pos).unwrap();
        assert_eq!(back.next_u32(), r.next_u32());
        assert!(RandomState::from_parts([0; N], N + 1).is_none());
    }
}
