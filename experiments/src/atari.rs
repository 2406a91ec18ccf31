//! DQN on Atari with plasticity interventions: the configuration (every hyperparameter, the
//! paper's protocol as defaults) and the synchronous training loop behind the `atari` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use dqn::{
    AdamConfig, Architecture, Dqn, DqnConfig, DqnIntervention, InterventionConfig, Loss, QNetwork,
};
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
    /// Plasticity injection: freeze the head, add a fresh one minus its frozen copy. Once.
    PlasticityInjection,
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
    /// Actor threads (0 = synchronous: act, step and learn in turn, exactly reproducible).
    pub actors: usize,
    /// Updates between weight publications to the actors.
    pub publish_every: u64,
    /// How many updates actors may run ahead of the replay ratio.
    pub max_lead_updates: u64,
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
        // The intervention's parts default to the learner's own defaults (the paper's).
        let parts = InterventionConfig::default();
        Self {
            game: "Breakout".into(),
            seed: 1,
            steps: 2_500_000,
            envs: 4,
            env_threads: 2,
            actors: 0,
            publish_every: 100,
            max_lead_updates: 8,
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
            reset_head: parts.reset_head,
            sync_target: parts.sync_target,
            reset_optimizer: parts.reset_optimizer,
            fire_iterations: parts.fire_iterations,
            shrink: parts.shrink,
            redo_tau: parts.redo_tau,
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
            self.actors <= self.envs,
            "actors ({}) must not exceed envs ({})",
            self.actors,
            self.envs
        );
        ensure!(self.publish_every >= 1, "publish_every must be at least 1");
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
        if self.intervention == InterventionChoice::PlasticityInjection {
            ensure!(
                self.fire_every.is_none() && self.fire_when.is_none() && self.fire_at.len() <= 1,
                "plasticity-injection is applied once: schedule it with a single --fire-at"
            );
        }
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
            InterventionChoice::PlasticityInjection => DqnIntervention::PlasticityInjection,
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
    /// Steps before which actions are random and nothing is learned: `learning_starts`, or
    /// after a resume without a saved replay, the resume step plus `learning_starts`.
    warmup_until: u64,
    /// Updates done when that warm-up began (nonzero after such a resume). The replay ratio
    /// counts from there: one update per `steps_per_update` steps past `warmup_until`.
    #[serde(default)]
    updates_before_warmup: u64,
}

const FRAME: usize = 84 * 84;

/// The newest frame of every environment after a step, and what the step produced: what an
/// actor sends the learner (a few KB per environment; the full stacks stay with the actor).
struct StepMsg {
    /// Index of the first environment of the sending actor.
    first_env: usize,
    actions: Vec<u8>,
    transitions: Vec<envs::vector::Transition>,
    /// Newest frame of each next (or final, when the episode ended) observation.
    next_frames: Vec<u8>,
    /// Newest frame of the reset observation of environments whose episode ended.
    reset_frames: Vec<u8>,
}

impl StepMsg {
    fn from_step(
        first_env: usize,
        actions: &[i64],
        step: &envs::vector::VecStep<'_, u8>,
        obs_len: usize,
    ) -> Self {
        let n = actions.len();
        let mut next_frames = Vec::with_capacity(n * FRAME);
        let mut reset_frames = vec![0u8; n * FRAME];
        for (i, t) in step.transitions.iter().enumerate() {
            let done = t.terminated || t.truncated;
            let source = if done { step.final_obs } else { step.obs };
            next_frames.extend_from_slice(newest_frame(source, i, obs_len));
            if done {
                reset_frames[i * FRAME..(i + 1) * FRAME]
                    .copy_from_slice(newest_frame(step.obs, i, obs_len));
            }
        }
        Self {
            first_env,
            actions: actions.iter().map(|&a| a as u8).collect(),
            transitions: step.transitions.to_vec(),
            next_frames,
            reset_frames,
        }
    }
}

