//! Adam and AdamW whose state the agent owns as named tensors, so an intervention can keep,
//! reset or zero parts of it and a checkpoint can save it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::{fused, Error, Result};

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
    /// The step count as the fused kernel reads it (a float32 scalar on the device).
    step_tensor: Option<Tensor>,
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
            step_tensor: None,
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

    /// One update of every parameter that has a gradient, in one fused libtorch call
    /// (`_fused_adam_`, or `_fused_adamw_` with weight decay: torch.optim's `fused=True`):
    /// every parameter and both its moments are updated in place in one pass, with no
    /// temporaries. Parameters without a gradient, or frozen (plasticity injection), are left
    /// alone, as are their moments.
    pub fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        self.step += 1;
        let mut live = Vec::with_capacity(params.len());
        let mut grads = Vec::with_capacity(params.len());
        let mut firsts = Vec::with_capacity(params.len());
        let mut seconds = Vec::with_capacity(params.len());
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
            firsts.push(self.first.get(name).ok_or_else(missing)?);
            seconds.push(self.second.get(name).ok_or_else(missing)?);
            live.push(p.shallow_clone());
            grads.push(g);
        }
        let Some(device) = live.first().map(Tensor::device) else {
            return Ok(());
        };
        // The kernel reads the step count from a float32 tensor on the parameters' device;
        // writing it is one small fill, never a host-device round trip.
        let step = match self.step_tensor.take() {
            Some(t) if t.device() == device => t,
            _ => Tensor::f_zeros([], (tch::Kind::Float, device))?,
        };
        let _ = step.shallow_clone().f_fill_(self.step as f64)?;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let result = tch::no_grad(|| {
            fused::fused_adam(
                &live,
                &grads,
                &firsts,
                &seconds,
                &step,
                fused::FusedStep {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled: weight_decay > 0.0,
                },
            )
        });
        self.step_tensor = Some(step);
        result
    }

    /// The per-tensor step [`step`](Self::step) replaced (what `torch.optim.Adam(foreach=False)`
    /// does, in place but for two temporaries), kept to check the fused step against.
    #[cfg(test)]
    fn step_unfused(&mut self, params: &[(String, Tensor)]) -> Result<()> {
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
                if !g.defined() || !p.requires_grad() {
                    continue;
                }
                let mut m = self.first[name].shallow_clone();
                let mut v = self.second[name].shallow_clone();
                let mut p = p.shallow_clone();
                let _ = m.f_lerp_(&g, 1.0 - beta1)?;
                let _ = v.f_lerp_(&g.f_square()?, 1.0 - beta2)?;
                if weight_decay > 0.0 {
                    let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
                }
                let mut denom = v.f_sqrt()?;
                let _ = denom
                    .f_div_scalar_(correction2.sqrt())?
                    .f_add_scalar_(eps)?
                    .f_mul_scalar_(-correction1 / lr)?;
                let _ = p.f_addcdiv_(&m, &denom)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Three steps on two parameters against Adam's formulas in f64.
    #[test]
    fn steps_follow_the_adam_formulas() {
        let config = AdamConfig {
            lr: 0.01,
            eps: 1e-3,
            ..AdamConfig::default()
        };
        let p = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).set_requires_grad(true);
        let params = vec![("w".to_string(), p.shallow_clone())];
        let mut adam = Adam::new(config, &params).unwrap();
        let (mut want, mut m, mut v) = ([0.5f64, -1.0, 2.0], [0.0f64; 3], [0.0f64; 3]);
        for step in 1..=3 {
            // Loss sum(w^3): gradient 3 w^2.
            let loss = p.pow_tensor_scalar(3).sum(Kind::Float);
            if p.grad().defined() {
                let _ = p.grad().zero_();
            }
            loss.backward();
            adam.step(&params).unwrap();
            let (c1, c2) = (1.0 - 0.9f64.powi(step), 1.0 - 0.999f64.powi(step));
            for i in 0..3 {
                let g = 3.0 * want[i] * want[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                want[i] -= 0.01 * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-3);
            }
            let got = Vec::<f32>::try_from(&p.detach()).unwrap();
            for i in 0..3 {
                assert!(
                    (f64::from(got[i]) - want[i]).abs() < 1e-5,
                    "step {step}: {got:?} vs {want:?}"
                );
            }
        }
    }

    /// The fused step and the per-tensor one give the same parameters and moments (to float
    /// rounding) over several Adam and AdamW steps, and both leave a frozen parameter and one
    /// without a gradient untouched.
    #[test]
    fn the_fused_step_matches_the_per_tensor_step() {
        for weight_decay in [0.0, 0.1] {
            let config = AdamConfig {
                lr: 0.05,
                eps: 1e-6,
                weight_decay,
                ..AdamConfig::default()
            };
            let make = || {
                tch::manual_seed(3);
                let opts = (Kind::Float, tch::Device::Cpu);
                vec![
                    (
                        "a".to_string(),
                        Tensor::randn([5, 3], opts).set_requires_grad(true),
                    ),
                    (
                        "b".to_string(),
                        Tensor::randn([7], opts).set_requires_grad(true),
                    ),
                    (
                        "frozen".to_string(),
                        Tensor::randn([2], opts).set_requires_grad(true),
                    ),
                    (
                        "unused".to_string(),
                        Tensor::randn([4], opts).set_requires_grad(true),
                    ),
                ]
            };
            let (fused_params, plain_params) = (make(), make());
            let mut fused = Adam::new(config, &fused_params).unwrap();
            let mut plain = Adam::new(config, &plain_params).unwrap();
            let frozen_before = Vec::<f32>::try_from(&fused_params[2].1.detach()).unwrap();
            let unused_before = Vec::<f32>::try_from(&fused_params[3].1.detach()).unwrap();
            for step in 0..4 {
                for (params, adam, fused_step) in [
                    (&fused_params, &mut fused, true),
                    (&plain_params, &mut plain, false),
                ] {
                    crate::zero_grads(params).unwrap();
                    let loss = (params[0].1.sin().sum(Kind::Float)
                        + params[1].1.pow_tensor_scalar(2).sum(Kind::Float) * (step + 1) as f64
                        + params[2].1.sum(Kind::Float))
                        * 3.0;
                    loss.backward();
                    if step == 0 {
                        let _ = params[2].1.set_requires_grad(false);
                    }
                    if fused_step {
                        adam.step(params).unwrap();
                    } else {
                        adam.step_unfused(params).unwrap();
                    }
                }
            }
            for ((name, f), (_, p)) in fused_params.iter().zip(&plain_params) {
                let diff = (f - p).abs().max().double_value(&[]);
                assert!(diff < 1e-6, "{name} (wd {weight_decay}): off by {diff}");
                let (fm, fv) = fused.moments(name).unwrap();
                let (pm, pv) = plain.moments(name).unwrap();
                let moments = (fm - pm).abs().max().double_value(&[])
                    + (fv - pv).abs().max().double_value(&[]);
                assert!(moments < 1e-6, "{name}: moments off by {moments}");
            }
            assert!(
                (&fused_params[0].1 - &make()[0].1)
                    .abs()
                    .max()
                    .double_value(&[])
                    > 1e-3,
                "the parameters moved"
            );
            assert_eq!(
                Vec::<f32>::try_from(&fused_params[2].1.detach()).unwrap(),
                frozen_before
            );
            assert_eq!(
                Vec::<f32>::try_from(&fused_params[3].1.detach()).unwrap(),
                unused_before
            );
            assert_eq!(fused.steps(), 4);
        }
    }
}
