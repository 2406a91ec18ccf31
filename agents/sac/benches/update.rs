//! Benchmark: one SAC update (actor, temperature, critic ensemble, target) and one action,
//! for CleanRL's MLP on Pendulum's sizes and the FIRE paper's SimBa on h1-walk's (51
//! observations, 19 actions), batch 256, on the CPU or a GPU.
//!
//! ```text
//! cargo bench -p sac --bench update                      # CPU, both networks
//! cargo bench -p sac --bench update -- --device cuda     # GPU
//! cargo bench -p sac --bench update -- --only simba --calls 10
//! cargo bench -p sac --bench update -- --only simba --json   # one JSON line per network
//! ```
//! Options: `--calls N`, `--threads N` (libtorch's intra-op threads; default libtorch's own),
//! `--only mlp|simba`, `--precision fp32|bf16` (the learner's `precision`), `--json`,
//! `--phases` (after each network's row, the update's big pieces timed alone, each followed by
//! a synchronisation: the critic ensemble's forward without gradients (the target's), its
//! forward and backward (the critic's loss), the AdamW step over its parameters, and the
//! actor's sample forward and backward).
//! Prints milliseconds per call: `update` back to back (as the training loop calls it, the
//! device synchronised at the end), and `act` on one observation in training mode.

use std::time::Instant;

use agent::ActMode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use sac::{Architecture, Sac, SacConfig};
use tch::Device;

const BATCH: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let device = match value("--device").as_deref() {
        Some("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    let calls: usize = value("--calls")
        .and_then(|c| c.parse().ok())
        .unwrap_or(if device == Device::Cpu { 20 } else { 300 });
    let only = value("--only");
    let json = args.iter().any(|a| a == "--json");
    let phases = args.iter().any(|a| a == "--phases");
    let precision: agent::Precision = value("--precision")
        .map(|p| p.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_default();
    if let Some(n) = value("--threads").and_then(|t| t.parse().ok()) {
        tch::set_num_threads(n);
    }
    if !json {
        println!(
            "device: {device:?}, precision {precision}, torch threads: {}, batch {BATCH}, {calls} calls each (after {} warm-up calls)\n",
            tch::get_num_threads(),
            calls / 5
        );
        println!("| network | sizes | update ms | act ms |");
        println!("|---|---|---:|---:|");
    }
    let cases = [
        (
            "mlp",
            Architecture::mlp(),
            SacConfig::cleanrl(),
            3usize,
            1usize,
        ),
        ("simba", Architecture::simba(), SacConfig::simba(), 51, 19),
    ];
    for (name, arch, mut config, obs_dim, action_dim) in cases {
        config.precision = precision;
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        tch::manual_seed(0);
        let mut agent = Sac::new(
            &arch,
            obs_dim as i64,
            &vec![-1.0; action_dim],
            &vec![1.0; action_dim],
            config,
            device,
        )
        .expect("agent");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let batches: Vec<Batch<f32>> = (0..4)
            .map(|_| random_batch(&mut rng, obs_dim, action_dim))
            .collect();
        let update_ms = time(device, calls, |i| {
            agent.update(&batches[i % batches.len()]).expect("update");
        });
        let obs: Vec<f32> = (0..obs_dim).map(|_| rng.random::<f32>()).collect();
        let act_ms = time(device, calls, |_| {
            agent
                .act(&obs, ActMode::Train { step: 0 }, &mut rng)
                .expect("act");
        });
        if phases && !json {
            print_phases(
                &agent,
                &batches[0],
                obs_dim,
                action_dim,
                calls,
                device,
                precision,
            );
        }
        if json {
            println!(
                "{{\"side\": \"ours\", \"net\": \"sac-{name}\", \"precision\": \"{precision}\", \"threads\": {}, \"update_ms\": {update_ms:.4}, \"rows\": {{\"act\": {act_ms:.4}}}}}",
                tch::get_num_threads()
            );
        } else {
            println!(
                "| {name} | obs {obs_dim}, actions {action_dim} | {update_ms:.3} | {act_ms:.3} |"
            );
        }
    }
}

/// The update's big pieces, timed one by one on one batch (milliseconds per call).
fn print_phases(
    agent: &Sac,
    batch: &Batch<f32>,
    obs_dim: usize,
    action_dim: usize,
    calls: usize,
    device: Device,
    precision: agent::Precision,
) {
    use tch::{Kind, Tensor};
    let n = BATCH as i64;
    let obs = Tensor::from_slice(&batch.obs)
        .view([n, obs_dim as i64])
        .to_device(device);
    let actions = Tensor::from_slice(&batch.actions)
        .view([n, action_dim as i64])
        .to_device(device);
    let critic: Vec<(String, Tensor)> = agent
        .params()
        .into_iter()
        .filter(|(name, _)| name.starts_with("critic."))
        .collect();
    let cast = |f: &dyn Fn() -> Tensor| {
        agent::autocast(precision, device, || Ok(f().to_kind(Kind::Float))).expect("autocast")
    };
    let no_grad = time(device, calls, |_| {
        let _ = tch::no_grad(|| cast(&|| agent.target().forward(&obs, &actions, true)));
    });
    let fwd_bwd = time(device, calls, |_| {
        agent::clear_grads(&critic).expect("clear");
        let q = cast(&|| agent.critic().forward(&obs, &actions, false));
        q.square().mean(Kind::Float).backward();
    });
    let mut adam = agent::Adam::new(agent.config().critic_adam, &critic).expect("adam");
    let step = time(device, calls, |_| adam.step(&critic).expect("step"));
    let actor: Vec<(String, Tensor)> = agent
        .params()
        .into_iter()
        .filter(|(name, _)| name.starts_with("actor."))
        .collect();
    let actor_ms = time(device, calls, |_| {
        agent::clear_grads(&actor).expect("clear");
        let (_, log_pi) = agent::autocast(precision, device, || {
            Ok(agent.policy_net().sample(&obs).expect("sample"))
        })
        .expect("autocast");
        log_pi.mean(Kind::Float).backward();
    });
    println!("| phase: critic ensemble forward, no gradients (x2 per update: actor loss, target) | | {no_grad:.3} |");
    println!(
        "| phase: critic ensemble forward and backward (the critic's loss) | | {fwd_bwd:.3} |"
    );
    println!(
        "| phase: AdamW step over the critics ({} tensors) | | {step:.3} |",
        critic.len()
    );
    println!("| phase: actor sample forward and backward | | {actor_ms:.3} |");
}

fn random_batch(rng: &mut ChaCha8Rng, obs_dim: usize, action_dim: usize) -> Batch<f32> {
    let mut v =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect() };
    Batch {
        size: BATCH,
        obs: v(BATCH * obs_dim),
        actions: v(BATCH * action_dim),
        rewards: v(BATCH),
        next_obs: v(BATCH * obs_dim),
        discounts: vec![0.99; BATCH],
    }
}

/// Milliseconds per call of `f`, after `calls / 5` warm-up calls.
fn time(device: Device, calls: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..calls / 5 {
        f(i);
    }
    sync(device);
    let start = Instant::now();
    for i in 0..calls {
        f(i);
    }
    sync(device);
    start.elapsed().as_secs_f64() * 1e3 / calls as f64
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
