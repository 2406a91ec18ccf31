//! The Atari preprocessing switches and the three published presets.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Every preprocessing step as a switch. Build one from a preset and change fields.
///
/// Three presets:
///
/// * [`AtariConfig::fire_paper`]: the FIRE reference code's DQN wrappers (`rl/dqn/cleanrl/
///   dqn_atari.py` of isaac7778/FIRE, on `NoFrameskip-v4`): minimal action set, frame skip 4
///   with a max over the last two frames, rewards clipped to their sign, sticky actions 0.25 at
///   the agent-step level (the whole 4-frame step repeats the previous agent action; the
///   emulator's own per-frame stickiness is off), 84x84 grayscale, stack of 4, a 100,000
///   agent-step limit; no no-op starts, no life-loss terminal, no FIRE on reset.
/// * [`AtariConfig::nature`]: Mnih et al. (2015) preprocessing as in CleanRL's `dqn_atari.py`
///   (on `NoFrameskip-v4` with ALE's per-frame sticky actions 0.25): minimal action set, 1 to
///   30 no-op frames at reset, frame skip 4 with a max over the last two frames, a lost life
///   ends the learning episode, FIRE pressed after reset where the game has it, rewards
///   clipped to their sign, 84x84 grayscale, stack of 4, 108,000-frame cap.
/// * [`AtariConfig::machado`]: Machado et al. (2018) / Gymnasium `v5`: sticky actions 0.25, the
///   full 18-action set, no no-op starts, no life-loss terminal, no fire reset; frame skip 4,
///   max-pooling, 84x84 grayscale, stack of 4, the same 108,000-frame cap, clipped rewards for
///   learning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtariConfig {
    /// Probability that the emulator repeats the previous action for a frame (ALE's own
    /// sticky actions, per frame; 0 = off).
    pub repeat_action_probability: f32,
    /// Probability that a whole agent step (all `frame_skip` frames) repeats the previous agent
    /// action instead of the one asked for, as SB3's `StickyActionEnv` outside the frame skip
    /// (0 = off). The previous action is NOOP after every reset. Exclusive with
    /// `repeat_action_probability`.
    pub step_repeat_probability: f32,
    /// Use all 18 actions instead of the game's minimal set.
    pub full_action_space: bool,
    /// Reset takes 1..=noop_max no-op frames (0 = none).
    pub noop_max: u32,
    /// Emulator frames per agent step.
    pub frame_skip: u32,
    /// Observe the pixel-wise max of the last two frames of a step (removes Atari flicker).
    pub max_pool: bool,
    /// A lost life ends the learning episode (`terminated`); the game goes on at the next reset
    /// and episode statistics still cover the whole game.
    pub terminal_on_life_loss: bool,
    /// Press FIRE (then action 2) after each reset in games whose action set has FIRE.
    pub fire_reset: bool,
    /// Clip the learning reward to its sign (-1, 0, 1); episode statistics stay raw.
    pub clip_rewards: bool,
    /// Side of the square grayscale observation (84; at most 160, the screen width: area
    /// resampling only shrinks).
    pub frame_size: usize,
    /// Frames stacked in one observation (4).
    pub frame_stack: usize,
    /// Truncate an episode (the whole game) after this many emulator frames (108,000 = 30 min;
    /// 0 = no frame cap).
    pub max_episode_frames: u64,
    /// Truncate an episode (the whole game) after this many agent steps, as Gymnasium's
    /// `TimeLimit` outside the frame skip (0 = no step limit).
    pub max_episode_steps: u64,
}

impl Default for AtariConfig {
    fn default() -> Self {
        Self::fire_paper()
    }
}

impl AtariConfig {
    /// The FIRE reference code's DQN wrappers (see the type's documentation).
    pub fn fire_paper() -> Self {
        Self {
            repeat_action_probability: 0.0,
            step_repeat_probability: 0.25,
            noop_max: 0,
            terminal_on_life_loss: false,
            fire_reset: false,
            max_episode_frames: 0,
            max_episode_steps: 100_000,
            ..Self::nature()
        }
    }

    /// Mnih et al. (2015) preprocessing as CleanRL's `dqn_atari.py` (see the type's
    /// documentation).
    pub fn nature() -> Self {
        Self {
            repeat_action_probability: 0.25,
            step_repeat_probability: 0.0,
            full_action_space: false,
            noop_max: 30,
            frame_skip: 4,
            max_pool: true,
            terminal_on_life_loss: true,
            fire_reset: true,
            clip_rewards: true,
            frame_size: 84,
            frame_stack: 4,
            max_episode_frames: 108_000,
            max_episode_steps: 0,
        }
    }

    /// Machado et al. (2018), as Gymnasium's `v5` environments (see the type's documentation).
    pub fn machado() -> Self {
        Self {
            full_action_space: true,
            noop_max: 0,
            terminal_on_life_loss: false,
            fire_reset: false,
            ..Self::nature()
        }
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::Config { field, reason });
        if !(0.0..=1.0).contains(&self.repeat_action_probability) {
            return bad(
                "repeat_action_probability",
                format!("must be in [0, 1], got {}", self.repeat_action_probability),
            );
        }
        if !(0.0..1.0).contains(&self.step_repeat_probability) {
            return bad(
                "step_repeat_probability",
                format!("must be in [0, 1), got {}", self.step_repeat_probability),
            );
        }
        if self.step_repeat_probability > 0.0 && self.repeat_action_probability > 0.0 {
            return bad(
                "step_repeat_probability",
                "sticky actions per agent step and per frame (repeat_action_probability) \
                 cannot both be on; set one of them to 0"
                    .into(),
            );
        }
        if self.frame_skip == 0 {
            return bad("frame_skip", "must be at least 1".into());
        }
        // Area resampling shrinks; the screen is 160 pixels wide.
        if !(8..=160).contains(&self.frame_size) {
            return bad(
                "frame_size",
                format!("must be in 8..=160, got {}", self.frame_size),
            );
        }
        if !(1..=16).contains(&self.frame_stack) {
            return bad(
                "frame_stack",
                format!("must be in 1..=16, got {}", self.frame_stack),
            );
        }
        Ok(())
    }

    /// Bytes of one observation: `frame_stack * frame_size^2`.
    pub fn obs_len(&self) -> usize {
        self.frame_stack * self.frame_size * self.frame_size
    }
}
