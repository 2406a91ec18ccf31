//! Interventions on named parameters: FIRE, full reset, shrink & perturb, and reset of
//! selected layers (a full reset restricted by a [`ParamSelector`]).
//!
//! An intervention acts in place on the tensors it is given (for a `tch::nn::VarStore`, the
//! shallow clones from [`params_of`] share storage with the store) and returns one
//! [`ParamReport`] per parameter it changed. What happens to optimiser state and target
//! networks is the agent's business: the reports say what changed so it can decide.
//! ReDo needs activations and lives in [`crate::redo`].

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::layer::{fire_weights, isometry_dfi, ParamRole};
use crate::orthogonalize::{sfe, squared_norm, Orthogonalizer};
use crate::select::ParamSelector;

/// A set of named tensors in name order; the parameters an intervention acts on.
pub type NamedTensors = Vec<(String, Tensor)>;

/// The parameters of a `VarStore`, sorted by name, sharing storage with the store.
pub fn params_of(vs: &tch::nn::VarStore) -> NamedTensors {
    let mut params: NamedTensors = vs.variables().into_iter().collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

/// A deep copy of parameters taken at one moment, e.g. the initial values theta_0.
#[derive(Debug, Default)]
pub struct ParamSnapshot {
    tensors: BTreeMap<String, Tensor>,
}

impl ParamSnapshot {
    /// Copies every tensor (no gradient history, same device and dtype).
    pub fn capture(params: &[(String, Tensor)]) -> Self {
        let tensors = tch::no_grad(|| {
            params
                .iter()
                .map(|(name, t)| (name.clone(), t.detach().copy()))
                .collect()
        });
        Self { tensors }
    }

    /// Builds a snapshot from tensors already copied (e.g. loaded from a file).
    pub fn from_tensors(tensors: NamedTensors) -> Self {
        Self {
            tensors: tensors.into_iter().collect(),
        }
    }

    /// The saved tensor for `name`, checked against the live parameter's shape.
    pub fn get(&self, name: &str, like: &Tensor, what: &'static str) -> Result<&Tensor> {
        let saved = self.tensors.get(name).ok_or_else(|| Error::MissingParam {
            name: name.to_owned(),
            what,
        })?;
        if saved.size() != like.size() {
            return Err(Error::ShapeMismatch {
                name: name.to_owned(),
                what,
                expected: like.size(),
                actual: saved.size(),
            });
        }
        Ok(saved)
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the snapshot is empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// The two forms of shrink & perturb.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShrinkPerturb {
    /// `theta <- lambda * theta + (1 - lambda) * theta_0`: the form of FIRE's reference code
    /// (lambda = 0.2 in vision, DQN and SAC). Needs theta_0.
    TowardInit {
        /// lambda, the share of the current weights kept.
        shrink: f64,
    },
    /// `theta <- lambda * theta + sigma * eps`, eps a fresh draw from the initialiser (Ash &
    /// Adams). Needs a freshly initialised copy of the network as the source of eps.
    Noise {
        /// lambda, the share of the current weights kept.
        shrink: f64,
        /// sigma, the scale of the fresh initialisation added.
        sigma: f64,
    },
}

impl ShrinkPerturb {
    /// The reference form with the paper's lambda = 0.2.
    pub const PAPER: ShrinkPerturb = ShrinkPerturb::TowardInit { shrink: 0.2 };
}

/// What to do to the selected parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Intervention {
    /// FIRE: replace every selected conv and linear weight by its scaled orthogonal polar
    /// factor; selected biases and norms are left as they are.
    Fire(Orthogonalizer),
    /// Copy theta_0 back into every selected parameter (biases and norms included). With a
    /// narrow selector this is "reset selected layers", e.g. the head.
    Reset,
    /// Shrink & perturb every selected parameter.
    ShrinkPerturb(ShrinkPerturb),
}

/// What an intervention did to one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Replaced by its scaled orthogonal factor.
    Orthogonalized,
    /// Restored to theta_0.
    Reset,
    /// Shrunk and perturbed.
    ShrinkPerturbed,
    /// Neurons recycled by ReDo.
    Recycled,
}

/// One parameter's record of an intervention.
#[derive(Clone, Debug, Serialize)]
pub struct ParamReport {
    /// The parameter's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its role.
    pub role: ParamRole,
    /// What was done.
    pub action: Action,
    /// `||W_before - W_after||_F^2`.
    pub sfe: f64,
    /// SFE divided by `||W_before||_F^2` (0 when the weight was zero).
    pub normalized_sfe: f64,
    /// [`isometry_dfi`] before (weights only).
    pub dfi_before: Option<f64>,
    /// [`isometry_dfi`] after, of the value stored in the parameter's dtype (for FIRE: DfI of
    /// the orthogonal factor, as rounded to that dtype).
    pub dfi_after: Option<f64>,
    /// Newton–Schulz iterations run (0 for anything but iterative FIRE).
    pub iterations: usize,
    /// Wall-clock seconds spent on this parameter (batched work is shared out evenly).
    pub seconds: f64,
}

