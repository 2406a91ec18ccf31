//! Continual levels: a run as a sequence of levels, each adding one fixed offset to every
//! observation the agent sees (the continual classic-control protocol of TRAC and C-CHAIN).
//!
//! A run with `levels = N` and `level_steps = L` plays levels `0..N` of `L` agent steps each
//! (summed over environments). Its offsets are drawn once, from the run's own stream
//! ([`Seeds::levels`]): level 0's is zero, every other level's is N(0, `level_offset_std`²) per
//! observation dimension, as in the source. The loop adds the current level's offset to every
//! observation: after a reset, after every step, to the final observation of an episode, and
//! in evaluation.
//!
//! **Switches** happen at exact step counts (`L` must be a multiple of `envs`), in this order:
//! the old level's last vector step is stored with every episode still running cut there as
//! *truncated* (so it bootstraps from its last observation and is not counted as a finished
//! episode in `charts/episodic_return` or `levels.csv`); every environment starts a new
//! episode, seen with the new offset; the old level's last updates run; the greedy evaluation
//! of the old level runs (with the old offset) and its `levels.csv` row is written; with
//! `intervene_at_level` the run's intervention is applied; then the level counter moves, and the
//! new level's first step follows. A checkpoint at the switch step is taken after all of it.
//!
//! The level is part of the checkpointed loop state and the offsets are drawn again from the
//! seed, so a resume in the middle of a level continues with the same level and offsets.
//!
//! **Task sequences.** The same machinery runs a sequence of *tasks* instead of offsets
//! ([`LevelPlan::tasks`]: continual MinAtar's games): no observation changes, the loop moves
//! every environment to the next task with [`FlatEnv::set_phase`](envs::vector::FlatEnv)
//! at a switch (and evaluation environments to the current one), every training episode's
//! return is also logged as `charts/episodic_return/<task>`, and the rows go to `games.csv`
//! (`levels.csv` with the task's name after the level).

use anyhow::{ensure, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::LoopConfig;
use crate::Seeds;

/// The keys of the level protocol (a section of the `classic` binary's configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LevelKeys {
    /// Levels of the continual protocol (1 = off). Each level adds its own fixed offset to
    /// every observation; level 0's offset is zero.
    pub levels: u64,
    /// Agent steps per level (summed over environments; a multiple of `envs`). Unset: `steps`
    /// divided by `levels`; `steps` defaults to `levels × level_steps`.
    #[serde(deserialize_with = "crate::config::steps::optional")]
    #[schemars(with = "Option<u64>")]
    pub level_steps: Option<u64>,
    /// Standard deviation of the levels' observation offsets (drawn once per run from the
    /// seed, N(0, std²) per observation dimension).
    pub level_offset_std: f64,
    /// Apply the run's intervention at every level switch, after the old level's last update
    /// and before the new level's first step (in addition to `fire_at` / `fire_every`).
    pub intervene_at_level: bool,
}

impl Default for LevelKeys {
    fn default() -> Self {
        Self {
            levels: 1,
            level_steps: None,
            level_offset_std: 2.0,
            intervene_at_level: false,
        }
    }
}

impl LevelKeys {
    /// Settles `steps` and `level_steps` against each other: `steps` (when the user did not
    /// give it, `steps_given`) defaults to `levels × level_steps`, `level_steps` (when unset) to
    /// `steps / levels`; any disagreement is an error. Call before [`validate`](Self::validate).
    pub fn resolve_steps(&mut self, run: &mut LoopConfig, steps_given: bool) -> Result<()> {
        ensure!(
            self.levels >= 1,
            "levels must be at least 1 (1 = no levels)"
        );
        ensure!(self.level_steps != Some(0), "level_steps must be positive");
        match self.level_steps {
            Some(per_level) => {
                let total = per_level.checked_mul(self.levels).ok_or_else(|| {
                    anyhow::anyhow!("levels × level_steps overflows a step count")
                })?;
                if steps_given {
                    ensure!(
                        run.steps == total,
                        "steps ({}) disagrees with levels × level_steps ({} × {per_level} = \
                         {total}): leave steps unset or make them agree",
                        run.steps,
                        self.levels
                    );
                }
                run.steps = total;
            }
            None if self.levels > 1 => {
                ensure!(
                    run.steps.is_multiple_of(self.levels),
                    "steps ({}) is not a multiple of levels ({}): set level_steps",
                    run.steps,
                    self.levels
                );
                self.level_steps = Some(run.steps / self.levels);
            }
            None => {}
        }
        Ok(())
    }

