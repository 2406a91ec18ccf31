//! ReDo (Sokar et al., 2023) on the hidden layers of a network, with the optimiser forgetting
//! what the recycled neurons learned: the one place every agent gets it from.

use std::collections::BTreeMap;

use fire::redo::{redo, zero_incoming, zero_outgoing, RedoLayer};
use fire::{Action, ParamReport, ParamSnapshot};
use tch::Tensor;

use crate::{Error, Optimizer, Result};

/// One hidden layer that may be recycled.
#[derive(Debug)]
pub struct Hidden<'a> {
    /// Prefix of the layer that produces the activations (with `.weight` and `.bias`).
    pub layer: String,
    /// Prefixes of every layer that reads them (each with a `.weight` whose input dimension
    /// is the layer's width): a trunk feeding two heads has two.
    pub consumers: Vec<String>,
    /// The activations `[B, d]` (or `[B, c, h, w]`) after the non-linearity, on a batch.
    pub activations: &'a Tensor,
}

/// Both Adam moments of a parameter by name, as tensors whose writes land in the optimiser's
/// state (views of a larger moment are fine).
pub type Moments<'a> = dyn Fn(&str) -> Option<(Tensor, Tensor)> + 'a;

/// Recycles the tau-dormant neurons of every hidden layer of a chain.
///
/// `layers` are parameter prefixes input to output (`q.encoder.conv1`, ..., `q.head.fc2`), each
/// with a `.weight` and a `.bias` in `vars`; `hidden[k]` are the activations layer `k` produced,
/// read by layer `k + 1` alone (so `hidden.len() < layers.len()`: the output layer is never
/// recycled). See [`recycle_layers`] for what recycling does.
pub fn recycle(
    vars: &BTreeMap<String, Tensor>,
    layers: &[String],
    hidden: &[Tensor],
    tau: f64,
    fresh: &ParamSnapshot,
    optimizer: &Optimizer,
) -> Result<Vec<ParamReport>> {
    let units: Vec<Hidden<'_>> = hidden
        .iter()
        .enumerate()
        .map(|(k, activations)| Hidden {
            layer: layers[k].clone(),
            consumers: vec![layers[k + 1].clone()],
            activations,
        })
        .collect();
    recycle_layers(vars, &units, tau, fresh, &|name| optimizer.moments(name))
}

/// Recycles the tau-dormant neurons of each of `units` (scored on its activations, all taken
/// before any recycling): fresh incoming weights from `fresh` (a newly initialised network of
/// the same shape, same names as `vars`), zero bias, zero outgoing weights in every consumer,
/// so the network's output is unchanged at the moment of recycling; the same entries of their
/// Adam moments (from `moments`) are zeroed. Returns one report per changed parameter (action
/// `recycled`), in the order they were first changed.
pub fn recycle_layers(
    vars: &BTreeMap<String, Tensor>,
    units: &[Hidden<'_>],
    tau: f64,
    fresh: &ParamSnapshot,
    moments: &Moments<'_>,
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
    let mut touched: Vec<String> = Vec::new();
    for unit in units {
        let (w_name, w) = get(format!("{}.weight", unit.layer))?;
        let (b_name, b) = get(format!("{}.bias", unit.layer))?;
        let consumers = unit
            .consumers
            .iter()
            .map(|c| get(format!("{c}.weight")))
            .collect::<Result<Vec<_>>>()?;
        let Some((next_name, next)) = consumers.first() else {
            return Err(Error::Config {
                field: "redo",
                reason: format!("layer `{}` has no consumer", unit.layer),
            });
        };
        let layer = RedoLayer {
            incoming_weight: (&w_name, &w),
            incoming_bias: Some((&b_name, &b)),
            outgoing_weight: (next_name, next),
            activations: unit.activations,
        };
        let recycled = redo(&[layer], tau, fresh)?.remove(0);
        if recycled.neurons.is_empty() {
            continue;
        }
        for (_, other) in &consumers[1..] {
            zero_outgoing(other, &recycled.neurons, recycled.width)?;
        }
        for name in [&w_name, &b_name] {
            if let Some((m, v)) = moments(name) {
                zero_incoming(&m, &recycled.neurons)?;
                zero_incoming(&v, &recycled.neurons)?;
            }
        }
        for (name, _) in &consumers {
            if let Some((m, v)) = moments(name) {
                zero_outgoing(&m, &recycled.neurons, recycled.width)?;
                zero_outgoing(&v, &recycled.neurons, recycled.width)?;
            }
        }
        for name in [w_name, b_name]
            .into_iter()
            .chain(consumers.into_iter().map(|(n, _)| n))
        {
            if !touched.contains(&name) {
                touched.push(name);
            }
        }
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
