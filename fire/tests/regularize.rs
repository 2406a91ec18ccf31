//! The regularisers and the Plasticine diagnostics on a real `VarStore` network, through
//! gradient steps.

use fire::metrics::{grad_norm, weight_distance};
use fire::regularize::{parseval_sum, penalty, Regularizer, PARSEVAL_SCALE};
use fire::{params_of, ParamSelector, ParamSnapshot};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

fn net(vs: &nn::VarStore) -> impl Module {
    let root = vs.root();
    nn::seq()
        .add(nn::conv2d(&root / "conv", 2, 4, 3, Default::default()))
        .add_fn(|x| x.relu().flatten(1, -1))
        .add(nn::linear(&root / "fc", 4 * 3 * 3, 8, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "out", 8, 2, Default::default()))
}

/// One plain gradient step `theta <- theta - lr * grad` on the penalty alone.
fn sgd_step(params: &[(String, Tensor)], loss: &Tensor, lr: f64) {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    loss.backward();
    tch::no_grad(|| {
        for (_, p) in params {
            let g = p.grad();
            if g.defined() {
                let mut p = p.shallow_clone();
                let _ = p.f_sub_(&(g * lr)).unwrap();
            }
        }
    });
}

#[test]
fn l2_init_shrinks_the_distance_to_theta_0_by_one_minus_two_lr_lambda() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = net(&vs);
    let params = params_of(&vs);
    let theta_0 = ParamSnapshot::capture(&params);
    // Move every parameter away from theta_0 by a unit-variance step.
    tch::no_grad(|| {
        for (_, p) in &params {
            let mut p = p.shallow_clone();
            let _ = p.f_add_(&p.randn_like()).unwrap();
        }
    });
    let before = weight_distance(&params, &theta_0).unwrap();
    // SGD on lambda ||theta - theta_0||^2: theta - theta_0 shrinks by (1 - 2 lr lambda) = 0.9.
    let (lr, lambda) = (0.5, 0.1);
    let all = ParamSelector::all();
    let p = penalty(Regularizer::L2Init, lambda, &params, Some(&theta_0), &all).unwrap();
    // The penalty is lambda times the squared distance the diagnostic reports.
    let want = lambda * before.total.powi(2);
    assert!(
        (p.double_value(&[]) - want).abs() < 1e-4 * want,
        "{p:?} vs {want}"
    );
    sgd_step(&params, &p, lr);
    // Its gradient 2 lambda (theta - theta_0) has norm 2 lambda ||theta - theta_0||.
    let g = grad_norm(&params).unwrap();
    assert!((g - 2.0 * lambda * before.total).abs() < 1e-4 * g, "{g}");
    let after = weight_distance(&params, &theta_0).unwrap();
    assert!(
        (after.total - 0.9 * before.total).abs() < 1e-4 * before.total,
        "{} vs {}",
        after.total,
        before.total
    );
    for ((name, b), (_, a)) in before.per_param.iter().zip(&after.per_param) {
        assert!(
            (a - 0.9 * b).abs() < 1e-4 * b.max(1e-6),
            "{name}: {a} vs {b}"
        );
    }
    // The network still runs, and its output does not feed the penalty.
    let y = model.forward(&Tensor::zeros([1, 2, 5, 5], (Kind::Float, Device::Cpu)));
    assert_eq!(y.size(), vec![1, 2]);
}

#[test]
fn parseval_descent_drives_hidden_layers_towards_scaled_orthogonal_rows() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = net(&vs);
    let params = params_of(&vs);
    // The paper leaves the output layer alone: exclude the head by name.
    let hidden = ParamSelector::all().exclude("out.*").unwrap();
    let start = parseval_sum(&params, &hidden, PARSEVAL_SCALE)
        .unwrap()
        .double_value(&[]);
    let out_before = params
        .iter()
        .find(|(n, _)| n == "out.weight")
        .unwrap()
        .1
        .copy();
    for _ in 0..300 {
        let p = penalty(Regularizer::Parseval, 1.0, &params, None, &hidden).unwrap();
        sgd_step(&params, &p, 0.01);
    }
    let end = parseval_sum(&params, &hidden, PARSEVAL_SCALE)
        .unwrap()
        .double_value(&[]);
    assert!(end < 1e-3 * start, "{start} -> {end}");
    // Rows of the 8 x 36 fc weight now have squared norm ~2 and are mutually orthogonal.
    let fc = &params.iter().find(|(n, _)| n == "fc.weight").unwrap().1;
    let gram = fc.matmul(&fc.transpose(0, 1));
    let eye2 = Tensor::eye(8, (Kind::Float, Device::Cpu)) * 2.0;
    let dev = (gram - eye2).abs().max().double_value(&[]);
    assert!(dev < 1e-2, "{dev}");
    // The head and every bias had no gradient from the penalty and did not move.
    let out_after = &params.iter().find(|(n, _)| n == "out.weight").unwrap().1;
    assert!(out_after.equal(&out_before));
    for (name, p) in &params {
        if name.ends_with("bias") {
            assert!(!p.grad().defined() || p.grad().abs().max().double_value(&[]) == 0.0);
        }
    }
}
