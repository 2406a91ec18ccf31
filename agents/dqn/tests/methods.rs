//! The plasticity methods built into DQN's network and update: CReLU and LayerNorm shapes and
//! names, the regulariser's logged penalty, normalize-and-project's norms, layer reset, and
//! the combinations refused.

use agent::{Activation, NetworkOptions, UpdateMethods};
use dqn::{AdamConfig, Architecture, Dqn, DqnConfig};
use fire::{Method, MethodConfig, Regularizer};
use replay::Batch;
use tch::{Device, Kind, Tensor};

/// libtorch's generator is global: each test holds this lock (see `interventions.rs`).
static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    GENERATOR.lock().unwrap_or_else(|p| p.into_inner())
}

const MLP: fn() -> Architecture = || Architecture::Mlp {
    obs_dim: 4,
    hidden: vec![16, 8],
};

fn agent_with(arch: &Architecture, network: NetworkOptions, methods: UpdateMethods) -> Dqn<f32> {
    tch::manual_seed(3);
    let config = DqnConfig {
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        network,
        methods,
        ..DqnConfig::default()
    };
    Dqn::new(arch, 3, config, Device::Cpu).unwrap()
}

fn batch(seed: i64) -> Batch<f32> {
    tch::manual_seed(seed);
    let draw =
        || Vec::<f32>::try_from(&Tensor::randn([32 * 4], (Kind::Float, Device::Cpu))).unwrap();
    Batch {
        size: 32,
        obs: draw(),
        actions: (0..32).map(|i| (i % 3) as f32).collect(),
        rewards: vec![1.0; 32],
        next_obs: draw(),
        discounts: vec![0.99; 32],
    }
}

fn shapes<T: tch::kind::Element>(agent: &Dqn<T>) -> Vec<(String, Vec<i64>)> {
    agent
        .params()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect()
}

fn param(agent: &Dqn<f32>, name: &str) -> Tensor {
    let (_, t) = agent.params().into_iter().find(|(n, _)| n == name).unwrap();
    t.detach().copy()
}

const CRELU: NetworkOptions = NetworkOptions {
    activation: Activation::Crelu,
    layer_norm: false,
};
const LAYER_NORM: NetworkOptions = NetworkOptions {
    activation: Activation::Relu,
    layer_norm: true,
};

#[test]
fn crelu_doubles_each_next_layers_inputs() {
    let _serial = serial();
    let a = agent_with(&MLP(), CRELU, UpdateMethods::default());
    let s = shapes(&a);
    assert!(s.contains(&("q.encoder.fc1.weight".into(), vec![16, 4])));
    assert!(s.contains(&("q.encoder.fc2.weight".into(), vec![8, 32])));
    assert!(s.contains(&("q.head.out.weight".into(), vec![3, 16])));
    let (_, hidden) = a
        .online()
        .forward_with_features(&Tensor::ones([5, 4], (Kind::Float, Device::Cpu)));
    assert_eq!(
        hidden.iter().map(|h| h.size()).collect::<Vec<_>>(),
        vec![vec![5, 32], vec![5, 16]]
    );
    // MinAtar's conv: 16 channels out, 32 into the flatten, 16 * 2 * 8 * 8 = 2048 into fc1.
    let m = Dqn::<u8>::new(
        &Architecture::MinatarCnn { channels: 4 },
        6,
        DqnConfig {
            network: CRELU,
            ..DqnConfig::default()
        },
        Device::Cpu,
    )
    .unwrap();
    let fc1 = m
        .params()
        .into_iter()
        .find(|(n, _)| n == "q.head.fc1.weight")
        .unwrap()
        .1;
    assert_eq!(fc1.size(), vec![128, 2048]);
}

#[test]
fn layer_norm_sits_in_every_hidden_layer_and_not_after_the_output() {
    let _serial = serial();
    let a = agent_with(&MLP(), LAYER_NORM, UpdateMethods::default());
    let names: Vec<String> = shapes(&a).into_iter().map(|(n, _)| n).collect();
    for n in ["q.encoder.norm1.weight", "q.encoder.norm2.bias"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("q.head.norm")),
        "{names:?}"
    );
    // Over a conv layer's whole output, as Plasticine's LayerNorm networks: [C, H, W].
    let nature = Dqn::<u8>::new(
        &Architecture::NatureCnn { frames: 4 },
        6,
        DqnConfig {
            network: LAYER_NORM,
            ..DqnConfig::default()
        },
        Device::Cpu,
    )
    .unwrap();
    let s = shapes(&nature);
    assert!(
        s.contains(&("q.encoder.norm2.weight".into(), vec![64, 9, 9])),
        "{s:?}"
    );
    assert!(
        s.contains(&("q.head.norm1.weight".into(), vec![512])),
        "{s:?}"
    );
}

