//! What a method is: the intervention together with the configuration keys that tell runs of
//! that intervention apart, so that runs of different configurations are never pooled.
//!
//! By default ([`assign`] with no keys), a key belongs to the method of an intervention when its
//! value differs between two runs of that intervention on one task (after the relabelling of
//! [`crate::runs::Run::unscheduled`]). Its label then shows every such key the run sets, sorted
//! by name: `fire fire_every=1M`, `fire fire_at=1.25M`, `shrink-perturb shrink=0.4`. Step counts
//! are written as the project writes them (`1M`, `250k`, `1.25M`), lists of one value as that
//! value, other lists in brackets (`hidden=[64;64]`); an empty list or string counts as unset and
//! is left out of the label. When nothing but the intervention differs, the method is the bare
//! intervention name, as before.
//!
//! Never part of a method: the seed, the task keys (`game`, `task`, `env`), `intervention`
//! itself, keys that cannot change results ([`IGNORED`], and paths: `dir`, `path` or names ending
//! in `_dir`, `_path`, `_file`), and, for `none`, the schedule and the intervention's own
//! parameters ([`INTERVENTION_ONLY`]), which do nothing without an intervention.
//!
//! `--method-keys K1,K2` ([`crate::Options::method_keys`]) chooses the keys instead: every
//! method is then the intervention with exactly those keys (still without
//! [`INTERVENTION_ONLY`] for `none`).
//!
//! A run of a sweep's `[variants]` (its directory name has a `variant-<name>` part, see
//! [`variant`]) is labelled by the name its sweep gave it: the variant alone when the run's
//! intervention is `none` or the variant's own name (`l2`, `layer-norm`, `layer-reset`), else
//! `<intervention> variant=<name>`. The keys a variant sets are then explained by its name: a
//! key joins the label only when it differs between runs of one intervention and one variant.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::runs::{parse_step, Domain, Run};

/// Keys that cannot change a run's results: where it runs, how often it logs or checkpoints.
pub const IGNORED: [&str; 15] = [
    "seed",
    "intervention",
    "game",
    "games",
    "task",
    "env",
    "device",
    "torch_threads",
    "env_threads",
    "checkpoint_every",
    "checkpoint_replay",
    "log_every",
    "run_dir",
    "resume",
    "config",
];

/// Keys that only matter when there is an intervention: never part of `none`'s method.
pub const INTERVENTION_ONLY: [&str; 12] = [
    "fire_at",
    "fire_every",
    "fire_when",
    "fire_cooldown",
    "fire_iterations",
    "fire_tol",
    "intervene_at_level",
    "shrink",
    "redo_tau",
    "reset_head",
    "reset_optimizer",
    "sync_target",
];

/// Whether `key` can never be part of a method (see the module documentation).
pub fn ignored(key: &str) -> bool {
    IGNORED.contains(&key)
        || matches!(key, "dir" | "path")
        || key.ends_with("_dir")
        || key.ends_with("_path")
        || key.ends_with("_file")
}

fn counts_for(intervention: &str, key: &str) -> bool {
    !(intervention == "none" && INTERVENTION_ONLY.contains(&key))
}

/// Keys whose integer values are step counts (written `1M`, `250k`).
fn is_step_key(key: &str) -> bool {
    key == "steps"
        || key.ends_with("_steps")
        || key.ends_with("_every")
        || key.ends_with("_at")
        || matches!(key, "fire_cooldown" | "learning_starts" | "buffer_size")
}

/// `1M`, `250k`, `1.25M`, `1234`: as `fire::schedule::format_steps` writes step counts.
pub fn format_steps(steps: u64) -> String {
    for (div, suffix) in [(1_000_000_000u64, "G"), (1_000_000, "M"), (1_000, "k")] {
        if steps >= div {
            let value = steps as f64 / div as f64;
            let text = format!("{value}");
            if text.len() <= 6 && (value * div as f64) as u64 == steps {
                return format!("{text}{suffix}");
            }
        }
    }
    steps.to_string()
}

