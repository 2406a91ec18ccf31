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

/// Drops the gradient of every parameter (PyTorch's `zero_grad(set_to_none=True)`, its
/// default): the next backward pass hands each parameter its gradient buffer instead of adding
/// into a zeroed one (a memset and a pass of adds saved per parameter). A parameter the next
/// pass does not reach is left without a gradient, which [`crate::Adam::step`] skips.
pub fn clear_grads(params: &[(String, Tensor)]) -> Result<()> {
    crate::fused::clear_grads(params)
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

/// [`polyak`] on parameter lists the agent keeps (both sorted by name, as
/// `fire::params_of` gives them): no variable maps built per call. An error names the first
/// pair whose names differ.
pub fn polyak_lists(
    target: &[(String, Tensor)],
    online: &[(String, Tensor)],
    tau: f64,
) -> Result<()> {
    if target.len() != online.len() {
        return Err(Error::Checkpoint(format!(
            "target has {} variables, the online network {}",
            target.len(),
            online.len()
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for ((name, t), (other, o)) in target.iter().zip(online) {
            if name != other {
                return Err(Error::Checkpoint(format!(
                    "target has `{name}` where the online network has `{other}`"
                )));
            }
            let mut t = t.shallow_clone();
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

    /// The list form blends like the store form and refuses lists that do not pair up.
    #[test]
    fn polyak_lists_blends_and_checks_names() {
        let (target, online) = (store(0.0), store(2.0));
        let (t, o) = (fire_sorted(&target), fire_sorted(&online));
        polyak_lists(&t, &o, 0.25).unwrap();
        assert_eq!(value(&target), vec![0.5; 3]);
        polyak_lists(&t, &o, 1.0).unwrap();
        assert_eq!(value(&target), vec![2.0; 3]);
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var("v", &[3], nn::Init::Const(0.0));
        let err = polyak_lists(&t, &fire_sorted(&other), 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`w` where the online network has `v`"),
            "{err}"
        );
        assert!(polyak_lists(&t, &[], 1.0).is_err());
    }

    fn fire_sorted(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// After `clear_grads` no gradient is defined, and the next backward pass gives the same
    /// gradient as after zeroing.
    #[test]
    fn clear_grads_drops_gradients() {
        let p = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        (&p * 3.0).sum(Kind::Float).backward();
        assert!(p.grad().defined());
        clear_grads(&params).unwrap();
        assert!(!p.grad().defined());
        (&p * 2.0).sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(&p.grad()).unwrap(), vec![2.0; 2]);
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
