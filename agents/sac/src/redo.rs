//! ReDo (Sokar et al., 2023) for SAC: the dormant ReLU units of the actor's and of each
//! critic's hidden layers, scored on a batch of observations (the critics at the actor's
//! deterministic actions, as the diagnostics probe them), get fresh incoming weights, a zero
//! bias and zero outgoing weights in every layer that reads them, and their Adam moments are
//! zeroed likewise (`agent::redo`, as DQN's ReDo). Which layers: `Actor::redo_layers` and
//! `Critic::redo_layers` (SimBa: each residual block's expansion `fc1`; MLP: every hidden
//! layer). The optimisers and the temperature are otherwise kept; the target critic is set to
//! the critic afterwards (the rule of the paper's SAC interventions, and what DQN's ReDo does
//! here by default).

use std::collections::BTreeMap;

use agent::redo::{recycle_layers, Hidden};
use fire::{params_of, ParamReport, ParamSnapshot};
use tch::{nn, Tensor};

use crate::actor::Actor;
use crate::critic::{member_views, Critic};
use crate::{Result, Sac};

/// `critic.fc1` of member `m` (0-based): `critic.q{m+1}.fc1`, as [`member_views`] names it.
fn member_name(name: &str, m: i64) -> String {
    match name.strip_prefix("critic.") {
        Some(rest) => format!("critic.q{}.{rest}", m + 1),
        None => name.to_owned(),
    }
}

/// The member (0-based) and the stacked name of a member view's name:
/// `critic.q2.fc1.weight` gives `(1, "critic.fc1.weight")`.
fn split_member(name: &str) -> Option<(i64, String)> {
    let rest = name.strip_prefix("critic.q")?;
    let (k, rest) = rest.split_once('.')?;
    let k: i64 = k.parse().ok()?;
    Some((k - 1, format!("critic.{rest}")))
}