impl ParamReport {
    /// Measures a parameter that `action` changed from `before` to `after` (same shape): SFE,
    /// normalised SFE, and for weight matrices DfI before and after. No iterations, no time.
    pub fn measure(name: &str, before: &Tensor, after: &Tensor, action: Action) -> Result<Self> {
        let role = ParamRole::classify(name, &after.size());
        let sfe = sfe(before, after)?;
        let norm2 = squared_norm(before)?;
        let dfi = |t: &Tensor| role.is_matrix().then(|| isometry_dfi(role, t)).transpose();
        Ok(Self {
            name: name.to_owned(),
            shape: after.size(),
            role,
            action,
            sfe,
            normalized_sfe: normalize(sfe, norm2),
            dfi_before: dfi(before)?,
            dfi_after: dfi(after)?,
            iterations: 0,
            seconds: 0.0,
        })
    }
}

/// Extra tensors an intervention may need.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sources<'a> {
    /// The initial values theta_0 (full reset, shrink & perturb toward init).
    pub initial: Option<&'a ParamSnapshot>,
    /// A freshly initialised network (noise for the classic shrink & perturb).
    pub fresh: Option<&'a ParamSnapshot>,
}

impl Intervention {
    /// Applies the intervention in place to the selected parameters and reports per parameter.
    pub fn apply(
        &self,
        params: &[(String, Tensor)],
        selector: &ParamSelector,
        sources: Sources<'_>,
    ) -> Result<Vec<ParamReport>> {
        let selected: Vec<(&str, &Tensor, ParamRole)> = params
            .iter()
            .filter(|(name, t)| selector.matches(name, &t.size()))
            .map(|(name, t)| (name.as_str(), t, ParamRole::classify(name, &t.size())))
            .collect();
        match *self {
            Intervention::Fire(method) => fire(&selected, method),
            Intervention::Reset => {
                let initial = require(sources.initial, "the initial parameters (theta_0)")?;
                each(&selected, Action::Reset, |name, t| {
                    Ok(initial.get(name, t, "the initial parameters")?.copy())
                })
            }
            Intervention::ShrinkPerturb(form) => match form {
                ShrinkPerturb::TowardInit { shrink } => {
                    check_fraction(shrink)?;
                    let initial = require(sources.initial, "the initial parameters (theta_0)")?;
                    each(&selected, Action::ShrinkPerturbed, |name, t| {
                        let init = initial.get(name, t, "the initial parameters")?;
                        Ok(t.f_mul_scalar(shrink)?
                            .f_add(&init.f_mul_scalar(1.0 - shrink)?)?)
                    })
                }
                ShrinkPerturb::Noise { shrink, sigma } => {
                    check_fraction(shrink)?;
                    if !(sigma.is_finite() && sigma >= 0.0) {
                        return Err(Error::InvalidConfig {
                            what: "perturbation scale sigma",
                            reason: format!("must be a non-negative number, got {sigma}"),
                        });
                    }
                    let fresh = require(sources.fresh, "a freshly initialised network")?;
                    each(&selected, Action::ShrinkPerturbed, |name, t| {
                        let eps = fresh.get(name, t, "the fresh initialisation")?;
                        Ok(t.f_mul_scalar(shrink)?.f_add(&eps.f_mul_scalar(sigma)?)?)
                    })
                }
            },
        }
    }
}

fn require<'a>(source: Option<&'a ParamSnapshot>, what: &'static str) -> Result<&'a ParamSnapshot> {
    source.ok_or(Error::InvalidConfig {
        what: "intervention sources",
        reason: format!("this intervention needs {what}"),
    })
}

fn check_fraction(shrink: f64) -> Result<()> {
    if (0.0..=1.0).contains(&shrink) {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            what: "shrink factor lambda",
            reason: format!("must be in [0, 1], got {shrink}"),
        })
    }
}

/// A selected parameter: its name, its live tensor and its role.
type Selected<'a> = (&'a str, &'a Tensor, ParamRole);

