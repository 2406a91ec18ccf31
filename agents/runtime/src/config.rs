//! Run configuration: the [`LoopConfig`] every binary shares, and the machinery that makes a
//! binary's whole configuration out of sections with flat keys.
//!
//! A binary's configuration is a few sections (the loop's, its environment's, its agent's),
//! each a serde struct with `deny_unknown_fields`. Users see one flat key space: in a TOML
//! file (`steps = "2.5M"`, `game = "Breakout"`), in `--set KEY=VALUE`, and in the resolved
//! `config.toml` of a run. [`Sections`] splits a flat table by each section's own field names
//! (read from its `Deserialize` impl, so nothing is listed by hand), deserialises every part
//! (typed, defaults filled in) and names an unknown key with the closest known one.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use fire::schedule::{MetricTrigger, Schedule};
use fire::{DeviceChoice, Method, MethodConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What the training loop needs to know, shared by every binary. Steps are the protocol's unit
/// summed over environments: agent steps for Atari (one is 4 emulator frames) and classic
/// control, environment steps for HumanoidBench (a decision is `action_repeat` of them); they
/// accept `250k`, `1M`, `2.5M`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Seed of everything random in the run (see `runtime::seeds` for the named streams).
    pub seed: u64,
    /// Total agent steps.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub steps: u64,
    /// Parallel training environments.
    pub envs: usize,
    /// Threads stepping the environments.
    pub env_threads: usize,
    /// Actor threads (0 = synchronous: act, step and learn in turn, exactly reproducible).
    pub actors: usize,
    /// Updates between weight publications to the actors.
    pub publish_every: u64,
    /// How many updates actors may run ahead of the replay ratio.
    pub max_lead_updates: u64,
    /// Replay capacity in transitions.
    #[serde(deserialize_with = "steps::usize")]
    #[schemars(with = "u64")]
    pub buffer_size: usize,
    /// Steps of random-policy warm-up before learning.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub learning_starts: u64,
    /// Gradient updates per agent step after the warm-up (0.25: one update per 4 steps).
    pub replay_ratio: f64,
    /// Transitions per gradient update.
    pub batch_size: usize,
    /// n-step returns (1 = one-step TD).
    pub n_step: usize,
    /// Discount of the n-step returns replay computes.
    pub gamma: f64,
    /// Steps between evaluations (0 = never).
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub eval_every: u64,
    /// Agent steps per evaluation, summed over its environments (0 = no limit).
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub eval_steps: u64,
    /// Episodes per evaluation (0 = no limit; with `eval_steps` the first limit reached ends it).
    pub eval_episodes: u64,
    /// Environments an evaluation runs.
    pub eval_envs: usize,
    /// Evaluate again right after every intervention (a scheduled one when `eval_every > 0`;
    /// a level's always, on the level it closed), at the same step and with the same seeds as
    /// the evaluation before it, as the FIRE reference's resume path does, so that
    /// `eval/episodic_return` shows the drop. Reports score the first evaluation at a step.
    /// Turn off for frequent interventions.
    pub eval_after_intervention: bool,
    /// Steps between logged losses and SPS.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub log_every: u64,
    /// Steps between plasticity diagnostics on the probe batch.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub plasticity_every: u64,
    /// Observations in the probe batch the plasticity metrics are measured on. At least the
    /// widest measured layer (512 features in the Nature CNN), or feature ranks are capped by
    /// the probe instead of the network.
    pub probe_size: usize,
    /// `refresh`: a new probe from replay at every measurement (its own generator, seeded by
    /// the step, so training batches are unchanged by it); `fixed`: one probe drawn when
    /// learning starts and kept (saved in checkpoints), for curves on the same inputs.
    pub probe: ProbeMode,
    /// Steps between checkpoints (0 = only at the end and on Ctrl-C/SIGTERM).
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub checkpoint_every: u64,
    /// Save the replay buffer with checkpoints (large for Atari: about 7 KB per transition).
    pub checkpoint_replay: bool,
    /// The intervention the schedule triggers: none, fire (the paper's, the default), fire-exact,
    /// fire-tol, full-reset, shrink-perturb (`shrink`), redo (`redo_tau`),
    /// plasticity-injection (once), layer-reset (`reset_layers`).
    #[schemars(with = "String")]
    pub intervention: Method,
    /// Intervene at these steps.
    #[serde(deserialize_with = "steps::list")]
    #[schemars(with = "Vec<u64>")]
    pub fire_at: Vec<u64>,
    /// Intervene every this many steps.
    #[serde(deserialize_with = "steps::optional")]
    #[schemars(with = "Option<u64>")]
    pub fire_every: Option<u64>,
    /// Intervene when a plasticity metric crosses a threshold, e.g. `dormant_ratio>0.2`.
    pub fire_when: Option<String>,
    /// Minimum steps between two metric-triggered interventions.
    #[serde(deserialize_with = "steps::one")]
    #[schemars(with = "u64")]
    pub fire_cooldown: u64,
    /// Newton–Schulz iterations of `fire` (the paper: 10; `fire-exact` is the SVD factor).
    pub fire_iterations: usize,
    /// Target DfI per column of `fire-tol`.
    pub fire_tol: f64,
    /// lambda of shrink & perturb.
    pub shrink: f64,
    /// ReDo's dormancy threshold.
    pub redo_tau: f64,
    /// Where the networks run: auto, cpu, cuda.
    #[schemars(with = "String")]
    pub device: DeviceChoice,
    /// libtorch's CPU threads (0 = its default, one per core). Small networks run fastest,
    /// and repeat exactly, on 1.
    pub torch_threads: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        let method = MethodConfig::default();
        Self {
            seed: 1,
            steps: 2_500_000,
            envs: 4,
            env_threads: 2,
            actors: 0,
            publish_every: 100,
            max_lead_updates: 8,
            buffer_size: 1_000_000,
            learning_starts: 20_000,
            replay_ratio: 0.25,
            batch_size: 32,
            n_step: 1,
            gamma: 0.99,
            eval_every: 250_000,
            eval_steps: 125_000,
            eval_episodes: 0,
            eval_envs: 1,
            eval_after_intervention: true,
            log_every: 1_000,
            plasticity_every: 10_000,
            probe_size: 1024,
            probe: ProbeMode::Refresh,
            checkpoint_every: 100_000,
            checkpoint_replay: false,
            intervention: Method::Fire,
            fire_at: Vec::new(),
            fire_every: None,
            fire_when: None,
            fire_cooldown: 0,
            fire_iterations: method.fire_iterations,
            fire_tol: method.fire_tol,
            shrink: method.shrink,
            redo_tau: method.redo_tau,
            device: DeviceChoice::Auto,
            torch_threads: 0,
        }
    }
}

