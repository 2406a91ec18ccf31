//! Opt-in bf16 (`SacConfig::precision`) still learns: SAC with the settings of `classic`'s
//! Pendulum-v1 learning test (CleanRL's algorithm, MLPs 64x64, batch 128, one update per step
//! after 1,000 random steps, 6,000 steps with seed 1), trained here with its own small loop so
//! the test needs neither the runtime nor the binaries, must swing the pendulum up in bf16 as
//! in fp32 (random play scores about -1,200, a swing-up controller about -150).
//!
//! `cargo test --release -p sac --test precision -- --nocapture` prints both returns.

use agent::{ActMode, Precision};
use envs::classic::Pendulum;
use envs::Env;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replay::{NStep, VectorReplay};
use sac::{Architecture, Sac, SacConfig};
use tch::Device;

const STEPS: u64 = 6_000;
const LEARNING_STARTS: u64 = 1_000;

/// Trains for `STEPS` steps and returns the mean return of 10 deterministic episodes.
fn train(precision: Precision, seed: u64) -> f64 {
    tch::set_num_threads(1);
    tch::manual_seed(seed as i64);
    let config = SacConfig {
        precision,
        ..SacConfig::cleanrl()
    };
    let arch = Architecture::Mlp {
        hidden: vec![64, 64],
    };
    let mut agent = Sac::new(&arch, 3, &[-2.0], &[2.0], config, Device::Cpu).unwrap();
    let mut replay = VectorReplay::new(50_000, 3, 1, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut env = Pendulum::new();
    let (mut obs, _) = env.reset(Some(seed)).unwrap();
    for step in 0..STEPS {
        let mode = if step < LEARNING_STARTS {
            ActMode::Warmup
        } else {
            ActMode::Train { step }
        };
        let action = agent.act(&obs, mode, &mut rng).unwrap();
        let s = env.step(&[action[0]]).unwrap();
        replay
            .add(&obs, &action, s.reward as f32, &s.obs, s.terminated)
            .unwrap();
        obs = if s.terminated || s.truncated {
            env.reset(None).unwrap().0
        } else {
            s.obs
        };
        if step >= LEARNING_STARTS {
            agent
                .update(&replay.sample(128, NStep::one(0.99)).unwrap())
                .unwrap();
        }
    }
    agent.check_finite().unwrap();
    let mut eval = Pendulum::new();
    let mut total = 0.0;
    for episode in 0..10 {
        let (mut o, _) = eval.reset(Some(10_000 + episode)).unwrap();
        loop {
            let a = agent.act(&o, ActMode::Evaluate, &mut rng).unwrap();
            let s = eval.step(&[a[0]]).unwrap();
            total += s.reward;
            if s.terminated || s.truncated {
                break;
            }
            o = s.obs;
        }
    }
    total / 10.0
}

/// bf16 swings the pendulum up, as fp32 does with the same seed.
#[test]
fn bf16_learns_pendulum_as_fp32_does() {
    let fp32 = train(Precision::Fp32, 1);
    let bf16 = train(Precision::Bf16, 1);
    println!("Pendulum-v1, {STEPS} steps, seed 1: return fp32 {fp32:.1}, bf16 {bf16:.1}");
    assert!(fp32 > -250.0, "fp32 did not learn: {fp32}");
    assert!(bf16 > -250.0, "bf16 did not learn: {bf16}");
}
