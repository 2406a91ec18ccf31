//! The squashed-Gaussian policy on the task's action box: [`SquashedGaussian`] is the one
//! place actions are drawn, squashed and scaled, for the learner ([`crate::Sac`]: acting and
//! the update's samples) and for actor threads ([`SacPolicy`], its CPU copy).

use agent::{state, ActMode};
use fire::params_of;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

use crate::actor::Actor;
use crate::normalizer::RunningNorm;
use crate::{Error, Result};

/// Log-probability terms of a tanh-Gaussian sample.
pub const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `tanh(u)` with `u = mean + exp(log_std) * eps` and its log-density summed over the last
/// dimension: `sum(-eps^2 / 2 - log_std - log sqrt(2 pi)) - sum(log(1 - tanh(u)^2))`, the last
/// term in the stable form `2 (log 2 - u - softplus(-2u))`.
pub fn squashed_sample(mean: &Tensor, log_std: &Tensor, eps: &Tensor) -> Result<(Tensor, Tensor)> {
    let u = mean.f_add(&log_std.f_exp()?.f_mul(eps)?)?;
    let gaussian = (eps.f_square()? * -0.5 - log_std - LOG_SQRT_2PI).f_sum_dim_intlist(
        [-1i64].as_slice(),
        false,
        Kind::Float,
    )?;
    let log_det = ((-&u).f_sub(&(&u * -2.0).f_softplus()?)? + std::f64::consts::LN_2) * 2.0;
    let log_prob =
        gaussian.f_sub(&log_det.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?)?;
    Ok((u.f_tanh()?, log_prob))
}

/// The box `[low, high]` actions live in, and the affine map from the policy's [-1, 1] to it.
#[derive(Debug)]
pub(crate) struct ActionBox {
    pub(crate) low: Vec<f32>,
    pub(crate) high: Vec<f32>,
    /// `(high - low) / 2` and `(high + low) / 2` on the device.
    scale: Tensor,
    center: Tensor,
    /// `sum(log scale)`: the tanh-Gaussian's log-density is of actions in [-1, 1]; the
    /// entropy the temperature tunes is that of actions in the box.
    log_scale_sum: f64,
}

impl ActionBox {
    /// Checks the bounds (finite, `low < high`, as many of each) and puts the map on `device`.
    pub(crate) fn new(low: &[f32], high: &[f32], device: Device) -> Result<Self> {
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
        let scale: Vec<f32> = low.iter().zip(high).map(|(l, h)| (h - l) / 2.0).collect();
        let center: Vec<f32> = low.iter().zip(high).map(|(l, h)| (h + l) / 2.0).collect();
        Ok(Self {
            low: low.to_vec(),
            high: high.to_vec(),
            log_scale_sum: scale.iter().map(|s| f64::from(*s).ln()).sum(),
            scale: Tensor::from_slice(&scale).f_to_device(device)?,
            center: Tensor::from_slice(&center).f_to_device(device)?,
        })
    }

    /// Action dimensions.
    pub(crate) fn dim(&self) -> i64 {
        self.low.len() as i64
    }

    /// `rows` actions uniform in the box (the random warm-up).
    fn uniform(&self, rows: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * self.low.len());
        for _ in 0..rows {
            for (l, h) in self.low.iter().zip(&self.high) {
                out.push(l + (h - l) * rng.random::<f32>());
            }
        }
        out
    }
}

/// The tanh-Gaussian policy on an action box: the [`Actor`]'s Gaussian, squashed by `tanh` into
/// [-1, 1] and mapped affinely onto the box.
pub struct SquashedGaussian {
    actor: Actor,
    bounds: ActionBox,
    obs_dim: i64,
}

impl std::fmt::Debug for SquashedGaussian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SquashedGaussian")
            .field("actor", &self.actor)
            .field("low", &self.bounds.low)
            .field("high", &self.bounds.high)
            .finish_non_exhaustive()
    }
}

impl SquashedGaussian {
    pub(crate) fn new(actor: Actor, bounds: ActionBox, obs_dim: i64) -> Self {
        Self {
            actor,
            bounds,
            obs_dim,
        }
    }

