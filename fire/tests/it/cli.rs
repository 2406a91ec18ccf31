//! The `fire` command-line tool end to end, on files the tests write.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fire::tensor_file::TensorFile;
use tch::{Device, Kind, Tensor};

use crate::util::gaussian;

fn fire_cmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fire"))
        .args(args)
        .output()
        .expect("run the fire binary")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A PyTorch-like state dict: conv, batchnorm, linear layers, a bf16 weight and an int buffer.
fn checkpoint(dir: &Path, name: &str, seed: i64) -> PathBuf {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_owned(), "pt".to_owned());
    let file = TensorFile {
        tensors: vec![
            ("features.0.weight".into(), gaussian(&[16, 3, 3, 3], seed)),
            ("features.0.bias".into(), gaussian(&[16], seed + 1)),
            (
                "features.1.weight".into(),
                Tensor::ones([16], (Kind::Float, Device::Cpu)),
            ),
            ("features.1.running_mean".into(), gaussian(&[16], seed + 2)),
            (
                "features.1.num_batches_tracked".into(),
                Tensor::from_slice(&[7i64]).reshape([]),
            ),
            ("classifier.weight".into(), gaussian(&[10, 64], seed + 3)),
            ("classifier.bias".into(), gaussian(&[10], seed + 4)),
            (
                "proj.weight".into(),
                gaussian(&[32, 32], seed + 5).to_kind(Kind::BFloat16),
            ),
        ],
        metadata: Some(metadata),
    };
    let path = dir.join(name);
    file.write(&path).unwrap();
    path
}

