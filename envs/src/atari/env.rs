//! One Atari game with the standard preprocessing, as an [`Env`] and a [`FlatEnv`].

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ale::{Ale, EmulatorSettings};
use super::config::AtariConfig;
use super::downsample::Downsampler;
use super::games::{display_name, locate_rom, rom_dir, rom_name};
use crate::vector::{discrete_action, FlatEnv, Transition};
use crate::{Env, EpisodeStats, Error, Info, Result, Space, Step};

/// ALE's code for FIRE.
const FIRE: i32 = 1;
/// ALE's code for UP, which CleanRL's FireResetEnv presses after FIRE.
const UP: i32 = 2;

/// An Atari game with preprocessing. Observations are `frame_stack` grayscale frames of
/// `frame_size` x `frame_size` bytes, oldest first.
pub struct AtariEnv {
    game: String,
    rom: PathBuf,
    config: AtariConfig,
    ale: Ale,
    actions: Vec<i32>,
    has_fire: bool,
    rng: ChaCha8Rng,
    downsampler: Downsampler,
    /// The last two grayscale screens of a step, for max-pooling.
    screens: [Vec<u8>; 2],
    /// Ring of resized frames; `newest` indexes the latest.
    stack: Vec<u8>,
    newest: usize,
    lives: i32,
    /// The game (not just a life) is over: the next reset restarts the emulator.
    game_over: bool,
    /// The seed the emulator was loaded with while it has not run yet: a reset with this seed
    /// needs no reload (loading costs ALE about 0.3 s for its colour tables).
    fresh_seed: Option<u64>,
    needs_reset: bool,
    /// Frames since the game was reset, for the episode cap.
    episode_frames: u64,
    /// The action index the last step executed, for step-level sticky actions (NOOP after a
    /// reset).
    sticky_action: usize,
    /// The ALE code every frame of the last step received.
    last_code: i32,
    /// When set, the RGB screens of the last two frames of each step (for measurements).
    rgb_screens: Option<[Vec<u8>; 2]>,
    episode_return: f64,
    episode_steps: u64,
}

impl AtariEnv {
    /// Loads `game` (e.g. `Breakout`, `BeamRider`, `ALE/Pong-v5`) from the default ROM
    /// directory ([`rom_dir`]).
    pub fn new(game: &str, config: AtariConfig) -> Result<AtariEnv> {
        Self::with_rom_dir(game, config, &rom_dir())
    }

    /// Loads `game` from `dir`. A first `reset(Some(seed))` is cheapest after
    /// [`with_seed`](Self::with_seed) with the same seed.
    pub fn with_rom_dir(game: &str, config: AtariConfig, dir: &Path) -> Result<AtariEnv> {
        Self::with_seed(game, config, dir, 0)
    }

    /// Loads `game` from `dir` with the emulator seeded for `reset(Some(seed))`.
    pub fn with_seed(game: &str, config: AtariConfig, dir: &Path, seed: u64) -> Result<AtariEnv> {
        config.validate()?;
        let rom = locate_rom(game, dir)?;
        let ale = Ale::load(&rom, emulator_settings(&config, emulator_seed(seed)))?;
        let actions = ale.action_set(!config.full_action_space);
        let minimal = ale.action_set(true);
        let has_fire = minimal.contains(&FIRE) && minimal.len() >= 3;
        let (h, w) = ale.screen_size();
        let frame = config.frame_size * config.frame_size;
        let downsampler = Downsampler::new(h, w, config.frame_size, config.frame_size);
        Ok(AtariEnv {
            game: display_name(&rom_name(game)),
            rom,
            stack: vec![0; frame * config.frame_stack],
            config,
            ale,
            actions,
            has_fire,
            rng: ChaCha8Rng::seed_from_u64(seed),
            downsampler,
            screens: [vec![0; h * w], vec![0; h * w]],
            newest: 0,
            lives: 0,
            game_over: true,
            fresh_seed: Some(seed),
            needs_reset: true,
            episode_frames: 0,
            sticky_action: 0,
            last_code: 0,
            rgb_screens: None,
            episode_return: 0.0,
            episode_steps: 0,
        })
    }

    /// The game's display name (`BeamRider`).
    pub fn game(&self) -> &str {
        &self.game
    }

    /// Number of actions (the minimal set, or 18 with `full_action_space`).
    pub fn num_actions(&self) -> usize {
        self.actions.len()
    }

