//! `fire-demo`: FIRE against full reset, shrink & perturb and no intervention on a sequence of
//! memorisation tasks, on the CPU in about a minute. See `experiments::demo`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::demo::{run, DemoConfig, Method, TaskResult};

/// Compare plasticity interventions on a sequence of memorisation tasks.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Methods to compare.
    #[arg(long, value_delimiter = ',', default_values_t = [Method::None, Method::Fire, Method::FullReset, Method::ShrinkPerturb])]
    methods: Vec<Method>,
    /// Number of tasks.
    #[arg(long, default_value_t = DemoConfig::default().tasks)]
    tasks: usize,
    /// Full-batch Adam steps per task.
    #[arg(long, default_value_t = DemoConfig::default().steps_per_task)]
    steps_per_task: usize,
    /// Hidden width.
    #[arg(long, default_value_t = DemoConfig::default().width)]
    width: i64,
    /// Seed (inputs, labels and initial weights are shared by every method).
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Also write every measurement as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = fire::cli::parse_or_exit("fire-demo");
    match main_result(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fire::cli::report_error("fire-demo", &err),
    }
}

fn main_result(args: Args) -> Result<()> {
    anyhow::ensure!(
        args.tasks >= 2,
        "--tasks must be at least 2 (interventions happen between tasks)"
    );
    anyhow::ensure!(
        args.steps_per_task >= 1,
        "--steps-per-task must be at least 1"
    );
    anyhow::ensure!(args.width >= 1, "--width must be at least 1");
    let cfg = DemoConfig {
        tasks: args.tasks,
        steps_per_task: args.steps_per_task,
        width: args.width,
        seed: args.seed,
        ..DemoConfig::default()
    };
    tch::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get() as i32));
    println!(
        "{} tasks x {} Adam steps; {} samples, {} classes, MLP {}-{}-{}-{}; seed {}",
        cfg.tasks,
        cfg.steps_per_task,
        cfg.samples,
        cfg.classes,
        cfg.input_dim,
        cfg.width,
        cfg.width,
        cfg.classes,
        cfg.seed
    );
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new((cfg.tasks * args.methods.len()) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{msg:>16} {bar:30} {pos}/{len} tasks [{elapsed}<{eta}]",
    )?);
    let mut all: Vec<TaskResult> = Vec::new();
    for &method in &args.methods {
        bar.set_message(method.to_string());
        all.extend(run(method, &cfg, |_| bar.inc(1))?);
    }
    bar.finish_and_clear();
    print_table(&args.methods, &all, cfg.tasks);
    if let Some(path) = &args.json {
        let text =
            serde_json::to_vec_pretty(&serde_json::json!({ "config": cfg, "results": all }))?;
        fire::tensor_file::write_atomic(path, &text)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_table(methods: &[Method], all: &[TaskResult], tasks: usize) {
    println!("\ntraining accuracy at the end of each task:");
    print!("{:>16}", "task");
    for t in 0..tasks {
        print!(" {t:>6}");
    }
    println!(" {:>10}", "last half");
    for m in methods {
        let rows: Vec<&TaskResult> = all.iter().filter(|r| r.method == *m).collect();
        print!("{:>16}", m.to_string());
        for r in &rows {
            print!(" {:>6.3}", r.accuracy);
        }
        let tail = &rows[tasks / 2..];
        let mean = tail.iter().map(|r| r.accuracy).sum::<f64>() / tail.len() as f64;
        println!(" {mean:>10.3}");
    }
    println!("\nat the last task: SFE of the intervention, DfI at its start, dormant ratio and effective rank at its end:");
    println!(
        "{:>16} {:>12} {:>12} {:>10} {:>10}",
        "method", "SFE", "DfI", "dormant", "eff. rank"
    );
    for m in methods {
        if let Some(r) = all.iter().rfind(|r| r.method == *m) {
            println!(
                "{:>16} {:>12.4e} {:>12.4e} {:>10.3} {:>10.1}",
                m.to_string(),
                r.sfe,
                r.dfi,
                r.dormant_ratio,
                r.effective_rank
            );
        }
    }
}
