//! Compact replay for stacked-frame observations (Atari).

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::io::{Reader, Writer};
use crate::{Batch, Error, NStep, Result};

/// The entry is the first frame of an episode: stacks stop here.
const FIRST: u8 = 1;
/// An action was taken from this entry: it starts a transition to the next entry.
const ACTED: u8 = 2;
/// That transition ended the episode in a terminal state.
const TERMINATED: u8 = 4;

/// One environment's stream of frames. Entry `k` (counting every entry ever written) lives at
/// slot `k % capacity`.
#[derive(Clone, Debug)]
struct Stream {
    frames: Vec<u8>,
    actions: Vec<u8>,
    rewards: Vec<f32>,
    flags: Vec<u8>,
    written: u64,
    /// The newest entry awaits an action (an episode is in progress).
    open: bool,
    /// Stored entries with an action (transitions), kept up to date on overwrite.
    acted: usize,
}

/// Replay of stacked frames, storing each frame once. See the crate documentation.
///
/// Feed it per environment: [`start_episode`](Self::start_episode) with the newest frame of
/// the first observation, then [`add_step`](Self::add_step) with the action, reward, flags and
/// the newest frame of the next observation (for the step that ends an episode: of the final
/// observation).
#[derive(Clone, Debug)]
pub struct FrameReplay {
    frame_len: usize,
    stack: usize,
    capacity_per_stream: usize,
    streams: Vec<Stream>,
    rng: ChaCha8Rng,
}

impl FrameReplay {
    /// A buffer of `capacity` transitions in total, split evenly over `streams` environments,
    /// for frames of `frame_len` bytes stacked `stack` deep; sampling seeded with `seed`.
    pub fn new(
        capacity: usize,
        streams: usize,
        frame_len: usize,
        stack: usize,
        seed: u64,
    ) -> Result<Self> {
        if streams == 0 || frame_len == 0 || stack == 0 {
            return Err(Error::Config {
                field: "shape",
                reason: "streams, frame length and stack depth must be positive".into(),
            });
        }
        let capacity_per_stream = capacity / streams;
        if capacity_per_stream < stack + 2 {
            return Err(Error::Config {
                field: "capacity",
                reason: format!(
                    "{capacity} transitions over {streams} streams leaves fewer than {} per stream",
                    stack + 2
                ),
            });
        }
        // Reserved up front so the vectors never double (an untouched reservation costs
        // address space, not memory: pages become resident as frames are written). A
        // reservation that cannot be had is an error, not an abort.
        let reserve = |bytes: usize| -> Result<Vec<u8>> {
            let mut v = Vec::new();
            v.try_reserve_exact(bytes).map_err(|_| Error::Config {
                field: "capacity",
                reason: format!(
                    "{capacity} transitions need {:.1} GB of memory for the frames, which cannot be reserved",
                    (capacity as f64 * frame_len as f64) / 1e9
                ),
            })?;
            Ok(v)
        };
        let stream = Stream {
            frames: reserve(capacity_per_stream * frame_len)?,
            actions: Vec::with_capacity(capacity_per_stream),
            rewards: Vec::with_capacity(capacity_per_stream),
            flags: Vec::with_capacity(capacity_per_stream),
            written: 0,
            open: false,
            acted: 0,
        };
        Ok(Self {
            frame_len,
            stack,
            capacity_per_stream,
            streams: vec![stream; streams],
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Bytes stored per transition: the frame, the action, the reward and the flags.
    pub fn bytes_per_transition(&self) -> usize {
        self.frame_len + 1 + 4 + 1
    }

    /// Bytes holding stored entries (what is resident; the reservation beyond it is not).
    pub fn memory_bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|s| s.frames.len() + s.actions.len() + 4 * s.rewards.len() + s.flags.len())
            .sum()
    }

    /// Transitions stored (those at the oldest edge whose stack was overwritten excepted
    /// from sampling, at most `stack - 1` per stream).
    pub fn len(&self) -> usize {
        self.streams.iter().map(|s| s.acted).sum()
    }

    /// Whether nothing can be sampled yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, k: u64) -> usize {
        (k % self.capacity_per_stream as u64) as usize
    }

