//! The H1 tasks against rollouts recorded by `tests/data/record_humanoid.py`, an independent
//! re-implementation of HumanoidBench's SPEC in Python on PyPI `mujoco==3.17.0` and numpy:
//! every observation bit for bit (FNV-1a hash of the float64 bits, whole vectors at a few
//! steps), terminations, truncations, and rewards with their components.

use envs::mujoco::seeding::Pcg64;
use envs::mujoco::{HumanoidConfig, HumanoidEnv, Task, NU};
use envs::Env;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/humanoid_fixture.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn fnv1a64(values: &[f64]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// The recorder's actions: `scale * default_rng(seed).uniform(-1, 1, (steps, 19))`, plus the
/// keyframe pose's action when `hold`.
fn actions(env: &HumanoidEnv, ep: &Value, steps: usize) -> Vec<[f64; NU]> {
    let mut noise = vec![0.0; steps * NU];
    Pcg64::from_seed(ep["action_seed"].as_u64().unwrap()).uniform_into(-1.0, 1.0, &mut noise);
    let scale = ep["scale"].as_f64().unwrap();
    let center: [f64; NU] = if ep["hold"].as_bool().unwrap() {
        let model = env.shared_model().model();
        let key = &model.key_qpos()[7..7 + NU];
        let range = model.actuator_ctrlrange();
        std::array::from_fn(|i| {
            let (low, high) = (f64::from(range[i][0] as f32), f64::from(range[i][1] as f32));
            2.0 * (key[i] - low) / (high - low) - 1.0
        })
    } else {
        [0.0; NU]
    };
    noise
        .chunks(NU)
        .map(|row| {
            std::array::from_fn(|i| {
                if ep["hold"].as_bool().unwrap() {
                    center[i] + scale * row[i]
                } else {
                    scale * row[i]
                }
            })
        })
        .collect()
}

/// Within a few ulps: numpy's SIMD `exp` differs from libm's in the last bit for some inputs
/// (SPEC §8.6); this never feeds back into the physics.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 8.0 * f64::EPSILON * a.abs().max(b.abs())
}

#[test]
fn rollouts_match_the_python_reference_bit_for_bit() {
    let fixture = fixture();
    assert_eq!(fixture["mujoco"], "3.17.0");
    let mut checked = 0;
    let mut exact_rewards = 0;
    for run in fixture["runs"].as_array().unwrap() {
        let task = Task::from_name(run["task"].as_str().unwrap()).unwrap();
        let config = HumanoidConfig {
            randomness: run["randomness"].as_f64().unwrap(),
            ..HumanoidConfig::default()
        };
        let mut env = HumanoidEnv::new(task, &config).unwrap();
        for (e, ep) in run["episodes"].as_array().unwrap().iter().enumerate() {
            let here = format!("{task} episode {e} (seed {})", ep["seed"]);
            let (obs, _) = env.reset(ep["seed"].as_u64()).unwrap();
            let want = floats(&ep["reset_obs"]);
            assert_eq!(obs.len(), want.len());
            for (i, (a, b)) in obs.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{here}: reset obs[{i}] {a} vs {b}"
                );
            }
            let steps = ep["steps"].as_array().unwrap();
            let f32_actions = ep["dtype"] == "f32";
            let mut obs32 = vec![0.0f32; env.obs_len()];
            for (t, (step, action)) in steps.iter().zip(actions(&env, ep, steps.len())).enumerate()
            {
                let tr = if f32_actions {
                    let a: Vec<f32> = action.iter().map(|&x| x as f32).collect();
                    env.step_into(&a, &mut obs32).unwrap()
                } else {
                    env.step_f64(&action).unwrap()
                };
                let obs = env.observation();
                if let Some(full) = step.get("obs") {
                    for (i, (a, b)) in obs.iter().zip(floats(full)).enumerate() {
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{here} step {t}: obs[{i}] {a} vs {b}"
                        );
                    }
                }
                assert_eq!(
                    fnv1a64(obs),
                    step["obs_hash"].as_str().unwrap(),
                    "{here} step {t}: obs"
                );
                if f32_actions {
                    let want: Vec<f32> = obs.iter().map(|&x| x as f32).collect();
                    assert_eq!(obs32, want);
                }
                assert_eq!(
                    tr.terminated,
                    step["terminated"].as_bool().unwrap(),
                    "{here} step {t}"
                );
                assert_eq!(
                    tr.truncated,
                    step["truncated"].as_bool().unwrap(),
                    "{here} step {t}"
                );
                let reward = f64::from_bits(
                    u64::from_str_radix(step["reward_bits"].as_str().unwrap(), 16).unwrap(),
                );
                assert!(
                    close(tr.reward, reward),
                    "{here} step {t}: reward {} vs {reward}",
                    tr.reward
                );
                exact_rewards += usize::from(tr.reward.to_bits() == reward.to_bits());
                let terms = tr.info.reward_terms.as_ref().expect("reward terms");
                let want_terms = step["info"].as_object().unwrap();
                assert_eq!(terms.len(), want_terms.len(), "{here} step {t}: {terms:?}");
                for (k, v) in want_terms {
                    let got = terms[k.as_str()];
                    assert!(
                        close(got, v.as_f64().unwrap()),
                        "{here} step {t}: {k} {got} vs {v}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 1000, "only {checked} steps");
    eprintln!("{checked} steps bit for bit; {exact_rewards} rewards bit for bit");
}
