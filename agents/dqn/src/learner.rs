//! The DQN learner: online and target networks, the owned optimiser, the TD update, and the
//! interventions with the FIRE paper's DQN semantics.

use agent::{
    autocast, state, ActMode, Adam, AdamConfig, DeviceStats, NetworkOptions, Optimizer,
    OptimizerConfig, Precision, RmsPropConfig, UpdateAids, UpdateMethods,
};
use fire::{metrics, params_of, MethodConfig, NamedTensors, ParamReport, ParamRole, ParamSnapshot};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Reduction, Tensor};

use crate::network::{Architecture, QNetwork};

mod intervene;
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

/// Epsilon over the loop's steps: `start` until `hold_until`, then linear to `end` over
/// `decay_steps`, then `end`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpsilonSchedule {
    /// Epsilon at the start.
    pub start: f64,
    /// Epsilon after the decay.
    pub end: f64,
    /// Steps before the decay begins.
    pub hold_until: u64,
    /// Steps the linear decay takes (at least 1).
    pub decay_steps: f64,
}

impl EpsilonSchedule {
    /// Epsilon at `step`.
    pub fn at(&self, step: u64) -> f64 {
        if step < self.hold_until {
            return self.start;
        }
        let progress = (step - self.hold_until) as f64 / self.decay_steps.max(1.0);
        if progress >= 1.0 {
            // Exactly `end`, as the reference clamps: `start + 1.0 * (end - start)` is
            // 0.010000000000000009 for (1.0, 0.01).
            return self.end;
        }
        self.start + progress * (self.end - self.start)
    }
}

/// Learner hyperparameters (units: gradient updates unless said otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqnConfig {
    /// Discount factor.
    pub gamma: f64,
    /// Adam's settings (the optimiser unless `rmsprop` is set).
    pub adam: AdamConfig,
    /// RMSprop instead of Adam (the MinAtar reference DQN's centered RMSprop); `adam` is then
    /// unused. Absent from older configurations: Adam.
    #[serde(default)]
    pub rmsprop: Option<RmsPropConfig>,
    /// TD loss.
    pub loss: Loss,
    /// Double DQN: the online network picks the next action, the target network values it.
    pub double: bool,
    /// Target update: `tau = 1` copies (hard), smaller values blend (soft, Polyak).
    pub tau: f64,
    /// Steps (the loop's clock) between target updates.
    pub target_update_every: u64,
    /// Exploration while training.
    pub epsilon: EpsilonSchedule,
    /// Epsilon while evaluating.
    pub eval_epsilon: f64,
    /// How interventions treat the rest of the agent (FIRE.md section 3).
    pub intervention: InterventionParts,
    /// Compute precision of the update's forward and backward passes: `fp32`, or
    /// `bf16` (autocast: bfloat16 convolutions and matrix products on fp32 master weights,
    /// fp32 optimiser state, loss and interventions). Absent from older configurations: fp32.
    #[serde(default)]
    pub precision: Precision,
    /// The hidden layers' activation and LayerNorm. Absent from older configurations: plain.
    #[serde(default)]
    pub network: NetworkOptions,
    /// The regulariser and normalize-and-project's projection, at every update. Absent from
    /// older configurations: none.
    #[serde(default)]
    pub methods: UpdateMethods,
    /// Parameter globs `layer-reset` resets to theta_0 (e.g. `q.head.*`, the fully connected
    /// layers). Absent from older configurations: the head.
    #[serde(
        default = "default_reset_layers",
        deserialize_with = "agent::reset_layers::patterns"
    )]
    pub reset_layers: Vec<String>,
}

/// What `layer-reset` resets unless told otherwise: the head (the fully connected layers on
/// top of the encoder; the Nature CNN's last two layers, as Nikishin et al. reset on Atari).
pub fn default_reset_layers() -> Vec<String> {
    vec!["q.head.*".to_string()]
}

