//! MinAtar (Young & Tian 2019) in pure Rust: asterix, breakout, freeway, seaquest and
//! space_invaders, step for step and draw for draw those of the PyPI package `minatar` 1.0.15.
//!
//! # Brief overview
//!
//! * [`MinatarGame`] names a game (`breakout`, `Breakout`, `space_invaders`, `SpaceInvaders`
//!   all parse); [`EnvId`] parses the package's Gymnasium ids `MinAtar/<Game>-v0` (the 6
//!   actions) and `MinAtar/<Game>-v1` (the game's minimal action set, as `minatar/gym.py`).
//! * [`Minatar`] is the package's `Environment`: [`Minatar::seed`], [`Minatar::reset`],
//!   [`Minatar::act`] with the 6 actions (`n, l, u, r, d, f`), sticky actions and difficulty
//!   ramping set by a [`MinatarConfig`] (defaults 0.1 and on, the package's), and the state
//!   as 10×10×C booleans in the package's `(y, x, channel)` order ([`Minatar::state_into`]) or
//!   channel-first for a CNN ([`Minatar::state_channels_first_into`]).
//! * [`MinatarEnv`] wraps it as an [`Env`](crate::Env) and a
//!   [`FlatEnv`](crate::vector::FlatEnv) for the training loop: an [`EnvId`]'s action set,
//!   `u8` observations channel-first (`[C, 10, 10]`), episode statistics, snapshots.
//!
//! # Where each fact comes from
//!
//! Everything is read from the package's source (`minatar/environment.py`,
//! `minatar/environments/*.py`, `minatar/gym.py`); each game's file says what it keeps of it,
//! quirks included. The package's `Environment` keeps one `numpy.random.RandomState`, set by
//! `seed(s)` and shared with the game; [`rng::RandomState`] reimplements the draws it makes.
//! Every `act` first draws one `rand()` (even with a sticky probability of 0) and replaces
//! the action by the previous one when it is below the probability; the previous action
//! survives `reset()`, as in the package. The games' own draws follow. So after `seed(s)` and
//! `reset()`, every state, reward and terminal equals the package's
//! (`envs/tests/minatar.rs` replays trajectories recorded from it by
//! `envs/tests/data/record_minatar.py`).
//!
//! The package draws its seed from the operating system when never seeded; here an
//! environment never seeded draws as if seeded with 0. (The package's game constructors also
//! call `reset()` once with a generator of their own; that draw is not kept, as the package's
//! is thrown away by `seed`.)
//!
//! ```
//! use envs::minatar::{Minatar, MinatarConfig, MinatarGame};
//! let mut env = Minatar::new(MinatarGame::Breakout, MinatarConfig::default()).unwrap();
//! env.seed(1).unwrap();
//! env.reset();
//! let (reward, terminal) = env.act(3).unwrap();
//! assert!(reward == 0.0 && !terminal);
//! let mut state = vec![0u8; env.channels() * 100];
//! env.state_into(&mut state).unwrap();
//! assert_eq!(state.iter().map(|&v| v as usize).sum::<usize>(), 3 + 30); // paddle, ball, trail; bricks
//! assert!(env.act(6).is_err());
//! ```

mod asterix;
mod breakout;
mod env;
mod freeway;
mod grid;
mod ids;
mod pylist;
pub mod rng;
mod seaquest;
mod space_invaders;

pub use env::MinatarEnv;
pub use grid::Grid;
pub use ids::{EnvId, MinatarGame};

use crate::{Error, Result};
use rng::RandomState;

/// The largest channel count of the five games (seaquest's).
pub const MAX_CHANNELS: usize = 10;
/// Actions of every game (`n, l, u, r, d, f`: no-op, left, up, right, down, fire).
pub const NUM_ACTIONS: usize = 6;

/// The package's `action_map`: index `i` is `['n','l','u','r','d','f'][i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Noop,
    Left,
    Up,
    Right,
    Down,
    Fire,
}

impl Action {
    const ALL: [Action; NUM_ACTIONS] = [
        Action::Noop,
        Action::Left,
        Action::Up,
        Action::Right,
        Action::Down,
        Action::Fire,
    ];
}

