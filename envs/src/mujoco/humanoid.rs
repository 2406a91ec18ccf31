//! The HumanoidBench H1 locomotion tasks (walk, stand, run, balance_simple), as the SPEC in
//! `shared/reference/humanoid-bench` describes them, on MuJoCo 3.17.0.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mujoco_rs::mujoco_c::mjtWarning;
use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};

use super::reward::{mean19, tolerance_gaussian, tolerance_linear, tolerance_quadratic};
use super::seeding::Pcg64;
use crate::vector::Transition;
use crate::{Env, EpisodeTracker, Error, Info, Result, Space, Step};

/// Physics steps per environment step (HumanoidBench's `frame_skip`).
pub const FRAME_SKIP: usize = 10;
/// Gymnasium's `TimeLimit` for every H1 task, in environment steps.
pub const MAX_EPISODE_STEPS: u64 = 1000;
/// Default scale of the uniform reset noise on `qpos` (HumanoidBench's `randomness`).
pub const DEFAULT_RANDOMNESS: f64 = 0.01;
/// Number of actuators (= action dimension) of the H1 robot.
pub const NU: usize = 19;
/// Environment variable that overrides where the scene files are looked for.
pub const ASSETS_VAR: &str = "FIRE_RL_HUMANOID_ASSETS";

const STAND_HEIGHT: f64 = 1.65;
const WALK_SPEED: f64 = 1.0;
const RUN_SPEED: f64 = 5.0;

/// One of the four H1 (no hands, position control) tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// `h1-walk-v0`: stand and move forward at 1 m/s or faster.
    Walk,
    /// `h1-stand-v0`: stand still.
    Stand,
    /// `h1-run-v0`: stand and move forward at 5 m/s or faster.
    Run,
    /// `h1-balance_simple-v0`: stand on a board balanced on a fixed sphere.
    BalanceSimple,
}

impl Task {
    /// Every task, in `list` order.
    pub const ALL: [Task; 4] = [Task::Walk, Task::Stand, Task::Run, Task::BalanceSimple];

