//! The plasticity methods that live in the network or in every update rather than in an
//! intervention: the hidden activation (ReLU or CReLU), LayerNorm after each hidden layer,
//! normalize-and-project, and a regulariser on the loss (`layer-reset`'s patterns are in
//! [`crate::reset_layers`]). Agents build their networks from [`NetworkOptions`] and run each update
//! through [`UpdateAids`].
//!
//! | key                 | method                                   | paper                    |
//! |---------------------|------------------------------------------|--------------------------|
//! | `activation=crelu`  | `[relu(x), relu(-x)]`, next input doubles | Abbas et al. 2023        |
//! | `layer_norm`        | `act(LN(W x + b))` in every hidden layer | Ba et al. 2016; Lyle 2023 |
//! | `normalize_project` | LayerNorm + weights back to their initial norms after each step | Lyle et al. 2024 |
//! | `regularizer`       | `l2`, `l2-init`, `parseval` on the loss ([`fire::regularize`]) | Kumar 2023, Chung 2024 |

use fire::project::WeightNorms;
use fire::regularize::{penalty, Regularizer};
use fire::{ParamRole, ParamSelector, ParamSnapshot};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::{Error, Result};

/// The hidden layers' nonlinearity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// Concatenated ReLU (Shang et al. 2016; for plasticity Abbas et al. 2023, "Loss of
    /// Plasticity in Continual Deep Reinforcement Learning"): `[relu(x), relu(-x)]` along the
    /// feature (or channel) dimension, so every unit passes a gradient for any input sign and
    /// none can go dormant. The layer widths are kept, so the next layer reads twice as many
    /// inputs (Abbas et al. keep widths too).
    Crelu,
}

impl Activation {
    /// Applies the activation along `dim` (1: a dense layer's features, a conv's channels).
    pub fn apply(self, x: &Tensor, dim: i64) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Crelu => Tensor::cat(&[x.relu(), x.neg().relu()], dim),
        }
    }

    /// How many outputs each pre-activation unit gives: 1, or 2 for CReLU.
    pub fn width_factor(self) -> i64 {
        match self {
            Activation::Relu => 1,
            Activation::Crelu => 2,
        }
    }

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Crelu => "crelu",
        }
    }
}

/// How the hidden layers of a network are built. The default is the plain network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkOptions {
    /// The nonlinearity of every hidden layer.
    pub activation: Activation,
    /// LayerNorm (PyTorch's: eps 1e-5, a learned scale and offset) between each hidden
    /// layer's affine map and its activation, over the whole layer output (`[C, H, W]` after a
    /// convolution), as Plasticine's LayerNorm networks place it.
    pub layer_norm: bool,
}

impl NetworkOptions {
    /// Whether this is the plain network (ReLU, no LayerNorm).
    pub fn is_plain(&self) -> bool {
        *self == NetworkOptions::default()
    }
}

/// The methods applied at every update, with their numbers. The default does nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateMethods {
    /// The penalty added to the loss.
    pub regularizer: Regularizer,
    /// Its strength lambda.
    pub regularizer_strength: f64,
    /// Normalize-and-project's projection after every optimiser step (its LayerNorm is in
    /// [`NetworkOptions::layer_norm`]).
    pub normalize_project: bool,
}

/// [`UpdateMethods`] bound to one network: which parameters the penalty takes, the initial
/// norms the projection restores.
#[derive(Debug)]
pub struct UpdateAids {
    regularizer: Regularizer,
    strength: f64,
    penalized: ParamSelector,
    projection: Option<WeightNorms>,
}

impl UpdateAids {
    /// Binds `methods` to a network whose parameters at initialisation are `params`.
    /// `outputs` are the output layers' name globs (`q.head.fc2.*`): Parseval regularisation
    /// leaves them alone, as Chung et al. do. The projection takes every conv and dense weight
    /// (not biases nor the LayerNorms' scales and offsets), the output layers included.
    pub fn new(
        methods: &UpdateMethods,
        params: &[(String, Tensor)],
        outputs: &[&str],
    ) -> Result<Self> {
        let strength = methods.regularizer_strength;
        if !(strength.is_finite() && strength >= 0.0) {
            return Err(Error::Config {
                field: "regularizer_strength",
                reason: format!("must be a finite number >= 0, got {strength}"),
            });
        }
        let mut penalized = ParamSelector::all();
        if methods.regularizer == Regularizer::Parseval {
            for glob in outputs {
                penalized = penalized.exclude(glob)?;
            }
        }
        let weights =
            ParamSelector::all().with_roles(&[ParamRole::ConvWeight, ParamRole::LinearWeight]);
        Ok(Self {
            regularizer: methods.regularizer,
            strength,
            penalized,
            projection: methods
                .normalize_project
                .then(|| WeightNorms::capture(params, &weights)),
        })
    }

