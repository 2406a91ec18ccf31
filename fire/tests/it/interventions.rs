//! Interventions on a VarStore-backed network.

use fire::redo::{redo, RedoLayer};
use fire::{
    isometry_dfi, params_of, Action, Error, Intervention, Orthogonalizer, ParamRole, ParamSelector,
    ParamSnapshot, ShrinkPerturb, Sources,
};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::util::{distance, polar};

/// A small Nature-CNN-shaped network with role-named paths.
fn network(seed: i64) -> nn::VarStore {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = vs.root() / "q" / "encoder";
    let head = vs.root() / "q" / "head";
    let conv = |stride| nn::ConvConfig {
        stride,
        ..Default::default()
    };
    let _ = nn::conv2d(&enc / "conv1", 4, 8, 8, conv(4));
    let _ = nn::conv2d(&enc / "conv2", 8, 16, 4, conv(2));
    let _ = nn::conv2d(&enc / "conv3", 16, 16, 3, conv(1));
    let _ = nn::linear(&head / "fc1", 16 * 7 * 7, 32, Default::default());
    let _ = nn::linear(&head / "fc2", 32, 6, Default::default());
    vs
}

fn perturb(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut t) in params_of(vs) {
            let _ = t.g_add_(&(t.randn_like() * 0.3));
        }
    });
}

fn get(vs: &nn::VarStore, name: &str) -> Tensor {
    vs.variables()[name].detach().copy()
}

#[test]
fn fire_on_convs_orthogonalises_each_tap_with_the_papers_scale() {
    let vs = network(1);
    perturb(&vs);
    let before = get(&vs, "q.encoder.conv2.weight");
    let convs = ParamSelector::all().with_roles(&[ParamRole::ConvWeight]);
    let reports = Intervention::Fire(Orthogonalizer::Exact)
        .apply(&params_of(&vs), &convs, Sources::default())
        .unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.action == Action::Orthogonalized));

    let after = get(&vs, "q.encoder.conv2.weight"); // [16, 8, 4, 4]
    let scale = (16.0f64 / 8.0).sqrt() / 16.0;
    for i in 0..4 {
        for j in 0..4 {
            let tap = after.select(2, i).select(2, j);
            let want = polar(&before.select(2, i).select(2, j)) * scale;
            assert!(distance(&tap, &want) < 1e-4, "tap ({i},{j})");
        }
    }
    let report = reports
        .iter()
        .find(|r| r.name == "q.encoder.conv2.weight")
        .unwrap();
    assert!(report.dfi_after.unwrap() < 1e-6);
    assert!(report.dfi_before.unwrap() > 1.0);
    assert!(
        (isometry_dfi(ParamRole::ConvWeight, &after).unwrap() - report.dfi_after.unwrap()).abs()
            < 1e-5
    );
    let sfe = distance(&before, &after).powi(2);
    assert!((report.sfe - sfe).abs() < 1e-4 * sfe);
    assert!(
        (report.normalized_sfe - sfe / before.square().sum(Kind::Double).double_value(&[])).abs()
            < 1e-6
    );
    // Biases and the head are untouched.
    assert!(report.seconds >= 0.0);
}

#[test]
fn fire_reference_matches_the_per_tap_loop_of_the_paper() {
    let vs = network(2);
    let before = get(&vs, "q.encoder.conv1.weight"); // [8, 4, 8, 8]
    let bias_before = get(&vs, "q.encoder.conv1.bias");
    Intervention::Fire(Orthogonalizer::default())
        .apply(
            &params_of(&vs),
            &ParamSelector::all().include("q.encoder.conv1.*").unwrap(),
            Sources::default(),
        )
        .unwrap();
    let after = get(&vs, "q.encoder.conv1.weight");
    let scale = (8.0f64 / 4.0).sqrt() / 64.0;
    for (i, j) in [(0, 0), (3, 5), (7, 7)] {
        let tap = before.select(2, i).select(2, j).unsqueeze(0);
        let want = fire::orthogonalize::newton_schulz(&tap, 10)
            .unwrap()
            .squeeze_dim(0)
            * scale;
        assert!(
            distance(&after.select(2, i).select(2, j), &want) < 1e-6,
            "tap ({i},{j})"
        );
    }
    assert!(get(&vs, "q.encoder.conv1.bias").equal(&bias_before));
}

