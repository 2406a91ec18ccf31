//! Regularisers added to the loss at every update: L2, regenerative L2 towards theta_0, and
//! Parseval regularisation. Each returns a differentiable 0-d tensor to add to a loss.
//!
//! | [`Regularizer`] | penalty                      | applies to              | default |
//! |-----------------|------------------------------|-------------------------|---------|
//! | `none`          | 0                            | nothing                 | 0       |
//! | `l2`            | `λ Σ ‖θ‖²`                   | weights, biases, norms  | 1e-2    |
//! | `l2-init`       | `λ Σ ‖θ − θ₀‖²`              | weights, biases, norms  | 1e-2    |
//! | `parseval`      | `λ Σ_W ‖W Wᵀ − s I‖²_F`, s=2 | conv and linear weights | 1e-3    |
//!
//! * **L2** is weight decay written into the loss (Kumar et al.'s "L2" baseline, the same form
//!   as L2 Init but towards the origin). Written on the loss, an adaptive optimiser rescales its
//!   gradient like any other: with Adam this is *not* AdamW's decoupled decay. PyTorch's coupled
//!   `Adam(weight_decay = w)` adds `w * theta` to the gradient, which is strength `w / 2` here
//!   (Plasticine's `l2n` scripts use `w = 1e-3`, i.e. strength 5e-4).
//! * **L2 Init** (Kumar, Marklund & Van Roy 2023, "Maintaining Plasticity in Continual Learning
//!   via Regenerative Regularization", section 3): `L_train + lambda ||theta - theta_0||_2^2`,
//!   theta the vector of *all* parameters and theta_0 their values at step 0. Two published
//!   implementations differ from the paper and are not followed: Plasticine's `rr` scripts add
//!   `0.01 * ||theta - theta_0||_2` (the norm, not its square), and Chung et al.'s code divides
//!   each tensor's squared distance by its element count.
//! * **Parseval** (Chung, Cherif, Meger & Precup 2024, "Parseval Regularization for Continual
//!   Reinforcement Learning", NeurIPS): `lambda ||W W^T - s I||_F^2` for each weight matrix `W`
//!   stored `d_out x d_in`, so the Gram matrix is `d_out x d_out` and the rows are pushed to be
//!   orthogonal with squared norm `s`. The authors' code (`wechu/parseval_reg`,
//!   `parseval_reg/agent.py`) sets `s = gain^2` of the orthogonal initialisation, `sqrt(2)^2 =
//!   2` by default, so that a freshly initialised layer has zero penalty; it regularises the
//!   hidden layers of the actor and the critic and neither output layer, nor any bias. Its
//!   strength is 1e-3 on gridworld and MetaWorld and 1e-4 on the CARL tasks
//!   (`parseval_reg/main.py`), multiplied by `(64 / width)^2` for a network of hidden width
//!   `width` ([`parseval_width_factor`]); Plasticine uses 1e-3 with `s = 1` on its one
//!   hidden linear layer.
//!
//! Which parameters are regularised is the caller's choice through a [`ParamSelector`]; within
//! it, [`Regularizer::applies_to`] says which roles each regulariser takes. The Parseval paper
//! leaves output layers alone, so a caller following it excludes the heads by name
//! (`ParamSelector::all().exclude("*.out.*")`). Tensors that do not require gradients (frozen
//! copies, running statistics) are skipped: a penalty on them would only add a constant.
//!
//! A conv kernel `c_out x c_in x kh x kw` is the matrix `c_out x (c_in kh kw)`, one row per
//! output channel: the layout PyTorch's `orthogonal_` initialiser and Parseval networks (Cisse
//! et al. 2017) use, in which an orthogonally initialised kernel has zero penalty as a linear
//! layer does. Its Gram matrix is the sum over kernel taps of the taps' Gram matrices, and is
//! computed that way from FIRE's per-tap view ([`as_matrices`]).
//!
//! ```
//! use fire::regularize::{penalty, Regularizer};
//! use fire::{ParamSelector, ParamSnapshot};
//! use tch::{nn, Device};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let _fc = nn::linear(vs.root() / "fc", 4, 3, Default::default());
//! let params = fire::params_of(&vs);
//! let theta_0 = ParamSnapshot::capture(&params);
//! let reg: Regularizer = "l2-init".parse().unwrap();
//! let p = penalty(reg, reg.default_strength(), &params, Some(&theta_0), &ParamSelector::all())
//!     .unwrap();
//! assert_eq!(p.dim(), 0);
//! assert_eq!(p.double_value(&[]), 0.0); // nothing has moved yet
//! ```

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::intervention::ParamSnapshot;
use crate::layer::{as_matrices, ParamRole};
use crate::select::ParamSelector;