impl Sac {
    /// ReDo on the actor and every critic member, with units scored on raw observations
    /// `probe [n, obs_dim]` (normalised with the current statistics) at threshold `tau`;
    /// reports each changed parameter once (critic members as `critic.q<k>.*`). Then the
    /// target critic := critic; optimiser state (but for the recycled entries) and
    /// temperature are kept.
    pub fn redo(&mut self, probe: &Tensor, tau: f64) -> Result<Vec<ParamReport>> {
        let x = self.prepare_uncached(probe)?;
        let (actor_hidden, critic_hidden) = tch::no_grad(|| {
            let (_, actor_hidden) = self.actor().features(&x);
            let a = self.policy.mode(&x);
            let (_, _, critic_hidden) = self.critic.forward_with_features(&x, &a, true);
            (actor_hidden, critic_hidden)
        });
        let members = self.critic.members();
        let member_hidden: Vec<Vec<Tensor>> = (0..members)
            .map(|m| critic_hidden.iter().map(|h| h.select(0, m)).collect())
            .collect();
        let mut units = Vec::new();
        for ((layer, consumers), activations) in
            self.actor().redo_layers().into_iter().zip(&actor_hidden)
        {
            units.push(Hidden {
                layer,
                consumers,
                activations,
            });
        }
        for (m, hidden) in member_hidden.iter().enumerate() {
            let m = m as i64;
            for ((layer, consumers), activations) in
                self.critic.redo_layers().into_iter().zip(hidden)
            {
                units.push(Hidden {
                    layer: member_name(&layer, m),
                    consumers: consumers.iter().map(|c| member_name(c, m)).collect(),
                    activations,
                });
            }
        }
        // Fresh incoming weights come from newly initialised networks of the same shapes.
        let (obs_dim, device) = (self.obs_shape[0], self.device());
        let fresh_actor = nn::VarStore::new(device);
        let options = self.config.network;
        let _ = Actor::new(
            &fresh_actor.root(),
            &self.arch,
            obs_dim,
            self.action_dim,
            options,
        );
        let fresh_critic = nn::VarStore::new(device);
        let _ = Critic::new(
            &fresh_critic.root(),
            &self.arch,
            obs_dim,
            self.action_dim,
            members,
            options,
        );
        let mut fresh = params_of(&fresh_actor);
        fresh.extend(params_of(&fresh_critic));
        let fresh = ParamSnapshot::capture(&member_views(&fresh));
        let vars: BTreeMap<String, Tensor> = self.member_params().into_iter().collect();
        let (actor_adam, critic_adam) = (&self.actor_adam, &self.critic_adam);
        let moments = |name: &str| -> Option<(Tensor, Tensor)> {
            match split_member(name) {
                Some((m, stacked)) => {
                    let (first, second) = critic_adam.moments(&stacked)?;
                    Some((first.select(0, m), second.select(0, m)))
                }
                None => {
                    let (first, second) = actor_adam.moments(name)?;
                    Some((first.shallow_clone(), second.shallow_clone()))
                }
            }
        };
        let reports = recycle_layers(&vars, &units, tau, &fresh, &moments)?;
        self.soft_update_target(1.0)?;
        Ok(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{copies, get, same, small_simba, train, with, OBS};
    use crate::{Architecture, SacConfig};
    use fire::{Method, MethodConfig};
    use tch::{Device, Kind};

    #[test]
    fn member_names_round_trip() {
        assert_eq!(member_name("critic.block1.fc1", 1), "critic.q2.block1.fc1");
        assert_eq!(member_name("actor.fc1", 1), "actor.fc1");
        assert_eq!(
            split_member("critic.q2.block1.fc1.weight"),
            Some((1, "critic.block1.fc1.weight".into()))
        );
        assert_eq!(split_member("actor.fc1.weight"), None);
    }

    /// Moments of a parameter by member-view name, as deep copies.
    fn moments_of(sac: &Sac, name: &str) -> (Tensor, Tensor) {
        let (m, v) = match split_member(name) {
            Some((k, stacked)) => {
                let (m, v) = sac.critic_adam.moments(&stacked).unwrap();
                (m.select(0, k), v.select(0, k))
            }
            None => {
                let (m, v) = sac.actor_adam.moments(name).unwrap();
                (m.shallow_clone(), v.shallow_clone())
            }
        };
        (m.copy(), v.copy())
    }

    /// Units whose activations are all zero on the probe (score 0), per ReDo layer (member
    /// names), as the agent scores them.
    fn dead_units(sac: &Sac, probe: &Tensor) -> Vec<(String, Vec<String>, Vec<i64>)> {
        let x = sac.prepare_uncached(probe).unwrap();
        let (actor_hidden, critic_hidden) = tch::no_grad(|| {
            let (_, h) = sac.actor().features(&x);
            let a = sac.policy.mode(&x);
            (h, sac.critic.forward_with_features(&x, &a, true).2)
        });
        let dead = |h: &Tensor| {
            let live = h
                .abs()
                .sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
            Vec::<i64>::try_from(&live.eq(0.0).nonzero().flatten(0, -1)).unwrap()
        };
        let mut out = Vec::new();
        for ((layer, consumers), h) in sac.actor().redo_layers().into_iter().zip(&actor_hidden) {
            out.push((layer, consumers, dead(h)));
        }
        for m in 0..sac.critic.members() {
            for ((layer, consumers), h) in sac.critic.redo_layers().into_iter().zip(&critic_hidden)
            {
                let consumers = consumers.iter().map(|c| member_name(c, m)).collect();
                out.push((member_name(&layer, m), consumers, dead(&h.select(0, m))));
            }
        }
        out
    }

    /// Kills `units` of the member-view layer `layer`: zero incoming weights, bias -1, so
    /// the ReLU after it is 0 on every input.
    fn kill(sac: &Sac, layer: &str, units: &[i64]) {
        let params = sac.member_params();
        tch::no_grad(|| {
            for &u in units {
                let _ = get(&params, &format!("{layer}.weight")).get(u).fill_(0.0);
                let _ = get(&params, &format!("{layer}.bias")).get(u).fill_(-1.0);
            }
        });
    }

    fn norm(t: &Tensor) -> f64 {
        t.abs().sum(Kind::Float).double_value(&[])
    }

    /// Recycled units (the ones killed, and any other unit dead on the probe) get fresh
    /// incoming weights, a zero bias, zero outgoing weights in every consumer (both actor
    /// heads for the MLP's last layer) and zero moments there; every other row, column and
    /// moment is untouched; outputs are unchanged, the target is the critic, optimiser steps
    /// and temperature are kept.
    #[test]
    fn redo_recycles_dormant_units_and_leaves_the_rest() {
        let cases = [
            (small_simba(), "actor.block1.fc1", "critic.q2.block1.fc1"),
            (
                Architecture::Mlp { hidden: vec![8, 8] },
                "actor.fc2",
                "critic.q2.fc1",
            ),
        ];
        for (arch, actor_layer, critic_layer) in cases {
            let mut sac = train(with(&arch, SacConfig::simba(), 21), 21);
            kill(&sac, actor_layer, &[1, 4]);
            kill(&sac, critic_layer, &[2, 5]);
            let probe = Tensor::randn([64, OBS], (Kind::Float, Device::Cpu)) * 3.0;
            let dead = dead_units(&sac, &probe);
            for (layer, units) in [(actor_layer, [1, 4]), (critic_layer, [2, 5])] {
                let (_, _, d) = dead.iter().find(|(l, _, _)| l == layer).unwrap();
                assert!(units.iter().all(|u| d.contains(u)), "{layer}: {d:?}");
            }
            let x = sac.prepare_uncached(&probe).unwrap();
            let out_before = tch::no_grad(|| {
                let a = sac.policy.mode(&x);
                (sac.actor().gaussian(&x), sac.critic.forward(&x, &a, false))
            });
            let before = copies(&sac.member_params());
            let moments_before: Vec<_> = before
                .iter()
                .map(|(n, _)| (n.clone(), moments_of(&sac, n)))
                .collect();
            let steps = sac.critic_adam.steps();
            let alpha = sac.temperature().unwrap();
            let cfg = MethodConfig {
                method: Method::Redo,
                redo_tau: 0.0,
                ..MethodConfig::default()
            };
            assert!(
                sac.intervene(&cfg, None).is_err(),
                "ReDo needs observations"
            );
            let reports = sac.intervene(&cfg, Some(&probe)).unwrap();
            let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                names.len(),
                "one report per parameter: {names:?}"
            );
            let after = sac.member_params();
            // Every (parameter, index along the recycled dimension) ReDo may touch.
            let mut rows: Vec<(String, i64)> = Vec::new();
            let mut cols: Vec<(String, i64)> = Vec::new();
            for (layer, consumers, units) in &dead {
                for &u in units {
                    let w = format!("{layer}.weight");
                    let b = format!("{layer}.bias");
                    assert!(names.contains(&w.as_str()), "{w} not reported");
                    assert!(norm(&get(&after, &w).get(u)) > 0.0, "{w}[{u}] fresh");
                    assert!(!same(&get(&after, &w).get(u), &get(&before, &w).get(u)));
                    assert_eq!(norm(&get(&after, &b).get(u)), 0.0, "{b}[{u}] zero");
                    rows.push((w, u));
                    rows.push((b, u));
                    for c in consumers {
                        let cw = format!("{c}.weight");
                        assert!(names.contains(&cw.as_str()), "{cw} not reported");
                        cols.push((cw, u));
                    }
                }
            }
            // Outgoing columns are zero but in the rows of a consumer's own recycled units,
            // which get a whole fresh row after their column was zeroed (as in the reference
            // ReDo, layer by layer); those units' outgoing weights are zero in turn.
            let outside_rows = |name: &str, t: &Tensor| {
                let t = t.copy();
                for (n, r) in &rows {
                    if n == name {
                        let _ = t.get(*r).fill_(0.0);
                    }
                }
                t
            };
            for (cw, u) in &cols {
                let column = outside_rows(cw, &get(&after, cw)).select(1, *u);
                assert_eq!(norm(&column), 0.0, "{cw}[:, {u}]");
            }
            if matches!(arch, Architecture::Mlp { .. }) {
                assert!(cols.iter().any(|(n, _)| n == "actor.mean.weight"));
                assert!(cols.iter().any(|(n, _)| n == "actor.log_std.weight"));
            }
            for ((name, old), (_, (m_old, v_old))) in before.iter().zip(&moments_before) {
                let now = get(&after, name);
                let (m_now, v_now) = moments_of(&sac, name);
                for (t_old, t_now, what) in [
                    (old, &now, "value"),
                    (m_old, &m_now, "first moment"),
                    (v_old, &v_now, "second moment"),
                ] {
                    // Masks out what ReDo may change, then compares the rest bit for bit.
                    let (a, b) = (t_old.copy(), t_now.copy());
                    for (n, u) in &rows {
                        if n == name {
                            let _ = a.get(*u).fill_(0.0);
                            let _ = b.get(*u).fill_(0.0);
                        }
                    }
                    for (n, u) in &cols {
                        if n == name {
                            let _ = a.select(1, *u).fill_(0.0);
                            let _ = b.select(1, *u).fill_(0.0);
                        }
                    }
                    assert!(
                        same(&a, &b),
                        "{name}: {what} changed outside recycled units"
                    );
                    if what != "value" {
                        for (n, u) in &rows {
                            if n == name {
                                assert_eq!(norm(&t_now.get(*u)), 0.0, "{name} {what}[{u}]");
                            }
                        }
                        for (n, u) in &cols {
                            if n == name {
                                let column = outside_rows(name, t_now).select(1, *u);
                                assert_eq!(norm(&column), 0.0, "{name} {what}[:, {u}]");
                            }
                        }
                    }
                }
            }
            let out_after = tch::no_grad(|| {
                let a = sac.policy.mode(&x);
                (sac.actor().gaussian(&x), sac.critic.forward(&x, &a, false))
            });
            let close = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-6, 1e-6, false);
            assert!(close(&out_before.0 .0, &out_after.0 .0), "actor mean");
            assert!(close(&out_before.0 .1, &out_after.0 .1), "actor log-std");
            assert!(close(&out_before.1, &out_after.1), "critic");
            for ((_, c), (_, t)) in sac
                .params()
                .iter()
                .filter(|(n, _)| n.starts_with("critic."))
                .zip(sac.target_params())
            {
                assert!(same(c, &t), "target := critic");
            }
            assert_eq!(sac.critic_adam.steps(), steps, "optimiser kept");
            assert_eq!(sac.temperature().unwrap(), alpha, "temperature kept");
        }
    }
}
