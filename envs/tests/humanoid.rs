//! Behaviour of the H1 tasks that the SPEC pins down (facts and numbers from its §4-§7 and
//! §13), the time limit, the action-repeat wrapper and the error paths.

use envs::mujoco::{
    ActionRepeat, HumanoidConfig, HumanoidEnv, HumanoidModel, Task, MAX_EPISODE_STEPS, NU,
};
use envs::{Env, Error, Space};

fn env(task: Task) -> HumanoidEnv {
    HumanoidEnv::new(task, &HumanoidConfig::default()).unwrap()
}

#[test]
fn sizes_spaces_and_model_facts() {
    for task in Task::ALL {
        let mut e = env(task);
        let (obs, info) = e.reset(Some(0)).unwrap();
        assert_eq!(obs.len(), task.obs_len());
        assert_eq!(e.obs_len(), task.obs_len());
        assert_eq!(info, envs::Info::default());
        assert_eq!(
            e.action_space(),
            Space::Box {
                low: vec![-1.0; NU],
                high: vec![1.0; NU]
            }
        );
        let m = e.shared_model().model().ffi();
        assert_eq!(m.nu as usize, NU);
        assert_eq!((m.nq + m.nv) as usize, task.obs_len());
        assert_eq!(m.nsensordata, 14);
        assert_eq!(m.opt.timestep, 0.002);
        assert_eq!((m.opt.iterations, m.opt.ls_iterations), (100, 50));
        assert_eq!((m.opt.disableflags, m.opt.enableflags), (0, 0));
        // The floor is geom 0 (the balance termination depends on it).
        let floor = e.shared_model().model().name_to_id(
            envs::mujoco::mujoco_rs::prelude::MjtObjBase::mjOBJ_GEOM,
            "floor",
        );
        assert_eq!(floor, Some(0));
    }
    assert_eq!(
        Task::from_name("h1-balance_simple-v0").unwrap(),
        Task::BalanceSimple
    );
    assert_eq!(envs::mujoco::mujoco_version(), "3.17.0");
}

#[test]
fn seeded_reset_keeps_the_unnormalised_quaternion() {
    // SPEC §4.2: for seed 0 the reset quaternion has norm 0.99039 (noise, no renormalisation).
    let mut e = env(Task::Walk);
    let (obs, _) = e.reset(Some(0)).unwrap();
    let norm = obs[3..7].iter().map(|q| q * q).sum::<f64>().sqrt();
    assert!((norm - 0.99039).abs() < 5e-6, "{norm}");
    // Same seed, same start; another seed, another start; no seed continues the generator.
    let (again, _) = e.reset(Some(0)).unwrap();
    assert_eq!(obs, again);
    let (other, _) = e.reset(Some(1)).unwrap();
    assert_ne!(obs, other);
    let (next, _) = e.reset(None).unwrap();
    assert_ne!(next, other);
    // qvel starts at zero.
    assert!(obs[26..].iter().all(|&v| v == 0.0));
}