/// Everything on the learner's side of the loop.
struct Learner<'a> {
    cfg: &'a AtariRunConfig,
    run: &'a RunDir,
    agent: Dqn,
    replay: FrameReplay,
    scheduler: Scheduler,
    rng: ChaCha8Rng,
    state: LoopState,
    log: MetricsLogger,
    progress: Progress,
    probe: Option<Tensor>,
    last_return: Option<f64>,
    sps: (Instant, u64),
    obs_shape: [i64; 3],
    frame_skip: u64,
    replay_path: PathBuf,
}

impl Learner<'_> {
    /// Stores one vector step of environments `msg.first_env..`.
    fn ingest(&mut self, msg: &StepMsg) -> Result<()> {
        for (k, t) in msg.transitions.iter().enumerate() {
            let env = msg.first_env + k;
            let done = t.terminated || t.truncated;
            let next = &msg.next_frames[k * FRAME..(k + 1) * FRAME];
            self.replay.add_step(
                env,
                msg.actions[k],
                t.reward as f32,
                t.terminated,
                next,
                done,
            )?;
            if done {
                self.replay
                    .start_episode(env, &msg.reset_frames[k * FRAME..(k + 1) * FRAME])?;
            }
            if let Some(ep) = t.info.episode {
                self.state.episodes += 1;
                self.last_return = Some(ep.episode_return);
                self.log
                    .scalar("charts/episodic_return", ep.episode_return, self.state.step)?;
                self.log
                    .scalar("charts/episodic_length", ep.length as f64, self.state.step)?;
            }
        }
        self.state.step += msg.transitions.len() as u64;
        Ok(())
    }

    /// Updates due by the replay ratio: exactly one per `steps_per_update` steps after warm-up.
    fn updates_due(&self) -> u64 {
        self.state.updates_before_warmup
            + self.state.step.saturating_sub(self.state.warmup_until) / self.cfg.steps_per_update
    }

    fn epsilon(&self) -> f64 {
        if self.state.step < self.state.warmup_until {
            1.0
        } else {
            self.cfg.epsilon(self.state.step)
        }
    }

    /// Everything after new data: updates, target, diagnostics, schedule, logs, evaluation,
    /// checkpoints. `stride` is how many steps the data covered. Returns whether the weights
    /// changed in a way actors must see now (an intervention).
    fn tick(&mut self, stride: u64) -> Result<bool> {
        let cfg = self.cfg;
        let obs_shape = self.obs_shape;
        let step = self.state.step;
        while self.state.updates < self.updates_due() {
            let batch = self.replay.sample(
                cfg.batch_size,
                NStep {
                    n: cfg.n_step,
                    gamma: cfg.gamma as f32,
                },
            )?;
            self.agent.update(&batch, &obs_shape)?;
            self.state.updates += 1;
        }
        if step > self.state.warmup_until && self.probe.is_none() {
            self.probe = Some(self.sample_obs()?);
        }
        if step / cfg.target_update_every > self.state.last_target_update / cfg.target_update_every
        {
            self.agent.update_target()?;
            self.state.last_target_update = step;
        }
        let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
        if crossed(step, stride, cfg.plasticity_every) {
            if let Some(p) = &self.probe {
                latest = plasticity(&self.agent, p)?;
                for (k, v) in &latest {
                    self.log.scalar(&format!("plasticity/{k}"), *v, step)?;
                }
                for n in fire::metrics::param_norms(&self.agent.params())? {
                    self.log.scalar(
                        &format!("plasticity/weight_norm/{}", n.name),
                        n.weight_norm,
                        step,
                    )?;
                    self.log.scalar(
                        &format!("plasticity/grad_norm/{}", n.name),
                        n.grad_norm,
                        step,
                    )?;
                }
            }
        }
        let mut intervened = false;
        if let Some(icfg) = cfg.intervention_config() {
            if self.scheduler.due(step, |name| latest.get(name).copied()) {
                self.intervene(&icfg)?;
                intervened = true;
            }
        }
        if crossed(step, stride, cfg.log_every) {
            if let Some(stats) = self.agent.take_stats()? {
                self.log.scalar("losses/td_loss", stats.td_loss, step)?;
                self.log.scalar("losses/q_values", stats.q_values, step)?;
            }
            let (clock, from) = self.sps;
            let sps = (step - from) as f64 / clock.elapsed().as_secs_f64().max(1e-9);
            self.log.scalar("charts/SPS", sps, step)?;
            self.log.scalar("charts/epsilon", self.epsilon(), step)?;
            self.sps = (Instant::now(), step);
        }
        if cfg.eval_every > 0 && crossed(step, stride, cfg.eval_every) {
            let score = evaluate(&self.agent, cfg, &mut self.rng, step)?;
            self.log.scalar("eval/episodic_return", score, step)?;
        }
        if cfg.checkpoint_every > 0 && crossed(step, stride, cfg.checkpoint_every) {
            self.save()?;
        }
        self.progress.update(step, self.last_return);
        Ok(intervened)
    }

    fn sample_obs(&mut self) -> Result<Tensor> {
        let [c, h, w] = self.obs_shape;
        let b = self.replay.sample(256, NStep::one(self.cfg.gamma as f32))?;
        Ok(Tensor::from_slice(&b.obs).f_view([256, c, h, w])?)
    }

    fn intervene(&mut self, icfg: &InterventionConfig) -> Result<()> {
        let step = self.state.step;
        let started = Instant::now();
        // ReDo scores neurons on the probe batch (or a fresh sample before it exists).
        let probe = match &self.probe {
            Some(p) => Some(p.shallow_clone()),
            None if !self.replay.is_empty() => Some(self.sample_obs()?),
            None => None,
        };
        let reports = self.agent.intervene(icfg, probe.as_ref())?;
        let total_sfe = reports.iter().fold(0.0, |sum, r| sum + r.sfe);
        self.log.scalar("interventions/count", 1.0, step)?;
        self.log.scalar("interventions/sfe", total_sfe, step)?;
        for r in &reports {
            self.log
                .scalar(&format!("interventions/sfe/{}", r.name), r.sfe, step)?;
            if let Some(d) = r.dfi_after {
                self.log
                    .scalar(&format!("interventions/dfi_after/{}", r.name), d, step)?;
            }
        }
        self.log.event(&serde_json::json!({
            "step": step, "frames": step * self.frame_skip, "method": self.cfg.intervention,
            "seconds": started.elapsed().as_secs_f64(), "parameters": reports,
        }))?;
        self.progress.println(&format!(
            "step {step}: {:?} applied (SFE {total_sfe:.3e})",
            self.cfg.intervention
        ));
        Ok(())
    }

    fn save(&mut self) -> Result<()> {
        // Losses are checked when they are logged; weights that diverged since then must not
        // replace the last good checkpoint.
        self.agent.check_finite()?;
        self.state.scheduler = self.scheduler.state();
        self.state.rng = replay::generator_state(&self.rng);
        if self.cfg.checkpoint_replay {
            self.replay.save(&self.replay_path)?;
        }
        checkpoint::save(
            &self.run.checkpoint_dir(),
            self.agent.state_tensors(),
            &self.state,
        )?;
        self.log.flush()?;
        Ok(())
    }
}

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done.
    Finished,
    /// Ctrl-C or SIGTERM: checkpointed at this step.
    Stopped(u64),
}

