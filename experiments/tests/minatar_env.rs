//! The `minatar-env` binary: `rollout` prints, step for step, what the `minatar` 1.0.15 package
//! recorded (envs/tests/data/minatar_1.0.15_trajectories.json, made by
//! envs/tests/data/record_minatar.py), `bench` prints its one line, and bad input fails with one
//! line on stderr, a non-zero exit and nothing on stdout.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn minatar_env(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minatar-env"))
        .args(args)
        .output()
        .expect("run minatar-env");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// FNV-1a 64 of `np.packbits` of the state's 0/1 characters, as the recording script does.
fn digest(state: &str) -> u64 {
    packbits(state).iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn packbits(state: &str) -> Vec<u8> {
    state
        .as_bytes()
        .chunks(8)
        .map(|c| {
            c.iter().enumerate().fold(0u8, |byte, (i, &ch)| {
                assert!(ch == b'0' || ch == b'1', "state character {ch}");
                byte | ((ch - b'0') << (7 - i))
            })
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn rollout_prints_every_recorded_step_of_the_package() {
    let text = include_str!("../../envs/tests/data/minatar_1.0.15_trajectories.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut steps = 0;
    // Each process loads libtorch (the crate's binaries all link it: about 0.8 s), so this
    // replays a selection through the binary, every game under three settings plus the
    // seaquest record that surfaces with 6 divers; envs/tests/minatar.rs replays all of them
    // through the library.
    let chosen = fixture["records"].as_array().unwrap().iter().filter(|r| {
        let first_seed = fixture["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["game"] == r["game"])
            .map(|o| o["seed"] == r["seed"])
            .unwrap();
        let setting = (
            r["sticky"].as_f64().unwrap(),
            r["ramping"].as_bool().unwrap(),
        );
        first_seed && matches!(setting, (0.1, true) | (0.0, false) | (0.3, true))
    });
    let mut records = 0;
    for rec in chosen {
        records += 1;
        let game = rec["game"].as_str().unwrap();
        let seed = rec["seed"].as_u64().unwrap().to_string();
        let sticky = rec["sticky"].as_f64().unwrap().to_string();
        let actions: Vec<String> = rec["actions"]
            .as_str()
            .unwrap()
            .chars()
            .map(String::from)
            .collect();
        let file = write(dir.path(), "actions.txt", &(actions.join("\n") + "\n"));
        let mut args = vec![
            "rollout",
            "--game",
            game,
            "--seed",
            &seed,
            "--sticky",
            &sticky,
            "--actions",
            &file,
        ];
        if !rec["ramping"].as_bool().unwrap() {
            args.push("--no-ramping");
        }
        let name = args[1..].join(" ");
        let (ok, stdout, stderr) = minatar_env(&args);
        assert!(ok, "{name}: {stderr}");
        let rewards: std::collections::HashMap<u64, i64> = rec["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_i64().unwrap()))
            .collect();
        let terminals: Vec<u64> = rec["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        let digests = rec["digests"].as_str().unwrap();
        let states = rec["states"].as_array().unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), actions.len(), "{name}: one line per action");
        for (k, line) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let k64 = k as u64;
            assert_eq!(v["step"].as_u64(), Some(k64), "{name}: {line}");
            let want_reward = rewards.get(&k64).copied().unwrap_or(0);
            assert_eq!(v["reward"].as_i64(), Some(want_reward), "{name} step {k}");
            let want_terminal = terminals.contains(&k64);
            assert_eq!(
                v["terminal"].as_bool(),
                Some(want_terminal),
                "{name} step {k}"
            );
            let state = v["state"].as_str().unwrap();
            if let Some(hex) = states.get(k) {
                let got: String = packbits(state).iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(&got, hex.as_str().unwrap(), "{name} step {k}: state");
            }
            let want = u64::from_str_radix(&digests[16 * k..16 * k + 16], 16).unwrap();
            assert_eq!(digest(state), want, "{name} step {k}: state digest");
            steps += 1;
        }
    }
    // 5 games x 3 settings, and the diver hunter (seed 3, sticky 0.1, ramping on).
    assert!(records >= 16, "only {records} records");
    assert!(steps >= 18_000, "only {steps} steps compared");
}

#[test]
fn the_state_is_row_major_y_x_channel_and_the_line_format_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.txt", "3\n\n0\n");
    let args = [
        "rollout",
        "--game",
        "Breakout",
        "--seed",
        "1",
        "--sticky",
        "0",
        "--actions",
        &file,
    ];
    let (ok, stdout, stderr) = minatar_env(&args);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a blank line is skipped: {stdout}");
    assert!(
        lines[1].starts_with(r#"{"step": 1, "reward": 0, "terminal": false, "state": ""#),
        "{}",
        lines[1]
    );
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let state = v["state"].as_str().unwrap().as_bytes();
    assert_eq!(state.len(), 400);
    let cell = |y: usize, x: usize, c: usize| state[(10 * y + x) * 4 + c] == b'1';
    // Breakout's channels: paddle, ball, trail, brick. After one step right the paddle is at
    // (9, 5) and the bricks fill rows 1..=3.
    assert!(cell(9, 5, 0) && !cell(9, 4, 0));
    assert!((0..10).all(|x| cell(1, x, 3) && cell(3, x, 3) && !cell(4, x, 3)));
}

#[test]
fn bench_prints_one_rate_line() {
    for extra in [
        &[][..],
        &["--with-state", "--sticky", "0", "--no-ramping"][..],
    ] {
        let mut args = vec!["bench", "--game", "seaquest", "--steps", "20000"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = minatar_env(&args);
        assert!(ok, "{stderr}");
        let line = stdout.trim();
        let number = line
            .strip_suffix(" steps/s")
            .unwrap_or_else(|| panic!("{line}"));
        assert!(number.parse::<f64>().unwrap() > 0.0, "{line}");
    }
}

#[test]
fn bad_input_is_one_line_a_failure_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.txt", "0\n1\n");
    let word = write(dir.path(), "word.txt", "0\n1\nleft\n2\n");
    let fraction = write(dir.path(), "fraction.txt", "0\n2.5\n");
    let outside = write(dir.path(), "outside.txt", "0\n1\n2\n6\n");
    let negative = write(dir.path(), "negative.txt", "-1\n");
    let missing = dir.path().join("missing.txt");
    let missing = missing.to_str().unwrap();
    let rollout = |game: &str, file: &str, extra: &[&str]| {
        let mut args = vec!["rollout", "--game", game, "--seed", "0", "--actions", file];
        args.extend_from_slice(extra);
        minatar_env(&args)
    };
    let cases: Vec<((bool, String, String), &str)> = vec![
        (
            rollout("pong", &good, &[]),
            "unknown game `pong`; available: asterix, breakout, freeway, seaquest, space_invaders",
        ),
        (rollout("asterix", &word, &[]), "word.txt line 3: `left`"),
        (
            rollout("asterix", &fraction, &[]),
            "fraction.txt line 2: `2.5`",
        ),
        (
            rollout("seaquest", &outside, &[]),
            "outside.txt line 4: action 6 is outside 0..5",
        ),
        (
            rollout("seaquest", &negative, &[]),
            "negative.txt line 1: action -1",
        ),
        (rollout("freeway", missing, &[]), "cannot read actions file"),
        (
            rollout("freeway", &good, &["--sticky", "1.5"]),
            "--sticky must be between 0 and 1",
        ),
        (
            rollout("freeway", &good, &["--sticky", "-0.1"]),
            "--sticky must be between 0 and 1",
        ),
        (
            rollout("freeway", &good, &["--sticky", "NaN"]),
            "--sticky must be between 0 and 1",
        ),
        (
            minatar_env(&[
                "rollout",
                "--game",
                "breakout",
                "--seed",
                "4294967296",
                "--actions",
                &good,
            ]),
            "4294967295",
        ),
        (
            minatar_env(&["bench", "--game", "tetris", "--steps", "10"]),
            "unknown game `tetris`",
        ),
        (
            minatar_env(&["bench", "--game", "breakout", "--steps", "0"]),
            "--steps must be at least 1",
        ),
    ];
    for ((ok, stdout, stderr), want) in cases {
        assert!(!ok, "succeeded; wanted {want}");
        assert!(stdout.is_empty(), "{want}: printed {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "wanted `{want}` in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
