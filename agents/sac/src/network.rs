//! The actor (tanh-Gaussian policy) and the critic ensemble, as a plain MLP (CleanRL's sizes)
//! or as SimBa (the FIRE paper's SAC), with role-named parameters: `actor.*` and `critic.*`.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::Result;

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
fn he_normal(fan_in: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan_in as f64).sqrt(),
    }
}

/// PyTorch's `nn.Linear` default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn torch_default(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn dense(path: nn::Path, d_in: i64, d_out: i64, weight: Init, bias: Init) -> nn::Linear {
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

fn layer_norm(path: nn::Path, d: i64) -> nn::LayerNorm {
    // Flax's LayerNorm epsilon.
    nn::layer_norm(
        path,
        vec![d],
        nn::LayerNormConfig {
            eps: 1e-6,
            ..Default::default()
        },
    )
}

struct Block {
    norm: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

enum ActorBody {
    Mlp(Vec<nn::Linear>),
    Simba {
        embed: nn::Linear,
        blocks: Vec<Block>,
        norm: nn::LayerNorm,
    },
}

/// The tanh-Gaussian policy: `mean` and `log_std` heads on shared features; actions
/// `tanh(mean + std * eps)` in [-1, 1] (the agent scales them to the action box).
pub struct Actor {
    body: ActorBody,
    mean: nn::Linear,
    log_std: nn::Linear,
    log_std_range: (f64, f64),
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").finish_non_exhaustive()
    }
}

/// Log-probability terms of a tanh-Gaussian sample.
pub const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

