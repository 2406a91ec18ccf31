//! The plasticity probe (issue 10, item 8): its size is the `probe_size` key, so feature
//! ranks are bounded by the network rather than by the probe; `refresh` draws a new probe at
//! every measurement and `fixed` keeps one (saved with the replay in checkpoints).

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "--steps",
        "4000",
        "--learning-starts",
        "500",
        "--eval-every",
        "0",
        "--set",
        "plasticity_every=500",
        "--run-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_classic"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(step, value)` of `tag` in the run's metrics.csv.
fn series(dir: &Path, tag: &str) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 4 && f[2] == tag).then(|| (f[0].parse().unwrap(), f[3].parse().unwrap()))
        })
        .collect()
}

#[test]
fn the_probe_has_the_configured_size_and_is_refreshed_or_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    // A probe of 3 observations caps the rank of the features at 3; the default (1,024)
    // does not (CartPole's network has 64 features in its last hidden layer).
    let small = tmp.path().join("small");
    run(&small, &["--set", "probe_size=3"]);
    let ranks = series(&small, "plasticity/srank");
    assert_eq!(ranks.len(), 7, "measured at 1k, 1.5k, ... 4k: {ranks:?}");
    assert!(ranks.iter().all(|&(_, r)| r <= 3.0), "{ranks:?}");
    let default = tmp.path().join("default");
    run(&default, &[]);
    let ranks = series(&default, "plasticity/srank");
    assert!(ranks.iter().any(|&(_, r)| r > 3.0), "{ranks:?}");

    // The probe's draws never move the replay's sampler: the training rows of a run that
    // measures with a fixed probe equal those of one with refreshed probes.
    let fixed = tmp.path().join("fixed");
    run(
        &fixed,
        &[
            "--set",
            "probe=\"fixed\"",
            "--set",
            "checkpoint_replay=true",
        ],
    );
    let losses = |d: &Path| series(d, "losses/td_loss");
    assert!(!losses(&default).is_empty());
    assert_eq!(losses(&fixed), losses(&default));
    // Fixed and refreshed probes see different observations once the replay has grown.
    assert_ne!(
        series(&fixed, "plasticity/feature_norm"),
        series(&default, "plasticity/feature_norm")
    );
    // The fixed probe travels in the checkpoint (with the replay), so a resume measures on it.
    let has_probe = |d: &Path| {
        let dir = d.join("checkpoint");
        std::fs::read_dir(&dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            name.starts_with("tensors.")
                && std::fs::read(&path)
                    .unwrap()
                    .windows(10)
                    .any(|w| w == b"loop.probe")
        })
    };
    assert!(has_probe(&fixed));
    assert!(!has_probe(&default));
}