    /// ALE action codes behind the action indices.
    pub fn action_codes(&self) -> &[i32] {
        &self.actions
    }

    /// The configuration.
    pub fn config(&self) -> &AtariConfig {
        &self.config
    }

    /// Lives left in the current game.
    pub fn lives(&self) -> i32 {
        self.lives
    }

    /// Emulator frames since the game started.
    pub fn episode_frames(&self) -> u64 {
        self.episode_frames
    }

    /// Agent steps since the game started.
    pub fn episode_steps(&self) -> u64 {
        self.episode_steps
    }

    /// Measurement aid: from now on keep the RGB screens (`height * width * 3` bytes each) of
    /// the last two frames of every step, the ones the observation max-pools.
    #[doc(hidden)]
    pub fn keep_rgb_screens(&mut self) {
        let (h, w) = self.ale.screen_size();
        self.rgb_screens = Some([vec![0; h * w * 3], vec![0; h * w * 3]]);
    }

    /// The RGB screens kept by [`keep_rgb_screens`](Self::keep_rgb_screens), older first.
    #[doc(hidden)]
    pub fn rgb_screens(&self) -> Option<&[Vec<u8>; 2]> {
        self.rgb_screens.as_ref()
    }

    /// The grayscale screens of the last two frames of the last step, older first (the ones the
    /// newest frame max-pools; equal when pooling is off or the step had one frame).
    #[doc(hidden)]
    pub fn gray_screens(&self) -> &[Vec<u8>; 2] {
        &self.screens
    }

    /// The newest preprocessed frame (`frame_size^2` bytes).
    #[doc(hidden)]
    pub fn newest_frame(&self) -> &[u8] {
        let frame = self.config.frame_size * self.config.frame_size;
        &self.stack[self.newest * frame..(self.newest + 1) * frame]
    }

    /// Benchmark baseline: `steps` agent steps of raw emulation (`frame_skip` frames each, a
    /// uniformly random action, no screen capture or preprocessing), resetting on game over.
    #[doc(hidden)]
    pub fn emulate_raw(&mut self, steps: u64) {
        self.fresh_seed = None;
        for _ in 0..steps {
            let code = self.actions[self.rng.random_range(0..self.actions.len())];
            for _ in 0..self.config.frame_skip {
                self.ale.act(code);
            }
            if self.ale.game_over() {
                self.ale.reset();
            }
        }
    }

    /// Writes the stacked observation (oldest frame first) into `out`.
    pub fn observation_into(&self, out: &mut [u8]) {
        let frame = self.config.frame_size * self.config.frame_size;
        let k = self.config.frame_stack;
        for i in 0..k {
            let slot = (self.newest + 1 + i) % k;
            out[i * frame..(i + 1) * frame]
                .copy_from_slice(&self.stack[slot * frame..(slot + 1) * frame]);
        }
    }

    /// Runs one agent step of `frame_skip` emulator frames with ALE action `code`; returns the
    /// raw reward. Captures the last two screens for pooling.
    fn repeat(&mut self, code: i32) -> f64 {
        let skip = self.config.frame_skip as usize;
        let mut reward = 0.0;
        let mut captured = 0;
        for i in 0..skip {
            reward += f64::from(self.ale.act(code));
            self.episode_frames += 1;
            let last = self.ale.game_over() || i + 1 == skip;
            if i + 2 >= skip || last {
                // Slot 1 always ends up holding the final frame of the step.
                let slot = if last { 1 } else { 0 };
                self.capture(slot);
                captured += 1;
            }
            if last {
                break;
            }
        }
        if captured == 1 || !self.config.max_pool {
            // A step cut short after one frame has nothing older to pool with.
            let [older, newer] = &mut self.screens;
            older.copy_from_slice(newer);
            if let Some([older, newer]) = &mut self.rgb_screens {
                older.copy_from_slice(newer);
            }
        }
        self.last_code = code;
        reward
    }

    /// Captures the current screen in grayscale into `screens[slot]`.
    fn capture(&mut self, slot: usize) {
        self.ale.grayscale_into(&mut self.screens[slot]);
        if let Some(rgb) = &mut self.rgb_screens {
            self.ale.rgb_into(&mut rgb[slot]);
        }
    }

