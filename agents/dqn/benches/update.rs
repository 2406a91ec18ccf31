//! Benchmark: the DQN update and action choice, on the CPU or a GPU, and where an update's time
//! goes. Two networks: the Atari agent's (Nature CNN, batch 32, Breakout's 4 actions, the
//! paper's Adam) and `classic`'s CartPole-v1 agent (MLP 4-64-64-2, batch 64, Adam lr 1e-3, MSE,
//! double DQN).
//!
//! ```text
//! cargo bench -p dqn --bench update                          # CPU, Nature CNN
//! cargo bench -p dqn --bench update -- --device cuda         # GPU
//! cargo bench -p dqn --bench update -- --net cartpole
//! cargo bench -p dqn --bench update -- --json --no-phases    # one JSON line (benchmarks/pytorch/compare.py)
//! ```
//! Options: `--calls N`, `--threads N` (libtorch's intra-op threads; default libtorch's own),
//! `--net nature|cartpole|minatar`, `--precision fp32|bf16` (the learner's `precision`), `--json`,
//! `--no-phases`, `--no-act`.
//!
//! Prints milliseconds per call: `update` back to back (as the training loop calls it), and
//! followed by reading its loss back (which waits for the device), `act` on 1 and 4
//! observations (greedy, so the network always runs), and the phases of an update timed one by
//! one with the device synchronised after each (their sum exceeds the pipelined update: the
//! synchronisation is what they add).

use std::time::Instant;

use agent::{autocast, Precision};
use dqn::{Adam, AdamConfig, Architecture, Dqn, DqnConfig, Loss};
use rand::{Rng, SeedableRng};
use replay::Batch;
use tch::{Device, Kind, Reduction, Tensor};

/// One benchmarked network: its sizes and the learner's settings.
struct Case {
    name: &'static str,
    arch: Architecture,
    batch: usize,
    actions: i64,
    config: DqnConfig,
    calls: usize,
}

fn case(net: &str) -> Case {
    match net {
        "cartpole" => Case {
            name: "dqn-cartpole",
            arch: Architecture::Mlp {
                obs_dim: 4,
                hidden: vec![64, 64],
            },
            batch: 64,
            actions: 2,
            config: DqnConfig {
                adam: AdamConfig {
                    lr: 1e-3,
                    eps: 1e-8,
                    ..AdamConfig::default()
                },
                loss: Loss::Mse,
                double: true,
                ..DqnConfig::default()
            },
            calls: 400,
        },
        // The MinAtar reference DQN on Breakout's 4 channels (Young & Tian 2019).
        "minatar" => Case {
            name: "dqn-minatar",
            arch: Architecture::MinatarCnn { channels: 4 },
            batch: 32,
            actions: 6,
            config: DqnConfig {
                rmsprop: Some(dqn::RmsPropConfig::default()),
                loss: Loss::Huber,
                ..DqnConfig::default()
            },
            calls: 400,
        },
        _ => Case {
            name: "dqn-nature",
            arch: Architecture::NatureCnn { frames: 4 },
            batch: 32,
            actions: 4,
            config: DqnConfig {
                adam: AdamConfig {
                    lr: 6.25e-5,
                    eps: 1.5e-4,
                    ..AdamConfig::default()
                },
                loss: Loss::Huber,
                ..DqnConfig::default()
            },
            calls: 40,
        },
    }
}

/// Observation elements the benches draw: bytes for frames, normal floats for vectors.
trait Obs: tch::kind::Element + Copy + Default + Send + Sync + 'static {
    fn draw(rng: &mut rand_chacha::ChaCha8Rng) -> Self;
}

impl Obs for u8 {
    fn draw(rng: &mut rand_chacha::ChaCha8Rng) -> Self {
        rng.random::<u8>()
    }
}

impl Obs for f32 {
    fn draw(rng: &mut rand_chacha::ChaCha8Rng) -> Self {
        rng.random::<f32>() * 2.0 - 1.0
    }
}

