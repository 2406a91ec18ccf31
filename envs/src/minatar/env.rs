//! [`MinatarEnv`]: a [`Minatar`] game as the workspace's [`Env`] and [`FlatEnv`], as
//! `minatar/gym.py`'s `BaseEnv` wraps the package's `Environment`.

use super::{EnvId, Fields, Minatar, MinatarConfig};
use crate::snapshot::{Reader, Writer};
use crate::vector::{discrete_action, FlatEnv, Transition};
use crate::{EpisodeTracker, Error, Info, Result, Space, Step};

/// A MinAtar game behind a Gymnasium id: actions index the id's action set (`-v0`: the 6
/// actions, `-v1`: the minimal set), observations are the state channel-first as `u8` 0/1
/// (`[C, 10, 10]`, element `100 * c + 10 * y + x`), episodes end only by the game's terminal
/// (`truncated` is always false: the package has no time limit; freeway ends itself at 2,500
/// steps).
///
/// `reset(Some(s))` is the package's `seed(s)` then `reset()` (so `s` must fit in 32 bits);
/// `reset(None)` starts a new episode with the generator going on, as at an autoreset.
/// Invariant: `needs_reset` is true before the first reset and after a terminal step, and
/// [`Env::step`] / [`FlatEnv::step_into`] refuse to step then.
#[derive(Clone, Debug)]
pub struct MinatarEnv {
    env: Minatar,
    id: EnvId,
    needs_reset: bool,
    tracker: EpisodeTracker,
}

impl MinatarEnv {
    /// The environment of `id` with `config` (sticky actions, ramping).
    pub fn new(id: EnvId, config: MinatarConfig) -> Result<Self> {
        Ok(Self {
            env: Minatar::new(id.game, config)?,
            id,
            needs_reset: true,
            tracker: EpisodeTracker::default(),
        })
    }

    /// The id.
    pub fn id(&self) -> EnvId {
        self.id
    }

    /// The game underneath (its state, ramp level, configuration).
    pub fn inner(&self) -> &Minatar {
        &self.env
    }

    /// Length of one observation (`100 * channels`).
    pub fn obs_len(&self) -> usize {
        self.env.state_len()
    }

    fn start(&mut self, seed: Option<u64>) -> Result<()> {
        if let Some(seed) = seed {
            self.env.seed(seed)?;
        }
        self.env.reset();
        self.needs_reset = false;
        self.tracker.clear();
        Ok(())
    }

    /// One step with an index into the id's action set.
    fn advance(&mut self, action: usize) -> Result<Transition> {
        if self.needs_reset {
            return Err(Error::NeedsReset);
        }
        let set = self.id.action_set();
        let &a = set.get(action).ok_or_else(|| Error::InvalidAction {
            action: action.to_string(),
            reason: format!("{} has {} actions", self.id, set.len()),
        })?;
        let (reward, terminated) = self.env.act(a)?;
        self.needs_reset = terminated;
        let episode = self.tracker.record(f64::from(reward), terminated);
        Ok(Transition {
            reward: f64::from(reward),
            terminated,
            truncated: false,
            info: Info {
                episode,
                ..Info::default()
            },
        })
    }

    fn tag(&self) -> String {
        format!("minatar:{}", self.id)
    }
}