fn scalar(key: &str, v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) if *i >= 0 && is_step_key(key) => format_steps(*i as u64),
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

/// How a value reads in a label; `None` for an unset one (absent, `[]`, `""`). Lists are
/// joined with `;` and whitespace is dropped, so that a label holds no `,` (a CSV field), no `|`
/// (a Markdown cell) and no space (which separates its keys).
pub fn value_text(key: &str, v: Option<&toml::Value>) -> Option<String> {
    let text = match v? {
        toml::Value::Array(a) if a.is_empty() => return None,
        toml::Value::String(s) if s.trim().is_empty() => return None,
        toml::Value::Array(a) if a.len() == 1 => scalar(key, &a[0]),
        toml::Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(|x| scalar(key, x)).collect();
            format!("[{}]", parts.join(";"))
        }
        other => scalar(key, other),
    };
    Some(
        text.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                ',' => ';',
                '|' => '/',
                c => c,
            })
            .collect(),
    )
}

/// The sweep variant a run belongs to: `l2` for a run directory named
/// `env-CartPole-v1__seed-1__variant-l2` (`sweep` joins its axes' `key-value` parts with `__`).
pub fn variant(run: &Run) -> Option<&str> {
    run.dir
        .file_name()?
        .to_str()?
        .split("__")
        .find_map(|part| part.strip_prefix("variant-"))
        .filter(|name| !name.is_empty())
}

/// The keys of each intervention's methods: those given, or those whose value differs between
/// two runs of the intervention (and of one sweep variant) on one task.
pub fn method_keys(runs: &[Run], given: Option<&[String]>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut groups: BTreeMap<(Domain, &str, &str, Option<&str>), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        out.entry(r.intervention.clone()).or_default();
        groups
            .entry((r.domain, &r.task, &r.intervention, variant(r)))
            .or_default()
            .push(r);
    }
    if let Some(keys) = given {
        for (iv, set) in out.iter_mut() {
            set.extend(keys.iter().filter(|k| counts_for(iv, k)).cloned());
        }
    } else {
        for ((_, _, iv, _), rs) in &groups {
            let keys: BTreeSet<&String> = rs.iter().flat_map(|r| r.config.keys()).collect();
            for k in keys
                .into_iter()
                .filter(|k| !ignored(k) && counts_for(iv, k))
            {
                let values: BTreeSet<Option<String>> =
                    rs.iter().map(|r| value_text(k, r.config.get(k))).collect();
                if values.len() > 1 {
                    out.get_mut(*iv).expect("entered above").insert(k.clone());
                }
            }
        }
    }
    out.into_iter()
        .map(|(iv, keys)| (iv, keys.into_iter().collect()))
        .collect()
}