    /// Checks the keys against the loop's (after [`resolve_steps`](Self::resolve_steps)).
    pub fn validate(&self, run: &LoopConfig) -> Result<()> {
        ensure!(
            self.levels >= 1,
            "levels must be at least 1 (1 = no levels)"
        );
        ensure!(self.level_steps != Some(0), "level_steps must be positive");
        ensure!(
            self.level_offset_std.is_finite() && self.level_offset_std >= 0.0,
            "level_offset_std must be a finite number of at least 0, got {}",
            self.level_offset_std
        );
        ensure!(
            !self.intervene_at_level || self.levels > 1,
            "intervene_at_level needs levels > 1 (with one level there is no switch)"
        );
        if self.levels > 1 {
            let per_level = self.level_steps.unwrap_or(run.steps / self.levels);
            ensure!(
                per_level.checked_mul(self.levels) == Some(run.steps),
                "steps ({}) must be levels × level_steps ({} × {per_level})",
                run.steps,
                self.levels
            );
            ensure!(
                per_level.is_multiple_of(run.envs as u64),
                "level_steps ({per_level}) must be a multiple of envs ({}): levels switch at \
                 exact step counts",
                run.envs
            );
            ensure!(
                run.actors == 0,
                "levels need actors = 0: a switch stops every environment at one step count"
            );
            ensure!(
                !(self.intervene_at_level
                    && run.intervention == fire::Method::PlasticityInjection
                    && (self.levels > 2 || !run.fire_at.is_empty() || run.fire_every.is_some())),
                "plasticity-injection is applied once: with intervene_at_level it needs levels = 2 \
                 and no other schedule"
            );
        }
        Ok(())
    }

    /// The plan of a run with `obs_dim`-dimensional observations (`None` with one level).
    pub fn plan(&self, seeds: Seeds, obs_dim: usize) -> Option<LevelPlan> {
        (self.levels > 1).then(|| {
            LevelPlan::draw(
                self.levels,
                self.level_steps.expect("resolved before the run"),
                self.level_offset_std,
                obs_dim,
                self.intervene_at_level,
                &mut seeds.levels(),
            )
        })
    }
}

/// A run's levels: how long each is, what changes at a switch (an offset on the
/// observations, or the task), and whether a switch intervenes.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelPlan {
    levels: u64,
    level_steps: u64,
    change: Change,
    intervene: bool,
}

/// What a level switch changes.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    /// `[levels][obs_dim]` offsets added to every observation; row 0 is zero.
    Offsets(Vec<Vec<f32>>),
    /// One task (environment phase) per level, by name.
    Tasks(Vec<String>),
}

impl LevelPlan {
    /// Draws the offsets with `rng`: level 0 zero, the others `std · N(0, 1)` per dimension.
    pub fn draw(
        levels: u64,
        level_steps: u64,
        std: f64,
        obs_dim: usize,
        intervene: bool,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut offsets = vec![vec![0.0; obs_dim]];
        for _ in 1..levels {
            offsets.push((0..obs_dim).map(|_| (std * normal(rng)) as f32).collect());
        }
        Self {
            levels,
            level_steps,
            change: Change::Offsets(offsets),
            intervene,
        }
    }

    /// A sequence of tasks, one per level, `level_steps` each: the observations stay as they
    /// are and the environments move to level `k`'s task ([`FlatEnv::set_phase`] with `k`).
    ///
    /// [`FlatEnv::set_phase`]: envs::vector::FlatEnv::set_phase
    pub fn tasks(names: Vec<String>, level_steps: u64, intervene: bool) -> Self {
        Self {
            levels: names.len() as u64,
            level_steps,
            change: Change::Tasks(names),
            intervene,
        }
    }

    /// Whether switches move observations by an offset (rather than change the task).
    pub fn shifts(&self) -> bool {
        matches!(self.change, Change::Offsets(_))
    }