#[test]
fn zero_randomness_starts_exactly_at_the_keyframe_whatever_the_seed() {
    let config = HumanoidConfig {
        randomness: 0.0,
        ..HumanoidConfig::default()
    };
    let mut e = HumanoidEnv::new(Task::BalanceSimple, &config).unwrap();
    let (a, _) = e.reset(Some(0)).unwrap();
    let (b, _) = e.reset(Some(2)).unwrap();
    assert_eq!(a, b);
    let key = [
        -0.1, 0.0, 1.38, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.4, 0.8, -0.4, 0.0, 0.0, -0.4, 0.8, -0.4,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.37, 1.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(&a[..33], &key);
}

#[test]
fn time_limit_truncates_and_the_episode_must_be_reset() {
    assert_eq!(MAX_EPISODE_STEPS, 1000);
    let config = HumanoidConfig {
        max_episode_steps: 3,
        ..HumanoidConfig::default()
    };
    let mut e = HumanoidEnv::new(Task::Stand, &config).unwrap();
    e.reset(Some(0)).unwrap();
    let a = vec![0.0; NU];
    let mut total = 0.0;
    for t in 1..=3 {
        let s = e.step(&a).unwrap();
        total += s.reward;
        assert!(!s.terminated, "the robot does not fall within 3 steps");
        assert_eq!(s.truncated, t == 3);
        assert!(s.reward > 0.0 && s.reward <= 1.0);
        let terms = s.info.reward_terms.as_ref().unwrap();
        assert_eq!(terms["per_timestep_reward"], s.reward);
        assert!(terms.contains_key("dont_move") && !terms.contains_key("move"));
        let stats = s.info.episode;
        assert_eq!(stats.is_some(), t == 3);
        if let Some(stats) = stats {
            assert_eq!(stats.length, 3);
            assert_eq!(stats.episode_return, total);
        }
    }
    assert!(matches!(e.step(&a), Err(Error::NeedsReset)));
    e.reset(None).unwrap();
    e.step(&a).unwrap();
}

#[test]
fn falling_terminates_and_walk_reports_move() {
    let mut e = env(Task::Walk);
    e.reset(Some(3)).unwrap();
    // Full-range alternating actions throw the robot over quickly.
    let mut t = 0;
    loop {
        let a: Vec<f64> = (0..NU)
            .map(|i| if (i + t) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let s = e.step(&a).unwrap();
        assert!(s.info.reward_terms.as_ref().unwrap().contains_key("move"));
        t += 1;
        if s.terminated {
            assert!(e.observation()[2] < 0.2);
            assert!(!s.truncated);
            assert_eq!(s.info.episode.unwrap().length, t as u64);
            break;
        }
        assert!(t < 1000, "never fell");
    }
    assert_eq!(e.warnings().total(), 0);
}

#[test]
fn float32_and_float64_actions_map_differently_but_both_work() {
    let mut a = env(Task::Walk);
    let mut b = env(Task::Walk);
    let mut obs = vec![0.0f32; a.obs_len()];
    a.reset_into(Some(5), &mut obs).unwrap();
    b.reset(Some(5)).unwrap();
    let act32 = [0.3f32; NU];
    let act64 = vec![f64::from(0.3f32); NU];
    a.step_into(&act32, &mut obs).unwrap();
    b.step_f64(&act64).unwrap();
    let ctrl_a = a.data().ctrl().to_vec();
    let ctrl_b = b.data().ctrl().to_vec();
    // float32 arithmetic rounds the ctrl to a float32 value.
    assert!(ctrl_a.iter().all(|&c| c == f64::from(c as f32)));
    assert!(ctrl_a
        .iter()
        .zip(&ctrl_b)
        .all(|(x, y)| (x - y).abs() < 1e-6));
    assert_eq!(
        obs,
        a.observation()
            .iter()
            .map(|&x| x as f32)
            .collect::<Vec<_>>()
    );
    // No clipping: an action outside [-1, 1] gives a ctrl outside the range (MuJoCo clamps it).
    b.step_f64(&[2.0; NU]).unwrap();
    let range = b.shared_model().model().actuator_ctrlrange();
    assert!(b.data().ctrl()[0] > range[0][1]);
}

#[test]
fn bad_inputs_are_errors() {
    let mut e = env(Task::Run);
    assert!(matches!(e.step(&vec![0.0; NU]), Err(Error::NeedsReset)));
    e.reset(Some(0)).unwrap();
    assert!(matches!(
        e.step(&vec![0.0; 3]),
        Err(Error::InvalidAction { .. })
    ));
    assert!(matches!(
        e.step(&vec![f64::NAN; NU]),
        Err(Error::InvalidAction { .. })
    ));
    let mut short = vec![0.0f32; 10];
    assert!(e.step_into(&[0.0; NU], &mut short).is_err());
    assert!(matches!(
        Task::from_name("h1-fly-v0"),
        Err(Error::UnknownTask { .. })
    ));
    let missing = HumanoidConfig {
        assets_dir: "/nonexistent".into(),
        ..HumanoidConfig::default()
    };
    let err = HumanoidEnv::new(Task::Walk, &missing).unwrap_err();
    assert!(matches!(err, Error::AssetsMissing { .. }));
    assert!(err.to_string().contains("setup.sh"));
    let negative = HumanoidConfig {
        randomness: -1.0,
        ..HumanoidConfig::default()
    };
    assert!(HumanoidEnv::new(Task::Walk, &negative).is_err());
}

#[test]
fn action_repeat_sums_rewards_and_stops_at_the_end_of_the_episode() {
    let config = HumanoidConfig {
        max_episode_steps: 5,
        ..HumanoidConfig::default()
    };
    let model = HumanoidModel::load(Task::Stand, &config.assets_dir).unwrap();
    let mut single = HumanoidEnv::with_model(model.clone(), &config).unwrap();
    let mut repeated =
        ActionRepeat::new(HumanoidEnv::with_model(model, &config).unwrap(), 2).unwrap();
    assert!(ActionRepeat::new(env(Task::Stand), 0).is_err());
    single.reset(Some(9)).unwrap();
    repeated.reset(Some(9)).unwrap();
    let a = vec![0.1; NU];
    let rewards: Vec<f64> = (0..5).map(|_| single.step(&a).unwrap().reward).collect();
    let s1 = repeated.step(&a).unwrap();
    let s2 = repeated.step(&a).unwrap();
    let s3 = repeated.step(&a).unwrap();
    assert_eq!(s1.reward, rewards[0] + rewards[1]);
    assert_eq!(s2.reward, rewards[2] + rewards[3]);
    // The time limit counts environment steps: the third agent step is cut to one.
    assert_eq!(s3.reward, rewards[4]);
    assert!(s3.truncated && !s1.truncated && !s2.truncated);
    assert_eq!(s3.obs, single.observation());
    let stats = s3.info.episode.unwrap();
    // Three agent steps, five environment steps: the length counts environment steps.
    assert_eq!(stats.length, 5);
    assert_eq!(stats.episode_return, s1.reward + s2.reward + s3.reward);
}

#[test]
fn environments_on_threads_share_one_model_and_agree() {
    let config = HumanoidConfig::default();
    let model = HumanoidModel::load(Task::BalanceSimple, &config.assets_dir).unwrap();
    let run = |model| {
        let mut e = HumanoidEnv::with_model(model, &config).unwrap();
        e.reset(Some(4)).unwrap();
        for _ in 0..20 {
            e.step(&vec![0.05; NU]).unwrap();
        }
        e.observation().to_vec()
    };
    let here = run(model.clone());
    let there: Vec<Vec<f64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(|| run(model.clone()))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(there.iter().all(|o| *o == here));
}

/// A snapshot of humanoids mid-episode (MuJoCo's integration state, the observation, the
/// reset generator, counters), restored into fresh environments, continues exactly: same
/// observations, rewards, reward terms and ends, across falls and seeded autoresets.
#[test]
fn snapshots_resume_humanoid_episodes_exactly() {
    use envs::vector::{FlatEnv, VecEnv};
    let make = || ActionRepeat::new(env(Task::Walk), 2).unwrap();
    let action = |t: usize, i: usize, k: usize| ((t * 13 + i * 7 + k * 3) % 11) as f32 / 5.0 - 1.0;
    let actions = |t: usize| -> Vec<f32> {
        (0..2)
            .flat_map(|i| (0..19).map(move |k| action(t, i, k)))
            .collect()
    };
    let mut original = VecEnv::new(vec![make(), make()], 1).unwrap();
    let mut current = original.reset(Some(3)).unwrap().to_vec();
    for t in 0..25 {
        current = original.step(&actions(t)).unwrap().obs.to_vec();
    }
    let saved = original.save_states().expect("humanoids save their state");
    let mut restored = VecEnv::new(vec![make(), make()], 1).unwrap();
    assert_eq!(restored.load_states(&saved).unwrap(), current);
    let mut ends = 0;
    for t in 25..250 {
        let a = original.step(&actions(t)).unwrap();
        let (obs, ts) = (a.obs.to_vec(), a.transitions.to_vec());
        let b = restored.step(&actions(t)).unwrap();
        assert_eq!(obs, b.obs, "observations at step {t}");
        for (x, y) in ts.iter().zip(b.transitions) {
            assert_eq!(x.reward.to_bits(), y.reward.to_bits(), "reward at step {t}");
            assert_eq!((x.terminated, x.truncated), (y.terminated, y.truncated));
            assert_eq!(x.info.reward_terms, y.info.reward_terms);
            ends += usize::from(x.terminated || x.truncated);
        }
    }
    assert!(ends >= 2, "falls and resets were crossed ({ends})");
    // A CartPole snapshot is not a humanoid's.
    let mut cartpole = envs::classic::CartPole::new();
    Env::reset(&mut cartpole, Some(1)).unwrap();
    let foreign = FlatEnv::save_state(&mut cartpole).unwrap();
    let mut obs = vec![0.0f32; restored.obs_len()];
    let mut one = make();
    assert!(FlatEnv::load_state(&mut one, &foreign, &mut obs).is_err());
}
