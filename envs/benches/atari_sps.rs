//! Benchmark: agent steps per second of Atari with the full preprocessing and random actions.
//!
//! ```text
//! cargo bench -p envs --bench atari_sps -- --game Breakout --envs 1 --threads 1 --steps 20000
//! cargo bench -p envs --bench atari_sps -- --game Breakout --envs 8 --threads 2
//! cargo bench -p envs --bench atari_sps -- --game Breakout --raw      # raw emulation baseline
//! ```
//! Output, one line: `game=Breakout preset=paper envs=1 threads=1 steps=20000 seconds=9.81
//! sps=2039.0 sps_per_thread=2039.0 load1=0.05` (`steps` summed over environments; `load1` is
//! the machine's one-minute load average before the run).

use std::time::Instant;

use envs::atari::{AtariConfig, AtariEnv};
use envs::vector::VecEnv;
use rand::{Rng, SeedableRng};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let game: String = arg(&args, "--game", "Breakout".to_string());
    let n: usize = arg(&args, "--envs", 1);
    let threads: usize = arg(&args, "--threads", 1);
    let steps: u64 = arg(&args, "--steps", 20_000);
    let preset: String = arg(&args, "--preset", "paper".to_string());
    let raw = args.iter().any(|a| a == "--raw");
    let config = match preset.as_str() {
        "machado" => AtariConfig::machado(),
        _ => AtariConfig::paper(),
    };
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let envs: Vec<AtariEnv> = (0..n)
        .map(|_| AtariEnv::new(&game, config.clone()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let actions = envs[0].num_actions();
    let start;
    if raw {
        let mut env = envs.into_iter().next().unwrap();
        start = Instant::now();
        env.emulate_raw(steps);
    } else {
        let mut vec = VecEnv::new(envs, threads).unwrap();
        vec.reset(Some(0)).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut batch = vec![0usize; n];
        start = Instant::now();
        for _ in 0..steps / n as u64 {
            for a in batch.iter_mut() {
                *a = rng.random_range(0..actions);
            }
            vec.step(&batch).unwrap();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let sps = steps as f64 / seconds;
    let threads = if raw { 1 } else { threads };
    println!(
        "game={game} preset={} envs={n} threads={threads} steps={steps} seconds={seconds:.2} sps={sps:.1} sps_per_thread={:.1} load1={load1}",
        if raw { "raw-emulation" } else { preset.as_str() },
        sps / threads as f64
    );
}