/// A regulariser by name. Kebab-case in configs and on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regularizer {
    /// No penalty: the baseline.
    #[default]
    None,
    /// `lambda * sum ||theta||^2`: weight decay written into the loss.
    L2,
    /// `lambda * sum ||theta - theta_0||^2` (Kumar et al. 2023). Needs theta_0.
    L2Init,
    /// `lambda * sum_W ||W W^T - s I||_F^2` with `s` = [`PARSEVAL_SCALE`] (Chung et al. 2024).
    Parseval,
}

/// `s` of the Parseval penalty: the squared gain of the orthogonal initialisation in Chung et
/// al.'s code (`init_gain = sqrt(2)` unless set), so rows of norm `sqrt(2)`.
pub const PARSEVAL_SCALE: f64 = 2.0;

/// The hidden width Chung et al. tuned the Parseval strength for.
pub const PARSEVAL_REFERENCE_WIDTH: i64 = 64;

/// Chung et al.'s code multiplies the Parseval strength by `(64 / width)^2` for a network of
/// hidden width `width` (the strengths were tuned at width 64): 1 at 64, 1/64 at 512.
pub fn parseval_width_factor(width: i64) -> f64 {
    (PARSEVAL_REFERENCE_WIDTH as f64 / width as f64).powi(2)
}

impl Regularizer {
    /// Every regulariser, in the order the help lists them.
    pub const ALL: [Regularizer; 4] = [
        Regularizer::None,
        Regularizer::L2,
        Regularizer::L2Init,
        Regularizer::Parseval,
    ];

    /// The kebab-case name users type (`l2-init`).
    pub fn name(self) -> &'static str {
        match self {
            Regularizer::None => "none",
            Regularizer::L2 => "l2",
            Regularizer::L2Init => "l2-init",
            Regularizer::Parseval => "parseval",
        }
    }

    /// The strength (lambda) its paper recommends.
    ///
    /// * `l2`: 1e-2, Kumar et al. 2023, Tables 3 and 4 (the "L2" baseline with Adam: 1e-2 on
    ///   Permuted MNIST, Random Label MNIST and Random Label CIFAR, 1e-3 on 5+1 CIFAR and
    ///   Continual ImageNet, swept over {1e-2, ..., 1e-5}).
    /// * `l2-init`: 1e-2, Kumar et al. 2023, appendix A.2.5 ("a single value, lambda = 1e-2,
    ///   achieves the best performance across problems").
    /// * `parseval`: 1e-3, Chung et al. 2024's code for gridworld and MetaWorld at width 64
    ///   (1e-4 for CARL); scale it with [`parseval_width_factor`] for wider networks.
    /// * `none`: 0.
    pub fn default_strength(self) -> f64 {
        match self {
            Regularizer::None => 0.0,
            Regularizer::L2 => 1e-2,
            Regularizer::L2Init => 1e-2,
            Regularizer::Parseval => 1e-3,
        }
    }

    /// Whether it regularises parameters of this role. L2 and L2 Init take every parameter
    /// of a network (Kumar et al.'s theta): conv and linear weights, biases and normalisation
    /// parameters, but not [`ParamRole::Other`] (running statistics, counters, and scalars
    /// such as SAC's log temperature). Parseval takes conv and linear weights only.
    pub fn applies_to(self, role: ParamRole) -> bool {
        match self {
            Regularizer::None => false,
            Regularizer::L2 | Regularizer::L2Init => role != ParamRole::Other,
            Regularizer::Parseval => role.is_matrix(),
        }
    }

    /// Whether [`penalty`] needs theta_0.
    pub fn needs_initial(self) -> bool {
        self == Regularizer::L2Init
    }
}

