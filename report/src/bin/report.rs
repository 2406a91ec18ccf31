//! `report DIR... [--out DIR] [--metric TAG] [--at final|STEP] [--method-keys K1,K2]
//! [--include-unfinished] [--allow-ragged]`: statistics, tables and figures from fire-rl run
//! directories (see the crate documentation).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

/// Reads run directories (sweeps or single runs, searched recursively) and writes report.md,
/// aggregates.csv and figures (PNG and SVG) with rliable's statistics.
#[derive(Parser, Debug)]
#[command(name = "report", version)]
struct Args {
    /// Run directories, or directories holding runs at any depth (e.g. results/sweeps/NAME).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Output directory (created); default: `report/` inside the first DIR.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The metric tag scored.
    #[arg(long, default_value = "eval/episodic_return")]
    metric: String,
    /// Score at the last logged step (`final`) or at the last logged step at or before STEP
    /// (`1250000`, `1.25M`, `250k`).
    #[arg(long, default_value = "final")]
    at: String,
    /// Bootstrap replicates of the tables (rliable's default).
    #[arg(long, default_value_t = 50_000)]
    reps: usize,
    /// Bootstrap replicates of learning-curve bands and performance profiles.
    #[arg(long, default_value_t = 2_000)]
    curve_reps: usize,
    /// Seed of the bootstrap's resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The config keys that make a method besides `intervention` (`fire_every,shrink`); default:
    /// the keys whose values differ between runs of an intervention on a task.
    #[arg(long, value_delimiter = ',')]
    method_keys: Option<Vec<String>>,
    /// Score unfinished and failed runs at their last step instead of leaving them out.
    #[arg(long)]
    include_unfinished: bool,
    /// Aggregate over tasks although some method lacks a task or has another number of runs
    /// (the report warns) instead of failing.
    #[arg(long)]
    allow_ragged: bool,
}

fn run(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(|| args.dirs[0].join("report"));
    let mut opts = report::Options::new(args.dirs, out);
    opts.metric = args.metric;
    opts.at = match args.at.as_str() {
        "final" => None,
        s => Some(report::runs::parse_step(s).map_err(|e| anyhow::anyhow!("--at: {e}"))?),
    };
    anyhow::ensure!(
        args.reps >= 100 && args.curve_reps >= 100,
        "--reps and --curve-reps must be at least 100"
    );
    opts.bootstrap.reps = args.reps;
    opts.bootstrap.seed = args.seed;
    opts.curve_reps = args.curve_reps;
    if let Some(keys) = &args.method_keys {
        anyhow::ensure!(
            keys.iter().all(|k| !k.trim().is_empty()),
            "--method-keys: an empty key in `{}`",
            keys.join(",")
        );
    }
    opts.method_keys = args
        .method_keys
        .map(|ks| ks.into_iter().map(|k| k.trim().to_string()).collect());
    opts.include_unfinished = args.include_unfinished;
    opts.allow_ragged = args.allow_ragged;
    let s = report::run(&opts)?;
    let left = match s.left_out {
        0 => String::new(),
        n => format!(" ({n} unfinished or failed left out)"),
    };
    println!(
        "{} runs{left} -> {} , {} and {} figures",
        s.runs,
        s.report_md.display(),
        s.aggregates_csv.display(),
        s.figures.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
