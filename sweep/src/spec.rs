//! The sweep file: its fields, the grid's cross product, the run names, and what changed
//! between two versions of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The axis `[variants]` adds to the grid.
pub const VARIANT: &str = "variant";

/// The training binaries a sweep can run.
pub const BINARIES: &[&str] = &["atari", "classic", "humanoid", "minatar"];

/// A sweep file (`SWEEP.toml`). Unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The sweep's name: its directory is `results/sweeps/<name>/`.
    pub name: String,
    /// The training binary: `atari`, `classic`, `humanoid` or `minatar`.
    pub binary: String,
    /// An optional base configuration file (relative paths: to the current directory).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Keys every run gets, as `--set KEY=VALUE`.
    #[serde(default)]
    pub set: toml::Table,
    /// Keys whose lists are crossed: one run per combination.
    pub grid: toml::Table,
    /// Named sets of keys (`[variants]`, `name = { key = value, ... }`) crossed with the grid
    /// as one more axis, `variant`: for methods that differ in other keys than one grid key
    /// would vary (a regulariser, an architecture, an intervention with its own keys). The
    /// run name shows `variant-<name>`; `[[when]]` may match `variant = "<name>"`.
    #[serde(default)]
    pub variants: toml::Table,
    /// Settings that depend on grid values (`[[when]]` tables), in file order.
    #[serde(default)]
    pub when: Vec<When>,
    /// Resources of the Slurm executor.
    #[serde(default)]
    pub slurm: SlurmSpec,
}

/// `[[when]]`: keys for the grid points whose values match, or none of those points.
///
/// ```toml
/// [[when]]
/// match = { env = "Pendulum-v1" }              # every key a [grid] key, one value each
/// set = { levels = 5, level_steps = "3k" }     # added to those points' --set (not to names)
/// [[when]]
/// match = { env = "Pendulum-v1", intervention = "redo" }
/// skip = true                                  # no such run
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Grid key -> the value a point must have.
    #[serde(rename = "match")]
    pub matches: toml::Table,
    /// Keys those points get (after `[set]`, before the grid's own values).
    #[serde(default)]
    pub set: toml::Table,
    /// Drop those points from the sweep.
    #[serde(default)]
    pub skip: bool,
}

impl When {
    fn applies_to(&self, values: &[(String, toml::Value)]) -> bool {
        self.matches
            .iter()
            .all(|(k, want)| values.iter().any(|(key, v)| key == k && v == want))
    }
}

/// `[slurm]`: what each array task asks for. Empty strings and zeros are left to the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSpec {
    /// `--cpus-per-task`.
    pub cpus_per_task: u32,
    /// GPUs per task (`--gres=gpu:N`); 0 asks for none.
    pub gpus: u32,
    /// `--mem`, e.g. `32G`; empty: the cluster default.
    pub mem: String,
    /// `--time`, e.g. `6:00:00`; empty: the partition's limit.
    pub time: String,
    /// At most this many tasks of an array at once (`--array=0-N%max`); 0: no limit.
    pub max_concurrent: u32,
    /// `--partition`; empty: the cluster default.
    pub partition: String,
    /// More `sbatch` arguments, each one word, e.g. `"--requeue"`, `"--account=abc"`.
    pub extra: Vec<String>,
    /// Times a run stopped by the time limit (`time`) with a checkpoint is resubmitted by the
    /// same `sweep run` to resume; 0: never.
    pub max_resubmits: u32,
}

impl Default for SlurmSpec {
    fn default() -> Self {
        Self {
            cpus_per_task: 1,
            gpus: 0,
            mem: String::new(),
            time: String::new(),
            max_concurrent: 0,
            partition: String::new(),
            extra: Vec::new(),
            max_resubmits: 3,
        }
    }
}

/// One grid point: its stable name and the `KEY=VALUE` assignments of its grid values.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// `key-value` pairs joined by `__` in key order, e.g. `env-CartPole-v1__seed-3`.
    pub name: String,
    /// The grid's values of this point, in key order.
    pub values: Vec<(String, toml::Value)>,
}

