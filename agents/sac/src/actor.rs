//! The actor network: features (an MLP or SimBa's residual trunk) and two linear heads, the
//! mean and the raw log standard deviation of a Gaussian before the tanh, under `actor.*`.
//! Sampling, squashing and the action box are the policy's (`policy.rs`).

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use agent::{Activation, NetworkOptions};

use crate::network::{
    dense, he_normal, head_init, layer_norm, torch_default, torch_layer_norm, Architecture,
    INJECTED,
};

/// A pre-LayerNorm residual block `x + fc2(relu(fc1(LN(x))))`.
struct Block {
    norm: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

fn block(p: nn::Path, w: i64) -> Block {
    Block {
        norm: layer_norm(&p / "norm", w),
        fc1: dense(&p / "fc1", w, 4 * w, he_normal(w), Init::Const(0.0)),
        fc2: dense(&p / "fc2", 4 * w, w, he_normal(4 * w), Init::Const(0.0)),
    }
}

enum ActorBody {
    /// Dense layers, each with its LayerNorm ([`NetworkOptions::layer_norm`]), and the
    /// activation.
    Mlp(Vec<(nn::Linear, Option<nn::LayerNorm>)>, Activation),
    Simba {
        embed: nn::Linear,
        blocks: Vec<Block>,
        norm: nn::LayerNorm,
    },
}

/// The two output layers on the actor's features.
struct Heads {
    mean: nn::Linear,
    log_std: nn::Linear,
}

impl Heads {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        (self.mean.forward(x), self.log_std.forward(x))
    }
}

/// The Gaussian of a tanh-Gaussian policy: `mean` and `log_std` heads on shared features
/// (the policy draws `tanh(mean + std * eps)` in [-1, 1] and scales it to the action box).
///
/// After plasticity injection ([`inject`](Self::inject)) each head's raw output is
/// `h(phi) + (h'(phi) - h'_0(phi))`: `actor.mean` and `actor.log_std` frozen, trainable
/// `actor.injected.*` and their frozen twins `actor.injected_frozen.*`.
pub struct Actor {
    body: ActorBody,
    heads: Heads,
    /// Plasticity injection: the trainable heads h' and their frozen copies h'_0.
    injected: Option<(Heads, Heads)>,
    log_std_range: (f64, f64),
    width: i64,
    action_dim: i64,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("injected", &self.injected.is_some())
            .finish_non_exhaustive()
    }
}

