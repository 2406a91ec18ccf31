//! The `atari-env` binary: bad benchmark arguments fail with one line, not a panic.

use std::process::Command;

fn bench(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atari-env"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run atari-env");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_batch_outside_one_to_envs_is_one_clear_error() {
    for batch in ["0", "3"] {
        let (ok, stderr) = bench(&["--envs", "2", "--batch", batch, "--steps", "10"]);
        assert!(!ok, "--batch {batch} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--batch must be between 1 and --envs (2)"),
            "{stderr}"
        );
    }
    let (ok, stderr) = bench(&[
        "--envs",
        "2",
        "--batch",
        "1",
        "--threads",
        "2",
        "--steps",
        "10",
    ]);
    assert!(ok, "{stderr}");
}

#[test]
fn zero_steps_is_one_clear_error() {
    for extra in [&[][..], &["--raw"][..]] {
        let mut args = vec!["--steps", "0"];
        args.extend_from_slice(extra);
        let (ok, stderr) = bench(&args);
        assert!(!ok, "--steps 0 {extra:?} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--steps must be at least 1"), "{stderr}");
    }
}