    /// Absolute indices that may start a sampled transition: their stack is intact and the
    /// next entry is written.
    fn range(&self, s: &Stream) -> std::ops::Range<u64> {
        let oldest = s.written.saturating_sub(self.capacity_per_stream as u64);
        let start = if oldest == 0 {
            0
        } else {
            oldest + self.stack as u64 - 1
        };
        start..s.written.saturating_sub(1).max(start)
    }

    fn push(&mut self, stream: usize, frame: &[u8], flags: u8) -> Result<()> {
        if frame.len() != self.frame_len {
            return Err(Error::Insert(format!(
                "frame of {} bytes, expected {}",
                frame.len(),
                self.frame_len
            )));
        }
        let capacity = self.capacity_per_stream;
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| Error::Insert(format!("no stream {stream}")))?;
        let slot = (s.written % capacity as u64) as usize;
        if s.flags.len() < capacity && slot == s.flags.len() {
            s.frames.extend_from_slice(frame);
            s.actions.push(0);
            s.rewards.push(0.0);
            s.flags.push(flags);
        } else {
            if s.flags[slot] & ACTED != 0 {
                s.acted -= 1;
            }
            s.frames[slot * frame.len()..(slot + 1) * frame.len()].copy_from_slice(frame);
            s.actions[slot] = 0;
            s.rewards[slot] = 0.0;
            s.flags[slot] = flags;
        }
        s.written += 1;
        Ok(())
    }

    /// Begins an episode in `stream` with the newest frame of its first observation.
    pub fn start_episode(&mut self, stream: usize, frame: &[u8]) -> Result<()> {
        self.push(stream, frame, FIRST)?;
        self.streams[stream].open = true;
        Ok(())
    }

    /// Records a step of `stream`: the action taken from the newest entry, its reward, whether
    /// it terminated the episode, and the newest frame of the next (or final) observation.
    /// `episode_over` (terminated or truncated) closes the stream until the next
    /// [`start_episode`](Self::start_episode).
    pub fn add_step(
        &mut self,
        stream: usize,
        action: u8,
        reward: f32,
        terminated: bool,
        next_frame: &[u8],
        episode_over: bool,
    ) -> Result<()> {
        let s = self
            .streams
            .get(stream)
            .ok_or_else(|| Error::Insert(format!("no stream {stream}")))?;
        if !s.open {
            return Err(Error::Insert(format!(
                "stream {stream} has no episode in progress (call start_episode)"
            )));
        }
        let last = self.slot(s.written - 1);
        let s = &mut self.streams[stream];
        s.actions[last] = action;
        s.rewards[last] = reward;
        s.flags[last] |= ACTED | if terminated { TERMINATED } else { 0 };
        s.acted += 1;
        self.push(stream, next_frame, 0)?;
        self.streams[stream].open = !episode_over;
        Ok(())
    }

    /// Writes the stack ending at entry `k` of `stream` into `out`.
    fn stack_into(&self, s: &Stream, k: u64, out: &mut [u8]) {
        let mut entries = vec![k; self.stack];
        let mut cur = k;
        for i in (0..self.stack - 1).rev() {
            if s.flags[self.slot(cur)] & FIRST == 0 {
                cur -= 1;
            }
            entries[i] = cur;
        }
        for (i, e) in entries.iter().enumerate() {
            let slot = self.slot(*e);
            out[i * self.frame_len..(i + 1) * self.frame_len]
                .copy_from_slice(&s.frames[slot * self.frame_len..(slot + 1) * self.frame_len]);
        }
    }

    /// Samples `size` transitions uniformly (with replacement) with n-step returns.
    pub fn sample(&mut self, size: usize, nstep: NStep) -> Result<Batch<u8>> {
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
    ) -> Result<Batch<u8>> {
        nstep.validate()?;
        let ranges: Vec<std::ops::Range<u64>> =
            self.streams.iter().map(|s| self.range(s)).collect();
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let have = self.len();
        if have == 0 || size == 0 || total == 0 {
            return Err(Error::NotEnough {
                have,
                need: size.max(1),
            });
        }
        let obs_len = self.stack * self.frame_len;
        let mut batch = Batch {
            size,
            obs: vec![0; size * obs_len],
            actions: Vec::with_capacity(size),
            rewards: Vec::with_capacity(size),
            next_obs: vec![0; size * obs_len],
            discounts: Vec::with_capacity(size),
        };
        for b in 0..size {
            // Rejection: final frames of episodes (no action taken) are not transitions.
            let mut tries = 0;
            let (stream, k) = loop {
                tries += 1;
                if tries > 10_000 {
                    return Err(Error::NotEnough {
                        have: 0,
                        need: size,
                    });
                }
                let mut u = rng.random_range(0..total);
                let mut pick = None;
                for (i, r) in ranges.iter().enumerate() {
                    let len = r.end - r.start;
                    if u < len {
                        pick = Some((i, r.start + u));
                        break;
                    }
                    u -= len;
                }
                let (i, k) = pick.expect("u < total");
                if self.streams[i].flags[self.slot(k)] & ACTED != 0 {
                    break (i, k);
                }
            };
            let s = &self.streams[stream];
            let (mut reward, mut discount, mut cur) = (0.0f32, 1.0f32, k);
            for _ in 0..nstep.n {
                let flags = s.flags[self.slot(cur)];
                reward += discount * s.rewards[self.slot(cur)];
                discount *= nstep.gamma;
                cur += 1;
                if flags & TERMINATED != 0 {
                    discount = 0.0;
                    break;
                }
                // The next entry ends the episode (truncation) or is not yet acted from.
                if s.flags[self.slot(cur)] & ACTED == 0 {
                    break;
                }
            }
            self.stack_into(s, k, &mut batch.obs[b * obs_len..(b + 1) * obs_len]);
            self.stack_into(s, cur, &mut batch.next_obs[b * obs_len..(b + 1) * obs_len]);
            batch.actions.push(f32::from(s.actions[self.slot(k)]));
            batch.rewards.push(reward);
            batch.discounts.push(discount);
        }
        Ok(batch)
    }

    /// Saves the buffer (contents, stream positions and sampling generator) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut w = Writer::create(path, crate::io::Kind::Frames)?;
        w.u64(self.frame_len as u64)?;
        w.u64(self.stack as u64)?;
        w.u64(self.capacity_per_stream as u64)?;
        w.u64(self.streams.len() as u64)?;
        w.bytes(&crate::generator_state(&self.rng))?;
        for s in &self.streams {
            w.u64(s.written)?;
            w.u8(u8::from(s.open))?;
            w.bytes(&s.frames)?;
            w.bytes(&s.actions)?;
            w.f32s(&s.rewards)?;
            w.bytes(&s.flags)?;
        }
        w.finish()
    }

    /// Loads a buffer saved by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let mut r = Reader::open(path, crate::io::Kind::Frames)?;
        let frame_len = r.u64()? as usize;
        let stack = r.u64()? as usize;
        let capacity_per_stream = r.u64()? as usize;
        let n = r.u64()? as usize;
        let rng = crate::generator_from(&r.bytes()?).ok_or_else(|| r.corrupt("generator state"))?;
        let frame_bytes = capacity_per_stream
            .checked_mul(frame_len)
            .ok_or_else(|| r.corrupt("capacity"))?;
        let mut streams = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let written = r.u64()?;
            let open = r.u8()? != 0;
            // Each vector is reserved once for the whole capacity, as `new` reserves it: a
            // buffer saved before it was full goes on filling after the load without ever
            // growing (a growing vector briefly holds its contents twice, and doubles past
            // the capacity).
            let frames = r.bytes_reserved(frame_bytes)?;
            let actions = r.bytes_reserved(capacity_per_stream)?;
            let rewards = r.f32s_reserved(capacity_per_stream)?;
            let flags = r.bytes_reserved(capacity_per_stream)?;
            let entries = flags.len();
            if frames.len() != entries * frame_len
                || actions.len() != entries
                || rewards.len() != entries
                || entries > capacity_per_stream
            {
                return Err(r.corrupt("stream sizes"));
            }
            let acted = flags.iter().filter(|&&f| f & ACTED != 0).count();
            streams.push(Stream {
                frames,
                actions,
                rewards,
                flags,
                written,
                open,
                acted,
            });
        }
        Ok(Self {
            frame_len,
            stack,
            capacity_per_stream,
            streams,
            rng,
        })
    }
}

