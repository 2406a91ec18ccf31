//! Atari on the real ALE with the ROMs `setup.sh` installs: determinism, each wrapper's
//! semantics, action sets and bad inputs.

use envs::atari::games::{available_games, rom_dir};
use envs::atari::{AtariConfig, AtariEnv};
use envs::vector::{AsyncVecEnv, VecEnv};
use envs::{Env, Error};

fn env(game: &str, config: AtariConfig) -> AtariEnv {
    AtariEnv::new(game, config).unwrap_or_else(|e| panic!("{game}: {e}"))
}

/// A config with nothing random and nothing automatic, to isolate one switch at a time.
fn plain() -> AtariConfig {
    AtariConfig {
        repeat_action_probability: 0.0,
        noop_max: 0,
        fire_reset: false,
        terminal_on_life_loss: false,
        clip_rewards: false,
        ..AtariConfig::nature()
    }
}

const FRAME: usize = 84 * 84;

#[test]
fn same_seed_same_trajectory_bit_for_bit() {
    let run = |seed| {
        let mut e = env("Breakout", AtariConfig::nature());
        let (mut all, _) = e.reset(Some(seed)).unwrap();
        let mut rewards = Vec::new();
        for t in 0..400usize {
            let step = e.step(&(t * 7 % 4)).unwrap();
            rewards.push(step.reward);
            all.extend_from_slice(&step.obs[3 * FRAME..]);
            if step.done() {
                all.extend(e.reset(None).unwrap().0);
            }
        }
        (all, rewards)
    };
    let a = run(11);
    assert_eq!(a, run(11));
    // Seed 0 too, a second apart: ALE seeds itself from the clock when not given a seed.
    let zero = run(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(zero, run(0), "seed 0 must not depend on the time of day");
    assert_ne!(
        a.0,
        run(12).0,
        "another seed changes the trajectory (sticky actions, no-ops)"
    );
}

#[test]
fn life_loss_ends_the_learning_episode_but_stats_cover_the_game() {
    let mut e = env(
        "Breakout",
        AtariConfig {
            clip_rewards: true,
            ..AtariConfig::nature()
        },
    );
    e.reset(Some(3)).unwrap();
    let (mut life_losses, mut steps, mut raw_sum_lower_bound) = (0, 0u64, 0.0);
    let stats = loop {
        let step = e.step(&((steps as usize * 13) % 4)).unwrap();
        steps += 1;
        raw_sum_lower_bound += step.reward;
        assert!(
            [-1.0, 0.0, 1.0].contains(&step.reward),
            "clipped reward {}",
            step.reward
        );
        if let Some(stats) = step.info.episode {
            assert!(step.terminated, "the game ended");
            break stats;
        }
        if step.terminated {
            life_losses += 1;
            let (obs, _) = e.reset(None).unwrap();
            assert!(
                frames_identical(&obs),
                "a new life starts with a fresh stack"
            );
        }
        assert!(steps < 20_000, "Breakout should end");
    };
    assert_eq!(
        life_losses, 4,
        "Breakout has 5 lives: 4 life losses, then game over"
    );
    assert_eq!(stats.length, steps, "the length counts every life");
    assert!(
        stats.episode_return >= raw_sum_lower_bound,
        "raw return {} >= clipped sum {raw_sum_lower_bound}",
        stats.episode_return
    );
}

fn frames_identical(obs: &[u8]) -> bool {
    obs.chunks(FRAME).all(|f| f == &obs[..FRAME])
}

#[test]
fn stack_holds_the_reset_frame_then_shifts() {
    let mut e = env("Pong", plain());
    let (obs, _) = e.reset(Some(0)).unwrap();
    assert_eq!(obs.len(), 4 * FRAME);
    assert!(frames_identical(&obs));
    let mut previous = obs;
    for _ in 0..30 {
        let step = e.step(&0).unwrap();
        // Frames move one slot toward the front; the newest is last.
        assert_eq!(&step.obs[..3 * FRAME], &previous[FRAME..]);
        previous = step.obs;
    }
}

#[test]
fn fire_reset_launches_the_ball() {
    let lives_lost = |fire_reset| {
        let mut e = env(
            "Breakout",
            AtariConfig {
                fire_reset,
                terminal_on_life_loss: true,
                ..plain()
            },
        );
        e.reset(Some(0)).unwrap();
        (0..300).any(|_| e.step(&0).unwrap().terminated)
    };
    assert!(!lives_lost(false), "without FIRE the ball never launches");
    assert!(lives_lost(true), "after FIRE a still paddle loses a life");
}

#[test]
fn noop_starts_take_one_to_thirty_frames() {
    let mut seen = std::collections::BTreeSet::new();
    let mut e = env(
        "Pong",
        AtariConfig {
            noop_max: 30,
            ..plain()
        },
    );
    for seed in 0..40 {
        e.reset(Some(seed)).unwrap();
        // The reset also captured one frame: no-ops are the frames counted before the step.
        seen.insert(e.episode_frames());
    }
    assert!(
        *seen.first().unwrap() >= 1 && *seen.last().unwrap() <= 30,
        "{seen:?}"
    );
    assert!(
        seen.len() >= 10,
        "no-op counts should vary with the seed: {seen:?}"
    );
    let mut none = env("Pong", plain());
    none.reset(Some(0)).unwrap();
    assert_eq!(none.episode_frames(), 0);
}

#[test]
fn the_frame_cap_truncates_and_does_not_terminate() {
    // Without FIRE, Breakout never ends: only the cap can end the episode.
    let mut e = env(
        "Breakout",
        AtariConfig {
            max_episode_frames: 400,
            ..plain()
        },
    );
    e.reset(Some(0)).unwrap();
    let mut steps = 0;
    let step = loop {
        let s = e.step(&0).unwrap();
        steps += 1;
        if s.done() {
            break s;
        }
    };
    assert!(step.truncated && !step.terminated);
    assert_eq!(steps, 100, "400 frames at frame skip 4");
    assert_eq!(step.info.episode.unwrap().length, 100);
    assert!(matches!(e.step(&0), Err(Error::NeedsReset)));
}

#[test]
fn unclipped_rewards_sum_to_the_episode_return() {
    let mut e = env(
        "Pong",
        AtariConfig {
            max_episode_frames: 4_000,
            ..plain()
        },
    );
    e.reset(Some(0)).unwrap();
    let mut total = 0.0;
    loop {
        let s = e.step(&0).unwrap();
        total += s.reward;
        if let Some(stats) = s.info.episode {
            assert_eq!(stats.episode_return, total);
            assert!(total < 0.0, "a still paddle loses points at Pong");
            break;
        }
    }
}

#[test]
fn action_set_sizes() {
    for (game, minimal) in [
        ("Breakout", 4),
        ("Pong", 6),
        ("BeamRider", 9),
        ("DemonAttack", 6),
        ("Asterix", 9),
        ("MsPacman", 9),
    ] {
        assert_eq!(env(game, plain()).num_actions(), minimal, "{game}");
    }
    assert_eq!(env("Breakout", AtariConfig::machado()).num_actions(), 18);
}

#[test]
fn bad_inputs_are_errors_not_exits() {
    let err = AtariEnv::new("Breakoutt", plain()).err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, Error::UnknownGame { .. })
            && text.contains("Breakout")
            && text.contains("Pong"),
        "{text}"
    );

    let missing = std::env::temp_dir().join("fire-rl-no-such-rom-dir");
    let err = AtariEnv::with_rom_dir("Breakout", plain(), &missing)
        .err()
        .unwrap();
    assert!(matches!(err, Error::RomDir { .. }), "{err}");

    let dir = tempfile_dir();
    let err = AtariEnv::with_rom_dir("Pong", plain(), &dir).err().unwrap();
    assert!(matches!(err, Error::RomMissing { .. }), "{err}");
    std::fs::write(dir.join("pong.bin"), b"not a rom").unwrap();
    let err = AtariEnv::with_rom_dir("Pong", plain(), &dir).err().unwrap();
    assert!(matches!(err, Error::Rom { .. }), "{err}");

    // The right name, the wrong contents: ALE 0.6 hung on this; the md5 says what it is.
    let pong = std::fs::read(rom_dir().join("pong.bin")).unwrap();
    std::fs::write(dir.join("breakout.bin"), &pong).unwrap();
    let err = AtariEnv::with_rom_dir("Breakout", plain(), &dir)
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Rom { .. }) && text.contains("the ROM of Pong, not of Breakout"),
        "{text}"
    );
    // A different dump (one byte changed) under the right name: not the supported ROM.
    let mut changed = pong.clone();
    changed[100] ^= 1;
    std::fs::write(dir.join("pong.bin"), &changed).unwrap();
    let text = AtariEnv::with_rom_dir("Pong", plain(), &dir)
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("is not the Pong ROM ALE supports"), "{text}");
    // Only files that are their game's supported dump are listed.
    std::fs::write(dir.join("pong.bin"), &pong).unwrap();
    assert_eq!(available_games(&dir), ["Pong"]);

    let mut e = env("Breakout", plain());
    assert!(matches!(e.step(&0), Err(Error::NeedsReset)));
    e.reset(Some(0)).unwrap();
    let err = e.step(&4).unwrap_err();
    assert!(
        matches!(err, Error::InvalidAction { .. }) && err.to_string().contains("4 actions"),
        "{err}"
    );

    let bad = AtariConfig {
        frame_skip: 0,
        ..plain()
    };
    assert!(matches!(
        AtariEnv::new("Pong", bad),
        Err(Error::Config {
            field: "frame_skip",
            ..
        })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fire-rl-roms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lists_the_installed_games() {
    let games = available_games(&rom_dir());
    for g in [
        "Breakout",
        "BeamRider",
        "DemonAttack",
        "Asterix",
        "Pong",
        "MsPacman",
    ] {
        assert!(games.contains(&g.to_string()), "{g} missing from {games:?}");
    }
}

#[test]
fn vector_env_autoresets_and_keeps_final_observations() {
    let cfg = AtariConfig {
        max_episode_frames: 200,
        ..plain()
    };
    let envs = (0..3).map(|_| env("Pong", cfg.clone())).collect();
    let mut v = VecEnv::new(envs, 2).unwrap();
    let first = v.reset(Some(5)).unwrap().to_vec();
    assert_eq!(first.len(), 3 * 4 * FRAME);
    let mut done_seen = 0;
    for t in 0..60 {
        let step = v.step(&[0.0, 0.0, 0.0]).unwrap();
        for (i, tr) in step.transitions.iter().enumerate() {
            if tr.truncated {
                done_seen += 1;
                assert_eq!(t, 49, "200 frames = 50 steps");
                let row = &step.obs[i * 4 * FRAME..(i + 1) * 4 * FRAME];
                assert!(
                    frames_identical(row),
                    "the row already holds the next episode's start"
                );
                let fin = &step.final_obs[i * 4 * FRAME..(i + 1) * 4 * FRAME];
                assert!(
                    !frames_identical(fin),
                    "the final observation is the ended episode's last stack"
                );
            }
        }
    }
    assert_eq!(done_seen, 3);
    assert!(v.step(&[0.0, 0.0]).is_err(), "one action per environment");
}

#[test]
fn async_vector_env_steps_each_game_as_if_alone() {
    // Short episodes so autoresets happen; sticky actions and no-op starts on, so the
    // emulator's and the wrapper's generators both matter.
    let cfg = AtariConfig {
        max_episode_frames: 400,
        ..AtariConfig::nature()
    };
    let n = 4;
    let action_of = |env: usize, t: usize| (t * 7 + env) % 4;
    let envs = (0..n).map(|_| env("Breakout", cfg.clone())).collect();
    let mut pool = AsyncVecEnv::new(envs, 2, 2).unwrap();
    // Per environment: every observation it hands out, in order (final ones included).
    let mut seen: Vec<Vec<u8>> = vec![Vec::new(); n];
    let (mut steps, mut received) = (vec![0usize; n], vec![0usize; n]);
    let batch = pool.reset(Some(3)).unwrap();
    let mut ids = batch.env_ids.to_vec();
    for (k, &i) in ids.iter().enumerate() {
        seen[i].extend_from_slice(&batch.obs[k * 4 * FRAME..(k + 1) * 4 * FRAME]);
    }
    let mut pending: Vec<usize> = (0..n).filter(|i| !ids.contains(i)).collect();
    for _ in 0..400 {
        let actions: Vec<f32> = ids.iter().map(|&i| action_of(i, steps[i]) as f32).collect();
        for &i in &ids {
            steps[i] += 1;
        }
        let batch = pool.step(&actions).unwrap();
        ids = batch.env_ids.to_vec();
        for (k, &i) in ids.iter().enumerate() {
            let rows = k * 4 * FRAME..(k + 1) * 4 * FRAME;
            // The reset observations of the environments not in the first batch.
            if let Some(p) = pending.iter().position(|&q| q == i) {
                pending.remove(p);
                seen[i].extend_from_slice(&batch.obs[rows]);
                continue;
            }
            received[i] += 1;
            if batch.transitions[k].terminated || batch.transitions[k].truncated {
                seen[i].extend_from_slice(&batch.final_obs[rows.clone()]);
            }
            seen[i].extend_from_slice(&batch.obs[rows]);
        }
    }
    // Steps still in flight have not been seen; compare what was.
    let steps = received;
    let mut episodes = 0;
    for i in 0..n {
        let mut alone = env("Breakout", cfg.clone());
        let (mut expected, _) = alone.reset(Some(3 + i as u64)).unwrap();
        for t in 0..steps[i] {
            let step = alone.step(&action_of(i, t)).unwrap();
            expected.extend_from_slice(&step.obs);
            if step.done() {
                episodes += 1;
                expected.extend(alone.reset(None).unwrap().0);
            }
        }
        assert!(
            steps[i] > 50,
            "environment {i} was stepped {} times",
            steps[i]
        );
        assert!(
            seen[i] == expected,
            "environment {i} diverged from its solo run ({} steps)",
            steps[i]
        );
    }
    assert!(
        episodes > 0,
        "no episode ended, so autoreset was not tested"
    );
}

/// A snapshot of Breakout mid-game (ALE's state with its generator, the wrapper's generator,
/// screens, frame stack, lives, sticky action and counters), restored into fresh
/// environments, continues exactly: same frames, rewards, ends and episode statistics,
/// across games over and autoresets. Under the FIRE reference's protocol (sticky actions per
/// agent step) and Machado's (ALE's per-frame sticky actions, whose generator travels in the
/// emulator's state).
#[test]
fn snapshots_resume_games_exactly() {
    use envs::vector::FlatEnv;
    for (name, config) in [
        ("fire-paper", AtariConfig::fire_paper()),
        ("machado", AtariConfig::machado()),
    ] {
        let make = || env("Breakout", config.clone());
        let actions = |t: usize| -> Vec<f32> { vec![((t * 7) % 4) as f32, ((t / 3) % 4) as f32] };
        let mut original = VecEnv::new(vec![make(), make()], 1).unwrap();
        let mut current = original.reset(Some(11)).unwrap().to_vec();
        for t in 0..150 {
            current = original.step(&actions(t)).unwrap().obs.to_vec();
        }
        let saved = original.save_states().expect("Atari saves its state");
        let mut restored = VecEnv::new(vec![make(), make()], 1).unwrap();
        assert!(
            restored.load_states(&saved).unwrap() == current.as_slice(),
            "{name}"
        );
        let mut games = 0;
        for t in 150..1_200 {
            let a = original.step(&actions(t)).unwrap();
            let (obs, ts) = (a.obs.to_vec(), a.transitions.to_vec());
            let b = restored.step(&actions(t)).unwrap();
            assert!(obs == b.obs, "{name}: frames differ at step {t}");
            for (x, y) in ts.iter().zip(b.transitions) {
                let stats = |s: &envs::vector::Transition| {
                    s.info.episode.map(|e| (e.episode_return, e.length))
                };
                assert_eq!(
                    (x.reward, x.terminated, x.truncated, stats(x)),
                    (y.reward, y.terminated, y.truncated, stats(y)),
                    "{name}: step {t}"
                );
                games += usize::from(x.info.episode.is_some());
            }
        }
        assert!(
            games >= 2,
            "{name}: games over and autoresets were crossed ({games})"
        );
    }
    // A snapshot of another game is refused.
    let mut pong = env("Pong", AtariConfig::fire_paper());
    Env::reset(&mut pong, Some(1)).unwrap();
    let foreign = FlatEnv::save_state(&mut pong).unwrap();
    let mut breakout = env("Breakout", AtariConfig::fire_paper());
    let mut obs = vec![0u8; FlatEnv::obs_len(&breakout)];
    let err = FlatEnv::load_state(&mut breakout, &foreign, &mut obs).unwrap_err();
    assert!(err.to_string().contains("atari:Pong"), "{err}");
}