/// The package's `Environment(game, sticky_action_prob, difficulty_ramping)` arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinatarConfig {
    /// Probability that a step repeats the previous action instead (in [0, 1]; 0.1).
    pub sticky_action_prob: f64,
    /// Whether asterix, seaquest and space_invaders get harder over time (true; breakout and
    /// freeway do not ramp).
    pub difficulty_ramping: bool,
}

impl Default for MinatarConfig {
    fn default() -> Self {
        Self {
            sticky_action_prob: 0.1,
            difficulty_ramping: true,
        }
    }
}

/// A state element: 0 or 1 as `u8`, `f32` or `bool`.
pub trait Cell: Copy {
    /// The element for a cell that is set or not.
    fn from_bool(b: bool) -> Self;

    /// Writes the 100 cells of `plane` into `out` (cell `10 * y + x` at index `10 * y + x`).
    #[inline]
    fn expand(plane: Grid, out: &mut [Self]) {
        out.fill(Self::from_bool(false));
        let mut bits = plane.bits();
        while bits != 0 {
            if let Some(v) = out.get_mut(bits.trailing_zeros() as usize) {
                *v = Self::from_bool(true);
            }
            bits &= bits - 1;
        }
    }
}

/// `EXPAND[b]`: the byte `b`'s 8 bits as 8 bytes 0/1, lowest bit first (little-endian).
const EXPAND: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut k = 0;
        while k < 8 {
            t[b] |= (((b >> k) & 1) as u64) << (8 * k);
            k += 1;
        }
        b += 1;
    }
    t
};

impl Cell for u8 {
    fn from_bool(b: bool) -> Self {
        u8::from(b)
    }

    /// Eight cells at a time through a table (the training loop's path).
    #[inline]
    fn expand(plane: Grid, out: &mut [u8]) {
        let Ok(out) = <&mut [u8; grid::CELLS]>::try_from(out) else {
            return;
        };
        // The bytes come from the two 64-bit halves by constant shifts (in registers);
        // reading them back from memory right after the planes were stored stalls.
        let (lo, hi) = (plane.bits() as u64, (plane.bits() >> 64) as u64);
        let byte = |half: u64, k: usize| EXPAND[((half >> (8 * k)) & 0xff) as usize].to_le_bytes();
        for k in 0..8 {
            out[8 * k..8 * k + 8].copy_from_slice(&byte(lo, k));
        }
        for k in 0..4 {
            out[64 + 8 * k..72 + 8 * k].copy_from_slice(&byte(hi, k));
        }
        out[96..].copy_from_slice(&byte(hi, 4)[..4]);
    }
}

impl Cell for f32 {
    fn from_bool(b: bool) -> Self {
        if b {
            1.0
        } else {
            0.0
        }
    }
}

impl Cell for bool {
    fn from_bool(b: bool) -> Self {
        b
    }
}

/// One game's own state.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Game {
    Asterix(asterix::Asterix),
    Breakout(breakout::Breakout),
    Freeway(freeway::Freeway),
    Seaquest(Box<seaquest::Seaquest>),
    SpaceInvaders(space_invaders::SpaceInvaders),
}

impl Game {
    fn new(game: MinatarGame, ramping: bool, rng: &mut RandomState) -> Self {
        match game {
            MinatarGame::Asterix => Game::Asterix(asterix::Asterix::new(ramping)),
            MinatarGame::Breakout => Game::Breakout(breakout::Breakout::new(rng)),
            MinatarGame::Freeway => Game::Freeway(freeway::Freeway::new(rng)),
            MinatarGame::Seaquest => Game::Seaquest(Box::new(seaquest::Seaquest::new(ramping))),
            MinatarGame::SpaceInvaders => {
                Game::SpaceInvaders(space_invaders::SpaceInvaders::new(ramping))
            }
        }
    }
}

/// Runs `$body` with `$g` bound to the game inside a [`Game`].
macro_rules! with_game {
    ($game:expr, $g:ident => $body:expr) => {
        match $game {
            Game::Asterix($g) => $body,
            Game::Breakout($g) => $body,
            Game::Freeway($g) => $body,
            Game::Seaquest($g) => $body,
            Game::SpaceInvaders($g) => $body,
        }
    };
}

/// The package's `Environment`: one game, its generator, sticky actions.
///
/// Invariants: the generator is the one [`seed`](Self::seed) made (seed 0 before any), shared
/// by the sticky-action draw and the game; `last_action` is in `0..6`.
#[derive(Clone, Debug)]
pub struct Minatar {
    kind: MinatarGame,
    config: MinatarConfig,
    game: Game,
    rng: RandomState,
    last_action: usize,
}