    /// Max-pools the two captured screens and area-resamples them into the next stack slot.
    fn push_frame(&mut self) {
        let frame = self.config.frame_size * self.config.frame_size;
        self.newest = (self.newest + 1) % self.config.frame_stack;
        let slot = &mut self.stack[self.newest * frame..(self.newest + 1) * frame];
        let [older, newer] = &self.screens;
        self.downsampler.pool_and_resize(older, newer, slot);
    }

    /// Fills the whole stack with the current frame (a new learning episode never sees frames
    /// of the previous one).
    fn fill_stack(&mut self) {
        let frame = self.config.frame_size * self.config.frame_size;
        let k = self.config.frame_stack;
        let (newest_start, newest_end) = (self.newest * frame, (self.newest + 1) * frame);
        for slot in (0..k).filter(|&s| s != self.newest) {
            self.stack
                .copy_within(newest_start..newest_end, slot * frame);
        }
    }

    /// Restarts the game: optional reseed, no-op frames, fire.
    fn reset_game(&mut self, seed: Option<u64>) -> Result<()> {
        if let Some(seed) = seed {
            // ALE reads its seed when the ROM loads, so a new seed means a new emulator.
            self.rng = ChaCha8Rng::seed_from_u64(seed);
            if self.fresh_seed != Some(seed) {
                self.ale = Ale::load(
                    &self.rom,
                    emulator_settings(&self.config, emulator_seed(seed)),
                )?;
            }
        }
        self.fresh_seed = None;
        self.ale.reset();
        self.episode_frames = 0;
        self.episode_return = 0.0;
        self.episode_steps = 0;
        if self.config.noop_max > 0 {
            let noops = self.rng.random_range(1..=self.config.noop_max);
            for _ in 0..noops {
                self.ale.act(0);
                self.episode_frames += 1;
                if self.ale.game_over() {
                    self.ale.reset();
                }
            }
        }
        self.capture(1);
        let [older, newer] = &mut self.screens;
        older.copy_from_slice(newer);
        if let Some([older, newer]) = &mut self.rgb_screens {
            older.copy_from_slice(newer);
        }
        self.game_over = false;
        Ok(())
    }

    /// After a reset (of the game or of a life): FIRE then UP, as CleanRL's FireResetEnv.
    fn press_fire(&mut self) -> Result<()> {
        for code in [FIRE, UP] {
            self.episode_return += self.repeat(code);
            if self.ale.game_over() {
                self.reset_game(None)?;
            }
        }
        Ok(())
    }

    fn reset_inner(&mut self, seed: Option<u64>) -> Result<Info> {
        if self.game_over || seed.is_some() || !self.config.terminal_on_life_loss {
            self.reset_game(seed)?;
        } else {
            // Only a life was lost: continue the game with one no-op step.
            self.episode_return += self.repeat(0);
            if self.ale.game_over() {
                self.reset_game(None)?;
            }
        }
        if self.config.fire_reset && self.has_fire {
            self.press_fire()?;
        }
        // SB3's StickyActionEnv: the action to repeat is NOOP after every reset.
        self.sticky_action = 0;
        self.lives = self.ale.lives();
        self.push_frame();
        self.fill_stack();
        self.needs_reset = false;
        Ok(Info::default())
    }

    fn step_inner(&mut self, action: usize) -> Result<Transition> {
        if self.needs_reset {
            return Err(Error::NeedsReset);
        }
        if action >= self.actions.len() {
            return Err(Error::InvalidAction {
                action: action.to_string(),
                reason: format!(
                    "{} has {} actions (0..{})",
                    self.game,
                    self.actions.len(),
                    self.actions.len()
                ),
            });
        }
        let mut action = action;
        let p = self.config.step_repeat_probability;
        if p > 0.0 {
            // Outside the frame skip: with probability p all frames of this step repeat the
            // previous step's action (one draw per step, as SB3's StickyActionEnv).
            if self.rng.random::<f64>() >= f64::from(p) {
                self.sticky_action = action;
            }
            action = self.sticky_action;
        }
        let raw = self.repeat(self.actions[action]);
        self.push_frame();
        self.episode_return += raw;
        self.episode_steps += 1;
        let game_over = self.ale.game_over();
        let lives = self.ale.lives();
        let life_lost = self.config.terminal_on_life_loss && lives < self.lives && lives > 0;
        self.lives = lives;
        let cap = |limit: u64, count: u64| limit > 0 && count >= limit;
        let truncated = !game_over
            && (cap(self.config.max_episode_frames, self.episode_frames)
                || cap(self.config.max_episode_steps, self.episode_steps));
        let terminated = game_over || life_lost;
        let episode_over = game_over || truncated;
        let info = Info {
            episode: episode_over.then_some(EpisodeStats {
                episode_return: self.episode_return,
                length: self.episode_steps,
            }),
            ..Info::default()
        };
        self.game_over = episode_over;
        self.needs_reset = terminated || truncated;
        // Not f64::signum, which maps 0.0 to 1.0.
        let reward = if self.config.clip_rewards {
            sign(raw)
        } else {
            raw
        };
        Ok(Transition {
            reward,
            terminated,
            truncated,
            info,
        })
    }
}

