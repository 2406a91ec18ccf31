//! The optimiser an agent trains with: [`Adam`] (the FIRE paper's DQN and SAC) or [`RmsProp`]
//! (the MinAtar reference DQN), behind one type with the calls interventions and checkpoints
//! make (step, fresh state, new parameters, named state, the moments ReDo masks).

use tch::Tensor;

use crate::{Adam, AdamConfig, Result, RmsProp, RmsPropConfig};

/// Which optimiser, with its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// Adam or AdamW.
    Adam(AdamConfig),
    /// RMSprop, centered or not.
    RmsProp(RmsPropConfig),
}

/// An optimiser's state over named parameters.
#[derive(Debug)]
pub enum Optimizer {
    /// Adam or AdamW.
    Adam(Adam),
    /// RMSprop.
    RmsProp(RmsProp),
}

impl Optimizer {
    /// Fresh state for `params`.
    pub fn new(config: OptimizerConfig, params: &[(String, Tensor)]) -> Result<Self> {
        Ok(match config {
            OptimizerConfig::Adam(c) => Optimizer::Adam(Adam::new(c, params)?),
            OptimizerConfig::RmsProp(c) => Optimizer::RmsProp(RmsProp::new(c, params)?),
        })
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.step(params),
            Optimizer::RmsProp(o) => o.step(params),
        }
    }

    /// Adds zero state for parameters it does not know yet.
    pub fn track(&mut self, params: &[(String, Tensor)]) {
        match self {
            Optimizer::Adam(o) => o.track(params),
            Optimizer::RmsProp(o) => o.track(params),
        }
    }

    /// Zeroes the state and the step count.
    pub fn reset(&mut self) {
        match self {
            Optimizer::Adam(o) => o.reset(),
            Optimizer::RmsProp(o) => o.reset(),
        }
    }

    /// Updates taken so far.
    pub fn steps(&self) -> i64 {
        match self {
            Optimizer::Adam(o) => o.steps(),
            Optimizer::RmsProp(o) => o.steps(),
        }
    }

    /// Adam, if it is.
    pub fn adam(&self) -> Option<&Adam> {
        match self {
            Optimizer::Adam(o) => Some(o),
            Optimizer::RmsProp(_) => None,
        }
    }

    /// The two running statistics of `name` whose entries ReDo zeroes for recycled neurons:
    /// Adam's moments, RMSprop's square and gradient averages (the square average twice when
    /// not centered).
    pub fn moments(&self, name: &str) -> Option<(Tensor, Tensor)> {
        match self {
            Optimizer::Adam(o) => o
                .moments(name)
                .map(|(m, v)| (m.shallow_clone(), v.shallow_clone())),
            Optimizer::RmsProp(o) => match o.averages(name).as_slice() {
                [square] => Some((square.shallow_clone(), square.shallow_clone())),
                [square, grad] => Some((square.shallow_clone(), grad.shallow_clone())),
                _ => None,
            },
        }
    }

    /// The state as named tensors (`adam.*` or `rmsprop.*`), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        match self {
            Optimizer::Adam(o) => o.state_tensors(),
            Optimizer::RmsProp(o) => o.state_tensors(),
        }
    }

    /// Restores what [`state_tensors`](Self::state_tensors) wrote.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.load_state(tensors),
            Optimizer::RmsProp(o) => o.load_state(tensors),
        }
    }
}
