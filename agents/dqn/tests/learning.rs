//! Real training runs with fixed seeds: DQN with an MLP solves CartPole-v1, and two runs with
//! one seed are identical.

use dqn::{AdamConfig, Architecture, Dqn, DqnConfig, InterventionConfig, Loss};
use envs::classic::CartPole;
use envs::Env;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replay::{NStep, VectorReplay};
use tch::{Device, Tensor};

struct Run {
    losses: Vec<f64>,
    solved_at: Option<u64>,
    final_eval: f64,
}

fn config() -> DqnConfig {
    DqnConfig {
        gamma: 0.99,
        adam: AdamConfig {
            lr: 1e-3,
            ..AdamConfig::default()
        },
        loss: Loss::Mse,
        double: true,
        tau: 1.0,
    }
}

/// Mean return of `episodes` greedy episodes (seeds 10_000..).
fn evaluate(agent: &Dqn, episodes: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut total = 0.0;
    for e in 0..episodes {
        let mut env = CartPole::new();
        let (mut obs, _) = env.reset(Some(10_000 + e)).unwrap();
        loop {
            let a = agent
                .act(&Tensor::from_slice(&obs).unsqueeze(0), 0.0, &mut rng)
                .unwrap()[0];
            let step = env.step(&(a as usize)).unwrap();
            total += step.reward;
            let done = step.done();
            obs = step.obs;
            if done {
                break;
            }
        }
    }
    total / episodes as f64
}

/// libtorch's generator and thread count are process-wide: runs in this binary take turns, or
/// tests running in parallel would draw from each other's generator.
static LIBTORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Synchronous DQN on CartPole; stops early once 20 greedy episodes average >= 195.
/// `fire_at` applies FIRE (with the head reset) at that step.
fn train(seed: u64, budget: u64, fire_at: Option<u64>) -> Run {
    let _turn = LIBTORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1); // one thread: reductions in a fixed order, runs repeat exactly
    tch::manual_seed(seed as i64);
    let mut agent = Dqn::new(
        &Architecture::Mlp {
            obs_dim: 4,
            hidden: vec![64, 64],
        },
        2,
        config(),
        Device::Cpu,
    )
    .unwrap();
    let mut replay = VectorReplay::new(50_000, 4, 1, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut env = CartPole::new();
    let (mut obs, _) = env.reset(Some(seed)).unwrap();
    let (learning_starts, explore_steps, target_every) = (1_000, 10_000, 250);
    let mut run = Run {
        losses: Vec::new(),
        solved_at: None,
        final_eval: 0.0,
    };
    for step in 1..=budget {
        let epsilon = (1.0 - (step as f64 / explore_steps as f64) * 0.95).max(0.05);
        let a = agent
            .act(&Tensor::from_slice(&obs).unsqueeze(0), epsilon, &mut rng)
            .unwrap()[0];
        let s = env.step(&(a as usize)).unwrap();
        replay
            .add(&obs, &[a as f32], s.reward as f32, &s.obs, s.terminated)
            .unwrap();
        let done = s.done();
        obs = if done {
            env.reset(None).unwrap().0
        } else {
            s.obs
        };
        if Some(step) == fire_at {
            let reports = agent
                .intervene(&InterventionConfig::default(), None)
                .unwrap();
            assert!(reports.iter().any(|r| r.name == "q.encoder.fc1.weight"));
        }
        if step > learning_starts {
            let batch = replay.sample(64, NStep::one(0.99)).unwrap();
            agent.update(&batch, &[4]).unwrap();
            run.losses
                .push(agent.take_stats().unwrap().unwrap().td_loss);
            if step % target_every == 0 {
                agent.update_target().unwrap();
            }
        }
        if step % 5_000 == 0 && step >= 15_000 {
            let score = evaluate(&agent, 20);
            run.final_eval = score;
            if score >= 195.0 {
                run.solved_at = Some(step);
                break;
            }
        }
    }
    run
}

#[test]
fn dqn_solves_cartpole_within_the_budget() {
    let run = train(1, 60_000, None);
    assert!(
        run.solved_at.is_some(),
        "not solved in 60k steps: last greedy mean return {}",
        run.final_eval
    );
    assert!(run.final_eval >= 195.0);
}

#[test]
fn same_seed_same_run_bit_for_bit() {
    let a = train(7, 3_000, Some(2_000));
    let b = train(7, 3_000, Some(2_000));
    assert_eq!(a.losses.len(), 2_000);
    assert_eq!(
        a.losses, b.losses,
        "synchronous runs with one seed must match exactly"
    );
    let c = train(8, 3_000, Some(2_000));
    assert_ne!(a.losses, c.losses);
}