impl std::fmt::Display for Regularizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Regularizer {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Regularizer::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| Error::InvalidConfig {
                what: "regularizer",
                reason: format!(
                    "unknown regularizer `{s}` (one of: {})",
                    Regularizer::ALL.map(Regularizer::name).join(", ")
                ),
            })
    }
}

/// `strength * ` the regulariser's sum over the selected parameters it applies to, as a
/// differentiable 0-d f32 tensor on the parameters' device, to add to a loss.
///
/// `initial` (theta_0, e.g. [`ParamSnapshot::capture`] of the freshly built network) is read
/// by [`Regularizer::L2Init`] only. A theta_0 on another device or in another dtype is
/// converted at every call; keep it beside the parameters.
///
/// Errors: a strength that is negative or not finite ([`Error::InvalidConfig`]); `l2-init`
/// without theta_0 ([`Error::InvalidConfig`]), or with a theta_0 lacking a regularised
/// parameter ([`Error::MissingParam`]) or holding it in another shape
/// ([`Error::ShapeMismatch`]).
pub fn penalty(
    reg: Regularizer,
    strength: f64,
    params: &[(String, Tensor)],
    initial: Option<&ParamSnapshot>,
    select: &ParamSelector,
) -> Result<Tensor> {
    if reg != Regularizer::None && !(strength.is_finite() && strength >= 0.0) {
        return Err(Error::InvalidConfig {
            what: "regularizer strength",
            reason: format!("must be a finite number >= 0, got {strength}"),
        });
    }
    let sum = match reg {
        Regularizer::None => return zero(params),
        Regularizer::L2 => l2_sum(params, select)?,
        Regularizer::L2Init => {
            let initial = initial.ok_or_else(|| Error::InvalidConfig {
                what: "regularizer",
                reason: "l2-init needs the initial parameters theta_0, and none were given".into(),
            })?;
            l2_init_sum(params, initial, select)?
        }
        Regularizer::Parseval => parseval_sum(params, select, PARSEVAL_SCALE)?,
    };
    Ok(sum.f_mul_scalar(strength)?)
}

/// `sum ||theta||^2` over the selected parameters [`Regularizer::L2`] applies to (0-d f32).
pub fn l2_sum(params: &[(String, Tensor)], select: &ParamSelector) -> Result<Tensor> {
    accumulate(params, select, Regularizer::L2, |_, t| {
        Ok(as_float(t)?.f_square()?.f_sum(Kind::Float)?)
    })
}

/// `sum ||theta - theta_0||^2` over the selected parameters [`Regularizer::L2Init`] applies
/// to (0-d f32). theta_0 is detached: no gradient flows into it.
pub fn l2_init_sum(
    params: &[(String, Tensor)],
    initial: &ParamSnapshot,
    select: &ParamSelector,
) -> Result<Tensor> {
    accumulate(params, select, Regularizer::L2Init, |name, t| {
        let t0 = initial.get(name, t, "theta_0")?;
        let t0 = if t0.device() == t.device() {
            t0.detach()
        } else {
            t0.f_to_device(t.device())?.detach()
        };
        Ok(as_float(t)?
            .f_sub(&as_float(&t0)?)?
            .f_square()?
            .f_sum(Kind::Float)?)
    })
}

/// `sum_W ||W W^T - s I||_F^2` over the selected conv and linear weights (0-d f32); a conv
/// kernel counts as its `c_out x (c_in kh kw)` matrix (see the module docs).
///
/// The minimum is 0 only when `d_out <= d_in` (`c_out <= c_in kh kw`): otherwise `W W^T` has
/// rank at most `d_in` and the penalty is at least `s^2 (d_out - d_in)`. Chung et al. apply it
/// so all the same (their first layer maps a 39-dimensional MetaWorld observation to 64 units).
pub fn parseval_sum(params: &[(String, Tensor)], select: &ParamSelector, s: f64) -> Result<Tensor> {
    accumulate(params, select, Regularizer::Parseval, |name, t| {
        let role = ParamRole::classify(name, &t.size());
        // [taps, d_out, d_in]; one tap for a linear weight.
        let m = as_matrices(role, &as_float(t)?)?;
        let gram =
            m.f_matmul(&m.f_mt()?)?
                .f_sum_dim_intlist([0i64].as_slice(), false, Kind::Float)?;
        let eye = Tensor::f_eye(gram.size()[0], (Kind::Float, gram.device()))?;
        Ok(gram
            .f_sub(&eye.f_mul_scalar(s)?)?
            .f_square()?
            .f_sum(Kind::Float)?)
    })
}

