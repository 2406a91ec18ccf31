//! What a named parameter is (conv kernel, linear weight, bias, norm) and how FIRE treats it.
//!
//! PyTorch and tch conventions: a 2-D `*.weight` is a linear layer stored `d_out x d_in`, a 4-D
//! `*.weight` a conv kernel `c_out x c_in x kh x kw`; 1-D tensors are biases or normalisation
//! parameters and are never orthogonalised.

use serde::Serialize;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::orthogonalize::{dfi_batch_divided, orthogonalize, Orthogonalizer};

/// The role of a parameter tensor, inferred from its name and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamRole {
    /// A 4-D convolution kernel `c_out x c_in x kh x kw`.
    ConvWeight,
    /// A 2-D linear weight `d_out x d_in` (also embeddings, which FIRE treats alike).
    LinearWeight,
    /// A bias vector.
    Bias,
    /// A normalisation layer's scale or shift (LayerNorm, BatchNorm).
    Norm,
    /// Anything else: running statistics, counters, scalars, higher-rank tensors.
    Other,
}

impl ParamRole {
    /// Classifies a parameter by its last name segment and its rank.
    pub fn classify(name: &str, shape: &[i64]) -> ParamRole {
        let leaf = name.rsplit(['.', '/']).next().unwrap_or(name);
        let lower = name.to_ascii_lowercase();
        let in_norm_layer = ["norm", "ln", "bn"].iter().any(|tag| {
            lower
                .split(['.', '/', '_'])
                .any(|seg| seg.starts_with(tag) || seg.ends_with(tag))
        });
        match (leaf, shape.len()) {
            // A LayerNorm over a conv layer's whole output (`[C, H, W]`, as Plasticine's
            // LayerNorm networks normalise): its scale and offset are rank 3.
            ("weight" | "bias" | "scale", 3) if in_norm_layer => ParamRole::Norm,
            ("weight" | "kernel", 4) => ParamRole::ConvWeight,
            ("weight" | "kernel", 2) => ParamRole::LinearWeight,
            ("bias", 1) if in_norm_layer => ParamRole::Norm,
            ("bias", 1) => ParamRole::Bias,
            ("weight" | "scale", 1) => ParamRole::Norm,
            _ => ParamRole::Other,
        }
    }

    /// Whether FIRE orthogonalises parameters of this role.
    pub fn is_matrix(self) -> bool {
        matches!(self, ParamRole::ConvWeight | ParamRole::LinearWeight)
    }

    /// The name users type (`conv`, `linear`, `bias`, `norm`, `other`).
    pub fn short_name(self) -> &'static str {
        match self {
            ParamRole::ConvWeight => "conv",
            ParamRole::LinearWeight => "linear",
            ParamRole::Bias => "bias",
            ParamRole::Norm => "norm",
            ParamRole::Other => "other",
        }
    }

    /// Parses a [`short_name`](Self::short_name).
    pub fn from_short_name(s: &str) -> Option<ParamRole> {
        [
            ParamRole::ConvWeight,
            ParamRole::LinearWeight,
            ParamRole::Bias,
            ParamRole::Norm,
            ParamRole::Other,
        ]
        .into_iter()
        .find(|r| r.short_name() == s)
    }
}

/// The factor FIRE multiplies the orthogonal factor by: `sqrt(d_out / d_in)` for a linear
/// weight, `sqrt(c_out / c_in) / (kh * kw)` for a conv kernel.
pub fn fire_scale(role: ParamRole, shape: &[i64]) -> Result<f64> {
    match (role, shape) {
        (ParamRole::LinearWeight, [d_out, d_in]) => Ok((*d_out as f64 / *d_in as f64).sqrt()),
        (ParamRole::ConvWeight, [c_out, c_in, kh, kw]) => {
            Ok((*c_out as f64 / *c_in as f64).sqrt() / (kh * kw) as f64)
        }
        _ => Err(Error::Shape {
            op: "fire_scale",
            expected: "2-D linear or 4-D conv weight",
            shape: shape.to_vec(),
        }),
    }
}

/// The matrices FIRE orthogonalises for a weight: `[1, d_out, d_in]` for a linear weight,
/// `[kh * kw, c_out, c_in]` (one matrix per kernel tap) for a conv kernel.
pub fn as_matrices(role: ParamRole, w: &Tensor) -> Result<Tensor> {
    let shape = w.size();
    match (role, shape.as_slice()) {
        (ParamRole::LinearWeight, [_, _]) => Ok(w.f_unsqueeze(0)?),
        (ParamRole::ConvWeight, [c_out, c_in, kh, kw]) => Ok(w
            .f_permute([2, 3, 0, 1])?
            .f_reshape([kh * kw, *c_out, *c_in])?),
        _ => Err(Error::Shape {
            op: "as_matrices",
            expected: "2-D linear or 4-D conv weight",
            shape,
        }),
    }
}

/// Inverse of [`as_matrices`]: back to the parameter's own layout.
pub fn from_matrices(role: ParamRole, matrices: &Tensor, shape: &[i64]) -> Result<Tensor> {
    match (role, shape) {
        (ParamRole::LinearWeight, [d_out, d_in]) => Ok(matrices.f_reshape([*d_out, *d_in])?),
        (ParamRole::ConvWeight, [c_out, c_in, kh, kw]) => Ok(matrices
            .f_reshape([*kh, *kw, *c_out, *c_in])?
            .f_permute([2, 3, 0, 1])?
            .f_contiguous()?),
        _ => Err(Error::Shape {
            op: "from_matrices",
            expected: "2-D linear or 4-D conv weight",
            shape: shape.to_vec(),
        }),
    }
}