impl Actor {
    /// Builds the actor under `root / "actor"`.
    pub fn new(root: &nn::Path, arch: &Architecture, obs_dim: i64, action_dim: i64) -> Self {
        let p = root / "actor";
        let (body, width) = match arch {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut d = obs_dim;
                for (i, &h) in hidden.iter().enumerate() {
                    layers.push(dense(
                        &p / format!("fc{}", i + 1),
                        d,
                        h,
                        torch_default(d),
                        torch_default(d),
                    ));
                    d = h;
                }
                (ActorBody::Mlp(layers), d)
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
        let (head_w, head_b) = match arch {
            Architecture::Mlp { .. } => (torch_default(width), torch_default(width)),
            Architecture::Simba { .. } => (Init::Orthogonal { gain: 1.0 }, Init::Const(0.0)),
        };
        Self {
            body,
            mean: dense(&p / "mean", width, action_dim, head_w, head_b),
            log_std: dense(&p / "log_std", width, action_dim, head_w, head_b),
            log_std_range: arch.log_std_range(),
        }
    }

    /// Features before the heads, and the hidden ReLU activations on the way.
    pub fn features(&self, obs: &Tensor) -> (Tensor, Vec<Tensor>) {
        let mut hidden = Vec::new();
        let x = match &self.body {
            ActorBody::Mlp(layers) => {
                let mut x = obs.shallow_clone();
                for l in layers {
                    x = l.forward(&x).relu();
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
        let (lo, hi) = self.log_std_range;
        let log_std = (self.log_std.forward(&x).tanh() + 1.0) * (0.5 * (hi - lo)) + lo;
        (self.mean.forward(&x), log_std)
    }

    /// The deterministic action `tanh(mean)`.
    pub fn mode(&self, obs: &Tensor) -> Tensor {
        self.gaussian(obs).0.tanh()
    }

    /// A reparameterised sample `tanh(mean + std * eps)` (`eps` from libtorch's generator)
    /// and its log-probability (of the action in [-1, 1]).
    pub fn sample(&self, obs: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mean, log_std) = self.gaussian(obs);
        let eps = mean.f_randn_like()?;
        squashed_sample(&mean, &log_std, &eps)
    }
}

/// `tanh(u)` with `u = mean + exp(log_std) * eps` and its log-density summed over the last
/// dimension: `sum(-eps^2 / 2 - log_std - log sqrt(2 pi)) - sum(log(1 - tanh(u)^2))`, the last
/// term in the stable form `2 (log 2 - u - softplus(-2u))`.
pub fn squashed_sample(mean: &Tensor, log_std: &Tensor, eps: &Tensor) -> Result<(Tensor, Tensor)> {
    let u = mean.f_add(&log_std.f_exp()?.f_mul(eps)?)?;
    let gaussian = (eps.f_square()? * -0.5 - log_std - LOG_SQRT_2PI).f_sum_dim_intlist(
        [-1i64].as_slice(),
        false,
        Kind::Float,
    )?;
    let log_det = ((-&u).f_sub(&(&u * -2.0).f_softplus()?)? + std::f64::consts::LN_2) * 2.0;
    let log_prob =
        gaussian.f_sub(&log_det.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?)?;
    Ok((u.f_tanh()?, log_prob))
}

fn block(p: nn::Path, w: i64) -> Block {
    Block {
        norm: layer_norm(&p / "norm", w),
        fc1: dense(&p / "fc1", w, 4 * w, he_normal(w), Init::Const(0.0)),
        fc2: dense(&p / "fc2", 4 * w, w, he_normal(4 * w), Init::Const(0.0)),
    }
}

/// A dense layer of every ensemble member at once: `weight [E, out, in]`, `bias [E, out]`.
struct EnsembleLinear {
    weight: Tensor,
    bias: Tensor,
}

impl EnsembleLinear {
    fn new(p: &nn::Path, members: i64, d_in: i64, d_out: i64, weight: Init, bias: Init) -> Self {
        let draw = |init: Init, dims: &[i64]| {
            let parts: Vec<Tensor> = (0..members)
                .map(|_| nn::init(init, dims, p.device()))
                .collect();
            Tensor::stack(&parts, 0)
        };
        Self {
            weight: p.var_copy("weight", &draw(weight, &[d_out, d_in])),
            bias: p.var_copy("bias", &draw(bias, &[d_out])),
        }
    }

    /// `x [E, B, in]` (or `[B, in]`, the same input for every member) to `[E, B, out]`.
    fn forward(&self, x: &Tensor, detached: bool) -> Tensor {
        let (w, b) = pick(&self.weight, &self.bias, detached);
        let (members, d_out, d_in) = (w.size()[0], w.size()[1], w.size()[2]);
        let y = if x.dim() == 2 {
            // One matrix product for all members: [B, in] x [in, E * out].
            x.matmul(&w.reshape([members * d_out, d_in]).transpose(0, 1))
                .view([-1, members, d_out])
                .transpose(0, 1)
                .contiguous()
        } else {
            x.bmm(&w.transpose(1, 2))
        };
        y + b.unsqueeze(1)
    }
}

/// LayerNorm with one scale and offset per ensemble member: `[E, d]`.
struct EnsembleNorm {
    weight: Tensor,
    bias: Tensor,
    d: i64,
}

impl EnsembleNorm {
    fn new(p: &nn::Path, members: i64, d: i64) -> Self {
        Self {
            weight: p.var("weight", &[members, d], Init::Const(1.0)),
            bias: p.var("bias", &[members, d], Init::Const(0.0)),
            d,
        }
    }

    fn forward(&self, x: &Tensor, detached: bool) -> Tensor {
        let (w, b) = pick(&self.weight, &self.bias, detached);
        x.layer_norm([self.d], None::<Tensor>, None::<Tensor>, 1e-6, false) * w.unsqueeze(1)
            + b.unsqueeze(1)
    }
}

fn pick(w: &Tensor, b: &Tensor, detached: bool) -> (Tensor, Tensor) {
    if detached {
        (w.detach(), b.detach())
    } else {
        (w.shallow_clone(), b.shallow_clone())
    }
}

struct EnsembleBlock {
    norm: EnsembleNorm,
    fc1: EnsembleLinear,
    fc2: EnsembleLinear,
}

enum CriticBody {
    Mlp(Vec<EnsembleLinear>),
    Simba {
        embed: EnsembleLinear,
        blocks: Vec<EnsembleBlock>,
        norm: EnsembleNorm,
    },
}

/// `members` Q-networks evaluated as one batched ensemble (one `baddbmm` per layer for all
/// members). Parameters have a leading member dimension (`critic.fc1.weight` is
/// `[E, out, in]`); [`member_views`] names each member's matrices on their own
/// (`critic.q1.fc1.weight`), which is what FIRE and the diagnostics see.
pub struct Critic {
    body: CriticBody,
    out: EnsembleLinear,
    members: i64,
}

impl std::fmt::Debug for Critic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Critic")
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Critic {
    /// Builds the critics under `root / "critic"`; inputs are observation and action
    /// concatenated.
    pub fn new(
        root: &nn::Path,
        arch: &Architecture,
        obs_dim: i64,
        action_dim: i64,
        members: i64,
    ) -> Self {
        let p = root / "critic";
        let d_in = obs_dim + action_dim;
        let (body, width, out_w, out_b) = match arch {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut d = d_in;
                for (i, &h) in hidden.iter().enumerate() {
                    layers.push(EnsembleLinear::new(
                        &(&p / format!("fc{}", i + 1)),
                        members,
                        d,
                        h,
                        torch_default(d),
                        torch_default(d),
                    ));
                    d = h;
                }
                (
                    CriticBody::Mlp(layers),
                    d,
                    torch_default(d),
                    torch_default(d),
                )
            }
            Architecture::Simba {
                critic_blocks,
                critic_width,
                ..
            } => {
                let w = *critic_width;
                let orth = Init::Orthogonal { gain: 1.0 };
                let embed =
                    EnsembleLinear::new(&(&p / "embed"), members, d_in, w, orth, Init::Const(0.0));
                let blocks = (0..*critic_blocks)
                    .map(|i| {
                        let b = &p / format!("block{}", i + 1);
                        EnsembleBlock {
                            norm: EnsembleNorm::new(&(&b / "norm"), members, w),
                            fc1: EnsembleLinear::new(
                                &(&b / "fc1"),
                                members,
                                w,
                                4 * w,
                                he_normal(w),
                                Init::Const(0.0),
                            ),
                            fc2: EnsembleLinear::new(
                                &(&b / "fc2"),
                                members,
                                4 * w,
                                w,
                                he_normal(4 * w),
                                Init::Const(0.0),
                            ),
                        }
                    })
                    .collect();
                let norm = EnsembleNorm::new(&(&p / "norm"), members, w);
                (
                    CriticBody::Simba {
                        embed,
                        blocks,
                        norm,
                    },
                    w,
                    orth,
                    Init::Const(0.0),
                )
            }
        };
        Self {
            body,
            out: EnsembleLinear::new(&(&p / "out"), members, width, 1, out_w, out_b),
            members,
        }
    }

    /// Ensemble members.
    pub fn members(&self) -> i64 {
        self.members
    }

    /// Q-values `[E, B]` of `obs [B, obs_dim]` (normalised) and `actions [B, action_dim]` (in
    /// [-1, 1]). With `detached`, no gradient reaches the critic's parameters (the actor's
    /// loss), while one still flows to the actions.
    pub fn forward(&self, obs: &Tensor, actions: &Tensor, detached: bool) -> Tensor {
        self.forward_with_features(obs, actions, detached).0
    }

    /// Q-values, the penultimate features `[E, B, width]` and the hidden ReLU activations.
    pub fn forward_with_features(
        &self,
        obs: &Tensor,
        actions: &Tensor,
        detached: bool,
    ) -> (Tensor, Tensor, Vec<Tensor>) {
        let input = Tensor::cat(&[obs, actions], 1);
        let mut hidden = Vec::new();
        let features = match &self.body {
            CriticBody::Mlp(layers) => {
                let mut x = input;
                for l in layers {
                    x = l.forward(&x, detached).relu();
                    hidden.push(x.shallow_clone());
                }
                x
            }
            CriticBody::Simba {
                embed,
                blocks,
                norm,
            } => {
                let mut x = embed.forward(&input, detached);
                for b in blocks {
                    let h = b
                        .fc1
                        .forward(&b.norm.forward(&x, detached), detached)
                        .relu();
                    hidden.push(h.shallow_clone());
                    x = &x + b.fc2.forward(&h, detached);
                }
                norm.forward(&x, detached)
            }
        };
        let q = self.out.forward(&features, detached).squeeze_dim(-1);
        (q, features, hidden)
    }
}

/// Each ensemble member's parameters as views into the stacked ones (writes land in them):
/// `critic.fc1.weight [E, out, in]` gives `critic.q1.fc1.weight [out, in]`, and so on.
pub fn member_views(params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (name, t) in params {
        let Some(rest) = name.strip_prefix("critic.") else {
            out.push((name.clone(), t.shallow_clone()));
            continue;
        };
        for k in 0..t.size()[0] {
            out.push((format!("critic.q{}.{rest}", k + 1), t.select(0, k)));
        }
    }
    out
}
