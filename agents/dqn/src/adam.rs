//! Adam and AdamW whose state the agent owns as named tensors, so an intervention can keep,
//! reset or zero parts of it and a checkpoint can save it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::{Error, Result};

/// Optimiser hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon (the FIRE paper's DQN uses 1.5e-4).
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 gives Adam.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &'static str, v: f64| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config {
                    field,
                    reason: format!("out of range: {v}"),
                })
            }
        };
        check(self.lr.is_finite() && self.lr > 0.0, "lr", self.lr)?;
        check((0.0..1.0).contains(&self.beta1), "beta1", self.beta1)?;
        check((0.0..1.0).contains(&self.beta2), "beta2", self.beta2)?;
        check(self.eps.is_finite() && self.eps > 0.0, "adam eps", self.eps)?;
        check(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "weight_decay",
            self.weight_decay,
        )
    }
}

/// Adam's moments per parameter name, and the step count.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    step: i64,
    first: BTreeMap<String, Tensor>,
    second: BTreeMap<String, Tensor>,
}

impl Adam {
    /// Zero moments for `params`.
    pub fn new(config: AdamConfig, params: &[(String, Tensor)]) -> Result<Self> {
        config.validate()?;
        let zeros = |params: &[(String, Tensor)]| {
            params
                .iter()
                .map(|(n, t)| (n.clone(), t.zeros_like()))
                .collect::<BTreeMap<_, _>>()
        };
        Ok(Self {
            config,
            step: 0,
            first: zeros(params),
            second: zeros(params),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Updates taken so far.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let correction1 = 1.0 - beta1.powi(self.step as i32);
        let correction2 = 1.0 - beta2.powi(self.step as i32);
        tch::no_grad(|| -> Result<()> {
            for (name, p) in params {
                let g = p.grad();
                // Frozen parameters (plasticity injection) are not updated, stale gradient or not.
                if !g.defined() || !p.requires_grad() {
                    continue;
                }
                let missing = || Error::Config {
                    field: "optimizer state",
                    reason: format!("no moments for `{name}`"),
                };
                let mut m = self.first.get(name).ok_or_else(missing)?.shallow_clone();
                let mut v = self.second.get(name).ok_or_else(missing)?.shallow_clone();
                let mut p = p.shallow_clone();
                let _ = m
                    .f_mul_scalar_(beta1)?
                    .f_add_(&g.f_mul_scalar(1.0 - beta1)?)?;
                let _ = v
                    .f_mul_scalar_(beta2)?
                    .f_addcmul_(&g, &g.f_mul_scalar(1.0 - beta2)?)?;
                if weight_decay > 0.0 {
                    let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
                }
                let denom = v.f_div_scalar(correction2)?.f_sqrt()?.f_add_scalar(eps)?;
                let _ = p.f_addcdiv_(&m.f_mul_scalar(-lr / correction1)?, &denom)?;
            }
            Ok(())
        })
    }

    /// Adds zero moments for parameters it does not know yet (after plasticity injection).
    pub fn track(&mut self, params: &[(String, Tensor)]) {
        for (n, t) in params {
            self.first
                .entry(n.clone())
                .or_insert_with(|| t.zeros_like());
            self.second
                .entry(n.clone())
                .or_insert_with(|| t.zeros_like());
        }
    }

    /// Zeroes every moment and the step count (a fresh optimiser on the same parameters).
    pub fn reset(&mut self) {
        tch::no_grad(|| {
            for t in self.first.values_mut().chain(self.second.values_mut()) {
                let _ = t.zero_();
            }
        });
        self.step = 0;
    }

    /// Both moments of `name`, for masking (ReDo zeroes recycled neurons' moments).
    pub fn moments(&self, name: &str) -> Option<(&Tensor, &Tensor)> {
        Some((self.first.get(name)?, self.second.get(name)?))
    }

    /// The state as named tensors (`adam.m.<name>`, `adam.v.<name>`, `adam.step`), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        for (n, t) in &self.first {
            out.push((format!("adam.m.{n}"), t.shallow_clone()));
        }
        for (n, t) in &self.second {
            out.push((format!("adam.v.{n}"), t.shallow_clone()));
        }
        out.push(("adam.step".into(), Tensor::from_slice(&[self.step])));
        out
    }

    /// Restores state written by [`state_tensors`](Self::state_tensors).
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let find = |key: &str| tensors.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        tch::no_grad(|| -> Result<()> {
            for (prefix, map) in [("adam.m.", &mut self.first), ("adam.v.", &mut self.second)] {
                for (n, t) in map.iter_mut() {
                    let saved = find(&format!("{prefix}{n}")).ok_or_else(|| {
                        Error::Checkpoint(format!("optimizer state for `{n}` missing"))
                    })?;
                    t.f_copy_(saved)?;
                }
            }
            Ok(())
        })?;
        let step =
            find("adam.step").ok_or_else(|| Error::Checkpoint("optimizer step missing".into()))?;
        self.step = step.f_int64_value(&[0])?;
        Ok(())
    }
}
