//! `fire`: FIRE and the reset baselines for any PyTorch checkpoint saved as safetensors.
//!
//! ```text
//! fire apply model.safetensors model-fire.safetensors --report report.json
//! fire inspect model.safetensors
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use fire::tensor_file::{write_atomic, TensorFile};
use fire::{
    isometry_dfi, DeviceChoice, Intervention, Method, Orthogonalizer, ParamReport, ParamRole,
    ParamSelector, ParamSnapshot, ShrinkPerturb, Sources,
};
use tch::{Device, Kind, Tensor};

/// FIRE (Frobenius-Isometry Reinitialization) for PyTorch checkpoints in safetensors format.
///
/// PyTorch conventions: a 2-D `*.weight` is a linear layer (d_out x d_in), a 4-D `*.weight` a
/// conv kernel. Biases, norms, buffers and anything not selected pass through unchanged, with
/// their names and dtypes.
#[derive(Parser, Debug)]
#[command(name = "fire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply FIRE (or a baseline) to a checkpoint and write the result.
    Apply(ApplyArgs),
    /// Show each parameter's shape, norm and distance from isometry.
    Inspect(InspectArgs),
}

#[derive(Parser, Debug)]
struct ApplyArgs {
    /// Input checkpoint (.safetensors).
    input: PathBuf,
    /// Output checkpoint; written atomically (never half-written), keeping the mode of the file
    /// it replaces. May equal the input (in place); must not be `--init` or a device node.
    output: PathBuf,
    /// What to do to the selected parameters.
    #[arg(long, value_enum, default_value_t = Method::Fire)]
    method: Method,
    /// Newton–Schulz iterations for `--method fire` (the paper uses 10).
    #[arg(long, default_value_t = fire::orthogonalize::PAPER_ITERATIONS)]
    iters: usize,
    /// Target DfI per column for `--method fire-tol`.
    #[arg(long, default_value_t = 1e-6)]
    tol: f64,
    /// Iteration cap for `--method fire-tol`.
    #[arg(long, default_value_t = 100)]
    max_iters: usize,
    /// Initial weights theta_0 (same names and shapes), for full-reset and shrink-perturb.
    #[arg(long, value_name = "INIT.safetensors")]
    init: Option<PathBuf>,
    /// Shrink factor lambda for shrink-perturb: lambda * theta + (1 - lambda) * theta_0.
    #[arg(long, default_value_t = 0.2)]
    shrink: f64,
    /// Only parameters whose name matches this glob (repeatable; default: all).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip parameters whose name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Write a JSON report (one object per changed parameter) here; not the input, the output
    /// or `--init`.
    #[arg(long, value_name = "REPORT.json")]
    report: Option<PathBuf>,
    /// Where to compute: auto uses CUDA when available.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
}

#[derive(Parser, Debug)]
struct InspectArgs {
    /// Checkpoint to inspect (.safetensors).
    input: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli: Cli = fire::cli::parse_or_exit("fire");
    let result = match cli.command {
        Command::Apply(args) => apply(args),
        Command::Inspect(args) => inspect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fire::cli::report_error("fire", &err),
    }
}

