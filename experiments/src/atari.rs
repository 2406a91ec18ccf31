//! DQN on Atari with plasticity interventions: the configuration (every hyperparameter, the
//! paper's protocol as defaults) and the synchronous training loop behind the `atari` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use dqn::{AdamConfig, Architecture, Dqn, DqnConfig, DqnIntervention, InterventionConfig, Loss};
use envs::atari::games::{locate_rom, rom_dir};
use envs::atari::{AtariConfig, AtariEnv};
use envs::vector::VecEnv;
use fire::schedule::{MetricTrigger, Schedule, Scheduler, SchedulerState};
use fire::{metrics, ParamRole};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replay::{FrameReplay, NStep};
use runtime::{checkpoint, MetricsLogger, Progress, RunDir, StopSignal};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Which preprocessing protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The FIRE paper's (NoFrameskip-v4 style with sticky actions 0.25).
    Paper,
    /// Machado et al. (2018), Gymnasium v5.
    Machado,
}

/// What to do when the schedule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InterventionChoice {
    /// FIRE on the convs; fully connected layers back to theta_0.
    Fire,
    /// Everything back to theta_0.
    FullReset,
    /// Shrink & perturb the convs (lambda 0.2); fully connected layers back to theta_0.
    ShrinkPerturb,
    /// ReDo: recycle dormant neurons (tau `redo_tau`) on the probe batch.
    Redo,
    /// Never intervene (the schedule is ignored).
    None,
}

/// Where the networks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    Auto,
    /// CPU.
    Cpu,
    /// The first CUDA device (an error if there is none).
    Cuda,
}

/// Every hyperparameter of a run. Units: "steps" are agent steps summed over environments
/// (4 emulator frames each). Defaults are the FIRE paper's DQN protocol (FIRE.md section 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtariRunConfig {
    /// Game, as `atari-env list` prints it.
    pub game: String,
    /// Seed of networks, environments, exploration and replay sampling.
    pub seed: u64,
    /// Total agent steps.
    pub steps: u64,
    /// Parallel environments.
    pub envs: usize,
    /// Threads stepping the environments.
    pub env_threads: usize,
    /// Preprocessing protocol.
    pub protocol: Protocol,
    /// Replay capacity in transitions.
    pub buffer_size: usize,
    /// Steps of random-policy warm-up before learning.
    pub learning_starts: u64,
    /// Transitions per gradient update (4 with 4 environments: one update per vector step).
    pub steps_per_update: u64,
    /// Batch size.
    pub batch_size: usize,
    /// Discount.
    pub gamma: f64,
    /// n-step returns (1 = the paper's one-step TD).
    pub n_step: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// TD loss.
    pub loss: Loss,
    /// Double DQN.
    pub double_dqn: bool,
    /// Steps between target network updates.
    pub target_update_every: u64,
    /// 1 copies the online network at each target update; less blends (soft updates).
    pub target_tau: f64,
    /// Exploration epsilon at the start.
    pub epsilon_start: f64,
    /// Exploration epsilon at the end of the decay.
    pub epsilon_end: f64,
    /// Fraction of `steps` over which epsilon decays linearly.
    pub exploration_fraction: f64,
    /// Steps between evaluations (0 = never).
    pub eval_every: u64,
    /// Agent steps per evaluation (one environment).
    pub eval_steps: u64,
    /// Epsilon during evaluation.
    pub eval_epsilon: f64,
    /// Steps between logged losses and SPS.
    pub log_every: u64,
    /// Steps between plasticity diagnostics on the fixed probe batch.
    pub plasticity_every: u64,
    /// Steps between checkpoints (0 = only at the end and on Ctrl-C/SIGTERM).
    pub checkpoint_every: u64,
    /// Save the replay buffer with checkpoints (large: about 7 KB per transition).
    pub checkpoint_replay: bool,
    /// The intervention the schedule triggers.
    pub intervention: InterventionChoice,
    /// Intervene at these steps.
    pub fire_at: Vec<u64>,
    /// Intervene every this many steps.
    pub fire_every: Option<u64>,
    /// Intervene when a logged plasticity metric crosses a threshold, e.g. `dormant_ratio>0.2`.
    pub fire_when: Option<String>,
    /// Minimum steps between two metric-triggered interventions.
    pub fire_cooldown: u64,
    /// Reset the fully connected layers to theta_0 with FIRE or shrink & perturb.
    pub reset_head: bool,
    /// Copy the online network into the target network after an intervention.
    pub sync_target: bool,
    /// Zero Adam's moments after an intervention (the paper keeps them for DQN).
    pub reset_optimizer: bool,
    /// Newton–Schulz iterations of FIRE (0 = exact SVD polar factor).
    pub fire_iterations: usize,
    /// lambda of shrink & perturb.
    pub shrink: f64,
    /// ReDo's dormancy threshold.
    pub redo_tau: f64,
    /// Where the networks run.
    pub device: DeviceChoice,
}

