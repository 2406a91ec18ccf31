//! Q-networks with role-named parameters: `q.encoder.*` (features) and `q.head.*` (values).

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::{Device, Kind, Tensor};

use agent::{Activation, NetworkOptions};

use crate::Result;

/// Which network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Mnih et al. (2015): three convs (32 8x8/4, 64 4x4/2, 64 3x3/1) on 84x84 frames scaled to
    /// [0, 1], then 512 units and one output per action.
    NatureCnn {
        /// Stacked frames (input channels).
        frames: i64,
    },
    /// Young & Tian (2019), MinAtar's reference DQN (`examples/dqn.py`): one conv (16 3x3/1)
    /// on the 10x10 0/1 state, then 128 units and one output per action; PyTorch's default
    /// initialisation, as that script has (weights and biases uniform in +-1/sqrt(fan_in)).
    MinatarCnn {
        /// State channels (the game's, or the largest of a sequence of games).
        channels: i64,
    },
    /// Fully connected layers on a flat `f32` observation.
    Mlp {
        /// Observation length.
        obs_dim: i64,
        /// Hidden widths.
        hidden: Vec<i64>,
    },
}

impl Architecture {
    /// Shape of one observation: `[frames, 84, 84]`, `[channels, 10, 10]` or `[obs_dim]`.
    pub fn obs_shape(&self) -> Vec<i64> {
        match self {
            Architecture::NatureCnn { frames } => vec![*frames, 84, 84],
            Architecture::MinatarCnn { channels } => vec![*channels, 10, 10],
            Architecture::Mlp { obs_dim, .. } => vec![*obs_dim],
        }
    }
}

/// A Q-network: `forward` gives Q-values; `forward_with_features` also the hidden
/// activations (the last of which is the penultimate feature the diagnostics use).
///
/// Every hidden layer is `act(norm(W x + b))`: `norm` a LayerNorm when
/// [`NetworkOptions::layer_norm`] is set (`q.encoder.norm<k>`, `q.head.norm<k>`), `act` ReLU
/// or CReLU ([`NetworkOptions::activation`], which doubles the next layer's inputs).
#[derive(Debug)]
pub struct QNetwork {
    encoder: Vec<Layer>,
    /// The head's layers, each with the LayerNorm after it (none after the output layer).
    head: Vec<(nn::Linear, Option<nn::LayerNorm>)>,
    scale_pixels: bool,
    activation: Activation,
    /// Parameter prefixes of the weight layers in order (`q.encoder.conv1`, ..., `q.head.fc2`):
    /// hidden activation `k` of `forward_with_features` is produced by layer `k` and consumed
    /// by layer `k + 1`.
    layers: Vec<String>,
    /// Plasticity injection: a trainable fresh head and its frozen initial copy.
    injected: Option<(Vec<nn::Linear>, Vec<nn::Linear>)>,
    /// Shapes of the head's layers `(d_in, d_out)`, to build injected heads alike.
    head_shapes: Vec<(i64, i64)>,
}

#[derive(Debug)]
enum Layer {
    /// A convolution, its stride (no padding) and the LayerNorm over its output.
    Conv(nn::Conv2D, i64, Option<nn::LayerNorm>),
    Flatten,
    Linear(nn::Linear, Option<nn::LayerNorm>),
}

/// PyTorch's `nn.LayerNorm(shape)`: eps 1e-5, a learned scale and offset of that shape.
fn layer_norm(path: nn::Path, shape: Vec<i64>) -> nn::LayerNorm {
    nn::layer_norm(path, shape, nn::LayerNormConfig::default())
}

/// Glorot/Xavier uniform, as the FIRE paper's DQN initialises its layers (biases zero).
fn xavier(fan_in: i64, fan_out: i64) -> Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn linear(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    nn::linear(
        path,
        d_in,
        d_out,
        nn::LinearConfig {
            ws_init: xavier(d_in, d_out),
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        },
    )
}

