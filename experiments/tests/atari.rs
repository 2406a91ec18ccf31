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
        "--protocol",
        "nature",
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

/// The resolved configuration `--dry-run` prints, as a table.
fn dry_run(args: &[&str]) -> toml::Table {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = atari(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

#[test]
fn shipped_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fire-paper");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (game, method) = name.split_once('-').unwrap();
        let table = runtime::config::read_table(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let cfg = experiments::atari::AtariRunConfig::from_table(table)
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        cfg.validate()
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        // What the binary resolves from the file: the reference's protocol, the run the
        // file's name says.
        let t = dry_run(&["--config", path.to_str().unwrap()]);
        assert_eq!(t["game"].as_str(), Some(game), "{name}");
        assert_eq!(t["intervention"].as_str(), Some(method), "{name}");
        assert_eq!(t["protocol"].as_str(), Some("fire-paper"), "{name}");
        assert_eq!(t["steps"].as_integer(), Some(2_500_000), "{name}");
        assert_eq!(t["replay_ratio"].as_float(), Some(1.0), "{name}");
        let fire_at: Vec<i64> = t["fire_at"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_integer().unwrap())
            .collect();
        let expected: &[i64] = if method == "none" { &[] } else { &[1_250_000] };
        assert_eq!(fire_at, expected, "{name}");
        seen.push(name);
    }
    seen.sort();
    let mut expected = Vec::new();
    for game in ["Asterix", "BeamRider", "DemonAttack"] {
        for method in [
            "fire",
            "full-reset",
            "none",
            "plasticity-injection",
            "shrink-perturb",
        ] {
            expected.push(format!("{game}-{method}"));
        }
    }
    assert_eq!(seen, expected);
    // The old `paper-<Game>.toml` files (the removed `paper` protocol) are gone.
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for entry in std::fs::read_dir(&top).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with("paper-"), "{name} is left over");
    }
}

#[test]
fn fire_paper_is_the_default_and_resolves_to_the_reference_values() {
    let t = dry_run(&[]);
    let int = |k: &str| t[k].as_integer().unwrap_or_else(|| panic!("{k}"));
    let float = |k: &str| t[k].as_float().unwrap_or_else(|| panic!("{k}"));
    assert_eq!(t["protocol"].as_str(), Some("fire-paper"));
    // rl/dqn/cleanrl/dqn_atari.py's Args and constants.
    assert_eq!(float("replay_ratio"), 1.0);
    assert_eq!(int("eval_envs"), 4);
    assert_eq!(t["epsilon_hold_warmup"].as_bool(), Some(true));
    assert_eq!(int("steps"), 2_500_000);
    assert_eq!(int("envs"), 4);
    assert_eq!(int("buffer_size"), 1_000_000);
    assert_eq!(int("learning_starts"), 20_000);
    assert_eq!(int("batch_size"), 32);
    assert_eq!(int("target_update_every"), 2_000);
    assert_eq!(float("target_tau"), 1.0);
    assert_eq!(float("gamma"), 0.99);
    assert_eq!(float("learning_rate"), 6.25e-5);
    assert_eq!(float("adam_eps"), 1.5e-4);
    assert_eq!(float("epsilon_start"), 1.0);
    assert_eq!(float("epsilon_end"), 0.01);
    assert_eq!(float("exploration_fraction"), 0.1);
    assert_eq!(float("eval_epsilon"), 0.001);
    assert_eq!(int("eval_every"), 250_000);
    assert_eq!(int("eval_steps"), 125_000);
    assert_eq!(int("n_step"), 1);
    assert_eq!(t["loss"].as_str(), Some("huber"));
    assert_eq!(t["double_dqn"].as_bool(), Some(false));
    // The other protocols keep their own defaults; a key set explicitly beats the preset.
    for protocol in ["nature", "machado"] {
        let t = dry_run(&["--protocol", protocol]);
        assert_eq!(t["replay_ratio"].as_float(), Some(0.25), "{protocol}");
        assert_eq!(t["eval_envs"].as_integer(), Some(1), "{protocol}");
        assert_eq!(
            t["epsilon_hold_warmup"].as_bool(),
            Some(false),
            "{protocol}"
        );
    }
    let t = dry_run(&["--set", "replay_ratio=0.5", "--set", "eval_envs=2"]);
    assert_eq!(t["replay_ratio"].as_float(), Some(0.5));
    assert_eq!(t["eval_envs"].as_integer(), Some(2));
}