impl Default for AtariRunConfig {
    fn default() -> Self {
        Self {
            game: "Breakout".into(),
            seed: 1,
            steps: 2_500_000,
            envs: 4,
            env_threads: 2,
            protocol: Protocol::Paper,
            buffer_size: 1_000_000,
            learning_starts: 20_000,
            steps_per_update: 4,
            batch_size: 32,
            gamma: 0.99,
            n_step: 1,
            learning_rate: 6.25e-5,
            adam_eps: 1.5e-4,
            loss: Loss::Huber,
            double_dqn: false,
            target_update_every: 2_000,
            target_tau: 1.0,
            epsilon_start: 1.0,
            epsilon_end: 0.01,
            exploration_fraction: 0.1,
            eval_every: 250_000,
            eval_steps: 125_000,
            eval_epsilon: 0.001,
            log_every: 1_000,
            plasticity_every: 10_000,
            checkpoint_every: 100_000,
            checkpoint_replay: false,
            intervention: InterventionChoice::Fire,
            fire_at: Vec::new(),
            fire_every: None,
            fire_when: None,
            fire_cooldown: 0,
            reset_head: true,
            sync_target: true,
            reset_optimizer: false,
            fire_iterations: 10,
            shrink: 0.2,
            redo_tau: 0.1,
            device: DeviceChoice::Auto,
        }
    }
}

impl AtariRunConfig {
    /// Reads a TOML file; unknown keys and malformed values are errors naming the key.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
        })
    }

    /// Checks every value and the game's ROM before any work starts.
    pub fn validate(&self) -> Result<()> {
        locate_rom(&self.game, &rom_dir())?;
        ensure!(self.steps > 0, "steps must be positive");
        ensure!(
            (1..=256).contains(&self.envs),
            "envs must be in 1..=256, got {}",
            self.envs
        );
        ensure!(self.env_threads >= 1, "env_threads must be at least 1");
        ensure!(
            self.buffer_size >= self.envs * 8,
            "buffer_size {} is too small for {} environments",
            self.buffer_size,
            self.envs
        );
        ensure!(
            self.steps_per_update >= 1,
            "steps_per_update must be at least 1"
        );
        ensure!(self.batch_size >= 1, "batch_size must be at least 1");
        ensure!(
            (1..=100).contains(&self.n_step),
            "n_step must be in 1..=100"
        );
        ensure!((0.0..=1.0).contains(&self.gamma), "gamma must be in [0, 1]");
        ensure!(
            self.target_update_every >= 1,
            "target_update_every must be at least 1"
        );
        for (name, v) in [
            ("epsilon_start", self.epsilon_start),
            ("epsilon_end", self.epsilon_end),
            ("eval_epsilon", self.eval_epsilon),
            ("exploration_fraction", self.exploration_fraction),
        ] {
            ensure!(
                (0.0..=1.0).contains(&v),
                "{name} must be in [0, 1], got {v}"
            );
        }
        ensure!(
            self.log_every >= 1 && self.plasticity_every >= 1,
            "log_every and plasticity_every must be positive"
        );
        if let Some(0) = self.fire_every {
            bail!("fire_every must be positive");
        }
        self.schedules()?;
        self.dqn_config().adam.validate()?;
        ensure!(
            self.target_tau > 0.0 && self.target_tau <= 1.0,
            "target_tau must be in (0, 1]"
        );
        ensure!(
            (0.0..=1.0).contains(&self.shrink),
            "shrink must be in [0, 1]"
        );
        self.device()?;
        Ok(())
    }

    /// The learner's settings.
    pub fn dqn_config(&self) -> DqnConfig {
        DqnConfig {
            gamma: self.gamma,
            adam: AdamConfig {
                lr: self.learning_rate,
                eps: self.adam_eps,
                ..AdamConfig::default()
            },
            loss: self.loss,
            double: self.double_dqn,
            tau: self.target_tau,
        }
    }

    /// The environment preprocessing.
    pub fn atari_config(&self) -> AtariConfig {
        match self.protocol {
            Protocol::Paper => AtariConfig::paper(),
            Protocol::Machado => AtariConfig::machado(),
        }
    }

    /// The schedules of the intervention (empty when it is `none`).
    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        if self.intervention == InterventionChoice::None {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if !self.fire_at.is_empty() {
            out.push(Schedule::at(self.fire_at.clone())?);
        }
        if let Some(period) = self.fire_every {
            out.push(Schedule::every(period)?);
        }
        if let Some(text) = &self.fire_when {
            let mut trigger: MetricTrigger = text.parse()?;
            ensure!(
                PLASTICITY_METRICS.contains(&trigger.metric.as_str()),
                "fire_when: unknown metric `{}` (one of: {})",
                trigger.metric,
                PLASTICITY_METRICS.join(", ")
            );
            trigger.cooldown = self.fire_cooldown;
            out.push(Schedule::OnMetric(trigger));
        }
        Ok(out)
    }

    fn intervention_config(&self) -> Option<InterventionConfig> {
        let method = match self.intervention {
            InterventionChoice::Fire => DqnIntervention::Fire,
            InterventionChoice::FullReset => DqnIntervention::FullReset,
            InterventionChoice::ShrinkPerturb => DqnIntervention::ShrinkPerturb,
            InterventionChoice::Redo => DqnIntervention::Redo,
            InterventionChoice::None => return None,
        };
        Some(InterventionConfig {
            method,
            reset_head: self.reset_head,
            sync_target: self.sync_target,
            reset_optimizer: self.reset_optimizer,
            fire_iterations: self.fire_iterations,
            shrink: self.shrink,
            redo_tau: self.redo_tau,
        })
    }

    /// The device to use.
    pub fn device(&self) -> Result<Device> {
        Ok(match self.device {
            DeviceChoice::Auto => Device::cuda_if_available(),
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda => {
                ensure!(
                    tch::Cuda::is_available(),
                    "device cuda: no CUDA device is available"
                );
                Device::Cuda(0)
            }
        })
    }

    fn epsilon(&self, step: u64) -> f64 {
        let decay = (self.exploration_fraction * self.steps as f64).max(1.0);
        let progress = (step as f64 / decay).min(1.0);
        self.epsilon_start + progress * (self.epsilon_end - self.epsilon_start)
    }
}