/// PyTorch's default for `nn.Conv2d` and `nn.Linear` (Kaiming uniform with a = sqrt(5)):
/// weights and biases uniform in +-1/sqrt(fan_in).
fn torch_default(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn torch_linear(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let init = torch_default(d_in);
    nn::linear(
        path,
        d_in,
        d_out,
        nn::LinearConfig {
            ws_init: init,
            bs_init: Some(init),
            bias: true,
        },
    )
}

impl QNetwork {
    /// Builds the network under `root / "q"` with `actions` outputs and hidden layers as
    /// `options` says.
    pub fn new(
        root: &nn::Path,
        arch: &Architecture,
        actions: i64,
        options: NetworkOptions,
    ) -> Self {
        let q = root / "q";
        let enc = &q / "encoder";
        let head = &q / "head";
        // Each hidden layer's output width is multiplied by this for the layer reading it.
        let wide = options.activation.width_factor();
        let norm = |path: &nn::Path, k: usize, shape: Vec<i64>| {
            options
                .layer_norm
                .then(|| layer_norm(path / format!("norm{k}"), shape))
        };
        // The head: hidden widths then the actions, each hidden layer normalised.
        let build_head = |name: &dyn Fn(usize) -> String,
                          make: &dyn Fn(nn::Path, i64, i64) -> nn::Linear,
                          d_in: i64,
                          hidden: &[i64]| {
            let mut layers = Vec::new();
            let mut shapes = Vec::new();
            let mut d = d_in;
            for (k, &h) in hidden.iter().enumerate() {
                layers.push((make(&head / name(k), d, h), norm(&head, k + 1, vec![h])));
                shapes.push((d, h));
                d = h * wide;
            }
            layers.push((make(&head / name(hidden.len()), d, actions), None));
            shapes.push((d, actions));
            (layers, shapes)
        };
        match arch {
            Architecture::NatureCnn { frames } => {
                // (in, out, kernel, stride, output side) on 84x84 frames.
                let specs = [
                    (*frames, 32, 8, 4, 20),
                    (32 * wide, 64, 4, 2, 9),
                    (64 * wide, 64, 3, 1, 7),
                ];
                let mut encoder: Vec<Layer> = specs
                    .iter()
                    .enumerate()
                    .map(|(k, &(c_in, c_out, size, stride, side))| {
                        let cfg = nn::ConvConfig {
                            stride,
                            ws_init: xavier(c_in * size * size, c_out * size * size),
                            bs_init: Init::Const(0.0),
                            ..Default::default()
                        };
                        let conv =
                            nn::conv2d(&enc / format!("conv{}", k + 1), c_in, c_out, size, cfg);
                        Layer::Conv(conv, stride, norm(&enc, k + 1, vec![c_out, side, side]))
                    })
                    .collect();
                encoder.push(Layer::Flatten);
                let (head, head_shapes) = build_head(
                    &|k| format!("fc{}", k + 1),
                    &|p, i, o| linear(p, i, o),
                    64 * wide * 7 * 7,
                    &[512],
                );
                Self {
                    encoder,
                    head,
                    scale_pixels: true,
                    activation: options.activation,
                    injected: None,
                    head_shapes,
                    layers: [
                        "q.encoder.conv1",
                        "q.encoder.conv2",
                        "q.encoder.conv3",
                        "q.head.fc1",
                        "q.head.fc2",
                    ]
                    .map(String::from)
                    .to_vec(),
                }
            }
            Architecture::MinatarCnn { channels } => {
                let cfg = nn::ConvConfig {
                    stride: 1,
                    ws_init: torch_default(channels * 9),
                    bs_init: torch_default(channels * 9),
                    ..Default::default()
                };
                let conv = nn::conv2d(&enc / "conv1", *channels, 16, 3, cfg);
                let (head, head_shapes) = build_head(
                    &|k| format!("fc{}", k + 1),
                    &|p, i, o| torch_linear(p, i, o),
                    16 * wide * 8 * 8,
                    &[128],
                );
                Self {
                    encoder: vec![
                        Layer::Conv(conv, 1, norm(&enc, 1, vec![16, 8, 8])),
                        Layer::Flatten,
                    ],
                    head,
                    // The state is 0/1 already.
                    scale_pixels: false,
                    activation: options.activation,
                    injected: None,
                    head_shapes,
                    layers: ["q.encoder.conv1", "q.head.fc1", "q.head.fc2"]
                        .map(String::from)
                        .to_vec(),
                }
            }
            Architecture::Mlp { obs_dim, hidden } => {
                let mut encoder = Vec::new();
                let mut layers = Vec::new();
                let mut d = *obs_dim;
                for (i, &h) in hidden.iter().enumerate() {
                    let fc = linear(&enc / format!("fc{}", i + 1), d, h);
                    encoder.push(Layer::Linear(fc, norm(&enc, i + 1, vec![h])));
                    layers.push(format!("q.encoder.fc{}", i + 1));
                    d = h * wide;
                }
                layers.push("q.head.out".into());
                let (head, head_shapes) =
                    build_head(&|_| "out".to_string(), &|p, i, o| linear(p, i, o), d, &[]);
                Self {
                    encoder,
                    head,
                    scale_pixels: false,
                    activation: options.activation,
                    injected: None,
                    head_shapes,
                    layers,
                }
            }
        }
    }

    /// The parameter globs of the output layer (`q.head.fc2.*`), which Parseval
    /// regularisation leaves alone.
    pub fn output_globs(&self) -> Vec<String> {
        self.layers
            .last()
            .map(|l| format!("{l}.*"))
            .into_iter()
            .collect()
    }

    /// Parameter prefixes of the weight layers, input to output.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// Q-values `[B, actions]` for observations (`u8` frames or `f32` vectors).
    pub fn forward(&self, obs: &Tensor) -> Tensor {
        self.forward_with_features(obs).0
    }

    /// Epsilon-greedy actions for a batch of observations (on the network's device): each row
    /// a uniform random action with probability `epsilon`, else the argmax of its Q-values.
    /// The network runs only if some row acts greedily (never while `epsilon` is 1, as in the
    /// random warm-up).
    pub fn epsilon_greedy(
        &self,
        obs: &Tensor,
        epsilon: f64,
        rng: &mut impl Rng,
    ) -> Result<Vec<i64>> {
        let actions = self.head_shapes.last().map_or(1, |&(_, d_out)| d_out);
        let rows = obs.size().first().copied().unwrap_or(0);
        let explored: Vec<Option<i64>> = (0..rows)
            .map(|_| (rng.random::<f64>() < epsilon).then(|| rng.random_range(0..actions)))
            .collect();
        if explored.iter().all(Option::is_some) {
            return Ok(explored.into_iter().flatten().collect());
        }
        let greedy = tch::no_grad(|| self.forward(obs).f_argmax(-1, false))?;
        let greedy = Vec::<i64>::try_from(&greedy.f_to_device(Device::Cpu)?)?;
        Ok(explored
            .into_iter()
            .zip(greedy)
            .map(|(random, greedy)| random.unwrap_or(greedy))
            .collect())
    }

    /// Q-values and the hidden activations after each activation (ReLU or CReLU), in order.
    ///
    /// Frames (`u8`) are scaled to [0, 1] by folding 1/255 into the first convolution's
    /// weights (`conv(x / 255, W) = conv(x, W / 255)`: a pass over 8k weights instead of over
    /// the batch's 900k pixels), and convolutions run on channels-last (NHWC) activations,
    /// oneDNN's native layout on the CPU and cuDNN's fastest on tensor cores.
    pub fn forward_with_features(&self, obs: &Tensor) -> (Tensor, Vec<Tensor>) {
        // Channels-last pays on the Nature CNN's 84x84 frames; on MinAtar's 10x10 grids the
        // two permutations cost more than they save.
        let convolutional = matches!(self.encoder.first(), Some(Layer::Conv(..)));
        let mut x = if convolutional && self.scale_pixels {
            // NHWC strides, laid out on the bytes before they become floats (a quarter of the
            // traffic); `to_kind` keeps the strides.
            obs.permute([0, 2, 3, 1])
                .contiguous()
                .permute([0, 3, 1, 2])
                .to_kind(Kind::Float)
        } else {
            obs.to_kind(Kind::Float)
        };
        let mut hidden = Vec::new();
        let act = |y: Tensor, norm: &Option<nn::LayerNorm>| {
            let y = match norm {
                Some(n) => n.forward(&y),
                None => y,
            };
            self.activation.apply(&y, 1)
        };
        for (i, layer) in self.encoder.iter().enumerate() {
            x = match layer {
                Layer::Conv(c, stride, norm) => {
                    let y = if i == 0 && self.scale_pixels {
                        x.conv2d(
                            &(&c.ws * (1.0 / 255.0)),
                            c.bs.as_ref(),
                            [*stride; 2],
                            [0; 2],
                            [1; 2],
                            1,
                        )
                    } else {
                        x.conv2d(&c.ws, c.bs.as_ref(), [*stride; 2], [0; 2], [1; 2], 1)
                    };
                    act(y, norm)
                }
                Layer::Linear(l, norm) => act(l.forward(&x), norm),
                // Back to NCHW order first: the head's weights read features as (C, H, W).
                Layer::Flatten => x.contiguous().flatten(1, -1),
            };
            if !matches!(layer, Layer::Flatten) {
                hidden.push(x.shallow_clone());
            }
        }
        let features = x.shallow_clone();
        let last = self.head.len() - 1;
        for (i, (l, norm)) in self.head.iter().enumerate() {
            x = l.forward(&x);
            if i < last {
                x = act(x, norm);
                hidden.push(x.shallow_clone());
            }
        }
        if let Some((fresh, frozen)) = &self.injected {
            // h(phi) + h'(phi) - h'_0(phi): unchanged at the moment of injection.
            x = x + run_head(fresh, &features) - run_head(frozen, &features);
        }
        (x, hidden)
    }

    /// Whether plasticity injection was applied.
    pub fn is_injected(&self) -> bool {
        self.injected.is_some()
    }

    /// Plasticity injection (Nikishin et al., 2023): adds a fresh head under
    /// `q.injected.*` and a frozen copy of it under `q.injected_frozen.*`. The caller
    /// freezes the old head and copies `injected` into `injected_frozen`.
    pub fn inject(&mut self, root: &nn::Path) {
        let build = |prefix: &str| -> Vec<nn::Linear> {
            let p = root / "q" / prefix;
            self.head_shapes
                .iter()
                .enumerate()
                .map(|(i, &(d_in, d_out))| linear(&p / format!("fc{}", i + 1), d_in, d_out))
                .collect()
        };
        let fresh = build("injected");
        let frozen = build("injected_frozen");
        self.injected = Some((fresh, frozen));
    }
}

fn run_head(layers: &[nn::Linear], x: &Tensor) -> Tensor {
    let mut x = x.shallow_clone();
    for (i, l) in layers.iter().enumerate() {
        x = l.forward(&x);
        if i + 1 < layers.len() {
            x = x.relu();
        }
    }
    x
}