/// The method label of a run with these keys: `fire fire_every=1M`; for a sweep variant,
/// `l2` or `fire variant=layer-norm` (see the module documentation).
pub fn label(run: &Run, keys: &[String]) -> String {
    let mut s = match variant(run) {
        None => run.intervention.clone(),
        Some(v) if run.intervention == "none" || run.intervention == v => v.to_string(),
        Some(v) => format!("{} variant={v}", run.intervention),
    };
    for k in keys {
        if let Some(v) = value_text(k, run.config.get(k)) {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    s
}

/// Sets every run's [`Run::method`]. With `given` keys, a key no run's config has is an error
/// (a misspelling would otherwise pool everything silently).
pub fn assign(runs: &mut [Run], given: Option<&[String]>) -> Result<()> {
    if let Some(keys) = given {
        let present: BTreeSet<&String> = runs.iter().flat_map(|r| r.config.keys()).collect();
        let missing: Vec<&str> = keys
            .iter()
            .filter(|k| !present.contains(k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let known: Vec<&str> = present
                .iter()
                .filter(|k| !ignored(k))
                .map(|k| k.as_str())
                .collect();
            bail!(
                "--method-keys: no run's config.toml has {} (keys present: {})",
                missing
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                known.join(", ")
            );
        }
    }
    let keys = method_keys(runs, given);
    for r in runs.iter_mut() {
        r.method = label(r, &keys[&r.intervention]);
    }
    Ok(())
}

/// The intervention a method label starts with.
pub fn intervention_of(method: &str) -> &str {
    method.split(' ').next().unwrap_or(method)
}

fn value_number(v: &str) -> Option<f64> {
    parse_step(v)
        .ok()
        .map(|s| s as f64)
        .or_else(|| v.parse::<f64>().ok())
}

/// The display order of methods: by intervention (`none`, `fire`, `full-reset`,
/// `shrink-perturb`, `plasticity-injection`, then the rest alphabetically), then by the keys
/// of the label, numbers by value (`fire_every=250k` before `fire_every=1M`).
pub fn method_cmp(a: &str, b: &str) -> Ordering {
    let (ia, ib) = (intervention_of(a), intervention_of(b));
    let rank = crate::method_rank(ia).cmp(&crate::method_rank(ib));
    let tokens = |m: &str| -> Vec<(String, String)> {
        m.split(' ')
            .skip(1)
            .map(|t| match t.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (t.to_string(), String::new()),
            })
            .collect()
    };
    let (ta, tb) = (tokens(a), tokens(b));
    let mut by_tokens = Ordering::Equal;
    for ((ka, va), (kb, vb)) in ta.iter().zip(&tb) {
        let o = ka.cmp(kb).then_with(|| {
            match (value_number(va), value_number(vb)) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => Ordering::Equal,
            }
            .then_with(|| va.cmp(vb))
        });
        if o != Ordering::Equal {
            by_tokens = o;
            break;
        }
    }
    rank.then_with(|| ia.cmp(ib))
        .then(by_tokens)
        .then_with(|| ta.len().cmp(&tb.len()))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_values_read_as_the_project_writes_them() {
        assert_eq!(format_steps(1_000_000), "1M");
        assert_eq!(format_steps(1_250_000), "1.25M");
        assert_eq!(format_steps(250_000), "250k");
        assert_eq!(format_steps(1234), "1.234k");
        assert_eq!(format_steps(999), "999");
        let v = |t: &str| -> toml::Value { t.parse::<toml::Table>().unwrap()["x"].clone() };
        assert_eq!(
            value_text("fire_every", Some(&v("x = 1000000"))),
            Some("1M".into())
        );
        assert_eq!(
            value_text("fire_at", Some(&v("x = [1250000]"))),
            Some("1.25M".into())
        );
        assert_eq!(value_text("fire_at", Some(&v("x = []"))), None);
        assert_eq!(
            value_text("hidden", Some(&v("x = [64, 64]"))),
            Some("[64;64]".into())
        );
        assert_eq!(
            value_text("fire_when", Some(&v("x = \"dormant_ratio > 0.2\""))),
            Some("dormant_ratio>0.2".into())
        );
        assert_eq!(
            value_text("width", Some(&v("x = 1024"))),
            Some("1024".into())
        );
        assert_eq!(
            value_text("shrink", Some(&v("x = 0.4"))),
            Some("0.4".into())
        );
        assert_eq!(value_text("fire_when", None), None);
    }

    #[test]
    fn order_by_intervention_then_values() {
        let mut v = vec![
            "fire fire_every=1M",
            "redo",
            "none",
            "fire fire_every=250k",
            "full-reset",
            "fire",
        ];
        v.sort_by(|a, b| method_cmp(a, b));
        assert_eq!(
            v,
            [
                "none",
                "fire",
                "fire fire_every=250k",
                "fire fire_every=1M",
                "full-reset",
                "redo"
            ]
        );
    }
}