impl DqnConfig {
    /// The optimiser these settings choose.
    pub fn optimizer(&self) -> OptimizerConfig {
        match self.rmsprop {
            Some(r) => OptimizerConfig::RmsProp(r),
            None => OptimizerConfig::Adam(self.adam),
        }
    }
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            adam: AdamConfig::default(),
            rmsprop: None,
            loss: Loss::Huber,
            double: false,
            tau: 1.0,
            target_update_every: 2_000,
            epsilon: EpsilonSchedule {
                start: 1.0,
                end: 0.01,
                hold_until: 0,
                decay_steps: 250_000.0,
            },
            eval_epsilon: 0.001,
            intervention: InterventionParts::default(),
            precision: Precision::Fp32,
            network: NetworkOptions::default(),
            methods: UpdateMethods::default(),
            reset_layers: default_reset_layers(),
        }
    }
}

/// What the updates since the last [`Dqn::take_stats`] measured, averaged over them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateStats {
    /// TD loss.
    pub td_loss: f64,
    /// The regulariser's penalty (`None` without one).
    pub regularizer: Option<f64>,
    /// Mean Q-value of the taken actions.
    pub q_values: f64,
    /// How many updates the means cover.
    pub updates: u64,
}

/// What an intervention does besides its method, with the paper's DQN semantics as defaults
/// (FIRE.md section 3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionParts {
    /// Reset the head (fully connected layers) to theta_0 along with FIRE or shrink & perturb.
    pub reset_head: bool,
    /// Copy the online network into the target network afterwards.
    pub sync_target: bool,
    /// Zero Adam's moments afterwards (the DQN protocol keeps them).
    pub reset_optimizer: bool,
}

impl Default for InterventionParts {
    fn default() -> Self {
        Self {
            reset_head: true,
            sync_target: true,
            reset_optimizer: false,
        }
    }
}

/// Online and target Q-networks with their optimiser and theta_0, for observations of element
/// `T` (`u8` frames, `f32` vectors).
pub struct Dqn<T> {
    config: DqnConfig,
    online_vs: nn::VarStore,
    online: QNetwork,
    target_vs: nn::VarStore,
    target: QNetwork,
    optimizer: Optimizer,
    initial: ParamSnapshot,
    actions: i64,
    arch: Architecture,
    obs_shape: Vec<i64>,
    stats: DeviceStats,
    /// The regulariser and the projection of every update.
    aids: UpdateAids,
    /// The online network's parameters (shallow clones), rebuilt only when the network gains
    /// parameters (plasticity injection).
    params: NamedTensors,
    /// Host staging for one batch: `obs` then `next_obs`, and actions, rewards and discounts,
    /// each copied to the device in one piece. Reused: no allocation per update once grown.
    frames: Vec<T>,
    scalars: Vec<f32>,
    elem: std::marker::PhantomData<fn() -> T>,
}

/// What the updates sum on the device, under the tags they are logged as.
const STATS: &[&str] = &["losses/td_loss", "losses/q_values"];
/// The same with a regulariser's penalty.
const STATS_REGULARIZED: &[&str] = &["losses/td_loss", "losses/q_values", "losses/regularizer"];

