//! The keys of the plasticity methods that are not interventions (regularisers, CReLU,
//! LayerNorm, normalize-and-project) and of `layer-reset`, shared by every binary and both
//! agents, with the combinations refused before a run starts.

use agent::{Activation, NetworkOptions, UpdateMethods};
use anyhow::{bail, Result};
use fire::{Method, Regularizer};
use runtime::config::LoopConfig;
use serde::{Deserialize, Serialize};

/// The methods' keys. The defaults change nothing: the plain ReLU network, no penalty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MethodKeys {
    /// Penalty added to the loss at every update: none; l2 (lambda ||theta||^2, weight decay on the loss); l2-init (lambda ||theta - theta_0||^2, Kumar et al. 2023); parseval (lambda sum ||W W^T - 2 I||_F^2 over the hidden weights, Chung et al. 2024).
    #[schemars(with = "String")]
    pub regularizer: Regularizer,
    /// The regulariser's lambda (unset: its paper's, l2 1e-2, l2-init 1e-2, parseval 1e-3).
    #[schemars(with = "Option<f64>")]
    pub regularizer_strength: Option<f64>,
    /// Hidden activation: relu, or crelu (Abbas et al. 2023: [relu(x), relu(-x)], the next layer's input doubles).
    #[schemars(with = "String")]
    pub activation: Activation,
    /// LayerNorm between each hidden layer's affine map and its activation (over [C, H, W] after a convolution).
    pub layer_norm: bool,
    /// Normalize-and-project (Lyle et al. 2024): LayerNorm in every hidden layer, and every conv and dense weight rescaled to its initial norm after each update.
    pub normalize_project: bool,
    /// Layers intervention = "layer-reset" sets back to theta_0: globs over parameter or layer names, a list or comma-separated text (`q.head`, `q.encoder.fc2.*`; unset: the agent's last layers, DQN ["q.head.*"], SAC ["actor.mean.*", "actor.log_std.*", "critic.out.*"]).
    #[serde(deserialize_with = "agent::reset_layers::optional_patterns")]
    pub reset_layers: Option<Vec<String>>,
}

impl MethodKeys {
    /// The network these keys build: normalize-and-project brings its LayerNorm.
    pub fn network(&self) -> NetworkOptions {
        NetworkOptions {
            activation: self.activation,
            layer_norm: self.layer_norm || self.normalize_project,
        }
    }

    /// What every update applies.
    pub fn update_methods(&self) -> UpdateMethods {
        UpdateMethods {
            regularizer: self.regularizer,
            regularizer_strength: self
                .regularizer_strength
                .unwrap_or_else(|| self.regularizer.default_strength()),
            normalize_project: self.normalize_project,
        }
    }

    /// The DQN learner's settings with these methods.
    pub fn apply_dqn(&self, cfg: &mut dqn::DqnConfig) {
        cfg.network = self.network();
        cfg.methods = self.update_methods();
        if let Some(layers) = &self.reset_layers {
            cfg.reset_layers = layers.clone();
        }
    }

    /// The SAC learner's settings with these methods.
    pub fn apply_sac(&self, cfg: &mut sac::SacConfig) {
        cfg.network = self.network();
        cfg.methods = self.update_methods();
        if let Some(layers) = &self.reset_layers {
            cfg.reset_layers = layers.clone();
        }
    }

    /// Checks the values and refuses, in one line each, the combinations that make no sense:
    /// ReDo with CReLU (a unit feeds two inputs of the next layer), plasticity injection on
    /// anything but the plain network (its injected head is plain ReLU layers), a layer reset
    /// with nothing to reset, a strength without a regulariser. `simba` says whether the agent
    /// is SAC's SimBa, which has its own LayerNorms and no CReLU variant.
    pub fn validate(&self, run: &LoopConfig, simba: bool) -> Result<()> {
        if let Some(s) = self.regularizer_strength {
            if !(s.is_finite() && s >= 0.0) {
                bail!("regularizer_strength must be a finite number >= 0, got {s}");
            }
            if self.regularizer == Regularizer::None {
                bail!(
                    "regularizer_strength = {s} without a regularizer: set regularizer = \"l2\", \"l2-init\" or \"parseval\""
                );
            }
        }
        let network = self.network();
        match run.intervention {
            Method::Redo if network.activation == Activation::Crelu => bail!(
                "intervention = \"redo\" with activation = \"crelu\" is not defined (a CReLU unit feeds two inputs of the next layer); use activation = \"relu\""
            ),
            Method::PlasticityInjection if !network.is_plain() => bail!(
                "intervention = \"plasticity-injection\" needs the plain network (activation = \"relu\", layer_norm and normalize_project off): its injected head is plain ReLU layers"
            ),
            Method::LayerReset if self.reset_layers.as_ref().is_some_and(Vec::is_empty) => bail!(
                "intervention = \"layer-reset\" with reset_layers = [] resets nothing; name the layers, e.g. reset_layers = [\"q.head.*\"]"
            ),
            _ => {}
        }
        if simba {
            if self.activation == Activation::Crelu {
                bail!(
                    "activation = \"crelu\" is built for network = \"mlp\" only (SimBa's residual blocks keep ReLU); set network = \"mlp\""
                );
            }
            if self.layer_norm {
                bail!(
                    "layer_norm = true: SimBa has LayerNorm in every block already; set network = \"mlp\" for an MLP with LayerNorm"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_change_nothing_and_strengths_default_to_the_papers() {
        let keys = MethodKeys::default();
        assert!(keys.network().is_plain());
        assert_eq!(keys.update_methods(), UpdateMethods::default());
        let parseval = MethodKeys {
            regularizer: Regularizer::Parseval,
            ..MethodKeys::default()
        };
        assert_eq!(parseval.update_methods().regularizer_strength, 1e-3);
        let nap = MethodKeys {
            normalize_project: true,
            ..MethodKeys::default()
        };
        assert!(
            nap.network().layer_norm,
            "normalize-and-project brings LayerNorm"
        );
    }

    #[test]
    fn nonsense_combinations_are_refused_with_the_keys_named() {
        let run = |m| LoopConfig {
            intervention: m,
            ..LoopConfig::default()
        };
        let crelu = MethodKeys {
            activation: Activation::Crelu,
            ..MethodKeys::default()
        };
        let err = crelu
            .validate(&run(Method::Redo), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("redo") && err.contains("crelu"), "{err}");
        let err = crelu
            .validate(&run(Method::PlasticityInjection), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("plasticity-injection"), "{err}");
        let err = crelu
            .validate(&run(Method::Fire), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mlp"), "{err}");
        crelu.validate(&run(Method::Fire), false).unwrap();
        let empty = MethodKeys {
            reset_layers: Some(vec![]),
            ..MethodKeys::default()
        };
        let err = empty
            .validate(&run(Method::LayerReset), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reset_layers"), "{err}");
        let orphan = MethodKeys {
            regularizer_strength: Some(0.1),
            ..MethodKeys::default()
        };
        let err = orphan
            .validate(&run(Method::None), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("regularizer"), "{err}");
    }
}