/// Trains, logging into `run`; resumes from its checkpoint when `resume` is set.
pub fn train(
    cfg: &AtariRunConfig,
    run: &RunDir,
    resume: bool,
    progress_to_terminal: bool,
) -> Result<Outcome> {
    let device = cfg.device()?;
    tch::manual_seed(cfg.seed as i64);
    let atari = cfg.atari_config();
    let dir = rom_dir();
    let envs = (0..cfg.envs)
        .map(|i| AtariEnv::with_seed(&cfg.game, atari.clone(), &dir, cfg.seed * 1000 + i as u64))
        .collect::<Result<Vec<_>, _>>()?;
    let actions = envs[0].num_actions() as i64;
    let arch = Architecture::NatureCnn {
        frames: atari.frame_stack as i64,
    };
    let agent = Dqn::new(&arch, actions, cfg.dqn_config(), device)?;
    let replay = FrameReplay::new(
        cfg.buffer_size,
        cfg.envs,
        FRAME,
        atari.frame_stack,
        cfg.seed,
    )?;
    let scheduler = Scheduler::new(cfg.schedules()?);
    let state = LoopState {
        step: 0,
        updates: 0,
        episodes: 0,
        scheduler: scheduler.state(),
        rng: Vec::new(),
        last_target_update: 0,
        warmup_until: cfg.learning_starts,
        updates_before_warmup: 0,
    };
    let mut learner = Learner {
        cfg,
        run,
        agent,
        replay,
        scheduler,
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        state,
        log: MetricsLogger::open(run.path(), u64::from(atari.frame_skip))?,
        progress: Progress::new(if progress_to_terminal { cfg.steps } else { 0 }, 0),
        probe: None,
        last_return: None,
        sps: (Instant::now(), 0),
        obs_shape: [
            atari.frame_stack as i64,
            atari.frame_size as i64,
            atari.frame_size as i64,
        ],
        frame_skip: u64::from(atari.frame_skip),
        replay_path: run.checkpoint_dir().join("replay.bin"),
    };
    if resume {
        let (tensors, saved): (Vec<(String, Tensor)>, LoopState) =
            checkpoint::load(&run.checkpoint_dir())?;
        learner.agent.load_state(&tensors)?;
        learner.scheduler = Scheduler::new(cfg.schedules()?).with_state(saved.scheduler);
        learner.rng = replay::generator_from(&saved.rng)
            .context("checkpoint: exploration generator state")?;
        learner.state = saved;
        if cfg.checkpoint_replay && learner.replay_path.is_file() {
            learner.replay = FrameReplay::load(&learner.replay_path)?;
        } else {
            // Without a saved replay, refill it before learning again.
            learner.state.warmup_until = learner.state.step + cfg.learning_starts;
            learner.state.updates_before_warmup = learner.state.updates;
        }
        learner.progress.update(learner.state.step, None);
        learner.sps = (Instant::now(), learner.state.step);
    }
    let stop = StopSignal::install();
    let result = if cfg.actors == 0 {
        run_synchronous(&mut learner, envs, &stop)
    } else {
        run_threaded(&mut learner, envs, &stop, &arch, actions)
    };
    // A clean end (done, Ctrl-C, SIGTERM) checkpoints where it is. After an error, a diverged
    // loss above all, the last periodic checkpoint is kept rather than overwritten with weights
    // that may be the cause; the logs are flushed either way.
    let saved = match &result {
        Ok(()) => learner.save(),
        Err(_) => learner.log.flush().map_err(Into::into),
    };
    learner.progress.finish();
    result?;
    saved?;
    Ok(if learner.state.step >= cfg.steps {
        Outcome::Finished
    } else {
        Outcome::Stopped(learner.state.step)
    })
}

