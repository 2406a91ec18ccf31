//! The SAC learner: actor, critic ensemble and target, the three optimisers, the temperature,
//! the observation normaliser, the update, and the interventions with the FIRE paper's SAC
//! semantics.

use agent::{state, ActMode, Adam, AdamConfig, DeviceStats};
use fire::{
    metrics, params_of, Intervention, Method, MethodConfig, NamedTensors, ParamReport, ParamRole,
    ParamSelector, ParamSnapshot, ShrinkPerturb, Sources,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::network::{member_views, Actor, Architecture, Critic};
use crate::normalizer::RunningNorm;
use crate::{Error, Result};

/// Learner hyperparameters. [`SacConfig::simba`] is the FIRE paper's SAC, [`SacConfig::cleanrl`]
/// CleanRL's `sac_continuous_action.py`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacConfig {
    /// The actor's optimiser.
    pub actor_adam: AdamConfig,
    /// The critics' optimiser.
    pub critic_adam: AdamConfig,
    /// The temperature's optimiser (on `log alpha`).
    pub temperature_adam: AdamConfig,
    /// Temperature alpha at the start and after an intervention.
    pub initial_temperature: f64,
    /// Target entropy per action dimension (the target is this times the dimension).
    pub target_entropy_per_dim: f64,
    /// Polyak factor of the target critic, once per update.
    pub tau: f64,
    /// Normalise observations with running statistics (updated with every batch the agent
    /// acts on in warm-up and in training, never in evaluation or updates).
    pub normalize_observations: bool,
}

impl SacConfig {
    /// The FIRE paper's SimBa SAC (FIRE.md section 3): AdamW lr 1e-4 weight decay 1e-2 for
    /// actor and critic, temperature from 0.01 with its own Adam (lr 1e-4, no decay), target
    /// entropy -|A|/2, tau 0.005, observations normalised.
    pub fn simba() -> Self {
        let adamw = AdamConfig {
            lr: 1e-4,
            weight_decay: 1e-2,
            ..AdamConfig::default()
        };
        Self {
            actor_adam: adamw,
            critic_adam: adamw,
            temperature_adam: AdamConfig {
                lr: 1e-4,
                ..AdamConfig::default()
            },
            initial_temperature: 0.01,
            target_entropy_per_dim: -0.5,
            tau: 0.005,
            normalize_observations: true,
        }
    }

    /// CleanRL's `sac_continuous_action.py`: Adam lr 3e-4 (actor) and 1e-3 (critics and
    /// temperature), alpha from 1 (`log alpha = 0`), target entropy -|A|, tau 0.005, raw
    /// observations.
    pub fn cleanrl() -> Self {
        let adam = |lr| AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        Self {
            actor_adam: adam(3e-4),
            critic_adam: adam(1e-3),
            temperature_adam: adam(1e-3),
            initial_temperature: 1.0,
            target_entropy_per_dim: -1.0,
            tau: 0.005,
            normalize_observations: false,
        }
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.actor_adam.validate()?;
        self.critic_adam.validate()?;
        self.temperature_adam.validate()?;
        if !(self.initial_temperature.is_finite() && self.initial_temperature > 0.0) {
            return Err(Error::Config {
                field: "initial_temperature",
                reason: format!("must be positive, got {}", self.initial_temperature),
            });
        }
        if !self.target_entropy_per_dim.is_finite() {
            return Err(Error::Config {
                field: "target_entropy_per_dim",
                reason: "must be a number".into(),
            });
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return Err(Error::Config {
                field: "tau",
                reason: format!("must be in (0, 1], got {}", self.tau),
            });
        }
        Ok(())
    }
}

/// What the updates sum on the device, under the tags they are logged as.
const STATS: &[&str] = &[
    "losses/qf_loss",
    "losses/qf_values",
    "losses/actor_loss",
    "losses/alpha",
    "losses/alpha_loss",
    "losses/entropy",
];

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
];

/// Critic ensemble size (clipped double Q).
const CRITICS: i64 = 2;

