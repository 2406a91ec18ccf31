//! `atari-env`: list the installed Atari games, or measure environment speed.
//!
//! ```text
//! cargo run --release --bin atari-env -- list
//! cargo run --release --bin atari-env -- bench --game Breakout --envs 1 --threads 1
//! cargo run --release --bin atari-env -- bench --game Breakout --envs 8 --threads 2
//! cargo run --release --bin atari-env -- bench --game Breakout --envs 8 --threads 2 --batch 4
//! cargo run --release --bin atari-env -- bench --game Breakout --raw
//! cargo run --release --bin atari-env -- record --game Asterix --out /tmp/asterix.frames
//! ```
//! `record` writes, for every `--every`-th step of a random-action run, the step's last two
//! screens in RGB (210x160x3 each) and in ALE's grayscale (210x160 each), then the 84x84 frame
//! the preprocessing made of them: 275,856 bytes per record, no header
//! (`envs/tests/data/measure_resize_order.py` reads it).
//! `bench` prints one line: `game=Breakout preset=fire-paper envs=1 batch=1 threads=1 steps=20000
//! seconds=9.81 sps=2039.0 sps_per_thread=2039.0 load1=0.05`: agent steps per second summed
//! over environments, random actions, the full preprocessing (or, with `--raw`, bare emulation
//! at frame skip 4), and the machine's one-minute load average before the run.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use envs::atari::games::{available_games, rom_dir, ROM_DIR_VAR};
use envs::atari::{AtariConfig, AtariEnv};
use envs::vector::{AsyncVecEnv, VecEnv};
use rand::{Rng, SeedableRng};

/// Atari environments: list games, measure speed.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the games whose installed ROM is the one ALE 0.12.1 supports (by md5).
    List,
    /// Agent steps per second with random actions.
    Bench(BenchArgs),
    /// Record screens and preprocessed frames of a random-action run (for measurements).
    Record(RecordArgs),
}

