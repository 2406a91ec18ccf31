//! Benchmark: FIRE on whole networks and a large matrix, per orthogonaliser.
//!
//! ```text
//! cargo bench -p fire --bench orthogonalize                 # CPU
//! cargo bench -p fire --bench orthogonalize -- --device cuda
//! ```
//! Prints a Markdown table: median wall time of one FIRE over every weight of the network
//! (batched by shape, as the agents call it) and the worst DfI/k reached. Weights are seeded
//! Gaussians scaled by 1/sqrt(fan_in).

use std::time::Instant;

use fire::{params_of, Intervention, Orthogonalizer, ParamSelector, Sources};
use tch::{nn, Device, Kind, Tensor};

/// Named shape tables of the networks under test.
const NATURE_CNN: &[(&str, &[i64])] = &[
    ("q.encoder.conv1.weight", &[32, 4, 8, 8]),
    ("q.encoder.conv2.weight", &[64, 32, 4, 4]),
    ("q.encoder.conv3.weight", &[64, 64, 3, 3]),
    ("q.head.fc1.weight", &[512, 3136]),
    ("q.head.fc2.weight", &[18, 512]),
];
/// A SimBa critic of width 512 with 2 blocks on h1-walk (151 observations + 19 actions).
const SIMBA_CRITIC_512: &[(&str, &[i64])] = &[
    ("critic.embed.weight", &[512, 170]),
    ("critic.block0.fc1.weight", &[2048, 512]),
    ("critic.block0.fc2.weight", &[512, 2048]),
    ("critic.block1.fc1.weight", &[2048, 512]),
    ("critic.block1.fc2.weight", &[512, 2048]),
    ("critic.head.weight", &[1, 512]),
];
const LARGE: &[(&str, &[i64])] = &[("large.weight", &[4096, 4096])];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let device = match args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
    {
        Some(d) if d == "cuda" => Device::Cuda(0),
        _ => Device::Cpu,
    };
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    println!(
        "device: {device:?}, torch threads: {}, {reps} repetitions (median)\n",
        tch::get_num_threads()
    );
    println!("| network | method | median time (ms) | iterations | worst DfI/k |");
    println!("|---|---|---:|---:|---:|");
    let methods = [
        ("NS-10 (paper)", Orthogonalizer::default()),
        ("tolerance 1e-6", Orthogonalizer::tolerance()),
        ("SVD (exact)", Orthogonalizer::Exact),
    ];
    for (network, shapes) in [
        ("Nature CNN", NATURE_CNN),
        ("SimBa critic w512", SIMBA_CRITIC_512),
        ("4096x4096", LARGE),
    ] {
        for (label, method) in methods {
            let mut times = Vec::with_capacity(reps);
            let mut worst = 0.0f64;
            let mut iterations = 0;
            for rep in 0..reps + 1 {
                let vs = network_of(shapes, device, 17);
                let params = params_of(&vs);
                sync(device);
                let start = Instant::now();
                let reports = Intervention::Fire(method)
                    .apply(&params, &ParamSelector::all(), Sources::default())
                    .expect("FIRE on seeded weights");
                sync(device);
                let elapsed = start.elapsed().as_secs_f64() * 1e3;
                if rep > 0 {
                    times.push(elapsed); // the first run warms up allocators and kernels
                }
                for r in &reports {
                    let k: i64 = columns(&r.shape);
                    worst = worst.max(r.dfi_after.unwrap_or(0.0) / k as f64);
                    iterations = iterations.max(r.iterations);
                }
            }
            times.sort_by(f64::total_cmp);
            println!(
                "| {network} | {label} | {:.2} | {iterations} | {worst:.2e} |",
                times[times.len() / 2]
            );
        }
    }
}

fn network_of(shapes: &[(&str, &[i64])], device: Device, seed: i64) -> nn::VarStore {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(device);
    for (name, shape) in shapes {
        let fan_in: i64 = shape[1..].iter().product();
        let init = Tensor::randn(*shape, (Kind::Float, device)) / (fan_in as f64).sqrt();
        let mut path = vs.root();
        let parts: Vec<&str> = name.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            path = path / *part;
        }
        let _param = path.var_copy(parts[parts.len() - 1], &init);
    }
    vs
}

fn columns(shape: &[i64]) -> i64 {
    match shape {
        [o, i, kh, kw] => o.min(i) * kh * kw,
        [o, i] => *o.min(i),
        _ => 1,
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