fn apply(args: ApplyArgs) -> Result<()> {
    // Everything that can be checked is checked before any work.
    if args.iters == 0 {
        bail!(
            "--iters must be at least 1 (0 Newton–Schulz steps would only normalise the weights); \
             --method fire-exact gives the exact SVD polar factor"
        );
    }
    let intervention = match args.method {
        Method::Fire => Intervention::Fire(Orthogonalizer::NewtonSchulz { iters: args.iters }),
        Method::FireExact => Intervention::Fire(Orthogonalizer::Exact),
        Method::FireTol => Intervention::Fire(Orthogonalizer::Tolerance {
            tol: args.tol,
            max_iters: args.max_iters,
        }),
        // On a checkpoint, a layer reset is a reset restricted by --include / --exclude.
        Method::FullReset | Method::LayerReset => Intervention::Reset,
        Method::None | Method::Redo | Method::PlasticityInjection => bail!(
            "--method {}: not something to apply to a checkpoint (it needs a training agent); use fire, fire-exact, fire-tol, full-reset or shrink-perturb",
            args.method
        ),
        Method::ShrinkPerturb => Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit {
            shrink: args.shrink,
        }),
    };
    if let Intervention::Fire(o) = intervention {
        o.validate()?;
    }
    if let Intervention::ShrinkPerturb(_) = intervention {
        if !(0.0..=1.0).contains(&args.shrink) {
            bail!("--shrink must be in [0, 1], got {}", args.shrink);
        }
    }
    let needs_init = matches!(
        intervention,
        Intervention::Reset | Intervention::ShrinkPerturb(_)
    );
    if needs_init && args.init.is_none() {
        bail!(
            "--method {:?} needs --init INIT.safetensors (the initial weights)",
            args.method
        );
    }
    let mut selector = ParamSelector::all();
    for g in &args.include {
        selector = selector.include(g)?;
    }
    for g in &args.exclude {
        selector = selector.exclude(g)?;
    }
    check_paths(&args)?;
    let device = pick_device(args.device)?;

    let file = TensorFile::read(&args.input)?;
    // A glob that matches nothing is almost always a typo, and the run would silently change
    // less than asked (or nothing).
    if let Some(glob) = ParamSelector::first_unmatched(&args.include, &file.tensors)? {
        bail!(
            "--include `{glob}` matches no tensor in {}",
            args.input.display()
        );
    }
    let init = match &args.init {
        Some(path) => Some(load_matching_init(path, &file)?),
        None => None,
    };

    // Work in f32 on the chosen device (f64 tensors in f64: their values may be beyond f32's
    // range); only floating-point tensors are candidates.
    // Shrink & perturb acts on parameters; buffers such as BatchNorm running statistics
    // (role "other") are left alone, as in the reference. A full reset restores those too.
    let skips_buffers = matches!(intervention, Intervention::ShrinkPerturb(_));
    let fire_only_matrices = matches!(intervention, Intervention::Fire(_));
    let mut work: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in &file.tensors {
        let role = ParamRole::classify(name, &t.size());
        let buffer = role == ParamRole::Other;
        if t.is_floating_point() && selector.matches(name, &t.size()) && !(skips_buffers && buffer)
        {
            // A NaN or infinite weight has no polar factor (FIRE returned noise or a scaled
            // identity), and a reset would hide that the checkpoint diverged: every method
            // refuses, naming the parameter. FIRE leaves biases and norms alone, so only the
            // weights it changes count.
            if (role.is_matrix() || !fire_only_matrices) && !all_finite(t)? {
                bail!(
                    "{}: parameter `{name}` contains NaN or infinity; fire changes only finite weights",
                    args.input.display()
                );
            }
            let kind = match t.kind() {
                Kind::Double => Kind::Double,
                _ => Kind::Float,
            };
            work.push((name.clone(), t.f_to_device(device)?.f_to_kind(kind)?));
        }
    }
    let init_snapshot = match &init {
        Some(init) => Some(ParamSnapshot::from_tensors(
            work.iter()
                .map(|(name, like)| {
                    let t = init.get(name).expect("checked by load_matching_init");
                    Ok((name.clone(), t.f_to_device(device)?.f_to_kind(like.kind())?))
                })
                .collect::<Result<Vec<_>>>()?,
        )),
        None => None,
    };

    // One group per shape: FIRE batches same-shaped matrices, and the bar moves per group.
    let mut groups: BTreeMap<Vec<i64>, Vec<(String, Tensor)>> = BTreeMap::new();
    for (name, t) in &work {
        groups
            .entry(t.size())
            .or_default()
            .push((name.clone(), t.shallow_clone()));
    }
    let bar = progress_bar(work.len() as u64, "applying");
    let mut reports: Vec<ParamReport> = Vec::new();
    for members in groups.values() {
        let sources = Sources {
            initial: init_snapshot.as_ref(),
            fresh: None,
        };
        reports.extend(intervention.apply(members, &ParamSelector::all(), sources)?);
        bar.inc(members.len() as u64);
    }
    bar.finish_and_clear();
    reports.sort_by(|a, b| a.name.cmp(&b.name));

    // Reassemble in the original dtypes; untouched tensors pass through as read.
    let changed: BTreeMap<&str, &Tensor> = work.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = TensorFile {
        tensors: Vec::with_capacity(file.tensors.len()),
        metadata: file.metadata.clone(),
    };
    for (name, original) in &file.tensors {
        let tensor = match changed.get(name.as_str()) {
            Some(t) => t.f_to_device(Device::Cpu)?.f_to_kind(original.kind())?,
            None => original.shallow_clone(),
        };
        out.tensors.push((name.clone(), tensor));
    }
    // The report describes what is written. The work was done in f32, and a bf16 or f16
    // parameter is stored rounded: a FIRE'd bf16 weight has a DfI per column near 3e-6, not
    // the 4e-9 of its f32 factor. Where nothing was rounded, the values are already exact.
    for r in &mut reports {
        let (Some(before), Some(after)) = (file.get(&r.name), out.get(&r.name)) else {
            continue;
        };
        if changed.get(r.name.as_str()).map(|t| t.kind()) == Some(after.kind()) {
            continue;
        }
        r.sfe = fire::sfe(before, after)?;
        let norm2 = fire::orthogonalize::squared_norm(before)?;
        r.normalized_sfe = if norm2 > 0.0 { r.sfe / norm2 } else { 0.0 };
        if r.dfi_after.is_some() {
            r.dfi_after = Some(isometry_dfi(r.role, after)?);
        }
    }
    out.write(&args.output)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&reports)?;
        write_atomic(path, &json)?;
    }
    summarize(&reports, &args.output);
    Ok(())
}

