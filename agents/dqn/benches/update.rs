//! Benchmark: the DQN update and action choice of the Atari agent (Nature CNN, batch 32,
//! Breakout's 4 actions, the paper's Adam), on the CPU or a GPU, and where an update's time
//! goes.
//!
//! ```text
//! cargo bench -p dqn --bench update                    # CPU
//! cargo bench -p dqn --bench update -- --device cuda   # GPU
//! ```
//! Prints milliseconds per call: `update` back to back (as the training loop calls it), and
//! followed by reading its loss back (which waits for the device), `act`
//! on 1 and 4 observations (greedy, so the network always runs), and the phases of an update
//! timed one by one with the device synchronised after each (their sum exceeds the pipelined
//! update: the synchronisation is what they add).

use std::time::Instant;

use dqn::{Adam, AdamConfig, Architecture, Dqn, DqnConfig, Loss};
use rand::{Rng, SeedableRng};
use replay::Batch;
use tch::{Device, Kind, Reduction, Tensor};

const BATCH: usize = 32;
const OBS: [i64; 3] = [4, 84, 84];
const ACTIONS: i64 = 4;

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
        .unwrap_or(if device == Device::Cpu { 40 } else { 500 });
    println!(
        "device: {device:?}, torch threads: {}, {calls} calls each (after {} warm-up calls)\n",
        tch::get_num_threads(),
        calls / 5
    );
    tch::manual_seed(0);
    let config = DqnConfig {
        adam: AdamConfig {
            lr: 6.25e-5,
            eps: 1.5e-4,
            ..AdamConfig::default()
        },
        loss: Loss::Huber,
        ..DqnConfig::default()
    };
    let arch = Architecture::NatureCnn { frames: OBS[0] };
    let mut agent: Dqn<u8> = Dqn::new(&arch, ACTIONS, config.clone(), device).expect("agent");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let batches: Vec<Batch<u8>> = (0..8).map(|_| random_batch(&mut rng)).collect();

    println!("| what | ms per call |");
    println!("|---|---:|");
    let update_ms = time(device, calls, |i| {
        agent.update(&batches[i % batches.len()]).expect("update");
    });
    println!("| update (back to back) | {update_ms:.3} |");
    let waiting_ms = time(device, calls, |i| {
        agent.update(&batches[i % batches.len()]).expect("update");
        agent.take_stats().expect("stats");
    });
    println!("| update, then wait for its loss | {waiting_ms:.3} |");
    for n in [1i64, 4] {
        let obs = Tensor::randint(256, [n, OBS[0], OBS[1], OBS[2]], (Kind::Uint8, Device::Cpu));
        let ms = time(device, calls, |_| {
            agent.act(&obs, 0.0, &mut rng).expect("act");
        });
        println!("| act on {n} observation(s), greedy | {ms:.3} |");
    }

    // The phases, as `Dqn::update` runs them, each followed by a synchronisation.
    let params = agent.params();
    let mut adam = Adam::new(config.adam, &params).expect("adam");
    let (mut h2d, mut forward, mut backward, mut step) = (0.0, 0.0, 0.0, 0.0);
    let phases = calls.max(10);
    for i in 0..phases + phases / 5 {
        let b = &batches[i % batches.len()];
        let clock = Instant::now();
        let shape = [BATCH as i64, OBS[0], OBS[1], OBS[2]];
        let to = |t: Tensor| t.to_device(device);
        let obs = to(Tensor::from_slice(&b.obs).view(shape));
        let next_obs = to(Tensor::from_slice(&b.next_obs).view(shape));
        let actions = to(Tensor::from_slice(&b.actions))
            .to_kind(Kind::Int64)
            .unsqueeze(1);
        let rewards = to(Tensor::from_slice(&b.rewards));
        let discounts = to(Tensor::from_slice(&b.discounts));
        sync(device);
        let t_h2d = clock.elapsed().as_secs_f64();
        let target = tch::no_grad(|| {
            let next = agent
                .online()
                .forward(&next_obs)
                .amax([-1i64].as_slice(), false);
            rewards + discounts * next
        });
        let q = agent
            .online()
            .forward(&obs)
            .gather(1, &actions, false)
            .squeeze_dim(1);
        let loss = q.huber_loss(&target, Reduction::Mean, 1.0);
        sync(device);
        let t_forward = clock.elapsed().as_secs_f64();
        for (_, p) in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss.backward();
        sync(device);
        let t_backward = clock.elapsed().as_secs_f64();
        adam.step(&params).expect("adam step");
        sync(device);
        let t_step = clock.elapsed().as_secs_f64();
        if i >= phases / 5 {
            h2d += t_h2d;
            forward += t_forward - t_h2d;
            backward += t_backward - t_forward;
            step += t_step - t_backward;
        }
    }
    let per = |s: f64| s * 1e3 / phases as f64;
    println!("| phase: 5 host-to-device copies | {:.3} |", per(h2d));
    println!(
        "| phase: target and online forward, Huber loss | {:.3} |",
        per(forward)
    );
    println!("| phase: zero gradients, backward | {:.3} |", per(backward));
    println!("| phase: Adam step (10 parameters) | {:.3} |", per(step));
}

/// Milliseconds per call of `work` over `calls` calls, after `calls / 5` warm-up calls.
fn time(device: Device, calls: usize, mut work: impl FnMut(usize)) -> f64 {
    for i in 0..calls / 5 {
        work(i);
    }
    sync(device);
    let clock = Instant::now();
    for i in 0..calls {
        work(i);
    }
    sync(device);
    clock.elapsed().as_secs_f64() * 1e3 / calls as f64
}

fn random_batch(rng: &mut impl Rng) -> Batch<u8> {
    let len = BATCH * (OBS[0] * OBS[1] * OBS[2]) as usize;
    let mut bytes = |n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    let (obs, next_obs) = (bytes(len), bytes(len));
    Batch {
        size: BATCH,
        obs,
        next_obs,
        actions: (0..BATCH).map(|i| (i as i64 % ACTIONS) as f32).collect(),
        rewards: (0..BATCH).map(|i| (i % 3) as f32 - 1.0).collect(),
        discounts: vec![0.99; BATCH],
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