impl<T: tch::kind::Element> Dqn<T> {
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
        let online = QNetwork::new(&online_vs.root(), arch, actions, config.network);
        let mut target_vs = nn::VarStore::new(device);
        let target = QNetwork::new(&target_vs.root(), arch, actions, config.network);
        target_vs.copy(&online_vs)?;
        target_vs.freeze();
        let params = params_of(&online_vs);
        let optimizer = Optimizer::new(config.optimizer(), &params)?;
        let initial = ParamSnapshot::capture(&params);
        let outputs = online.output_globs();
        let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let aids = UpdateAids::new(&config.methods, &params, &outputs)?;
        agent::reset_layers::check(&params, &config.reset_layers)?;
        let stats = if aids.regularizes() {
            DeviceStats::new(STATS_REGULARIZED, device)
        } else {
            DeviceStats::new(STATS, device)
        };
        Ok(Self {
            aids,
            params,
            frames: Vec::new(),
            scalars: Vec::new(),
            config,
            online_vs,
            online,
            target_vs,
            target,
            optimizer,
            initial,
            actions,
            arch: arch.clone(),
            obs_shape: arch.obs_shape(),
            stats,
            elem: std::marker::PhantomData,
        })
    }

    /// The online network's parameters (shallow clones sharing storage).
    pub fn params(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
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
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The optimiser, if it is Adam.
    pub fn adam(&self) -> Option<&Adam> {
        self.optimizer.adam()
    }

    /// Epsilon-greedy actions of the online network ([`QNetwork::epsilon_greedy`]), in fp32
    /// whatever the precision: a bf16 region would cast every weight for one or a few
    /// observations, which costs more than it saves.
    pub fn act(&self, obs: &Tensor, epsilon: f64, rng: &mut impl Rng) -> Result<Vec<i64>> {
        self.online
            .epsilon_greedy(&obs.f_to_device(self.device())?, epsilon, rng)
    }

    /// One gradient update on a batch whose observations have `obs_shape` per sample. It does
    /// not wait for the device: its loss and Q-values are summed there for [`Self::take_stats`],
    /// which also reports a diverged loss.
    pub fn update(&mut self, batch: &Batch<T>) -> Result<()> {
        let device = self.device();
        let n = batch.size as i64;
        // Two host-to-device copies: the frames of `obs` and `next_obs` in one tensor, the
        // actions, rewards and discounts in another; pixels travel as bytes.
        self.frames.clear();
        self.frames.extend_from_slice(&batch.obs);
        self.frames.extend_from_slice(&batch.next_obs);
        self.scalars.clear();
        self.scalars.extend_from_slice(&batch.actions);
        self.scalars.extend_from_slice(&batch.rewards);
        self.scalars.extend_from_slice(&batch.discounts);
        let mut shape = vec![2 * n];
        shape.extend_from_slice(&self.obs_shape);
        let frames = Tensor::from_slice(&self.frames)
            .f_view(shape.as_slice())?
            .f_to_device(device)?;
        let (obs, next_obs) = (frames.f_narrow(0, 0, n)?, frames.f_narrow(0, n, n)?);
        let scalars = Tensor::from_slice(&self.scalars)
            .f_view([3, n])?
            .f_to_device(device)?;
        let actions = scalars.f_get(0)?.f_to_kind(Kind::Int64)?.f_unsqueeze(1)?;
        let (rewards, discounts) = (scalars.f_get(1)?, scalars.f_get(2)?);
        let precision = self.config.precision;

        let target = tch::no_grad(|| -> Result<Tensor> {
            autocast(precision, device, || {
                let next_target = self.target.forward(&next_obs).f_to_kind(Kind::Float)?;
                let next_value = if self.config.double {
                    let best = self.online.forward(&next_obs).f_argmax(-1, true)?;
                    next_target.f_gather(1, &best, false)?.f_squeeze_dim(1)?
                } else {
                    next_target.f_amax([-1i64].as_slice(), false)?
                };
                // A zero discount (termination) selects the reward alone: never `0 * Q(next)`.
                agent::td_target(&rewards, &discounts, &next_value)
            })
        })?;
        let q = autocast(precision, device, || {
            Ok(self.online.forward(&obs).f_to_kind(Kind::Float)?)
        })?
        .f_gather(1, &actions, false)?
        .f_squeeze_dim(1)?;
        let loss = match self.config.loss {
            Loss::Huber => q.f_huber_loss(&target, Reduction::Mean, 1.0)?,
            Loss::Mse => q.f_mse_loss(&target, Reduction::Mean)?,
        };
        let q_mean = q.f_mean(Kind::Double)?;
        let loss = match self.aids.penalty(&self.params, &self.initial)? {
            Some(penalty) => {
                self.stats.add(&[&loss, &q_mean, &penalty])?;
                loss + penalty
            }
            None => {
                self.stats.add(&[&loss, &q_mean])?;
                loss
            }
        };
        agent::clear_grads(&self.params)?;
        loss.f_backward()?;
        self.optimizer.step(&self.params)?;
        self.aids.after_step(&self.params)
    }

    /// Means of the TD loss and Q-value over the updates since the last call (`None` if
    /// there were none), and starts new sums. Waits for the device. An error if training
    /// diverged (a NaN or infinite loss).
    pub fn take_stats(&mut self) -> Result<Option<UpdateStats>> {
        let updates = self.stats.updates();
        let means = self.stats.take_means()?;
        Ok((updates > 0).then(|| UpdateStats {
            td_loss: means[0].1,
            q_values: means[1].1,
            regularizer: means.get(2).map(|m| m.1),
            updates,
        }))
    }

    /// An error if a loss since the last [`Self::take_stats`] or any parameter is NaN or
    /// infinite: call it before saving weights. Waits for the device.
    pub fn check_finite(&self) -> Result<()> {
        self.stats.read_sums()?;
        state::check_finite(&self.params())
    }

    /// Moves the target network toward the online network by `tau` ([`agent::polyak`]: `lerp`,
    /// a copy when `tau = 1`).
    pub fn update_target(&self) -> Result<()> {
        agent::polyak(&self.target_vs, &self.online_vs, self.config.tau)
    }

    /// Everything a checkpoint needs: online and target weights, theta_0, optimiser state and
    /// the loss sums not yet logged.
    pub fn state_tensors(&self) -> NamedTensors {
        let params = params_of(&self.online_vs);
        let mut out = state::prefixed("online.", &params);
        out.extend(state::prefixed("target.", &params_of(&self.target_vs)));
        out.extend(state::initial_tensors(&self.initial, &params));
        out.extend(self.optimizer.state_tensors());
        out.extend(self.stats.state_tensors());
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
        state::restore("online.", &params_of(&self.online_vs), tensors)?;
        state::restore("target.", &params_of(&self.target_vs), tensors)?;
        self.initial = state::load_initial(&params_of(&self.online_vs), tensors)?;
        self.stats.load_state(tensors)?;
        self.optimizer.load_state(tensors)
    }

    /// Epsilon for `mode`.
    pub fn epsilon(&self, mode: ActMode) -> f64 {
        match mode {
            ActMode::Warmup => 1.0,
            ActMode::Train { step } => self.config.epsilon.at(step),
            ActMode::Evaluate => self.config.eval_epsilon,
        }
    }

    fn obs_tensor(&self, obs: &[T]) -> Result<Tensor> {
        let mut shape = vec![-1i64];
        shape.extend_from_slice(&self.obs_shape);
        Ok(Tensor::from_slice(obs).f_view(shape.as_slice())?)
    }
}

