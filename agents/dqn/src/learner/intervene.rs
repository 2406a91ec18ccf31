//! The interventions with the FIRE paper's DQN semantics (FIRE.md section 3), plasticity
//! injection, ReDo and layer resetting, and which of them a network built with CReLU or
//! LayerNorm refuses.

use agent::{state, Activation};
use fire::{
    params_of, Intervention, Method, MethodConfig, ParamReport, ParamRole, ParamSelector,
    ParamSnapshot, ShrinkPerturb, Sources,
};
use tch::{nn, Tensor};

use super::{Dqn, DqnConfig};
use crate::network::QNetwork;
use crate::{Error, Result};

/// Refuses the interventions that do not make sense on this network: ReDo with CReLU (a unit
/// feeds two inputs of the next layer, each its own dormant score) and plasticity injection on
/// anything but the plain ReLU head (the injected heads are plain ReLU layers); a layer reset
/// with no layer to reset.
pub fn check_method(method: Method, config: &DqnConfig) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::Config {
            field: "intervention",
            reason,
        })
    };
    match method {
        Method::Redo if config.network.activation == Activation::Crelu => {
            refuse("redo with activation = \"crelu\" is not defined: a CReLU unit feeds two inputs of the next layer; use relu".into())
        }
        Method::PlasticityInjection if !config.network.is_plain() => refuse(
            "plasticity-injection needs the plain network (activation = \"relu\", layer_norm and normalize_project off): its injected head is plain ReLU layers".into(),
        ),
        Method::LayerReset if config.reset_layers.is_empty() => {
            refuse("layer-reset with an empty reset_layers resets nothing; name the layers, e.g. [\"q.head.*\"]".into())
        }
        _ => Ok(()),
    }
}

impl<T: tch::kind::Element> Dqn<T> {
    /// Applies an intervention; returns one report per changed parameter. `probe` is a batch
    /// of observations, needed by ReDo to find dormant neurons.
    pub fn intervene(
        &mut self,
        cfg: &MethodConfig,
        probe: Option<&Tensor>,
    ) -> Result<Vec<ParamReport>> {
        cfg.validate()?;
        check_method(cfg.method, &self.config)?;
        let parts = self.config.intervention;
        if cfg.method == Method::PlasticityInjection {
            // Changes the architecture rather than values: nothing to report per parameter.
            self.inject()?;
            return Ok(Vec::new());
        }
        let params = self.params();
        let sources = Sources {
            initial: Some(&self.initial),
            fresh: None,
        };
        let encoder = ParamSelector::all().include("q.encoder.*")?;
        let encoder_weights = encoder
            .clone()
            .with_roles(&[ParamRole::ConvWeight, ParamRole::LinearWeight]);
        let head = ParamSelector::all().include("q.head.*")?;
        let mut reports = match cfg.method {
            Method::None => return Ok(Vec::new()),
            Method::Fire | Method::FireExact | Method::FireTol => {
                let orthogonalizer = cfg.orthogonalizer().expect("a FIRE variant");
                Intervention::Fire(orthogonalizer).apply(&params, &encoder_weights, sources)?
            }
            Method::FullReset => {
                Intervention::Reset.apply(&params, &ParamSelector::all(), sources)?
            }
            Method::ShrinkPerturb => {
                Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit { shrink: cfg.shrink })
                    .apply(&params, &encoder, sources)?
            }
            // Handled before the parameters were borrowed, above.
            Method::PlasticityInjection => Vec::new(),
            Method::LayerReset => {
                let mut layers = ParamSelector::all();
                for glob in &self.config.reset_layers {
                    layers = layers.include(glob)?;
                }
                Intervention::Reset.apply(&params, &layers, sources)?
            }
            Method::Redo => {
                let probe = probe.ok_or_else(|| Error::Config {
                    field: "redo",
                    reason: "needs a batch of observations".into(),
                })?;
                self.redo(probe, cfg.redo_tau)?
            }
        };
        // Full reset and layer reset choose their layers themselves; ReDo keeps the head.
        let keeps_head = matches!(
            cfg.method,
            Method::FullReset | Method::Redo | Method::LayerReset
        );
        if parts.reset_head && !keeps_head {
            reports.extend(Intervention::Reset.apply(&params, &head, sources)?);
        }
        if parts.sync_target {
            agent::polyak(&self.target_vs, &self.online_vs, 1.0)?;
        }
        if parts.reset_optimizer {
            self.optimizer.reset();
        }
        Ok(reports)
    }

    /// Plasticity injection on the online and target networks; the new head's initial values
    /// join theta_0 and the optimiser starts afresh.
    pub fn inject(&mut self) -> Result<()> {
        if self.online.is_injected() {
            return Err(Error::Config {
                field: "plasticity injection",
                reason: "was already applied to this network (it is applied once)".into(),
            });
        }
        for (vs, net) in [
            (&self.online_vs, &mut self.online),
            (&self.target_vs, &mut self.target),
        ] {
            net.inject(&vs.root());
        }
        // As the FIRE reference does: the injected head h' and its frozen twin h'_0 both start
        // as copies of the theta_0 head (layer k of the head is `fc{k+1}` of the injected one).
        let head_layers: Vec<String> = {
            let layers = self.online.layers();
            let n_head = layers.iter().filter(|l| l.starts_with("q.head.")).count();
            layers[layers.len() - n_head..].to_vec()
        };
        tch::no_grad(|| -> Result<()> {
            let vars = self.online_vs.variables();
            for (k, layer) in head_layers.iter().enumerate() {
                for part in ["weight", "bias"] {
                    let source_name = format!("{layer}.{part}");
                    let like = &vars[&source_name];
                    let initial = self.initial.get(&source_name, like, "theta_0")?;
                    for prefix in ["q.injected", "q.injected_frozen"] {
                        let mut dst = vars[&format!("{prefix}.fc{}.{part}", k + 1)].shallow_clone();
                        dst.f_copy_(initial)?;
                    }
                }
            }
            Ok(())
        })?;
        for (name, t) in self.online_vs.variables() {
            if name.starts_with("q.head.") || name.starts_with("q.injected_frozen.") {
                let _ = t.set_requires_grad(false);
            }
        }
        for (_, t) in self.target_vs.variables() {
            let _ = t.set_requires_grad(false);
        }
        self.params = params_of(&self.online_vs);
        let params = self.params();
        self.initial = state::extend_initial(&self.initial, &params);
        self.optimizer.track(&params);
        self.optimizer.reset();
        agent::polyak(&self.target_vs, &self.online_vs, 1.0)
    }

    /// ReDo on every hidden layer; reports the changed weights (action `recycled`).
    fn redo(&self, probe: &Tensor, tau: f64) -> Result<Vec<ParamReport>> {
        let (_, hidden) = tch::no_grad(|| {
            self.online
                .forward_with_features(&probe.to_device(self.device()))
        });
        // Fresh incoming weights come from a newly initialised network of the same shape.
        let fresh_vs = nn::VarStore::new(self.device());
        let _fresh_net = QNetwork::new(
            &fresh_vs.root(),
            &self.arch,
            self.actions,
            self.config.network,
        );
        let fresh = ParamSnapshot::capture(&params_of(&fresh_vs));
        let vars = self.online_vs.variables().into_iter().collect();
        agent::redo::recycle(
            &vars,
            self.online.layers(),
            &hidden,
            tau,
            &fresh,
            &self.optimizer,
        )
    }
}