#[derive(Parser, Debug)]
struct RecordArgs {
    /// Game name as in `list`.
    #[arg(long, default_value = "Breakout")]
    game: String,
    /// Records to write.
    #[arg(long, default_value_t = 200)]
    records: u64,
    /// Agent steps between records.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Preprocessing preset.
    #[arg(long, value_enum, default_value_t = Preset::FirePaper)]
    preset: Preset,
    /// Seed of the environment and of the random actions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(Parser, Debug)]
struct BenchArgs {
    /// Game name as in `list` (e.g. Breakout, BeamRider, MsPacman).
    #[arg(long, default_value = "Breakout")]
    game: String,
    /// Parallel environments.
    #[arg(long, default_value_t = 1)]
    envs: usize,
    /// Threads stepping them.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Environments per batch [default: --envs]. Fewer steps asynchronously (EnvPool's
    /// batch_size): each batch is whichever environments finish first.
    #[arg(long)]
    batch: Option<usize>,
    /// Agent steps in total (summed over environments).
    #[arg(long, default_value_t = 20_000)]
    steps: u64,
    /// Preprocessing preset.
    #[arg(long, value_enum, default_value_t = Preset::FirePaper)]
    preset: Preset,
    /// Measure bare emulation (frame skip 4, no preprocessing) on one environment instead.
    #[arg(long)]
    raw: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Preset {
    /// The FIRE reference code's DQN wrappers.
    FirePaper,
    /// Mnih et al. (2015) as CleanRL's `dqn_atari.py`.
    Nature,
    /// Machado et al. (2018), Gymnasium v5.
    Machado,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("atari-env");
    let result = match args.command {
        Command::List => list(),
        Command::Bench(b) => bench(b),
        Command::Record(r) => record(r),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fire::cli::report_error("atari-env", &err),
    }
}

fn list() -> Result<()> {
    let dir = rom_dir();
    let games = available_games(&dir);
    anyhow::ensure!(
        !games.is_empty(),
        "no ROMs in {} (run ./setup.sh, or set {ROM_DIR_VAR})",
        dir.display()
    );
    println!("{} games with ROMs in {}:", games.len(), dir.display());
    for g in games {
        println!("  {g}");
    }
    Ok(())
}

fn preset_config(preset: Preset) -> AtariConfig {
    match preset {
        Preset::FirePaper => AtariConfig::fire_paper(),
        Preset::Nature => AtariConfig::nature(),
        Preset::Machado => AtariConfig::machado(),
    }
}

fn record(args: RecordArgs) -> Result<()> {
    use envs::Env;
    use std::io::Write;
    anyhow::ensure!(args.records >= 1, "--records must be at least 1");
    anyhow::ensure!(args.every >= 1, "--every must be at least 1");
    let config = preset_config(args.preset);
    anyhow::ensure!(
        config.frame_size == 84,
        "record expects 84x84 frames, the preset has {}",
        config.frame_size
    );
    let mut env = AtariEnv::with_seed(&args.game, config, &rom_dir(), args.seed)?;
    env.keep_rgb_screens();
    env.reset(Some(args.seed))?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let actions = env.num_actions();
    for _ in 0..args.records {
        for _ in 0..args.every {
            let step = env.step(&rng.random_range(0..actions))?;
            if step.terminated || step.truncated {
                env.reset(None)?;
            }
        }
        let rgb = env.rgb_screens().context("RGB screens were not kept")?;
        for part in rgb.iter().chain(env.gray_screens()) {
            out.write_all(part)?;
        }
        out.write_all(env.newest_frame())?;
    }
    out.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "atari-env: {} records of {} in {}",
        args.records,
        args.game,
        args.out.display()
    );
    Ok(())
}

/// One step of a vector environment with the given actions.
type StepFn = dyn FnMut(&[f32]) -> envs::Result<()>;

fn bench(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(args.envs >= 1, "--envs must be at least 1");
    anyhow::ensure!(args.threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(args.steps >= 1, "--steps must be at least 1");
    let batch = args.batch.unwrap_or(args.envs);
    anyhow::ensure!(
        (1..=args.envs).contains(&batch),
        "--batch must be between 1 and --envs ({}), got {batch}",
        args.envs
    );
    let config = preset_config(args.preset);
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let dir = rom_dir();
    let mut envs = (0..args.envs)
        .map(|i| AtariEnv::with_seed(&args.game, config.clone(), &dir, i as u64))
        .collect::<Result<Vec<_>, _>>()
        .context("creating the environments")?;
    let actions = envs[0].num_actions();
    let (steps, seconds, threads) = if args.raw {
        let env = &mut envs[0];
        let start = Instant::now();
        env.emulate_raw(args.steps);
        (args.steps, start.elapsed().as_secs_f64(), 1)
    } else {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut actions_of_batch = vec![0f32; batch];
        let mut draw = |a: &mut [f32]| a.fill_with(|| rng.random_range(0..actions) as f32);
        let rounds = (args.steps / batch as u64).max(1);
        // Both vector environments behind one call, so both run the same timed loop.
        let mut step: Box<StepFn> = if batch == args.envs {
            let mut vec = VecEnv::new(envs, args.threads)?;
            vec.reset(Some(0))?;
            Box::new(move |a| vec.step(a).map(|_| ()))
        } else {
            let mut vec = AsyncVecEnv::new(envs, args.threads, batch)?;
            vec.reset(Some(0))?;
            Box::new(move |a| vec.step(a).map(|_| ()))
        };
        let start = Instant::now();
        for _ in 0..rounds {
            draw(&mut actions_of_batch);
            step(&actions_of_batch)?;
        }
        (
            rounds * batch as u64,
            start.elapsed().as_secs_f64(),
            args.threads,
        )
    };
    let sps = steps as f64 / seconds;
    let preset = if args.raw {
        "raw-emulation".to_string()
    } else {
        args.preset
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    };
    println!(
        "game={} preset={preset} envs={} batch={} threads={threads} steps={steps} seconds={seconds:.2} sps={sps:.1} sps_per_thread={:.1} load1={load1}",
        args.game,
        if args.raw { 1 } else { args.envs },
        if args.raw { 1 } else { batch },
        sps / threads as f64
    );
    Ok(())
}
