//! What the actor and the critic ensemble share: the [`Architecture`] choice, the
//! initialisers (He-normal, PyTorch's default, orthogonal heads) and the dense and LayerNorm
//! layers they are built from. The networks themselves are in `actor.rs` and `critic.rs`.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};

/// Which networks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Architecture {
    /// CleanRL's `sac_continuous_action.py`: ReLU layers of the given widths for the actor and
    /// for each critic (PyTorch's default initialisation), log-std in [-5, 2].
    Mlp {
        /// Hidden widths (CleanRL: 256, 256).
        hidden: Vec<i64>,
    },
    /// SimBa (Lee et al., 2025) as the FIRE reference uses it: a dense embedding, pre-LayerNorm
    /// residual blocks `x + W2 relu(W1 LN(x))` with 4x expansion, a final LayerNorm, then the
    /// heads. Embedding and heads orthogonal (gain 1), block weights He-normal, biases zero;
    /// log-std in [-10, 2].
    Simba {
        /// Actor residual blocks (the paper: 1).
        actor_blocks: usize,
        /// Actor width (128).
        actor_width: i64,
        /// Critic residual blocks (2).
        critic_blocks: usize,
        /// Critic width (512).
        critic_width: i64,
    },
}

impl Architecture {
    /// The FIRE paper's SimBa sizes.
    pub fn simba() -> Self {
        Architecture::Simba {
            actor_blocks: 1,
            actor_width: 128,
            critic_blocks: 2,
            critic_width: 512,
        }
    }

    /// CleanRL's sizes.
    pub fn mlp() -> Self {
        Architecture::Mlp {
            hidden: vec![256, 256],
        }
    }

    /// `(min, max)` of the log standard deviation.
    pub fn log_std_range(&self) -> (f64, f64) {
        match self {
            Architecture::Mlp { .. } => (-5.0, 2.0),
            Architecture::Simba { .. } => (-10.0, 2.0),
        }
    }
}

/// He (Kaiming) normal: N(0, 2 / fan_in).
pub(crate) fn he_normal(fan_in: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan_in as f64).sqrt(),
    }
}

/// PyTorch's `nn.Linear` default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn torch_default(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Weights and bias of the output heads: PyTorch's default for the MLP, orthogonal (gain 1)
/// with a zero bias for SimBa.
pub(crate) fn head_init(arch: &Architecture, fan_in: i64) -> (Init, Init) {
    match arch {
        Architecture::Mlp { .. } => (torch_default(fan_in), torch_default(fan_in)),
        Architecture::Simba { .. } => (Init::Orthogonal { gain: 1.0 }, Init::Const(0.0)),
    }
}

/// A dense layer with the given initialisers.
pub(crate) fn dense(path: nn::Path, d_in: i64, d_out: i64, weight: Init, bias: Init) -> nn::Linear {
    nn::linear(
        path,
        d_in,
        d_out,
        nn::LinearConfig {
            ws_init: weight,
            bs_init: Some(bias),
            bias: true,
        },
    )
}

/// LayerNorm over `d` features with flax's epsilon (1e-6).
pub(crate) fn layer_norm(path: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(
        path,
        vec![d],
        nn::LayerNormConfig {
            eps: 1e-6,
            ..Default::default()
        },
    )
}

/// PyTorch's `nn.LayerNorm(d)` (eps 1e-5), for the MLP's optional LayerNorms
/// ([`agent::NetworkOptions::layer_norm`]), as Plasticine builds them.
pub(crate) fn torch_layer_norm(path: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(path, vec![d], nn::LayerNormConfig::default())
}

/// The prefixes plasticity injection puts its two extra heads under (`actor.injected.mean`,
/// `critic.injected_frozen.out`, ...): the trainable one and its frozen twin.
pub(crate) const INJECTED: [&str; 2] = ["injected", "injected_frozen"];