/// The SAC agent for flat `f32` observations and a box of actions.
pub struct Sac {
    config: SacConfig,
    arch: Architecture,
    obs_shape: Vec<i64>,
    action_dim: i64,
    low: Vec<f32>,
    high: Vec<f32>,
    /// `(high - low) / 2` and `(high + low) / 2` on the device.
    scale: Tensor,
    center: Tensor,
    /// `sum(log scale)`: the tanh-Gaussian's log-density is of actions in [-1, 1]; the
    /// entropy the temperature tunes is that of actions in the box.
    log_scale_sum: f64,
    actor_vs: nn::VarStore,
    actor: Actor,
    critic_vs: nn::VarStore,
    critic: Critic,
    target_vs: nn::VarStore,
    target: Critic,
    log_alpha: Tensor,
    actor_adam: Adam,
    critic_adam: Adam,
    temperature_adam: Adam,
    initial: ParamSnapshot,
    norm: RunningNorm,
    stats: DeviceStats,
}

impl std::fmt::Debug for Sac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sac")
            .field("arch", &self.arch)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const LOG_ALPHA: &str = "temperature.log_alpha";

impl Sac {
    /// Builds the networks on `device` for observations of `obs_dim` values and actions in the
    /// box `[low, high]` (seed libtorch with `tch::manual_seed` first for reproducible weights).
    pub fn new(
        arch: &Architecture,
        obs_dim: i64,
        low: &[f32],
        high: &[f32],
        config: SacConfig,
        device: Device,
    ) -> Result<Self> {
        config.validate()?;
        if low.is_empty() || low.len() != high.len() {
            return Err(Error::Config {
                field: "action space",
                reason: format!("bounds of {} and {} values", low.len(), high.len()),
            });
        }
        if low
            .iter()
            .zip(high)
            .any(|(l, h)| !(l.is_finite() && h.is_finite() && l < h))
        {
            return Err(Error::Config {
                field: "action space",
                reason: "SAC needs finite bounds with low < high in every dimension".into(),
            });
        }
        let action_dim = low.len() as i64;
        let scale: Vec<f32> = low.iter().zip(high).map(|(l, h)| (h - l) / 2.0).collect();
        let center: Vec<f32> = low.iter().zip(high).map(|(l, h)| (h + l) / 2.0).collect();
        let log_scale_sum = scale.iter().map(|s| f64::from(*s).ln()).sum();
        let actor_vs = nn::VarStore::new(device);
        let actor = Actor::new(&actor_vs.root(), arch, obs_dim, action_dim);
        let critic_vs = nn::VarStore::new(device);
        let critic = Critic::new(&critic_vs.root(), arch, obs_dim, action_dim, CRITICS);
        let mut target_vs = nn::VarStore::new(device);
        let target = Critic::new(&target_vs.root(), arch, obs_dim, action_dim, CRITICS);
        target_vs.copy(&critic_vs)?;
        target_vs.freeze();
        let log_alpha = Tensor::from_slice(&[config.initial_temperature.ln() as f32])
            .f_to_device(device)?
            .set_requires_grad(true);
        let actor_adam = Adam::new(config.actor_adam, &params_of(&actor_vs))?;
        let critic_adam = Adam::new(config.critic_adam, &params_of(&critic_vs))?;
        let temperature_adam = Adam::new(
            config.temperature_adam,
            &[(LOG_ALPHA.to_string(), log_alpha.shallow_clone())],
        )?;
        let mut sac = Self {
            config,
            arch: arch.clone(),
            obs_shape: vec![obs_dim],
            action_dim,
            low: low.to_vec(),
            high: high.to_vec(),
            scale: Tensor::from_slice(&scale).f_to_device(device)?,
            center: Tensor::from_slice(&center).f_to_device(device)?,
            log_scale_sum,
            actor_vs,
            actor,
            critic_vs,
            critic,
            target_vs,
            target,
            log_alpha,
            actor_adam,
            critic_adam,
            temperature_adam,
            initial: ParamSnapshot::default(),
            norm: RunningNorm::new(obs_dim as usize, device),
            stats: DeviceStats::new(STATS, device),
        };
        sac.initial = ParamSnapshot::capture(&sac.params());
        Ok(sac)
    }

    /// The device.
    pub fn device(&self) -> Device {
        self.actor_vs.device()
    }

    /// The hyperparameters.
    pub fn config(&self) -> &SacConfig {
        &self.config
    }

    /// Actor and critic parameters (shallow clones sharing storage); the critic's carry the
    /// ensemble dimension first.
    pub fn params(&self) -> NamedTensors {
        let mut out = params_of(&self.actor_vs);
        out.extend(params_of(&self.critic_vs));
        out
    }