    /// The Gymnasium id, e.g. `h1-walk-v0`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Walk => "h1-walk-v0",
            Task::Stand => "h1-stand-v0",
            Task::Run => "h1-run-v0",
            Task::BalanceSimple => "h1-balance_simple-v0",
        }
    }

    /// The task with this Gymnasium id.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| Error::UnknownTask {
                task: name.to_owned(),
                available: Self::ALL.iter().map(|t| t.name().to_owned()).collect(),
            })
    }

    /// The top-level scene file, relative to the assets directory.
    pub fn scene_file(self) -> &'static str {
        match self {
            Task::Walk => "envs/h1_pos_walk.xml",
            Task::Stand => "envs/h1_pos_stand.xml",
            Task::Run => "envs/h1_pos_run.xml",
            Task::BalanceSimple => "envs/h1_pos_balance_simple.xml",
        }
    }

    /// HumanoidBench's `success_bar`: the episode return that counts as solving the task.
    pub fn success_bar(self) -> f64 {
        match self {
            Task::Walk | Task::Run => 700.0,
            Task::Stand | Task::BalanceSimple => 800.0,
        }
    }

    /// Observation length: `nq + nv` (51, or 64 with the balance board).
    pub fn obs_len(self) -> usize {
        match self {
            Task::BalanceSimple => 64,
            _ => 51,
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the HumanoidBench scene files are: `$FIRE_RL_HUMANOID_ASSETS` if set, else the copy
/// in this crate (`envs/assets/humanoid_bench`).
pub fn default_assets_dir() -> PathBuf {
    std::env::var_os(ASSETS_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/humanoid_bench"))
}

/// Options of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanoidConfig {
    /// Half-width of the uniform noise added to every `qpos` entry at reset (0 disables it).
    pub randomness: f64,
    /// Time limit in environment steps (truncation).
    pub max_episode_steps: u64,
    /// Directory holding `envs/`, `robots/`, `common/`, `tasks/` and `h1/assets/`.
    pub assets_dir: PathBuf,
}

impl Default for HumanoidConfig {
    fn default() -> Self {
        Self {
            randomness: DEFAULT_RANDOMNESS,
            max_episode_steps: MAX_EPISODE_STEPS,
            assets_dir: default_assets_dir(),
        }
    }
}

/// A compiled task model and the ids the reward reads, shared (read-only) by any number of
/// environments on any threads; each environment owns its `MjData`.
pub struct HumanoidModel {
    task: Task,
    model: Arc<MjModel>,
    /// Actuator `ctrlrange` cast to f32, as gymnasium keeps the action bounds.
    low: [f32; NU],
    high: [f32; NU],
    head_site: usize,
    torso_body: usize,
    com_vel_adr: usize,
    pivot_geom: i32,
    board_geom: i32,
}

impl std::fmt::Debug for HumanoidModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HumanoidModel")
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

fn mujoco_error(reason: impl Into<String>) -> Error {
    Error::Mujoco {
        reason: reason.into(),
    }
}

impl HumanoidModel {
    /// Loads the task's scene from `assets_dir` (see [`default_assets_dir`]).
    pub fn load(task: Task, assets_dir: &Path) -> Result<Arc<Self>> {
        let scene = assets_dir.join(task.scene_file());
        if !scene.is_file() {
            return Err(Error::AssetsMissing { path: scene });
        }
        super::quiet_mujoco_log();
        let model = MjModel::from_xml(&scene)
            .map_err(|e| mujoco_error(format!("loading {}: {e:?}", scene.display())))?;
        let m = model.ffi();
        let expect_nq = if task == Task::BalanceSimple { 33 } else { 26 };
        if m.nu as usize != NU || m.nq != expect_nq || m.nkey < 1 {
            return Err(mujoco_error(format!(
                "{}: unexpected model (nu {}, nq {}, nkey {})",
                scene.display(),
                m.nu,
                m.nq,
                m.nkey
            )));
        }
        let id = |kind: MjtObjBase, name: &str| {
            model
                .name_to_id(kind, name)
                .ok_or_else(|| mujoco_error(format!("{}: no {kind:?} `{name}`", scene.display())))
        };
        let head_site = id(MjtObjBase::mjOBJ_SITE, "head")?;
        let torso_body = id(MjtObjBase::mjOBJ_BODY, "torso_link")?;
        let sensor = id(MjtObjBase::mjOBJ_SENSOR, "pelvis_subtreelinvel")?;
        let com_vel_adr = model.sensor_adr()[sensor] as usize;
        let (pivot_geom, board_geom) = if task == Task::BalanceSimple {
            (
                id(MjtObjBase::mjOBJ_GEOM, "pivot_sphere_collision")? as i32,
                id(MjtObjBase::mjOBJ_GEOM, "stand_board_collision")? as i32,
            )
        } else {
            (-1, -1)
        };
        let range = model.actuator_ctrlrange();
        let low = std::array::from_fn(|i| range[i][0] as f32);
        let high = std::array::from_fn(|i| range[i][1] as f32);
        Ok(Arc::new(Self {
            task,
            model: Arc::new(model),
            low,
            high,
            head_site,
            torso_body,
            com_vel_adr,
            pivot_geom,
            board_geom,
        }))
    }

    /// The task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The compiled MuJoCo model.
    pub fn model(&self) -> &Arc<MjModel> {
        &self.model
    }
}

/// Counts of MuJoCo warnings (unstable simulation and the like) seen by one environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimWarnings {
    /// `mjWARN_BADQACC`: NaN/huge acceleration; MuJoCo reset the simulation state.
    pub bad_qacc: u64,
    /// `mjWARN_BADQPOS` and `mjWARN_BADQVEL`: MuJoCo reset the simulation state.
    pub bad_qpos_qvel: u64,
    /// `mjWARN_BADCTRL`: a non-finite control; MuJoCo zeroed it.
    pub bad_ctrl: u64,
    /// Contact or constraint buffer full, or bad inertia.
    pub other: u64,
    /// Steps ended because the observation was not finite.
    pub non_finite_obs: u64,
}

impl SimWarnings {
    /// All warnings together.
    pub fn total(&self) -> u64 {
        self.bad_qacc + self.bad_qpos_qvel + self.bad_ctrl + self.other + self.non_finite_obs
    }
}

/// One H1 task: `Env` with float64 observations and actions (HumanoidBench's arithmetic), and
/// `obs_len` / `reset_into` / `step_into` with float32 for batching.
///
/// * Action: 19 values, nominally in [-1, 1], mapped to each position actuator's `ctrlrange`
///   with the bounds in float32 and **not clipped** (SPEC §5). [`Env::step`] takes float64
///   actions (numpy's float64 arithmetic); [`HumanoidEnv::step_into`] takes float32 actions
///   and maps them all in float32, as numpy does for a float32 action array.
/// * Observation: `qpos ++ qvel` (51 values, 64 for balance_simple).
/// * One step: write `ctrl`, 10 × `mj_step`, then reward and termination from the data as the
///   10th substep left it (no extra `mj_forward`).
/// * Truncated after [`HumanoidConfig::max_episode_steps`] steps (1000); terminated when the
///   pelvis is below 0.2 m (0.8 m and any forbidden contact for balance_simple).
/// * MuJoCo warnings are counted ([`HumanoidEnv::warnings`]) and the step's
///   [`Info::sim_warnings`] says how many it raised. MuJoCo itself resets the state after a
///   NaN or huge acceleration, position or velocity; should an observation still be non-finite,
///   the step ends the episode as **terminated** (reward 0) and counts a warning.
/// * [`Info::reward_terms`] holds HumanoidBench's info keys (`per_timestep_reward`, `standing`,
///   `upright`, `stand_reward`, `small_control`, `move` or `dont_move`).
pub struct HumanoidEnv {
    shared: Arc<HumanoidModel>,
    data: MjData<Arc<MjModel>>,
    randomness: f64,
    max_episode_steps: u64,
    rng: Option<Pcg64>,
    obs: Vec<f64>,
    steps: u64,
    needs_reset: bool,
    tracker: EpisodeTracker,
    warnings: SimWarnings,
}

impl std::fmt::Debug for HumanoidEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HumanoidEnv")
            .field("task", &self.shared.task)
            .field("steps", &self.steps)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// How an action becomes `ctrl`.
#[derive(Clone, Copy)]
enum ActionMode {
    F64,
    F32,
}

impl HumanoidEnv {
    /// Loads the task and makes one environment; call `reset` before stepping.
    pub fn new(task: Task, config: &HumanoidConfig) -> Result<Self> {
        let shared = HumanoidModel::load(task, &config.assets_dir)?;
        Self::with_model(shared, config)
    }

    /// One more environment on an already loaded model (cheap: only the `MjData` is new).
    pub fn with_model(shared: Arc<HumanoidModel>, config: &HumanoidConfig) -> Result<Self> {
        if !(config.randomness >= 0.0 && config.randomness.is_finite()) {
            return Err(Error::Config {
                field: "randomness",
                reason: format!("{} must be finite and >= 0", config.randomness),
            });
        }
        if config.max_episode_steps == 0 {
            return Err(Error::Config {
                field: "max_episode_steps",
                reason: "must be at least 1".into(),
            });
        }
        let data = MjData::try_new(shared.model.clone())
            .map_err(|e| mujoco_error(format!("mj_makeData: {e:?}")))?;
        let obs_len = shared.task.obs_len();
        Ok(Self {
            shared,
            data,
            randomness: config.randomness,
            max_episode_steps: config.max_episode_steps,
            rng: None,
            obs: vec![0.0; obs_len],
            steps: 0,
            needs_reset: true,
            tracker: EpisodeTracker::default(),
            warnings: SimWarnings::default(),
        })
    }

    /// The task.
    pub fn task(&self) -> Task {
        self.shared.task
    }

    /// The shared model (to make more environments with [`HumanoidEnv::with_model`]).
    pub fn shared_model(&self) -> &Arc<HumanoidModel> {
        &self.shared
    }

    /// The MuJoCo data (read-only), e.g. for diagnostics.
    pub fn data(&self) -> &MjData<Arc<MjModel>> {
        &self.data
    }

    /// MuJoCo warnings seen since this environment was made.
    pub fn warnings(&self) -> SimWarnings {
        self.warnings
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> u64 {
        self.steps
    }

    /// The current observation, float64 (`qpos ++ qvel`).
    pub fn observation(&self) -> &[f64] {
        &self.obs
    }

    /// Length of one observation (51, or 64 for balance_simple).
    pub fn obs_len(&self) -> usize {
        self.obs.len()
    }

    /// `Box(-1, 1, (19,))`.
    pub fn action_space(&self) -> Space {
        Space::Box {
            low: vec![-1.0; NU],
            high: vec![1.0; NU],
        }
    }

    /// Starts an episode and writes the first observation into `obs` (as f32).
    pub fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<Info> {
        check_len(obs.len(), self.obs.len())?;
        let info = self.reset_state(seed)?;
        copy_f32(&self.obs, obs);
        Ok(info)
    }

    /// Steps with a float32 action (mapped to `ctrl` in float32) and writes the next
    /// observation into `obs` (as f32).
    pub fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<Transition> {
        check_len(obs.len(), self.obs.len())?;
        let action: Vec<f64> = action.iter().map(|&a| f64::from(a)).collect();
        let t = self.advance(&action, ActionMode::F32)?;
        copy_f32(&self.obs, obs);
        Ok(t)
    }

    /// Steps with a float64 action (numpy's float64 arithmetic); the observation is in
    /// [`HumanoidEnv::observation`].
    pub fn step_f64(&mut self, action: &[f64]) -> Result<Transition> {
        self.advance(action, ActionMode::F64)
    }

    /// gymnasium's `MujocoEnv.reset` then HumanoidBench's `reset_model` (SPEC §4.2).
    fn reset_state(&mut self, seed: Option<u64>) -> Result<Info> {
        if let Some(seed) = seed {
            self.rng = Some(Pcg64::from_seed(seed));
        }
        let rng = self
            .rng
            .get_or_insert_with(|| Pcg64::from_seed(rand::random::<u64>()));
        self.data.reset();
        self.data
            .reset_keyframe(0)
            .map_err(|e| mujoco_error(format!("mj_resetDataKeyframe: {e:?}")))?;
        self.data.forward();
        let nq = self.shared.model.ffi().nq as usize;
        let mut noise = vec![0.0; nq];
        rng.uniform_into(-self.randomness, self.randomness, &mut noise);
        let key_qpos = &self.shared.model.key_qpos()[..nq];
        for ((q, k), u) in self.data.qpos_mut().iter_mut().zip(key_qpos).zip(&noise) {
            *q = k + u;
        }
        self.data.qvel_mut().fill(0.0);
        self.data.forward();
        self.clear_warning_counts();
        self.write_obs();
        self.steps = 0;
        self.tracker.clear();
        self.needs_reset = false;
        if self.obs.iter().any(|x| !x.is_finite()) {
            self.needs_reset = true;
            return Err(mujoco_error("the reset observation is not finite"));
        }
        Ok(Info::default())
    }

    fn advance(&mut self, action: &[f64], mode: ActionMode) -> Result<Transition> {
        if self.needs_reset {
            return Err(Error::NeedsReset);
        }
        if action.len() != NU {
            return Err(Error::InvalidAction {
                action: format!("{} values", action.len()),
                reason: format!("expected {NU}"),
            });
        }
        if let Some(a) = action.iter().find(|a| !a.is_finite()) {
            return Err(Error::InvalidAction {
                action: a.to_string(),
                reason: "every action value must be finite".into(),
            });
        }
        let (low, high) = (&self.shared.low, &self.shared.high);
        for (i, (c, &a)) in self.data.ctrl_mut().iter_mut().zip(action).enumerate() {
            *c = match mode {
                // numpy: ((a + 1) / 2) * f32(high - low) + f32(low), all in float64 but the span.
                ActionMode::F64 => {
                    (a + 1.0) / 2.0 * f64::from(high[i] - low[i]) + f64::from(low[i])
                }
                // A float32 action array keeps the whole expression in float32.
                ActionMode::F32 => {
                    let a = a as f32;
                    f64::from((a + 1.0) / 2.0 * (high[i] - low[i]) + low[i])
                }
            };
        }
        for _ in 0..FRAME_SKIP {
            self.data.step();
        }
        // gymnasium calls it; it only fills cacc/cfrc_int/cfrc_ext, which nothing here reads.
        self.data.rne_post_constraint();
        let mut sim_warnings = self.take_warnings();
        self.write_obs();
        self.steps += 1;
        let truncated = self.steps >= self.max_episode_steps;
        let (reward, terminated, terms) = if self.obs.iter().all(|x| x.is_finite()) {
            let (reward, terms) = self.reward();
            (reward, self.terminated(), Some(terms))
        } else {
            self.warnings.non_finite_obs += 1;
            sim_warnings += 1;
            (0.0, true, None)
        };
        let done = terminated || truncated;
        self.needs_reset = done;
        let episode = self.tracker.record(reward, done);
        Ok(Transition {
            reward,
            terminated,
            truncated,
            info: Info {
                episode,
                reward_terms: terms,
                sim_warnings,
            },
        })
    }

    fn write_obs(&mut self) {
        let nq = self.data.qpos().len();
        self.obs[..nq].copy_from_slice(self.data.qpos());
        self.obs[nq..].copy_from_slice(self.data.qvel());
    }

    /// Adds the warnings MuJoCo raised since the last call to the counters and clears MuJoCo's
    /// (diagnostics only: they do not affect the physics).
    fn take_warnings(&mut self) -> u32 {
        let counts: Vec<u64> = self
            .data
            .warning()
            .iter()
            .map(|w| w.number.max(0) as u64)
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let w = &mut self.warnings;
        for (i, &n) in counts.iter().enumerate() {
            match i {
                i if i == mjtWarning::mjWARN_BADQACC as usize => w.bad_qacc += n,
                i if i == mjtWarning::mjWARN_BADQPOS as usize
                    || i == mjtWarning::mjWARN_BADQVEL as usize =>
                {
                    w.bad_qpos_qvel += n
                }
                i if i == mjtWarning::mjWARN_BADCTRL as usize => w.bad_ctrl += n,
                _ => w.other += n,
            }
        }
        self.clear_warning_counts();
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    fn clear_warning_counts(&mut self) {
        // SAFETY: only the diagnostic counters change; no pointer or size of the data does.
        let d = unsafe { self.data.ffi_mut() };
        for w in d.warning.iter_mut() {
            w.number = 0;
        }
    }

    /// Reward and its terms from the data as the 10th substep left it (SPEC §8).
    fn reward(&self) -> (f64, BTreeMap<&'static str, f64>) {
        let s = &*self.shared;
        let d = &self.data;
        let head_height = d.site_xpos()[s.head_site][2];
        let torso_upright = d.xmat()[s.torso_body][8];
        let com_vel = &d.sensordata()[s.com_vel_adr..s.com_vel_adr + 3];
        let forces: [f64; NU] = std::array::from_fn(|i| d.actuator_force()[i]);

        let stand_height = match s.task {
            Task::BalanceSimple => STAND_HEIGHT + 0.37,
            _ => STAND_HEIGHT,
        };
        let standing =
            tolerance_gaussian(head_height, stand_height, f64::INFINITY, STAND_HEIGHT / 4.0);
        let upright = tolerance_linear(torso_upright, 0.9, f64::INFINITY, 1.9);
        let stand_reward = standing * upright;
        let control: [f64; NU] = forces.map(|f| tolerance_quadratic(f, 0.0, 0.0, 10.0));
        let small_control = (4.0 + mean19(&control)) / 5.0;
        let mut terms = BTreeMap::new();
        terms.insert("standing", standing);
        terms.insert("upright", upright);
        terms.insert("stand_reward", stand_reward);
        terms.insert("small_control", small_control);
        let reward = match s.task {
            Task::Walk | Task::Run => {
                let speed = if s.task == Task::Walk {
                    WALK_SPEED
                } else {
                    RUN_SPEED
                };
                let raw = tolerance_linear(com_vel[0], speed, f64::INFINITY, speed);
                let move_ = (5.0 * raw + 1.0) / 6.0;
                terms.insert("move", move_);
                small_control * stand_reward * move_
            }
            Task::Stand | Task::BalanceSimple => {
                let vx = tolerance_gaussian(com_vel[0], 0.0, 0.0, 2.0);
                let vy = tolerance_gaussian(com_vel[1], 0.0, 0.0, 2.0);
                let dont_move = (vx + vy) / 2.0;
                terms.insert("dont_move", dont_move);
                small_control * stand_reward * dont_move
            }
        };
        terms.insert("per_timestep_reward", reward);
        (reward, terms)
    }

    /// SPEC §7, from the post-step `qpos` and the contacts of the 10th substep.
    fn terminated(&self) -> bool {
        let s = &*self.shared;
        let z = self.data.qpos()[2];
        match s.task {
            Task::BalanceSimple => {
                if z < 0.8 {
                    return true;
                }
                let (sphere, board, floor) = (s.pivot_geom, s.board_geom, 0);
                self.data.contact().iter().any(|c| {
                    let has = |g: i32| c.geom[0] == g || c.geom[1] == g;
                    (has(sphere) && !has(floor) && !has(board)) || (has(floor) && !has(sphere))
                })
            }
            _ => z < 0.2,
        }
    }
}

fn check_len(got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Config {
            field: "obs",
            reason: format!("buffer of {got} values, expected {want}"),
        })
    }
}

fn copy_f32(src: &[f64], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as f32;
    }
}

