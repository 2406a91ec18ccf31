//! The SAC learner: [`Sac`] holds the policy (actor), the critic ensemble and its target, the
//! temperature, the three optimisers, theta_0 and the observation normaliser; here are its
//! construction, acting and the update, and its [`agent::Agent`] implementation. The
//! interventions are in `intervene.rs` (FIRE and the resets), `inject.rs` (plasticity
//! injection) and `redo.rs`; checkpoint state in `checkpoint.rs`; plasticity metrics in
//! `diagnostics.rs`.

use agent::{autocast, ActMode, Adam, DeviceStats, UpdateAids, UpdateMethods};
use fire::{params_of, MethodConfig, NamedTensors, ParamReport, ParamSnapshot, Regularizer};
use rand_chacha::ChaCha8Rng;
use replay::Batch;
use tch::{nn, Device, Kind, Tensor};

use crate::actor::Actor;
use crate::config::SacConfig;
use crate::critic::{member_views, Critic};
use crate::diagnostics::PLASTICITY_METRICS;
use crate::network::Architecture;
use crate::normalizer::RunningNorm;
use crate::policy::{ActionBox, SacPolicy, SquashedGaussian};
use crate::Result;

/// What the updates sum on the device, under the tags they are logged as.
const STATS: &[&str] = &[
    "losses/qf_loss",
    "losses/qf_values",
    "losses/actor_loss",
    "losses/alpha",
    "losses/alpha_loss",
    "losses/entropy",
];

/// The same with the regularisers' penalty (actor's plus critics').
const STATS_REGULARIZED: &[&str] = &[
    "losses/qf_loss",
    "losses/qf_values",
    "losses/actor_loss",
    "losses/alpha",
    "losses/alpha_loss",
    "losses/entropy",
    "losses/regularizer",
];

/// The output layers Parseval regularisation leaves alone (injected twins included).
const ACTOR_OUTPUTS: [&str; 2] = ["actor.*mean.*", "actor.*log_std.*"];
const CRITIC_OUTPUTS: [&str; 1] = ["critic.*out.*"];

/// Critic ensemble size (clipped double Q).
const CRITICS: i64 = 2;

/// The temperature's parameter name (its optimiser and checkpoint key).
pub(crate) const LOG_ALPHA: &str = "temperature.log_alpha";

/// The SAC agent for flat `f32` observations and a box of actions.
pub struct Sac {
    pub(crate) config: SacConfig,
    pub(crate) arch: Architecture,
    pub(crate) obs_shape: Vec<i64>,
    pub(crate) action_dim: i64,
    pub(crate) actor_vs: nn::VarStore,
    /// The actor and the action box.
    pub(crate) policy: SquashedGaussian,
    pub(crate) critic_vs: nn::VarStore,
    pub(crate) critic: Critic,
    pub(crate) target_vs: nn::VarStore,
    pub(crate) target: Critic,
    pub(crate) log_alpha: Tensor,
    pub(crate) actor_adam: Adam,
    pub(crate) critic_adam: Adam,
    pub(crate) temperature_adam: Adam,
    pub(crate) initial: ParamSnapshot,
    pub(crate) norm: RunningNorm,
    pub(crate) stats: DeviceStats,
    /// The regulariser and projection of the actor's updates, and of the critics' (on each
    /// member's views).
    pub(crate) actor_aids: UpdateAids,
    pub(crate) critic_aids: UpdateAids,
    /// The actor's and the critics' parameters (shallow clones), rebuilt only when the
    /// networks gain parameters (plasticity injection).
    pub(crate) actor_params: NamedTensors,
    pub(crate) critic_params: NamedTensors,
    pub(crate) target_list: NamedTensors,
    /// Host staging for one batch (`obs` then `next_obs`; rewards then discounts), each copied
    /// to the device in one piece. Reused: no allocation per update once grown.
    obs_staging: Vec<f32>,
    scalar_staging: Vec<f32>,
}