    /// Level `level`'s task name, in a sequence of tasks.
    pub fn task(&self, level: u64) -> Option<&str> {
        match &self.change {
            Change::Tasks(names) => names.get(level as usize).map(String::as_str),
            Change::Offsets(_) => None,
        }
    }

    /// How many levels the run has.
    pub fn levels(&self) -> u64 {
        self.levels
    }

    /// Agent steps per level.
    pub fn level_steps(&self) -> u64 {
        self.level_steps
    }

    /// Whether a switch applies the run's intervention.
    pub fn intervenes(&self) -> bool {
        self.intervene
    }

    /// The step count at which `level` ends.
    pub fn end_of(&self, level: u64) -> u64 {
        (level + 1) * self.level_steps
    }

    /// The first step count of `level`'s last 10 %: episodes ending after it count towards
    /// the level's `return_final`.
    pub fn final_window_start(&self, level: u64) -> u64 {
        self.end_of(level) - (self.level_steps / 10).max(1)
    }

    /// `level`'s offset, one value per observation dimension (`None` in a sequence of tasks).
    pub fn offset(&self, level: u64) -> Option<&[f32]> {
        match &self.change {
            Change::Offsets(offsets) => Some(&offsets[level as usize]),
            Change::Tasks(_) => None,
        }
    }

    /// Adds `level`'s offset to every row of `rows` (`[n, obs_dim]`); nothing in a sequence
    /// of tasks.
    pub fn shift<T: Shift>(&self, level: u64, rows: &mut [T]) {
        if let Some(offset) = self.offset(level) {
            shift_rows(rows, offset);
        }
    }
}

/// Adds `offset` to every row of `rows` (`[n, offset.len()]`).
pub fn shift_rows<T: Shift>(rows: &mut [T], offset: &[f32]) {
    for row in rows.chunks_mut(offset.len()) {
        for (x, &o) in row.iter_mut().zip(offset) {
            *x = x.shifted(o);
        }
    }
}

/// An observation element an offset can be added to.
pub trait Shift: Copy {
    /// Whether offsets apply (the loop refuses levels for elements they do not).
    const SHIFTS: bool;
    /// `self + by`.
    fn shifted(self, by: f32) -> Self;
}

impl Shift for f32 {
    const SHIFTS: bool = true;
    fn shifted(self, by: f32) -> f32 {
        self + by
    }
}

/// Pixels have no meaningful offset: levels are for flat-observation tasks.
impl Shift for u8 {
    const SHIFTS: bool = false;
    fn shifted(self, _by: f32) -> u8 {
        self
    }
}

/// One standard normal draw (Box–Muller on two uniforms in (0, 1]).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One finished level, as `levels.csv` (or, in a sequence of tasks, `games.csv`) holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelRow {
    /// The level (0-based).
    pub level: u64,
    /// Its task, in a sequence of tasks (`games.csv`'s second column).
    pub task: Option<String>,
    /// Its first step count.
    pub start_step: u64,
    /// The step count at its end.
    pub end_step: u64,
    /// Mean return of the training episodes that finished in it (NaN if none).
    pub return_mean: f64,
    /// The same over its last 10 % of steps (NaN if none finished there).
    pub return_final: f64,
    /// The greedy evaluation at its end (NaN if no episode finished).
    pub eval_return: f64,
}

/// `levels.csv`'s header.
pub const LEVELS_CSV_HEADER: &str =
    "level,start_step,end_step,return_mean,return_final,eval_return";

/// `games.csv`'s header: `levels.csv`'s with the task's name after the level.
pub const GAMES_CSV_HEADER: &str =
    "level,game,start_step,end_step,return_mean,return_final,eval_return";

impl LevelRow {
    /// The file the row goes to, with its header: `levels.csv`, or `games.csv` for a task.
    pub fn file(&self) -> (&'static str, &'static str) {
        match self.task {
            None => ("levels.csv", LEVELS_CSV_HEADER),
            Some(_) => ("games.csv", GAMES_CSV_HEADER),
        }
    }

