//! The DQN learner: online and target networks, the owned optimiser, the TD update, and the
//! interventions with the FIRE paper's DQN semantics.

use fire::redo::{redo, zero_incoming, zero_outgoing, RedoLayer};
use fire::{
    params_of, Intervention, Orthogonalizer, ParamReport, ParamRole, ParamSelector, ParamSnapshot,
    ShrinkPerturb, Sources,
};
use rand::Rng;
use replay::Batch;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Reduction, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::network::{Architecture, QNetwork};
use crate::{Error, Result};

/// TD loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Huber (smooth L1, delta 1), as the paper's DQN.
    Huber,
    /// Mean squared error, as CleanRL's DQN.
    Mse,
}

/// Learner hyperparameters (units: gradient updates unless said otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqnConfig {
    /// Discount factor.
    pub gamma: f64,
    /// Optimiser.
    pub adam: AdamConfig,
    /// TD loss.
    pub loss: Loss,
    /// Double DQN: the online network picks the next action, the target network values it.
    pub double: bool,
    /// Target update: `tau = 1` copies (hard), smaller values blend (soft, Polyak).
    pub tau: f64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            adam: AdamConfig::default(),
            loss: Loss::Huber,
            double: false,
            tau: 1.0,
        }
    }
}

/// What the updates since the last [`Dqn::take_stats`] measured, averaged over them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateStats {
    /// TD loss.
    pub td_loss: f64,
    /// Mean Q-value of the taken actions.
    pub q_values: f64,
    /// How many updates the means cover.
    pub updates: u64,
}

/// Sums of the TD loss and the mean Q-value over updates, kept on the device: reading a value
/// back makes the host wait for the device, so an update never does; the caller reads them
/// when it logs (one wait per log line instead of two per update).
#[derive(Debug)]
struct StatSums {
    td_loss: Tensor,
    q_values: Tensor,
    updates: u64,
}

impl StatSums {
    fn new(device: Device) -> Self {
        Self {
            td_loss: Tensor::zeros([], (Kind::Double, device)),
            q_values: Tensor::zeros([], (Kind::Double, device)),
            updates: 0,
        }
    }

    /// The two sums on the host; an error if either is NaN or infinite.
    fn read(&self) -> Result<(f64, f64)> {
        let td_loss = self.td_loss.f_double_value(&[])?;
        let q_values = self.q_values.f_double_value(&[])?;
        for (what, value) in [("TD loss", td_loss), ("Q-value", q_values)] {
            if !value.is_finite() {
                return Err(Error::NonFinite { what, value });
            }
        }
        Ok((td_loss, q_values))
    }
}

/// The intervention to apply, with the paper's DQN semantics as defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DqnIntervention {
    /// Orthogonalise the encoder's weights (convs; hidden layers of an MLP) with FIRE.
    Fire,
    /// Every parameter back to theta_0.
    FullReset,
    /// Shrink & perturb the encoder toward theta_0 (`lambda * theta + (1 - lambda) * theta_0`).
    ShrinkPerturb,
    /// ReDo: recycle tau-dormant neurons of every hidden layer (fresh incoming weights, zero
    /// outgoing weights, zero Adam moments); needs a batch of observations.
    Redo,
    /// Plasticity injection: freeze the head, add a fresh head and subtract its frozen copy
    /// (outputs unchanged at that moment), fresh optimiser state. Once per run.
    PlasticityInjection,
}

/// The parts of an intervention a user may switch. Defaults follow FIRE.md section 3.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionConfig {
    /// What to do.
    pub method: DqnIntervention,
    /// Reset the head (fully connected layers) to theta_0 along with FIRE or shrink & perturb.
    pub reset_head: bool,
    /// Copy the online network into the target network afterwards.
    pub sync_target: bool,
    /// Zero Adam's moments afterwards (the DQN protocol keeps them).
    pub reset_optimizer: bool,
    /// Newton–Schulz iterations for FIRE (the paper uses 10); 0 selects the exact SVD factor.
    pub fire_iterations: usize,
    /// lambda of shrink & perturb.
    pub shrink: f64,
    /// ReDo's dormancy threshold tau.
    pub redo_tau: f64,
}

impl Default for InterventionConfig {
    fn default() -> Self {
        Self {
            method: DqnIntervention::Fire,
            reset_head: true,
            sync_target: true,
            reset_optimizer: false,
            fire_iterations: 10,
            shrink: 0.2,
            redo_tau: 0.1,
        }
    }
}

/// Online and target Q-networks with their optimiser and theta_0.
pub struct Dqn {
    config: DqnConfig,
    online_vs: nn::VarStore,
    online: QNetwork,
    target_vs: nn::VarStore,
    target: QNetwork,
    adam: Adam,
    initial: ParamSnapshot,
    actions: i64,
    arch: Architecture,
    stats: StatSums,
}

