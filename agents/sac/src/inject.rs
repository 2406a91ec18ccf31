//! Plasticity injection (Nikishin et al., 2023) for SAC: the actor's two heads (mean and
//! log-std) and each critic's Q head are frozen, and each gains a trainable head h' and a frozen
//! twin h'_0, so that its output is `h(phi) + (h'(phi) - h'_0(phi))`, unchanged at the moment of
//! injection. h' and h'_0 start as copies of the theta_0 head (the FIRE reference's DQN rule);
//! the trunks keep training. The rest follows the paper's SAC rules for its other
//! interventions, where the reference (which has no SAC injection) is silent: fresh
//! optimisers, the initial temperature, target critic := critic (the target gets the same
//! heads).

use agent::state;
use fire::params_of;

use crate::actor::Actor;
use crate::network::INJECTED;
use crate::{Error, Result, Sac};

/// Prefixes of the parameters plasticity injection freezes: the old heads and the frozen
/// twins of the new ones.
const FROZEN: &[&str] = &[
    "actor.mean.",
    "actor.log_std.",
    "critic.out.",
    "actor.injected_frozen.",
    "critic.injected_frozen.",
];

impl Sac {
    /// Whether plasticity injection was applied.
    pub fn is_injected(&self) -> bool {
        self.actor().is_injected()
    }