/// Metrics [`agent::Agent::plasticity`] reports for DQN (FIRE.md section 5).
pub const PLASTICITY_METRICS: &[&str] = &[
    "dormant_ratio",
    "dormant_ratio_tau0",
    "effective_rank",
    "srank",
    "feature_norm",
    "dfi_encoder",
    "active_fraction",
    "weight_distance",
    "weight_distance_rms",
    "grad_norm",
];

impl<T: tch::kind::Element + Copy + Default + Send + Sync + 'static> agent::Agent for Dqn<T> {
    type Elem = T;
    type Policy = DqnPolicy<T>;

    fn obs_shape(&self) -> &[i64] {
        &self.obs_shape
    }

    fn act(&mut self, obs: &[T], mode: ActMode, rng: &mut ChaCha8Rng) -> agent::Result<Vec<f32>> {
        let dqn = self;
        let epsilon = dqn.epsilon(mode);
        let actions = Dqn::act(dqn, &dqn.obs_tensor(obs)?, epsilon, rng)?;
        Ok(actions.into_iter().map(|a| a as f32).collect())
    }

    fn update(&mut self, batch: &Batch<T>) -> agent::Result<()> {
        Dqn::update(self, batch)
    }

    fn after_step(&mut self, step: u64, stride: u64) -> agent::Result<()> {
        let every = self.config.target_update_every;
        if every > 0 && step / every > step.saturating_sub(stride) / every {
            self.update_target()?;
        }
        Ok(())
    }

    fn take_stats(&mut self, mode: ActMode) -> agent::Result<Vec<(&'static str, f64)>> {
        let mut out = self.stats.take_means()?;
        out.push(("charts/epsilon", self.epsilon(mode)));
        Ok(out)
    }

    fn intervene(
        &mut self,
        method: &MethodConfig,
        probe: Option<&Tensor>,
    ) -> agent::Result<Vec<ParamReport>> {
        Dqn::intervene(self, method, probe)
    }

    fn plasticity(&self, probe: &Tensor) -> agent::Result<Vec<(&'static str, f64)>> {
        let dqn = self;
        let (_, hidden) = tch::no_grad(|| {
            dqn.online
                .forward_with_features(&probe.to_device(dqn.device()))
        });
        let refs: Vec<&Tensor> = hidden.iter().collect();
        let features = hidden.last().ok_or_else(|| Error::Config {
            field: "network",
            reason: "has no hidden layer to measure".into(),
        })?;
        let distance = metrics::weight_distance(&dqn.params, &dqn.initial)?;
        let mut dfi = 0.0;
        for (name, t) in dqn.params() {
            let role = ParamRole::classify(&name, &t.size());
            if role == ParamRole::ConvWeight {
                dfi += fire::isometry_dfi(role, &t)?;
            }
        }
        Ok(vec![
            ("dormant_ratio", metrics::dormant(&refs, 0.1)?.ratio()),
            ("dormant_ratio_tau0", metrics::dormant(&refs, 0.0)?.ratio()),
            ("effective_rank", metrics::effective_rank(features)?),
            ("srank", metrics::srank(features, 0.01)? as f64),
            ("feature_norm", metrics::feature_norm(features)?),
            ("dfi_encoder", dfi),
            ("active_fraction", metrics::active_fraction(features)?),
            ("weight_distance", distance.total),
            ("weight_distance_rms", distance.rms),
            // The gradients of the last update (they stay until the next one clears them).
            ("grad_norm", metrics::grad_norm(&dqn.params)?),
        ])
    }

    fn plasticity_metrics(&self) -> &'static [&'static str] {
        PLASTICITY_METRICS
    }

    fn params(&self) -> NamedTensors {
        Dqn::params(self)
    }

    fn state_tensors(&self) -> NamedTensors {
        Dqn::state_tensors(self)
    }

    fn load_state(&mut self, tensors: &[(String, Tensor)]) -> agent::Result<()> {
        Dqn::load_state(self, tensors)
    }

    fn check_finite(&self) -> agent::Result<()> {
        Dqn::check_finite(self)
    }

    fn policy(&self) -> agent::Result<DqnPolicy<T>> {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = QNetwork::new(&vs.root(), &self.arch, self.actions, self.config.network);
        let mut policy = DqnPolicy {
            vs,
            net,
            obs_shape: self.obs_shape.clone(),
            epsilon: self.config.epsilon,
            eval_epsilon: self.config.eval_epsilon,
            elem: std::marker::PhantomData,
        };
        agent::Policy::load_weights(&mut policy, &self.policy_weights()?)?;
        Ok(policy)
    }

    fn policy_weights(&self) -> agent::Result<NamedTensors> {
        state::cpu_copies(&self.params())
    }
}