/// Where the plasticity probe batch comes from (see [`LoopConfig::probe`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeMode {
    /// A fresh sample from replay at every measurement.
    #[default]
    Refresh,
    /// One sample when learning starts, kept for the whole run.
    Fixed,
}

impl LoopConfig {
    /// Checks every value; `metrics` are the names a `fire_when` trigger may watch.
    pub fn validate(&self, metrics: &[&str]) -> Result<()> {
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
            self.replay_ratio.is_finite() && self.replay_ratio > 0.0 && self.replay_ratio <= 64.0,
            "replay_ratio must be in (0, 64] updates per step, got {}",
            self.replay_ratio
        );
        ensure!(self.batch_size >= 1, "batch_size must be at least 1");
        ensure!(
            (1..=100).contains(&self.n_step),
            "n_step must be in 1..=100"
        );
        ensure!((0.0..=1.0).contains(&self.gamma), "gamma must be in [0, 1]");
        ensure!(
            self.eval_every == 0 || self.eval_steps > 0 || self.eval_episodes > 0,
            "an evaluation needs eval_steps or eval_episodes"
        );
        ensure!(self.eval_envs >= 1, "eval_envs must be at least 1");
        ensure!(
            (1..=65_536).contains(&self.probe_size),
            "probe_size must be in 1..=65536, got {}",
            self.probe_size
        );
        ensure!(
            self.log_every >= 1 && self.plasticity_every >= 1,
            "log_every and plasticity_every must be positive"
        );
        if let Some(every) = self.fire_every {
            ensure!(
                (1..=self.steps).contains(&every),
                "fire_every {every} must be in 1..=steps ({}): it would never fire",
                self.steps
            );
        }
        for &at in &self.fire_at {
            ensure!(
                (1..=self.steps).contains(&at),
                "fire_at {at} must be in 1..=steps ({}): it would never fire",
                self.steps
            );
        }
        self.schedules(metrics)?;
        if self.intervention == Method::PlasticityInjection {
            ensure!(
                self.fire_every.is_none() && self.fire_when.is_none() && self.fire_at.len() <= 1,
                "plasticity-injection is applied once: schedule it with a single fire_at"
            );
        }
        self.method().validate()?;
        self.device.resolve()?;
        Ok(())
    }

    /// The intervention and its numbers.
    pub fn method(&self) -> MethodConfig {
        MethodConfig {
            method: self.intervention,
            fire_iterations: self.fire_iterations,
            fire_tol: self.fire_tol,
            shrink: self.shrink,
            redo_tau: self.redo_tau,
        }
    }

    /// The schedules of the intervention (none when it is `none`).
    pub fn schedules(&self, metrics: &[&str]) -> Result<Vec<Schedule>> {
        if self.intervention == Method::None {
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
                metrics.contains(&trigger.metric.as_str()),
                "fire_when: unknown metric `{}` (one of: {})",
                trigger.metric,
                metrics.join(", ")
            );
            trigger.cooldown = self.fire_cooldown;
            out.push(Schedule::OnMetric(trigger));
        }
        Ok(out)
    }

    /// The schedule in words, for the start-up line.
    pub fn schedule_text(&self, metrics: &[&str]) -> Result<String> {
        let rules: Vec<String> = self
            .schedules(metrics)?
            .iter()
            .map(|s| s.to_string())
            .collect();
        Ok(if rules.is_empty() {
            "no schedule: never applied".into()
        } else {
            rules.join("; ")
        })
    }
}