/// Acting, stepping and learning take turns on this thread (stepping itself is parallel):
/// exactly reproducible for a seed.
fn run_synchronous(
    learner: &mut Learner<'_>,
    envs: Vec<AtariEnv>,
    stop: &StopSignal,
) -> Result<()> {
    let cfg = learner.cfg;
    let mut vec = VecEnv::new(envs, cfg.env_threads)?;
    let obs_len = vec.obs_len();
    let [c, h, w] = learner.obs_shape;
    // Environments restart on resume (emulator state is not checkpointed), seeded by the step.
    let mut obs: Vec<u8> = vec
        .reset(Some(cfg.seed * 1_000_003 + learner.state.step))?
        .to_vec();
    for i in 0..cfg.envs {
        learner
            .replay
            .start_episode(i, newest_frame(&obs, i, obs_len))?;
    }
    while learner.state.step < cfg.steps {
        if stop.requested() {
            learner.progress.println("stopping: writing a checkpoint");
            break;
        }
        let batch_obs = Tensor::from_slice(&obs).f_view([cfg.envs as i64, c, h, w])?;
        let epsilon = learner.epsilon();
        let chosen = learner.agent.act(&batch_obs, epsilon, &mut learner.rng)?;
        let as_usize: Vec<usize> = chosen.iter().map(|&a| a as usize).collect();
        let step = vec.step(&as_usize)?;
        let msg = StepMsg::from_step(0, &chosen, &step, obs_len);
        obs.copy_from_slice(step.obs);
        learner.ingest(&msg)?;
        learner.tick(cfg.envs as u64)?;
    }
    Ok(())
}