    /// The row as a line of its file (without the newline).
    pub fn csv_line(&self) -> String {
        let task = match &self.task {
            Some(name) => format!("{name},"),
            None => String::new(),
        };
        format!(
            "{},{task}{},{},{},{},{}",
            self.level,
            self.start_step,
            self.end_step,
            self.return_mean,
            self.return_final,
            self.eval_return
        )
    }
}

/// The current level's training returns so far (checkpointed with the loop state).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelProgress {
    /// The level being played.
    pub level: u64,
    returns: (f64, u64),
    final_returns: (f64, u64),
}

impl LevelProgress {
    /// Counts an episode of return `ret` that finished at step count `at`.
    pub fn record(&mut self, plan: &LevelPlan, ret: f64, at: u64) {
        self.returns.0 += ret;
        self.returns.1 += 1;
        if at > plan.final_window_start(self.level) {
            self.final_returns.0 += ret;
            self.final_returns.1 += 1;
        }
    }

    /// The finished level's row, and the progress of the next level.
    pub fn finish(&self, plan: &LevelPlan, eval_return: f64) -> (LevelRow, LevelProgress) {
        let mean = |(sum, n): (f64, u64)| if n > 0 { sum / n as f64 } else { f64::NAN };
        let row = LevelRow {
            level: self.level,
            task: plan.task(self.level).map(str::to_owned),
            start_step: self.level * plan.level_steps,
            end_step: plan.end_of(self.level),
            return_mean: mean(self.returns),
            return_final: mean(self.final_returns),
            eval_return,
        };
        let next = LevelProgress {
            level: self.level + 1,
            ..LevelProgress::default()
        };
        (row, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(levels: u64, level_steps: Option<u64>) -> LevelKeys {
        LevelKeys {
            levels,
            level_steps,
            ..LevelKeys::default()
        }
    }

    fn run(steps: u64) -> LoopConfig {
        LoopConfig {
            steps,
            envs: 1,
            ..LoopConfig::default()
        }
    }

    #[test]
    fn steps_default_to_levels_times_level_steps_and_must_agree() {
        let mut cfg = run(60_000);
        let mut k = keys(5, Some(2_000));
        k.resolve_steps(&mut cfg, false).unwrap();
        assert_eq!(cfg.steps, 10_000);
        k.validate(&cfg).unwrap();

        let mut cfg = run(10_000);
        keys(5, Some(2_000)).resolve_steps(&mut cfg, true).unwrap();
        let err = keys(5, Some(2_000))
            .resolve_steps(&mut run(12_000), true)
            .unwrap_err();
        assert!(err.to_string().contains("disagrees"), "{err}");

        let mut cfg = run(9_000);
        let mut k = keys(3, None);
        k.resolve_steps(&mut cfg, true).unwrap();
        assert_eq!(k.level_steps, Some(3_000));
        assert!(keys(7, None).resolve_steps(&mut run(9_000), true).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_their_reason() {
        let err = |k: LevelKeys, cfg: LoopConfig| k.validate(&cfg).unwrap_err().to_string();
        assert!(err(keys(0, None), run(10)).contains("levels must be at least 1"));
        assert!(err(keys(2, Some(0)), run(10)).contains("level_steps must be positive"));
        for std in [-1.0, f64::NAN, f64::INFINITY] {
            let k = LevelKeys {
                level_offset_std: std,
                ..keys(2, Some(5))
            };
            assert!(err(k, run(10)).contains("level_offset_std"));
        }
        let k = LevelKeys {
            intervene_at_level: true,
            ..keys(1, None)
        };
        assert!(err(k, run(10)).contains("needs levels > 1"));
        let two_envs = LoopConfig { envs: 2, ..run(10) };
        assert!(err(keys(2, Some(5)), two_envs).contains("multiple of envs"));
        let actors = LoopConfig {
            envs: 2,
            actors: 1,
            ..run(20)
        };
        assert!(err(keys(2, Some(10)), actors).contains("actors = 0"));
        let inject = |levels| {
            let k = LevelKeys {
                intervene_at_level: true,
                ..keys(levels, Some(10))
            };
            let cfg = LoopConfig {
                intervention: fire::Method::PlasticityInjection,
                ..run(10 * levels)
            };
            k.validate(&cfg)
        };
        assert!(inject(3).unwrap_err().to_string().contains("applied once"));
        inject(2).unwrap();
    }

    #[test]
    fn offsets_come_from_the_seed_and_level_0_is_unshifted() {
        let k = keys(4, Some(100));
        let a = k.plan(Seeds::new(7), 3).unwrap();
        assert_eq!(
            a,
            k.plan(Seeds::new(7), 3).unwrap(),
            "same seed, same offsets"
        );
        assert_ne!(a.offset(1), k.plan(Seeds::new(8), 3).unwrap().offset(1));
        assert_eq!(a.offset(0).unwrap(), [0.0; 3]);
        for level in 1..4 {
            assert!(a
                .offset(level)
                .unwrap()
                .iter()
                .all(|&o| o != 0.0 && o.is_finite()));
        }
        assert_ne!(a.offset(1), a.offset(2), "each level its own offset");
        let mut rows = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        a.shift(2, &mut rows);
        let o = a.offset(2).unwrap();
        assert_eq!(
            rows,
            [
                1.0 + o[0],
                2.0 + o[1],
                3.0 + o[2],
                4.0 + o[0],
                5.0 + o[1],
                6.0 + o[2]
            ]
        );
        assert!(
            k.plan(Seeds::new(7), 3).is_some() && keys(1, None).plan(Seeds::new(7), 3).is_none()
        );
    }

    /// 20,000 draws at std 2: the sample mean within 4 standard errors of 0 and the standard
    /// deviation within 3 % of 2.
    #[test]
    fn offsets_have_the_asked_spread() {
        let plan = LevelPlan::draw(2, 1, 2.0, 20_000, false, &mut Seeds::new(3).levels());
        let xs: Vec<f64> = plan
            .offset(1)
            .unwrap()
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(mean.abs() < 4.0 * 2.0 / n.sqrt(), "mean {mean}");
        assert!((sd - 2.0).abs() < 0.06, "sd {sd}");
    }

    #[test]
    fn a_sequence_of_tasks_shifts_nothing_and_names_its_rows() {
        let names = ["SpaceInvaders", "Asterix", "Seaquest"]
            .map(String::from)
            .to_vec();
        let plan = LevelPlan::tasks(names, 500, true);
        assert_eq!((plan.levels(), plan.end_of(1)), (3, 1_000));
        assert!(!plan.shifts() && plan.offset(1).is_none());
        assert_eq!(plan.task(2), Some("Seaquest"));
        assert_eq!(plan.task(3), None);
        let mut rows = [0u8, 1, 1, 0];
        plan.shift(2, &mut rows);
        assert_eq!(rows, [0, 1, 1, 0]);
        let p = LevelProgress {
            level: 1,
            ..LevelProgress::default()
        };
        let (row, next) = p.finish(&plan, 7.5);
        assert_eq!(row.file(), ("games.csv", GAMES_CSV_HEADER));
        assert_eq!(row.csv_line(), "1,Asterix,500,1000,NaN,NaN,7.5");
        assert_eq!(next.level, 2);
        let header_columns = GAMES_CSV_HEADER.split(',').count();
        assert_eq!(row.csv_line().split(',').count(), header_columns);
    }

    #[test]
    fn a_level_row_means_its_episodes_and_its_last_tenth() {
        let plan = LevelPlan::draw(3, 1_000, 1.0, 1, false, &mut Seeds::new(1).levels());
        let mut p = LevelProgress {
            level: 1,
            ..LevelProgress::default()
        };
        p.record(&plan, 10.0, 1_200);
        p.record(&plan, 20.0, 1_900); // the window is (1_900, 2_000]: not in it
        p.record(&plan, 60.0, 1_901);
        p.record(&plan, 80.0, 2_000);
        let (row, next) = p.finish(&plan, 55.0);
        assert_eq!(
            row.csv_line(),
            "1,1000,2000,42.5,70,55",
            "mean of 10, 20, 60, 80; final mean of 60, 80"
        );
        assert_eq!(next.level, 2);
        let (empty, _) = next.finish(&plan, f64::NAN);
        assert!(empty.return_mean.is_nan() && empty.return_final.is_nan());
    }
}