#[test]
fn the_plain_network_draws_the_same_weights_as_before_the_options_existed() {
    let _serial = serial();
    // LayerNorm layers draw nothing from the generator: the affine layers' weights match.
    let plain = agent_with(&MLP(), NetworkOptions::default(), UpdateMethods::default());
    let normed = agent_with(&MLP(), LAYER_NORM, UpdateMethods::default());
    for n in [
        "q.encoder.fc1.weight",
        "q.encoder.fc2.weight",
        "q.head.out.weight",
    ] {
        assert!(param(&plain, n).equal(&param(&normed, n)), "{n}");
    }
}

#[test]
fn a_regularised_update_logs_its_penalty_and_l2_init_starts_at_zero() {
    let _serial = serial();
    let l2_init = UpdateMethods {
        regularizer: Regularizer::L2Init,
        regularizer_strength: 1e-2,
        normalize_project: false,
    };
    let mut a = agent_with(&MLP(), NetworkOptions::default(), l2_init);
    a.update(&batch(1)).unwrap();
    let first = a.take_stats().unwrap().unwrap();
    // At the first update theta = theta_0: the penalty is exactly 0.
    assert_eq!(first.regularizer, Some(0.0));
    for s in 2..6 {
        a.update(&batch(s)).unwrap();
    }
    let later = a.take_stats().unwrap().unwrap().regularizer.unwrap();
    assert!(
        later > 0.0,
        "the weights moved, so the penalty is positive: {later}"
    );
    let mut plain = agent_with(&MLP(), NetworkOptions::default(), UpdateMethods::default());
    plain.update(&batch(1)).unwrap();
    assert_eq!(plain.take_stats().unwrap().unwrap().regularizer, None);
}

#[test]
fn normalize_and_project_holds_every_weight_at_its_initial_norm() {
    let _serial = serial();
    let nap = UpdateMethods {
        normalize_project: true,
        ..UpdateMethods::default()
    };
    let mut a = agent_with(&MLP(), LAYER_NORM, nap);
    let weights = [
        "q.encoder.fc1.weight",
        "q.encoder.fc2.weight",
        "q.head.out.weight",
    ];
    let before: Vec<f64> = weights
        .iter()
        .map(|n| param(&a, n).norm().double_value(&[]))
        .collect();
    let w0 = param(&a, weights[0]);
    for s in 0..10 {
        a.update(&batch(s)).unwrap();
    }
    for (n, b) in weights.iter().zip(&before) {
        let now = param(&a, n).norm().double_value(&[]);
        assert!((now - b).abs() < 1e-4 * b, "{n}: {now} vs {b}");
    }
    assert!(
        !param(&a, weights[0]).allclose(&w0, 1e-6, 1e-6, false),
        "the direction moved"
    );
    // The biases are not projected: they are free to grow from 0.
    assert!(param(&a, "q.encoder.fc1.bias").norm().double_value(&[]) > 0.0);
}

#[test]
fn layer_reset_resets_the_named_layers_and_nothing_else() {
    let _serial = serial();
    let mut a = agent_with(&MLP(), NetworkOptions::default(), UpdateMethods::default());
    let head_0 = param(&a, "q.head.out.weight");
    for s in 0..5 {
        a.update(&batch(s)).unwrap();
    }
    let encoder = param(&a, "q.encoder.fc2.weight");
    let cfg = MethodConfig {
        method: Method::LayerReset,
        ..MethodConfig::default()
    };
    let reports = a.intervene(&cfg, None).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["q.head.out.bias", "q.head.out.weight"]);
    assert!(param(&a, "q.head.out.weight").equal(&head_0));
    assert!(param(&a, "q.encoder.fc2.weight").equal(&encoder));
}

#[test]
fn layer_reset_globs_that_match_nothing_are_refused_when_the_agent_is_built() {
    let _serial = serial();
    let config = DqnConfig {
        reset_layers: vec!["q.head.fc9.*".into()],
        ..DqnConfig::default()
    };
    let err = Dqn::<f32>::new(&MLP(), 3, config, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("reset_layers") && err.contains("q.head.fc9.*") && err.contains("q.head.out"),
        "{err}"
    );
}

#[test]
fn redo_with_crelu_and_injection_with_layer_norm_are_refused() {
    let _serial = serial();
    let mut crelu = agent_with(&MLP(), CRELU, UpdateMethods::default());
    let probe = Tensor::ones([8, 4], (Kind::Float, Device::Cpu));
    let redo = MethodConfig {
        method: Method::Redo,
        ..MethodConfig::default()
    };
    let err = crelu
        .intervene(&redo, Some(&probe))
        .unwrap_err()
        .to_string();
    assert!(err.contains("crelu"), "{err}");
    let mut normed = agent_with(&MLP(), LAYER_NORM, UpdateMethods::default());
    let inject = MethodConfig {
        method: Method::PlasticityInjection,
        ..MethodConfig::default()
    };
    let err = normed.intervene(&inject, None).unwrap_err().to_string();
    assert!(err.contains("plain network"), "{err}");
    // FIRE on a LayerNorm network orthogonalises the weights and leaves the norms alone.
    let fire = normed.intervene(&MethodConfig::default(), None).unwrap();
    assert!(
        fire.iter()
            .all(|r| !r.name.contains("norm") || r.name.starts_with("q.head")),
        "{:?}",
        fire.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
}