    /// Whether a penalty is added to the loss.
    pub fn regularizes(&self) -> bool {
        self.regularizer != Regularizer::None && self.strength > 0.0
    }

    /// The penalty on `params` (a differentiable 0-d tensor), `None` without a regulariser.
    /// `initial` is theta_0, which `l2-init` pulls towards.
    pub fn penalty(
        &self,
        params: &[(String, Tensor)],
        initial: &ParamSnapshot,
    ) -> Result<Option<Tensor>> {
        if !self.regularizes() {
            return Ok(None);
        }
        Ok(Some(penalty(
            self.regularizer,
            self.strength,
            params,
            Some(initial),
            &self.penalized,
        )?))
    }

    /// After an optimiser step: normalize-and-project's projection (nothing otherwise).
    pub fn after_step(&self, params: &[(String, Tensor)]) -> Result<()> {
        match &self.projection {
            Some(norms) => Ok(norms.project(params)?),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&t.reshape([-1])).unwrap()
    }

    #[test]
    fn crelu_doubles_the_features_with_both_signs() {
        let x = Tensor::from_slice(&[-2.0f32, 0.5, 3.0, -1.0]).view([2, 2]);
        let y = Activation::Crelu.apply(&x, 1);
        assert_eq!(y.size(), vec![2, 4]);
        // Row [-2, 0.5] -> [relu: 0, 0.5 | relu of -x: 2, 0].
        assert_eq!(values(&y), vec![0.0, 0.5, 2.0, 0.0, 3.0, 0.0, 0.0, 1.0]);
        assert_eq!(
            values(&Activation::Relu.apply(&x, 1)),
            vec![0.0, 0.5, 3.0, 0.0]
        );
        assert_eq!(Activation::Crelu.width_factor(), 2);
    }

    #[test]
    fn crelu_concatenates_conv_channels() {
        let x = Tensor::ones([1, 3, 2, 2], (Kind::Float, tch::Device::Cpu));
        assert_eq!(Activation::Crelu.apply(&x, 1).size(), vec![1, 6, 2, 2]);
    }

    fn net() -> Vec<(String, Tensor)> {
        let hidden = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let out = Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]);
        vec![
            ("q.fc1.weight".into(), hidden.set_requires_grad(true)),
            ("q.out.weight".into(), out.set_requires_grad(true)),
        ]
    }

    #[test]
    fn parseval_leaves_the_output_layer_out() {
        let params = net();
        let theta_0 = ParamSnapshot::capture(&params);
        let methods = UpdateMethods {
            regularizer: Regularizer::Parseval,
            regularizer_strength: 1.0,
            normalize_project: false,
        };
        let aids = UpdateAids::new(&methods, &params, &["q.out.*"]).unwrap();
        // fc1 = I: W W^T - 2 I = -I, squared Frobenius norm 2. The output layer (W W^T = 25)
        // would add (25 - 2)^2 = 529 were it included.
        let p = aids.penalty(&params, &theta_0).unwrap().unwrap();
        assert_eq!(p.double_value(&[]), 2.0);
    }

    #[test]
    fn l2_takes_every_parameter_and_none_adds_nothing() {
        let params = net();
        let theta_0 = ParamSnapshot::capture(&params);
        let l2 = UpdateMethods {
            regularizer: Regularizer::L2,
            regularizer_strength: 0.5,
            normalize_project: false,
        };
        let aids = UpdateAids::new(&l2, &params, &["q.out.*"]).unwrap();
        // 0.5 * (1 + 1 + 9 + 16) = 13.5.
        assert_eq!(
            aids.penalty(&params, &theta_0)
                .unwrap()
                .unwrap()
                .double_value(&[]),
            13.5
        );
        let none = UpdateAids::new(&UpdateMethods::default(), &params, &[]).unwrap();
        assert!(none.penalty(&params, &theta_0).unwrap().is_none());
    }

    #[test]
    fn the_projection_restores_initial_norms_after_a_step() {
        let params = net();
        let methods = UpdateMethods {
            normalize_project: true,
            ..UpdateMethods::default()
        };
        let aids = UpdateAids::new(&methods, &params, &[]).unwrap();
        tch::no_grad(|| {
            let _ = params[1].1.shallow_clone().fill_(8.0); // norm 8 sqrt 2; initial norm 5
        });
        aids.after_step(&params).unwrap();
        let n = params[1].1.norm().double_value(&[]);
        assert!((n - 5.0).abs() < 1e-5, "{n}");
    }

    #[test]
    fn a_negative_strength_is_refused_with_the_key_name() {
        let methods = UpdateMethods {
            regularizer: Regularizer::L2,
            regularizer_strength: -1.0,
            normalize_project: false,
        };
        let err = UpdateAids::new(&methods, &net(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("regularizer_strength"), "{err}");
    }
}