#[test]
fn dqn_fire_semantics_convs_orthogonalised_head_reset() {
    let vs = network(3);
    let initial = ParamSnapshot::capture(&params_of(&vs));
    perturb(&vs);
    let conv_bias = get(&vs, "q.encoder.conv3.bias");
    let params = params_of(&vs);
    let sources = Sources {
        initial: Some(&initial),
        fresh: None,
    };
    let convs = ParamSelector::all()
        .include("q.encoder.*")
        .unwrap()
        .with_roles(&[ParamRole::ConvWeight]);
    let head = ParamSelector::all().include("q.head.*").unwrap();
    let fired = Intervention::Fire(Orthogonalizer::default())
        .apply(&params, &convs, sources)
        .unwrap();
    let reset = Intervention::Reset.apply(&params, &head, sources).unwrap();
    assert_eq!(fired.len(), 3);
    assert_eq!(reset.len(), 4); // fc1 and fc2, weights and biases
    assert!(
        get(&vs, "q.encoder.conv3.bias").equal(&conv_bias),
        "conv biases kept"
    );
    let init_fc1 = initial
        .get("q.head.fc1.weight", &get(&vs, "q.head.fc1.weight"), "t")
        .unwrap();
    assert!(get(&vs, "q.head.fc1.weight").equal(init_fc1));
}

#[test]
fn full_reset_restores_theta_0_bit_for_bit() {
    let vs = network(4);
    let initial = ParamSnapshot::capture(&params_of(&vs));
    let originals: Vec<(String, Tensor)> = params_of(&vs)
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    perturb(&vs);
    let reports = Intervention::Reset
        .apply(
            &params_of(&vs),
            &ParamSelector::all(),
            Sources {
                initial: Some(&initial),
                fresh: None,
            },
        )
        .unwrap();
    assert_eq!(reports.len(), originals.len());
    for (name, original) in originals {
        assert!(
            get(&vs, &name).equal(&original),
            "{name} not restored exactly"
        );
    }
    for r in reports.iter().filter(|r| r.role.is_matrix()) {
        assert!(r.sfe > 0.0 && r.dfi_after.is_some());
    }
}

#[test]
fn shrink_perturb_both_forms_follow_their_formulas() {
    let vs = network(5);
    let initial = ParamSnapshot::capture(&params_of(&vs));
    perturb(&vs);
    let fresh_vs = network(6);
    let fresh = ParamSnapshot::capture(&params_of(&fresh_vs));
    let name = "q.head.fc2.weight";
    let theta = get(&vs, name);
    let theta0 = get(&fresh_vs, name); // used below for the noise form
    let init = initial.get(name, &theta, "t").unwrap().copy();

    let sel = ParamSelector::all().include(name).unwrap();
    let sources = Sources {
        initial: Some(&initial),
        fresh: Some(&fresh),
    };
    Intervention::ShrinkPerturb(ShrinkPerturb::PAPER)
        .apply(&params_of(&vs), &sel, sources)
        .unwrap();
    let want = &theta * 0.2 + &init * 0.8;
    assert!(distance(&get(&vs, name), &want) < 1e-6);

    let now = get(&vs, name);
    Intervention::ShrinkPerturb(ShrinkPerturb::Noise {
        shrink: 0.5,
        sigma: 0.1,
    })
    .apply(&params_of(&vs), &sel, sources)
    .unwrap();
    let want = &now * 0.5 + &theta0 * 0.1;
    assert!(distance(&get(&vs, name), &want) < 1e-6);
}