/// -1, 0 or 1.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// ALE takes a positive `int` seed: 0 means "seed from the clock" (`time(NULL)`), which made
/// seed 0 differ between runs a second apart.
fn emulator_seed(seed: u64) -> i32 {
    (1 + seed % (i32::MAX as u64)) as i32
}

fn emulator_settings(config: &AtariConfig, seed: i32) -> EmulatorSettings {
    EmulatorSettings {
        repeat_action_probability: config.repeat_action_probability,
        seed,
        mode: None,
        difficulty: None,
    }
}

impl FlatEnv for AtariEnv {
    type Elem = u8;

    fn obs_len(&self) -> usize {
        self.config.obs_len()
    }

    fn action_space(&self) -> Space {
        Space::Discrete(self.actions.len())
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [u8]) -> Result<Info> {
        let info = self.reset_inner(seed)?;
        self.observation_into(obs);
        Ok(info)
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [u8]) -> Result<Transition> {
        let t = self.step_inner(discrete_action(action, self.actions.len())?)?;
        self.observation_into(obs);
        Ok(t)
    }

    /// The emulator's state with its generator (`cloneState(include_rng)`), the wrapper's
    /// generator, pooled screens, frame stack, lives and counters: a restored environment
    /// emits the same frames, rewards and ends as this one.
    fn save_state(&mut self) -> Option<Vec<u8>> {
        let emulator = self.ale.clone_state(true).ok()?;
        let mut w = crate::snapshot::Writer::new(&format!("atari:{}", self.game));
        w.bytes(emulator.as_bytes())
            .rng(&self.rng)
            .bytes(&self.screens[0])
            .bytes(&self.screens[1])
            .bytes(&self.stack)
            .u64(self.newest as u64)
            .u64(i64::from(self.lives) as u64)
            .u64(u64::from(self.game_over))
            .u64(u64::from(self.needs_reset))
            .u64(self.episode_frames)
            .u64(self.sticky_action as u64)
            .u64(i64::from(self.last_code) as u64)
            .f64(self.episode_return)
            .u64(self.episode_steps);
        Some(w.finish())
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [u8]) -> Result<()> {
        let mut r = crate::snapshot::Reader::new(&format!("atari:{}", self.game), state)?;
        let emulator = super::ale::AleState::from_bytes(r.bytes()?.to_vec());
        let rng = r.rng()?;
        let screens = [r.bytes()?.to_vec(), r.bytes()?.to_vec()];
        let stack = r.bytes()?.to_vec();
        let newest = r.u64()? as usize;
        let k = self.config.frame_stack;
        if screens.iter().any(|s| s.len() != self.screens[0].len())
            || stack.len() != self.stack.len()
            || newest >= k
        {
            return Err(Error::Snapshot(
                "saved with another frame configuration".into(),
            ));
        }
        let lives = r.u64()? as i64 as i32;
        let (game_over, needs_reset) = (r.u64()? != 0, r.u64()? != 0);
        let (episode_frames, sticky_action) = (r.u64()?, r.u64()? as usize);
        let last_code = r.u64()? as i64 as i32;
        let (episode_return, episode_steps) = (r.f64()?, r.u64()?);
        r.finish()?;
        if sticky_action >= self.actions.len() {
            return Err(Error::Snapshot(
                "saved action outside the action set".into(),
            ));
        }
        self.ale.restore_state(&emulator)?;
        self.rng = rng;
        self.screens = screens;
        self.stack = stack;
        self.newest = newest;
        self.lives = lives;
        self.game_over = game_over;
        self.needs_reset = needs_reset;
        // The emulator has run: a reset with the construction seed must reload it.
        self.fresh_seed = None;
        self.episode_frames = episode_frames;
        self.sticky_action = sticky_action;
        self.last_code = last_code;
        self.episode_return = episode_return;
        self.episode_steps = episode_steps;
        self.observation_into(obs);
        Ok(())
    }
}