impl Spec {
    /// Parses a sweep file's text and checks it.
    pub fn parse(text: &str) -> Result<Self> {
        let spec: Spec = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}", e.to_string().lines().collect::<Vec<_>>().join(" "))
        })?;
        spec.check()?;
        Ok(spec)
    }

    /// Reads and checks a sweep file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a valid sweep file", path.display()))
    }

    fn check(&self) -> Result<()> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || self.name.starts_with('.')
        {
            bail!(
                "name `{}` must be letters, digits, `-`, `_` or `.` (it names the sweep's directory)",
                self.name
            );
        }
        if !BINARIES.contains(&self.binary.as_str()) {
            bail!(
                "binary `{}` is not a training binary (one of: {})",
                self.binary,
                BINARIES.join(", ")
            );
        }
        if self.grid.is_empty() {
            bail!("[grid] is empty: give at least one key with a list of values");
        }
        for (key, value) in &self.grid {
            match value {
                toml::Value::Array(a) if !a.is_empty() => {}
                toml::Value::Array(_) => bail!("[grid] {key} is an empty list"),
                _ => bail!("[grid] {key} must be a list of values, e.g. {key} = [1, 2, 3]"),
            }
            if self.set.contains_key(key) {
                bail!("key `{key}` is in both [set] and [grid]");
            }
        }
        for (key, value) in self.set.iter().chain(self.grid.iter()) {
            if matches!(value, toml::Value::Table(_)) {
                bail!("key `{key}`: tables are not configuration values");
            }
        }
        if self.grid.contains_key(VARIANT) {
            bail!("[grid] key `{VARIANT}` names the [variants] axis; rename it");
        }
        for (name, keys) in &self.variants {
            let Some(keys) = keys.as_table() else {
                bail!("[variants] {name} must be a table of keys, e.g. {name} = {{ regularizer = \"l2\" }}");
            };
            for (key, value) in keys {
                if self.grid.contains_key(key) {
                    bail!("[variants] {name}: key `{key}` is also in [grid]");
                }
                if matches!(value, toml::Value::Table(_)) {
                    bail!("[variants] {name}: key `{key}`: tables are not configuration values");
                }
            }
        }
        for (i, when) in self.when.iter().enumerate() {
            let n = i + 1;
            if when.matches.is_empty() {
                bail!("[[when]] {n}: `match` is empty (it would apply to every point: use [set])");
            }
            let axes = self.axes();
            for (key, value) in &when.matches {
                let Some(values) = axes.get(key).and_then(|v| v.as_array()) else {
                    bail!("[[when]] {n}: match key `{key}` is not a [grid] key");
                };
                if !values.contains(value) {
                    bail!("[[when]] {n}: {key} = {value} is not one of the grid's values");
                }
            }
            if when.skip != when.set.is_empty() {
                bail!("[[when]] {n}: give either `set` or `skip = true`");
            }
            for (key, value) in &when.set {
                if self.grid.contains_key(key) {
                    bail!("[[when]] {n}: key `{key}` is also in [grid]");
                }
                if matches!(value, toml::Value::Table(_)) {
                    bail!("[[when]] {n}: key `{key}`: tables are not configuration values");
                }
            }
        }
        let points = self.points();
        if points.is_empty() {
            bail!("[[when]] skips every grid point: nothing to run");
        }
        let mut seen = BTreeMap::new();
        for p in &points {
            if let Some(prev) = seen.insert(p.name.clone(), p.values.clone()) {
                bail!(
                    "two grid points get the same run name `{}` ({} and {}): make the values differ in letters or digits",
                    p.name,
                    describe(&prev),
                    describe(&p.values)
                );
            }
        }
        Ok(())
    }

    /// The grid, with the variants' names as the axis `variant` when there are any.
    fn axes(&self) -> toml::Table {
        let mut axes = self.grid.clone();
        if !self.variants.is_empty() {
            let names = self.variants.keys().map(|n| toml::Value::String(n.clone()));
            axes.insert(VARIANT.into(), toml::Value::Array(names.collect()));
        }
        axes
    }

    /// The grid's keys in order (`variant` among them when there are variants).
    pub fn grid_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.axes().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The keys of a point's variant (none without variants).
    fn variant_keys(&self, point: &Point) -> Vec<(&String, &toml::Value)> {
        let name = point
            .values
            .iter()
            .find(|(k, _)| k == VARIANT)
            .map(|(_, v)| plain(v));
        match name
            .and_then(|n| self.variants.get(&n))
            .and_then(|v| v.as_table())
        {
            Some(keys) => keys.iter().collect(),
            None => Vec::new(),
        }
    }

    /// The cross product of the grid, each key's values in file order, the last key (in name
    /// order) slowest: with `seed` last, every method and task gets its first seed before any
    /// gets a second, so a sweep stopped early still compares like with like.
    pub fn points(&self) -> Vec<Point> {
        let keys = self.grid_keys();
        let axes = self.axes();
        let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
        for key in keys.iter().rev() {
            let values = axes[key].as_array().cloned().unwrap_or_default();
            let mut next = Vec::with_capacity(combos.len() * values.len());
            for combo in &combos {
                for v in &values {
                    let mut c = combo.clone();
                    c.push((key.clone(), v.clone()));
                    next.push(c);
                }
            }
            combos = next;
        }
        combos
            .into_iter()
            .map(|mut values| {
                values.reverse();
                values
            })
            .filter(|values| !self.when.iter().any(|w| w.skip && w.applies_to(values)))
            .map(|values| Point {
                name: values
                    .iter()
                    .map(|(k, v)| format!("{}-{}", sanitize(k), sanitize(&plain(v))))
                    .collect::<Vec<_>>()
                    .join("__"),
                values,
            })
            .collect()
    }

    /// The `--set` assignments of a point: `[set]` first, then its variant's keys, then the
    /// `set` of every `[[when]]` that matches it (in file order, so a later one wins), then its
    /// grid values.
    pub fn assignments(&self, point: &Point) -> Vec<String> {
        let mut fixed: Vec<(&String, &toml::Value)> = self.set.iter().collect();
        fixed.sort_by(|a, b| a.0.cmp(b.0));
        fixed.extend(self.variant_keys(point));
        let conditional = self
            .when
            .iter()
            .filter(|w| w.applies_to(&point.values))
            .flat_map(|w| w.set.iter());
        fixed
            .into_iter()
            .chain(conditional)
            .chain(
                point
                    .values
                    .iter()
                    .filter(|(k, _)| k != VARIANT)
                    .map(|(k, v)| (k, v)),
            )
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// What differs between `self` (the sweep directory's copy) and `new`, one item per field
    /// or key, e.g. `grid.seed: [1, 2] -> [1, 2, 3]`. `[slurm]` is not compared: resources
    /// do not change results, and a resubmission may need more time or memory.
    pub fn changes(&self, new: &Spec) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: {a} -> {b}"));
            }
        };
        field("name", self.name.clone(), new.name.clone());
        field("binary", self.binary.clone(), new.binary.clone());
        let show = |c: &Option<PathBuf>| {
            c.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none)".into())
        };
        field("config", show(&self.config), show(&new.config));
        for (section, a, b) in [
            ("set", &self.set, &new.set),
            ("grid", &self.grid, &new.grid),
            ("variants", &self.variants, &new.variants),
        ] {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let s = |v: Option<&toml::Value>| {
                    v.map(|v| v.to_string())
                        .unwrap_or_else(|| "(absent)".into())
                };
                field(&format!("{section}.{k}"), s(a.get(k)), s(b.get(k)));
            }
        }
        let whens = |w: &[When]| {
            toml::Value::try_from(w)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        field("when", whens(&self.when), whens(&new.when));
        out
    }
}

