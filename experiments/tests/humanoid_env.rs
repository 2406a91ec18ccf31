//! The `humanoid-env` binary end to end: list, rollout's JSON lines (checked against the
//! library), and one-line errors for bad input.

use std::process::{Command, Output};

use envs::mujoco::{HumanoidConfig, HumanoidEnv, Task, NU};
use envs::Env;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_humanoid-env"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr_line(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(s.trim_end().lines().count(), 1, "{s}");
    s
}

#[test]
fn list_names_the_four_tasks() {
    let out = run(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for task in Task::ALL {
        assert!(text.contains(task.name()), "{text}");
    }
}

#[test]
fn rollout_prints_the_library_trajectory_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    let rows: Vec<Vec<f64>> = (0..6)
        .map(|t| {
            (0..NU)
                .map(|i| ((t * NU + i) as f64 * 0.37).sin() * 0.2)
                .collect()
        })
        .collect();
    let text: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(&csv, text.join("\n") + "\n").unwrap();
    let out = run(&[
        "rollout",
        "--task",
        "h1-balance_simple-v0",
        "--seed",
        "3",
        "--actions",
        csv.to_str().unwrap(),
        "--steps",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Compared as text: the binary prints each float in its shortest round-trip form.
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "reset line + --steps 4");
    let line = |t: i64, obs: &[f64], reward: f64, terminated: bool, truncated: bool| {
        format!(
            "{{\"t\":{t},\"obs\":{},\"reward\":{},\"terminated\":{terminated},\"truncated\":{truncated}}}",
            serde_json::to_string(obs).unwrap(),
            serde_json::to_string(&reward).unwrap()
        )
    };
    let mut env = HumanoidEnv::new(Task::BalanceSimple, &HumanoidConfig::default()).unwrap();
    let (obs, _) = env.reset(Some(3)).unwrap();
    assert_eq!(lines[0], line(-1, &obs, 0.0, false, false));
    for (t, got) in lines[1..].iter().enumerate() {
        let s = env.step(&rows[t]).unwrap();
        assert_eq!(
            *got,
            line(t as i64, &s.obs, s.reward, s.terminated, s.truncated)
        );
    }
    // Shortest round-trip floats: parsing the text with Rust gives the same bits back.
    let first_obs = lines[0]
        .split("\"obs\":[")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    let parsed: Vec<f64> = first_obs.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(parsed, obs);
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "rollout",
        "--task",
        "h1-fly-v0",
        "--seed",
        "0",
        "--actions",
        "x.csv",
    ]);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("h1-walk-v0, h1-stand-v0"));

    let csv = dir.path().join("bad.csv");
    let good = vec!["0.1"; NU].join(",");
    let mut bad = vec!["0.1"; NU];
    bad[4] = "abc";
    std::fs::write(&csv, format!("{good}\n{good}\n{}\n", bad.join(","))).unwrap();
    let out = run(&[
        "rollout",
        "--task",
        "h1-walk-v0",
        "--seed",
        "0",
        "--actions",
        csv.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let line = stderr_line(&out);
    assert!(
        line.contains("line 3") && line.contains("column 5"),
        "{line}"
    );
    assert!(out.stdout.is_empty());

    std::fs::write(&csv, "0.1,0.2\n").unwrap();
    let out = run(&[
        "rollout",
        "--task",
        "h1-walk-v0",
        "--seed",
        "0",
        "--actions",
        csv.to_str().unwrap(),
    ]);
    assert!(stderr_line(&out).contains("line 1: expected 19"));

    std::fs::write(&csv, format!("{good}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_humanoid-env"))
        .args([
            "rollout",
            "--task",
            "h1-walk-v0",
            "--seed",
            "0",
            "--actions",
        ])
        .arg(&csv)
        .env("FIRE_RL_HUMANOID_ASSETS", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("./setup.sh"));
}