/// Memory the kernel says is available (`MemAvailable` of `/proc/meminfo`), in bytes; `None`
/// where that cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// An error when `bytes` for `what` exceed the available memory, with both numbers.
pub fn check_memory(what: &str, bytes: u64) -> Result<()> {
    if let Some(available) = available_memory() {
        ensure!(
            bytes <= available,
            "{what} needs {:.1} GB of memory; {:.1} GB is available",
            bytes as f64 / 1e9,
            available as f64 / 1e9
        );
    }
    Ok(())
}

/// Serde helpers for step counts: an integer, or text as `fire::parse_steps` reads it
/// (`"2.5M"`, `"250k"`, `"1_000_000"`); lists also as one comma-separated text.
pub mod steps {
    use serde::de::{Deserializer, Error};
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Negative(i64),
        Fraction(f64),
        Text(String),
    }

    fn count<E: Error>(c: Count) -> Result<u64, E> {
        match c {
            Count::Number(n) => Ok(n),
            Count::Negative(n) => Err(E::custom(format!(
                "{n} is negative: a step count is a whole number of at least 0"
            ))),
            Count::Fraction(x) => Err(E::custom(format!(
                "{x} is not a whole number of steps (2.5M is written as text: \"2.5M\")"
            ))),
            Count::Text(t) => fire::parse_steps(&t).map_err(|e| E::custom(e.to_string())),
        }
    }

    /// One count.
    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        count(Count::deserialize(d)?)
    }

    /// One count as `usize`.
    pub fn usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let n = one(d)?;
        usize::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
    }

    /// An optional count.
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<Count>::deserialize(d)?.map(count).transpose()
    }

    /// A list of counts: an array, one count, or comma-separated text.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Many {
            List(Vec<Count>),
            One(Count),
        }
        match Many::deserialize(d)? {
            Many::List(items) => items.into_iter().map(count).collect(),
            Many::One(Count::Text(t)) => t
                .split(',')
                .map(|s| count(Count::Text(s.trim().to_owned())))
                .collect(),
            Many::One(one) => Ok(vec![count(one)?]),
        }
    }
}