impl crate::Env for MinatarEnv {
    type Obs = Vec<u8>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        let n = self.obs_len();
        Space::Box {
            low: vec![0.0; n],
            high: vec![1.0; n],
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(self.id.action_set().len())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<u8>, Info)> {
        self.start(seed)?;
        let mut obs = vec![0; self.obs_len()];
        self.env.state_channels_first_into(&mut obs)?;
        Ok((obs, Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<Vec<u8>>> {
        let t = self.advance(*action)?;
        let mut obs = vec![0; self.obs_len()];
        self.env.state_channels_first_into(&mut obs)?;
        Ok(Step {
            obs,
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }
}

impl FlatEnv for MinatarEnv {
    type Elem = u8;

    fn obs_len(&self) -> usize {
        self.env.state_len()
    }

    fn action_space(&self) -> Space {
        crate::Env::action_space(self)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [u8]) -> Result<Info> {
        self.start(seed)?;
        self.env.state_channels_first_into(obs)?;
        Ok(Info::default())
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [u8]) -> Result<Transition> {
        let a = discrete_action(action, self.id.action_set().len())?;
        let t = self.advance(a)?;
        self.env.state_channels_first_into(obs)?;
        Ok(t)
    }

    /// The generator, the previous action, the configuration, the game's whole state, whether
    /// a reset is due and the episode's statistics so far.
    fn save_state(&mut self) -> Option<Vec<u8>> {
        let mut fields = Vec::with_capacity(720);
        self.env.save(&mut fields);
        let mut w = Writer::new(&self.tag());
        w.u64(fields.len() as u64);
        for v in fields {
            w.u64(v as u64);
        }
        w.u64(u64::from(self.needs_reset)).tracker(&self.tracker);
        Some(w.finish())
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [u8]) -> Result<()> {
        let damaged = || Error::Snapshot(format!("not a {} state, or a damaged one", self.id));
        let mut r = Reader::new(&self.tag(), state)?;
        let n = usize::try_from(r.u64()?).map_err(|_| damaged())?;
        if n > state.len() / 8 {
            return Err(damaged());
        }
        let fields = (0..n)
            .map(|_| r.u64().map(|v| v as i64))
            .collect::<Result<Vec<i64>>>()?;
        let mut it = Fields(fields.iter());
        let env = self.env.restore(&mut it).ok_or_else(damaged)?;
        if it.next().is_some() {
            return Err(damaged());
        }
        let needs_reset = match r.u64()? {
            0 => false,
            1 => true,
            _ => return Err(damaged()),
        };
        let tracker = r.tracker()?;
        r.finish()?;
        env.state_channels_first_into(obs)?;
        (self.env, self.needs_reset, self.tracker) = (env, needs_reset, tracker);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minatar::rng::RandomState;
    use crate::minatar::MinatarGame;
    use crate::Env;

    /// Without sticky actions, so that every action is the one given.
    fn env(id: &str) -> MinatarEnv {
        let config = MinatarConfig {
            sticky_action_prob: 0.0,
            difficulty_ramping: true,
        };
        MinatarEnv::new(EnvId::parse(id).unwrap(), config).unwrap()
    }

    #[test]
    fn minimal_action_sets_index_the_six_actions_and_steps_need_a_reset() {
        let mut e = env("MinAtar/Breakout-v1");
        assert_eq!(crate::Env::action_space(&e), Space::Discrete(3));
        assert!(matches!(e.step(&0), Err(Error::NeedsReset)));
        let (obs, _) = e.reset(Some(3)).unwrap();
        assert_eq!(obs.len(), 400);
        assert!(matches!(e.step(&3), Err(Error::InvalidAction { .. })));
        // Index 2 of breakout's minimal set is action 3 (right): the paddle moves right.
        let step = e.step(&2).unwrap();
        assert_eq!(step.obs[90 + 5], 1, "paddle at (9, 5)");
        assert!(matches!(
            e.reset(Some(1 << 32)),
            Err(Error::Config { field: "seed", .. })
        ));
    }

    #[test]
    fn a_snapshot_resumes_every_game_exactly_and_a_damaged_one_is_refused() {
        for game in MinatarGame::ALL {
            let id = EnvId {
                game,
                minimal_actions: false,
            };
            let mut a = MinatarEnv::new(id, MinatarConfig::default()).unwrap();
            let n = a.obs_len();
            let (mut oa, mut ob) = (vec![0u8; n], vec![0u8; n]);
            a.reset_into(Some(5), &mut oa).unwrap();
            let mut rng = RandomState::new(9);
            let act = |e: &mut MinatarEnv, o: &mut [u8], k: i64| -> Transition {
                let t = e.step_into(&[k as f32], o).unwrap();
                if t.terminated {
                    e.reset_into(None, o).unwrap();
                }
                t
            };
            for _ in 0..300 {
                act(&mut a, &mut oa, rng.randint(0, 6));
            }
            let snap = a.save_state().unwrap();
            let mut b = MinatarEnv::new(id, MinatarConfig::default()).unwrap();
            b.load_state(&snap, &mut ob).unwrap();
            assert_eq!(oa, ob, "{game}: restored observation");
            for step in 0..500 {
                let k = rng.randint(0, 6);
                let (ta, tb) = (act(&mut a, &mut oa, k), act(&mut b, &mut ob, k));
                assert_eq!((&ta, &oa), (&tb, &ob), "{game}: step {step} after restore");
            }
            assert!(b.load_state(&snap[..snap.len() - 9], &mut ob).is_err());
            let mut other = MinatarEnv::new(
                id,
                MinatarConfig {
                    sticky_action_prob: 0.0,
                    difficulty_ramping: true,
                },
            )
            .unwrap();
            assert!(other.load_state(&snap, &mut ob).is_err(), "{game}: config");
        }
    }
}
