//! Plasticity diagnostics of the SAC agent (FIRE.md section 5) on a probe batch: the first
//! critic's dormant ratios and feature ranks, the actor's dormant ratio, and DfI of every
//! dense kernel of each network.

use fire::{metrics, ParamRole};
use tch::Tensor;

use crate::{Result, Sac};

/// Metrics [`agent::Agent::plasticity`] reports for SAC (FIRE.md section 5): the critic's
/// (first member's) dormant ratios and feature ranks, the actor's dormant ratio, and DfI of
/// all of each network's dense kernels.
pub const PLASTICITY_METRICS: &[&str] = &[
    "dormant_ratio",
    "dormant_ratio_tau0",
    "effective_rank",
    "srank",
    "feature_norm",
    "actor_dormant_ratio",
    "dfi_critic",
    "dfi_actor",
    "active_fraction",
    "weight_distance",
    "weight_distance_rms",
    "grad_norm",
];

impl Sac {
    /// Plasticity diagnostics on raw observations `probe [n, obs_dim]` (the critic is probed
    /// at the actor's deterministic actions).
    pub fn plasticity(&self, probe: &Tensor) -> Result<Vec<(&'static str, f64)>> {
        let x = self.prepare_uncached(probe)?;
        diagnostics(self, &x)
    }
}

/// The plasticity metrics on normalised observations `x`.
fn diagnostics(sac: &Sac, x: &Tensor) -> Result<Vec<(&'static str, f64)>> {
    let (actor_hidden, critic_features, critic_hidden) = tch::no_grad(|| {
        let (_, actor_hidden) = sac.actor().features(x);
        let a = sac.policy.mode(x);
        let (_, features, hidden) = sac.critic.forward_with_features(x, &a, true);
        (actor_hidden, features, hidden)
    });
    let first: Vec<Tensor> = critic_hidden
        .iter()
        .map(|h| h.select(0, 0))
        .chain(std::iter::once(critic_features.select(0, 0)))
        .collect();
    let refs: Vec<&Tensor> = first.iter().collect();
    let features = critic_features.select(0, 0);
    let actor_refs: Vec<&Tensor> = actor_hidden.iter().collect();
    let actor_dormant = if actor_refs.is_empty() {
        0.0
    } else {
        metrics::dormant(&actor_refs, 0.1)?.ratio()
    };
    let params = sac.params();
    let distance = metrics::weight_distance(&params, &sac.initial)?;
    let (mut dfi_actor, mut dfi_critic) = (0.0, 0.0);
    for (name, t) in sac.member_params() {
        let role = ParamRole::classify(&name, &t.size());
        if role == ParamRole::LinearWeight {
            let d = fire::isometry_dfi(role, &t)?;
            if name.starts_with("critic.") {
                dfi_critic += d;
            } else {
                dfi_actor += d;
            }
        }
    }
    Ok(vec![
        ("dormant_ratio", metrics::dormant(&refs, 0.1)?.ratio()),
        ("dormant_ratio_tau0", metrics::dormant(&refs, 0.0)?.ratio()),
        ("effective_rank", metrics::effective_rank(&features)?),
        ("srank", metrics::srank(&features, 0.01)? as f64),
        ("feature_norm", metrics::feature_norm(&features)?),
        ("actor_dormant_ratio", actor_dormant),
        ("dfi_critic", dfi_critic),
        ("dfi_actor", dfi_actor),
        ("active_fraction", metrics::active_fraction(&features)?),
        ("weight_distance", distance.total),
        ("weight_distance_rms", distance.rms),
        // The gradients of the last update (they stay until the next one clears them).
        ("grad_norm", metrics::grad_norm(&params)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{trained, OBS};
    use tch::{Device, Kind};

    #[test]
    fn diagnostics_report_every_metric() {
        let sac = trained(8);
        let probe = Tensor::randn([64, OBS], (Kind::Float, Device::Cpu));
        let m = agent::Agent::plasticity(&sac, &probe).unwrap();
        let names: Vec<&str> = m.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, PLASTICITY_METRICS);
        assert!(m.iter().all(|(_, v)| v.is_finite()));
    }
}
