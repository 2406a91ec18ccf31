//! `atari`: DQN on an Atari game with FIRE (or a baseline) on a schedule. Configuration and
//! glue; the loop is `runtime::train`.

use anyhow::Result;
use dqn::{Architecture, Dqn};
use envs::atari::games::{locate_rom, rom_dir};
use envs::atari::{AtariConfig, AtariEnv};
use replay::FrameReplay;
use runtime::config::LoopConfig;
use runtime::{EnvPurpose, Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::Experiment;
use crate::dqn_keys::DqnKeys;

/// Which preprocessing protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The FIRE paper's (NoFrameskip-v4 style with sticky actions 0.25).
    Paper,
    /// Machado et al. (2018), Gymnasium v5.
    Machado,
}

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AtariKeys {
    /// Game, as `atari-env list` prints it.
    pub game: String,
    /// Preprocessing protocol: paper or machado.
    pub protocol: Protocol,
}

impl Default for AtariKeys {
    fn default() -> Self {
        Self {
            game: "Breakout".into(),
            protocol: Protocol::Paper,
        }
    }
}

/// Everything an `atari` run is configured by: the loop's keys, the game's and DQN's, in one
/// flat key space. Defaults are the FIRE paper's DQN protocol (FIRE.md section 3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtariRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The game.
    pub env: AtariKeys,
    /// The agent.
    pub dqn: DqnKeys,
}

runtime::sections!(AtariRunConfig {
    run: LoopConfig,
    env: AtariKeys,
    dqn: DqnKeys,
});

impl AtariRunConfig {
    /// The environment preprocessing.
    pub fn atari_config(&self) -> AtariConfig {
        match self.env.protocol {
            Protocol::Paper => AtariConfig::paper(),
            Protocol::Machado => AtariConfig::machado(),
        }
    }
}

impl Experiment for AtariRunConfig {
    const NAME: &'static str = "atari";

    fn loop_config(&self) -> &LoopConfig {
        &self.run
    }

    fn validate(&self) -> Result<()> {
        locate_rom(&self.env.game, &rom_dir())?;
        self.run.validate(dqn::PLASTICITY_METRICS)?;
        self.dqn.validate()?;
        // Before anything is allocated: the replay's frames, and a sampled batch (observations
        // and next observations as bytes, then as floats on the device).
        let atari = self.atari_config();
        let frame = (atari.frame_size * atari.frame_size) as u64;
        let per_transition = frame + 6;
        runtime::config::check_memory(
            &format!("buffer_size = {} (the replay)", self.run.buffer_size),
            self.run.buffer_size as u64 * per_transition,
        )?;
        runtime::config::check_memory(
            &format!("batch_size = {}", self.run.batch_size),
            self.run.batch_size as u64 * 2 * frame * atari.frame_stack as u64 * 5,
        )
    }

    fn run_name(&self) -> String {
        format!("{}__dqn-{}", self.env.game, self.run.intervention)
    }

    fn describe(&self) -> Result<String> {
        Ok(format!(
            "{} with {} ({}), {} steps, {} envs, device {:?}",
            self.env.game,
            self.run.intervention,
            self.run.schedule_text(dqn::PLASTICITY_METRICS)?,
            fire::schedule::format_steps(self.run.steps),
            self.run.envs,
            self.run.device.resolve()?
        ))
    }

    fn train(&self, run: &RunDir, resume: bool, config_text: String) -> Result<Outcome> {
        let device = self.run.device.resolve()?;
        let seeds = Seeds::new(self.run.seed);
        tch::manual_seed(seeds.network_init());
        let atari = self.atari_config();
        let game = self.env.game.clone();
        let dir = rom_dir();
        let probe = AtariEnv::with_seed(&game, atari.clone(), &dir, seeds.environment(0))?;
        let actions = probe.num_actions() as i64;
        drop(probe);
        let arch = Architecture::NatureCnn {
            frames: atari.frame_stack as i64,
        };
        let agent: Dqn<u8> = Dqn::new(&arch, actions, self.dqn.dqn_config(&self.run), device)?;
        let frame = atari.frame_size * atari.frame_size;
        let replay = FrameReplay::new(
            self.run.buffer_size,
            self.run.envs,
            frame,
            atari.frame_stack,
            seeds.replay(),
        )?;
        let frames_per_step = u64::from(atari.frame_skip);
        let make_env = move |purpose: EnvPurpose, _index: usize, seed: u64| {
            let config = match purpose {
                EnvPurpose::Train => atari.clone(),
                // Evaluation scores raw game points.
                EnvPurpose::Evaluate => AtariConfig {
                    clip_rewards: false,
                    ..atari.clone()
                },
            };
            AtariEnv::with_seed(&game, config, &dir, seed)
        };
        let setup = Setup {
            agent,
            replay,
            make_env: Box::new(make_env),
            frames_per_step,
            eval_extras: None,
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }
}
