//! The projection step of normalize-and-project (Lyle et al. 2024, "Normalization and
//! effective learning rates in reinforcement learning"): after every optimiser step each
//! weight tensor is rescaled to the Frobenius norm it had at initialisation,
//! `W <- W * ||W_0||_F / ||W||_F`.
//!
//! With a LayerNorm after a layer the network's function does not depend on that layer's
//! weight scale, but the gradient step's effect does: as weights grow, a fixed learning rate
//! moves them less and less (the *effective* learning rate falls as `1 / ||W||^2`). Holding the
//! norm fixed holds the effective learning rate fixed. Which tensors are projected is the
//! caller's choice through a [`ParamSelector`]; the agents project the conv and linear weights
//! (not biases or the LayerNorms' scales and offsets), as [`WeightNorms::capture`]'s callers
//! document.
//!
//! ```
//! use fire::project::WeightNorms;
//! use fire::ParamSelector;
//! use tch::Tensor;
//!
//! let mut w = Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]); // norm 5
//! let params = vec![("fc.weight".to_string(), w.shallow_clone())];
//! let norms = WeightNorms::capture(&params, &ParamSelector::all());
//! let _ = w.f_mul_scalar_(2.0).unwrap(); // an optimiser step doubled it: norm 10
//! norms.project(&params).unwrap();
//! assert_eq!(Vec::<f32>::try_from(&w.view([-1])).unwrap(), vec![3.0, 4.0]);
//! ```

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::select::ParamSelector;

/// The Frobenius norms of the selected tensors at one moment (initialisation), and the
/// projection back onto them.
#[derive(Debug, Default)]
pub struct WeightNorms {
    norms: BTreeMap<String, f64>,
}

impl WeightNorms {
    /// Records the norm of every tensor the selector takes. A tensor whose norm is 0 (a
    /// zero-initialised layer) is left out: no rescaling can give it back a direction.
    pub fn capture(params: &[(String, Tensor)], select: &ParamSelector) -> Self {
        let norms = tch::no_grad(|| {
            params
                .iter()
                .filter(|(name, t)| select.matches(name, &t.size()))
                .map(|(name, t)| (name.clone(), t.norm().double_value(&[])))
                .filter(|(_, n)| *n > 0.0 && n.is_finite())
                .collect()
        });
        Self { norms }
    }

    /// The recorded tensors' names and norms, in name order.
    pub fn norms(&self) -> impl Iterator<Item = (&str, f64)> {
        self.norms.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Rescales each recorded tensor in `params` to its recorded norm, in place (no gradient).
    /// Tensors not recorded are left alone; a recorded name missing from `params` is an error,
    /// and so is a tensor whose norm has become 0 or non-finite (a diverged step).
    pub fn project(&self, params: &[(String, Tensor)]) -> Result<()> {
        let by_name: BTreeMap<&str, &Tensor> =
            params.iter().map(|(n, t)| (n.as_str(), t)).collect();
        tch::no_grad(|| {
            for (name, &target) in &self.norms {
                let t = by_name
                    .get(name.as_str())
                    .ok_or_else(|| Error::MissingParam {
                        name: name.clone(),
                        what: "initial norms",
                    })?;
                let now = t.f_norm()?.f_to_kind(Kind::Double)?.double_value(&[]);
                if !(now.is_finite() && now > 0.0) {
                    return Err(Error::InvalidConfig {
                        what: "normalize_project",
                        reason: format!("{name} has norm {now}: the update diverged"),
                    });
                }
                let mut t = t.shallow_clone();
                let _ = t.f_mul_scalar_(target / now)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, values: &[f32], shape: &[i64]) -> (String, Tensor) {
        (name.to_string(), Tensor::from_slice(values).view(shape))
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&t.reshape([-1])).unwrap()
    }

    #[test]
    fn projection_restores_each_tensors_own_initial_norm() {
        // Norms at capture: sqrt(1 + 4 + 4 + 16) = 5 and sqrt(36 + 64) = 10.
        let params = vec![
            named("a.weight", &[1.0, 2.0, 2.0, 4.0], &[2, 2]),
            named("b.weight", &[6.0, 8.0], &[1, 2]),
        ];
        let norms = WeightNorms::capture(&params, &ParamSelector::all());
        assert_eq!(
            norms.norms().collect::<Vec<_>>(),
            vec![("a.weight", 5.0), ("b.weight", 10.0)]
        );
        // A step moves a to [3, 0, 0, 4] (norm 5: unchanged) and b to [0, 20] (norm 20).
        params[0]
            .1
            .shallow_clone()
            .copy_(&Tensor::from_slice(&[3.0f32, 0.0, 0.0, 4.0]).view([2, 2]));
        params[1]
            .1
            .shallow_clone()
            .copy_(&Tensor::from_slice(&[0.0f32, 20.0]).view([1, 2]));
        norms.project(&params).unwrap();
        assert_eq!(values(&params[0].1), vec![3.0, 0.0, 0.0, 4.0]);
        assert_eq!(values(&params[1].1), vec![0.0, 10.0]);
    }

    #[test]
    fn unselected_and_zero_tensors_are_left_alone() {
        let params = vec![
            named("fc.weight", &[3.0, 4.0], &[1, 2]),
            named("fc.bias", &[1.0], &[1]),
            named("zero.weight", &[0.0, 0.0], &[1, 2]),
        ];
        let select = ParamSelector::all().exclude("*.bias").unwrap();
        let norms = WeightNorms::capture(&params, &select);
        assert_eq!(
            norms.norms().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["fc.weight"]
        );
        let _ = params[1].1.shallow_clone().fill_(7.0);
        norms.project(&params).unwrap();
        assert_eq!(values(&params[1].1), vec![7.0]);
        assert_eq!(values(&params[2].1), vec![0.0, 0.0]);
    }

    #[test]
    fn a_diverged_or_missing_tensor_is_an_error() {
        let params = vec![named("fc.weight", &[3.0, 4.0], &[1, 2])];
        let norms = WeightNorms::capture(&params, &ParamSelector::all());
        let _ = params[0].1.shallow_clone().fill_(f64::NAN);
        let err = norms.project(&params).unwrap_err().to_string();
        assert!(
            err.contains("fc.weight") && err.contains("diverged"),
            "{err}"
        );
        let err = norms.project(&[]).unwrap_err().to_string();
        assert!(err.contains("fc.weight"), "{err}");
    }
}