impl Minatar {
    /// The game in its starting state, generator seeded with 0. Fails with
    /// [`Error::Config`] for a sticky probability outside [0, 1].
    pub fn new(game: MinatarGame, config: MinatarConfig) -> Result<Self> {
        let p = config.sticky_action_prob;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Config {
                field: "sticky_action_prob",
                reason: format!("must be in [0, 1], got {p}"),
            });
        }
        // The package's constructor resets the game with a generator of its own; only the
        // shape of that first state matters, as `seed` + `reset` replace it.
        let built = Game::new(game, config.difficulty_ramping, &mut RandomState::new(0));
        Ok(Self {
            kind: game,
            config,
            game: built,
            rng: RandomState::new(0),
            last_action: 0,
        })
    }

    /// `seed(s)`: a new `RandomState(s)` for the wrapper and the game. NumPy takes
    /// `0 <= s <= 2^32 - 1`; a larger seed is [`Error::Config`].
    pub fn seed(&mut self, seed: u64) -> Result<()> {
        let seed = u32::try_from(seed).map_err(|_| Error::Config {
            field: "seed",
            reason: format!("numpy's RandomState takes 0..=4294967295, got {seed}"),
        })?;
        self.rng = RandomState::new(seed);
        Ok(())
    }

    /// `reset()`: a new episode (the previous action, for sticky actions, is kept).
    pub fn reset(&mut self) {
        let rng = &mut self.rng;
        with_game!(&mut self.game, g => g.reset(rng));
    }

    /// `act(a)` with `a` in `0..6`: the reward and whether the episode has ended. Acting after
    /// the end draws the sticky `rand()` and returns `(0, true)`, as the package does. An
    /// action outside `0..6` is [`Error::InvalidAction`] and changes nothing.
    #[inline]
    pub fn act(&mut self, action: usize) -> Result<(f32, bool)> {
        if action >= NUM_ACTIONS {
            return Err(Error::InvalidAction {
                action: action.to_string(),
                reason: format!("MinAtar actions are 0..{NUM_ACTIONS} (n, l, u, r, d, f)"),
            });
        }
        let mut a = action;
        if self.rng.rand() < self.config.sticky_action_prob {
            a = self.last_action;
        }
        self.last_action = a;
        let (rng, a) = (&mut self.rng, Action::ALL[a]);
        let reward = with_game!(&mut self.game, g => g.act(a, rng));
        Ok((reward as f32, self.terminal()))
    }

    /// Whether the episode has ended.
    pub fn terminal(&self) -> bool {
        with_game!(&self.game, g => g.terminal())
    }

    /// The game.
    pub fn game(&self) -> MinatarGame {
        self.kind
    }

    /// The configuration.
    pub fn config(&self) -> MinatarConfig {
        self.config
    }

    /// Channels of the state.
    pub fn channels(&self) -> usize {
        self.kind.channels()
    }

    /// Cells of the state (`100 * channels()`).
    pub fn state_len(&self) -> usize {
        grid::CELLS * self.channels()
    }

    /// Always 6 (`num_actions()`).
    pub fn num_actions(&self) -> usize {
        NUM_ACTIONS
    }

    /// `minimal_action_set()`.
    pub fn minimal_action_set(&self) -> &'static [usize] {
        self.kind.minimal_action_set()
    }

    /// `difficulty_ramp()`: the ramp level of asterix, seaquest and space_invaders; `None`
    /// for breakout and freeway, which do not ramp.
    pub fn difficulty_ramp(&self) -> Option<u32> {
        match &self.game {
            Game::Asterix(g) => Some(g.ramp_index() as u32),
            Game::Seaquest(g) => Some(g.ramp_index() as u32),
            Game::SpaceInvaders(g) => Some(g.ramp_index() as u32),
            Game::Breakout(_) | Game::Freeway(_) => None,
        }
    }

    /// The state as one [`Grid`] per channel (entries past [`channels`](Self::channels) are
    /// empty).
    #[inline]
    pub fn planes(&self) -> [Grid; MAX_CHANNELS] {
        let mut out = [Grid::EMPTY; MAX_CHANNELS];
        let planes = &mut out[..self.channels()];
        with_game!(&self.game, g => g.planes(planes));
        out
    }

    /// `state()` in its own order, `(y, x, channel)` row-major: element
    /// `(10 * y + x) * channels + c`. `out` must hold [`state_len`](Self::state_len)
    /// elements, else [`Error::Config`].
    pub fn state_into<T: Cell>(&self, out: &mut [T]) -> Result<()> {
        self.check_len(out.len())?;
        let c = self.channels();
        self.fill(out, |channel, cell| cell * c + channel);
        Ok(())
    }

    /// The state channel-first, `(channel, y, x)`: element `100 * c + 10 * y + x`, the layout
    /// of a `[C, 10, 10]` CNN input. `out` must hold [`state_len`](Self::state_len) elements.
    pub fn state_channels_first_into<T: Cell>(&self, out: &mut [T]) -> Result<()> {
        self.check_len(out.len())?;
        for (plane, p) in out.chunks_exact_mut(grid::CELLS).zip(self.planes()) {
            T::expand(p, plane);
        }
        Ok(())
    }

    /// Zeroes `out` (of [`state_len`](Self::state_len)) and sets the element `index(c, cell)`
    /// of each set cell: a state has a few dozen set cells among up to 1,000, so visiting only
    /// those (and one `memset`) is what makes this cheap.
    #[inline]
    fn fill<T: Cell>(&self, out: &mut [T], index: impl Fn(usize, usize) -> usize) {
        out.fill(T::from_bool(false));
        let one = T::from_bool(true);
        for (c, p) in self.planes()[..self.channels()].iter().enumerate() {
            let mut bits = p.bits();
            while bits != 0 {
                if let Some(v) = out.get_mut(index(c, bits.trailing_zeros() as usize)) {
                    *v = one;
                }
                bits &= bits - 1;
            }
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len == self.state_len() {
            Ok(())
        } else {
            Err(Error::Config {
                field: "state buffer",
                reason: format!(
                    "{} has {} channels, so {} cells; the buffer holds {len}",
                    self.kind,
                    self.channels(),
                    self.state_len()
                ),
            })
        }
    }

    /// Appends everything [`restore`](Self::restore) needs to `w`: generator, previous action,
    /// configuration, game.
    fn save(&self, w: &mut Vec<i64>) {
        let (mt, pos) = self.rng.parts();
        w.extend(mt.iter().map(|&v| i64::from(v)));
        w.extend([pos as i64, self.last_action as i64]);
        w.push(self.config.sticky_action_prob.to_bits() as i64);
        w.push(i64::from(self.config.difficulty_ramping));
        with_game!(&self.game, g => g.write(w));
    }

    /// Reads what [`save`](Self::save) wrote, for this game and configuration; `None` when it
    /// is damaged or another's.
    fn restore(&self, r: &mut Fields<'_>) -> Option<Self> {
        let mut mt = [0u32; rng::STATE_WORDS];
        for v in &mut mt {
            *v = u32::try_from(r.next()?).ok()?;
        }
        let rng = RandomState::from_parts(mt, usize::try_from(r.next()?).ok()?)?;
        let last_action = r.int(0, NUM_ACTIONS as i32 - 1)? as usize;
        let sticky = f64::from_bits(r.next()? as u64);
        let ramping = r.bool()?;
        let same = sticky.to_bits() == self.config.sticky_action_prob.to_bits()
            && ramping == self.config.difficulty_ramping;
        same.then_some(())?;
        let game = match self.kind {
            MinatarGame::Asterix => Game::Asterix(asterix::Asterix::read(r)?),
            MinatarGame::Breakout => Game::Breakout(breakout::Breakout::read(r)?),
            MinatarGame::Freeway => Game::Freeway(freeway::Freeway::read(r)?),
            MinatarGame::Seaquest => Game::Seaquest(Box::new(seaquest::Seaquest::read(r)?)),
            MinatarGame::SpaceInvaders => {
                Game::SpaceInvaders(space_invaders::SpaceInvaders::read(r)?)
            }
        };
        Some(Self {
            kind: self.kind,
            config: self.config,
            game,
            rng,
            last_action,
        })
    }
}