/// The field names of a `Deserialize` struct, read from its derived impl (serde passes them to
/// `deserialize_struct`), so the key list cannot drift from the type.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Grab(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Grab {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("field names only"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("field names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut grab = Grab(None);
    let _ = T::deserialize(&mut grab);
    grab.0.unwrap_or(&[])
}

/// A binary's configuration as sections with one flat key space (see the module docs).
pub trait Sections: Sized + Default {
    /// Every key, in section order.
    fn keys() -> Vec<&'static str>;
    /// Builds the configuration from a flat table (missing keys take defaults).
    fn from_table(table: toml::Table) -> Result<Self>;
    /// The flat table of every key (what `config.toml` holds).
    fn to_table(&self) -> Result<toml::Table>;
    /// Every key with the first paragraph of its doc comment, from the section types.
    fn key_docs() -> Vec<(String, String)>;
}

/// Implements [`Sections`] for a struct whose fields are sections.
#[macro_export]
macro_rules! sections {
    ($ty:ty { $($field:ident : $section:ty),+ $(,)? }) => {
        impl $crate::config::Sections for $ty {
            fn keys() -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(keys.extend_from_slice($crate::config::field_names::<$section>());)+
                keys
            }
            fn from_table(mut table: toml::Table) -> anyhow::Result<Self> {
                $crate::config::reject_unknown(&table, &Self::keys())?;
                let defaults = Self::default();
                Ok(Self {
                    $($field: $crate::config::section::<$section>(&mut table, &defaults.$field)?,)+
                })
            }
            fn to_table(&self) -> anyhow::Result<toml::Table> {
                let mut table = toml::Table::new();
                $(table.extend($crate::config::table_of(&self.$field)?);)+
                Ok(table)
            }
            fn key_docs() -> Vec<(String, String)> {
                let mut docs = Vec::new();
                $(docs.extend($crate::config::docs_of::<$section>());)+
                docs
            }
        }
    };
}

/// A section's keys with their doc comments (as the JSON schema derived from the type holds
/// them), in declaration order.
pub fn docs_of<S: DeserializeOwned + schemars::JsonSchema>() -> Vec<(String, String)> {
    let schema = schemars::schema_for!(S);
    let properties = schema.as_value().get("properties");
    field_names::<S>()
        .iter()
        .map(|&key| {
            let doc = properties
                .and_then(|p| p.get(key))
                .and_then(|p| p.get("description"))
                .and_then(|d| d.as_str())
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (key.to_owned(), doc)
        })
        .collect()
}

/// An error for the first key not in `keys`, suggesting the closest.
pub fn reject_unknown(table: &toml::Table, keys: &[&str]) -> Result<()> {
    for key in table.keys() {
        if !keys.contains(&key.as_str()) {
            let closest = keys
                .iter()
                .min_by_key(|k| edit_distance(k, key))
                .filter(|k| edit_distance(k, key) <= 3);
            let hint = match closest {
                Some(k) => format!("did you mean `{k}`? "),
                None => String::new(),
            };
            if key == "steps_per_update" {
                bail!("unknown key `steps_per_update`: it was replaced by `replay_ratio` (updates per step, = 1 / steps_per_update)");
            }
            bail!(
                "unknown key `{key}` ({hint}known keys: {})",
                keys.join(", ")
            );
        }
    }
    Ok(())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Takes a section's keys out of `table` and deserialises them over `defaults`.
pub fn section<S: Serialize + DeserializeOwned>(
    table: &mut toml::Table,
    defaults: &S,
) -> Result<S> {
    let mut part = table_of(defaults)?;
    for &key in field_names::<S>() {
        if let Some(v) = table.remove(key) {
            part.insert(key.to_owned(), v);
        }
    }
    S::deserialize(toml::Value::Table(part)).map_err(|e| anyhow!("{}", one_line(&e.to_string())))
}

/// A section as a flat table (absent optional values are left out).
pub fn table_of<S: Serialize>(section: &S) -> Result<toml::Table> {
    match toml::Value::try_from(section).context("serialising a config section")? {
        toml::Value::Table(t) => Ok(t),
        _ => bail!("a config section must serialise to a table"),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads a TOML file into a flat table.
pub fn read_table(path: &Path) -> Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), one_line(&e.to_string())))
}