impl std::fmt::Debug for Sac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sac")
            .field("arch", &self.arch)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

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
        let bounds = ActionBox::new(low, high, device)?;
        let action_dim = bounds.dim();
        let actor_vs = nn::VarStore::new(device);
        let options = config.network;
        let actor = Actor::new(&actor_vs.root(), arch, obs_dim, action_dim, options);
        let critic_vs = nn::VarStore::new(device);
        let critic = Critic::new(
            &critic_vs.root(),
            arch,
            obs_dim,
            action_dim,
            CRITICS,
            options,
        );
        let mut target_vs = nn::VarStore::new(device);
        let target = Critic::new(
            &target_vs.root(),
            arch,
            obs_dim,
            action_dim,
            CRITICS,
            options,
        );
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
            actor_vs,
            policy: SquashedGaussian::new(actor, bounds, obs_dim),
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
            actor_aids: UpdateAids::new(&UpdateMethods::default(), &[], &[])?,
            critic_aids: UpdateAids::new(&UpdateMethods::default(), &[], &[])?,
            actor_params: Vec::new(),
            critic_params: Vec::new(),
            target_list: Vec::new(),
            obs_staging: Vec::new(),
            scalar_staging: Vec::new(),
        };
        sac.actor_params = params_of(&sac.actor_vs);
        sac.critic_params = params_of(&sac.critic_vs);
        sac.target_list = params_of(&sac.target_vs);
        sac.initial = ParamSnapshot::capture(&sac.params());
        // The critics' penalty and projection see each member's matrices on their own.
        let methods = &sac.config.methods;
        sac.actor_aids = UpdateAids::new(methods, &sac.actor_params, &ACTOR_OUTPUTS)?;
        sac.critic_aids =
            UpdateAids::new(methods, &member_views(&sac.critic_params), &CRITIC_OUTPUTS)?;
        if sac.actor_aids.regularizes() {
            sac.stats = DeviceStats::new(STATS_REGULARIZED, device);
        }
        agent::reset_layers::check(&sac.params(), &sac.config.reset_layers)?;
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
        self.actor_params
            .iter()
            .chain(&self.critic_params)
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
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

    /// The policy (actor and action box).
    pub fn policy_net(&self) -> &SquashedGaussian {
        &self.policy
    }

    /// The actor.
    pub fn actor(&self) -> &Actor {
        self.policy.actor()
    }

    /// The critic ensemble.
    pub fn critic(&self) -> &Critic {
        &self.critic
    }

    /// The target critic ensemble.
    pub fn target(&self) -> &Critic {
        &self.target
    }

    /// The actor's, the critics' and the temperature's optimisers.
    pub fn optimizers(&self) -> [(&'static str, &Adam); 3] {
        [
            ("actor.", &self.actor_adam),
            ("critic.", &self.critic_adam),
            ("temperature.", &self.temperature_adam),
        ]
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

    /// Raw observations (`[n, obs_dim]`, any device) normalised with the current statistics
    /// when configured, without touching the cached device copy (for `&self` callers: the
    /// diagnostics and ReDo's scoring batch).
    pub(crate) fn prepare_uncached(&self, obs: &Tensor) -> Result<Tensor> {
        let obs = obs
            .f_to_device(self.device())?
            .f_to_kind(Kind::Float)?
            .f_view([-1, self.obs_shape[0]])?;
        if self.config.normalize_observations {
            self.norm.normalize_uncached(&obs)
        } else {
            Ok(obs)
        }
    }

    /// Actions in the box for `obs` (flat `[n, obs_dim]`): uniform in warm-up, a policy sample
    /// in training, `tanh(mean)` in evaluation ([`SquashedGaussian::act`]). In warm-up and
    /// training `obs` is first added to the normaliser's statistics, as the FIRE reference's
    /// `sample_actions(training=True)` does in its random phase too, so learning starts with
    /// the statistics of every random step rather than of none.
    pub fn act(&mut self, obs: &[f32], mode: ActMode, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
        let normalize = self.config.normalize_observations;
        if mode != ActMode::Evaluate && normalize {
            self.norm.update(obs)?;
        }
        let norm = normalize.then_some(&mut self.norm);
        self.policy.act(obs, mode, rng, norm)
    }

    /// One update in the reference's order: actor, temperature, critic (with the new actor
    /// and temperature), then the target critic's Polyak step. It does not wait for the
    /// device: its statistics are summed there for [`take_stats`](agent::Agent::take_stats).
    pub fn update(&mut self, batch: &Batch<f32>) -> Result<()> {
        let device = self.device();
        let precision = self.config.precision;
        let n = batch.size as i64;
        // Three host-to-device copies: `obs` and `next_obs` in one tensor (normalised in one
        // pass), the actions, and the rewards with the discounts.
        self.obs_staging.clear();
        self.obs_staging.extend_from_slice(&batch.obs);
        self.obs_staging.extend_from_slice(&batch.next_obs);
        self.scalar_staging.clear();
        self.scalar_staging.extend_from_slice(&batch.rewards);
        self.scalar_staging.extend_from_slice(&batch.discounts);
        let both = Tensor::from_slice(&self.obs_staging);
        let both = self.prepare(&both)?;
        let (obs, next_obs) = (both.f_narrow(0, 0, n)?, both.f_narrow(0, n, n)?);
        let actions = self.policy.to_unit(
            &Tensor::from_slice(&batch.actions)
                .f_view([n, self.action_dim])?
                .f_to_device(device)?,
        )?;
        let scalars = Tensor::from_slice(&self.scalar_staging)
            .f_view([2, n])?
            .f_to_device(device)?;
        let (rewards, discounts) = (scalars.f_get(0)?, scalars.f_get(1)?);

        // Actor: maximise min_k Q_k(s, a~pi) - alpha log pi. The critic's weights are held
        // fixed (detached): the backward pass computes gradients for the actions only, none for
        // the critic's weights.
        let alpha = self.log_alpha.f_exp()?.f_detach()?;
        let (log_pi, actor_loss) = autocast(precision, device, || {
            let (a_pi, log_pi) = self.policy.sample(&obs)?;
            let q_pi = self
                .critic
                .forward(&obs, &a_pi, true)
                .f_to_kind(Kind::Float)?
                .f_amin([0i64].as_slice(), false)?;
            let loss = log_pi.f_mul(&alpha)?.f_sub(&q_pi)?.f_mean(Kind::Float)?;
            Ok((log_pi, loss))
        })?;
        let actor_penalty = self.actor_aids.penalty(&self.actor_params, &self.initial)?;
        agent::clear_grads(&self.actor_params)?;
        match &actor_penalty {
            Some(p) => actor_loss.f_add(p)?.f_backward()?,
            None => actor_loss.f_backward()?,
        }
        self.actor_adam.step(&self.actor_params)?;
        self.actor_aids.after_step(&self.actor_params)?;
        let entropy = log_pi.f_detach()?.f_mean(Kind::Float)?.f_neg()?;

        // Temperature: alpha (entropy - target).
        let alpha_loss = self
            .log_alpha
            .f_exp()?
            .f_mul(&entropy.f_sub_scalar(self.target_entropy())?)?
            .f_sum(Kind::Float)?;
        let temperature = [(LOG_ALPHA.to_string(), self.log_alpha.shallow_clone())];
        agent::clear_grads(&temperature)?;
        alpha_loss.f_backward()?;
        self.temperature_adam.step(&temperature)?;

        // Critic: clipped double-Q target with the updated actor and temperature; the
        // discount is 0 after a termination (replay's), never after a truncation, and a zero
        // discount selects the reward alone (`agent::td_target`: never `0 * Q(next)`).
        let target = tch::no_grad(|| -> Result<Tensor> {
            autocast(precision, device, || {
                let alpha = self.log_alpha.f_exp()?;
                let (next_a, next_log_pi) = self.policy.sample(&next_obs)?;
                let next_q = self
                    .target
                    .forward(&next_obs, &next_a, true)
                    .f_to_kind(Kind::Float)?
                    .f_amin([0i64].as_slice(), false)?
                    .f_sub(&next_log_pi.f_mul(&alpha)?)?;
                agent::td_target(&rewards, &discounts, &next_q)
            })
        })?;
        let q = autocast(precision, device, || {
            Ok(self
                .critic
                .forward(&obs, &actions, false)
                .f_to_kind(Kind::Float)?)
        })?;
        // Sum over the critics of each one's mean squared error, as CleanRL's qf1 + qf2 loss.
        let qf_loss = q
            .f_sub(&target.f_unsqueeze(0)?)?
            .f_square()?
            .f_mean_dim([1i64].as_slice(), false, Kind::Float)?
            .f_sum(Kind::Float)?;
        // Parseval's Gram matrices are each member's; L2 and L2 Init sum over the members
        // alike and read theta_0 under the stacked names.
        let members = member_views(&self.critic_params);
        let critic_penalty = if self.config.methods.regularizer == Regularizer::Parseval {
            self.critic_aids.penalty(&members, &self.initial)?
        } else {
            self.critic_aids
                .penalty(&self.critic_params, &self.initial)?
        };
        agent::clear_grads(&self.critic_params)?;
        match &critic_penalty {
            Some(p) => qf_loss.f_add(p)?.f_backward()?,
            None => qf_loss.f_backward()?,
        }
        self.critic_adam.step(&self.critic_params)?;
        self.critic_aids.after_step(&members)?;
        self.soft_update_target(self.config.tau)?;

        let alpha_now = self.log_alpha.f_exp()?.f_sum(Kind::Float)?;
        let q_mean = q.f_mean(Kind::Float)?;
        let mut values = vec![
            &qf_loss,
            &q_mean,
            &actor_loss,
            &alpha_now,
            &alpha_loss,
            &entropy,
        ];
        let penalty = match (actor_penalty, critic_penalty) {
            (Some(a), Some(c)) => Some(a.f_detach()?.f_add(&c.f_detach()?)?),
            _ => None,
        };
        if let Some(p) = &penalty {
            values.push(p);
        }
        self.stats.add(&values)
    }

    /// Moves the target critic toward the critic by `tau` ([`agent::polyak`]: `lerp`, a copy
    /// when `tau = 1`).
    pub fn soft_update_target(&self, tau: f64) -> Result<()> {
        agent::polyak_lists(&self.target_list, &self.critic_params, tau)
    }

    /// A CPU policy for an actor thread.
    pub fn policy(&self) -> Result<SacPolicy> {
        let vs = nn::VarStore::new(Device::Cpu);
        let actor = Actor::new(
            &vs.root(),
            &self.arch,
            self.obs_shape[0],
            self.action_dim,
            self.config.network,
        );
        let bounds = self.policy.bounds();
        let bounds = ActionBox::new(&bounds.low, &bounds.high, Device::Cpu)?;
        let norm = self
            .config
            .normalize_observations
            .then(|| RunningNorm::new(self.obs_shape[0] as usize, Device::Cpu));
        let mut policy = SacPolicy::new(
            vs,
            SquashedGaussian::new(actor, bounds, self.obs_shape[0]),
            norm,
        );
        agent::Policy::load_weights(&mut policy, &self.policy_weights()?)?;
        Ok(policy)
    }
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
        probe: Option<&Tensor>,
    ) -> agent::Result<Vec<ParamReport>> {
        Sac::intervene(self, method, probe)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{agent, batch, OBS};
    use rand::SeedableRng;

    /// The reference updates its statistics in `sample_actions(training=True)`, which its
    /// random phase calls too: warm-up and training acts count, evaluation and updates do not.
    #[test]
    fn the_normaliser_learns_while_acting_in_warm_up_and_training() {
        let mut sac = agent(7);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let obs = vec![2.0f32; 3 * OBS as usize];
        let warm = sac.act(&obs, ActMode::Warmup, &mut rng).unwrap();
        assert_eq!(warm.len(), 3 * crate::testutil::ACT);
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
}