/// The CPU Q-network an actor thread acts with, epsilon-greedy on the same schedule.
pub struct DqnPolicy<T> {
    vs: nn::VarStore,
    net: QNetwork,
    obs_shape: Vec<i64>,
    epsilon: EpsilonSchedule,
    eval_epsilon: f64,
    elem: std::marker::PhantomData<fn() -> T>,
}

impl<T: tch::kind::Element + Copy + 'static> agent::Policy for DqnPolicy<T> {
    type Elem = T;

    fn act(&mut self, obs: &[T], mode: ActMode, rng: &mut ChaCha8Rng) -> agent::Result<Vec<f32>> {
        let epsilon = match mode {
            ActMode::Warmup => 1.0,
            ActMode::Train { step } => self.epsilon.at(step),
            ActMode::Evaluate => self.eval_epsilon,
        };
        let mut shape = vec![-1i64];
        shape.extend_from_slice(&self.obs_shape);
        let batch = Tensor::from_slice(obs).f_view(shape.as_slice())?;
        let actions = self.net.epsilon_greedy(&batch, epsilon, rng)?;
        Ok(actions.into_iter().map(|a| a as f32).collect())
    }

    fn load_weights(&mut self, weights: &[(String, Tensor)]) -> agent::Result<()> {
        // The learner's network gained heads (plasticity injection): so does the copy.
        let injected = weights.iter().any(|(n, _)| n.starts_with("q.injected."));
        if injected && !self.net.is_injected() {
            self.net.inject(&self.vs.root());
        }
        state::restore("", &params_of(&self.vs), weights)
    }
}
