//! Plasticity diagnostics (FIRE.md section 5): dormant neurons, feature ranks, norms, and the
//! ones Plasticine (RLE-Foundation/Plasticine, `plasticine_metrics/`) logs besides: the
//! fraction of active units, the distance from initialisation and the global gradient norm.
//!
//! DfI and SFE live in [`crate::orthogonalize`](mod@crate::orthogonalize) (and per layer in
//! [`crate::layer`]).

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::intervention::ParamSnapshot;
use crate::orthogonalize::{frobenius_norm, sfe};

/// ReDo scores `s_i = E|h_i| / mean_k E|h_k|` of a layer's activations: `[B, d]` gives `[d]`;
/// conv activations `[B, c, h, w]` average over batch and space and give `[c]`.
/// A layer whose activations are all zero scores 0 everywhere (every neuron dormant).
pub fn neuron_scores(activations: &Tensor) -> Result<Tensor> {
    tch::no_grad(|| {
        let a = activations.to_kind(Kind::Float).f_abs()?;
        let per_neuron = match a.dim() {
            2 => a.f_mean_dim([0i64].as_slice(), false, Kind::Float)?,
            4 => a.f_mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float)?,
            _ => {
                return Err(Error::Shape {
                    op: "neuron_scores",
                    expected: "[batch, features] or [batch, channels, h, w] activations",
                    shape: a.size(),
                })
            }
        };
        let mean = per_neuron.f_mean(Kind::Float)?;
        let mean = mean.f_clamp_min(f32::MIN_POSITIVE as f64)?;
        Ok(per_neuron.f_div(&mean)?)
    })
}

/// Dormant neurons of a set of layers at threshold `tau`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dormant {
    /// Neurons with score `<= tau`.
    pub dormant: i64,
    /// All neurons considered.
    pub total: i64,
}

impl Dormant {
    /// `dormant / total` (0 for no neurons).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.dormant as f64 / self.total as f64
        }
    }
}

/// Counts tau-dormant neurons over layers (FIRE.md uses tau = 0.1 and tau = 0).
pub fn dormant(layers: &[&Tensor], tau: f64) -> Result<Dormant> {
    let mut acc = Dormant {
        dormant: 0,
        total: 0,
    };
    for act in layers {
        let s = neuron_scores(act)?;
        acc.dormant += s.f_le(tau)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        acc.total += s.size()[0];
    }
    Ok(acc)
}

/// Singular values of a feature matrix `[B, d]`, descending, in f64.
pub fn singular_values(features: &Tensor) -> Result<Vec<f64>> {
    if features.dim() != 2 {
        return Err(Error::Shape {
            op: "singular_values",
            expected: "[batch, features] matrix",
            shape: features.size(),
        });
    }
    tch::no_grad(|| {
        let f = features
            .to_kind(Kind::Double)
            .f_to_device(tch::Device::Cpu)?;
        let (_, s, _) = f.f_svd(true, false)?;
        Ok(Vec::<f64>::try_from(&s)?)
    })
}

/// Effective rank `exp(-sum p_i log p_i)` with `p_i = s_i / sum s` (Roy & Vetterli).
/// 0 for an all-zero feature matrix.
pub fn effective_rank(features: &Tensor) -> Result<f64> {
    let s = singular_values(features)?;
    let total: f64 = s.iter().sum();
    if total <= 0.0 {
        return Ok(0.0);
    }
    let entropy: f64 = s
        .iter()
        .map(|&v| v / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    Ok(entropy.exp())
}

/// srank: the smallest k with `sum_{i<=k} s_i >= (1 - delta) sum s` (Kumar et al.; delta 0.01).
pub fn srank(features: &Tensor, delta: f64) -> Result<usize> {
    let s = singular_values(features)?;
    let total: f64 = s.iter().sum();
    if total <= 0.0 {
        return Ok(0);
    }
    let target = (1.0 - delta) * total;
    let mut running = 0.0;
    for (i, v) in s.iter().enumerate() {
        running += v;
        // A relative slack keeps an exact rank from reading one too high through round-off.
        if running >= target * (1.0 - 1e-12) {
            return Ok(i + 1);
        }
    }
    Ok(s.len())
}

/// Mean L2 norm of the feature vectors `E||phi||` of a `[B, d]` batch.
pub fn feature_norm(features: &Tensor) -> Result<f64> {
    tch::no_grad(|| {
        Ok(features
            .to_kind(Kind::Float)
            .f_square()?
            .f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?
            .f_sqrt()?
            .f_mean(Kind::Double)?
            .f_double_value(&[])?)
    })
}

/// Norms of one parameter and its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamNorms {
    /// Parameter name.
    pub name: String,
    /// `||theta||_2`.
    pub weight_norm: f64,
    /// `||g||_2` (0 when the parameter has no gradient yet).
    pub grad_norm: f64,
}

