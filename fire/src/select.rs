//! Which parameters an intervention touches: name globs plus tensor roles.

use globset::{Glob, GlobSet, GlobSetBuilder};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::layer::ParamRole;

/// Selects parameters by name (include and exclude globs) and by [`ParamRole`].
///
/// A parameter is selected when it matches at least one include glob (or there are none),
/// matches no exclude glob, and its role is among the allowed roles (or none were given).
/// Names use the separators of their source: `q.encoder.conv1.weight` for a tch `VarStore`,
/// `features.0.weight` for a PyTorch state dict. `*` matches across separators. A glob matches
/// a parameter when it matches its full name or the name of a module holding it (the name up
/// to a `.`): `q.head` and `q.head.out` select `q.head.out.weight` and `q.head.out.bias`, as the
/// layer names an error lists, but `q.hea` selects nothing.
///
/// ```
/// use fire::{ParamRole, ParamSelector};
/// let convs = ParamSelector::all()
///     .include("q.encoder.*").unwrap()
///     .with_roles(&[ParamRole::ConvWeight]);
/// assert!(convs.matches("q.encoder.conv1.weight", &[32, 4, 8, 8]));
/// assert!(!convs.matches("q.encoder.conv1.bias", &[32]));
/// assert!(!convs.matches("q.head.fc1.weight", &[512, 3136]));
/// let head = ParamSelector::all().include("q.head").unwrap();
/// assert!(head.matches("q.head.fc1.bias", &[512]));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ParamSelector {
    include: Vec<String>,
    exclude: Vec<String>,
    include_set: Option<GlobSet>,
    exclude_set: Option<GlobSet>,
    roles: Vec<ParamRole>,
}

impl ParamSelector {
    /// Every parameter.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds an include glob.
    pub fn include(mut self, pattern: &str) -> Result<Self> {
        self.include.push(pattern.to_owned());
        self.include_set = Some(build(&self.include)?);
        Ok(self)
    }

    /// Adds an exclude glob.
    pub fn exclude(mut self, pattern: &str) -> Result<Self> {
        self.exclude.push(pattern.to_owned());
        self.exclude_set = Some(build(&self.exclude)?);
        Ok(self)
    }

    /// Restricts to these roles (an empty list allows every role).
    pub fn with_roles(mut self, roles: &[ParamRole]) -> Self {
        self.roles = roles.to_vec();
        self
    }

    /// Whether the parameter `name` with `shape` is selected.
    pub fn matches(&self, name: &str, shape: &[i64]) -> bool {
        let included = self.include_set.as_ref().is_none_or(|s| names(s, name));
        let excluded = self.exclude_set.as_ref().is_some_and(|s| names(s, name));
        let role_ok =
            self.roles.is_empty() || self.roles.contains(&ParamRole::classify(name, shape));
        included && !excluded && role_ok
    }

    /// The first of `globs` that selects none of `tensors`. A glob that matches nothing is
    /// almost always a typo, and a caller that refuses it keeps a run from silently changing
    /// less than asked.
    pub fn first_unmatched<'a>(
        globs: &'a [String],
        tensors: &[(String, Tensor)],
    ) -> Result<Option<&'a str>> {
        for glob in globs {
            let one = Self::all().include(glob)?;
            if !tensors.iter().any(|(n, t)| one.matches(n, &t.size())) {
                return Ok(Some(glob));
            }
        }
        Ok(None)
    }
}

/// Whether `set` matches `name` or a module holding it (`q.head`, `q.head.out` for
/// `q.head.out.weight`).
fn names(set: &GlobSet, name: &str) -> bool {
    set.is_match(name)
        || name
            .match_indices('.')
            .any(|(i, _)| set.is_match(&name[..i]))
}

fn build(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|source| Error::Glob {
            pattern: p.clone(),
            source,
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|source| Error::Glob {
        pattern: patterns.join(", "),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_win_over_includes() {
        let s = ParamSelector::all()
            .include("layer*")
            .unwrap()
            .exclude("*.fc.*")
            .unwrap();
        assert!(s.matches("layer1.conv.weight", &[4, 4, 3, 3]));
        assert!(!s.matches("layer1.fc.weight", &[4, 4]));
        assert!(!s.matches("head.weight", &[4, 4]));
    }

    #[test]
    fn a_module_name_selects_the_parameters_it_holds() {
        let s = ParamSelector::all().include("features.0").unwrap();
        assert!(s.matches("features.0.weight", &[4, 4]));
        assert!(s.matches("features.0.bias", &[4]));
        assert!(!s.matches("features.01.weight", &[4, 4]));
        assert!(!s.matches("features.1.weight", &[4, 4]));
        let but_the_bias = ParamSelector::all().exclude("*.bias").unwrap();
        assert!(!but_the_bias.matches("features.0.bias", &[4]));
        assert!(but_the_bias.matches("features.0.weight", &[4, 4]));
    }

    #[test]
    fn the_first_glob_matching_nothing_is_named() {
        let tensors = vec![(
            "q.head.out.weight".to_string(),
            Tensor::zeros([2, 2], tch::kind::FLOAT_CPU),
        )];
        let globs = ["q.head".to_string(), "q.tail".to_string(), "x".to_string()];
        assert_eq!(
            ParamSelector::first_unmatched(&globs, &tensors).unwrap(),
            Some("q.tail")
        );
        assert_eq!(
            ParamSelector::first_unmatched(&globs[..1], &tensors).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_glob_is_an_error() {
        let err = ParamSelector::all().include("a[").unwrap_err();
        assert!(err.to_string().contains("a["), "{err}");
    }
}
