//! numpy's `Generator(PCG64(SeedSequence(seed))).uniform`, bit for bit, for seeded resets that
//! match `env.reset(seed=s)` of HumanoidBench (gymnasium's `seeding.np_random`).
//!
//! Written from the algorithm (HumanoidBench SPEC, Appendix A; numpy's `bit_generator.pyx` and
//! `pcg64.h`); tests compare with numbers numpy 2.4 printed.

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_L: u32 = 0xca01_f9dd;
const MIX_R: u32 = 0x4973_f715;
const POOL_SIZE: usize = 4;
const PCG_MULT: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// numpy's `SeedSequence(seed).generate_state(4, np.uint64)` for a non-negative integer seed.
pub fn seed_sequence_state(seed: u64) -> [u64; 4] {
    // Little-endian 32-bit words, at least one (seed 0 gives [0]).
    let words: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    let mut h = INIT_A;
    let mut hashmix = |mut v: u32| {
        v ^= h;
        h = h.wrapping_mul(MULT_A);
        v = v.wrapping_mul(h);
        v ^ (v >> 16)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_L.wrapping_mul(x).wrapping_sub(MIX_R.wrapping_mul(y));
        r ^ (r >> 16)
    };
    let mut pool = [0u32; POOL_SIZE];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(words.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src]));
            }
        }
    }
    // A u64 seed has at most two words, so there are none beyond the pool to mix in.
    let mut h = INIT_B;
    let mut out = [0u32; 8];
    for (k, o) in out.iter_mut().enumerate() {
        let mut v = pool[k % POOL_SIZE];
        v ^= h;
        h = h.wrapping_mul(MULT_B);
        v = v.wrapping_mul(h);
        *o = v ^ (v >> 16);
    }
    std::array::from_fn(|j| u64::from(out[2 * j]) | (u64::from(out[2 * j + 1]) << 32))
}

/// numpy's `PCG64` bit generator (128-bit LCG, XSL-RR output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
}

impl Pcg64 {
    /// The generator's whole state (`state`, `inc`), for snapshots.
    pub(crate) fn parts(&self) -> (u128, u128) {
        (self.state, self.inc)
    }

    /// A generator at the state [`parts`](Self::parts) returned.
    pub(crate) fn from_parts(state: u128, inc: u128) -> Self {
        Self { state, inc }
    }

    /// `PCG64(SeedSequence(seed))`.
    pub fn from_seed(seed: u64) -> Self {
        let s = seed_sequence_state(seed);
        let initstate = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let initseq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = Self {
            state: 0,
            inc: (initseq << 1) | 1,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }

    /// A double in [0, 1) from the top 53 bits (numpy's `next_double`).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `Generator.uniform(low, high, size=out.len())`: `low + (high - low) * U` each.
    pub fn uniform_into(&mut self, low: f64, high: f64, out: &mut [f64]) {
        let span = high - low;
        for x in out {
            *x = low + span * self.next_f64();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with numpy 2.4.6:
    // SeedSequence(s).generate_state(4, np.uint64) and
    // Generator(PCG64(SeedSequence(s))).uniform(-0.01, 0.01, size=5) as f64 bits.
    const NUMPY: &[(u64, [u64; 4], [u64; 5])] = &[
        (
            0,
            [
                0xdb2cd7e7b0f478be,
                0xabf4641a2c71ba49,
                0x20c6ed6d9d7b8d41,
                0x2c4099de223c39d4,
            ],
            [
                0x3f667096eb6ca570,
                0xbf72dbec2b5b3f6c,
                0xbf82cd3dd06e4575,
                0xbf83cd933f07287e,
                0x3f79a9c0ca4bcc42,
            ],
        ),
        (
            1,
            [
                0x672d8ee56d6791ff,
                0x8ae19ca14eb1072c,
                0x4915796d1322fc4a,
                0xd0cc2bdcaba049bd,
            ],
            [
                0x3f2efd5ba8af7980,
                0x3f8273744700362f,
                0xbf7d2683884f109c,
                0x3f82606e3073a0b5,
                0xbf6ed45c663d9100,
            ],
        ),
        (
            2,
            [
                0x8c8ea222a8ed588b,
                0x55aa58f36ee114ca,
                0x2dd7052ba1c415d2,
                0xe8d687cf965c6df7,
            ],
            [
                0xbf73875b1be45888,
                0xbf7081f26fa5202e,
                0x3f79bdca99699462,
                0xbf80b7124d35322d,
                0x3f606685369d4468,
            ],
        ),
        (
            12345,
            [
                0xb5ae6482a03d837c,
                0xbbe2996ffa1f7a2f,
                0x64e39a9f37158f94,
                0x3ebb0f96a013fd73,
            ],
            [
                0xbf76562d95375c3e,
                0xbf6e05b658748c52,
                0x3f785c34a48b9b2a,
                0x3f6ce0a81dd9eff0,
                0xbf61d7324c2ad9f0,
            ],
        ),
        (
            4294967295,
            [
                0x2a05c5e276c1fe08,
                0x2032e40fc20e8198,
                0xed4ac06d787f4396,
                0x56896cb4f3db80fd,
            ],
            [
                0xbf74521ed419542c,
                0xbf77039e05873aca,
                0xbf716cf6761be392,
                0x3f637e70020e79ec,
                0x3f81d16f3a3172a1,
            ],
        ),
        (
            4294967296,
            [
                0x50ff846cec53f444,
                0x7a4918dbe8278562,
                0x3bff9f6c362e2b19,
                0xbdb177539a0654e3,
            ],
            [
                0x3f7fed6a3401d0aa,
                0x3f52b91648f37300,
                0x3f78a67ffd897516,
                0x3f82b2e4f298ba2d,
                0xbf82144168565f89,
            ],
        ),
        (
            1099511627783,
            [
                0xd8672e10e3d1a15,
                0x9aef4ada4ecfa161,
                0x999c1c3b83dba903,
                0x408927dc0dc8a316,
            ],
            [
                0x3f7b04ad7af2329a,
                0xbf740b9f6d90a124,
                0xbf7c5c88f0f45dd4,
                0x3f6c97404b33f8c8,
                0x3f7390da58ec5ac8,
            ],
        ),
        (
            18446744073709551615,
            [
                0xaebca151928cad0d,
                0x119c30448638dc7a,
                0x1bbb155659e642a7,
                0xa76b11e3e8c4a8f6,
            ],
            [
                0x3f6d7eddbf121928,
                0x3f7c49b6632f1c32,
                0xbf842d40c8be1e45,
                0x3f802958bfdb242f,
                0xbf7e6529baafbd76,
            ],
        ),
    ];

    #[test]
    fn seed_sequence_matches_numpy() {
        for (seed, state, _) in NUMPY {
            assert_eq!(seed_sequence_state(*seed), *state, "seed {seed}");
        }
    }

    #[test]
    fn uniform_matches_numpy() {
        for (seed, _, draws) in NUMPY {
            let mut rng = Pcg64::from_seed(*seed);
            let mut out = [0.0; 5];
            rng.uniform_into(-0.01, 0.01, &mut out);
            assert_eq!(out.map(f64::to_bits), *draws, "seed {seed}");
        }
    }
}