    /// Actor parameters and each critic member's parameters on their own (views): the dense
    /// kernels FIRE orthogonalises one by one.
    pub fn member_params(&self) -> NamedTensors {
        member_views(&self.params())
    }

    /// The target critic's parameters.
    pub fn target_params(&self) -> NamedTensors {
        params_of(&self.target_vs)
    }

    /// The temperature alpha.
    pub fn temperature(&self) -> Result<f64> {
        Ok(self.log_alpha.f_exp()?.f_double_value(&[0])?)
    }

    /// The observation normaliser.
    pub fn normalizer(&self) -> &RunningNorm {
        &self.norm
    }

    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The critic ensemble.
    pub fn critic(&self) -> &Critic {
        &self.critic
    }

    fn target_entropy(&self) -> f64 {
        self.config.target_entropy_per_dim * self.action_dim as f64
    }

    /// Observations `[n, obs_dim]` on the device, normalised when configured.
    fn prepare(&mut self, obs: &Tensor) -> Result<Tensor> {
        let obs = obs
            .f_to_device(self.device())?
            .f_to_kind(Kind::Float)?
            .f_view([-1, self.obs_shape[0]])?;
        if self.config.normalize_observations {
            self.norm.normalize(&obs)
        } else {
            Ok(obs)
        }
    }

    /// Actions in the box for `obs` (flat `[n, obs_dim]`): uniform in warm-up, a policy sample
    /// in training, `tanh(mean)` in evaluation. In warm-up and training `obs` is first added to
    /// the normaliser's statistics, as the FIRE reference's `sample_actions(training=True)`
    /// does in its random phase too, so learning starts with the statistics of every random
    /// step rather than of none.
    pub fn act(&mut self, obs: &[f32], mode: ActMode, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
        if mode != ActMode::Evaluate && self.config.normalize_observations {
            self.norm.update(obs)?;
        }
        if mode == ActMode::Warmup {
            return Ok(uniform_actions(
                &self.low,
                &self.high,
                obs.len() / self.obs_shape[0] as usize,
                rng,
            ));
        }
        let x = self.prepare(&Tensor::from_slice(obs))?;
        let a = tch::no_grad(|| -> Result<Tensor> {
            let a = match mode {
                ActMode::Evaluate => self.actor.mode(&x),
                _ => self.actor.sample(&x)?.0,
            };
            Ok(a.f_mul(&self.scale)?.f_add(&self.center)?)
        })?;
        Ok(Vec::<f32>::try_from(
            &a.f_to_device(Device::Cpu)?.f_view([-1])?,
        )?)
    }

