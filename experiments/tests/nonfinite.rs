//! A step that comes back with a non-finite observation (a physics step that blew up) does not
//! end the run: the loop drops it, restarts the episode, counts it in
//! `charts/nonfinite_steps` and goes on; replay never holds the NaN. SAC on Pendulum-v1 and
//! DQN on CartPole-v1, with the broken step ending its episode (as the HumanoidBench tasks
//! do) or not, synchronously and with an actor thread.

use std::path::Path;

use dqn::{Architecture, Dqn, DqnConfig};
use envs::classic::{CartPole, Pendulum};
use envs::vector::{FlatEnv, Transition};
use envs::{Info, Space};
use fire::Method;
use rand::SeedableRng;
use replay::{NStep, VectorReplay};
use runtime::config::LoopConfig;
use runtime::{Outcome, RunDir, Setup};
use tch::Device;

/// `inner` whose `at`-th step (counted over the environment's life, across episodes) writes
/// NaN into the observation; with `terminate` that step also ends the episode, as the
/// HumanoidBench tasks end one whose state is not finite.
struct NanOnce<E> {
    inner: E,
    steps: u64,
    at: u64,
    terminate: bool,
}

impl<E: FlatEnv<Elem = f32>> FlatEnv for NanOnce<E> {
    type Elem = f32;

    fn obs_len(&self) -> usize {
        self.inner.obs_len()
    }

    fn action_space(&self) -> Space {
        self.inner.action_space()
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> envs::Result<Info> {
        self.inner.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> envs::Result<Transition> {
        assert!(
            action.iter().all(|a| a.is_finite()),
            "the agent acted on a non-finite observation: {action:?}"
        );
        let mut t = self.inner.step_into(action, obs)?;
        self.steps += 1;
        if self.steps == self.at {
            obs[1] = f32::NAN;
            t.terminated |= self.terminate;
        }
        Ok(t)
    }
}

const STEPS: u64 = 600;
/// The broken step: after learning started, in the second Pendulum episode (200 steps each).
const AT: u64 = 250;

fn loop_config(actors: usize) -> LoopConfig {
    LoopConfig {
        steps: STEPS,
        envs: 1,
        env_threads: 1,
        actors,
        buffer_size: 10_000,
        learning_starts: 100,
        replay_ratio: 1.0,
        batch_size: 32,
        eval_every: 300,
        eval_steps: 0,
        eval_episodes: 2,
        log_every: 100,
        plasticity_every: 0,
        checkpoint_every: 0,
        checkpoint_replay: true,
        intervention: Method::None,
        device: fire::DeviceChoice::Cpu,
        torch_threads: 1,
        ..LoopConfig::default()
    }
}

/// Trains `agent` on `make()` wrapped in [`NanOnce`] into `run` and checks what the brief
/// asks: the run finishes, one `charts/nonfinite_steps` row (cumulative count 1 at the step
/// it happened), replay holds every step but the broken one and no NaN.
fn check<A, E>(run: &Path, agent: A, make: fn() -> E, terminate: bool, actors: usize)
where
    A: agent::Agent<Elem = f32>,
    E: FlatEnv<Elem = f32> + 'static,
{
    let cfg = loop_config(actors);
    let replay = VectorReplay::new(
        cfg.buffer_size,
        make().obs_len(),
        make().action_space().dim(),
        7,
    )
    .unwrap();
    let setup = Setup {
        agent,
        replay,
        // Evaluation environments break too: an evaluation must not act on NaN either.
        make_env: Box::new(move |_, _, _| {
            Ok(NanOnce {
                inner: make(),
                steps: 0,
                at: AT,
                terminate,
            })
        }),
        frames_per_step: 1,
        steps_per_decision: 1,
        eval_extras: None,
        levels: None,
        config_text: String::new(),
    };
    let dir = RunDir::create(run).unwrap();
    let outcome = runtime::train(&cfg, setup, &dir, false, false)
        .unwrap_or_else(|e| panic!("terminate {terminate}, actors {actors}: {e:#}"));
    assert_eq!(outcome, Outcome::Finished);

    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let counted: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",charts/nonfinite_steps,"))
        .collect();
    let at = AT - 1; // the step count before the broken step
    assert_eq!(counted, [format!("{at},{at},charts/nonfinite_steps,1")]);
    let evals: Vec<f64> = csv
        .lines()
        .filter(|l| l.contains(",eval/episodic_return,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(evals.len(), 2, "{csv}");
    assert!(evals.iter().all(|r| r.is_finite()), "{evals:?}");

    let path = runtime::checkpoint::file(&dir.checkpoint_dir(), "replay")
        .unwrap()
        .expect("the final checkpoint holds the replay");
    let replay = VectorReplay::load(&path).unwrap();
    assert_eq!(
        replay.len() as u64,
        STEPS - 1,
        "every step but the broken one"
    );
    // 64 draws per transition miss a given one with probability e^-64.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let b = replay
        .sample_with(64 * replay.len(), NStep::one(0.99), &mut rng)
        .unwrap();
    for (what, values) in [
        ("obs", &b.obs),
        ("next_obs", &b.next_obs),
        ("rewards", &b.rewards),
        ("actions", &b.actions),
    ] {
        assert!(
            values.iter().all(|v| v.is_finite()),
            "terminate {terminate}, actors {actors}: {what} holds a non-finite value"
        );
    }
}

fn sac() -> sac::Sac {
    tch::manual_seed(1);
    let keys = experiments::sac_keys::SacKeys {
        sac_hidden: vec![32, 32],
        ..experiments::sac_keys::SacKeys::cleanrl()
    };
    let methods = experiments::method_keys::MethodKeys::default();
    keys.build_for(&Pendulum::new(), &methods, 10, 0, Device::Cpu)
        .unwrap()
        .0
}

#[test]
fn sac_goes_on_after_a_nan_observation_that_ends_the_episode() {
    let tmp = tempfile::tempdir().unwrap();
    check(&tmp.path().join("run"), sac(), Pendulum::new, true, 0);
}

#[test]
fn sac_goes_on_after_a_nan_observation_mid_episode_synchronous_and_threaded() {
    let tmp = tempfile::tempdir().unwrap();
    check(&tmp.path().join("sync"), sac(), Pendulum::new, false, 0);
    check(&tmp.path().join("actor"), sac(), Pendulum::new, false, 1);
}

#[test]
fn dqn_goes_on_after_a_nan_observation_that_ends_the_episode() {
    tch::manual_seed(1);
    let agent = Dqn::<f32>::new(
        &Architecture::Mlp {
            obs_dim: 4,
            hidden: vec![32, 32],
        },
        2,
        DqnConfig::default(),
        Device::Cpu,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    check(&tmp.path().join("run"), agent, CartPole::new, true, 0);
}
