//! ReDo (Sokar et al., 2023) on a chain of layers, with the optimiser forgetting what the
//! recycled neurons learned: the one place every agent gets it from.

use std::collections::BTreeMap;

use fire::redo::{redo, zero_incoming, zero_outgoing, RedoLayer};
use fire::{Action, ParamReport, ParamSnapshot};
use tch::Tensor;

use crate::{Adam, Error, Result};

/// Recycles the tau-dormant neurons of every hidden layer of a chain.
///
/// `layers` are parameter prefixes input to output (`q.encoder.conv1`, ..., `q.head.fc2`), each
/// with a `.weight` and a `.bias` in `vars`; `hidden[k]` are the activations layer `k` produced
/// (so `hidden.len() < layers.len()`: the output layer is never recycled). Recycled neurons get
/// fresh incoming weights from `fresh` (a newly initialised network of the same shape), zero
/// bias and zero outgoing weights, and their Adam moments are zeroed likewise. Returns one
/// report per changed parameter.
pub fn recycle(
    vars: &BTreeMap<String, Tensor>,
    layers: &[String],
    hidden: &[Tensor],
    tau: f64,
    fresh: &ParamSnapshot,
    adam: &Adam,
) -> Result<Vec<ParamReport>> {
    let get = |name: String| {
        vars.get(&name)
            .map(|t| (name.clone(), t.shallow_clone()))
            .ok_or(Error::Checkpoint(format!("no parameter `{name}`")))
    };
    let before = ParamSnapshot::capture(
        &vars
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect::<Vec<_>>(),
    );
    let mut touched = Vec::new();
    for (k, activations) in hidden.iter().enumerate() {
        let (w_name, w) = get(format!("{}.weight", layers[k]))?;
        let (b_name, b) = get(format!("{}.bias", layers[k]))?;
        let (next_name, next) = get(format!("{}.weight", layers[k + 1]))?;
        let layer = RedoLayer {
            incoming_weight: (&w_name, &w),
            incoming_bias: Some((&b_name, &b)),
            outgoing_weight: (&next_name, &next),
            activations,
        };
        let recycled = redo(&[layer], tau, fresh)?.remove(0);
        if recycled.neurons.is_empty() {
            continue;
        }
        for name in [&w_name, &b_name] {
            if let Some((m, v)) = adam.moments(name) {
                zero_incoming(m, &recycled.neurons)?;
                zero_incoming(v, &recycled.neurons)?;
            }
        }
        if let Some((m, v)) = adam.moments(&next_name) {
            zero_outgoing(m, &recycled.neurons, recycled.width)?;
            zero_outgoing(v, &recycled.neurons, recycled.width)?;
        }
        touched.extend([w_name, b_name, next_name]);
    }
    touched
        .iter()
        .map(|name| {
            let now = &vars[name];
            let old = before.get(name, now, "the weights before ReDo")?;
            Ok(ParamReport::measure(name, old, now, Action::Recycled)?)
        })
        .collect()
}