impl ParamNorms {
    /// Effective learning rate proxy `||g|| / ||theta||` (0 for a zero weight).
    pub fn effective_lr(&self) -> f64 {
        if self.weight_norm > 0.0 {
            self.grad_norm / self.weight_norm
        } else {
            0.0
        }
    }
}

/// Weight and gradient norms of each parameter.
pub fn param_norms(params: &[(String, Tensor)]) -> Result<Vec<ParamNorms>> {
    tch::no_grad(|| {
        params
            .iter()
            .map(|(name, t)| {
                let weight_norm = l2(t)?;
                let grad = t.grad();
                let grad_norm = if grad.defined() { l2(&grad)? } else { 0.0 };
                Ok(ParamNorms {
                    name: name.clone(),
                    weight_norm,
                    grad_norm,
                })
            })
            .collect()
    })
}

/// Fraction of active units: the share of the entries of a layer's activations, over the
/// batch and every unit (and every position of a conv map), that are `> 0`.
///
/// Plasticine's `compute_active_units(features, "relu")` (`plasticine_metrics/units.py`) is
/// `1 - mean(features == 0)` on a `[batch, features]` matrix of post-ReLU features, the same
/// number for ReLU and CReLU outputs, which are never negative. It counts (sample, unit)
/// pairs, not units: a unit active on half the batch adds half a unit. (Plasticine's tanh and
/// sigmoid variants count non-saturated entries instead; they are not provided here.) Takes
/// `[B, d]` or `[B, c, h, w]`; 0 for an empty batch. Its complement at the level of units,
/// units never active on the batch, is [`dormant`] with `tau = 0`.
pub fn active_fraction(activations: &Tensor) -> Result<f64> {
    if !matches!(activations.dim(), 2 | 4) {
        return Err(Error::Shape {
            op: "active_fraction",
            expected: "[batch, features] or [batch, channels, h, w] activations",
            shape: activations.size(),
        });
    }
    let n = activations.numel();
    if n == 0 {
        return Ok(0.0);
    }
    tch::no_grad(|| {
        let active = activations
            .f_gt(0.0)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        Ok(active as f64 / n as f64)
    })
}

/// How far parameters are from a reference, usually theta_0.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightDistance {
    /// `||theta - theta_0||_2` over all the parameters, as one vector.
    pub total: f64,
    /// `total / sqrt(numel)`: the root-mean-square distance per entry, Plasticine's
    /// `compute_l2_norm_difference`.
    pub rms: f64,
    /// Entries compared.
    pub numel: i64,
    /// `||theta_p - theta_0,p||_2` of each parameter, in the order given.
    pub per_param: Vec<(String, f64)>,
}