impl Dqn {
    /// Builds the networks on `device` (seed the generator with `tch::manual_seed` first for
    /// reproducible weights).
    pub fn new(
        arch: &Architecture,
        actions: i64,
        config: DqnConfig,
        device: Device,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.gamma) {
            return Err(Error::Config {
                field: "gamma",
                reason: format!("must be in [0, 1], got {}", config.gamma),
            });
        }
        if !(config.tau > 0.0 && config.tau <= 1.0) {
            return Err(Error::Config {
                field: "tau",
                reason: format!("must be in (0, 1], got {}", config.tau),
            });
        }
        let online_vs = nn::VarStore::new(device);
        let online = QNetwork::new(&online_vs.root(), arch, actions);
        let mut target_vs = nn::VarStore::new(device);
        let target = QNetwork::new(&target_vs.root(), arch, actions);
        target_vs.copy(&online_vs)?;
        target_vs.freeze();
        let params = params_of(&online_vs);
        let adam = Adam::new(config.adam, &params)?;
        let initial = ParamSnapshot::capture(&params);
        Ok(Self {
            config,
            online_vs,
            online,
            target_vs,
            target,
            adam,
            initial,
            actions,
            arch: arch.clone(),
            stats: StatSums::new(device),
        })
    }

    /// The online network's parameters (shallow clones sharing storage).
    pub fn params(&self) -> Vec<(String, Tensor)> {
        params_of(&self.online_vs)
    }

    /// The online network.
    pub fn online(&self) -> &QNetwork {
        &self.online
    }

    /// The device.
    pub fn device(&self) -> Device {
        self.online_vs.device()
    }

    /// The optimiser.
    pub fn adam(&self) -> &Adam {
        &self.adam
    }

    /// Epsilon-greedy actions of the online network ([`QNetwork::epsilon_greedy`]).
    pub fn act(&self, obs: &Tensor, epsilon: f64, rng: &mut impl Rng) -> Result<Vec<i64>> {
        self.online
            .epsilon_greedy(&obs.f_to_device(self.device())?, epsilon, rng)
    }

    /// One gradient update on a batch whose observations have `obs_shape` per sample. It does
    /// not wait for the device: its loss and Q-values are summed there for [`Self::take_stats`],
    /// which also reports a diverged loss.
    pub fn update<T: tch::kind::Element>(
        &mut self,
        batch: &Batch<T>,
        obs_shape: &[i64],
    ) -> Result<()> {
        let device = self.device();
        let mut shape = vec![batch.size as i64];
        shape.extend_from_slice(obs_shape);
        // One host-to-device copy per array; pixels travel as bytes and become floats there.
        let obs = Tensor::from_slice(&batch.obs)
            .f_view(shape.as_slice())?
            .f_to_device(device)?;
        let next_obs = Tensor::from_slice(&batch.next_obs)
            .f_view(shape.as_slice())?
            .f_to_device(device)?;
        let actions = Tensor::from_slice(&batch.actions)
            .f_to_device(device)?
            .f_to_kind(Kind::Int64)?
            .f_unsqueeze(1)?;
        let rewards = Tensor::from_slice(&batch.rewards).f_to_device(device)?;
        let discounts = Tensor::from_slice(&batch.discounts).f_to_device(device)?;

        let target = tch::no_grad(|| -> Result<Tensor> {
            let next_target = self.target.forward(&next_obs);
            let next_value = if self.config.double {
                let best = self.online.forward(&next_obs).f_argmax(-1, true)?;
                next_target.f_gather(1, &best, false)?.f_squeeze_dim(1)?
            } else {
                next_target.f_amax([-1i64].as_slice(), false)?
            };
            Ok(rewards.f_add(&discounts.f_mul(&next_value)?)?)
        })?;
        let q = self
            .online
            .forward(&obs)
            .f_gather(1, &actions, false)?
            .f_squeeze_dim(1)?;
        let loss = match self.config.loss {
            Loss::Huber => q.f_huber_loss(&target, Reduction::Mean, 1.0)?,
            Loss::Mse => q.f_mse_loss(&target, Reduction::Mean)?,
        };
        tch::no_grad(|| -> Result<()> {
            let _ = self.stats.td_loss.f_add_(&loss.f_to_kind(Kind::Double)?)?;
            let _ = self.stats.q_values.f_add_(&q.f_mean(Kind::Double)?)?;
            Ok(())
        })?;
        self.stats.updates += 1;
        let params = self.params();
        for (_, p) in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_()?;
            }
        }
        loss.f_backward()?;
        self.adam.step(&params)
    }

    /// Means of the TD loss and Q-value over the updates since the last call (`None` if
    /// there were none), and starts new sums. Waits for the device. An error if training
    /// diverged (a NaN or infinite loss).
    pub fn take_stats(&mut self) -> Result<Option<UpdateStats>> {
        if self.stats.updates == 0 {
            return Ok(None);
        }
        let (td_loss, q_values) = self.stats.read()?;
        let n = self.stats.updates;
        self.stats = StatSums::new(self.device());
        Ok(Some(UpdateStats {
            td_loss: td_loss / n as f64,
            q_values: q_values / n as f64,
            updates: n,
        }))
    }

    /// An error if a loss since the last [`Self::take_stats`] or any parameter is NaN or
    /// infinite: call it before saving weights. Waits for the device.
    pub fn check_finite(&self) -> Result<()> {
        self.stats.read()?;
        for (name, p) in self.params() {
            let finite = tch::no_grad(|| p.f_isfinite()?.f_all()?.f_int64_value(&[]))?;
            if finite == 0 {
                return Err(Error::NonFiniteParameter { name });
            }
        }
        Ok(())
    }

    /// Moves the target network toward the online network by `tau` (copies when `tau = 1`).
    pub fn update_target(&mut self) -> Result<()> {
        let tau = self.config.tau;
        let online = self.online_vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, mut t) in self.target_vs.variables() {
                let o = online.get(name.as_str()).ok_or_else(|| {
                    Error::Checkpoint(format!("target has `{name}`, online does not"))
                })?;
                if tau >= 1.0 {
                    t.f_copy_(o)?;
                } else {
                    let _ = t.f_mul_scalar_(1.0 - tau)?.f_add_(&o.f_mul_scalar(tau)?)?;
                }
            }
            Ok(())
        })
    }

    /// Applies an intervention; returns one report per changed parameter. `probe` is a batch
    /// of observations, needed by ReDo to find dormant neurons.
    pub fn intervene(
        &mut self,
        cfg: &InterventionConfig,
        probe: Option<&Tensor>,
    ) -> Result<Vec<ParamReport>> {
        if cfg.method == DqnIntervention::PlasticityInjection {
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
            DqnIntervention::Fire => {
                let method = if cfg.fire_iterations == 0 {
                    Orthogonalizer::Exact
                } else {
                    Orthogonalizer::NewtonSchulz {
                        iters: cfg.fire_iterations,
                    }
                };
                Intervention::Fire(method).apply(&params, &encoder_weights, sources)?
            }
            DqnIntervention::FullReset => {
                Intervention::Reset.apply(&params, &ParamSelector::all(), sources)?
            }
            DqnIntervention::ShrinkPerturb => {
                Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit { shrink: cfg.shrink })
                    .apply(&params, &encoder, sources)?
            }
            // Handled before the parameters were borrowed, above.
            DqnIntervention::PlasticityInjection => Vec::new(),
            DqnIntervention::Redo => {
                let probe = probe.ok_or_else(|| Error::Config {
                    field: "redo",
                    reason: "needs a batch of observations".into(),
                })?;
                self.redo(probe, cfg.redo_tau)?
            }
        };
        let keeps_head = matches!(
            cfg.method,
            DqnIntervention::FullReset | DqnIntervention::Redo
        );
        if cfg.reset_head && !keeps_head {
            reports.extend(Intervention::Reset.apply(&params, &head, sources)?);
        }
        if cfg.sync_target {
            let tau = self.config.tau;
            self.config.tau = 1.0;
            let synced = self.update_target();
            self.config.tau = tau;
            synced?;
        }
        if cfg.reset_optimizer {
            self.adam.reset();
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
        tch::no_grad(|| -> Result<()> {
            let vars = self.online_vs.variables();
            for (name, t) in &vars {
                if let Some(rest) = name.strip_prefix("q.injected.") {
                    let mut frozen = vars[&format!("q.injected_frozen.{rest}")].shallow_clone();
                    frozen.f_copy_(t)?;
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
        let params = self.params();
        let mut initial: Vec<(String, Tensor)> = Vec::new();
        for (name, t) in &params {
            let saved = match self.initial.get(name, t, "theta_0") {
                Ok(init) => init.shallow_clone(),
                Err(_) => t.detach().copy(),
            };
            initial.push((name.clone(), saved));
        }
        self.initial = ParamSnapshot::from_tensors(initial);
        self.adam.track(&params);
        self.adam.reset();
        let tau = self.config.tau;
        self.config.tau = 1.0;
        let synced = self.update_target();
        self.config.tau = tau;
        synced
    }

    /// ReDo on every hidden layer; reports the changed weights (action `recycled`).
    fn redo(&self, probe: &Tensor, tau: f64) -> Result<Vec<ParamReport>> {
        let (_, hidden) = tch::no_grad(|| {
            self.online
                .forward_with_features(&probe.to_device(self.device()))
        });
        // Fresh incoming weights come from a newly initialised network of the same shape.
        let fresh_vs = nn::VarStore::new(self.device());
        let _fresh_net = QNetwork::new(&fresh_vs.root(), &self.arch, self.actions);
        let fresh = ParamSnapshot::capture(&params_of(&fresh_vs));
        let vars = self.online_vs.variables();
        let get = |name: String| {
            vars.get(&name)
                .map(|t| (name.clone(), t.shallow_clone()))
                .ok_or(Error::Checkpoint(format!("no parameter `{name}`")))
        };
        let layers = self.online.layers().to_vec();
        let before = ParamSnapshot::capture(&self.params());
        let mut touched = Vec::new();
        for (k, activations) in hidden.iter().enumerate() {
            let (w_name, w) = get(format!("{}.weight", layers[k]))?;
            let (b_name, b) = get(format!("{}.bias", layers[k]))?;
            let (next_name, next) = get(format!("{}.weight", layers[k + 1]))?;
            let layer = RedoLayer {
                incoming_weight: (&w_name, &w),
                incoming_bias: Some((&b_name, &b)),
                outgoing_weight: (&next_name, &next),
                activations,
            };
            let recycled = redo(&[layer], tau, &fresh)?.remove(0);
            if recycled.neurons.is_empty() {
                continue;
            }
            // The optimiser forgets the recycled neurons too.
            for name in [&w_name, &b_name] {
                if let Some((m, v)) = self.adam.moments(name) {
                    zero_incoming(m, &recycled.neurons)?;
                    zero_incoming(v, &recycled.neurons)?;
                }
            }
            if let Some((m, v)) = self.adam.moments(&next_name) {
                zero_outgoing(m, &recycled.neurons, recycled.width)?;
                zero_outgoing(v, &recycled.neurons, recycled.width)?;
            }
            touched.extend([w_name, b_name, next_name]);
        }
        let mut reports = Vec::new();
        for name in touched {
            let now = &vars[&name];
            let old = before.get(&name, now, "the weights before ReDo")?;
            let role = ParamRole::classify(&name, &now.size());
            let sfe = fire::sfe(old, now)?;
            let norm2 = fire::orthogonalize::squared_norm(old)?;
            let dfi = |t: &Tensor| {
                role.is_matrix()
                    .then(|| fire::isometry_dfi(role, t))
                    .transpose()
            };
            reports.push(ParamReport {
                name: name.clone(),
                shape: now.size(),
                role,
                action: fire::Action::Recycled,
                sfe,
                normalized_sfe: if norm2 > 0.0 { sfe / norm2 } else { 0.0 },
                dfi_before: dfi(old)?,
                dfi_after: dfi(now)?,
                iterations: 0,
                seconds: 0.0,
            });
        }
        Ok(reports)
    }

    /// Everything a checkpoint needs: online and target weights, theta_0 and optimiser state.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        for (n, t) in params_of(&self.online_vs) {
            out.push((format!("online.{n}"), t));
        }
        for (n, t) in params_of(&self.target_vs) {
            out.push((format!("target.{n}"), t));
        }
        for n in self.initial.names() {
            let like = self.online_vs.variables()[n].shallow_clone();
            if let Ok(t) = self.initial.get(n, &like, "theta_0") {
                out.push((format!("initial.{n}"), t.shallow_clone()));
            }
        }
        out.extend(self.adam.state_tensors());
        out
    }

    /// Restores what [`state_tensors`](Self::state_tensors) saved (re-applying plasticity
    /// injection first when the checkpoint has an injected head).
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let injected = tensors
            .iter()
            .any(|(n, _)| n.starts_with("online.q.injected."));
        if injected && !self.online.is_injected() {
            self.inject()?;
        }
        let find = |key: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == key)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Checkpoint(format!("`{key}` missing")))
        };
        tch::no_grad(|| -> Result<()> {
            for (prefix, vs) in [("online.", &self.online_vs), ("target.", &self.target_vs)] {
                for (n, mut t) in vs.variables() {
                    let saved = find(&format!("{prefix}{n}"))?;
                    if saved.size() != t.size() {
                        return Err(Error::Checkpoint(format!(
                            "`{prefix}{n}` has shape {:?}, the network {:?}",
                            saved.size(),
                            t.size()
                        )));
                    }
                    t.f_copy_(saved)?;
                }
            }
            Ok(())
        })?;
        let initial = params_of(&self.online_vs)
            .into_iter()
            .map(|(n, t)| {
                Ok((
                    n.clone(),
                    find(&format!("initial.{n}"))?.f_to_device(t.device())?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.initial = ParamSnapshot::from_tensors(initial);
        self.adam.load_state(tensors)
    }
}
