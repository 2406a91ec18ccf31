//! The checkpoint key scheme every agent uses: a network's parameters under `online.`,
//! `target.`, `initial.` (theta_0) and the like, the optimiser under `adam.` (see
//! [`crate::Adam::state_tensors`]).

use fire::{NamedTensors, ParamSnapshot};
use tch::Tensor;

use crate::{Error, Result};

/// `tensors` with `prefix` before every name (shallow clones).
pub fn prefixed(prefix: &str, tensors: &[(String, Tensor)]) -> NamedTensors {
    tensors
        .iter()
        .map(|(n, t)| (format!("{prefix}{n}"), t.shallow_clone()))
        .collect()
}

/// The saved tensor `key`, or an error naming it.
pub fn find<'a>(tensors: &'a [(String, Tensor)], key: &str) -> Result<&'a Tensor> {
    tensors
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Checkpoint(format!("`{key}` missing")))
}

/// Copies `prefix + name` from `saved` into each of `live` (in place, shapes checked).
pub fn restore(prefix: &str, live: &[(String, Tensor)], saved: &[(String, Tensor)]) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for (name, t) in live {
            let key = format!("{prefix}{name}");
            let from = find(saved, &key)?;
            if from.size() != t.size() {
                return Err(Error::Checkpoint(format!(
                    "`{key}` has shape {:?}, the network {:?}",
                    from.size(),
                    t.size()
                )));
            }
            t.shallow_clone().f_copy_(from)?;
        }
        Ok(())
    })
}

/// theta_0 of every parameter in `params` that `initial` holds, under `initial.<name>`
/// (shallow clones), for a checkpoint.
pub fn initial_tensors(initial: &ParamSnapshot, params: &[(String, Tensor)]) -> NamedTensors {
    params
        .iter()
        .filter_map(|(n, t)| {
            let init = initial.get(n, t, "theta_0").ok()?;
            Some((format!("initial.{n}"), init.shallow_clone()))
        })
        .collect()
}

/// theta_0 of every parameter in `params` from the `initial.<name>` tensors of a checkpoint,
/// on each parameter's device (an error names one that is missing).
pub fn load_initial(
    params: &[(String, Tensor)],
    saved: &[(String, Tensor)],
) -> Result<ParamSnapshot> {
    let initial = params
        .iter()
        .map(|(n, t)| {
            let from = find(saved, &format!("initial.{n}"))?;
            Ok((n.clone(), from.f_to_device(t.device())?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ParamSnapshot::from_tensors(initial))
}

/// theta_0 for `params` when parameters joined the network (plasticity injection's heads):
/// the value `initial` holds where it has one, a copy of the current value for the others.
pub fn extend_initial(initial: &ParamSnapshot, params: &[(String, Tensor)]) -> ParamSnapshot {
    let tensors = params
        .iter()
        .map(|(name, t)| {
            let saved = match initial.get(name, t, "theta_0") {
                Ok(init) => init.shallow_clone(),
                Err(_) => t.detach().copy(),
            };
            (name.clone(), saved)
        })
        .collect();
    ParamSnapshot::from_tensors(tensors)
}

/// An error naming the first parameter that holds NaN or infinity. Waits for the device.
pub fn check_finite(params: &[(String, Tensor)]) -> Result<()> {
    for (name, p) in params {
        let finite = tch::no_grad(|| p.f_isfinite()?.f_all()?.f_int64_value(&[]))?;
        if finite == 0 {
            return Err(Error::NonFiniteParameter { name: name.clone() });
        }
    }
    Ok(())
}

/// CPU copies (no gradient history) of `params`, for publishing weights to actor threads.
pub fn cpu_copies(params: &[(String, Tensor)]) -> Result<NamedTensors> {
    tch::no_grad(|| {
        params
            .iter()
            .map(|(n, t)| {
                Ok((
                    n.clone(),
                    t.f_detach()?.f_to_device(tch::Device::Cpu)?.copy(),
                ))
            })
            .collect()
    })
}