impl Env for AtariEnv {
    type Obs = Vec<u8>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![0.0; self.config.obs_len()],
            high: vec![255.0; self.config.obs_len()],
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(self.actions.len())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<u8>, Info)> {
        let mut obs = vec![0; self.config.obs_len()];
        let info = self.reset_into(seed, &mut obs)?;
        Ok((obs, info))
    }

    fn step(&mut self, action: &usize) -> Result<Step<Vec<u8>>> {
        let mut obs = vec![0; self.config.obs_len()];
        let t = self.step_into(&[*action as f32], &mut obs)?;
        Ok(Step {
            obs,
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_maps_to_a_positive_emulator_seed() {
        for seed in [0, 1, i32::MAX as u64 - 1, i32::MAX as u64, u64::MAX] {
            assert!(emulator_seed(seed) > 0, "{seed}");
        }
        assert_ne!(emulator_seed(0), emulator_seed(1));
    }

    #[test]
    fn observation_is_the_max_of_the_last_two_frames() {
        let config = AtariConfig {
            repeat_action_probability: 0.0,
            ..AtariConfig::nature()
        };
        let mut env = AtariEnv::new("SpaceInvaders", config).expect("setup.sh installs the ROMs");
        env.reset(Some(0)).unwrap();
        let mut differing_steps = 0;
        for t in 0..200 {
            env.step(&(t % env.num_actions())).unwrap();
            let mut now = vec![0; env.screens[1].len()];
            env.ale.ale_grayscale_into(&mut now);
            assert_eq!(env.screens[1], now, "slot 1 holds the step's last frame");
            // The newest frame is the resampled pixel-wise max of the two screens.
            let pooled: Vec<u8> = env.screens[0]
                .iter()
                .zip(&env.screens[1])
                .map(|(a, b)| *a.max(b))
                .collect();
            let mut expected = vec![0; 84 * 84];
            Downsampler::new(210, 160, 84, 84).pool_and_resize(&pooled, &pooled, &mut expected);
            let newest = env.newest * 84 * 84;
            assert_eq!(env.stack[newest..newest + 84 * 84], expected[..]);
            differing_steps += usize::from(env.screens[0] != env.screens[1]);
            if env.needs_reset {
                env.reset(None).unwrap();
            }
        }
        // Space Invaders flickers: the two frames differ, so pooling matters.
        assert!(differing_steps > 100, "{differing_steps}");
    }
}

#[cfg(test)]
mod fire_paper_tests {
    use super::*;
    use crate::atari::games::rom_dir;

    fn fire_paper(game: &str, seed: u64) -> AtariEnv {
        let mut env = AtariEnv::with_seed(game, AtariConfig::fire_paper(), &rom_dir(), seed)
            .expect("setup.sh installs the ROMs");
        env.reset(Some(seed)).unwrap();
        env
    }

    /// Breakout's actions are NOOP, FIRE, RIGHT, LEFT; each step asks for an action other than
    /// the one the previous step executed, so every repeat is visible.
    #[test]
    fn a_repeated_step_sends_the_previous_action_to_all_its_frames() {
        let mut env = fire_paper("Breakout", 7);
        assert_eq!(env.action_codes(), [0, 1, 3, 4]);
        // An emulator that replays the frames with the code we claim to have sent: its RAM
        // must match the environment's after each step (ALE's own stickiness is off, so the
        // same state and the same four codes give the same RAM).
        let mut replay =
            Ale::load(&env.rom, emulator_settings(&env.config, emulator_seed(7))).unwrap();
        assert_eq!(env.config.repeat_action_probability, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let (mut repeats, mut distinguishable) = (0, 0);
        let mut previous = 0; // NOOP after the reset
        for _ in 0..3_000 {
            let before = env.ale.clone_state(false).unwrap();
            let asked = loop {
                let a = rng.random_range(0..4);
                if env.actions[a] != previous {
                    break a;
                }
            };
            let step = env.step(&asked).unwrap();
            let sent = env.last_code;
            assert!(
                sent == env.actions[asked] || sent == previous,
                "sent {sent}, asked {}, previous {previous}",
                env.actions[asked]
            );
            let frames_with = |replay: &mut Ale, code: i32| {
                replay.restore_state(&before).unwrap();
                for _ in 0..4 {
                    replay.act(code);
                    if replay.game_over() {
                        break;
                    }
                }
                replay.ram()
            };
            assert_eq!(frames_with(&mut replay, sent), env.ale.ram());
            if sent == previous {
                repeats += 1;
                // The asked action would have left another state (most of the time).
                if frames_with(&mut replay, env.actions[asked]) != env.ale.ram() {
                    distinguishable += 1;
                }
            }
            previous = sent;
            if step.terminated || step.truncated {
                env.reset(None).unwrap();
                previous = 0;
            }
        }
        assert!(repeats > 500, "{repeats} repeats in 3,000 steps");
        assert!(
            distinguishable > repeats / 2,
            "{distinguishable} of {repeats}"
        );
    }

    #[test]
    fn a_step_repeats_the_previous_action_a_quarter_of_the_time() {
        // Each step is a Bernoulli(0.25) draw: over n = 20,000 steps the repeat rate has
        // standard deviation sqrt(0.25 * 0.75 / n) = 0.0031; 5 deviations (0.015) would be
        // exceeded with probability about 6e-7 by a correct implementation, and a per-frame
        // sticky (1 - 0.75^4 = 0.68 of steps touched) or none at all (0) is far outside.
        let mut env = fire_paper("Breakout", 3);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 20_000;
        let mut repeats = 0;
        let mut previous = 0;
        for _ in 0..n {
            let asked = loop {
                let a = rng.random_range(0..4);
                if env.actions[a] != previous {
                    break a;
                }
            };
            let step = env.step(&asked).unwrap();
            repeats += usize::from(env.last_code != env.actions[asked]);
            previous = env.last_code;
            if step.terminated || step.truncated {
                env.reset(None).unwrap();
                previous = 0;
            }
        }
        let rate = repeats as f64 / n as f64;
        assert!((rate - 0.25).abs() < 0.015, "repeat rate {rate}");
    }

    #[test]
    fn a_lost_life_does_not_end_the_episode() {
        let mut env = fire_paper("Breakout", 1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let start_lives = env.lives();
        assert_eq!(start_lives, 5);
        let mut losses = 0;
        let mut steps = 0u64;
        let stats = loop {
            let lives = env.lives();
            let step = env.step(&rng.random_range(0..4)).unwrap();
            steps += 1;
            if let Some(stats) = step.info.episode {
                assert!(step.terminated && env.ale.game_over());
                break stats;
            }
            assert!(!step.terminated && !step.truncated, "step {steps}");
            losses += usize::from(env.lives() < lives);
            assert!(steps < 50_000, "Breakout should end");
        };
        assert_eq!(
            losses, 4,
            "four lives lost without a terminal, the fifth ends the game"
        );
        assert_eq!(stats.length, steps);
    }

    #[test]
    fn the_episode_is_truncated_at_100k_agent_steps() {
        let mut env = fire_paper("Pong", 2);
        assert_eq!(env.config.max_episode_steps, 100_000);
        assert_eq!(env.config.max_episode_frames, 0, "no frame cap besides");
        // Emulating 100k steps takes about a minute: start the count just below the limit
        // (Pong ends by score, never by itself this early).
        env.step(&0).unwrap();
        env.episode_steps = 99_998;
        let step = env.step(&0).unwrap();
        assert!(!step.truncated && !step.terminated, "step 99,999");
        let step = env.step(&0).unwrap();
        assert!(step.truncated && !step.terminated, "step 100,000");
        assert_eq!(step.info.episode.unwrap().length, 100_000);
        assert!(matches!(env.step(&0), Err(Error::NeedsReset)));
        // The nature preset counts frames instead: 100,000 steps alone do not truncate.
        let mut nature = AtariEnv::new("Pong", AtariConfig::nature()).unwrap();
        nature.reset(Some(2)).unwrap();
        nature.episode_steps = 99_999;
        assert!(!nature.step(&0).unwrap().truncated);
    }

    #[test]
    fn sticky_actions_per_step_and_per_frame_are_exclusive() {
        let both = AtariConfig {
            repeat_action_probability: 0.25,
            ..AtariConfig::fire_paper()
        };
        let err = both.validate().unwrap_err().to_string();
        assert!(err.contains("step_repeat_probability"), "{err}");
        assert!(AtariConfig::fire_paper().validate().is_ok());
    }
}