/// A value as a run name shows it: strings without quotes.
fn plain(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// Letters, digits, `.`, `+` and `-` kept; anything else becomes `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn describe(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A step count from a config value: an integer, or text like `250k`, `2.5M`.
pub fn steps_value(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Some(*i as u64),
        toml::Value::Float(f) if *f >= 0.0 => Some(*f as u64),
        toml::Value::String(s) => {
            let s = s.trim().replace('_', "");
            let (num, mult) = match s.chars().last()? {
                'k' | 'K' => (&s[..s.len() - 1], 1e3),
                'm' | 'M' => (&s[..s.len() - 1], 1e6),
                'g' | 'G' | 'b' | 'B' => (&s[..s.len() - 1], 1e9),
                _ => (s.as_str(), 1.0),
            };
            num.parse::<f64>().ok().map(|x| (x * mult).round() as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
binary = "classic"
[set]
steps = "2.5M"
[grid]
seed = [1, 2]
intervention = ["none", "fire"]
"#;

    #[test]
    fn grid_is_the_cross_product_with_stable_names() {
        let s = Spec::parse(SPEC).unwrap();
        let names: Vec<String> = s.points().into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "intervention-none__seed-1",
                "intervention-fire__seed-1",
                "intervention-none__seed-2",
                "intervention-fire__seed-2"
            ]
        );
        let p = &s.points()[1];
        assert_eq!(
            s.assignments(p),
            ["steps=\"2.5M\"", "intervention=\"fire\"", "seed=1"]
        );
    }

    #[test]
    fn bad_specs_say_why() {
        let err = |t: &str| Spec::parse(t).unwrap_err().to_string();
        assert!(err("name = \"a\"\nbinary = \"dqn\"\n[grid]\nseed=[1]").contains("binary `dqn`"));
        assert!(err("name = \"a b\"\nbinary = \"classic\"\n[grid]\nseed=[1]").contains("name"));
        assert!(err("name = \"a\"\nbinary = \"classic\"\n[grid]\nseed=1").contains("list"));
        assert!(err("name = \"a\"\nbinary = \"classic\"\n[grid]\nseed=[]").contains("empty"));
        assert!(
            err("name = \"a\"\nbinary = \"classic\"\n[set]\nseed=1\n[grid]\nseed=[1]")
                .contains("both")
        );
        assert!(
            err("name = \"a\"\nbinary = \"classic\"\ntypo = 1\n[grid]\nseed=[1]").contains("typo")
        );
        assert!(
            err("name = \"a\"\nbinary = \"classic\"\n[grid]\nx=[\"a b\", \"a_b\"]")
                .contains("same run name")
        );
    }

    #[test]
    fn when_sets_keys_of_matching_points_and_skips() {
        let s = Spec::parse(&format!(
            "{SPEC}\n[[when]]\nmatch = {{ intervention = \"fire\" }}\nset = {{ shrink = 0.5 }}\n\
             [[when]]\nmatch = {{ intervention = \"fire\", seed = 2 }}\nskip = true\n"
        ))
        .unwrap();
        let names: Vec<String> = s.points().into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "intervention-none__seed-1",
                "intervention-fire__seed-1",
                "intervention-none__seed-2"
            ]
        );
        let p = s.points();
        assert_eq!(
            s.assignments(&p[1]),
            [
                "steps=\"2.5M\"",
                "shrink=0.5",
                "intervention=\"fire\"",
                "seed=1"
            ]
        );
        assert_eq!(s.assignments(&p[0]).len(), 3, "none gets no shrink");
        let err = |extra: &str| {
            Spec::parse(&format!("{SPEC}\n{extra}"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("[[when]]\nmatch = { env = \"x\" }\nset = { a = 1 }").contains("not a [grid] key")
        );
        assert!(err("[[when]]\nmatch = { seed = 9 }\nset = { a = 1 }").contains("not one of"));
        assert!(
            err("[[when]]\nmatch = { seed = 1 }\nset = { seed = 3 }").contains("also in [grid]")
        );
        assert!(err("[[when]]\nmatch = { seed = 1 }").contains("either `set` or `skip"));
        assert!(err("[[when]]\nmatch = { seed = 1 }\nskip = true\n[[when]]\nmatch = { seed = 2 }\nskip = true")
            .contains("skips every grid point"));
        let mut b = s.clone();
        b.when.pop();
        assert_eq!(s.changes(&b).len(), 1, "{:?}", s.changes(&b));
        assert!(s.changes(&b)[0].starts_with("when: "));
    }

    #[test]
    fn changes_name_what_changed() {
        let a = Spec::parse(SPEC).unwrap();
        let mut b = a.clone();
        b.grid.insert(
            "seed".into(),
            toml::Value::Array(vec![1.into(), 2.into(), 3.into()]),
        );
        b.set.remove("steps");
        b.slurm.mem = "8G".into();
        assert_eq!(
            a.changes(&b),
            [
                "set.steps: \"2.5M\" -> (absent)",
                "grid.seed: [1, 2] -> [1, 2, 3]"
            ]
        );
        assert!(a.changes(&a).is_empty());
    }

    #[test]
    fn step_counts() {
        assert_eq!(steps_value(&toml::Value::from("2.5M")), Some(2_500_000));
        assert_eq!(steps_value(&toml::Value::from("250k")), Some(250_000));
        assert_eq!(steps_value(&toml::Value::from(60000)), Some(60_000));
        assert_eq!(steps_value(&toml::Value::from("x")), None);
    }

    #[test]
    fn variants_are_one_more_axis_with_their_keys_before_when_and_grid_values() {
        let spec = Spec::parse(
            r#"
name = "v"
binary = "classic"
[set]
steps = "2k"
[grid]
seed = [1, 2]
[variants]
l2 = { regularizer = "l2" }
reset = { intervention = "layer-reset", fire_every = "1k" }
[[when]]
match = { variant = "reset", seed = 2 }
set = { fire_every = "500" }
"#,
        )
        .unwrap();
        let points = spec.points();
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "seed-1__variant-l2",
                "seed-2__variant-l2",
                "seed-1__variant-reset",
                "seed-2__variant-reset"
            ]
        );
        assert_eq!(
            spec.assignments(&points[0]),
            ["steps=\"2k\"", "regularizer=\"l2\"", "seed=1"]
        );
        // The variant's keys, then the matching [[when]], which wins, then the grid's values;
        // `variant` itself is no configuration key.
        assert_eq!(
            spec.assignments(&points[3]),
            [
                "steps=\"2k\"",
                "fire_every=\"1k\"",
                "intervention=\"layer-reset\"",
                "fire_every=\"500\"",
                "seed=2"
            ]
        );
        let bad = |extra: &str| {
            let text = format!("name = \"v\"\nbinary = \"classic\"\n{extra}");
            Spec::parse(&text).unwrap_err().to_string()
        };
        assert!(bad("[grid]\nseed = [1]\n[variants]\nx = 3").contains("table of keys"));
        assert!(bad("[grid]\nseed = [1]\n[variants]\nx = { seed = 2 }").contains("also in [grid]"));
        assert!(bad("[grid]\nvariant = [1]").contains("rename"));
    }
}
