//! The FIRE demo: one MLP learns a sequence of memorisation tasks (the same inputs, fresh
//! random labels each task), and between tasks one intervention is applied. A network that
//! keeps its plasticity fits every new task; one that loses it fits later tasks worse.
//! Every number printed is measured in the run: accuracy at the end of each task, and at each
//! boundary the intervention's SFE (what it cost in stability) and the network's DfI, dormant
//! ratio and feature rank.

use anyhow::{Context, Result};
use fire::{
    metrics, params_of, Intervention, Orthogonalizer, ParamSelector, ParamSnapshot, ShrinkPerturb,
    Sources,
};
use serde::Serialize;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// What to do between tasks: the workspace's one intervention type. The demo supports
/// `none`, the FIRE variants, `full-reset` and `shrink-perturb` (on every parameter);
/// [`run`] refuses the others, which need an agent.
pub use fire::Method;

/// The demo's knobs.
#[derive(Clone, Debug, Serialize)]
pub struct DemoConfig {
    /// Number of tasks in the sequence.
    pub tasks: usize,
    /// Full-batch Adam steps per task.
    pub steps_per_task: usize,
    /// Samples per task (the same inputs every task).
    pub samples: i64,
    /// Input dimension.
    pub input_dim: i64,
    /// Hidden width of the two hidden layers.
    pub width: i64,
    /// Number of classes.
    pub classes: i64,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of inputs, labels and initial weights (shared by every method).
    pub seed: i64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            tasks: 10,
            steps_per_task: 400,
            samples: 1024,
            input_dim: 32,
            width: 256,
            classes: 10,
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

/// Measurements of one task.
#[derive(Clone, Debug, Serialize)]
pub struct TaskResult {
    /// The method.
    pub method: Method,
    /// Task index (0-based).
    pub task: usize,
    /// Training accuracy at the end of the task.
    pub accuracy: f64,
    /// Cross-entropy at the end of the task.
    pub loss: f64,
    /// SFE of the intervention before this task (0 for the first task and for `none`).
    pub sfe: f64,
    /// Sum of the layers' isometry DfI at the start of the task (after any intervention).
    pub dfi: f64,
    /// tau = 0.1 dormant ratio of the hidden layers at the end of the task.
    pub dormant_ratio: f64,
    /// Effective rank of the penultimate features at the end of the task.
    pub effective_rank: f64,
}

struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    head: nn::Linear,
}

impl Mlp {
    fn new(vs: &nn::VarStore, cfg: &DemoConfig) -> Self {
        let root = vs.root() / "net";
        Self {
            fc1: nn::linear(&root / "fc1", cfg.input_dim, cfg.width, Default::default()),
            fc2: nn::linear(&root / "fc2", cfg.width, cfg.width, Default::default()),
            head: nn::linear(&root / "head", cfg.width, cfg.classes, Default::default()),
        }
    }

    /// Logits and the hidden activations (after ReLU) of both hidden layers.
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let h1 = self.fc1.forward(x).relu();
        let h2 = self.fc2.forward(&h1).relu();
        (self.head.forward(&h2), h1, h2)
    }
}

/// Runs the task sequence with one method; `on_task` sees each result as it is measured.
pub fn run(
    method: Method,
    cfg: &DemoConfig,
    mut on_task: impl FnMut(&TaskResult),
) -> Result<Vec<TaskResult>> {
    let device = Device::Cpu;
    tch::manual_seed(cfg.seed);
    let inputs = Tensor::randn([cfg.samples, cfg.input_dim], (Kind::Float, device));
    let labels: Vec<Tensor> = (0..cfg.tasks)
        .map(|_| Tensor::randint(cfg.classes, [cfg.samples], (Kind::Int64, device)))
        .collect();
    tch::manual_seed(cfg.seed + 1);
    let vs = nn::VarStore::new(device);
    let net = Mlp::new(&vs, cfg);
    let initial = ParamSnapshot::capture(&params_of(&vs));
    let everything = ParamSelector::all();

    let mut results = Vec::with_capacity(cfg.tasks);
    for (task, y) in labels.iter().enumerate() {
        let mut sfe = 0.0;
        if task > 0 {
            let intervention = match method {
                Method::None => None,
                Method::Fire => Some(Intervention::Fire(Orthogonalizer::default())),
                Method::FireExact => Some(Intervention::Fire(Orthogonalizer::Exact)),
                Method::FireTol => Some(Intervention::Fire(Orthogonalizer::Tolerance {
                    tol: 1e-6,
                    max_iters: 100,
                })),
                Method::FullReset => Some(Intervention::Reset),
                Method::ShrinkPerturb => Some(Intervention::ShrinkPerturb(ShrinkPerturb::PAPER)),
                Method::Redo | Method::PlasticityInjection | Method::LayerReset => {
                    return Err(fire::Error::InvalidConfig {
                        what: "method",
                        reason: format!("the demo does not run {method} (it needs an agent)"),
                    }
                    .into())
                }
            };
            if let Some(intervention) = intervention {
                let sources = Sources {
                    initial: Some(&initial),
                    fresh: None,
                };
                let reports = intervention
                    .apply(&params_of(&vs), &everything, sources)
                    .with_context(|| format!("{method} before task {task}"))?;
                sfe = reports.iter().map(|r| r.sfe).sum();
            }
        }
        let dfi = layer_dfi(&vs)?;
        // A fresh Adam per task, as in the paper's vision experiments.
        let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate)?;
        for _ in 0..cfg.steps_per_task {
            let (logits, _, _) = net.forward(&inputs);
            let loss = logits.cross_entropy_for_logits(y);
            opt.backward_step(&loss);
        }
        let (logits, h1, h2) = tch::no_grad(|| net.forward(&inputs));
        let loss = logits
            .f_log_softmax(-1, Kind::Float)?
            .f_nll_loss(y, None::<Tensor>, tch::Reduction::Mean, -100)?
            .f_double_value(&[])?;
        if !loss.is_finite() {
            anyhow::bail!("{method}: the loss became {loss} on task {task}");
        }
        let accuracy = logits
            .f_argmax(-1, false)?
            .f_eq_tensor(y)?
            .f_to_kind(Kind::Float)?
            .f_mean(Kind::Double)?
            .f_double_value(&[])?;
        let result = TaskResult {
            method,
            task,
            accuracy,
            loss,
            sfe,
            dfi,
            dormant_ratio: metrics::dormant(&[&h1, &h2], 0.1)?.ratio(),
            effective_rank: metrics::effective_rank(&h2)?,
        };
        on_task(&result);
        results.push(result);
    }
    Ok(results)
}

fn layer_dfi(vs: &nn::VarStore) -> Result<f64> {
    let mut total = 0.0;
    for (name, t) in params_of(vs) {
        let role = fire::ParamRole::classify(&name, &t.size());
        if role.is_matrix() {
            total += fire::isometry_dfi(role, &t)?;
        }
    }
    Ok(total)
}
