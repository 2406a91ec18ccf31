//! The `atari` binary end to end on the real ALE: a short run with a FIRE event, its event
//! files, CSV, checkpoint and a resume; and bad input failing cleanly.

use std::path::Path;

use experiments::cli::Experiment;
use runtime::config::Sections;
use std::process::{Command, Output};

fn atari(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atari"))
        .args(args)
        .output()
        .expect("run the atari binary")
}

/// Tags found in a TensorBoard event file, read through its TFRecord framing
/// (u64 length, u32 CRC, payload, u32 CRC) so a malformed file fails the test.
fn event_file_payload(dir: &Path) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("events.out.tfevents.")
        {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            assert!(
                at + 12 <= bytes.len(),
                "truncated record header in {}",
                path.display()
            );
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            at += 12;
            assert!(
                at + len + 4 <= bytes.len(),
                "truncated record in {}",
                path.display()
            );
            payload.extend_from_slice(&bytes[at..at + len]);
            at += len + 4;
        }
    }
    assert!(files >= 1, "no event file in {}", dir.display());
    payload
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn short_run_with_fire_logs_checkpoints_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let common = [
        "--device",
        "cpu",
        "--eval-every",
        "0",
        "--buffer-size",
        "20k",
        "--learning-starts",
        "1000",
    ];
    let mut args = vec![
        "--game",
        "Breakout",
        "--steps",
        "3000",
        "--envs",
        "4",
        "--fire-at",
        "2k",
        "--checkpoint-every",
        "1k",
        "--run-dir",
        r,
    ];
    args.extend_from_slice(&common);
    let out = atari(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // TensorBoard events with CleanRL's tags and the intervention.
    let payload = event_file_payload(&run);
    for tag in [
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/SPS",
        "losses/td_loss",
        "losses/q_values",
        "interventions/sfe",
    ] {
        assert!(
            contains(&payload, tag),
            "tag {tag} missing from the event file"
        );
    }
    // The CSV has the same scalars, with frames = 4 x steps.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("step,frames,tag,value\n"));
    let fire_row = csv
        .lines()
        .find(|l| l.contains(",interventions/count,"))
        .expect("intervention in the CSV");
    assert!(fire_row.starts_with("2000,8000,"), "{fire_row}");
    // The intervention event: FIRE'd convs with DfI ~0 (reference NS), head reset.
    let events = std::fs::read_to_string(run.join("interventions.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(event["step"], 2000);
    let params = event["parameters"].as_array().unwrap();
    let conv1 = params
        .iter()
        .find(|p| p["name"] == "q.encoder.conv1.weight")
        .unwrap();
    assert_eq!(conv1["action"], "orthogonalized");
    assert!(params
        .iter()
        .any(|p| p["name"] == "q.head.fc1.weight" && p["action"] == "reset"));
    // Resolved config and checkpoint.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("game = \"Breakout\"") && config.contains("fire_at = [2000]"),
        "{config}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["state"]["step"], 3000);
    assert_eq!(
        state["state"]["updates"], 500,
        "one update per 4 steps after 1000 warm-up steps"
    );

    // Resume to 5000 steps. The replay was not checkpointed, so the first 1000 steps refill it
    // at random and the last 1000 learn again: 250 more updates.
    let out = atari(&["--resume", r, "--steps", "5000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["state"]["step"], 5000);
    assert_eq!(
        state["state"]["updates"], 750,
        "learning resumes once the replay is refilled"
    );
    assert_eq!(
        state["state"]["scheduler"]["last_fired"], 2000,
        "FIRE did not run again"
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.matches("step,frames,tag,value").count(),
        1,
        "the CSV is appended to, not restarted"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("5000,20000,losses/td_loss,")),
        "no TD loss logged after the resume"
    );
}

fn assert_clean_failure(args: &[&str], needle: &str, run_dir: Option<&Path>) {
    let out = atari(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{args:?}: one line expected, got:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: `{needle}` not in {stderr}"
    );
    if let Some(dir) = run_dir {
        assert!(!dir.exists(), "{args:?} left {}", dir.display());
    }
}

#[test]
fn bad_input_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("never");
    let r = run.to_str().unwrap();
    assert_clean_failure(
        &["--game", "Breakoutt", "--run-dir", r],
        "unknown game `Breakoutt`",
        Some(&run),
    );
    assert_clean_failure(
        &["--fire-every", "1X", "--run-dir", r],
        "invalid step count `1X`",
        Some(&run),
    );
    assert_clean_failure(
        &["--fire-every", "0", "--run-dir", r],
        "fire_every",
        Some(&run),
    );
    assert_clean_failure(
        &["--fire-when", "dormant>0.2", "--run-dir", r],
        "unknown metric",
        Some(&run),
    );
    let bad_key = tmp.path().join("bad.toml");
    std::fs::write(&bad_key, "game = \"Pong\"\nlearning_rte = 1e-4\n").unwrap();
    assert_clean_failure(
        &["--config", bad_key.to_str().unwrap(), "--run-dir", r],
        "learning_rte",
        Some(&run),
    );
    let bad_value = tmp.path().join("bad-value.toml");
    std::fs::write(&bad_value, "envs = \"four\"\n").unwrap();
    assert_clean_failure(
        &["--config", bad_value.to_str().unwrap(), "--run-dir", r],
        "envs",
        Some(&run),
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let inside_file = file.join("run");
    assert_clean_failure(
        &["--run-dir", inside_file.to_str().unwrap(), "--steps", "100"],
        "run directory",
        None,
    );
    assert_clean_failure(
        &["--resume", tmp.path().to_str().unwrap()],
        "not a run directory",
        None,
    );
}

#[test]
fn shipped_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let table = runtime::config::read_table(&path).unwrap_or_else(|e| panic!("{e:#}"));
            let cfg = experiments::atari::AtariRunConfig::from_table(table)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            cfg.validate()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "expected the paper's configs in {}", dir.display());
}

#[test]
fn actor_threads_hold_the_replay_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("threaded");
    let out = atari(&[
        "--steps",
        "2400",
        "--envs",
        "4",
        "--actors",
        "2",
        "--learning-starts",
        "800",
        "--fire-at",
        "1600",
        "--eval-every",
        "0",
        "--buffer-size",
        "10k",
        "--device",
        "cpu",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["state"]["step"], 2400);
    assert_eq!(
        state["state"]["updates"], 400,
        "(2400 - 800) / 4 updates, whatever the threads' speeds"
    );
    let events = std::fs::read_to_string(run.join("interventions.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1);
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    let text = std::fs::read(run.join("checkpoint/state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_slice(&text).ok()?;
    state["state"]["step"].as_u64()
}

#[test]
fn killed_runs_resume_from_their_last_checkpoint_and_sigint_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    // Random acting only (learning never starts), so steps are cheap.
    let mut child = Command::new(env!("CARGO_BIN_EXE_atari"))
        .args([
            "--steps",
            "1M",
            "--learning-starts",
            "1M",
            "--checkpoint-every",
            "1k",
            "--eval-every",
            "0",
            "--buffer-size",
            "20k",
            "--device",
            "cpu",
            "--run-dir",
            r,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while checkpoint_step(&run).is_none_or(|s| s < 2000) {
        assert!(
            started.elapsed().as_secs() < 120,
            "no checkpoint within two minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let at_kill = checkpoint_step(&run).expect("the last checkpoint is intact");
    assert!(at_kill >= 2000);

    let target = (at_kill + 800).to_string();
    let out = atari(&["--resume", r, "--steps", &target]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checkpoint_step(&run), Some(at_kill + 800));

    // SIGINT: the run stops, checkpoints where it is and exits 130.
    let mut child = Command::new(env!("CARGO_BIN_EXE_atari"))
        .args(["--resume", r, "--steps", "1M"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        checkpoint_step(&run).unwrap() > at_kill + 800,
        "a checkpoint at the stopping step"
    );
}

#[test]
fn a_diverged_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("diverge.toml");
    std::fs::write(
        &config,
        "learning_rate = 1e12\nsteps = 3000\nlearning_starts = 600\ncheckpoint_every = 400\n\
         eval_every = 0\nbuffer_size = 10000\ndevice = \"cpu\"\n",
    )
    .unwrap();
    let run = tmp.path().join("run");
    let out = atari(&[
        "--config",
        config.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.starts_with("atari: error:") && last.contains("diverged"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        checkpoint_step(&run),
        Some(400),
        "the last good checkpoint is kept"
    );
    assert!(
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .count()
            > 1
    );
}