struct Options {
    device: Device,
    calls: Option<usize>,
    json: bool,
    phases: bool,
    act: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let device = match value("--device").as_deref() {
        Some("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    if let Some(n) = value("--threads").and_then(|t| t.parse().ok()) {
        tch::set_num_threads(n);
    }
    let options = Options {
        device,
        calls: value("--calls").and_then(|c| c.parse().ok()),
        json: has("--json"),
        phases: !has("--no-phases"),
        act: !has("--no-act"),
    };
    let mut case = case(value("--net").as_deref().unwrap_or("nature"));
    case.config.precision = value("--precision")
        .map(|p| p.parse::<Precision>().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_default();
    match case.arch {
        Architecture::NatureCnn { .. } | Architecture::MinatarCnn { .. } => {
            run::<u8>(&case, &options)
        }
        Architecture::Mlp { .. } => run::<f32>(&case, &options),
    }
}

fn run<T: Obs>(case: &Case, o: &Options) {
    let device = o.device;
    let calls = o.calls.unwrap_or(if device == Device::Cpu {
        case.calls
    } else {
        500
    });
    if !o.json {
        println!(
            "{}: device {device:?}, precision {}, torch threads {}, {calls} calls each (after {} warm-up calls)\n",
            case.name,
            case.config.precision,
            tch::get_num_threads(),
            calls / 5
        );
    }
    tch::manual_seed(0);
    let mut agent: Dqn<T> =
        Dqn::new(&case.arch, case.actions, case.config.clone(), device).expect("agent");
    let obs_shape = case.arch.obs_shape();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let batches: Vec<Batch<T>> = (0..8)
        .map(|_| random_batch(&mut rng, case, &obs_shape))
        .collect();

    let mut rows: Vec<(String, f64)> = Vec::new();
    let update_ms = time(device, calls, |i| {
        agent.update(&batches[i % batches.len()]).expect("update");
    });
    rows.push(("update (back to back)".into(), update_ms));
    let waiting_ms = time(device, calls, |i| {
        agent.update(&batches[i % batches.len()]).expect("update");
        agent.take_stats().expect("stats");
    });
    rows.push(("update, then wait for its loss".into(), waiting_ms));
    if o.act {
        for n in [1i64, 4] {
            let mut shape = vec![n];
            shape.extend_from_slice(&obs_shape);
            let obs: Vec<T> = (0..shape.iter().product::<i64>())
                .map(|_| T::draw(&mut rng))
                .collect();
            let obs = Tensor::from_slice(&obs).view(shape.as_slice());
            let ms = time(device, calls, |_| {
                agent.act(&obs, 0.0, &mut rng).expect("act");
            });
            rows.push((format!("act on {n} observation(s), greedy"), ms));
        }
    }
    if o.phases {
        rows.extend(phases(&agent, case, &batches, calls, device));
    }

    if o.json {
        let fields: Vec<String> = rows
            .iter()
            .map(|(what, ms)| format!("\"{what}\": {ms:.4}"))
            .collect();
        println!(
            "{{\"side\": \"ours\", \"net\": \"{}\", \"precision\": \"{}\", \"threads\": {}, \"update_ms\": {update_ms:.4}, \"rows\": {{{}}}}}",
            case.name,
            case.config.precision,
            tch::get_num_threads(),
            fields.join(", ")
        );
    } else {
        println!("| what | ms per call |");
        println!("|---|---:|");
        for (what, ms) in rows {
            println!("| {what} | {ms:.3} |");
        }
    }
}

/// The phases of an update, each followed by a synchronisation: the copies, the forward passes
/// and loss, the backward pass, the optimiser step.
fn phases<T: Obs>(
    agent: &Dqn<T>,
    case: &Case,
    batches: &[Batch<T>],
    calls: usize,
    device: Device,
) -> Vec<(String, f64)> {
    let params = agent.params();
    let mut adam = Adam::new(case.config.adam, &params).expect("adam");
    let (mut h2d, mut forward, mut backward, mut step) = (0.0, 0.0, 0.0, 0.0);
    let phases = calls.max(10);
    let mut shape = vec![case.batch as i64];
    shape.extend_from_slice(&case.arch.obs_shape());
    for i in 0..phases + phases / 5 {
        let b = &batches[i % batches.len()];
        let clock = Instant::now();
        let to = |t: Tensor| t.to_device(device);
        let obs = to(Tensor::from_slice(&b.obs).view(shape.as_slice()));
        let next_obs = to(Tensor::from_slice(&b.next_obs).view(shape.as_slice()));
        let actions = to(Tensor::from_slice(&b.actions))
            .to_kind(Kind::Int64)
            .unsqueeze(1);
        let rewards = to(Tensor::from_slice(&b.rewards));
        let discounts = to(Tensor::from_slice(&b.discounts));
        sync(device);
        let t_h2d = clock.elapsed().as_secs_f64();
        let precision = case.config.precision;
        let target = tch::no_grad(|| {
            autocast(precision, device, || {
                Ok(agent.online().forward(&next_obs).to_kind(Kind::Float))
            })
            .expect("target")
            .amax([-1i64].as_slice(), false)
                * discounts
                + rewards
        });
        let q = autocast(precision, device, || {
            Ok(agent.online().forward(&obs).to_kind(Kind::Float))
        })
        .expect("forward")
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
    vec![
        ("phase: host-to-device copies".into(), per(h2d)),
        (
            "phase: target and online forward, loss".into(),
            per(forward),
        ),
        ("phase: zero gradients, backward".into(), per(backward)),
        (
            format!("phase: Adam step ({} parameters)", params.len()),
            per(step),
        ),
    ]
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

fn random_batch<T: Obs>(
    rng: &mut rand_chacha::ChaCha8Rng,
    case: &Case,
    obs_shape: &[i64],
) -> Batch<T> {
    let (batch, actions) = (case.batch, case.actions);
    let len = batch * obs_shape.iter().product::<i64>() as usize;
    let mut draw = |n: usize| (0..n).map(|_| T::draw(rng)).collect::<Vec<T>>();
    let (obs, next_obs) = (draw(len), draw(len));
    Batch {
        size: batch,
        obs,
        next_obs,
        actions: (0..batch).map(|i| (i as i64 % actions) as f32).collect(),
        rewards: (0..batch).map(|i| (i % 3) as f32 - 1.0).collect(),
        discounts: vec![0.99; batch],
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
