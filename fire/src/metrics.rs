//! Plasticity diagnostics (FIRE.md section 5): dormant neurons, feature ranks, norms.
//!
//! DfI and SFE live in [`crate::orthogonalize`] (and per layer in [`crate::layer`]).

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

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
}
