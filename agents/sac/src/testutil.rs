//! Fixtures the unit tests share: small agents, random batches, parameter copies.

use agent::ActMode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use tch::{Device, Tensor};

use crate::{Architecture, Sac, SacConfig};

/// Observation length of the test agents.
pub const OBS: i64 = 5;
/// Action dimensions of the test agents.
pub const ACT: usize = 3;

/// SimBa with one block per network, widths 8 (actor) and 16 (critics).
pub fn small_simba() -> Architecture {
    Architecture::Simba {
        actor_blocks: 1,
        actor_width: 8,
        critic_blocks: 1,
        critic_width: 16,
    }
}

/// A fresh SimBa agent (the paper's settings) on the box [-1, 1]^3, weights from `seed`.
pub fn agent(seed: i64) -> Sac {
    with(&small_simba(), SacConfig::simba(), seed)
}

/// A fresh agent of `arch` and `config` on the box [-1, 1]^3, weights from `seed`.
pub fn with(arch: &Architecture, config: SacConfig, seed: i64) -> Sac {
    tch::manual_seed(seed);
    Sac::new(arch, OBS, &[-1.0; ACT], &[1.0; ACT], config, Device::Cpu).unwrap()
}

/// `size` random transitions (observations in [-3, 3], actions in the box).
pub fn batch(rng: &mut ChaCha8Rng, size: usize) -> Batch<f32> {
    let mut v = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| scale * (rng.random::<f32>() * 2.0 - 1.0))
            .collect()
    };
    Batch {
        size,
        obs: v(size * OBS as usize, 3.0),
        actions: v(size * ACT, 1.0),
        rewards: v(size, 1.0),
        next_obs: v(size * OBS as usize, 3.0),
        discounts: vec![0.99; size],
    }
}

/// `agent` after acting once (normaliser statistics) and five updates (biases, LayerNorm and
/// optimiser moments away from their initial values).
pub fn trained(seed: i64) -> Sac {
    train(agent(seed), seed)
}

/// `sac` after acting once and five updates on batches from `seed`.
pub fn train(mut sac: Sac, seed: i64) -> Sac {
    let mut rng = ChaCha8Rng::seed_from_u64(seed as u64);
    let b = batch(&mut rng, 32);
    sac.act(&b.obs, ActMode::Train { step: 0 }, &mut rng)
        .unwrap();
    for _ in 0..5 {
        sac.update(&batch(&mut rng, 32)).unwrap();
    }
    sac
}

/// Deep copies of `params`.
pub fn copies(params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    params
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().copy()))
        .collect()
}

/// Same shape and the same values bit for bit.
pub fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

/// The tensor `name` of `params`.
pub fn get(params: &[(String, Tensor)], name: &str) -> Tensor {
    params
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no `{name}`"))
        .1
        .shallow_clone()
}
