//! The DQN interventions' semantics (what changes, what is kept), the update statistics, and
//! a terminal target that stays finite whatever its next observation.

use dqn::{AdamConfig, Architecture, Dqn, DqnConfig, Loss};
use fire::{Method, MethodConfig};
use replay::Batch;
use tch::{Device, Kind, Tensor};

/// libtorch's generator is global, and `agent` and `batch` seed it and then draw from it: tests
/// on parallel threads would interleave their draws (two "identical" agents then differ), so
/// each test of this file holds this lock for its whole run.
static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    GENERATOR.lock().unwrap_or_else(|p| p.into_inner())
}

fn agent() -> Dqn<f32> {
    tch::manual_seed(3);
    let config = DqnConfig {
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        loss: Loss::Huber,
        ..DqnConfig::default()
    };
    Dqn::new(
        &Architecture::Mlp {
            obs_dim: 4,
            hidden: vec![16, 16],
        },
        3,
        config,
        Device::Cpu,
    )
    .unwrap()
}

fn batch(seed: i64) -> Batch<f32> {
    tch::manual_seed(seed);
    let obs = Vec::<f32>::try_from(&Tensor::randn([32 * 4], (Kind::Float, Device::Cpu))).unwrap();
    let next = Vec::<f32>::try_from(&Tensor::randn([32 * 4], (Kind::Float, Device::Cpu))).unwrap();
    Batch {
        size: 32,
        obs,
        actions: (0..32).map(|i| (i % 3) as f32).collect(),
        rewards: vec![1.0; 32],
        next_obs: next,
        discounts: vec![0.99; 32],
    }
}

fn param(agent: &Dqn<f32>, name: &str) -> Tensor {
    agent
        .params()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
        .detach()
        .copy()
}

#[test]
fn fire_keeps_adam_syncs_target_and_resets_the_head() {
    let _serial = serial();
    let mut a = agent();
    for s in 0..5 {
        a.update(&batch(s)).unwrap();
    }
    let m_before = a
        .adam()
        .unwrap()
        .moments("q.encoder.fc1.weight")
        .unwrap()
        .0
        .copy();
    let reports = a.intervene(&MethodConfig::default(), None).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"q.encoder.fc1.weight") && names.contains(&"q.head.out.weight"),
        "{names:?}"
    );
    assert!(
        a.adam()
            .unwrap()
            .moments("q.encoder.fc1.weight")
            .unwrap()
            .0
            .equal(&m_before),
        "Adam state kept"
    );
    let probe = Tensor::from_slice(&batch(99).obs).view([32, 4]);
    // The target network now equals the online network: its TD target equals the online Q.
    let state = a.state_tensors();
    let get = |k: &str| state.iter().find(|(n, _)| n == k).unwrap().1.copy();
    assert!(get("online.q.encoder.fc2.weight").equal(&get("target.q.encoder.fc2.weight")));
    assert!(
        get("online.q.head.out.weight").equal(&get("initial.q.head.out.weight")),
        "head back to theta_0"
    );
    assert_eq!(a.online().forward(&probe).size(), vec![32, 3]);
}