/// Distance of each parameter, and of all of them together, from `reference`.
///
/// Plasticine's `compute_l2_norm_difference(model, state)` (`plasticine_metrics/norm.py`) is
/// `sqrt(sum_p ||theta_p - state_p||^2 / N)` over all N entries, i.e. [`WeightDistance::rms`]
/// here; [`WeightDistance::total`] is the plain L2 norm. Plasticine's C51 Atari script takes
/// the state at initialisation (distance from theta_0); its PPO scripts take it at the start
/// of every iteration (how far one iteration moved the weights). Pass whichever snapshot;
/// [`ParamSnapshot::capture`] of the fresh network gives the first. Computed in f64 without
/// overflow ([`sfe`]).
///
/// A parameter missing from `reference` is an [`Error::MissingParam`]; another shape, an
/// [`Error::ShapeMismatch`].
pub fn weight_distance(
    params: &[(String, Tensor)],
    reference: &ParamSnapshot,
) -> Result<WeightDistance> {
    let mut squared = 0.0;
    let mut numel = 0i64;
    let mut per_param = Vec::with_capacity(params.len());
    for (name, t) in params {
        let t0 = reference.get(name, t, "the reference parameters")?;
        let t0 = tch::no_grad(|| t0.f_to_device(t.device()))?;
        let d2 = sfe(t, &t0)?;
        squared += d2;
        numel += t.numel() as i64;
        per_param.push((name.clone(), d2.sqrt()));
    }
    let total = squared.sqrt();
    let rms = if numel > 0 {
        (squared / numel as f64).sqrt()
    } else {
        0.0
    };
    Ok(WeightDistance {
        total,
        rms,
        numel,
        per_param,
    })
}

/// Global gradient norm `sqrt(sum_p ||g_p||^2)` over the parameters' current gradients (a
/// parameter without a gradient counts 0), in f64.
///
/// Plasticine logs the total norm that `torch.nn.utils.clip_grad_norm_(model.parameters(),
/// max_norm)` returns, which is this norm before clipping; it averages it over the minibatches
/// of an iteration (PPO) or the last 10 updates (C51). Call it after `backward` and before the
/// optimiser step (and after clipping, if the clipped norm is wanted).
pub fn grad_norm(params: &[(String, Tensor)]) -> Result<f64> {
    let mut squared = 0.0;
    for (_, t) in params {
        let g = t.grad();
        if g.defined() {
            squared += frobenius_norm(&g)?.powi(2);
        }
    }
    Ok(squared.sqrt())
}