/// Reads `--init` and checks it has exactly the input's names and shapes.
fn load_matching_init(path: &Path, input: &TensorFile) -> Result<TensorFile> {
    let init = TensorFile::read(path)?;
    for (name, t) in &input.tensors {
        match init.get(name) {
            None => bail!(
                "{}: has no tensor `{name}` (the input has it)",
                path.display()
            ),
            Some(i) if i.size() != t.size() => bail!(
                "{}: tensor `{name}` has shape {:?}, the input's is {:?}",
                path.display(),
                i.size(),
                t.size()
            ),
            Some(_) => {}
        }
    }
    if init.tensors.len() != input.tensors.len() {
        let extra = init
            .tensors
            .iter()
            .find(|(n, _)| input.get(n).is_none())
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        bail!(
            "{}: has tensor `{extra}` that the input lacks",
            path.display()
        );
    }
    Ok(init)
}

fn inspect(args: InspectArgs) -> Result<()> {
    let file = TensorFile::read(&args.input)?;
    #[derive(serde::Serialize)]
    struct Row {
        name: String,
        shape: Vec<i64>,
        dtype: String,
        role: ParamRole,
        /// L2 norm (floating-point tensors only).
        norm: Option<f64>,
        /// DfI of the weight divided by FIRE's scale (summed over conv taps).
        dfi: Option<f64>,
        /// `dfi` per orthogonalised column: 0 for a perfect isometry.
        dfi_per_column: Option<f64>,
    }
    let mut rows = Vec::new();
    for (name, t) in &file.tensors {
        let role = ParamRole::classify(name, &t.size());
        let float = t.is_floating_point();
        let norm = if float {
            Some(fire::orthogonalize::frobenius_norm(t)?)
        } else {
            None
        };
        let dfi = if float && role.is_matrix() {
            Some(isometry_dfi(role, t)?)
        } else {
            None
        };
        let dfi_per_column = dfi.map(|d| d / columns(role, &t.size()) as f64);
        rows.push(Row {
            name: name.clone(),
            shape: t.size(),
            dtype: format!("{:?}", t.kind()).to_lowercase(),
            role,
            norm,
            dfi,
            dfi_per_column,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<width$}  {:<18}  {:<8}  {:<7}  {:>10}  {:>12}  {:>10}",
        "name", "shape", "dtype", "role", "norm", "dfi", "dfi/k"
    );
    for r in &rows {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.4e}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<width$}  {:<18}  {:<8}  {:<7}  {:>10}  {:>12}  {:>10}",
            r.name,
            format!("{:?}", r.shape),
            r.dtype,
            r.role.short_name(),
            r.norm
                .map(|n| format!("{n:.4}"))
                .unwrap_or_else(|| "-".into()),
            opt(r.dfi),
            opt(r.dfi_per_column),
        );
    }
    Ok(())
}