/// Sums `term(name, tensor)` over the parameters that are selected, of a role `reg` applies
/// to, and require gradients.
fn accumulate(
    params: &[(String, Tensor)],
    select: &ParamSelector,
    reg: Regularizer,
    mut term: impl FnMut(&str, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (name, t) in params {
        let shape = t.size();
        if !t.requires_grad()
            || !select.matches(name, &shape)
            || !reg.applies_to(ParamRole::classify(name, &shape))
        {
            continue;
        }
        let v = term(name, t)?;
        total = Some(match total {
            None => v,
            Some(acc) => acc.f_add(&v)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => zero(params),
    }
}

/// f32 (or f64) view of a tensor for the penalty; half-precision weights are promoted, so
/// that the squares do not overflow or round away.
fn as_float(t: &Tensor) -> Result<Tensor> {
    Ok(match t.kind() {
        Kind::Float | Kind::Double => t.shallow_clone(),
        _ => t.f_to_kind(Kind::Float)?,
    })
}

/// A 0-d f32 zero on the first parameter's device (the CPU when there are none).
fn zero(params: &[(String, Tensor)]) -> Result<Tensor> {
    let device = params.first().map_or(tch::Device::Cpu, |(_, t)| t.device());
    Ok(Tensor::f_zeros([], (Kind::Float, device))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(values: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values)
            .reshape(shape)
            .set_requires_grad(true)
    }

    fn value(t: &Tensor) -> f64 {
        assert_eq!(t.dim(), 0, "a penalty is a 0-d tensor");
        t.double_value(&[])
    }

    fn close(got: f64, want: f64) {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    fn grad_values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&t.grad().flatten(0, -1)).unwrap()
    }

    fn assert_grad(t: &Tensor, want: &[f32]) {
        let got = grad_values(t);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    /// fc.weight [[1, 2], [3, 4]], fc.bias [1, -1], a LayerNorm gain [2] and SAC's log_alpha.
    fn net() -> Vec<(String, Tensor)> {
        vec![
            ("fc.weight".into(), leaf(&[1.0, 2.0, 3.0, 4.0], &[2, 2])),
            ("fc.bias".into(), leaf(&[1.0, -1.0], &[2])),
            ("ln.weight".into(), leaf(&[2.0], &[1])),
            ("log_alpha".into(), leaf(&[5.0], &[1])),
        ]
    }

    #[test]
    fn names_parse_display_and_serialise() {
        for r in Regularizer::ALL {
            assert_eq!(r.to_string().parse::<Regularizer>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<Regularizer>(&json).unwrap(), r);
        }
        assert_eq!(Regularizer::default(), Regularizer::None);
        let err = "weight-decay".parse::<Regularizer>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regularizer: unknown regularizer `weight-decay` \
             (one of: none, l2, l2-init, parseval)"
        );
    }

    #[test]
    fn default_strengths_are_the_papers() {
        assert_eq!(Regularizer::None.default_strength(), 0.0);
        assert_eq!(Regularizer::L2.default_strength(), 1e-2);
        assert_eq!(Regularizer::L2Init.default_strength(), 1e-2);
        assert_eq!(Regularizer::Parseval.default_strength(), 1e-3);
        assert_eq!(parseval_width_factor(64), 1.0);
        assert_eq!(parseval_width_factor(512), 1.0 / 64.0);
    }

    #[test]
    fn l2_sums_weights_biases_and_norms_but_not_other() {
        // 1 + 4 + 9 + 16 (weight) + 1 + 1 (bias) + 4 (norm gain) = 36; log_alpha is Other.
        let params = net();
        let all = ParamSelector::all();
        let p = penalty(Regularizer::L2, 0.5, &params, None, &all).unwrap();
        close(value(&p), 18.0);
        // d/dW lambda ||W||^2 = 2 lambda W = W for lambda = 0.5.
        p.backward();
        assert_grad(&params[0].1, &[1.0, 2.0, 3.0, 4.0]);
        assert_grad(&params[1].1, &[1.0, -1.0]);
        assert!(
            !params[3].1.grad().defined(),
            "log_alpha is not regularised"
        );
        // A selector narrows it: the weight alone is 30.
        let weights = ParamSelector::all().with_roles(&[ParamRole::LinearWeight]);
        close(l2_sum(&params, &weights).unwrap().double_value(&[]), 30.0);
    }

    #[test]
    fn l2_init_matches_hand_computation_and_gradient() {
        let params = net();
        // theta_0: W0 = [[1, 0], [1, 1]], b0 = [0, 0], g0 = [1], log_alpha0 irrelevant.
        let theta_0 = ParamSnapshot::from_tensors(vec![
            (
                "fc.weight".into(),
                Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0]).reshape([2, 2]),
            ),
            ("fc.bias".into(), Tensor::from_slice(&[0.0f32, 0.0])),
            ("ln.weight".into(), Tensor::from_slice(&[1.0f32])),
        ]);
        // W - W0 = [[0, 2], [2, 3]] -> 0 + 4 + 4 + 9 = 17; b - b0 = [1, -1] -> 2;
        // g - g0 = [1] -> 1. Sum 20, times lambda = 0.01 -> 0.2.
        let p = penalty(
            Regularizer::L2Init,
            0.01,
            &params,
            Some(&theta_0),
            &ParamSelector::all(),
        )
        .unwrap();
        close(value(&p), 0.2);
        // d/dW lambda ||W - W0||^2 = 2 lambda (W - W0) = 0.02 [[0, 2], [2, 3]].
        p.backward();
        assert_grad(&params[0].1, &[0.0, 0.04, 0.04, 0.06]);
        assert_grad(&params[1].1, &[0.02, -0.02]);
        assert_grad(&params[2].1, &[0.02]);
    }

    #[test]
    fn l2_init_errors_are_typed() {
        let params = net();
        let all = ParamSelector::all();
        assert!(matches!(
            penalty(Regularizer::L2Init, 0.01, &params, None, &all),
            Err(Error::InvalidConfig { .. })
        ));
        let missing = ParamSnapshot::from_tensors(vec![(
            "fc.weight".into(),
            Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu)),
        )]);
        match penalty(Regularizer::L2Init, 0.01, &params, Some(&missing), &all) {
            Err(Error::MissingParam { name, .. }) => assert_eq!(name, "fc.bias"),
            other => panic!("{other:?}"),
        }
        let wrong = ParamSnapshot::from_tensors(vec![(
            "fc.weight".into(),
            Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu)),
        )]);
        match penalty(Regularizer::L2Init, 0.01, &params, Some(&wrong), &all) {
            Err(Error::ShapeMismatch {
                name,
                expected,
                actual,
                ..
            }) => {
                assert_eq!(name, "fc.weight");
                assert_eq!((expected, actual), (vec![2, 2], vec![2, 3]));
            }
            other => panic!("{other:?}"),
        }
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                penalty(Regularizer::L2, bad, &params, None, &all),
                Err(Error::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn parseval_of_a_wide_matrix_by_hand() {
        // W = [[1, 0, 1], [0, 1, 1]]: W W^T = [[2, 1], [1, 2]].
        // s = 2: W W^T - 2I = [[0, 1], [1, 0]] -> ||.||_F^2 = 2.
        // s = 1: W W^T - I = [[1, 1], [1, 1]] -> 4 (Plasticine's choice of s).
        let w = leaf(&[1.0, 0.0, 1.0, 0.0, 1.0, 1.0], &[2, 3]);
        let params = vec![("fc.weight".to_string(), w)];
        let all = ParamSelector::all();
        close(
            parseval_sum(&params, &all, 1.0).unwrap().double_value(&[]),
            4.0,
        );
        let p = penalty(Regularizer::Parseval, 1e-3, &params, None, &all).unwrap();
        close(value(&p), 2e-3);
        // d/dW ||W W^T - sI||^2 = 4 (W W^T - sI) W = 4 [[0, 1], [1, 0]] W
        //   = 4 [[0, 1, 1], [1, 0, 1]]; times lambda = 1e-3.
        p.backward();
        assert_grad(&params[0].1, &[0.0, 4e-3, 4e-3, 4e-3, 0.0, 4e-3]);
    }

    #[test]
    fn parseval_is_zero_at_an_orthogonal_init_with_gain_sqrt_2() {
        // sqrt(2) [[1, 0, 0], [0, 1, 0]]: W W^T = 2I.
        let r = 2f32.sqrt();
        let w = leaf(&[r, 0.0, 0.0, 0.0, r, 0.0], &[2, 3]);
        let params = vec![("fc.weight".to_string(), w)];
        let p = penalty(
            Regularizer::Parseval,
            1.0,
            &params,
            None,
            &ParamSelector::all(),
        )
        .unwrap();
        assert!(value(&p) < 1e-10, "{}", value(&p));
    }

    #[test]
    fn parseval_of_a_tall_matrix_cannot_reach_zero() {
        // W = [[1, 0], [0, 1], [0, 0]]: W W^T = diag(1, 1, 0); minus 2I: diag(-1, -1, -2)
        // -> 1 + 1 + 4 = 6 (at best s^2 (d_out - d_in) = 4).
        let w = leaf(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[3, 2]);
        let params = vec![("fc.weight".to_string(), w)];
        let sum = parseval_sum(&params, &ParamSelector::all(), PARSEVAL_SCALE).unwrap();
        close(sum.double_value(&[]), 6.0);
    }

    #[test]
    fn parseval_of_a_conv_kernel_is_that_of_its_flattened_rows() {
        // c_out = 2, c_in = 1, 1 x 2 kernel: rows [1, 2] and [3, 4].
        // W W^T = [[5, 11], [11, 25]] (= taps [1; 3] and [2; 4]: [[1, 3], [3, 9]] +
        // [[4, 8], [8, 16]]); minus 2I: [[3, 11], [11, 23]] -> 9 + 121 + 121 + 529 = 780.
        let k = leaf(&[1.0, 2.0, 3.0, 4.0], &[2, 1, 1, 2]);
        let params = vec![("conv.weight".to_string(), k)];
        let all = ParamSelector::all();
        close(
            parseval_sum(&params, &all, PARSEVAL_SCALE)
                .unwrap()
                .double_value(&[]),
            780.0,
        );
        // The same as the 2 x 2 linear weight [[1, 2], [3, 4]], gradient included.
        let w = leaf(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let lin = vec![("fc.weight".to_string(), w)];
        parseval_sum(&params, &all, 2.0).unwrap().backward();
        parseval_sum(&lin, &all, 2.0).unwrap().backward();
        assert_eq!(grad_values(&params[0].1), grad_values(&lin[0].1));
    }

    #[test]
    fn parseval_skips_biases_norms_and_frozen_weights() {
        let mut params = net();
        params.push((
            "frozen.weight".into(),
            Tensor::from_slice(&[7.0f32, 7.0, 7.0, 7.0]).reshape([2, 2]),
        ));
        // Only fc.weight: W W^T = [[5, 11], [11, 25]] - 2I -> 780 (as above).
        let p = parseval_sum(&params, &ParamSelector::all(), 2.0).unwrap();
        close(p.double_value(&[]), 780.0);
        let heads_excluded = ParamSelector::all().exclude("fc.*").unwrap();
        let p = penalty(Regularizer::Parseval, 1.0, &params, None, &heads_excluded).unwrap();
        assert_eq!(value(&p), 0.0);
    }

    #[test]
    fn none_is_a_zero_scalar_whatever_the_strength() {
        let params = net();
        let p = penalty(
            Regularizer::None,
            f64::NAN,
            &params,
            None,
            &ParamSelector::all(),
        )
        .unwrap();
        assert_eq!(value(&p), 0.0);
        let empty = penalty(Regularizer::L2, 1.0, &[], None, &ParamSelector::all()).unwrap();
        assert_eq!(value(&empty), 0.0);
    }
}