/// Reads a snapshot's integers back, each checked against its range.
struct Fields<'a>(std::slice::Iter<'a, i64>);

impl Fields<'_> {
    fn next(&mut self) -> Option<i64> {
        self.0.next().copied()
    }

    /// An integer in `lo..=hi`.
    fn int(&mut self, lo: i32, hi: i32) -> Option<i32> {
        let v = i32::try_from(self.next()?).ok()?;
        (lo..=hi).contains(&v).then_some(v)
    }

    /// A row or column, `0..=9`.
    fn cell(&mut self) -> Option<i32> {
        self.int(0, 9)
    }

    fn bool(&mut self) -> Option<bool> {
        Some(self.int(0, 1)? == 1)
    }

    /// A list's length (at most a few thousand elements).
    fn len(&mut self) -> Option<usize> {
        Some(self.int(0, 4096)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_both_spellings_and_unknown_ones_list_the_five() {
        for g in MinatarGame::ALL {
            assert_eq!(MinatarGame::from_name(g.name()).unwrap(), g);
            assert_eq!(MinatarGame::from_name(g.title()).unwrap(), g);
            assert_eq!(g.channel_names().len(), g.channels());
            assert!(g.channels() <= MAX_CHANNELS);
        }
        assert_eq!(
            "SPACE-invaders".parse::<MinatarGame>().unwrap(),
            MinatarGame::SpaceInvaders
        );
        let err = MinatarGame::from_name("pong").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown game `pong`; available: asterix, breakout, freeway, seaquest, space_invaders"
        );
    }

    #[test]
    fn gym_ids_round_trip_and_pick_the_action_set() {
        let id = EnvId::parse("MinAtar/SpaceInvaders-v1").unwrap();
        assert_eq!(id.action_set(), [0, 1, 3, 5]);
        assert_eq!(id.to_string(), "MinAtar/SpaceInvaders-v1");
        let id = EnvId::parse("MinAtar/Freeway-v0").unwrap();
        assert_eq!(id.action_set().len(), 6);
        for bad in [
            "Freeway-v0",
            "MinAtar/Freeway-v2",
            "MinAtar/Freeway",
            "MinAtar/Pong-v0",
        ] {
            let err = EnvId::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::Config { .. } | Error::UnknownGame { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bad_configurations_actions_seeds_and_buffers_are_errors() {
        for p in [-0.1, 1.5, f64::NAN] {
            let config = MinatarConfig {
                sticky_action_prob: p,
                difficulty_ramping: true,
            };
            assert!(Minatar::new(MinatarGame::Asterix, config).is_err(), "{p}");
        }
        let mut env = Minatar::new(MinatarGame::Seaquest, MinatarConfig::default()).unwrap();
        env.seed(u64::from(u32::MAX)).unwrap();
        assert!(env.seed(1 << 32).is_err());
        env.reset();
        let before = env.clone();
        assert!(matches!(env.act(6), Err(Error::InvalidAction { .. })));
        assert_eq!(env.game, before.game, "a refused action changed the game");
        assert_eq!(env.rng.position(), before.rng.position(), "and drew");
        assert!(env.state_into(&mut [0u8; 999]).is_err());
        let mut rows = [0u8; 1000];
        let mut first = [0u8; 1000];
        env.state_into(&mut rows).unwrap();
        env.state_channels_first_into(&mut first).unwrap();
        for c in 0..10 {
            for i in 0..100 {
                assert_eq!(rows[i * 10 + c], first[c * 100 + i]);
            }
        }
        // The submarine starts at (0, 5) facing left: its back is at (0, 6).
        assert_eq!(first[5], 1);
        assert_eq!(first[100 + 6], 1);
    }

    #[test]
    fn sticky_actions_repeat_the_previous_action_across_resets() {
        // With probability 1 every action is the previous one, 0 at the start: breakout's
        // paddle never moves, even after a reset.
        let config = MinatarConfig {
            sticky_action_prob: 1.0,
            difficulty_ramping: true,
        };
        let mut env = Minatar::new(MinatarGame::Breakout, config).unwrap();
        env.reset();
        for _ in 0..5 {
            env.act(3).unwrap();
        }
        assert!(env.planes()[0].get(9, 4), "the paddle moved");
        let mut env = Minatar::new(MinatarGame::Breakout, MinatarConfig::default()).unwrap();
        env.reset();
        env.act(3).unwrap();
        assert_eq!(env.last_action, 3);
        env.reset();
        assert_eq!(env.last_action, 3, "reset forgot the previous action");
    }
}
