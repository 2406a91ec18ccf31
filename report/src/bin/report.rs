//! `report DIR... [--out DIR] [--metric TAG] [--at final|STEP]`: statistics, tables and figures
//! from fire-rl run directories (see the crate documentation).

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
    let s = report::run(&opts)?;
    println!(
        "{} runs -> {} , {} and {} figures",
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