    /// The actor network.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub(crate) fn actor_mut(&mut self) -> &mut Actor {
        &mut self.actor
    }

    pub(crate) fn bounds(&self) -> &ActionBox {
        &self.bounds
    }

    /// The deterministic action `tanh(mean)`, in [-1, 1].
    pub fn mode(&self, obs: &Tensor) -> Tensor {
        self.actor.gaussian(obs).0.tanh()
    }

    /// A reparameterised sample `tanh(mean + std * eps)` in [-1, 1] (`eps` from libtorch's
    /// generator) and the log-density of the action it stands for in the box (the density in
    /// [-1, 1] minus `sum log scale`).
    pub fn sample(&self, obs: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mean, log_std) = self.actor.gaussian(obs);
        let eps = mean.f_randn_like()?;
        let (a, log_prob) = squashed_sample(&mean, &log_std, &eps)?;
        Ok((a, log_prob.f_sub_scalar(self.bounds.log_scale_sum)?))
    }

    /// Box actions `[n, action_dim]` mapped back to [-1, 1] (replayed actions).
    pub fn to_unit(&self, actions: &Tensor) -> Result<Tensor> {
        Ok(actions
            .f_sub(&self.bounds.center)?
            .f_div(&self.bounds.scale)?)
    }

    /// Action rows in the box for raw observations `obs` (flat `[n, obs_dim]`): uniform in
    /// warm-up (the network does not run), a policy sample in training, `tanh(mean)` in
    /// evaluation. `norm`, when given, normalises the observations first (it is not updated
    /// here: the learner does that before calling).
    pub fn act(
        &self,
        obs: &[f32],
        mode: ActMode,
        rng: &mut ChaCha8Rng,
        norm: Option<&mut RunningNorm>,
    ) -> Result<Vec<f32>> {
        if mode == ActMode::Warmup {
            return Ok(self.bounds.uniform(obs.len() / self.obs_dim as usize, rng));
        }
        let device = self.bounds.scale.device();
        let mut x = Tensor::from_slice(obs)
            .f_to_device(device)?
            .f_to_kind(Kind::Float)?
            .f_view([-1, self.obs_dim])?;
        if let Some(norm) = norm {
            x = norm.normalize(&x)?;
        }
        let a = tch::no_grad(|| -> Result<Tensor> {
            let a = match mode {
                ActMode::Evaluate => self.mode(&x),
                _ => self.sample(&x)?.0,
            };
            Ok(a.f_mul(&self.bounds.scale)?.f_add(&self.bounds.center)?)
        })?;
        Ok(Vec::<f32>::try_from(
            &a.f_to_device(Device::Cpu)?.f_view([-1])?,
        )?)
    }
}

/// The CPU actor a thread acts with: the same [`SquashedGaussian`] and the normaliser
/// statistics last published (an actor thread does not update them).
pub struct SacPolicy {
    vs: nn::VarStore,
    policy: SquashedGaussian,
    norm: Option<RunningNorm>,
}

impl SacPolicy {
    /// A policy on `vs` (a CPU store holding `policy`'s actor), normalising with `norm`.
    pub(crate) fn new(
        vs: nn::VarStore,
        policy: SquashedGaussian,
        norm: Option<RunningNorm>,
    ) -> Self {
        Self { vs, policy, norm }
    }
}

impl agent::Policy for SacPolicy {
    type Elem = f32;

    fn act(&mut self, obs: &[f32], mode: ActMode, rng: &mut ChaCha8Rng) -> agent::Result<Vec<f32>> {
        self.policy.act(obs, mode, rng, self.norm.as_mut())
    }

    fn load_weights(&mut self, weights: &[(String, Tensor)]) -> agent::Result<()> {
        // The learner's actor gained heads (plasticity injection): so does the copy.
        let injected = weights
            .iter()
            .any(|(n, _)| n.starts_with("actor.injected."));
        if injected && !self.policy.actor().is_injected() {
            self.policy.actor_mut().inject(&self.vs.root());
        }
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
    use crate::testutil::{agent, OBS};
    use crate::{Architecture, Sac, SacConfig};
    use rand::SeedableRng;

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

    /// The learner and its CPU copy act through the same policy type: same greedy actions.
    #[test]
    fn the_cpu_policy_acts_as_the_learner() {
        let mut sac = agent(11);
        let mut copy = agent::Agent::policy(&sac).unwrap();
        let obs: Vec<f32> = (0..4 * OBS).map(|i| (i as f32 * 0.7).cos()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let want = sac.act(&obs, ActMode::Evaluate, &mut rng).unwrap();
        let got = agent::Policy::act(&mut copy, &obs, ActMode::Evaluate, &mut rng).unwrap();
        assert_eq!(want, got);
    }
}
