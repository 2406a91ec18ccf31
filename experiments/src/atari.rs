//! `atari`: DQN on an Atari game with FIRE (or a baseline) on a schedule. Configuration and
//! glue; the loop is `runtime::train`.

use anyhow::bail;
use anyhow::Result;
use dqn::{Architecture, Dqn};
use envs::atari::games::{locate_rom, rom_dir};
use envs::atari::{AtariConfig, AtariEnv};
use replay::FrameReplay;
use runtime::config::{self as keys, LoopConfig, Sections};
use runtime::{EnvPurpose, Outcome, RunDir, Seeds, Setup};
use serde::{Deserialize, Serialize};

use crate::cli::Experiment;
use crate::dqn_keys::DqnKeys;
use crate::method_keys::MethodKeys;

/// Which protocol: the environment's preprocessing and the defaults of every key that differs
/// between protocols (see [`AtariRunConfig::preset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The FIRE reference code's DQN protocol (isaac7778/FIRE `rl/dqn/cleanrl/dqn_atari.py`):
    /// step-level sticky actions, no extra wrappers, 100k-step limit, replay ratio 1, epsilon
    /// held at 1 until learning starts, evaluation on 4 environments.
    FirePaper,
    /// Mnih et al. (2015) preprocessing as CleanRL's `dqn_atari.py` (life-loss terminal, FIRE
    /// on reset, no-op starts, ALE's per-frame sticky actions), one update per 4 steps.
    Nature,
    /// Machado et al. (2018), Gymnasium v5, one update per 4 steps.
    Machado,
}

impl Protocol {
    /// The names a config may use.
    pub const NAMES: &'static str = "fire-paper, nature, machado";

    /// The name a config uses.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::FirePaper => "fire-paper",
            Protocol::Nature => "nature",
            Protocol::Machado => "machado",
        }
    }
}

/// The environment's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AtariKeys {
    /// Game, as `atari-env list` prints it.
    pub game: String,
    /// Protocol: fire-paper (the FIRE reference's), nature (Mnih et al. 2015 as CleanRL) or
    /// machado (Machado et al. 2018). It sets the preprocessing and the defaults of
    /// replay_ratio, eval_envs and epsilon_hold_warmup.
    pub protocol: Protocol,
}

impl Default for AtariKeys {
    fn default() -> Self {
        Self {
            game: "Breakout".into(),
            protocol: Protocol::FirePaper,
        }
    }
}

/// Everything an `atari` run is configured by: the loop's keys, the game's and DQN's, in one
/// flat key space. Defaults are those of the chosen protocol ([`AtariRunConfig::preset`]);
/// without one, the FIRE reference's DQN protocol (FIRE.md section 3).
#[derive(Clone, Debug, PartialEq)]
pub struct AtariRunConfig {
    /// The loop.
    pub run: LoopConfig,
    /// The game.
    pub env: AtariKeys,
    /// The agent.
    pub dqn: DqnKeys,
    /// The plasticity methods built into the network and the update.
    pub methods: MethodKeys,
}

impl Default for AtariRunConfig {
    fn default() -> Self {
        Self::preset(Protocol::FirePaper)
    }
}

/// Like `runtime::sections!`, except that the defaults a table is read over are those of the
/// protocol the table names.
impl Sections for AtariRunConfig {
    fn keys() -> Vec<&'static str> {
        let mut keys = Vec::new();
        keys.extend_from_slice(keys::field_names::<LoopConfig>());
        keys.extend_from_slice(keys::field_names::<AtariKeys>());
        keys.extend_from_slice(keys::field_names::<DqnKeys>());
        keys.extend_from_slice(keys::field_names::<MethodKeys>());
        keys
    }

    fn from_table(mut table: toml::Table) -> Result<Self> {
        keys::reject_unknown(&table, &Self::keys())?;
        let defaults = Self::preset(protocol_of(&table)?);
        Ok(Self {
            run: keys::section(&mut table, &defaults.run)?,
            env: keys::section(&mut table, &defaults.env)?,
            dqn: keys::section(&mut table, &defaults.dqn)?,
            methods: keys::section(&mut table, &defaults.methods)?,
        })
    }

    fn to_table(&self) -> Result<toml::Table> {
        let mut table = keys::table_of(&self.run)?;
        table.extend(keys::table_of(&self.env)?);
        table.extend(keys::table_of(&self.dqn)?);
        table.extend(keys::table_of(&self.methods)?);
        Ok(table)
    }

    fn key_docs() -> Vec<(String, String)> {
        let mut docs = keys::docs_of::<LoopConfig>();
        docs.extend(keys::docs_of::<AtariKeys>());
        docs.extend(keys::docs_of::<DqnKeys>());
        docs.extend(keys::docs_of::<MethodKeys>());
        docs
    }
}

/// The protocol a table names (the default without one); the old name `paper` is an error
/// that names the new ones.
fn protocol_of(table: &toml::Table) -> Result<Protocol> {
    let Some(value) = table.get("protocol") else {
        return Ok(AtariKeys::default().protocol);
    };
    if value.as_str() == Some("paper") {
        bail!(
            "protocol `paper` no longer exists: use `nature` for what it was (Mnih et al. 2015 \
             preprocessing as CleanRL, one update per 4 steps) or `fire-paper` for the FIRE \
             reference's protocol (the default)"
        );
    }
    Protocol::deserialize(value.clone())
        .map_err(|_| anyhow::anyhow!("unknown protocol {value} (known: {})", Protocol::NAMES))
}

impl AtariRunConfig {
    /// Every key's default under `protocol`. Only these differ between protocols:
    ///
    /// | key | fire-paper | nature, machado |
    /// |---|---|---|
    /// | `replay_ratio` | 1 (4 updates per vector step of 4 envs) | 0.25 |
    /// | `eval_envs` | 4 | 1 |
    /// | `epsilon_hold_warmup` | true (1 until `learning_starts`, then the decay) | false |
    ///
    /// plus the preprocessing ([`AtariConfig::fire_paper`], [`AtariConfig::nature`],
    /// [`AtariConfig::machado`]).
    pub fn preset(protocol: Protocol) -> Self {
        let mut cfg = Self {
            run: LoopConfig::default(),
            env: AtariKeys {
                protocol,
                ..AtariKeys::default()
            },
            dqn: DqnKeys::default(),
            methods: MethodKeys::default(),
        };
        if protocol == Protocol::FirePaper {
            cfg.run.replay_ratio = 1.0;
            cfg.run.eval_envs = 4;
            cfg.dqn.epsilon_hold_warmup = true;
        }
        cfg
    }

    /// The environment preprocessing.
    pub fn atari_config(&self) -> AtariConfig {
        match self.env.protocol {
            Protocol::FirePaper => AtariConfig::fire_paper(),
            Protocol::Nature => AtariConfig::nature(),
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
        self.methods.validate(&self.run, false)?;
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
            "{} ({} protocol) with {} ({}), {} steps, {} envs, device {:?}",
            self.env.game,
            self.env.protocol.name(),
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
        let mut dqn_config = self.dqn.dqn_config(&self.run);
        self.methods.apply_dqn(&mut dqn_config);
        let agent: Dqn<u8> = Dqn::new(&arch, actions, dqn_config, device)?;
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
            steps_per_decision: 1,
            eval_extras: None,
            levels: None,
            config_text,
        };
        runtime::train(&self.run, setup, run, resume, true)
    }
}