fn l2(t: &Tensor) -> Result<f64> {
    Ok(t.to_kind(Kind::Float)
        .f_square()?
        .f_sum(Kind::Double)?
        .f_double_value(&[])?
        .sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn scores_normalise_by_layer_mean_and_flag_dead_units() {
        // |h| means per neuron: 2, 0, 4 -> layer mean 2 -> scores 1, 0, 2.
        let a = Tensor::from_slice(&[2.0f32, 0.0, -4.0, -2.0, 0.0, 4.0]).reshape([2, 3]);
        let s = Vec::<f32>::try_from(&neuron_scores(&a).unwrap()).unwrap();
        assert_eq!(s, vec![1.0, 0.0, 2.0]);
        let d = dormant(&[&a], 0.1).unwrap();
        assert_eq!((d.dormant, d.total), (1, 3));
        assert!((d.ratio() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn conv_scores_average_over_space() {
        let mut a = Tensor::zeros([2, 2, 3, 3], (Kind::Float, Device::Cpu));
        let _ = a.get(0).get(1).fill_(1.0);
        let s = Vec::<f32>::try_from(&neuron_scores(&a).unwrap()).unwrap();
        assert_eq!(s, vec![0.0, 2.0]);
        a = a.zero_();
        assert_eq!(dormant(&[&a], 0.0).unwrap().dormant, 2);
    }

    #[test]
    fn ranks_of_known_spectra() {
        // Orthonormal columns: all singular values equal, effective rank = srank = 3.
        let q = Tensor::eye(3, (Kind::Float, Device::Cpu));
        assert!((effective_rank(&q).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(srank(&q, 0.01).unwrap(), 3);
        // Rank one: [1, 1; 1, 1] has singular values (2, 0).
        let r1 = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        assert!((effective_rank(&r1).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(srank(&r1, 0.01).unwrap(), 1);
        // Singular values (1, 0.001): srank keeps 99 % of the sum with one value.
        let d = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.001]).reshape([2, 2]);
        assert_eq!(srank(&d, 0.01).unwrap(), 1);
        assert_eq!(srank(&d, 0.0).unwrap(), 2);
    }

    #[test]
    fn norms_and_effective_lr() {
        let w = Tensor::from_slice(&[3.0f32, 4.0]).set_requires_grad(true);
        let loss = (&w * &w).sum(Kind::Float);
        loss.backward();
        let n = param_norms(&[("w".into(), w)]).unwrap();
        assert!((n[0].weight_norm - 5.0).abs() < 1e-9);
        assert!((n[0].grad_norm - 10.0).abs() < 1e-6);
        assert!((n[0].effective_lr() - 2.0).abs() < 1e-6);
        let f = Tensor::from_slice(&[3.0f32, 4.0, 0.0, 1.0]).reshape([2, 2]);
        assert!((feature_norm(&f).unwrap() - 3.0).abs() < 1e-6);
    }

    #[test]
    fn active_fraction_counts_positive_entries() {
        // Post-ReLU [2, 3]: [[0, 1, 2], [0, 0, 3]] -> 3 positive of 6 = 0.5.
        let h = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 0.0, 0.0, 3.0]).reshape([2, 3]);
        assert_eq!(active_fraction(&h).unwrap(), 0.5);
        // Conv [1, 2, 1, 2]: entries 1, -1, 0, 4 -> 2 of 4 (negative pre-activations are off).
        let c = Tensor::from_slice(&[1.0f32, -1.0, 0.0, 4.0]).reshape([1, 2, 1, 2]);
        assert_eq!(active_fraction(&c).unwrap(), 0.5);
        let v = Tensor::from_slice(&[1.0f32]);
        assert!(matches!(active_fraction(&v), Err(Error::Shape { .. })));
        let empty = Tensor::zeros([0, 4], (Kind::Float, Device::Cpu));
        assert_eq!(active_fraction(&empty).unwrap(), 0.0);
    }

    #[test]
    fn weight_distance_total_rms_and_per_parameter() {
        // W - W0 = [[3, 0], [0, 4]] -> 5; b - b0 = [0, 0] -> 0.
        // total = 5, N = 6 entries, rms = sqrt(25 / 6).
        let params = vec![
            (
                "fc.weight".to_string(),
                Tensor::from_slice(&[4.0f32, 1.0, 1.0, 5.0]).reshape([2, 2]),
            ),
            ("fc.bias".to_string(), Tensor::from_slice(&[1.0f32, 1.0])),
        ];
        let theta_0 = ParamSnapshot::from_tensors(vec![
            (
                "fc.weight".into(),
                Tensor::ones([2, 2], (Kind::Float, Device::Cpu)),
            ),
            (
                "fc.bias".into(),
                Tensor::ones([2], (Kind::Float, Device::Cpu)),
            ),
        ]);
        let d = weight_distance(&params, &theta_0).unwrap();
        assert!((d.total - 5.0).abs() < 1e-12);
        assert!((d.rms - (25.0f64 / 6.0).sqrt()).abs() < 1e-12);
        assert_eq!(d.numel, 6);
        assert_eq!(
            d.per_param,
            vec![("fc.weight".to_string(), 5.0), ("fc.bias".to_string(), 0.0)]
        );
        let partial = ParamSnapshot::from_tensors(vec![(
            "fc.weight".into(),
            Tensor::ones([2, 2], (Kind::Float, Device::Cpu)),
        )]);
        assert!(matches!(
            weight_distance(&params, &partial),
            Err(Error::MissingParam { .. })
        ));
    }

    #[test]
    fn global_grad_norm_combines_parameters() {
        // loss = 1.5 a^2 + 2 b: grad a = 3 a = [3, 0] at a = [1, 0], grad b = [2, 2];
        // sqrt(9 + 4 + 4) = sqrt(17). A parameter without a gradient adds nothing.
        let a = Tensor::from_slice(&[1.0f32, 0.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.5f32, -0.5]).set_requires_grad(true);
        let unused = Tensor::from_slice(&[9.0f32]).set_requires_grad(true);
        let loss = (&a * &a).sum(Kind::Float) * 1.5 + b.sum(Kind::Float) * 2.0;
        loss.backward();
        let params = vec![
            ("a".to_string(), a),
            ("b".to_string(), b),
            ("u".to_string(), unused),
        ];
        assert!((grad_norm(&params).unwrap() - 17f64.sqrt()).abs() < 1e-6);
    }
}