impl crate::Replay for FrameReplay {
    type Elem = u8;

    fn part_len(&self) -> usize {
        self.frame_len
    }

    fn start_episode(&mut self, stream: usize, frame: &[u8]) -> Result<()> {
        FrameReplay::start_episode(self, stream, frame)
    }

    fn add_step(
        &mut self,
        stream: usize,
        action: &[f32],
        reward: f32,
        terminated: bool,
        next_frame: &[u8],
        episode_over: bool,
    ) -> Result<()> {
        let action = match action {
            [a] if a.fract() == 0.0 && (0.0..256.0).contains(a) => *a as u8,
            _ => {
                return Err(Error::Insert(format!(
                    "frame replay stores one discrete action in 0..256, got {action:?}"
                )))
            }
        };
        FrameReplay::add_step(
            self,
            stream,
            action,
            reward,
            terminated,
            next_frame,
            episode_over,
        )
    }

    fn sample(&mut self, size: usize, nstep: NStep) -> Result<Batch<u8>> {
        FrameReplay::sample(self, size, nstep)
    }

    fn sample_with(&self, size: usize, nstep: NStep, rng: &mut ChaCha8Rng) -> Result<Batch<u8>> {
        FrameReplay::sample_with(self, size, nstep, rng)
    }

    fn len(&self) -> usize {
        FrameReplay::len(self)
    }

