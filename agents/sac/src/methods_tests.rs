//! The plasticity methods in SAC's networks and update: CReLU and LayerNorm in the MLP actor
//! and critics, the regulariser's logged penalty, normalize-and-project's norms per critic
//! member, layer reset of the output layers, and the combinations refused.

use agent::{Activation, Agent, NetworkOptions, UpdateMethods};
use fire::{Method, MethodConfig, Regularizer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use crate::testutil::{batch, with, ACT, OBS};
use crate::{member_views, Architecture, Sac, SacConfig};

fn mlp() -> Architecture {
    Architecture::Mlp { hidden: vec![8, 6] }
}

fn sac(network: NetworkOptions, methods: UpdateMethods) -> Sac {
    let config = SacConfig {
        network,
        methods,
        ..SacConfig::cleanrl()
    };
    with(&mlp(), config, 1)
}

fn shape(sac: &Sac, name: &str) -> Vec<i64> {
    let all = sac.params();
    let (_, t) = all
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name}"));
    t.size()
}

fn value(sac: &Sac, name: &str) -> Tensor {
    let all = sac.params();
    let (_, t) = all.iter().find(|(n, _)| n == name).unwrap();
    t.detach().copy()
}

fn updates(sac: &mut Sac, n: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..n {
        sac.update(&batch(&mut rng, 16)).unwrap();
    }
}

#[test]
fn crelu_and_layer_norm_shape_the_mlp_actor_and_critics() {
    let net = NetworkOptions {
        activation: Activation::Crelu,
        layer_norm: true,
    };
    let s = sac(net, UpdateMethods::default());
    assert_eq!(shape(&s, "actor.fc2.weight"), vec![6, 16]);
    assert_eq!(shape(&s, "actor.mean.weight"), vec![ACT as i64, 12]);
    assert_eq!(shape(&s, "actor.norm1.weight"), vec![8]);
    // Critics: obs + action in, one LayerNorm scale per member.
    assert_eq!(shape(&s, "critic.fc1.weight"), vec![2, 8, OBS + ACT as i64]);
    assert_eq!(shape(&s, "critic.fc2.weight"), vec![2, 6, 16]);
    assert_eq!(shape(&s, "critic.norm2.weight"), vec![2, 6]);
    assert_eq!(shape(&s, "critic.out.weight"), vec![2, 1, 12]);
    let mut s = s;
    updates(&mut s, 2);
    assert!(s
        .take_stats(agent::ActMode::Evaluate)
        .unwrap()
        .iter()
        .all(|(_, v)| v.is_finite()));
}

#[test]
fn the_regularised_update_logs_the_penalty() {
    let l2 = UpdateMethods {
        regularizer: Regularizer::L2,
        regularizer_strength: 1e-2,
        normalize_project: false,
    };
    let mut s = sac(NetworkOptions::default(), l2);
    updates(&mut s, 2);
    let stats = s.take_stats(agent::ActMode::Evaluate).unwrap();
    let (_, penalty) = stats
        .iter()
        .find(|(n, _)| *n == "losses/regularizer")
        .unwrap();
    // 1e-2 * ||theta||^2 of two small networks: positive and finite.
    assert!(penalty.is_finite() && *penalty > 0.0, "{penalty}");
    let mut plain = sac(NetworkOptions::default(), UpdateMethods::default());
    updates(&mut plain, 1);
    let stats = plain.take_stats(agent::ActMode::Evaluate).unwrap();
    assert!(!stats.iter().any(|(n, _)| *n == "losses/regularizer"));
}

#[test]
fn normalize_and_project_holds_each_critic_members_norm() {
    let nap = UpdateMethods {
        normalize_project: true,
        ..UpdateMethods::default()
    };
    let net = NetworkOptions {
        activation: Activation::Relu,
        layer_norm: true,
    };
    let mut s = sac(net, nap);
    let norms = |s: &Sac| -> Vec<(String, f64)> {
        member_views(&s.params())
            .into_iter()
            .filter(|(n, t)| n.ends_with(".weight") && t.dim() == 2)
            .map(|(n, t)| (n, t.norm().double_value(&[])))
            .collect()
    };
    let before = norms(&s);
    assert!(before.iter().any(|(n, _)| n == "critic.q2.fc1.weight"));
    updates(&mut s, 5);
    for ((n, b), (_, a)) in before.iter().zip(norms(&s)) {
        assert!((a - b).abs() < 1e-4 * b, "{n}: {a} vs {b}");
    }
}

#[test]
fn layer_reset_resets_the_output_layers_and_restarts_the_optimisation() {
    let mut s = sac(NetworkOptions::default(), UpdateMethods::default());
    let heads_0 = value(&s, "critic.out.weight");
    updates(&mut s, 3);
    let body = value(&s, "critic.fc1.weight");
    let cfg = MethodConfig {
        method: Method::LayerReset,
        ..MethodConfig::default()
    };
    let reports = s.intervene(&cfg, None).unwrap();
    let mut names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "actor.log_std.bias",
            "actor.log_std.weight",
            "actor.mean.bias",
            "actor.mean.weight",
            "critic.out.bias",
            "critic.out.weight"
        ]
    );
    assert!(value(&s, "critic.out.weight").equal(&heads_0));
    assert!(value(&s, "critic.fc1.weight").equal(&body));
    assert_eq!(
        s.temperature().unwrap(),
        1.0,
        "the temperature restarts (CleanRL's 1)"
    );
}

#[test]
fn reset_layers_matching_nothing_and_redo_with_crelu_are_refused() {
    let config = SacConfig {
        reset_layers: vec!["critic.head9.*".into()],
        ..SacConfig::cleanrl()
    };
    tch::manual_seed(1);
    let err = Sac::new(
        &mlp(),
        OBS,
        &[-1.0; ACT],
        &[1.0; ACT],
        config,
        tch::Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("reset_layers") && err.contains("critic.head9.*"),
        "{err}"
    );
    let crelu = NetworkOptions {
        activation: Activation::Crelu,
        layer_norm: false,
    };
    let mut s = sac(crelu, UpdateMethods::default());
    let probe = Tensor::ones([4, OBS], (tch::Kind::Float, tch::Device::Cpu));
    let redo = MethodConfig {
        method: Method::Redo,
        ..MethodConfig::default()
    };
    let err = s.intervene(&redo, Some(&probe)).unwrap_err().to_string();
    assert!(err.contains("crelu"), "{err}");
}