impl Actor {
    /// Builds the actor under `root / "actor"`. `options` shape the MLP's hidden layers
    /// (`actor.norm<k>` after `actor.fc<k>`; CReLU doubles the next layer's inputs); SimBa
    /// ignores them (the binaries refuse them for it).
    pub fn new(
        root: &nn::Path,
        arch: &Architecture,
        obs_dim: i64,
        action_dim: i64,
        options: NetworkOptions,
    ) -> Self {
        let p = root / "actor";
        let (body, width) = match arch {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut d = obs_dim;
                for (i, &h) in hidden.iter().enumerate() {
                    let fc = dense(
                        &p / format!("fc{}", i + 1),
                        d,
                        h,
                        torch_default(d),
                        torch_default(d),
                    );
                    let norm = options
                        .layer_norm
                        .then(|| torch_layer_norm(&p / format!("norm{}", i + 1), h));
                    layers.push((fc, norm));
                    d = h * options.activation.width_factor();
                }
                (ActorBody::Mlp(layers, options.activation), d)
            }
            Architecture::Simba {
                actor_blocks,
                actor_width,
                ..
            } => {
                let w = *actor_width;
                let embed = dense(
                    &p / "embed",
                    obs_dim,
                    w,
                    Init::Orthogonal { gain: 1.0 },
                    Init::Const(0.0),
                );
                let blocks = (0..*actor_blocks)
                    .map(|i| block(&p / format!("block{}", i + 1), w))
                    .collect();
                let norm = layer_norm(&p / "norm", w);
                (
                    ActorBody::Simba {
                        embed,
                        blocks,
                        norm,
                    },
                    w,
                )
            }
        };
        let (head_w, head_b) = head_init(arch, width);
        Self {
            body,
            heads: Heads {
                mean: dense(&p / "mean", width, action_dim, head_w, head_b),
                log_std: dense(&p / "log_std", width, action_dim, head_w, head_b),
            },
            injected: None,
            log_std_range: arch.log_std_range(),
            width,
            action_dim,
        }
    }

    /// Features before the heads, and the hidden ReLU activations on the way (one per
    /// [`redo_layers`](Self::redo_layers) entry).
    pub fn features(&self, obs: &Tensor) -> (Tensor, Vec<Tensor>) {
        let mut hidden = Vec::new();
        let x = match &self.body {
            ActorBody::Mlp(layers, activation) => {
                let mut x = obs.shallow_clone();
                for (l, norm) in layers {
                    x = l.forward(&x);
                    if let Some(n) = norm {
                        x = n.forward(&x);
                    }
                    x = activation.apply(&x, -1);
                    hidden.push(x.shallow_clone());
                }
                x
            }
            ActorBody::Simba {
                embed,
                blocks,
                norm,
            } => {
                let mut x = embed.forward(obs);
                for b in blocks {
                    let h = b.fc1.forward(&b.norm.forward(&x)).relu();
                    hidden.push(h.shallow_clone());
                    x = &x + b.fc2.forward(&h);
                }
                norm.forward(&x)
            }
        };
        (x, hidden)
    }

    /// `(mean, log_std)` of the Gaussian before the tanh; `log_std = min + (max - min) *
    /// (tanh(raw) + 1) / 2`.
    pub fn gaussian(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let (x, _) = self.features(obs);
        let (mean, raw) = self.heads.forward(&x);
        let (mean, raw) = match &self.injected {
            // h + (h' - h'_0): h' - h'_0 is exactly zero at the moment of injection.
            Some((fresh, frozen)) => {
                let (m1, s1) = fresh.forward(&x);
                let (m0, s0) = frozen.forward(&x);
                (mean + (m1 - m0), raw + (s1 - s0))
            }
            None => (mean, raw),
        };
        // Under bf16 autocast the heads come out in bfloat16; the Gaussian and everything
        // after it are computed in float32 (a no-op in fp32).
        let (mean, raw) = (mean.to_kind(Kind::Float), raw.to_kind(Kind::Float));
        let (lo, hi) = self.log_std_range;
        let log_std = (raw.tanh() + 1.0) * (0.5 * (hi - lo)) + lo;
        (mean, log_std)
    }

    /// Whether plasticity injection was applied.
    pub fn is_injected(&self) -> bool {
        self.injected.is_some()
    }

    /// Plasticity injection: adds the heads `actor.injected.{mean,log_std}` and
    /// `actor.injected_frozen.{mean,log_std}` under `root` (zero-initialised, drawing nothing
    /// from the generator). The caller sets their values and freezes the old heads and the
    /// frozen twins.
    pub fn inject(&mut self, root: &nn::Path) {
        let build = |prefix: &str| {
            let p = root / "actor" / prefix;
            let zero = || Init::Const(0.0);
            Heads {
                mean: dense(&p / "mean", self.width, self.action_dim, zero(), zero()),
                log_std: dense(&p / "log_std", self.width, self.action_dim, zero(), zero()),
            }
        };
        self.injected = Some((build(INJECTED[0]), build(INJECTED[1])));
    }

    /// Prefixes of the output layers: `actor.mean`, `actor.log_std`.
    pub fn head_layers() -> [&'static str; 2] {
        ["actor.mean", "actor.log_std"]
    }

    /// The hidden layers ReDo recycles, as `(prefix, prefixes of the layers that read it)` in
    /// the order of [`features`](Self::features)' activations: for the MLP each `fc<k>` (the
    /// last one read by both heads, the injected ones included), for SimBa each block's `fc1`
    /// (read by its `fc2`). SimBa's embedding and residual stream have no ReLU units.
    pub fn redo_layers(&self) -> Vec<(String, Vec<String>)> {
        match &self.body {
            ActorBody::Mlp(layers, _) => {
                let n = layers.len();
                (1..=n)
                    .map(|k| {
                        let consumers = if k < n {
                            vec![format!("actor.fc{}", k + 1)]
                        } else {
                            self.all_heads()
                        };
                        (format!("actor.fc{k}"), consumers)
                    })
                    .collect()
            }
            ActorBody::Simba { blocks, .. } => (1..=blocks.len())
                .map(|k| {
                    (
                        format!("actor.block{k}.fc1"),
                        vec![format!("actor.block{k}.fc2")],
                    )
                })
                .collect(),
        }
    }

    /// Every head's prefix: the two heads, and after injection the four injected ones.
    fn all_heads(&self) -> Vec<String> {
        let mut out: Vec<String> = Self::head_layers().map(String::from).to_vec();
        if self.is_injected() {
            for prefix in INJECTED {
                for head in ["mean", "log_std"] {
                    out.push(format!("actor.{prefix}.{head}"));
                }
            }
        }
        out
    }
}