    /// Plasticity injection on actor, critics and target critics (once; an error the second
    /// time). The new heads join theta_0 with their initial values; all three optimisers
    /// start afresh (they track the new heads; the frozen parameters are never stepped, so
    /// weight decay leaves them alone too), the temperature goes back to its initial value and
    /// the target critic is set to the critic. Replay and the normaliser are kept.
    pub fn inject(&mut self) -> Result<()> {
        if self.is_injected() {
            return Err(Error::Config {
                field: "plasticity injection",
                reason: "was already applied to this agent (it is applied once)".into(),
            });
        }
        self.policy.actor_mut().inject(&self.actor_vs.root());
        self.critic.inject(&self.critic_vs.root());
        self.target.inject(&self.target_vs.root());
        let mut vars = self.actor_vs.variables();
        vars.extend(self.critic_vs.variables());
        // h' and its frozen twin h'_0 both start as the theta_0 head.
        let heads = Actor::head_layers().into_iter().chain(["critic.out"]);
        tch::no_grad(|| -> Result<()> {
            for head in heads {
                let (net, layer) = head.split_once('.').expect("`net.layer`");
                for part in ["weight", "bias"] {
                    let source = format!("{head}.{part}");
                    let like = vars.get(&source).ok_or_else(|| Error::Config {
                        field: "plasticity injection",
                        reason: format!("no head `{source}`"),
                    })?;
                    let initial = self.initial.get(&source, like, "theta_0")?;
                    for prefix in INJECTED {
                        let name = format!("{net}.{prefix}.{layer}.{part}");
                        vars[&name].shallow_clone().f_copy_(initial)?;
                    }
                }
            }
            Ok(())
        })?;
        for (name, t) in &vars {
            if FROZEN.iter().any(|p| name.starts_with(p)) {
                let _ = t.set_requires_grad(false);
            }
        }
        self.target_vs.freeze();
        // The cached parameter lists gain the new heads.
        self.actor_params = params_of(&self.actor_vs);
        self.critic_params = params_of(&self.critic_vs);
        self.target_list = params_of(&self.target_vs);
        self.initial = state::extend_initial(&self.initial, &self.params());
        self.actor_adam.track(&params_of(&self.actor_vs));
        self.critic_adam.track(&params_of(&self.critic_vs));
        self.restart_optimization()
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{agent, batch, copies, get, same, small_simba, train, with, OBS};
    use crate::{Architecture, Sac, SacConfig};
    use agent::ActMode;
    use fire::{Method, MethodConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind, Tensor};

    fn inject() -> MethodConfig {
        MethodConfig {
            method: Method::PlasticityInjection,
            ..MethodConfig::default()
        }
    }

    /// Actor mean and log-std, and critic and target Q at the actor's mode, on `x`.
    fn outputs(sac: &Sac, x: &Tensor) -> [Tensor; 4] {
        tch::no_grad(|| {
            let (mean, log_std) = sac.actor().gaussian(x);
            let a = sac.policy_net().mode(x);
            [
                mean,
                log_std,
                sac.critic().forward(x, &a, false),
                sac.target().forward(x, &a, false),
            ]
        })
    }

    fn archs() -> [Architecture; 2] {
        [small_simba(), Architecture::Mlp { hidden: vec![8, 8] }]
    }

    /// At the moment of injection every output is the same bit for bit; the new heads start
    /// as theta_0's; the old heads and the frozen twins stay put while the new heads and the
    /// trunks train; optimisers and temperature start afresh and the target is the critic.
    #[test]
    fn injection_keeps_every_output_and_trains_only_the_new_heads() {
        for arch in archs() {
            let mut sac = train(with(&arch, SacConfig::simba(), 12), 12);
            let x = Tensor::randn([16, OBS], (Kind::Float, Device::Cpu));
            let [mean, log_std, q, _] = outputs(&sac, &x);
            let reports = sac.intervene(&inject(), None).unwrap();
            assert!(reports.is_empty());
            assert!(sac.is_injected());
            let [mean2, log_std2, q2, target_q] = outputs(&sac, &x);
            assert!(same(&mean, &mean2), "{arch:?}: actor mean changed");
            assert!(same(&log_std, &log_std2), "{arch:?}: actor log-std changed");
            assert!(same(&q, &q2), "{arch:?}: critic changed");
            assert!(same(&q, &target_q), "{arch:?}: target := critic");
            assert_eq!(sac.actor_adam.steps(), 0);
            assert_eq!(sac.critic_adam.steps(), 0);
            assert_eq!(sac.temperature_adam.steps(), 0);
            assert!((sac.temperature().unwrap() - 0.01).abs() < 1e-9);
            let params = sac.params();
            for (head, frozen) in [
                ("actor.mean", true),
                ("actor.log_std", true),
                ("critic.out", true),
                ("actor.injected.mean", false),
                ("actor.injected.log_std", false),
                ("critic.injected.out", false),
                ("actor.injected_frozen.mean", true),
                ("actor.injected_frozen.log_std", true),
                ("critic.injected_frozen.out", true),
            ] {
                for part in ["weight", "bias"] {
                    let name = format!("{head}.{part}");
                    let t = get(&params, &name);
                    assert_eq!(t.requires_grad(), !frozen, "{name}");
                    if head.contains("injected") {
                        let theta_0 = format!(
                            "{}.{part}",
                            head.replace("injected_frozen.", "")
                                .replace("injected.", "")
                        );
                        let init = sac.initial.get(&theta_0, &t, "theta_0").unwrap();
                        assert!(same(&t, init), "{name} starts as theta_0's {theta_0}");
                        assert!(same(sac.initial.get(&name, &t, "theta_0").unwrap(), init));
                    }
                }
            }
            let before = copies(&sac.params());
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            for _ in 0..3 {
                sac.update(&batch(&mut rng, 16)).unwrap();
            }
            for ((name, old), (_, now)) in before.iter().zip(sac.params()) {
                let frozen = name.starts_with("actor.mean.")
                    || name.starts_with("actor.log_std.")
                    || name.starts_with("critic.out.")
                    || name.contains("injected_frozen.");
                let trains = name.contains(".injected.") || name.contains("fc1.weight");
                if frozen {
                    assert!(same(old, &now), "{arch:?}: frozen {name} moved");
                } else if trains {
                    assert!(!same(old, &now), "{arch:?}: {name} did not train");
                }
            }
            let err = sac.intervene(&inject(), None).unwrap_err().to_string();
            assert!(err.contains("applied once"), "{err}");
        }
    }

    /// A checkpoint of an injected agent loads into a fresh one (which re-creates the heads):
    /// the same state and actions, frozen heads that stay frozen; the CPU policy gets the heads
    /// with the published weights.
    #[test]
    fn an_injected_agent_checkpoints_resumes_and_publishes_its_heads() {
        let mut a = train(agent(13), 13);
        a.intervene(&inject(), None).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        a.update(&batch(&mut rng, 16)).unwrap();
        let mut b = agent(14);
        b.load_state(&a.state_tensors()).unwrap();
        assert!(b.is_injected());
        let (sa, sb) = (a.state_tensors(), b.state_tensors());
        assert_eq!(sa.len(), sb.len());
        for ((na, ta), (nb, tb)) in sa.iter().zip(&sb) {
            assert_eq!(na, nb);
            assert!(same(ta, tb), "{na}");
        }
        assert!(sa
            .iter()
            .any(|(n, _)| n == "critic.adam.m.critic.injected.out.weight"));
        for (n, t) in b.params() {
            let frozen = super::FROZEN.iter().any(|p| n.starts_with(p));
            assert_eq!(t.requires_grad(), !frozen, "{n} after the load");
        }
        let obs: Vec<f32> = (0..3 * OBS).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut copy = agent::Agent::policy(&a).unwrap();
        let want = a.act(&obs, ActMode::Evaluate, &mut rng).unwrap();
        assert_eq!(want, b.act(&obs, ActMode::Evaluate, &mut rng).unwrap());
        assert_eq!(
            want,
            agent::Policy::act(&mut copy, &obs, ActMode::Evaluate, &mut rng).unwrap()
        );
        // The loaded agent trains as the saved one would: the new heads and not the frozen
        // ones (libtorch's generator is shared with the tests running alongside, so the two
        // agents' next samples cannot be compared).
        let before = copies(&b.params());
        b.update(&batch(&mut rng, 16)).unwrap();
        for ((name, old), (_, now)) in before.iter().zip(b.params()) {
            if super::FROZEN.iter().any(|p| name.starts_with(p)) {
                assert!(same(old, &now), "frozen {name} moved after the load");
            } else if name.contains(".injected.") {
                assert!(!same(old, &now), "{name} did not train after the load");
            }
        }
    }
}
