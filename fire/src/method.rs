//! What a user asks for when they name an intervention: one type for the `fire` tool, the
//! agents, the training binaries and the demo.
//!
//! [`Method`] is the name (`fire`, `full-reset`, ...); [`MethodConfig`] adds the numbers every
//! method may need (Newton–Schulz steps, tolerance, lambda, tau). How a method acts on a whole
//! agent (which layers, what happens to optimiser state and target networks) is the agent's
//! business; [`Intervention`](crate::Intervention) is what acts on selected parameters.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::orthogonalize::{Orthogonalizer, PAPER_ITERATIONS};

/// An intervention by name. Kebab-case in configs and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Never intervene (a schedule is ignored): the baseline.
    None,
    /// The paper's FIRE: cubic Newton–Schulz, `fire_iterations` steps (10).
    Fire,
    /// FIRE with the exact SVD polar factor.
    FireExact,
    /// FIRE iterated until DfI per column is at most `fire_tol`.
    FireTol,
    /// Every parameter back to its initial value theta_0.
    FullReset,
    /// `lambda * theta + (1 - lambda) * theta_0` with lambda = `shrink`.
    ShrinkPerturb,
    /// ReDo: recycle neurons whose normalised activation is at most `redo_tau`.
    Redo,
    /// Plasticity injection: freeze the head, add a trainable copy minus its frozen twin. Once.
    PlasticityInjection,
    /// The layers named by `reset_layers` back to theta_0, the rest kept (Nikishin et al.
    /// 2022's resets of the last layers; Plasticine's "reset").
    LayerReset,
}

impl Method {
    /// Every method, in the order the help lists them.
    pub const ALL: [Method; 9] = [
        Method::None,
        Method::Fire,
        Method::FireExact,
        Method::FireTol,
        Method::FullReset,
        Method::ShrinkPerturb,
        Method::Redo,
        Method::PlasticityInjection,
        Method::LayerReset,
    ];

    /// The kebab-case name users type (`full-reset`).
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Fire => "fire",
            Method::FireExact => "fire-exact",
            Method::FireTol => "fire-tol",
            Method::FullReset => "full-reset",
            Method::ShrinkPerturb => "shrink-perturb",
            Method::Redo => "redo",
            Method::PlasticityInjection => "plasticity-injection",
            Method::LayerReset => "layer-reset",
        }
    }

    /// Whether this is one of the FIRE variants.
    pub fn is_fire(self) -> bool {
        matches!(self, Method::Fire | Method::FireExact | Method::FireTol)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidConfig {
                what: "intervention",
                reason: format!(
                    "unknown method `{s}` (one of: {})",
                    Method::ALL.map(Method::name).join(", ")
                ),
            })
    }
}

/// A method and its numbers. Defaults are the FIRE paper's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodConfig {
    /// What to do.
    pub method: Method,
    /// Newton–Schulz steps of [`Method::Fire`] (at least 1).
    pub fire_iterations: usize,
    /// Target DfI per column of [`Method::FireTol`].
    pub fire_tol: f64,
    /// lambda of [`Method::ShrinkPerturb`], in [0, 1].
    pub shrink: f64,
    /// tau of [`Method::Redo`], at least 0.
    pub redo_tau: f64,
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self {
            method: Method::Fire,
            fire_iterations: PAPER_ITERATIONS,
            fire_tol: 1e-6,
            shrink: 0.2,
            redo_tau: 0.1,
        }
    }
}

impl MethodConfig {
    /// The orthogonaliser of a FIRE variant; `None` for the other methods.
    pub fn orthogonalizer(&self) -> Option<Orthogonalizer> {
        match self.method {
            Method::Fire => Some(Orthogonalizer::NewtonSchulz {
                iters: self.fire_iterations,
            }),
            Method::FireExact => Some(Orthogonalizer::Exact),
            Method::FireTol => Some(Orthogonalizer::Tolerance {
                tol: self.fire_tol,
                max_iters: 100,
            }),
            _ => None,
        }
    }

    /// Checks every number; the error names the key and what it accepts.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| Err(Error::InvalidConfig { what, reason });
        if self.fire_iterations == 0 {
            return bad(
                "fire_iterations",
                "must be at least 1 (intervention = \"fire-exact\" gives the exact SVD polar factor)".into(),
            );
        }
        if !(self.fire_tol.is_finite() && self.fire_tol > 0.0) {
            return bad(
                "fire_tol",
                format!("must be positive, got {}", self.fire_tol),
            );
        }
        if !(0.0..=1.0).contains(&self.shrink) {
            return bad("shrink", format!("must be in [0, 1], got {}", self.shrink));
        }
        if !(self.redo_tau.is_finite() && self.redo_tau >= 0.0) {
            return bad(
                "redo_tau",
                format!("must be at least 0, got {}", self.redo_tau),
            );
        }
        if let Some(o) = self.orthogonalizer() {
            o.validate()?;
        }
        Ok(())
    }
}

/// Where tensors live, as users choose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// CUDA when available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA device (an error if there is none).
    Cuda,
}

impl DeviceChoice {
    /// The device; an error for `cuda` without a CUDA device.
    pub fn resolve(self) -> Result<tch::Device> {
        Ok(match self {
            DeviceChoice::Auto => tch::Device::cuda_if_available(),
            DeviceChoice::Cpu => tch::Device::Cpu,
            DeviceChoice::Cuda => {
                if !tch::Cuda::is_available() {
                    return Err(Error::InvalidConfig {
                        what: "device",
                        reason: "cuda: no CUDA device is available".into(),
                    });
                }
                tch::Device::Cuda(0)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        let err = "fire-fast".parse::<Method>().unwrap_err().to_string();
        assert!(
            err.contains("fire-exact") && err.contains("plasticity-injection"),
            "{err}"
        );
    }

    #[test]
    fn zero_iterations_is_an_error_that_names_the_exact_method() {
        let cfg = MethodConfig {
            fire_iterations: 0,
            ..MethodConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("fire_iterations") && err.contains("fire-exact"),
            "{err}"
        );
        assert!(MethodConfig::default().validate().is_ok());
    }
}
