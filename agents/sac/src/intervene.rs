//! The interventions with the FIRE paper's SAC semantics (FIRE.md section 3): FIRE, full reset
//! and shrink & perturb here, each followed by a restart of the optimisation (fresh
//! optimisers, the initial temperature, target := critic); ReDo (`redo.rs`) and plasticity
//! injection (`inject.rs`) are dispatched from here too.

use fire::{
    Intervention, Method, MethodConfig, ParamReport, ParamRole, ParamSelector, ShrinkPerturb,
    Sources,
};
use tch::Tensor;

use crate::{Error, Result, Sac};

impl Sac {
    /// Applies an intervention with the FIRE paper's SAC semantics and returns one report per
    /// changed parameter:
    ///
    /// * `fire` (and `fire-exact`, `fire-tol`): every dense kernel of the actor and of each
    ///   critic, embedding and heads included; biases and LayerNorm keep their values;
    /// * `full-reset`: every actor and critic parameter back to theta_0;
    /// * `shrink-perturb`: every parameter `lambda theta + (1 - lambda) theta_0`;
    /// * `layer-reset`: the parameters `reset_layers` names back to theta_0 (by default the
    ///   actor's and the critics' output layers);
    ///
    /// then, for these four, fresh optimisers, the temperature back to its initial value and
    /// the target critic set to the new critic. Replay and the observation normaliser are
    /// kept.
    ///
    /// * `redo`: recycles the dormant hidden units of actor and critics scored on `probe`
    ///   (raw observations; [`redo`](Self::redo));
    /// * `plasticity-injection`: new actor and critic heads ([`inject`](Self::inject)); it
    ///   reports nothing per parameter.
    pub fn intervene(
        &mut self,
        cfg: &MethodConfig,
        probe: Option<&Tensor>,
    ) -> Result<Vec<ParamReport>> {
        cfg.validate()?;
        self.check_method(cfg.method)?;
        let sources = Sources {
            initial: Some(&self.initial),
            fresh: None,
        };
        let reports = match cfg.method {
            Method::None => return Ok(Vec::new()),
            Method::Fire | Method::FireExact | Method::FireTol => {
                let orthogonalizer = cfg.orthogonalizer().ok_or_else(|| Error::Config {
                    field: "intervention",
                    reason: format!("{} has no orthogonaliser", cfg.method),
                })?;
                let kernels = ParamSelector::all().with_roles(&[ParamRole::LinearWeight]);
                Intervention::Fire(orthogonalizer).apply(
                    &self.member_params(),
                    &kernels,
                    sources,
                )?
            }
            Method::FullReset => {
                Intervention::Reset.apply(&self.params(), &ParamSelector::all(), sources)?
            }
            Method::LayerReset => {
                let mut layers = ParamSelector::all();
                for glob in &self.config.reset_layers {
                    layers = layers.include(glob)?;
                }
                Intervention::Reset.apply(&self.params(), &layers, sources)?
            }
            Method::ShrinkPerturb => {
                Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit { shrink: cfg.shrink })
                    .apply(&self.params(), &ParamSelector::all(), sources)?
            }
            Method::Redo => {
                let probe = probe.ok_or_else(|| Error::Config {
                    field: "redo",
                    reason: "needs a batch of observations".into(),
                })?;
                return self.redo(probe, cfg.redo_tau);
            }
            Method::PlasticityInjection => {
                // Changes the architecture rather than values: nothing to report per parameter.
                self.inject()?;
                return Ok(Vec::new());
            }
        };
        self.restart_optimization()?;
        Ok(reports)
    }

    /// Refuses what does not make sense on these networks: ReDo with CReLU (a unit feeds two
    /// inputs of the next layer) and plasticity injection on anything but the plain MLP or
    /// SimBa (its injected heads read the features as the plain heads do, but the method is
    /// defined for the plain network only here).
    fn check_method(&self, method: Method) -> Result<()> {
        let network = self.config.network;
        let reason = match method {
            Method::Redo if network.activation == agent::Activation::Crelu => {
                "redo with activation = \"crelu\" is not defined: a CReLU unit feeds two inputs of the next layer; use relu"
            }
            Method::PlasticityInjection if !network.is_plain() || self.config.methods.normalize_project => {
                "plasticity-injection needs the plain network (activation = \"relu\", layer_norm and normalize_project off)"
            }
            Method::LayerReset if self.config.reset_layers.is_empty() => {
                "layer-reset with an empty reset_layers resets nothing; name the layers, e.g. [\"critic.out.*\"]"
            }
            _ => return Ok(()),
        };
        Err(Error::Config {
            field: "intervention",
            reason: reason.into(),
        })
    }

    /// After a reset-style intervention: fresh optimisers, the initial temperature,
    /// target := critic.
    pub(crate) fn restart_optimization(&mut self) -> Result<()> {
        self.actor_adam.reset();
        self.critic_adam.reset();
        self.temperature_adam.reset();
        let initial = self.config.initial_temperature.ln();
        let _ = tch::no_grad(|| self.log_alpha.f_fill_(initial))?;
        self.soft_update_target(1.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{agent, batch, copies, same, trained};
    use fire::{Method, MethodConfig, ParamRole};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn fire_orthogonalises_every_kernel_and_keeps_biases_and_norms() {
        let mut sac = trained(1);
        let before = copies(&sac.member_params());
        let reports = sac
            .intervene(
                &MethodConfig {
                    method: Method::FireExact,
                    ..MethodConfig::default()
                },
                None,
            )
            .unwrap();
        // Actor: embed, block1.fc1, block1.fc2, mean, log_std; each critic: embed,
        // block1.fc1, block1.fc2, out.
        assert_eq!(
            reports.len(),
            5 + 2 * 4,
            "{:?}",
            reports.iter().map(|r| &r.name).collect::<Vec<_>>()
        );
        for r in &reports {
            let k = r.shape.iter().min().copied().unwrap() as f64;
            assert!(
                r.dfi_after.unwrap() < 1e-8 * k.max(1.0),
                "{}: {:?}",
                r.name,
                r.dfi_after
            );
            assert!(
                r.dfi_before.unwrap() > 1e-3,
                "{} was already orthogonal?",
                r.name
            );
        }
        assert!(reports.iter().any(|r| r.name == "critic.q2.out.weight"));
        assert!(reports.iter().any(|r| r.name == "actor.embed.weight"));
        for ((name, old), (_, now)) in before.iter().zip(sac.member_params()) {
            let role = ParamRole::classify(name, &now.size());
            if role == ParamRole::LinearWeight {
                assert!(!same(old, &now), "{name} unchanged");
            } else {
                assert!(same(old, &now), "{name} ({role:?}) changed");
            }
        }
        // Fresh optimisers, the initial temperature, target = critic.
        assert_eq!(sac.actor_adam.steps(), 0);
        assert_eq!(sac.critic_adam.steps(), 0);
        assert!((sac.temperature().unwrap() - 0.01).abs() < 1e-9);
        for ((_, c), (_, t)) in sac
            .params()
            .iter()
            .filter(|(n, _)| n.starts_with("critic."))
            .zip(sac.target_params())
        {
            assert!(same(c, &t));
        }
        // The normaliser is kept.
        assert!(sac.normalizer().count() > 1.0);
    }

    #[test]
    fn full_reset_restores_theta_0_bit_for_bit() {
        tch::manual_seed(1);
        let mut sac = agent(1);
        let theta_0 = copies(&sac.params());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..3 {
            sac.update(&batch(&mut rng, 16)).unwrap();
        }
        assert!(!same(&theta_0[0].1, &sac.params()[0].1));
        sac.intervene(
            &MethodConfig {
                method: Method::FullReset,
                ..MethodConfig::default()
            },
            None,
        )
        .unwrap();
        for ((name, want), (_, now)) in theta_0.iter().zip(sac.params()) {
            assert!(same(want, &now), "{name}");
        }
    }

    #[test]
    fn shrink_perturb_blends_every_parameter_toward_theta_0() {
        let mut sac = agent(2);
        let theta_0 = copies(&sac.params());
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..3 {
            sac.update(&batch(&mut rng, 16)).unwrap();
        }
        let theta = copies(&sac.params());
        let reports = sac
            .intervene(
                &MethodConfig {
                    method: Method::ShrinkPerturb,
                    shrink: 0.2,
                    ..MethodConfig::default()
                },
                None,
            )
            .unwrap();
        assert_eq!(
            reports.len(),
            theta.len(),
            "all parameters, biases and norms included"
        );
        for ((name, now), (t, t0)) in sac.params().iter().zip(theta.iter().zip(&theta_0)) {
            let want = &t.1 * 0.2 + &t0.1 * 0.8;
            let err = (now - want).abs().max().double_value(&[]);
            assert!(err < 1e-6, "{name}: {err}");
        }
    }
}