/// Applies one `KEY=VALUE` override: VALUE is read as a TOML value (`3`, `0.5`, `true`,
/// `[1, 2]`, `"text"`), and as text when it is not one (`game=Breakout`, `steps=2.5M`).
/// Returns the key.
pub fn apply_set(table: &mut toml::Table, assignment: &str, keys: &[&str]) -> Result<String> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| anyhow!("--set {assignment}: expected KEY=VALUE"))?;
    let key = key.trim();
    let mut probe = toml::Table::new();
    probe.insert(key.to_owned(), toml::Value::Boolean(true));
    reject_unknown(&probe, keys)?;
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    table.insert(key.to_owned(), parsed);
    Ok(key.to_owned())
}

/// Keys whose values differ between two tables (for "what changed" messages).
pub fn changed_keys(a: &toml::Table, b: &toml::Table) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Both {
        run: LoopConfig,
        extra: Extra,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Extra {
        /// The game.
        game: String,
        /// A rate.
        rate: f64,
    }

    impl Default for Extra {
        fn default() -> Self {
            Self {
                game: "Pong".into(),
                rate: 0.5,
            }
        }
    }

    crate::sections!(Both {
        run: LoopConfig,
        extra: Extra
    });

    #[test]
    fn field_names_come_from_the_type() {
        let names = field_names::<Extra>();
        assert_eq!(names, ["game", "rate"]);
        assert!(Both::keys().contains(&"fire_every") && Both::keys().contains(&"game"));
        let docs = Both::key_docs();
        assert_eq!(docs.len(), Both::keys().len());
        let doc = |k: &str| docs.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(doc("rate"), "A rate.");
        assert!(
            doc("steps").starts_with("Total agent steps"),
            "{}",
            doc("steps")
        );
    }

    #[test]
    fn set_round_trips_every_kind_of_value() {
        let keys = Both::keys();
        let mut t = toml::Table::new();
        for s in [
            "steps=2.5M",
            "seed=7",
            "game=Breakout",
            "rate=0.25",
            "checkpoint_replay=true",
            "fire_at=1M,2M",
            "fire_every=500k",
            "intervention=full-reset",
            "fire_when=dormant_ratio>0.2",
            "device=cpu",
        ] {
            apply_set(&mut t, s, &keys).unwrap();
        }
        let cfg = Both::from_table(t).unwrap();
        assert_eq!(cfg.run.steps, 2_500_000);
        assert_eq!(cfg.run.seed, 7);
        assert_eq!(cfg.extra.game, "Breakout");
        assert_eq!(cfg.extra.rate, 0.25);
        assert!(cfg.run.checkpoint_replay);
        assert_eq!(cfg.run.fire_at, [1_000_000, 2_000_000]);
        assert_eq!(cfg.run.fire_every, Some(500_000));
        assert_eq!(cfg.run.intervention, Method::FullReset);
        assert_eq!(cfg.run.fire_when.as_deref(), Some("dormant_ratio>0.2"));
        assert_eq!(cfg.run.device, DeviceChoice::Cpu);
        // The resolved table reads back to the same configuration.
        let again = Both::from_table(cfg.to_table().unwrap()).unwrap();
        assert_eq!(again.run, cfg.run);
        assert_eq!(again.extra, cfg.extra);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let keys = Both::keys();
        let mut t = toml::Table::new();
        let err = apply_set(&mut t, "fire_evry=1M", &keys)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fire_evry") && err.contains("did you mean `fire_every`"),
            "{err}"
        );
        apply_set(&mut t, "steps=lots", &keys).unwrap();
        let err = Both::from_table(t).unwrap_err().to_string();
        assert!(err.contains("steps"), "{err}");
        let mut t = toml::Table::new();
        apply_set(&mut t, "intervention=reboot", &keys).unwrap();
        let err = Both::from_table(t).unwrap_err().to_string();
        assert!(
            err.contains("intervention") && err.contains("full-reset"),
            "{err}"
        );
        assert!(apply_set(&mut toml::Table::new(), "steps", &keys).is_err());
    }
}