/// FIRE on the selected matrices, batching same-shaped weights of one role together.
fn fire(
    selected: &[(&str, &Tensor, ParamRole)],
    method: Orthogonalizer,
) -> Result<Vec<ParamReport>> {
    let mut groups: BTreeMap<(Vec<i64>, bool), Vec<Selected<'_>>> = BTreeMap::new();
    for &(name, t, role) in selected.iter().filter(|(_, _, r)| r.is_matrix()) {
        let is_conv = role == ParamRole::ConvWeight;
        groups
            .entry((t.size(), is_conv))
            .or_default()
            .push((name, t, role));
    }
    let mut reports = Vec::new();
    // Nothing is written until every new weight is known to be finite.
    let mut pending: Vec<(&Tensor, Tensor)> = Vec::new();
    for members in groups.values() {
        let started = Instant::now();
        let role = members[0].2;
        let weights: Vec<&Tensor> = members.iter().map(|m| m.1).collect();
        // A NaN or infinite weight has no polar factor (the SVD returns noise, Newton–Schulz a
        // NaN); say which parameter it is rather than let orthogonalize count matrices.
        for &(name, t, _) in members {
            check_finite(name, t, "the current value")?;
        }
        let before = members
            .iter()
            .map(|&(_, t, role)| Ok((isometry_dfi(role, t)?, squared_norm(t)?)))
            .collect::<Result<Vec<_>>>()?;
        let fired = fire_weights(role, &weights, method)?;
        let mut group_reports = Vec::with_capacity(members.len());
        for ((&(name, t, role), new), (dfi_before, norm2)) in members.iter().zip(fired).zip(before)
        {
            check_finite(name, &new.weight, "the new value")?;
            let sfe = sfe(t, &new.weight)?;
            // The factor was computed in f32; a bf16 or f16 parameter stores it rounded, and
            // the report describes what is stored.
            let dfi_after = if new.weight.kind() == Kind::Float {
                new.dfi
            } else {
                isometry_dfi(role, &new.weight)?
            };
            pending.push((t, new.weight));
            group_reports.push(ParamReport {
                name: name.to_owned(),
                shape: t.size(),
                role,
                action: Action::Orthogonalized,
                sfe,
                normalized_sfe: normalize(sfe, norm2),
                dfi_before: Some(dfi_before),
                dfi_after: Some(dfi_after),
                iterations: new.iterations,
                seconds: 0.0,
            });
        }
        let share = started.elapsed().as_secs_f64() / group_reports.len() as f64;
        for r in &mut group_reports {
            r.seconds = share;
        }
        reports.extend(group_reports);
    }
    tch::no_grad(|| -> Result<()> {
        for (t, new) in &pending {
            t.shallow_clone().f_copy_(new)?;
        }
        Ok(())
    })?;
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

/// Applies `new_value` to each selected parameter in place and reports.
fn each(
    selected: &[(&str, &Tensor, ParamRole)],
    action: Action,
    new_value: impl Fn(&str, &Tensor) -> Result<Tensor>,
) -> Result<Vec<ParamReport>> {
    // Compute every new value first so an error leaves the parameters untouched.
    let mut updates = Vec::with_capacity(selected.len());
    for &(name, t, role) in selected {
        let started = Instant::now();
        let new = tch::no_grad(|| new_value(name, t))?.f_to_kind(t.kind())?;
        check_finite(name, &new, "the new value")?;
        updates.push((name, t, role, new, started.elapsed().as_secs_f64()));
    }
    let mut reports = Vec::with_capacity(updates.len());
    for (name, t, role, new, seconds) in updates {
        let started = Instant::now();
        let (dfi_before, dfi_after) = if role.is_matrix() {
            (
                Some(isometry_dfi(role, t)?),
                Some(isometry_dfi(role, &new)?),
            )
        } else {
            (None, None)
        };
        let sfe = sfe(t, &new)?;
        let norm2 = squared_norm(t)?;
        tch::no_grad(|| t.shallow_clone().f_copy_(&new))?;
        reports.push(ParamReport {
            name: name.to_owned(),
            shape: t.size(),
            role,
            action,
            sfe,
            normalized_sfe: normalize(sfe, norm2),
            dfi_before,
            dfi_after,
            iterations: 0,
            seconds: seconds + started.elapsed().as_secs_f64(),
        });
    }
    Ok(reports)
}

fn normalize(sfe: f64, norm2: f64) -> f64 {
    if norm2 > 0.0 {
        sfe / norm2
    } else {
        0.0
    }
}

fn check_finite(name: &str, t: &Tensor, what: &'static str) -> Result<()> {
    let finite = tch::no_grad(|| -> Result<bool> {
        // In the tensor's own dtype: an f64 of 1e300 is finite, its f32 rounding is not.
        Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1)
    })?;
    if finite {
        Ok(())
    } else {
        Err(Error::NonFinite {
            name: name.to_owned(),
            what,
        })
    }
}
