//! What every agent does to its own parameters around an update: zeroing the gradients before
//! a backward pass, and moving a target network toward its online network (Polyak averaging,
//! a copy at `tau = 1`).

use tch::{nn, Tensor};

use crate::{Error, Result};

/// Zeroes the gradient of every parameter that has one (before a backward pass).
pub fn zero_grads(params: &[(String, Tensor)]) -> Result<()> {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_zero_()?;
        }
    }
    Ok(())
}

/// Moves every variable of `target` toward the variable of the same name in `online` by `tau`:
/// `target <- target + tau (online - target)` (`lerp`), a copy when `tau >= 1`. An error names a
/// target variable the online network lacks (the two must have the same structure, plasticity
/// injection's extra heads included).
pub fn polyak(target: &nn::VarStore, online: &nn::VarStore, tau: f64) -> Result<()> {
    let online = online.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, mut t) in target.variables() {
            let o = online.get(name.as_str()).ok_or_else(|| {
                Error::Checkpoint(format!("target has `{name}`, the online network does not"))
            })?;
            if tau >= 1.0 {
                t.f_copy_(o)?;
            } else {
                let _ = t.f_lerp_(o, tau)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn store(value: f64) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var("w", &[3], nn::Init::Const(value));
        vs
    }

    fn value(vs: &nn::VarStore) -> Vec<f32> {
        Vec::<f32>::try_from(&vs.variables()["w"]).unwrap()
    }

    /// `tau = 1` copies; a smaller tau blends by `lerp`.
    #[test]
    fn polyak_copies_at_one_and_blends_below() {
        let (target, online) = (store(0.0), store(2.0));
        polyak(&target, &online, 0.25).unwrap();
        assert_eq!(value(&target), vec![0.5; 3]);
        polyak(&target, &online, 1.0).unwrap();
        assert_eq!(value(&target), vec![2.0; 3]);
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var("v", &[3], nn::Init::Const(0.0));
        let err = polyak(&target, &other, 1.0).unwrap_err().to_string();
        assert!(err.contains("target has `w`"), "{err}");
    }

    #[test]
    fn zero_grads_clears_every_gradient() {
        let p = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        zero_grads(&params).unwrap(); // no gradient yet: nothing to do
        (&p * 3.0).sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(&p.grad()).unwrap(), vec![3.0; 2]);
        zero_grads(&params).unwrap();
        assert_eq!(Vec::<f32>::try_from(&p.grad()).unwrap(), vec![0.0; 2]);
    }
}
