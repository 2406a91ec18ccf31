//! ReDo: recycling dormant neurons (Sokar et al., 2023).
//!
//! A neuron's score is `s_i = E|h_i| / mean_k E|h_k|` over a batch (conv channels average over
//! batch and space, see [`crate::metrics::neuron_scores`]). Neurons with `s_i <= tau` get fresh
//! incoming weights (from a freshly initialised network), a zero bias and zero outgoing
//! weights, so the network's output is unchanged at the moment of recycling. The optimiser's
//! moments for those entries should be zeroed too: [`Recycled`] says which, and
//! [`zero_incoming`] / [`zero_outgoing`] apply the same mask to any tensor shaped like the
//! parameter.

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::intervention::ParamSnapshot;
use crate::metrics::neuron_scores;

/// One hidden layer that may be recycled: the parameters that produce its activations, the
/// weight that consumes them, and a batch of its activations. The output layer is never one.
#[derive(Debug)]
pub struct RedoLayer<'a> {
    /// Weight producing the layer (`[d, d_in]` linear or `[c, c_in, kh, kw]` conv).
    pub incoming_weight: (&'a str, &'a Tensor),
    /// Bias producing the layer, if any.
    pub incoming_bias: Option<(&'a str, &'a Tensor)>,
    /// Weight of the next layer (`[d_next, d * s]` linear, `s` = spatial positions per
    /// channel after a flatten, or `[c_next, c, kh, kw]` conv).
    pub outgoing_weight: (&'a str, &'a Tensor),
    /// Activations `[B, d]` or `[B, c, h, w]` after the non-linearity.
    pub activations: &'a Tensor,
}

/// The neurons recycled in one layer.
#[derive(Clone, Debug, Serialize)]
pub struct Recycled {
    /// Name of the incoming weight (identifies the layer).
    pub layer: String,
    /// Indices of the recycled neurons (rows of the incoming weight).
    pub neurons: Vec<i64>,
    /// Number of neurons in the layer.
    pub width: i64,
}

/// Recycles the dormant neurons of each layer in place; returns what was recycled.
pub fn redo(layers: &[RedoLayer<'_>], tau: f64, fresh: &ParamSnapshot) -> Result<Vec<Recycled>> {
    if !(tau.is_finite() && tau >= 0.0) {
        return Err(Error::InvalidConfig {
            what: "ReDo threshold tau",
            reason: format!("must be a non-negative number, got {tau}"),
        });
    }
    let mut out = Vec::with_capacity(layers.len());
    for layer in layers {
        let (w_name, w) = layer.incoming_weight;
        let width = w.size()[0];
        let scores = neuron_scores(layer.activations)?;
        if scores.size() != [width] {
            return Err(Error::ShapeMismatch {
                name: w_name.to_owned(),
                what: "activation channels",
                expected: vec![width],
                actual: scores.size(),
            });
        }
        let mask = scores.f_le(tau)?;
        let neurons = Vec::<i64>::try_from(&mask.f_nonzero()?.f_flatten(0, -1)?)?;
        if !neurons.is_empty() {
            tch::no_grad(|| -> Result<()> {
                let fresh_w = fresh.get(w_name, w, "the fresh initialisation")?;
                let row_mask = broadcast_rows(&mask, w)?;
                w.shallow_clone()
                    .f_copy_(&fresh_w.f_where_self(&row_mask, w)?)?;
                if let Some((_, b)) = layer.incoming_bias {
                    zero_incoming(b, &neurons)?;
                }
                zero_outgoing(layer.outgoing_weight.1, &neurons, width)?;
                Ok(())
            })?;
        }
        out.push(Recycled {
            layer: w_name.to_owned(),
            neurons,
            width,
        });
    }
    Ok(out)
}

/// Zeroes the rows `neurons` of a tensor shaped like an incoming weight or bias (dim 0).
pub fn zero_incoming(t: &Tensor, neurons: &[i64]) -> Result<()> {
    let index = Tensor::from_slice(neurons).to_device(t.device());
    let _in_place = tch::no_grad(|| t.shallow_clone().f_index_fill_(0, &index, 0.0))?;
    Ok(())
}

/// Zeroes the inputs fed by `neurons` in a tensor shaped like an outgoing weight (dim 1). When
/// the next layer sees a flattened conv output, each channel feeds `d_in / width` columns.
pub fn zero_outgoing(t: &Tensor, neurons: &[i64], width: i64) -> Result<()> {
    let d_in = t.size()[1];
    if d_in % width != 0 {
        return Err(Error::Shape {
            op: "zero_outgoing",
            expected: "an input dimension that is a multiple of the layer width",
            shape: t.size(),
        });
    }
    let per_neuron = d_in / width;
    let columns: Vec<i64> = neurons
        .iter()
        .flat_map(|&n| (n * per_neuron)..((n + 1) * per_neuron))
        .collect();
    let index = Tensor::from_slice(&columns).to_device(t.device());
    let _in_place = tch::no_grad(|| t.shallow_clone().f_index_fill_(1, &index, 0.0))?;
    Ok(())
}

/// A `[d]` boolean mask broadcast over the trailing dims of `like` (`[d, ...]`).
fn broadcast_rows(mask: &Tensor, like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, like.dim() - 1));
    Ok(mask
        .f_to_kind(Kind::Bool)?
        .f_to_device(like.device())?
        .f_view(shape.as_slice())?)
}