/// Shared between the learner and its actors.
struct Shared {
    /// Environment steps sent by all actors.
    sent: AtomicU64,
    /// Gradient updates done by the learner.
    updates: AtomicU64,
    /// Steps before which actors act at random, and exploration epsilon (f64 bits).
    warmup_until: AtomicU64,
    /// `LoopState::updates_before_warmup`, fixed for the run.
    updates_before_warmup: u64,
    epsilon_bits: AtomicU64,
    /// The latest published weights and their version.
    weights: Mutex<(u64, Vec<(String, Tensor)>)>,
    stop: AtomicBool,
}

/// Actor threads each own a slice of the environments and a CPU copy of the policy; they send
/// steps to the learner over a bounded crossbeam channel. The learner publishes its weights
/// every `publish_every` updates and after interventions. A rate limiter makes actors wait
/// when they are more than `max_lead_updates` updates ahead of the replay ratio, so the ratio
/// of updates to steps holds whatever the threads' speeds.
fn run_threaded(
    learner: &mut Learner<'_>,
    envs: Vec<AtariEnv>,
    stop: &StopSignal,
    arch: &Architecture,
    actions: i64,
) -> Result<()> {
    let cfg = learner.cfg;
    let actors = cfg.actors.min(cfg.envs);
    let per_actor = cfg.envs.div_ceil(actors);
    let publish = |agent: &Dqn| -> Result<Vec<(String, Tensor)>> {
        agent
            .params()
            .into_iter()
            .map(|(n, t)| Ok((n, t.f_detach()?.f_to_device(Device::Cpu)?.copy())))
            .collect()
    };
    let shared = Arc::new(Shared {
        sent: AtomicU64::new(learner.state.step),
        updates: AtomicU64::new(learner.state.updates),
        warmup_until: AtomicU64::new(learner.state.warmup_until),
        updates_before_warmup: learner.state.updates_before_warmup,
        epsilon_bits: AtomicU64::new(learner.epsilon().to_bits()),
        weights: Mutex::new((1, publish(&learner.agent)?)),
        stop: AtomicBool::new(false),
    });
    let (tx, rx) = crossbeam_channel::bounded::<Result<StepMsg>>(4 * actors);
    let mut envs = envs;
    let mut handles = Vec::new();
    let mut first_env = 0;
    let mut actor_index = 0;
    while !envs.is_empty() {
        let rest = envs.split_off(per_actor.min(envs.len()));
        let mine = std::mem::replace(&mut envs, rest);
        let n = mine.len();
        let (tx, shared, arch) = (tx.clone(), shared.clone(), arch.clone());
        let seed = cfg.seed * 1_000_003 + learner.state.step + first_env as u64;
        let threads = (cfg.env_threads / actors).max(1);
        let spu = cfg.steps_per_update;
        let lead = cfg.max_lead_updates;
        let rng_seed = cfg.seed.wrapping_mul(31).wrapping_add(actor_index);
        // The learner records the first frame of each episode before any step arrives.
        let mut vec = VecEnv::new(mine, threads)?;
        let obs = vec.reset(Some(seed))?.to_vec();
        let obs_len = vec.obs_len();
        for i in 0..n {
            learner
                .replay
                .start_episode(first_env + i, newest_frame(&obs, i, obs_len))?;
        }
        handles.push(
            std::thread::Builder::new()
                .name(format!("actor-{actor_index}"))
                .spawn(move || {
                    let result = actor_loop(
                        vec, obs, first_env, &shared, &tx, &arch, actions, spu, lead, rng_seed,
                    );
                    if let Err(e) = result {
                        let _ = tx.send(Err(e));
                    }
                })?,
        );
        first_env += n;
        actor_index += 1;
    }
    drop(tx);
    let mut published_at = learner.state.updates;
    let result = (|| -> Result<()> {
        while learner.state.step < cfg.steps {
            if stop.requested() {
                learner.progress.println("stopping: writing a checkpoint");
                break;
            }
            let msg = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(msg) => msg?,
                Err(_) => bail!("actors stopped sending steps"),
            };
            let stride = msg.transitions.len() as u64;
            learner.ingest(&msg)?;
            let intervened = learner.tick(stride)?;
            shared
                .updates
                .store(learner.state.updates, Ordering::SeqCst);
            shared
                .warmup_until
                .store(learner.state.warmup_until, Ordering::SeqCst);
            shared
                .epsilon_bits
                .store(learner.epsilon().to_bits(), Ordering::SeqCst);
            if intervened || learner.state.updates >= published_at + cfg.publish_every {
                let weights = publish(&learner.agent)?;
                published_at = learner.state.updates;
                let mut slot = shared.weights.lock().expect("weights lock");
                *slot = (slot.0 + 1, weights);
            }
        }
        Ok(())
    })();
    shared.stop.store(true, Ordering::SeqCst);
    drop(rx);
    for h in handles {
        let _ = h.join();
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn actor_loop(
    mut vec: VecEnv<AtariEnv>,
    mut obs: Vec<u8>,
    first_env: usize,
    shared: &Shared,
    tx: &crossbeam_channel::Sender<Result<StepMsg>>,
    arch: &Architecture,
    actions: i64,
    steps_per_update: u64,
    max_lead_updates: u64,
    rng_seed: u64,
) -> Result<()> {
    let n = vec.len();
    let obs_len = vec.obs_len();
    let policy_vs = tch::nn::VarStore::new(Device::Cpu);
    let policy = QNetwork::new(&policy_vs.root(), arch, actions);
    let mut version = 0;
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let frames = (obs_len / FRAME) as i64;
    while !shared.stop.load(Ordering::SeqCst) {
        // Rate limiter: past warm-up, stay within `max_lead_updates` of the replay ratio.
        loop {
            let sent = shared.sent.load(Ordering::SeqCst);
            let warm = shared.warmup_until.load(Ordering::SeqCst);
            let updates = shared
                .updates
                .load(Ordering::SeqCst)
                .saturating_sub(shared.updates_before_warmup);
            let allowed = warm + (updates + max_lead_updates) * steps_per_update;
            if sent < warm || sent < allowed || shared.stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        {
            let slot = shared.weights.lock().expect("weights lock");
            if slot.0 != version {
                let vars = policy_vs.variables();
                tch::no_grad(|| -> Result<()> {
                    for (name, t) in &slot.1 {
                        let mut dst = vars
                            .get(name)
                            .context("published weights match the policy")?
                            .shallow_clone();
                        dst.f_copy_(t)?;
                    }
                    Ok(())
                })?;
                version = slot.0;
            }
        }
        let epsilon = f64::from_bits(shared.epsilon_bits.load(Ordering::SeqCst));
        let batch = Tensor::from_slice(&obs).f_view([n as i64, frames, 84, 84])?;
        let chosen = policy.epsilon_greedy(&batch, epsilon, &mut rng)?;
        let as_usize: Vec<usize> = chosen.iter().map(|&a| a as usize).collect();
        let step = vec.step(&as_usize)?;
        let msg = StepMsg::from_step(first_env, &chosen, &step, obs_len);
        obs.copy_from_slice(step.obs);
        shared.sent.fetch_add(n as u64, Ordering::SeqCst);
        if tx.send(Ok(msg)).is_err() {
            break; // the learner is done
        }
    }
    Ok(())
}

/// Whether a multiple of `every` lies in `(step - stride, step]`.
fn crossed(step: u64, stride: u64, every: u64) -> bool {
    every > 0 && step / every > step.saturating_sub(stride) / every
}

fn newest_frame(batch: &[u8], env: usize, obs_len: usize) -> &[u8] {
    &batch[(env + 1) * obs_len - FRAME..(env + 1) * obs_len]
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

/// The default run directory name, CleanRL style: `results/runs/<game>__dqn-<intervention>__<seed>__<unix time>`.
pub fn default_run_dir(cfg: &AtariRunConfig) -> PathBuf {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let method = format!("{:?}", cfg.intervention).to_lowercase();
    PathBuf::from("results/runs").join(format!("{}__dqn-{method}__{}__{time}", cfg.game, cfg.seed))
}