    /// One update in the reference's order: actor, temperature, critic (with the new actor
    /// and temperature), then the target critic's Polyak step. It does not wait for the
    /// device: its statistics are summed there for [`take_stats`](agent::Agent::take_stats).
    pub fn update(&mut self, batch: &Batch<f32>) -> Result<()> {
        let device = self.device();
        let n = batch.size as i64;
        let obs = self.prepare(&Tensor::from_slice(&batch.obs))?;
        let next_obs = self.prepare(&Tensor::from_slice(&batch.next_obs))?;
        let actions = Tensor::from_slice(&batch.actions)
            .f_view([n, self.action_dim])?
            .f_to_device(device)?
            .f_sub(&self.center)?
            .f_div(&self.scale)?;
        let rewards = Tensor::from_slice(&batch.rewards).f_to_device(device)?;
        let discounts = Tensor::from_slice(&batch.discounts).f_to_device(device)?;

        // Actor: maximise min_k Q_k(s, a~pi) - alpha log pi (critic weights held fixed).
        let alpha = self.log_alpha.f_exp()?.f_detach()?;
        let (a_pi, log_pi) = self.actor.sample(&obs)?;
        let log_pi = log_pi.f_sub_scalar(self.log_scale_sum)?;
        let q_pi = self
            .critic
            .forward(&obs, &a_pi, true)
            .f_amin([0i64].as_slice(), false)?;
        let actor_loss = log_pi.f_mul(&alpha)?.f_sub(&q_pi)?.f_mean(Kind::Float)?;
        let actor_params = params_of(&self.actor_vs);
        zero_grads(&actor_params)?;
        actor_loss.f_backward()?;
        self.actor_adam.step(&actor_params)?;
        let entropy = log_pi.f_detach()?.f_mean(Kind::Float)?.f_neg()?;

        // Temperature: alpha (entropy - target).
        let alpha_loss = self
            .log_alpha
            .f_exp()?
            .f_mul(&entropy.f_sub_scalar(self.target_entropy())?)?
            .f_sum(Kind::Float)?;
        let temperature = [(LOG_ALPHA.to_string(), self.log_alpha.shallow_clone())];
        zero_grads(&temperature)?;
        alpha_loss.f_backward()?;
        self.temperature_adam.step(&temperature)?;

        // Critic: clipped double-Q target with the updated actor and temperature; the
        // discount is 0 after a termination (replay's), never after a truncation, and a zero
        // discount selects the reward alone (`agent::td_target`: never `0 * Q(next)`).
        let target = tch::no_grad(|| -> Result<Tensor> {
            let alpha = self.log_alpha.f_exp()?;
            let (next_a, next_log_pi) = self.actor.sample(&next_obs)?;
            let next_log_pi = next_log_pi.f_sub_scalar(self.log_scale_sum)?;
            let next_q = self
                .target
                .forward(&next_obs, &next_a, true)
                .f_amin([0i64].as_slice(), false)?
                .f_sub(&next_log_pi.f_mul(&alpha)?)?;
            agent::td_target(&rewards, &discounts, &next_q)
        })?;
        let q = self.critic.forward(&obs, &actions, false);
        // Sum over the critics of each one's mean squared error, as CleanRL's qf1 + qf2 loss.
        let qf_loss = q
            .f_sub(&target.f_unsqueeze(0)?)?
            .f_square()?
            .f_mean_dim([1i64].as_slice(), false, Kind::Float)?
            .f_sum(Kind::Float)?;
        let critic_params = params_of(&self.critic_vs);
        zero_grads(&critic_params)?;
        qf_loss.f_backward()?;
        self.critic_adam.step(&critic_params)?;
        self.soft_update_target(self.config.tau)?;

        let alpha_now = self.log_alpha.f_exp()?.f_sum(Kind::Float)?;
        self.stats.add(&[
            &qf_loss,
            &q.f_mean(Kind::Float)?,
            &actor_loss,
            &alpha_now,
            &alpha_loss,
            &entropy,
        ])
    }