impl Env for HumanoidEnv {
    type Obs = Vec<f64>;
    type Action = Vec<f64>;

    fn observation_space(&self) -> Space {
        let n = self.obs.len();
        Space::Box {
            low: vec![f32::NEG_INFINITY; n],
            high: vec![f32::INFINITY; n],
        }
    }

    fn action_space(&self) -> Space {
        HumanoidEnv::action_space(self)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f64>, Info)> {
        let info = self.reset_state(seed)?;
        Ok((self.obs.clone(), info))
    }

    fn step(&mut self, action: &Vec<f64>) -> Result<Step<Vec<f64>>> {
        let t = self.step_f64(action)?;
        Ok(Step {
            obs: self.obs.clone(),
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }
}

impl crate::vector::FlatEnv for HumanoidEnv {
    type Elem = f32;

    fn obs_len(&self) -> usize {
        HumanoidEnv::obs_len(self)
    }

    fn action_space(&self) -> Space {
        HumanoidEnv::action_space(self)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<Info> {
        HumanoidEnv::reset_into(self, seed, obs)
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<Transition> {
        HumanoidEnv::step_into(self, action, obs)
    }

    /// MuJoCo's integration state (`mj_getState` with `mjSTATE_INTEGRATION`: time, qpos,
    /// qvel, act, the solver's warm start, ctrl and applied forces: everything the next
    /// `mj_step` reads), the observation, the reset generator and the counters. Derived
    /// quantities need not be saved: every `mj_step` recomputes them from that state first.
    fn save_state(&mut self) -> Option<Vec<u8>> {
        let spec = mujoco_rs::mujoco_c::mjtState::mjSTATE_INTEGRATION as u32;
        let mut w = crate::snapshot::Writer::new(self.shared.task.name());
        w.f64s(&self.data.state(spec)).f64s(&self.obs);
        match &self.rng {
            Some(rng) => {
                let (state, inc) = rng.parts();
                w.u64(1).u128(state).u128(inc)
            }
            None => w.u64(0),
        };
        let n = &self.warnings;
        for count in [
            n.bad_qacc,
            n.bad_qpos_qvel,
            n.bad_ctrl,
            n.other,
            n.non_finite_obs,
        ] {
            w.u64(count);
        }
        Some(
            w.u64(self.steps)
                .u64(u64::from(self.needs_reset))
                .tracker(&self.tracker)
                .finish(),
        )
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        check_len(obs.len(), self.obs.len())?;
        let spec = mujoco_rs::mujoco_c::mjtState::mjSTATE_INTEGRATION as u32;
        let mut r = crate::snapshot::Reader::new(self.shared.task.name(), state)?;
        let physics = r.f64s()?;
        if physics.len() != self.shared.model.state_size(spec) {
            return Err(Error::Snapshot(format!(
                "{} physics values for a model with {}",
                physics.len(),
                self.shared.model.state_size(spec)
            )));
        }
        let observation = r.f64s()?;
        if observation.len() != self.obs.len() {
            return Err(Error::Snapshot("observation length differs".into()));
        }
        let rng = match r.u64()? {
            0 => None,
            _ => Some(Pcg64::from_parts(r.u128()?, r.u128()?)),
        };
        let warnings = SimWarnings {
            bad_qacc: r.u64()?,
            bad_qpos_qvel: r.u64()?,
            bad_ctrl: r.u64()?,
            other: r.u64()?,
            non_finite_obs: r.u64()?,
        };
        let (steps, needs_reset, tracker) = (r.u64()?, r.u64()? != 0, r.tracker()?);
        r.finish()?;
        self.data
            .set_state(&physics, spec)
            .map_err(|e| mujoco_error(format!("mj_setState: {e:?}")))?;
        self.obs = observation;
        self.rng = rng;
        self.warnings = warnings;
        self.steps = steps;
        self.needs_reset = needs_reset;
        self.tracker = tracker;
        copy_f32(&self.obs, obs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unstable_state_is_counted_and_flagged_not_a_nan_observation() {
        let mut env = HumanoidEnv::new(Task::Walk, &HumanoidConfig::default()).unwrap();
        env.reset(Some(0)).unwrap();
        // A NaN velocity: MuJoCo warns (mjWARN_BADQVEL) and resets the state itself.
        env.data.qvel_mut()[0] = f64::NAN;
        let t = env.step_f64(&[0.0; NU]).unwrap();
        assert!(t.info.sim_warnings >= 1, "{:?}", t.info);
        assert!(env.warnings().bad_qpos_qvel >= 1, "{:?}", env.warnings());
        assert!(env.observation().iter().all(|x| x.is_finite()));
        // Counted once: the next, healthy step raises nothing new.
        let total = env.warnings().total();
        let t = env.step_f64(&[0.0; NU]).unwrap();
        assert_eq!(t.info.sim_warnings, 0);
        assert_eq!(env.warnings().total(), total);
    }
}