/// How far a weight is from what FIRE would produce, as DfI: the weight is divided by FIRE's
/// scale and the DfI of each matrix (each conv tap) summed. A freshly FIRE'd weight reads ~0.
pub fn isometry_dfi(role: ParamRole, w: &Tensor) -> Result<f64> {
    let scale = fire_scale(role, &w.size())?;
    // Divided inside: a huge conv weight divided by its small scale can overflow f32.
    let matrices = tch::no_grad(|| as_matrices(role, w))?;
    Ok(dfi_batch_divided(&matrices, scale)?.iter().sum())
}

/// A weight after FIRE, with what it took.
#[derive(Debug)]
pub struct FiredWeight {
    /// The new weight, in the original layout and dtype.
    pub weight: Tensor,
    /// DfI of the orthogonal factor, summed over conv taps (0 means a perfect isometry).
    pub dfi: f64,
    /// Newton–Schulz iterations run.
    pub iterations: usize,
}

/// FIRE on one weight: orthogonalise (per tap for convs) and multiply by [`fire_scale`].
pub fn fire_weight(role: ParamRole, w: &Tensor, method: Orthogonalizer) -> Result<FiredWeight> {
    let mut fired = fire_weights(role, &[w], method)?;
    Ok(fired.remove(0))
}

/// FIRE on several same-shaped weights of one role in a single batched orthogonalisation.
pub fn fire_weights(
    role: ParamRole,
    weights: &[&Tensor],
    method: Orthogonalizer,
) -> Result<Vec<FiredWeight>> {
    let Some(first) = weights.first() else {
        return Ok(Vec::new());
    };
    let shape = first.size();
    for w in weights {
        if w.size() != shape {
            return Err(Error::Shape {
                op: "fire_weights",
                expected: "weights of one shape",
                shape: w.size(),
            });
        }
    }
    let scale = fire_scale(role, &shape)?;
    let per_weight = as_matrices(role, first)?.size()[0] as usize;
    let stacked = tch::no_grad(|| -> Result<Tensor> {
        let parts = weights
            .iter()
            // In their stored dtype: orthogonalize scales before it rounds to f32, so that an
            // f64 weight beyond f32's range is still orthogonalised.
            .map(|w| as_matrices(role, w))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&parts, 0)?)
    })?;
    let ortho = orthogonalize(&stacked, method)?;
    let mut out = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let start = (i * per_weight) as i64;
        let q = ortho.q.f_narrow(0, start, per_weight as i64)?;
        let weight = tch::no_grad(|| -> Result<Tensor> {
            Ok(from_matrices(role, &q.f_mul_scalar(scale)?, &shape)?.f_to_kind(w.kind())?)
        })?;
        let dfi = ortho.dfi[i * per_weight..(i + 1) * per_weight].iter().sum();
        out.push(FiredWeight {
            weight,
            dfi,
            iterations: ortho.iterations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn classifies_pytorch_and_varstore_names() {
        use ParamRole::*;
        let cases: &[(&str, &[i64], ParamRole)] = &[
            ("features.0.weight", &[32, 4, 8, 8], ConvWeight),
            ("q.encoder.conv1.weight", &[32, 4, 8, 8], ConvWeight),
            ("fc.weight", &[10, 20], LinearWeight),
            ("fc.bias", &[10], Bias),
            ("layer1.0.bn1.weight", &[64], Norm),
            ("layer1.0.bn1.bias", &[64], Norm),
            ("blocks.0.ln_1.bias", &[768], Norm),
            ("q.encoder.norm1.weight", &[32, 20, 20], Norm),
            ("q.encoder.norm1.bias", &[32, 20, 20], Norm),
            ("critic.fc1.weight", &[2, 64, 3], Other),
            ("layer1.0.bn1.running_mean", &[64], Other),
            ("layer1.0.bn1.num_batches_tracked", &[], Other),
        ];
        for (name, shape, want) in cases {
            assert_eq!(ParamRole::classify(name, shape), *want, "{name}");
        }
    }

    #[test]
    fn conv_scale_follows_the_reference() {
        let s = fire_scale(ParamRole::ConvWeight, &[64, 32, 4, 4]).unwrap();
        assert!((s - (2.0f64).sqrt() / 16.0).abs() < 1e-12);
        let s = fire_scale(ParamRole::LinearWeight, &[512, 3136]).unwrap();
        assert!((s - (512.0f64 / 3136.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn matrices_round_trip_conv_layout() {
        let w = Tensor::randn([6, 3, 2, 5], (Kind::Float, tch::Device::Cpu));
        let m = as_matrices(ParamRole::ConvWeight, &w).unwrap();
        assert_eq!(m.size(), vec![10, 6, 3]);
        // Tap (i=1, j=2) is matrix 1*5+2 = 7.
        let tap = w.select(2, 1).select(2, 2);
        assert!(m.get(7).equal(&tap));
        let back = from_matrices(ParamRole::ConvWeight, &m, &[6, 3, 2, 5]).unwrap();
        assert!(back.equal(&w));
    }
}