    /// Moves the target critic toward the critic by `tau` (copies when `tau = 1`).
    pub fn soft_update_target(&mut self, tau: f64) -> Result<()> {
        let online = self.critic_vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, mut t) in self.target_vs.variables() {
                let o = online.get(name.as_str()).ok_or_else(|| {
                    Error::Checkpoint(format!("target has `{name}`, the critic does not"))
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

    /// Applies an intervention with the FIRE paper's SAC semantics and returns one report per
    /// changed parameter:
    ///
    /// * `fire` (and `fire-exact`, `fire-tol`): every dense kernel of the actor and of each
    ///   critic, embedding and heads included; biases and LayerNorm keep their values;
    /// * `full-reset`: every actor and critic parameter back to theta_0;
    /// * `shrink-perturb`: every parameter `lambda theta + (1 - lambda) theta_0`;
    ///
    /// then, for all three, fresh optimisers, the temperature back to its initial value and
    /// the target critic set to the new critic. Replay and the observation normaliser are
    /// kept. ReDo and plasticity injection are not offered for SAC (an error says so).
    pub fn intervene(&mut self, cfg: &MethodConfig) -> Result<Vec<ParamReport>> {
        cfg.validate()?;
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
            Method::ShrinkPerturb => {
                Intervention::ShrinkPerturb(ShrinkPerturb::TowardInit { shrink: cfg.shrink })
                    .apply(&self.params(), &ParamSelector::all(), sources)?
            }
            Method::Redo | Method::PlasticityInjection => {
                return Err(Error::Intervention {
                    method: cfg.method,
                    reason: "is not implemented for SAC (use fire, fire-exact, fire-tol, \
                             full-reset or shrink-perturb)"
                        .into(),
                })
            }
        };
        self.restart_optimization()?;
        Ok(reports)
    }

    /// After an intervention: fresh optimisers, the initial temperature, target := critic.
    fn restart_optimization(&mut self) -> Result<()> {
        self.actor_adam.reset();
        self.critic_adam.reset();
        self.temperature_adam.reset();
        let initial = self.config.initial_temperature.ln();
        let _ = tch::no_grad(|| self.log_alpha.f_fill_(initial))?;
        self.soft_update_target(1.0)
    }

    /// Everything a checkpoint needs: actor, critic, target, theta_0, temperature, the three
    /// optimisers, the normaliser and the loss sums not yet logged.
    pub fn state_tensors(&self) -> NamedTensors {
        let mut out = state::prefixed("online.", &self.params());
        out.extend(state::prefixed("target.", &self.target_params()));
        for (n, t) in &self.params() {
            if let Ok(init) = self.initial.get(n, t, "theta_0") {
                out.push((format!("initial.{n}"), init.shallow_clone()));
            }
        }
        out.push((LOG_ALPHA.into(), self.log_alpha.detach()));
        for (prefix, adam) in self.optimizers() {
            out.extend(state::prefixed(prefix, &adam.state_tensors()));
        }
        out.extend(self.norm.state_tensors("normalizer."));
        out.extend(self.stats.state_tensors());
        out
    }

    fn optimizers(&self) -> [(&'static str, &Adam); 3] {
        [
            ("actor.", &self.actor_adam),
            ("critic.", &self.critic_adam),
            ("temperature.", &self.temperature_adam),
        ]
    }

    /// Restores what [`state_tensors`](Self::state_tensors) saved.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        state::restore("online.", &self.params(), tensors)?;
        state::restore("target.", &self.target_params(), tensors)?;
        let initial = self
            .params()
            .into_iter()
            .map(|(n, t)| {
                let saved = state::find(tensors, &format!("initial.{n}"))?;
                Ok((n, saved.f_to_device(t.device())?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.initial = ParamSnapshot::from_tensors(initial);
        let log_alpha = state::find(tensors, LOG_ALPHA)?;
        tch::no_grad(|| self.log_alpha.f_copy_(log_alpha))?;
        for (prefix, adam) in [
            ("actor.", &mut self.actor_adam),
            ("critic.", &mut self.critic_adam),
            ("temperature.", &mut self.temperature_adam),
        ] {
            let own: Vec<(String, Tensor)> = tensors
                .iter()
                .filter_map(|(n, t)| {
                    n.strip_prefix(prefix)
                        .filter(|rest| rest.starts_with("adam."))
                        .map(|rest| (rest.to_string(), t.shallow_clone()))
                })
                .collect();
            adam.load_state(&own)?;
        }
        self.stats.load_state(tensors)?;
        self.norm.load_state("normalizer.", tensors)
    }

    /// An error if a statistic since the last log or any parameter is NaN or infinite.
    pub fn check_finite(&self) -> Result<()> {
        self.stats.read_sums()?;
        state::check_finite(&self.params())?;
        state::check_finite(&[(LOG_ALPHA.to_string(), self.log_alpha.shallow_clone())])
    }

    /// Plasticity diagnostics on raw observations `probe [n, obs_dim]` (the critic is probed
    /// at the actor's deterministic actions).
    pub fn plasticity(&self, probe: &Tensor) -> Result<Vec<(&'static str, f64)>> {
        let obs = probe
            .f_to_device(self.device())?
            .f_to_kind(Kind::Float)?
            .f_view([-1, self.obs_shape[0]])?;
        let x = if self.config.normalize_observations {
            self.norm.normalize_uncached(&obs)?
        } else {
            obs
        };
        diagnostics(self, &x)
    }

    /// CPU copies of what a [`SacPolicy`] needs: actor weights and normaliser statistics.
    pub fn policy_weights(&self) -> Result<NamedTensors> {
        let mut out = state::cpu_copies(&params_of(&self.actor_vs))?;
        out.extend(self.norm.state_tensors("normalizer."));
        Ok(out)
    }

    /// A CPU policy for an actor thread.
    pub fn policy(&self) -> Result<SacPolicy> {
        let vs = nn::VarStore::new(Device::Cpu);
        let actor = Actor::new(&vs.root(), &self.arch, self.obs_shape[0], self.action_dim);
        let scale: Vec<f32> = self
            .low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| (h - l) / 2.0)
            .collect();
        let center: Vec<f32> = self
            .low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| (h + l) / 2.0)
            .collect();
        let mut policy = SacPolicy {
            vs,
            actor,
            norm: self
                .config
                .normalize_observations
                .then(|| RunningNorm::new(self.obs_shape[0] as usize, Device::Cpu)),
            obs_dim: self.obs_shape[0],
            low: self.low.clone(),
            high: self.high.clone(),
            scale: Tensor::from_slice(&scale),
            center: Tensor::from_slice(&center),
        };
        agent::Policy::load_weights(&mut policy, &self.policy_weights()?)?;
        Ok(policy)
    }
}

fn zero_grads(params: &[(String, Tensor)]) -> Result<()> {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_zero_()?;
        }
    }
    Ok(())
}

fn uniform_actions(low: &[f32], high: &[f32], rows: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * low.len());
    for _ in 0..rows {
        for (l, h) in low.iter().zip(high) {
            out.push(l + (h - l) * rng.random::<f32>());
        }
    }
    out
}

impl agent::Agent for Sac {
    type Elem = f32;
    type Policy = SacPolicy;