#[test]
fn apply_fire_writes_an_isometric_checkpoint_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = checkpoint(dir.path(), "in.safetensors", 1);
    let output = dir.path().join("out.safetensors");
    let report = dir.path().join("report.json");
    let out = fire_cmd(&["apply", p(&input), p(&output), "--report", p(&report)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let before = TensorFile::read(&input).unwrap();
    let after = TensorFile::read(&output).unwrap();
    assert_eq!(after.metadata, before.metadata);
    let names = |f: &TensorFile| {
        f.tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.kind(), t.size()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&after),
        names(&before),
        "names, dtypes and shapes preserved"
    );
    for passthrough in [
        "features.0.bias",
        "features.1.weight",
        "features.1.running_mean",
        "features.1.num_batches_tracked",
        "classifier.bias",
    ] {
        assert!(
            after
                .get(passthrough)
                .unwrap()
                .equal(before.get(passthrough).unwrap()),
            "{passthrough} changed"
        );
    }
    assert!(!after
        .get("classifier.weight")
        .unwrap()
        .equal(before.get("classifier.weight").unwrap()));

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = json.as_array().unwrap();
    let changed: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        changed,
        vec!["classifier.weight", "features.0.weight", "proj.weight"]
    );
    for r in rows {
        for key in ["shape", "sfe", "dfi_before", "dfi_after"] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        // The 32x32 Gaussian is ill-conditioned: ten reference steps shrink its DfI by orders
        // of magnitude without reaching zero (the tolerance mode is tested elsewhere).
        assert!(
            r["dfi_after"].as_f64().unwrap() < 1e-3 * r["dfi_before"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(r["iterations"].as_u64(), Some(10));
    }

    // inspect reads ~0 DfI on the FIRE'd weights and more on the originals.
    let dfi_of = |path: &Path| {
        let out = fire_cmd(&["inspect", p(path), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "classifier.weight")
            .unwrap()["dfi_per_column"]
            .as_f64()
            .unwrap()
    };
    assert!(dfi_of(&output) < 1e-4);
    assert!(dfi_of(&input) > 1.0);
    let table = fire_cmd(&["inspect", p(&output)]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("features.0.weight") && text.contains("conv") && text.contains("bfloat16"),
        "{text}"
    );
}

#[test]
fn include_exclude_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let input = checkpoint(dir.path(), "in.safetensors", 2);
    let init = checkpoint(dir.path(), "init.safetensors", 3);
    let output = dir.path().join("out.safetensors");
    let report = dir.path().join("r.json");

    let run = |extra: &[&str]| {
        let mut args = vec!["apply", p(&input), p(&output), "--report", p(&report)];
        args.extend_from_slice(extra);
        let out = fire_cmd(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&["--include", "features.*"]), vec!["features.0.weight"]);
    assert_eq!(
        run(&["--exclude", "features.*", "--exclude", "proj.*"]),
        vec!["classifier.weight"]
    );
    assert_eq!(
        run(&["--method", "fire-exact", "--include", "classifier.*"]),
        vec!["classifier.weight"]
    );
    assert_eq!(
        run(&[
            "--method",
            "fire-tol",
            "--tol",
            "1e-5",
            "--include",
            "proj.*"
        ]),
        vec!["proj.weight"]
    );

    // Full reset copies --init into every selected float tensor, biases included.
    let reset = run(&[
        "--method",
        "full-reset",
        "--init",
        p(&init),
        "--include",
        "classifier.*",
    ]);
    assert_eq!(reset, vec!["classifier.bias", "classifier.weight"]);
    let (after, theta0) = (
        TensorFile::read(&output).unwrap(),
        TensorFile::read(&init).unwrap(),
    );
    assert!(after
        .get("classifier.weight")
        .unwrap()
        .equal(theta0.get("classifier.weight").unwrap()));

    run(&[
        "--method",
        "shrink-perturb",
        "--init",
        p(&init),
        "--shrink",
        "0.25",
        "--include",
        "classifier.weight",
    ]);
    let before = TensorFile::read(&input).unwrap();
    let after = TensorFile::read(&output).unwrap();
    let want = before.get("classifier.weight").unwrap() * 0.25
        + theta0.get("classifier.weight").unwrap() * 0.75;
    assert!(after
        .get("classifier.weight")
        .unwrap()
        .allclose(&want, 1e-6, 1e-6, false));
}

/// Runs a failing command: one error line, non-zero exit, and no output file left behind.
fn assert_clean_failure(args: &[&str], output: &Path, needle: &str) {
    let out = fire_cmd(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected, got:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: `{needle}` not in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!output.exists(), "{args:?} left {}", output.display());
}

#[test]
fn bad_inputs_fail_cleanly_without_writing_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = checkpoint(dir.path(), "in.safetensors", 4);
    let out = dir.path().join("out.safetensors");
    let missing = dir.path().join("missing.safetensors");
    assert_clean_failure(
        &["apply", p(&missing), p(&out)],
        &out,
        "missing.safetensors",
    );

    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_clean_failure(
        &["apply", p(&truncated), p(&out)],
        &out,
        "not a valid safetensors file",
    );

    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "these are not tensors").unwrap();
    assert_clean_failure(
        &["apply", p(&text), p(&out)],
        &out,
        "not a valid safetensors file",
    );

    // --init with different shapes, and with different names.
    let other = dir.path().join("other.safetensors");
    TensorFile {
        tensors: vec![("classifier.weight".into(), gaussian(&[3, 3], 1))],
        metadata: None,
    }
    .write(&other)
    .unwrap();
    assert_clean_failure(
        &[
            "apply",
            p(&good),
            p(&out),
            "--method",
            "full-reset",
            "--init",
            p(&other),
        ],
        &out,
        "has no tensor",
    );
    let reshaped = dir.path().join("reshaped.safetensors");
    let mut file = TensorFile::read(&good).unwrap();
    file.tensors[0].1 = gaussian(&[2, 2], 1);
    let first = file.tensors[0].0.clone();
    file.write(&reshaped).unwrap();
    assert_clean_failure(
        &[
            "apply",
            p(&good),
            p(&out),
            "--method",
            "full-reset",
            "--init",
            p(&reshaped),
        ],
        &out,
        &first,
    );
    assert_clean_failure(
        &["apply", p(&good), p(&out), "--method", "full-reset"],
        &out,
        "needs --init",
    );

    // Unwritable destinations.
    let nowhere = dir.path().join("no-such-dir").join("out.safetensors");
    assert_clean_failure(&["apply", p(&good), p(&nowhere)], &nowhere, "cannot write");
    let report_nowhere = dir.path().join("no-such-dir").join("r.json");
    assert_clean_failure(
        &["apply", p(&good), p(&out), "--report", p(&report_nowhere)],
        &out,
        "cannot write",
    );

    // Bad numbers and globs.
    assert_clean_failure(
        &[
            "apply",
            p(&good),
            p(&out),
            "--method",
            "fire-tol",
            "--tol=-1",
        ],
        &out,
        "tolerance",
    );
    assert_clean_failure(&["apply", p(&good), p(&out), "--include", "a["], &out, "a[");
    assert_clean_failure(
        &[
            "apply",
            p(&good),
            p(&out),
            "--method",
            "shrink-perturb",
            "--init",
            p(&good),
            "--shrink",
            "2",
        ],
        &out,
        "--shrink",
    );

    // No temporary files left in the directory either.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".fire-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn error_lines_name_missing_arguments_and_print_each_cause_once() {
    let out = fire_cmd(&["apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("<INPUT>") && stderr.contains("<OUTPUT>"),
        "{stderr}"
    );

    // A path through a regular file: the OS error is part of fire's message once, not twice.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let through = file.join("in.safetensors");
    let out = fire_cmd(&["inspect", p(&through)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

#[cfg(unix)]
#[test]
fn outputs_that_are_special_files_or_inputs_are_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = checkpoint(d, "in.safetensors", 5);
    let init = checkpoint(d, "init.safetensors", 6);
    let out = d.join("out.safetensors");
    let original = std::fs::read(&input).unwrap();
    let original_init = std::fs::read(&init).unwrap();

    // A socket stands in for a device node such as /dev/null (mknod needs root); the old
    // rename replaced it with a regular file.
    let socket = d.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let socket_link = d.join("socket-link");
    std::os::unix::fs::symlink(&socket, &socket_link).unwrap();
    for special in [&socket, &socket_link] {
        let args = ["apply", p(&input), p(&out), "--report", p(special)];
        assert_clean_failure(&args, &out, "not a regular file");
        let args = ["apply", p(&input), p(special)];
        assert_clean_failure(&args, &out, "not a regular file");
    }
    assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());

    // --report over a file that is read or written, under any name.
    let in_link = d.join("in-link.safetensors");
    std::os::unix::fs::symlink(&input, &in_link).unwrap();
    let in_hard = d.join("in-hard.safetensors");
    std::fs::hard_link(&input, &in_hard).unwrap();
    let in_dotted = d.join(".").join("in.safetensors");
    for alias in [&input, &in_link, &in_hard, &in_dotted] {
        let args = ["apply", p(&input), p(&out), "--report", p(alias)];
        assert_clean_failure(&args, &out, "same file as the input");
    }
    let args = ["apply", p(&input), p(&out), "--report", p(&out)];
    assert_clean_failure(&args, &out, "same file as the output");
    let reset = ["--method", "full-reset", "--init"];
    let mut args = vec!["apply", p(&input), p(&out), "--report", p(&init)];
    args.extend_from_slice(&reset);
    args.push(p(&init));
    assert_clean_failure(&args, &out, "same file as --init");

    // The output over --init (by another name), and in place over the input with the report
    // on it.
    let init_hard = d.join("init-hard.safetensors");
    std::fs::hard_link(&init, &init_hard).unwrap();
    let mut args = vec!["apply", p(&input), p(&init_hard)];
    args.extend_from_slice(&reset);
    args.push(p(&init));
    assert_clean_failure(&args, &out, "same file as --init");
    let args = ["apply", p(&input), p(&input), "--report", p(&in_link)];
    assert_clean_failure(&args, &out, "same file as the input");

    assert_eq!(std::fs::read(&input).unwrap(), original, "input changed");
    assert_eq!(std::fs::read(&init).unwrap(), original_init, "init changed");
}

#[cfg(unix)]
#[test]
fn in_place_apply_keeps_the_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = checkpoint(dir.path(), "in.safetensors", 7);
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = TensorFile::read(&input).unwrap();
    let out = fire_cmd(&["apply", p(&input), p(&input)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&input).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let after = TensorFile::read(&input).unwrap();
    assert!(!after
        .get("classifier.weight")
        .unwrap()
        .equal(before.get("classifier.weight").unwrap()));
}

/// A one-tensor checkpoint.
fn single(dir: &Path, name: &str, tensor: Tensor) -> PathBuf {
    let path = dir.join(name);
    TensorFile {
        tensors: vec![("fc.weight".into(), tensor)],
        metadata: None,
    }
    .write(&path)
    .unwrap();
    path
}

#[test]
fn huge_weights_are_orthogonalised_and_diverged_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = gaussian(&[48, 24], 21);
    // N(0, 1) x 1e18 in f32: its Frobenius norm overflowed and FIRE wrote all zeros.
    let plain = single(d, "plain.safetensors", w.shallow_clone());
    let huge = single(d, "huge.safetensors", &w * 1e18);
    for method in ["fire", "fire-exact", "fire-tol"] {
        let mut outputs = Vec::new();
        for input in [&plain, &huge] {
            let out = d.join(format!(
                "out-{method}-{}",
                input.file_name().unwrap().to_str().unwrap()
            ));
            let run = fire_cmd(&["apply", p(input), p(&out), "--method", method]);
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            outputs.push(
                TensorFile::read(&out)
                    .unwrap()
                    .get("fc.weight")
                    .unwrap()
                    .copy(),
            );
        }
        let gap = crate::util::distance(&outputs[0], &outputs[1]);
        assert!(
            gap < 1e-4,
            "{method}: the 1e18 matrix gives another factor ({gap})"
        );
    }
    // inspect: a finite norm and DfI (the f32 Gram matrix overflowed).
    let run = fire_cmd(&["inspect", p(&huge), "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let norm = rows[0]["norm"].as_f64().unwrap();
    let want = 1e18 * crate::util::distance(&w, &(&w * 0.0));
    assert!((norm - want).abs() < 1e-5 * want, "{norm} vs {want}");
    assert!(rows[0]["dfi"].as_f64().unwrap().is_finite(), "{}", rows[0]);

    // NaN or infinity: refused by every method, naming the parameter.
    let good_init = single(d, "init.safetensors", w.shallow_clone());
    let out = d.join("out.safetensors");
    for bad in [f64::NAN, f64::INFINITY] {
        let poisoned = w.copy();
        let _ = poisoned.get(3).get(4).fill_(bad);
        let input = single(d, "poisoned.safetensors", poisoned);
        for method in [
            "fire",
            "fire-exact",
            "fire-tol",
            "full-reset",
            "shrink-perturb",
        ] {
            let args = [
                "apply",
                p(&input),
                p(&out),
                "--method",
                method,
                "--init",
                p(&good_init),
            ];
            assert_clean_failure(&args, &out, "`fc.weight` contains NaN or infinity");
        }
    }
}

#[test]
fn the_report_describes_the_tensors_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = checkpoint(dir.path(), "in.safetensors", 8);
    let output = dir.path().join("out.safetensors");
    let report = dir.path().join("r.json");
    let args = ["apply", p(&input), p(&output), "--method", "fire-exact"];
    let run = fire_cmd(&[&args[..], &["--report", p(&report)]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let (before, after) = (
        TensorFile::read(&input).unwrap(),
        TensorFile::read(&output).unwrap(),
    );
    for row in json.as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let (b, a) = (before.get(name).unwrap(), after.get(name).unwrap());
        let role = fire::ParamRole::classify(name, &a.size());
        let dfi = fire::isometry_dfi(role, a).unwrap();
        let sfe = fire::sfe(b, a).unwrap();
        let (got_dfi, got_sfe) = (
            row["dfi_after"].as_f64().unwrap(),
            row["sfe"].as_f64().unwrap(),
        );
        // proj.weight is bf16: ~1e-4 as stored, ~1e-10 for the f32 factor the old report gave.
        assert!(
            (got_dfi - dfi).abs() <= 1e-6 * dfi + 1e-9,
            "{name}: dfi {got_dfi} vs {dfi}"
        );
        assert!(
            (got_sfe - sfe).abs() <= 1e-6 * sfe,
            "{name}: sfe {got_sfe} vs {sfe}"
        );
    }
}

#[test]
fn includes_that_match_nothing_zero_iterations_and_negative_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = checkpoint(dir.path(), "in.safetensors", 9);
    let out = dir.path().join("out.safetensors");
    let args = ["apply", p(&input), p(&out), "--include", "classifier.*"];
    let args = [&args[..], &["--include", "clasifier.weight"]].concat();
    assert_clean_failure(&args, &out, "`clasifier.weight` matches no tensor");
    let args = ["apply", p(&input), p(&out), "--iters", "0"];
    assert_clean_failure(&args, &out, "at least 1");
    assert_clean_failure(&args, &out, "--method fire-exact");

    // FIRE on a bias changes nothing: the total SFE is 0, not -0.
    let run = fire_cmd(&["apply", p(&input), p(&out), "--include", "classifier.bias"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("total SFE 0") && !stderr.contains("-0"),
        "{stderr}"
    );
}