#[test]
fn redo_recycles_dead_units_zeroes_their_moments_and_keeps_outputs() {
    let _serial = serial();
    let mut a = agent();
    a.update(&batch(1)).unwrap();
    // Kill units 3 and 5 of the first hidden layer.
    tch::no_grad(|| {
        let params = a.params();
        let find = |n: &str| {
            params
                .iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1
                .shallow_clone()
        };
        for unit in [3, 5] {
            let _ = find("q.encoder.fc1.weight").get(unit).fill_(0.0);
            let _ = find("q.encoder.fc1.bias").get(unit).fill_(-1.0);
        }
    });
    a.update(&batch(2)).unwrap();
    let probe = Tensor::from_slice(&batch(7).obs).view([32, 4]);
    let q_before = a.online().forward(&probe);
    let cfg = MethodConfig {
        method: Method::Redo,
        redo_tau: 0.0,
        ..MethodConfig::default()
    };
    assert!(a.intervene(&cfg, None).is_err(), "ReDo needs observations");
    let reports = a.intervene(&cfg, Some(&probe)).unwrap();
    assert!(
        reports.iter().any(|r| r.name == "q.encoder.fc1.weight"),
        "{reports:?}"
    );
    let w = param(&a, "q.encoder.fc1.weight");
    assert!(
        w.get(3).abs().sum(Kind::Float).double_value(&[]) > 0.0,
        "fresh incoming weights"
    );
    let out = param(&a, "q.encoder.fc2.weight");
    for unit in [3, 5] {
        assert_eq!(
            out.select(1, unit).abs().sum(Kind::Float).double_value(&[]),
            0.0,
            "outgoing weights zeroed"
        );
        let (m, v) = a.adam().unwrap().moments("q.encoder.fc1.weight").unwrap();
        assert_eq!(m.get(unit).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(v.get(unit).abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
    let q_after = a.online().forward(&probe);
    assert!(
        q_before.allclose(&q_after, 1e-5, 1e-5, false),
        "recycling leaves the outputs unchanged"
    );
}

#[test]
fn plasticity_injection_keeps_outputs_trains_only_the_new_head_and_checkpoints() {
    let _serial = serial();
    let mut a = agent();
    a.update(&batch(1)).unwrap();
    let probe = Tensor::from_slice(&batch(5).obs).view([32, 4]);
    let q_before = a.online().forward(&probe);
    let cfg = MethodConfig {
        method: Method::PlasticityInjection,
        ..MethodConfig::default()
    };
    a.intervene(&cfg, None).unwrap();
    assert!(
        a.online()
            .forward(&probe)
            .allclose(&q_before, 1e-5, 1e-5, false),
        "unchanged at injection"
    );
    let old_head = param(&a, "q.head.out.weight");
    let new_head = param(&a, "q.injected.fc1.weight");
    let frozen = param(&a, "q.injected_frozen.fc1.weight");
    assert!(new_head.equal(&frozen));
    // Both start as the theta_0 head (FIRE.md section 3: the reference copies it, no fresh draw).
    let theta_0 = a
        .state_tensors()
        .into_iter()
        .find(|(n, _)| n == "initial.q.head.out.weight")
        .unwrap()
        .1;
    assert!(
        new_head.equal(&theta_0),
        "the injected head is the theta_0 head"
    );
    assert!(
        !old_head.equal(&theta_0),
        "the trained head has moved from theta_0"
    );
    for s in 10..15 {
        a.update(&batch(s)).unwrap();
    }
    assert!(
        param(&a, "q.head.out.weight").equal(&old_head),
        "the old head is frozen"
    );
    assert!(
        param(&a, "q.injected_frozen.fc1.weight").equal(&frozen),
        "the copy is frozen"
    );
    assert!(
        !param(&a, "q.injected.fc1.weight").equal(&new_head),
        "the new head learns"
    );
    assert!(a.intervene(&cfg, None).is_err(), "injection happens once");

    // A fresh agent restores the injected architecture from the checkpoint tensors.
    let saved = a
        .state_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect::<Vec<_>>();
    let mut b = agent();
    b.load_state(&saved).unwrap();
    assert!(b.online().is_injected());
    assert!(b
        .online()
        .forward(&probe)
        .allclose(&a.online().forward(&probe), 1e-6, 1e-6, false));
}

#[test]
fn update_statistics_are_means_and_catch_divergence() {
    let _serial = serial();
    let mut a = agent();
    assert_eq!(a.take_stats().unwrap(), None, "no update yet");
    // The mean over three updates equals the mean of the three taken one at a time.
    let mut b = agent();
    let mut one_by_one = 0.0;
    for s in 1..=3 {
        a.update(&batch(s)).unwrap();
        b.update(&batch(s)).unwrap();
        one_by_one += b.take_stats().unwrap().unwrap().td_loss / 3.0;
    }
    let stats = a.take_stats().unwrap().unwrap();
    assert_eq!(stats.updates, 3);
    assert!(stats.td_loss > 0.0);
    assert!((stats.td_loss - one_by_one).abs() < 1e-9 * one_by_one);
    assert_eq!(a.take_stats().unwrap(), None, "taking starts new sums");
    a.check_finite().unwrap();

    // A NaN weight makes the next loss NaN: both checks report it.
    tch::no_grad(|| {
        let _ = a.params()[0].1.fill_(f64::NAN);
    });
    assert!(matches!(
        a.check_finite(),
        Err(dqn::Error::NonFiniteParameter { .. })
    ));
    a.update(&batch(4)).unwrap();
    let err = a.take_stats().unwrap_err();
    assert!(err.to_string().contains("diverged"), "{err}");
}

/// A terminal transition whose next observation is NaN (a physics step that blew up) leaves
/// the update finite: the zero discount selects the reward alone, where `r + 0 * Q(NaN)`
/// would make the loss, the gradients and then every weight NaN. Double DQN too (the online
/// network picks the next action on the same NaN observation).
#[test]
fn a_terminal_nan_next_observation_does_not_poison_the_update() {
    let _serial = serial();
    for double in [false, true] {
        tch::manual_seed(3);
        let mut a = Dqn::<f32>::new(
            &Architecture::Mlp {
                obs_dim: 4,
                hidden: vec![16, 16],
            },
            3,
            DqnConfig {
                double,
                ..DqnConfig::default()
            },
            Device::Cpu,
        )
        .unwrap();
        let mut b = batch(5);
        b.next_obs[..4].fill(f32::NAN);
        b.discounts[0] = 0.0;
        a.update(&b).unwrap();
        a.check_finite().unwrap();
        let stats = a.take_stats().unwrap().unwrap();
        assert!(stats.td_loss.is_finite(), "double {double}: {stats:?}");
    }
}
