//! `humanoid-env`: the HumanoidBench H1 tasks from the command line: list them, replay an
//! action file, or measure speed.
//!
//! ```text
//! cargo run --release --bin humanoid-env -- list
//! cargo run --release --bin humanoid-env -- rollout --task h1-walk-v0 --seed 0 --actions a.csv
//! cargo run --release --bin humanoid-env -- bench --task h1-walk-v0 --threads 1
//! cargo run --release --bin humanoid-env -- bench --task h1-walk-v0 --raw
//! ```
//! `rollout` reads one row of 19 comma-separated actions per step and prints one JSON line per
//! step, `{"t":..,"obs":[..],"reward":..,"terminated":..,"truncated":..}`, the reset observation
//! first (t = -1), until the episode ends, the file ends or `--steps` steps were taken. Floats are
//! printed in their shortest form that parses back to the same float64 (as Python's `repr`).
//! `bench` prints one line: `task=h1-walk-v0 mode=env threads=1 steps=5000 seconds=.. sps=..
//! sps_per_thread=.. load1=..`, environment steps per second with uniform random actions and
//! resets when episodes end (or, with `--raw`, only `ctrl` + 10 × `mj_step`).

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use envs::mujoco::mujoco_rs::prelude::MjData;
use envs::mujoco::{
    HumanoidConfig, HumanoidEnv, HumanoidModel, Task, DEFAULT_RANDOMNESS, FRAME_SKIP, NU,
};
use envs::Env;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// HumanoidBench H1 tasks on MuJoCo 3.17.0: list, replay actions, measure speed.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the tasks.
    List,
    /// Replay actions from a CSV file and print one JSON line per step.
    Rollout(RolloutArgs),
    /// Environment steps per second per thread.
    Bench(BenchArgs),
}