    fn obs_shape(&self) -> &[i64] {
        &self.obs_shape
    }

    fn act(&mut self, obs: &[f32], mode: ActMode, rng: &mut ChaCha8Rng) -> agent::Result<Vec<f32>> {
        Sac::act(self, obs, mode, rng)
    }

    fn update(&mut self, batch: &Batch<f32>) -> agent::Result<()> {
        Sac::update(self, batch)
    }

    fn take_stats(&mut self, _mode: ActMode) -> agent::Result<Vec<(&'static str, f64)>> {
        self.stats.take_means()
    }

    fn intervene(
        &mut self,
        method: &MethodConfig,
        _probe: Option<&Tensor>,
    ) -> agent::Result<Vec<ParamReport>> {
        Sac::intervene(self, method)
    }

    fn plasticity(&self, probe: &Tensor) -> agent::Result<Vec<(&'static str, f64)>> {
        Sac::plasticity(self, probe)
    }

    fn plasticity_metrics(&self) -> &'static [&'static str] {
        PLASTICITY_METRICS
    }

    fn params(&self) -> NamedTensors {
        Sac::params(self)
    }

    fn state_tensors(&self) -> NamedTensors {
        Sac::state_tensors(self)
    }

    fn load_state(&mut self, tensors: &[(String, Tensor)]) -> agent::Result<()> {
        Sac::load_state(self, tensors)
    }

    fn check_finite(&self) -> agent::Result<()> {
        Sac::check_finite(self)
    }

    fn policy(&self) -> agent::Result<SacPolicy> {
        Sac::policy(self)
    }

    fn policy_weights(&self) -> agent::Result<NamedTensors> {
        Sac::policy_weights(self)
    }
}

/// The plasticity metrics on normalised observations `x`.
fn diagnostics(sac: &Sac, x: &Tensor) -> Result<Vec<(&'static str, f64)>> {
    let (actor_hidden, critic_features, critic_hidden) = tch::no_grad(|| {
        let (_, actor_hidden) = sac.actor.features(x);
        let a = sac.actor.mode(x);
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
    ])
}

/// The CPU actor a thread acts with: the same policy and the normaliser statistics last
/// published (an actor thread does not update them).
pub struct SacPolicy {
    vs: nn::VarStore,
    actor: Actor,
    norm: Option<RunningNorm>,
    obs_dim: i64,
    low: Vec<f32>,
    high: Vec<f32>,
    scale: Tensor,
    center: Tensor,
}

impl agent::Policy for SacPolicy {
    type Elem = f32;

    fn act(&mut self, obs: &[f32], mode: ActMode, rng: &mut ChaCha8Rng) -> agent::Result<Vec<f32>> {
        if mode == ActMode::Warmup {
            return Ok(uniform_actions(
                &self.low,
                &self.high,
                obs.len() / self.obs_dim as usize,
                rng,
            ));
        }
        let mut x = Tensor::from_slice(obs).f_view([-1, self.obs_dim])?;
        if let Some(norm) = &mut self.norm {
            x = norm.normalize(&x)?;
        }
        let a = tch::no_grad(|| -> Result<Tensor> {
            let a = match mode {
                ActMode::Evaluate => self.actor.mode(&x),
                _ => self.actor.sample(&x)?.0,
            };
            Ok(a.f_mul(&self.scale)?.f_add(&self.center)?)
        })?;
        Ok(Vec::<f32>::try_from(&a.f_view([-1])?)?)
    }

