//! Replay for flat `f32` observations (classic control, MuJoCo), one transition per slot.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::io::{Kind, Reader, Writer};
use crate::{Batch, Error, NStep, Result};

/// A ring of `(obs, action, reward, next_obs, terminated)` transitions. Observations are small,
/// so each transition keeps its own next observation; n-step returns are only offered by
/// [`crate::FrameReplay`] for now (`sample` rejects `n > 1` with an error).
///
/// Fed whole transitions with [`add`](Self::add), or step by step per environment through
/// [`Replay`](crate::Replay): each stream remembers its current observation (the accumulator),
/// so a step carries only the next one.
#[derive(Clone, Debug)]
pub struct VectorReplay {
    obs_dim: usize,
    action_dim: usize,
    capacity: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<u8>,
    written: u64,
    rng: ChaCha8Rng,
    /// Per stream: the observation the next step acts from, while an episode is in progress.
    current: Vec<Option<Vec<f32>>>,
}

impl VectorReplay {
    /// A buffer of `capacity` transitions with the given dimensions; sampling seeded.
    pub fn new(capacity: usize, obs_dim: usize, action_dim: usize, seed: u64) -> Result<Self> {
        if capacity == 0 || obs_dim == 0 || action_dim == 0 {
            return Err(Error::Config {
                field: "shape",
                reason: "capacity and dimensions must be positive".into(),
            });
        }
        Ok(Self {
            obs_dim,
            action_dim,
            capacity,
            obs: Vec::new(),
            next_obs: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            terminated: Vec::new(),
            written: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            current: Vec::new(),
        })
    }

    /// Stored transitions.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Adds a transition; `next_obs` is the final observation when the episode ended.
    pub fn add(
        &mut self,
        obs: &[f32],
        action: &[f32],
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
    ) -> Result<()> {
        if obs.len() != self.obs_dim
            || next_obs.len() != self.obs_dim
            || action.len() != self.action_dim
        {
            return Err(Error::Insert(format!(
                "shapes obs {}, next {}, action {}; expected {}, {}, {}",
                obs.len(),
                next_obs.len(),
                action.len(),
                self.obs_dim,
                self.obs_dim,
                self.action_dim
            )));
        }
        let slot = (self.written % self.capacity as u64) as usize;
        if slot == self.rewards.len() {
            self.obs.extend_from_slice(obs);
            self.next_obs.extend_from_slice(next_obs);
            self.actions.extend_from_slice(action);
            self.rewards.push(reward);
            self.terminated.push(u8::from(terminated));
        } else {
            let (o, a) = (self.obs_dim, self.action_dim);
            self.obs[slot * o..(slot + 1) * o].copy_from_slice(obs);
            self.next_obs[slot * o..(slot + 1) * o].copy_from_slice(next_obs);
            self.actions[slot * a..(slot + 1) * a].copy_from_slice(action);
            self.rewards[slot] = reward;
            self.terminated[slot] = u8::from(terminated);
        }
        self.written += 1;
        Ok(())
    }

    /// Samples `size` transitions uniformly with replacement.
    pub fn sample(&mut self, size: usize, nstep: NStep) -> Result<Batch<f32>> {
        let mut rng = self.rng.clone();
        let batch = self.sample_with(size, nstep, &mut rng);
        self.rng = rng;
        batch
    }