/// Metrics a `fire_when` trigger may watch (logged as `plasticity/<name>`).
pub const PLASTICITY_METRICS: &[&str] = &[
    "dormant_ratio",
    "dormant_ratio_tau0",
    "effective_rank",
    "srank",
    "feature_norm",
    "dfi_encoder",
];

/// Counters and generator states a checkpoint restores.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LoopState {
    step: u64,
    updates: u64,
    episodes: u64,
    scheduler: SchedulerState,
    rng: Vec<u8>,
    last_target_update: u64,
    warmup_until: u64,
}

const FRAME: usize = 84 * 84;

/// Trains, logging into `run`; resumes from its checkpoint when `resume` is set.
pub fn train(
    cfg: &AtariRunConfig,
    run: &RunDir,
    resume: bool,
    progress_to_terminal: bool,
) -> Result<()> {
    let device = cfg.device()?;
    tch::manual_seed(cfg.seed as i64);
    let atari = cfg.atari_config();
    let dir = rom_dir();
    let envs = (0..cfg.envs)
        .map(|i| AtariEnv::with_seed(&cfg.game, atari.clone(), &dir, cfg.seed * 1000 + i as u64))
        .collect::<Result<Vec<_>, _>>()?;
    let actions = envs[0].num_actions() as i64;
    let mut vec = VecEnv::new(envs, cfg.env_threads)?;
    let arch = Architecture::NatureCnn {
        frames: atari.frame_stack as i64,
    };
    let mut agent = Dqn::new(&arch, actions, cfg.dqn_config(), device)?;
    let mut replay = FrameReplay::new(
        cfg.buffer_size,
        cfg.envs,
        FRAME,
        atari.frame_stack,
        cfg.seed,
    )?;
    let mut scheduler = Scheduler::new(cfg.schedules()?);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut state = LoopState {
        step: 0,
        updates: 0,
        episodes: 0,
        scheduler: scheduler.state(),
        rng: Vec::new(),
        last_target_update: 0,
        warmup_until: cfg.learning_starts,
    };

    let replay_path = run.checkpoint_dir().join("replay.bin");
    if resume {
        let (tensors, saved): (Vec<(String, Tensor)>, LoopState) =
            checkpoint::load(&run.checkpoint_dir())?;
        agent.load_state(&tensors)?;
        scheduler = scheduler.with_state(saved.scheduler);
        rng = rng_from(&saved.rng).context("checkpoint: exploration generator state")?;
        state = saved;
        if cfg.checkpoint_replay && replay_path.is_file() {
            replay = FrameReplay::load(&replay_path)?;
        } else {
            // Without a saved replay, refill it before learning again.
            state.warmup_until = state.step + cfg.learning_starts;
        }
    }

    let mut log = MetricsLogger::open(run.path(), u64::from(atari.frame_skip))?;
    let stop = StopSignal::install();
    let progress = if progress_to_terminal {
        Progress::new(cfg.steps, state.step)
    } else {
        Progress::new(0, 0)
    };
    let obs_shape = [
        atari.frame_stack as i64,
        atari.frame_size as i64,
        atari.frame_size as i64,
    ];
    let obs_len = vec.obs_len();

    // Environments restart on resume (emulator state is not checkpointed), seeded by the step.
    let mut obs: Vec<u8> = vec.reset(Some(cfg.seed * 1_000_003 + state.step))?.to_vec();
    for i in 0..cfg.envs {
        replay.start_episode(i, newest_frame(&obs, i, obs_len))?;
    }
    let mut probe: Option<Tensor> = None;
    let mut last_return = None;
    let mut recent = Recent::default();
    let (mut sps_clock, mut sps_from) = (Instant::now(), state.step);
    let intervention = cfg.intervention_config();

    while state.step < cfg.steps {
        if stop.requested() {
            progress.println("stopping: writing a checkpoint");
            break;
        }
        let epsilon = if state.step < state.warmup_until {
            1.0
        } else {
            cfg.epsilon(state.step)
        };
        let batch_obs = Tensor::from_slice(&obs).f_view([
            cfg.envs as i64,
            obs_shape[0],
            obs_shape[1],
            obs_shape[2],
        ])?;
        let chosen = agent.act(&batch_obs, epsilon, &mut rng)?;
        let chosen_usize: Vec<usize> = chosen.iter().map(|&a| a as usize).collect();
        let step = vec.step(&chosen_usize)?;
        for (i, t) in step.transitions.iter().enumerate() {
            let done = t.terminated || t.truncated;
            let next = if done {
                newest_frame(step.final_obs, i, obs_len)
            } else {
                newest_frame(step.obs, i, obs_len)
            };
            replay.add_step(
                i,
                chosen[i] as u8,
                t.reward as f32,
                t.terminated,
                next,
                done,
            )?;
            if done {
                replay.start_episode(i, newest_frame(step.obs, i, obs_len))?;
            }
            if let Some(ep) = t.info.episode {
                state.episodes += 1;
                last_return = Some(ep.episode_return);
                log.scalar("charts/episodic_return", ep.episode_return, state.step)?;
                log.scalar("charts/episodic_length", ep.length as f64, state.step)?;
            }
        }
        obs.copy_from_slice(step.obs);
        state.step += cfg.envs as u64;

        // Rate limiter: exactly one update per `steps_per_update` steps after warm-up.
        if state.step > state.warmup_until {
            let due = (state.step - state.warmup_until) / cfg.steps_per_update;
            while state.updates < due {
                let batch = replay.sample(
                    cfg.batch_size,
                    NStep {
                        n: cfg.n_step,
                        gamma: cfg.gamma as f32,
                    },
                )?;
                let stats = agent.update(&batch, &obs_shape)?;
                recent.add(stats.td_loss, stats.q_values);
                state.updates += 1;
            }
            if probe.is_none() {
                let b = replay.sample(256, NStep::one(cfg.gamma as f32))?;
                probe = Some(Tensor::from_slice(&b.obs).f_view([
                    256,
                    obs_shape[0],
                    obs_shape[1],
                    obs_shape[2],
                ])?);
            }
        }
        if state.step / cfg.target_update_every > state.last_target_update / cfg.target_update_every
        {
            agent.update_target()?;
            state.last_target_update = state.step;
        }

        let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
        if crossed(state.step, cfg.envs as u64, cfg.plasticity_every) {
            if let Some(p) = &probe {
                latest = plasticity(&agent, p)?;
                for (k, v) in &latest {
                    log.scalar(&format!("plasticity/{k}"), *v, state.step)?;
                }
                for n in fire::metrics::param_norms(&agent.params())? {
                    log.scalar(
                        &format!("plasticity/weight_norm/{}", n.name),
                        n.weight_norm,
                        state.step,
                    )?;
                    log.scalar(
                        &format!("plasticity/grad_norm/{}", n.name),
                        n.grad_norm,
                        state.step,
                    )?;
                }
            }
        }
        if let Some(icfg) = &intervention {
            if scheduler.due(state.step, |name| latest.get(name).copied()) {
                let started = Instant::now();
                // ReDo scores neurons on the probe batch (or a fresh sample before it exists).
                let sample;
                let probe_ref = match &probe {
                    Some(p) => Some(p),
                    None if !replay.is_empty() => {
                        let b = replay.sample(256, NStep::one(cfg.gamma as f32))?;
                        sample = Tensor::from_slice(&b.obs).f_view([
                            256,
                            obs_shape[0],
                            obs_shape[1],
                            obs_shape[2],
                        ])?;
                        Some(&sample)
                    }
                    None => None,
                };
                let reports = agent.intervene(icfg, probe_ref)?;
                let total_sfe: f64 = reports.iter().map(|r| r.sfe).sum();
                log.scalar("interventions/count", 1.0, state.step)?;
                log.scalar("interventions/sfe", total_sfe, state.step)?;
                for r in &reports {
                    log.scalar(&format!("interventions/sfe/{}", r.name), r.sfe, state.step)?;
                    if let Some(d) = r.dfi_after {
                        log.scalar(
                            &format!("interventions/dfi_after/{}", r.name),
                            d,
                            state.step,
                        )?;
                    }
                }
                log.event(&serde_json::json!({
                    "step": state.step, "frames": state.step * u64::from(atari.frame_skip),
                    "method": cfg.intervention, "seconds": started.elapsed().as_secs_f64(), "parameters": reports,
                }))?;
                progress.println(&format!(
                    "step {}: {:?} applied (SFE {total_sfe:.3e})",
                    state.step, cfg.intervention
                ));
            }
        }
        if crossed(state.step, cfg.envs as u64, cfg.log_every) {
            if let Some((loss, q)) = recent.take() {
                log.scalar("losses/td_loss", loss, state.step)?;
                log.scalar("losses/q_values", q, state.step)?;
            }
            let sps = (state.step - sps_from) as f64 / sps_clock.elapsed().as_secs_f64().max(1e-9);
            log.scalar("charts/SPS", sps, state.step)?;
            log.scalar("charts/epsilon", epsilon, state.step)?;
            (sps_clock, sps_from) = (Instant::now(), state.step);
        }
        if cfg.eval_every > 0 && crossed(state.step, cfg.envs as u64, cfg.eval_every) {
            let score = evaluate(&agent, cfg, &mut rng, state.step)?;
            log.scalar("eval/episodic_return", score, state.step)?;
        }
        if cfg.checkpoint_every > 0 && crossed(state.step, cfg.envs as u64, cfg.checkpoint_every) {
            save(
                &agent,
                &mut state,
                &scheduler,
                &rng,
                run,
                cfg,
                &replay,
                &replay_path,
            )?;
            log.flush()?;
        }
        progress.update(state.step, last_return);
    }
    save(
        &agent,
        &mut state,
        &scheduler,
        &rng,
        run,
        cfg,
        &replay,
        &replay_path,
    )?;
    log.flush()?;
    progress.finish();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn save(
    agent: &Dqn,
    state: &mut LoopState,
    scheduler: &Scheduler,
    rng: &ChaCha8Rng,
    run: &RunDir,
    cfg: &AtariRunConfig,
    replay: &FrameReplay,
    replay_path: &Path,
) -> Result<()> {
    state.scheduler = scheduler.state();
    state.rng = rng_bytes(rng);
    if cfg.checkpoint_replay {
        replay.save(replay_path)?;
    }
    checkpoint::save(&run.checkpoint_dir(), agent.state_tensors(), state)?;
    Ok(())
}

/// Whether a multiple of `every` lies in `(step - stride, step]`.
fn crossed(step: u64, stride: u64, every: u64) -> bool {
    every > 0 && step / every > step.saturating_sub(stride) / every
}

fn newest_frame(batch: &[u8], env: usize, obs_len: usize) -> &[u8] {
    &batch[(env + 1) * obs_len - FRAME..(env + 1) * obs_len]
}

/// Mean loss and Q since the last log line.
#[derive(Default)]
struct Recent {
    loss: f64,
    q: f64,
    n: u64,
}

impl Recent {
    fn add(&mut self, loss: f64, q: f64) {
        self.loss += loss;
        self.q += q;
        self.n += 1;
    }

    fn take(&mut self) -> Option<(f64, f64)> {
        let out = (self.n > 0).then(|| (self.loss / self.n as f64, self.q / self.n as f64));
        *self = Self::default();
        out
    }
}

/// Plasticity diagnostics of the online network on the fixed probe batch.
fn plasticity(agent: &Dqn, probe: &Tensor) -> Result<BTreeMap<&'static str, f64>> {
    let (_, hidden) = tch::no_grad(|| {
        agent
            .online()
            .forward_with_features(&probe.to_device(agent.device()))
    });
    let refs: Vec<&Tensor> = hidden.iter().collect();
    let features = hidden.last().context("the network has hidden layers")?;
    let mut out = BTreeMap::new();
    out.insert("dormant_ratio", metrics::dormant(&refs, 0.1)?.ratio());
    out.insert("dormant_ratio_tau0", metrics::dormant(&refs, 0.0)?.ratio());
    out.insert("effective_rank", metrics::effective_rank(features)?);
    out.insert("srank", metrics::srank(features, 0.01)? as f64);
    out.insert("feature_norm", metrics::feature_norm(features)?);
    let mut dfi = 0.0;
    for (name, t) in agent.params() {
        let role = ParamRole::classify(&name, &t.size());
        if role == ParamRole::ConvWeight {
            dfi += fire::isometry_dfi(role, &t)?;
        }
    }
    out.insert("dfi_encoder", dfi);
    Ok(out)
}