    fn load_weights(&mut self, weights: &[(String, Tensor)]) -> agent::Result<()> {
        state::restore("", &params_of(&self.vs), weights)?;
        if let Some(norm) = &mut self.norm {
            norm.load_state("normalizer.", weights)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::squashed_sample;
    use rand::SeedableRng;

    const OBS: i64 = 5;
    const ACT: usize = 3;

    fn small_simba() -> Architecture {
        Architecture::Simba {
            actor_blocks: 1,
            actor_width: 8,
            critic_blocks: 1,
            critic_width: 16,
        }
    }

    fn agent(seed: i64) -> Sac {
        tch::manual_seed(seed);
        Sac::new(
            &small_simba(),
            OBS,
            &[-1.0; ACT],
            &[1.0; ACT],
            SacConfig::simba(),
            Device::Cpu,
        )
        .unwrap()
    }

    fn batch(rng: &mut ChaCha8Rng, size: usize) -> Batch<f32> {
        let mut v = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| scale * (rng.random::<f32>() * 2.0 - 1.0))
                .collect()
        };
        Batch {
            size,
            obs: v(size * OBS as usize, 3.0),
            actions: v(size * ACT, 1.0),
            rewards: v(size, 1.0),
            next_obs: v(size * OBS as usize, 3.0),
            discounts: vec![0.99; size],
        }
    }

    /// An agent that acted (normaliser statistics) and took a few updates (biases, LayerNorm
    /// and optimiser moments away from their initial values).
    fn trained(seed: i64) -> Sac {
        let mut sac = agent(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed as u64);
        let b = batch(&mut rng, 32);
        sac.act(&b.obs, ActMode::Train { step: 0 }, &mut rng)
            .unwrap();
        for _ in 0..5 {
            sac.update(&batch(&mut rng, 32)).unwrap();
        }
        sac
    }

    fn copies(params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
        params
            .iter()
            .map(|(n, t)| (n.clone(), t.detach().copy()))
            .collect()
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && a.equal(b)
    }