fn all_finite(t: &Tensor) -> Result<bool> {
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1)
}

/// Number of columns DfI is summed over: min(d_out, d_in), times kernel taps for convs.
fn columns(role: ParamRole, shape: &[i64]) -> i64 {
    match (role, shape) {
        (ParamRole::ConvWeight, [o, i, kh, kw]) => o.min(i) * kh * kw,
        (_, [o, i]) => *o.min(i),
        _ => 1,
    }
}

fn summarize(reports: &[ParamReport], output: &Path) {
    let worst = reports
        .iter()
        .filter_map(|r| r.dfi_after.map(|d| (d, &r.name)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    // A fold from +0.0: `Sum` for floats starts at -0.0, which printed as "-0.0000e0" when
    // nothing was changed.
    let sfe = reports.iter().fold(0.0, |total, r| total + r.sfe);
    eprint!(
        "fire: changed {} parameters, total SFE {sfe:.4e}",
        reports.len()
    );
    if let Some((dfi, name)) = worst {
        eprint!(", largest DfI after {dfi:.3e} ({name})");
    }
    eprintln!("; wrote {}", output.display());
}

/// Checks the files of `fire apply` before any work: every output can be written, and no
/// output is a file the command reads, except the documented in-place `fire apply m m`.
/// A report written over the input, the output or `--init` would destroy it and still exit 0.
fn check_paths(args: &ApplyArgs) -> Result<()> {
    check_writable(&args.output)?;
    if let Some(report) = &args.report {
        check_writable(report)?;
    }
    let output = FileId::of(&args.output);
    if let Some(init) = &args.init {
        if FileId::of(init) == output {
            bail!(
                "the output {} is the same file as --init {}; writing it would destroy the initial weights",
                args.output.display(),
                init.display()
            );
        }
    }
    if let Some(report) = &args.report {
        let id = FileId::of(report);
        let mut others = vec![("the input", &args.input), ("the output", &args.output)];
        if let Some(init) = &args.init {
            others.push(("--init", init));
        }
        for (what, path) in others {
            if FileId::of(path) == id {
                bail!(
                    "--report {} is the same file as {what} {}; the report would overwrite it",
                    report.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Which file a path names, so that two spellings of one file compare equal.
#[derive(Debug, PartialEq)]
enum FileId {
    /// An existing file by device and inode: symlinks and hard links to it are the same file.
    #[cfg(unix)]
    Inode(u64, u64),
    /// A file still to be created (or, off unix, any file): its canonical folder and name.
    Path(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> FileId {
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            return FileId::Inode(meta.dev(), meta.ino());
        }
        if let Ok(canonical) = path.canonicalize() {
            return FileId::Path(canonical);
        }
        // Not there yet: two outputs that do not exist are the same file when their folders
        // are. A path that cannot be resolved at all fails later, when it is read or written.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let dir = dir.canonicalize().unwrap_or(dir);
        FileId::Path(match path.file_name() {
            Some(name) => dir.join(name),
            None => path.to_owned(),
        })
    }
}

/// Fails early, before any work, when `path` cannot take the new file: its folder is not
/// writable, or something other than a regular file is there ([`write_atomic`] would replace
/// a device node such as `/dev/null` by a regular file, so it refuses; this says so first).
fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => bail!("{}: is a directory", path.display()),
        Ok(meta) if !meta.is_file() => bail!(
            "{}: exists and is not a regular file; fire writes only regular files",
            path.display()
        ),
        _ => {}
    }
    // Named like write_atomic's temporary files, so remove_stale_temp_files clears a leftover.
    tempfile::Builder::new()
        .prefix(fire::tensor_file::TEMP_PREFIX)
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot write there", path.display()))?;
    Ok(())
}

fn pick_device(choice: DeviceChoice) -> Result<Device> {
    Ok(choice.resolve()?)
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} tensors [{elapsed}]")
            .expect("static template"),
    );
    bar.set_message(what.to_owned());
    bar
}
