//! Classic control against trajectories recorded from Gymnasium 1.2.2
//! (data/classic_gymnasium.json, made by data/record_classic.py).

use envs::classic::{CartPole, Pendulum};
use envs::{Env, Error};
use serde_json::Value;

fn recorded() -> Value {
    let text = include_str!("data/classic_gymnasium.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Compares one step. Observations agree to f32 rounding for the first 250 steps (checked:
/// bit for bit in f32 up to step 254 of the long CartPole episode); after that, last-bit
/// differences between NumPy's and glibc's sin/cos, amplified by the chaotic dynamics, show
/// reach the 2nd digit by step 498, so later observations are not compared here; the one-step
/// test below checks every transition from Gymnasium's own f64 state instead (to 1e-12).
/// Rewards and flags must match on every step.
fn check_step(
    episode: usize,
    t: usize,
    want: &Value,
    obs: &[f32],
    reward: f64,
    term: bool,
    trunc: bool,
) {
    let want_obs = f64s(&want["obs"]);
    for (i, (&got, want)) in obs.iter().zip(&want_obs).enumerate().filter(|_| t < 250) {
        let tol = 1e-7 * want.abs().max(1.0);
        assert!(
            (got as f64 - want).abs() <= tol,
            "episode {episode} step {t} obs[{i}]: got {got}, gymnasium {want}"
        );
    }
    let want_reward = want["reward"].as_f64().unwrap();
    assert!(
        (reward - want_reward).abs() <= 1e-9 * want_reward.abs().max(1.0),
        "episode {episode} step {t}: reward {reward} vs {want_reward}"
    );
    assert_eq!(
        term,
        want["terminated"].as_bool().unwrap(),
        "episode {episode} step {t} terminated"
    );
    assert_eq!(
        trunc,
        want["truncated"].as_bool().unwrap(),
        "episode {episode} step {t} truncated"
    );
}

#[test]
fn cartpole_replays_gymnasium_trajectories() {
    let data = recorded();
    let episodes = data["cartpole"].as_array().unwrap();
    let mut saw_truncation = false;
    for (e, episode) in episodes.iter().enumerate() {
        let s = f64s(&episode["state"]);
        let mut env = CartPole::new();
        env.set_state([s[0], s[1], s[2], s[3]]);
        let actions = episode["actions"].as_array().unwrap();
        let steps = episode["steps"].as_array().unwrap();
        for (t, (a, want)) in actions.iter().zip(steps).enumerate() {
            let step = env.step(&(a.as_u64().unwrap() as usize)).unwrap();
            check_step(
                e,
                t,
                want,
                &step.obs,
                step.reward,
                step.terminated,
                step.truncated,
            );
            if step.done() {
                let stats = step.info.episode.expect("episode stats on the last step");
                assert_eq!(stats.length as usize, steps.len());
                assert_eq!(stats.episode_return, steps.len() as f64);
                saw_truncation |= step.truncated;
            }
        }
        assert!(matches!(env.step(&0), Err(Error::NeedsReset)));
    }
    assert!(saw_truncation, "the fixture includes a 500-step episode");
}

/// From each recorded f64 state, one step must land on Gymnasium's next f64 state.
#[test]
fn every_transition_matches_from_gymnasium_state() {
    let data = recorded();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    for episode in data["cartpole"].as_array().unwrap() {
        let mut state = f64s(&episode["state"]);
        for (a, want) in episode["actions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(episode["steps"].as_array().unwrap())
        {
            let mut env = CartPole::new();
            env.set_state([state[0], state[1], state[2], state[3]]);
            env.step(&(a.as_u64().unwrap() as usize)).unwrap();
            let next = f64s(&want["state"]);
            let got = env.state();
            for i in 0..4 {
                assert!(
                    close(got[i], next[i]),
                    "cartpole state[{i}]: {} vs {}",
                    got[i],
                    next[i]
                );
            }
            state = next;
        }
    }
    for episode in data["pendulum"].as_array().unwrap() {
        let mut state = f64s(&episode["state"]);
        for (a, want) in f64s(&episode["actions"])
            .iter()
            .zip(episode["steps"].as_array().unwrap())
        {
            let mut env = Pendulum::new();
            env.set_state([state[0], state[1]]);
            let step = env.step(&[*a as f32]).unwrap();
            let next = f64s(&want["state"]);
            let got = env.state();
            for i in 0..2 {
                assert!(
                    close(got[i], next[i]),
                    "pendulum state[{i}]: {} vs {}",
                    got[i],
                    next[i]
                );
            }
            assert!(close(step.reward, want["reward"].as_f64().unwrap()));
            state = next;
        }
    }
}

#[test]
fn pendulum_replays_gymnasium_trajectories() {
    let data = recorded();
    for (e, episode) in data["pendulum"].as_array().unwrap().iter().enumerate() {
        let s = f64s(&episode["state"]);
        let mut env = Pendulum::new();
        env.set_state([s[0], s[1]]);
        let actions = f64s(&episode["actions"]);
        let steps = episode["steps"].as_array().unwrap();
        let mut total = 0.0;
        for (t, (a, want)) in actions.iter().zip(steps).enumerate() {
            let step = env.step(&[*a as f32]).unwrap();
            check_step(
                e,
                t,
                want,
                &step.obs,
                step.reward,
                step.terminated,
                step.truncated,
            );
            total += step.reward;
            if step.done() {
                let stats = step.info.episode.unwrap();
                assert_eq!(stats.length, 200);
                assert!((stats.episode_return - total).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn same_seed_same_episode_and_bad_actions_are_errors() {
    let run = |seed| {
        let mut env = CartPole::new();
        let (obs, _) = env.reset(Some(seed)).unwrap();
        let mut all = obs;
        for i in 0..10 {
            all.extend(env.step(&(i % 2)).unwrap().obs);
        }
        all
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
    let mut env = CartPole::new();
    assert!(matches!(env.step(&0), Err(Error::NeedsReset)));
    env.reset(Some(0)).unwrap();
    assert!(matches!(env.step(&2), Err(Error::InvalidAction { .. })));
    let mut p = Pendulum::new();
    p.reset(Some(0)).unwrap();
    assert!(matches!(
        p.step(&[f32::NAN]),
        Err(Error::InvalidAction { .. })
    ));
}