#[test]
fn the_old_paper_protocol_is_one_error_naming_the_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("never");
    let r = run.to_str().unwrap();
    let needle = "protocol `paper` no longer exists: use `nature`";
    assert_clean_failure(&["--protocol", "paper", "--run-dir", r], needle, Some(&run));
    let old = tmp.path().join("old.toml");
    std::fs::write(&old, "game = \"Asterix\"\nprotocol = \"paper\"\n").unwrap();
    assert_clean_failure(
        &["--config", old.to_str().unwrap(), "--run-dir", r],
        "`fire-paper` for the FIRE reference's protocol",
        Some(&run),
    );
    assert_clean_failure(
        &["--protocol", "papr", "--run-dir", r],
        "unknown protocol \"papr\" (known: fire-paper, nature, machado)",
        Some(&run),
    );
}

#[test]
fn fire_paper_epsilon_is_one_until_learning_starts_then_reaches_the_end_at_270k() {
    use experiments::atari::{AtariRunConfig, Protocol};
    let cfg = AtariRunConfig::preset(Protocol::FirePaper);
    let eps = cfg.dqn.dqn_config(&cfg.run).epsilon;
    for step in [0, 4, 10_000, 19_996, 20_000] {
        assert_eq!(eps.at(step), 1.0, "step {step}");
    }
    assert!(eps.at(20_004) < 1.0);
    // Halfway through the 250k decay.
    assert!(
        (eps.at(145_000) - 0.505).abs() < 1e-12,
        "{}",
        eps.at(145_000)
    );
    assert!(eps.at(269_996) > 0.01 + 1e-6);
    for step in [270_000, 270_004, 1_250_000, 2_500_000] {
        // Exactly 0.01, as the reference clamps (1 + (0.01 - 1) would be 0.010000000000000009).
        assert_eq!(eps.at(step), 0.01, "step {step}");
    }
    // The nature protocol decays from step 0, as CleanRL.
    let nature = AtariRunConfig::preset(Protocol::Nature);
    let eps = nature.dqn.dqn_config(&nature.run).epsilon;
    assert!(eps.at(20_000) < 1.0);
    assert_eq!(eps.at(250_000), 0.01);
}

#[test]
fn fire_paper_does_one_update_per_transition_after_learning_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("rr1");
    let out = atari(&[
        "--game",
        "Pong",
        "--steps",
        "1600",
        "--learning-starts",
        "1000",
        "--intervention",
        "none",
        "--eval-every",
        "0",
        "--buffer-size",
        "10k",
        "--device",
        "cpu",
        "--set",
        "log_every=200",
        "--set",
        "torch_threads=1",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut rows = 0;
    for line in csv.lines().filter(|l| l.contains(",charts/updates,")) {
        let cells: Vec<&str> = line.split(',').collect();
        let step: i64 = cells[0].parse().unwrap();
        let updates: f64 = cells[3].parse().unwrap();
        let after_start = (step - 1000).max(0) as f64;
        // Within one vector step (4 transitions) of one update per transition.
        assert!(
            (updates - after_start).abs() <= 4.0,
            "step {step}: {updates} updates"
        );
        rows += 1;
    }
    assert!(rows >= 3, "charts/updates rows: {rows}\n{csv}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["state"]["updates"], 600, "1600 - 1000 transitions");
}

#[test]
fn actor_threads_hold_the_replay_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("threaded");
    let out = atari(&[
        "--protocol",
        "nature",
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