    fn save(&self, path: &Path) -> Result<()> {
        FrameReplay::save(self, path)
    }

    fn load(path: &Path) -> Result<Self> {
        FrameReplay::load(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer saved half full is loaded into storage reserved once for its whole capacity:
    /// right after the load every vector's capacity is the saved capacity, and filling it to
    /// the end afterwards moves none of them (no reallocation).
    #[test]
    fn load_reserves_the_whole_capacity_once() {
        let (capacity, streams, frame_len, stack) = (64, 2, 5, 2);
        let mut replay = FrameReplay::new(capacity, streams, frame_len, stack, 1).unwrap();
        for s in 0..streams {
            replay.start_episode(s, &[s as u8; 5]).unwrap();
            for i in 0..10u8 {
                replay.add_step(s, 1, 0.5, false, &[i; 5], false).unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.bin");
        replay.save(&path).unwrap();
        let mut loaded = FrameReplay::load(&path).unwrap();
        let per_stream = capacity / streams;
        let storage = |r: &FrameReplay| -> Vec<(usize, usize, usize, usize, *const u8)> {
            r.streams
                .iter()
                .map(|s| {
                    (
                        s.frames.capacity(),
                        s.actions.capacity(),
                        s.rewards.capacity(),
                        s.flags.capacity(),
                        s.frames.as_ptr(),
                    )
                })
                .collect()
        };
        let after_load = storage(&loaded);
        for (s, &(frames, actions, rewards, flags, _)) in after_load.iter().enumerate() {
            assert_eq!(
                loaded.streams[s].flags.len(),
                11,
                "stream {s} holds what was saved"
            );
            assert_eq!(frames, per_stream * frame_len, "stream {s} frames");
            assert_eq!(
                (actions, rewards, flags),
                (per_stream, per_stream, per_stream)
            );
        }
        // Fill every stream past its capacity (it wraps around): nothing moves or grows.
        for s in 0..streams {
            for i in 0..(2 * per_stream) as u8 {
                loaded.add_step(s, 2, 1.0, false, &[i; 5], false).unwrap();
            }
            assert_eq!(loaded.streams[s].flags.len(), per_stream);
        }
        assert_eq!(storage(&loaded), after_load);
        // And what was loaded is what was saved.
        let again = FrameReplay::load(&path).unwrap();
        for (a, b) in again.streams.iter().zip(&replay.streams) {
            assert_eq!(
                (&a.frames, &a.actions, &a.rewards, &a.flags, a.written, a.open, a.acted),
                (&b.frames, &b.actions, &b.rewards, &b.flags, b.written, b.open, b.acted)
            );
        }
    }
}
