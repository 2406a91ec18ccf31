//! The critic ensemble: `members` Q-networks held as one set of tensors with a member
//! dimension first (`critic.*`), evaluated in one batched product per layer; plasticity
//! injection's extra Q heads; each member's views for FIRE and the diagnostics
//! ([`member_views`]).

use tch::nn::{self, Init};
use tch::Tensor;

use agent::{Activation, NetworkOptions};

use crate::network::{he_normal, head_init, torch_default, Architecture, INJECTED};

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

    /// `x [E, B, in]` (or `[B, in]`, the same input for every member) to `[E, B, out]`: one
    /// matrix product with the bias added by the same kernel (`addmm`, `baddbmm`).
    fn forward(&self, x: &Tensor, detached: bool) -> Tensor {
        let (w, b) = pick(&self.weight, &self.bias, detached);
        let (members, d_out, d_in) = (w.size()[0], w.size()[1], w.size()[2]);
        if x.dim() == 2 {
            // One product for all members: [B, in] x [in, E * out] + [E * out].
            b.reshape([members * d_out])
                .addmm(x, &w.reshape([members * d_out, d_in]).transpose(0, 1))
                .view([-1, members, d_out])
                .transpose(0, 1)
                .contiguous()
        } else {
            b.unsqueeze(1).baddbmm(x, &w.transpose(1, 2), 1.0, 1.0)
        }
    }
}

/// LayerNorm with one scale and offset per ensemble member: `[E, d]`.
struct EnsembleNorm {
    weight: Tensor,
    bias: Tensor,
    d: i64,
    eps: f64,
}

impl EnsembleNorm {
    /// SimBa's: flax's epsilon, 1e-6.
    fn new(p: &nn::Path, members: i64, d: i64) -> Self {
        Self::with_eps(p, members, d, 1e-6)
    }

    fn with_eps(p: &nn::Path, members: i64, d: i64, eps: f64) -> Self {
        Self {
            weight: p.var("weight", &[members, d], Init::Const(1.0)),
            bias: p.var("bias", &[members, d], Init::Const(0.0)),
            d,
            eps,
        }
    }

    fn forward(&self, x: &Tensor, detached: bool) -> Tensor {
        let (w, b) = pick(&self.weight, &self.bias, detached);
        let normed = x.layer_norm([self.d], None::<Tensor>, None::<Tensor>, self.eps, false);
        // b + normed * w in one pass.
        b.unsqueeze(1).addcmul(&normed, &w.unsqueeze(1))
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
    /// Dense layers, each with its LayerNorm ([`NetworkOptions::layer_norm`]), and the
    /// activation.
    Mlp(Vec<(EnsembleLinear, Option<EnsembleNorm>)>, Activation),
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
///
/// After plasticity injection ([`inject`](Self::inject)) each member's Q is
/// `h(phi) + (h'(phi) - h'_0(phi))`: `critic.out` frozen, a trainable `critic.injected.out` and
/// its frozen twin `critic.injected_frozen.out`.
pub struct Critic {
    body: CriticBody,
    out: EnsembleLinear,
    /// Plasticity injection: the trainable Q heads h' and their frozen copies h'_0.
    injected: Option<(EnsembleLinear, EnsembleLinear)>,
    members: i64,
    width: i64,
}

impl std::fmt::Debug for Critic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Critic")
            .field("members", &self.members)
            .field("injected", &self.injected.is_some())
            .finish_non_exhaustive()
    }
}

impl Critic {
    /// Builds the critics under `root / "critic"`; inputs are observation and action
    /// concatenated. `options` shape the MLP's hidden layers (`critic.norm<k>` after
    /// `critic.fc<k>`, PyTorch's eps 1e-5; CReLU doubles the next layer's inputs); SimBa
    /// ignores them (the binaries refuse them for it).
    pub fn new(
        root: &nn::Path,
        arch: &Architecture,
        obs_dim: i64,
        action_dim: i64,
        members: i64,
        options: NetworkOptions,
    ) -> Self {
        let p = root / "critic";
        let d_in = obs_dim + action_dim;
        let (body, width) = match arch {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut d = d_in;
                for (i, &h) in hidden.iter().enumerate() {
                    let fc = EnsembleLinear::new(
                        &(&p / format!("fc{}", i + 1)),
                        members,
                        d,
                        h,
                        torch_default(d),
                        torch_default(d),
                    );
                    let norm = options.layer_norm.then(|| {
                        EnsembleNorm::with_eps(&(&p / format!("norm{}", i + 1)), members, h, 1e-5)
                    });
                    layers.push((fc, norm));
                    d = h * options.activation.width_factor();
                }
                (CriticBody::Mlp(layers, options.activation), d)
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
                )
            }
        };
        let (out_w, out_b) = head_init(arch, width);
        Self {
            body,
            out: EnsembleLinear::new(&(&p / "out"), members, width, 1, out_w, out_b),
            injected: None,
            members,
            width,
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
            CriticBody::Mlp(layers, activation) => {
                let mut x = input;
                for (l, norm) in layers {
                    x = l.forward(&x, detached);
                    if let Some(n) = norm {
                        x = n.forward(&x, detached);
                    }
                    x = activation.apply(&x, -1);
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
        let q = self.out.forward(&features, detached);
        let q = match &self.injected {
            // h + (h' - h'_0): h' - h'_0 is exactly zero at the moment of injection.
            Some((fresh, frozen)) => {
                q + (fresh.forward(&features, detached) - frozen.forward(&features, detached))
            }
            None => q,
        };
        (q.squeeze_dim(-1), features, hidden)
    }

    /// Whether plasticity injection was applied.
    pub fn is_injected(&self) -> bool {
        self.injected.is_some()
    }

    /// Plasticity injection: adds the Q heads `critic.injected.out` and
    /// `critic.injected_frozen.out` (every member's, zero-initialised, drawing nothing from
    /// the generator) under `root`. The caller sets their values and freezes the old head and
    /// the frozen twin.
    pub fn inject(&mut self, root: &nn::Path) {
        let build = |prefix: &str| {
            let p = root / "critic" / prefix / "out";
            let zero = || Init::Const(0.0);
            EnsembleLinear::new(&p, self.members, self.width, 1, zero(), zero())
        };
        self.injected = Some((build(INJECTED[0]), build(INJECTED[1])));
    }

    /// The hidden layers ReDo recycles, as `(prefix, prefixes of the layers that read it)`
    /// without the member (`critic.fc1`), in the order of
    /// [`forward_with_features`](Self::forward_with_features)' activations: for the MLP each
    /// `fc<k>` (the last one read by the Q head, the injected ones included), for SimBa each
    /// block's `fc1` (read by its `fc2`).
    pub fn redo_layers(&self) -> Vec<(String, Vec<String>)> {
        match &self.body {
            CriticBody::Mlp(layers, _) => {
                let n = layers.len();
                (1..=n)
                    .map(|k| {
                        let consumers = if k < n {
                            vec![format!("critic.fc{}", k + 1)]
                        } else {
                            let mut heads = vec!["critic.out".to_string()];
                            if self.is_injected() {
                                heads.extend(INJECTED.map(|p| format!("critic.{p}.out")));
                            }
                            heads
                        };
                        (format!("critic.fc{k}"), consumers)
                    })
                    .collect()
            }
            CriticBody::Simba { blocks, .. } => (1..=blocks.len())
                .map(|k| {
                    (
                        format!("critic.block{k}.fc1"),
                        vec![format!("critic.block{k}.fc2")],
                    )
                })
                .collect(),
        }
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