/// Mean raw return of the episodes finished in `eval_steps` steps of one environment.
fn evaluate(agent: &Dqn, cfg: &AtariRunConfig, rng: &mut ChaCha8Rng, step: u64) -> Result<f64> {
    let config = AtariConfig {
        clip_rewards: false,
        ..cfg.atari_config()
    };
    let mut env = AtariEnv::with_seed(
        &cfg.game,
        config.clone(),
        &rom_dir(),
        cfg.seed ^ 0xE7A1 ^ step,
    )?;
    let mut obs = vec![0u8; config.obs_len()];
    use envs::vector::FlatEnv;
    env.reset_into(Some(cfg.seed ^ 0xE7A1 ^ step), &mut obs)?;
    let shape = [
        1i64,
        config.frame_stack as i64,
        config.frame_size as i64,
        config.frame_size as i64,
    ];
    let (mut returns, mut count) = (0.0, 0u64);
    for _ in 0..cfg.eval_steps {
        let a = agent.act(
            &Tensor::from_slice(&obs).f_view(shape)?,
            cfg.eval_epsilon,
            rng,
        )?[0];
        let t = env.step_into(a as usize, &mut obs)?;
        if let Some(ep) = t.info.episode {
            returns += ep.episode_return;
            count += 1;
        }
        if t.terminated || t.truncated {
            env.reset_into(None, &mut obs)?;
        }
    }
    Ok(if count > 0 {
        returns / count as f64
    } else {
        f64::NAN
    })
}

fn rng_bytes(rng: &ChaCha8Rng) -> Vec<u8> {
    let mut out = rng.get_seed().to_vec();
    out.extend_from_slice(&rng.get_word_pos().to_le_bytes());
    out
}

fn rng_from(bytes: &[u8]) -> Option<ChaCha8Rng> {
    let seed: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let pos = u128::from_le_bytes(bytes.get(32..48)?.try_into().ok()?);
    let mut rng = ChaCha8Rng::from_seed(seed);
    rng.set_word_pos(pos);
    Some(rng)
}

/// The default run directory name, CleanRL style: `results/runs/<game>__dqn-<intervention>__<seed>__<unix time>`.
pub fn default_run_dir(cfg: &AtariRunConfig) -> PathBuf {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let method = format!("{:?}", cfg.intervention).to_lowercase();
    PathBuf::from("results/runs").join(format!("{}__dqn-{method}__{}__{time}", cfg.game, cfg.seed))
}