#[derive(Parser, Debug)]
struct RolloutArgs {
    /// Task id, e.g. h1-walk-v0 (see `list`).
    #[arg(long)]
    task: String,
    /// Seed of the reset (as `env.reset(seed=S)`).
    #[arg(long)]
    seed: u64,
    /// Half-width of the reset noise (HumanoidBench's `randomness`).
    #[arg(long, default_value_t = DEFAULT_RANDOMNESS)]
    randomness: f64,
    /// CSV file: one row of 19 comma-separated actions per step.
    #[arg(long)]
    actions: PathBuf,
    /// Stop after this many steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Arithmetic of the action -> ctrl mapping: as numpy does for a float64 or a float32
    /// action array.
    #[arg(long, value_enum, default_value_t = Dtype::F64)]
    action_dtype: Dtype,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dtype {
    F64,
    F32,
}

#[derive(Parser, Debug)]
struct BenchArgs {
    /// Task id.
    #[arg(long, default_value = "h1-walk-v0")]
    task: String,
    /// Threads, each stepping its own environment (one shared model).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Environment steps per thread.
    #[arg(long, default_value_t = 5_000)]
    steps: u64,
    /// Measure bare physics instead: write ctrl, 10 × mj_step, nothing else.
    #[arg(long)]
    raw: bool,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("humanoid-env");
    let result = match args.command {
        Command::List => list(),
        Command::Rollout(r) => rollout(r),
        Command::Bench(b) => bench(b),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fire::cli::report_error("humanoid-env", &err),
    }
}

fn list() -> Result<()> {
    for task in Task::ALL {
        println!(
            "{}  obs={} actions={NU} success_bar={}",
            task.name(),
            task.obs_len(),
            task.success_bar()
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct Line<'a> {
    t: i64,
    obs: &'a [f64],
    reward: f64,
    terminated: bool,
    truncated: bool,
}

/// Parses the action file: 19 numbers per non-empty line.
fn read_actions(path: &Path) -> Result<Vec<[f64; NU]>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read actions file {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{} line {n}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != NU {
            bail!(
                "{} line {n}: expected {NU} comma-separated actions, got {}",
                path.display(),
                fields.len()
            );
        }
        let mut row = [0.0; NU];
        for (j, (x, f)) in row.iter_mut().zip(&fields).enumerate() {
            *x = f
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| {
                    format!(
                        "{} line {n}, column {}: `{f}` is not a finite number",
                        path.display(),
                        j + 1
                    )
                })?;
        }
        rows.push(row);
    }
    Ok(rows)
}

fn rollout(args: RolloutArgs) -> Result<()> {
    let task = Task::from_name(&args.task)?;
    let actions = read_actions(&args.actions)?;
    let config = HumanoidConfig {
        randomness: args.randomness,
        ..HumanoidConfig::default()
    };
    let mut env = HumanoidEnv::new(task, &config)?;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let (obs, _) = env.reset(Some(args.seed))?;
    let print = |out: &mut BufWriter<_>, line: &Line| -> Result<()> {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    print(
        &mut out,
        &Line {
            t: -1,
            obs: &obs,
            reward: 0.0,
            terminated: false,
            truncated: false,
        },
    )?;
    let limit = args.steps.unwrap_or(u64::MAX);
    let mut obs32 = vec![0.0f32; env.obs_len()];
    for (t, action) in actions.iter().enumerate() {
        if t as u64 >= limit {
            break;
        }
        let tr = match args.action_dtype {
            Dtype::F64 => env.step_f64(action)?,
            Dtype::F32 => {
                let a: Vec<f32> = action.iter().map(|&x| x as f32).collect();
                env.step_into(&a, &mut obs32)?
            }
        };
        print(
            &mut out,
            &Line {
                t: t as i64,
                obs: env.observation(),
                reward: tr.reward,
                terminated: tr.terminated,
                truncated: tr.truncated,
            },
        )?;
        if tr.terminated || tr.truncated {
            break;
        }
    }
    out.flush()?;
    let w = env.warnings();
    if w.total() > 0 {
        eprintln!("humanoid-env: {} MuJoCo warnings: {w:?}", w.total());
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(args.threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(args.steps >= 1, "--steps must be at least 1");
    let task = Task::from_name(&args.task)?;
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let config = HumanoidConfig::default();
    let model = HumanoidModel::load(task, &config.assets_dir)?;
    let start = Instant::now();
    let results: Vec<Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|i| {
                let model = model.clone();
                let config = config.clone();
                s.spawn(move || {
                    if args.raw {
                        bench_raw(&model, args.steps, i as u64)
                    } else {
                        bench_env(model, &config, args.steps, i as u64)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut steps = 0;
    for r in results {
        steps += r?;
    }
    let sps = steps as f64 / seconds;
    println!(
        "task={task} mode={} threads={} steps={steps} seconds={seconds:.2} sps={sps:.1} sps_per_thread={:.1} load1={load1}",
        if args.raw { "raw-mj_step-x10" } else { "env" },
        args.threads,
        sps / args.threads as f64
    );
    Ok(())
}

fn bench_env(
    model: Arc<HumanoidModel>,
    config: &HumanoidConfig,
    steps: u64,
    seed: u64,
) -> Result<u64> {
    let mut env = HumanoidEnv::with_model(model, config)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut obs = vec![0.0f32; env.obs_len()];
    let mut action = [0.0f32; NU];
    env.reset_into(Some(seed), &mut obs)?;
    for _ in 0..steps {
        action.fill_with(|| rng.random_range(-1.0..1.0));
        let t = env.step_into(&action, &mut obs)?;
        if t.terminated || t.truncated {
            env.reset_into(None, &mut obs)?;
        }
    }
    Ok(steps)
}

/// The same physics without the environment: ctrl from the same kind of actions, 10 × mj_step,
/// a keyframe reset when the pelvis is below 0.2 m.
fn bench_raw(model: &HumanoidModel, steps: u64, seed: u64) -> Result<u64> {
    let mut data = MjData::new(model.model().clone());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    data.reset_keyframe(0)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let range: Vec<[f64; 2]> = model.model().actuator_ctrlrange().to_vec();
    for _ in 0..steps {
        for (c, r) in data.ctrl_mut().iter_mut().zip(&range) {
            let a: f64 = rng.random_range(-1.0..1.0);
            *c = (a + 1.0) / 2.0 * (r[1] - r[0]) + r[0];
        }
        for _ in 0..FRAME_SKIP {
            data.step();
        }
        if data.qpos()[2] < 0.2 {
            data.reset_keyframe(0)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
    }
    Ok(steps)
}
