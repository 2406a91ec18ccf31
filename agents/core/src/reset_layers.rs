//! The `reset_layers` key of `layer-reset`: which parameters go back to theta_0.
//!
//! A pattern is a [`fire::ParamSelector`] glob, so it names a parameter (`q.head.out.weight`)
//! or a layer or block holding parameters (`q.head.out`, `q.head`, `critic.*`). The key takes a
//! TOML list, or one text of comma-separated patterns as `--set reset_layers=q.head,q.encoder.fc2`
//! gives it (a comma inside a glob's `{a,b}` alternation stays in its pattern).

use fire::ParamSelector;
use serde::de::Deserializer;
use serde::Deserialize;
use tch::Tensor;

use crate::{Error, Result};

/// Serde reader of the key: a list of patterns, or one comma-separated text.
pub fn patterns<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Patterns {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Patterns::deserialize(d)? {
        Patterns::List(list) => list,
        Patterns::Text(text) => split_outside_braces(&text),
    })
}

/// [`patterns`] for a key that may be unset.
pub fn optional_patterns<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<String>>, D::Error> {
    patterns(d).map(Some)
}

/// `a.*, {b,c}.*` -> `["a.*", "{b,c}.*"]`; empty pieces are dropped.
fn split_outside_braces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// Refuses a pattern that matches none of `params` (a typo would otherwise reset nothing,
/// silently); the error lists the network's layers so the fix is one look away.
pub fn check(params: &[(String, Tensor)], patterns: &[String]) -> Result<()> {
    let Some(pattern) = ParamSelector::first_unmatched(patterns, params)? else {
        return Ok(());
    };
    let mut layers: Vec<&str> = params
        .iter()
        .map(|(n, _)| n.rsplit_once('.').map_or(n.as_str(), |(layer, _)| layer))
        .collect();
    layers.dedup();
    Err(Error::Config {
        field: "reset_layers",
        reason: format!(
            "`{pattern}` matches no parameter of this network (its layers: {})",
            layers.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json_value: &str) -> Vec<String> {
        #[derive(Deserialize)]
        struct Key {
            #[serde(deserialize_with = "patterns")]
            reset_layers: Vec<String>,
        }
        let key: Key =
            serde_json::from_str(&format!(r#"{{"reset_layers": {json_value}}}"#)).unwrap();
        key.reset_layers
    }

    #[test]
    fn a_list_one_text_or_comma_separated_text() {
        assert_eq!(
            read(r#"["q.head.*", "q.encoder.fc2"]"#),
            ["q.head.*", "q.encoder.fc2"]
        );
        assert_eq!(read(r#""q.head""#), ["q.head"]);
        assert_eq!(
            read(r#""q.head, q.encoder.fc2,""#),
            ["q.head", "q.encoder.fc2"]
        );
        assert_eq!(
            read(r#""q.{head,encoder}.*,actor""#),
            ["q.{head,encoder}.*", "actor"]
        );
        assert!(read(r#""""#).is_empty());
    }

    fn net() -> Vec<(String, Tensor)> {
        [
            "q.encoder.fc1.weight",
            "q.encoder.fc1.bias",
            "q.head.out.weight",
        ]
        .into_iter()
        .map(|n| (n.to_string(), Tensor::zeros([2, 2], tch::kind::FLOAT_CPU)))
        .collect()
    }

    #[test]
    fn layer_and_block_names_match_their_parameters() {
        let ok = ["q.head.out", "q.head", "q.encoder.fc1.bias", "q.*"].map(String::from);
        check(&net(), &ok).unwrap();
    }

    #[test]
    fn a_pattern_matching_nothing_is_refused_with_the_layers() {
        let err = check(&net(), &["q.head.fc9".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`q.head.fc9` matches no parameter"), "{err}");
        assert!(
            err.contains("its layers: q.encoder.fc1, q.head.out"),
            "{err}"
        );
        // A prefix that stops inside a name is not a layer name.
        assert!(check(&net(), &["q.hea".into()]).is_err());
    }
}