    /// Samples as [`sample`](Self::sample) does, drawing from `rng` instead of the buffer's
    /// own generator (which stays where it was): for draws that must not shift the training
    /// batches, such as a plasticity probe.
    pub fn sample_with(
        &self,
        size: usize,
        nstep: NStep,
        rng: &mut ChaCha8Rng,
    ) -> Result<Batch<f32>> {
        nstep.validate()?;
        if nstep.n != 1 {
            return Err(Error::Config {
                field: "n_step",
                reason: "vector replay supports one-step returns only".into(),
            });
        }
        if self.is_empty() || size == 0 {
            return Err(Error::NotEnough {
                have: self.len(),
                need: size.max(1),
            });
        }
        let (o, a) = (self.obs_dim, self.action_dim);
        let mut batch = Batch {
            size,
            obs: Vec::with_capacity(size * o),
            actions: Vec::with_capacity(size * a),
            rewards: Vec::with_capacity(size),
            next_obs: Vec::with_capacity(size * o),
            discounts: Vec::with_capacity(size),
        };
        for _ in 0..size {
            let i = rng.random_range(0..self.len());
            batch.obs.extend_from_slice(&self.obs[i * o..(i + 1) * o]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * o..(i + 1) * o]);
            batch
                .actions
                .extend_from_slice(&self.actions[i * a..(i + 1) * a]);
            batch.rewards.push(self.rewards[i]);
            batch.discounts.push(if self.terminated[i] != 0 {
                0.0
            } else {
                nstep.gamma
            });
        }
        Ok(batch)
    }

    /// Saves contents and the sampling generator.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut w = Writer::create(path, Kind::Vectors)?;
        for v in [self.obs_dim, self.action_dim, self.capacity] {
            w.u64(v as u64)?;
        }
        w.u64(self.written)?;
        w.bytes(&crate::generator_state(&self.rng))?;
        w.f32s(&self.obs)?;
        w.f32s(&self.next_obs)?;
        w.f32s(&self.actions)?;
        w.f32s(&self.rewards)?;
        w.bytes(&self.terminated)?;
        w.u64(self.current.len() as u64)?;
        for obs in &self.current {
            w.f32s(obs.as_deref().unwrap_or(&[]))?;
        }
        w.finish()
    }

    /// Loads a buffer saved by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let mut r = Reader::open(path, Kind::Vectors)?;
        let obs_dim = r.u64()? as usize;
        let action_dim = r.u64()? as usize;
        let capacity = r.u64()? as usize;
        let written = r.u64()?;
        let rng = crate::generator_from(&r.bytes()?).ok_or_else(|| r.corrupt("generator state"))?;
        let (obs, next_obs, actions, rewards, terminated) =
            (r.f32s()?, r.f32s()?, r.f32s()?, r.f32s()?, r.bytes()?);
        let streams = r.u64()?;
        let mut current = Vec::new();
        for _ in 0..streams.min(1 << 16) {
            let obs = r.f32s()?;
            current.push((!obs.is_empty()).then_some(obs));
        }
        let n = rewards.len();
        if current.iter().flatten().any(|o| o.len() != obs_dim) || streams > 1 << 16 {
            return Err(r.corrupt("stream observations"));
        }
        if obs.len() != n * obs_dim
            || next_obs.len() != n * obs_dim
            || actions.len() != n * action_dim
            || terminated.len() != n
            || n > capacity
        {
            return Err(r.corrupt("sizes"));
        }
        Ok(Self {
            obs_dim,
            action_dim,
            capacity,
            obs,
            next_obs,
            actions,
            rewards,
            terminated,
            written,
            rng,
            current,
        })
    }
}

impl crate::Replay for VectorReplay {
    type Elem = f32;

    fn part_len(&self) -> usize {
        self.obs_dim
    }

    fn start_episode(&mut self, stream: usize, obs: &[f32]) -> Result<()> {
        if obs.len() != self.obs_dim {
            return Err(Error::Insert(format!(
                "observation of {} values, expected {}",
                obs.len(),
                self.obs_dim
            )));
        }
        if stream >= self.current.len() {
            self.current.resize(stream + 1, None);
        }
        self.current[stream] = Some(obs.to_vec());
        Ok(())
    }

    fn add_step(
        &mut self,
        stream: usize,
        action: &[f32],
        reward: f32,
        terminated: bool,
        next_obs: &[f32],
        episode_over: bool,
    ) -> Result<()> {
        let obs = self
            .current
            .get_mut(stream)
            .and_then(Option::take)
            .ok_or_else(|| {
                Error::Insert(format!(
                    "stream {stream} has no episode in progress (call start_episode)"
                ))
            })?;
        self.add(&obs, action, reward, next_obs, terminated)?;
        if !episode_over {
            self.current[stream] = Some(next_obs.to_vec());
        }
        Ok(())
    }

    fn sample(&mut self, size: usize, nstep: NStep) -> Result<Batch<f32>> {
        VectorReplay::sample(self, size, nstep)
    }

    fn sample_with(&self, size: usize, nstep: NStep, rng: &mut ChaCha8Rng) -> Result<Batch<f32>> {
        VectorReplay::sample_with(self, size, nstep, rng)
    }

    fn len(&self) -> usize {
        VectorReplay::len(self)
    }

    fn save(&self, path: &Path) -> Result<()> {
        VectorReplay::save(self, path)
    }

    fn load(path: &Path) -> Result<Self> {
        VectorReplay::load(path)
    }
}