    /// The tanh-Gaussian log-density against the change-of-variables formula in f64.
    #[test]
    fn squashed_log_prob_matches_the_closed_form() {
        let (m, s, e) = ([0.3f64, -1.2], [-0.5f64, 0.4], [0.7f64, -1.9]);
        let t = |x: [f64; 2]| Tensor::from_slice(&x.map(|v| v as f32)).view([1, 2]);
        let (a, log_prob) = squashed_sample(&t(m), &t(s), &t(e)).unwrap();
        let mut want = 0.0;
        for i in 0..2 {
            let sigma = s[i].exp();
            let u = m[i] + sigma * e[i];
            let normal = -0.5 * ((u - m[i]) / sigma).powi(2)
                - sigma.ln()
                - 0.5 * (2.0 * std::f64::consts::PI).ln();
            want += normal - (1.0 - u.tanh().powi(2)).ln();
            let got = a.double_value(&[0, i as i64]);
            assert!((got - u.tanh()).abs() < 1e-6, "action {i}: {got}");
        }
        let got = log_prob.double_value(&[0]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn log_std_follows_the_reference_mapping() {
        let sac = agent(3);
        let obs = Tensor::randn([4, OBS], (Kind::Float, Device::Cpu));
        let (_, log_std) = sac.actor().gaussian(&obs);
        let (lo, hi) = (
            log_std.min().double_value(&[]),
            log_std.max().double_value(&[]),
        );
        assert!(lo > -10.0 && hi < 2.0, "{lo} {hi}");
    }

    #[test]
    fn fire_orthogonalises_every_kernel_and_keeps_biases_and_norms() {
        let mut sac = trained(1);
        let before = copies(&sac.member_params());
        let reports = sac
            .intervene(&MethodConfig {
                method: Method::FireExact,
                ..MethodConfig::default()
            })
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
        sac.intervene(&MethodConfig {
            method: Method::FullReset,
            ..MethodConfig::default()
        })
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
            .intervene(&MethodConfig {
                method: Method::ShrinkPerturb,
                shrink: 0.2,
                ..MethodConfig::default()
            })
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

    #[test]
    fn redo_and_injection_are_refused_with_a_reason() {
        let mut sac = agent(4);
        for method in [Method::Redo, Method::PlasticityInjection] {
            let err = sac
                .intervene(&MethodConfig {
                    method,
                    ..MethodConfig::default()
                })
                .unwrap_err()
                .to_string();
            assert!(err.contains("not implemented for SAC"), "{err}");
        }
    }

    #[test]
    fn checkpoint_state_round_trips() {
        let a = trained(5);
        let mut b = agent(6);
        b.load_state(&a.state_tensors()).unwrap();
        let (sa, sb) = (a.state_tensors(), b.state_tensors());
        assert_eq!(sa.len(), sb.len());
        for ((na, ta), (nb, tb)) in sa.iter().zip(&sb) {
            assert_eq!(na, nb);
            assert!(same(ta, tb), "{na}");
        }
        assert!(sa.iter().any(|(n, _)| n == "normalizer.count"));
        assert!(sa.iter().any(|(n, _)| n == "critic.adam.step"));
        // Same greedy actions afterwards.
        let obs = vec![0.5f32; 2 * OBS as usize];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut a, mut b) = (a, b);
        assert_eq!(
            a.act(&obs, ActMode::Evaluate, &mut rng).unwrap(),
            b.act(&obs, ActMode::Evaluate, &mut rng).unwrap()
        );
    }

    /// The reference updates its statistics in `sample_actions(training=True)`, which its
    /// random phase calls too: warm-up and training acts count, evaluation and updates do not.
    #[test]
    fn the_normaliser_learns_while_acting_in_warm_up_and_training() {
        let mut sac = agent(7);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let obs = vec![2.0f32; 3 * OBS as usize];
        let warm = sac.act(&obs, ActMode::Warmup, &mut rng).unwrap();
        assert_eq!(warm.len(), 3 * ACT);
        assert!(warm.iter().all(|a| (-1.0..=1.0).contains(a)));
        assert!(
            (sac.normalizer().count() - 3.0001).abs() < 1e-9,
            "warm-up observations count: {}",
            sac.normalizer().count()
        );
        assert!(sac
            .normalizer()
            .mean()
            .iter()
            .all(|m| (m - 2.0).abs() < 1e-3));
        sac.act(&obs, ActMode::Evaluate, &mut rng).unwrap();
        assert!(
            (sac.normalizer().count() - 3.0001).abs() < 1e-9,
            "evaluation does not count"
        );
        sac.act(&obs, ActMode::Train { step: 9 }, &mut rng).unwrap();
        assert!((sac.normalizer().count() - 6.0001).abs() < 1e-9);
        sac.update(&batch(&mut rng, 8)).unwrap();
        assert!(
            (sac.normalizer().count() - 6.0001).abs() < 1e-9,
            "updates do not count"
        );
    }

    /// A terminal transition whose next observation is NaN (a physics step that blew up)
    /// leaves the update finite: the zero discount selects the reward alone, where
    /// `r + 0 * Q(NaN)` would make the critic's loss, its gradients and then every weight NaN.
    #[test]
    fn a_terminal_nan_next_observation_does_not_poison_the_update() {
        let mut sac = agent(9);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut b = batch(&mut rng, 16);
        b.next_obs[..OBS as usize].fill(f32::NAN);
        b.discounts[0] = 0.0;
        sac.update(&b).unwrap();
        sac.check_finite().unwrap();
        let stats = sac.stats.take_means().unwrap();
        assert!(stats.iter().all(|(_, v)| v.is_finite()), "{stats:?}");
    }

    #[test]
    fn actions_fill_the_box_of_the_task() {
        tch::manual_seed(0);
        let mut sac = Sac::new(
            &Architecture::mlp(),
            3,
            &[-2.0],
            &[2.0],
            SacConfig::cleanrl(),
            Device::Cpu,
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // 2,000 observations: at initialisation |tanh(u)| > 0.5 is a draw beyond about 2.5
        // standard deviations, so a few hundred samples could miss it (this test shares
        // libtorch's generator with the others running at the same time).
        let obs: Vec<f32> = (0..6_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let a = sac.act(&obs, ActMode::Train { step: 0 }, &mut rng).unwrap();
        assert!(a.iter().all(|x| (-2.0..=2.0).contains(x)));
        assert!(
            a.iter().any(|x| x.abs() > 1.0),
            "scaled to the box, not [-1, 1]: {a:?}"
        );
    }

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
