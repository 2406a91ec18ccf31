//! What a SAC checkpoint holds and how it comes back: actor, critics, target, theta_0, the
//! temperature, the three optimisers, the normaliser and the loss sums not yet logged (and,
//! after plasticity injection, the injected heads, which a load re-creates first); the
//! divergence check; the weights actor threads get.

use agent::state;
use fire::{params_of, NamedTensors};
use tch::Tensor;

use crate::learner::LOG_ALPHA;
use crate::{Result, Sac};

impl Sac {
    /// Everything a checkpoint needs: actor, critic, target, theta_0, temperature, the three
    /// optimisers, the normaliser and the loss sums not yet logged.
    pub fn state_tensors(&self) -> NamedTensors {
        let params = self.params();
        let mut out = state::prefixed("online.", &params);
        out.extend(state::prefixed("target.", &self.target_params()));
        out.extend(state::initial_tensors(&self.initial, &params));
        out.push((LOG_ALPHA.into(), self.log_alpha.detach()));
        for (prefix, adam) in self.optimizers() {
            out.extend(state::prefixed(prefix, &adam.state_tensors()));
        }
        out.extend(self.norm.state_tensors("normalizer."));
        out.extend(self.stats.state_tensors());
        out
    }

    /// Restores what [`state_tensors`](Self::state_tensors) saved (re-applying plasticity
    /// injection first when the checkpoint has injected heads, so that they and their
    /// optimiser moments have somewhere to go).
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let injected = tensors.iter().any(|(n, _)| {
            n.starts_with("online.actor.injected.") || n.starts_with("online.critic.injected.")
        });
        if injected && !self.is_injected() {
            self.inject()?;
        }
        state::restore("online.", &self.params(), tensors)?;
        state::restore("target.", &self.target_params(), tensors)?;
        self.initial = state::load_initial(&self.params(), tensors)?;
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

    /// CPU copies of what a [`SacPolicy`](crate::SacPolicy) needs: actor weights (injected
    /// heads included) and normaliser statistics.
    pub fn policy_weights(&self) -> Result<NamedTensors> {
        let mut out = state::cpu_copies(&params_of(&self.actor_vs))?;
        out.extend(self.norm.state_tensors("normalizer."));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{agent, same, trained, OBS};
    use agent::ActMode;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

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
}