#[test]
fn bad_configurations_and_missing_sources_are_errors_that_change_nothing() {
    let vs = network(7);
    let snapshot: Vec<Tensor> = params_of(&vs).into_iter().map(|(_, t)| t.copy()).collect();
    let params = params_of(&vs);
    let all = ParamSelector::all();
    assert!(matches!(
        Intervention::Reset.apply(&params, &all, Sources::default()),
        Err(Error::InvalidConfig { .. })
    ));
    let initial = ParamSnapshot::capture(&params);
    let bad_shrink = Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit { shrink: 1.5 });
    assert!(bad_shrink
        .apply(
            &params,
            &all,
            Sources {
                initial: Some(&initial),
                fresh: None
            }
        )
        .is_err());
    // A snapshot of a different network: shape mismatch, reported by name.
    let other = nn::VarStore::new(Device::Cpu);
    let _ = nn::linear(
        other.root() / "q" / "head" / "fc2",
        3,
        6,
        Default::default(),
    );
    let wrong = ParamSnapshot::capture(&params_of(&other));
    let err = Intervention::Reset
        .apply(
            &params,
            &ParamSelector::all().include("q.head.fc2.*").unwrap(),
            Sources {
                initial: Some(&wrong),
                fresh: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("q.head.fc2"), "{err}");
    // A NaN weight makes FIRE fail before anything is written.
    tch::no_grad(|| {
        let _ = vs.variables()["q.head.fc1.weight"]
            .get(0)
            .get(0)
            .fill_(f64::NAN);
    });
    let nan_state: Vec<Tensor> = params_of(&vs).into_iter().map(|(_, t)| t.copy()).collect();
    let err = Intervention::Fire(Orthogonalizer::default())
        .apply(&params_of(&vs), &all, Sources::default())
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    for ((_, now), before) in params_of(&vs).into_iter().zip(&nan_state) {
        assert!(now
            .to_kind(Kind::Double)
            .nan_to_num(0.0, None, None)
            .equal(&before.to_kind(Kind::Double).nan_to_num(0.0, None, None)));
    }
    assert_eq!(snapshot.len(), nan_state.len());
}

#[test]
fn redo_recycles_dead_neurons_without_changing_the_output() {
    tch::manual_seed(8);
    let vs = nn::VarStore::new(Device::Cpu);
    let fc1 = nn::linear(vs.root() / "fc1", 5, 8, Default::default());
    let fc2 = nn::linear(vs.root() / "fc2", 8, 3, Default::default());
    // Kill neurons 2 and 6: zero incoming weights and a negative bias keep them at 0 after ReLU.
    tch::no_grad(|| {
        for n in [2, 6] {
            let _ = fc1.ws.get(n).fill_(0.0);
            let _ = fc1.bs.as_ref().unwrap().get(n).fill_(-1.0);
        }
    });
    let x = Tensor::randn([64, 5], (Kind::Float, Device::Cpu));
    let hidden = fc1.forward(&x).relu();
    let out_before = fc2.forward(&hidden);
    let fresh_vs = nn::VarStore::new(Device::Cpu);
    let _ = nn::linear(fresh_vs.root() / "fc1", 5, 8, Default::default());
    let fresh = ParamSnapshot::capture(&params_of(&fresh_vs));
    let b1 = fc1.bs.as_ref().unwrap();
    let layer = RedoLayer {
        incoming_weight: ("fc1.weight", &fc1.ws),
        incoming_bias: Some(("fc1.bias", b1)),
        outgoing_weight: ("fc2.weight", &fc2.ws),
        activations: &hidden,
    };
    let recycled = redo(&[layer], 0.0, &fresh).unwrap();
    assert_eq!(recycled[0].neurons, vec![2, 6]);
    let fresh_w = fresh.get("fc1.weight", &fc1.ws, "t").unwrap();
    assert!(fc1.ws.get(2).equal(&fresh_w.get(2)));
    assert_eq!(b1.get(6).double_value(&[]), 0.0);
    assert_eq!(
        fc2.ws.select(1, 6).abs().sum(Kind::Float).double_value(&[]),
        0.0
    );
    let out_after = fc2.forward(&fc1.forward(&x).relu());
    assert!(distance(&out_before, &out_after) < 1e-5, "output changed");
}

#[test]
fn fire_reports_the_dfi_of_the_weight_as_stored_in_its_dtype() {
    // The factor is computed in f32; a bf16 parameter stores it with 8 significant bits.
    tch::manual_seed(31);
    let w = Tensor::randn([32, 32], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
    let params = vec![("fc.weight".to_owned(), w)];
    let reports = Intervention::Fire(Orthogonalizer::Exact)
        .apply(&params, &ParamSelector::all(), Sources::default())
        .unwrap();
    let stored = isometry_dfi(ParamRole::LinearWeight, &params[0].1).unwrap();
    let reported = reports[0].dfi_after.unwrap();
    assert!(stored > 1e-6, "bf16 rounding should show: {stored}");
    assert!(
        (reported - stored).abs() <= 1e-9 * stored,
        "{reported} vs {stored}"
    );
}
