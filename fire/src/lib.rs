//! FIRE (Frobenius-Isometry Reinitialization) and the other reset methods, plasticity
//! diagnostics and schedules, on libtorch through `tch`.
//!
//! # Brief overview
//!
//! * [`orthogonalize`](mod@orthogonalize) computes orthogonal polar factors of (batches of)
//!   matrices: the paper's cubic Newton–Schulz ([`Orthogonalizer::NewtonSchulz`]), an
//!   accuracy-controlled variant ([`Orthogonalizer::Tolerance`]) and the exact SVD factor
//!   ([`Orthogonalizer::Exact`]), and the two measures of the paper: DfI (deviation from
//!   isometry) and SFE (squared Frobenius error).
//! * [`layer`] knows what a named parameter is ([`ParamRole`]: conv kernel, linear weight,
//!   bias, norm) and applies FIRE to one weight with the paper's scaling.
//! * [`Intervention`] acts in place on selected parameters ([`ParamSelector`]) of a network:
//!   FIRE, reset to theta_0 (of everything or of chosen layers), shrink & perturb in both
//!   forms; [`redo`] recycles dormant neurons. Each reports SFE and DfI per parameter.
//! * [`metrics`]: dormant ratio, effective rank, srank, weight/gradient/feature norms, and
//!   Plasticine's fraction of active units, distance from theta_0 and global gradient norm.
//! * [`regularize`]: penalties added to the loss at every update ([`Regularizer`]): L2,
//!   regenerative L2 towards theta_0 (Kumar et al. 2023) and Parseval regularisation (Chung et
//!   al. 2024), each with its paper's default strength; [`project`]: normalize-and-project's
//!   step back to the initial weight norms (Lyle et al. 2024).
//! * [`schedule`]: step counts like `1M`, and when to intervene (at steps, every N steps, on a
//!   metric threshold with a cooldown).
//! * [`tensor_file`]: safetensors checkpoints in and out, atomically.
//! * [`Method`] names an intervention as users type it (`fire`, `full-reset`, ...), one type
//!   for the `fire` tool, the agents and the binaries; [`DeviceChoice`] names a device.
//!
//! The crate knows nothing of agents or environments: those crates call into it.
//!
//! # Example
//!
//! ```
//! use fire::{Intervention, Orthogonalizer, ParamRole, ParamSelector, Sources};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let _fc = nn::linear(vs.root() / "fc", 64, 32, Default::default());
//! let params = fire::params_of(&vs);
//! let reports = Intervention::Fire(Orthogonalizer::default())
//!     .apply(&params, &ParamSelector::all(), Sources::default())
//!     .unwrap();
//! assert_eq!(reports.len(), 1); // the weight; the bias is left alone
//! assert!(reports[0].dfi_after.unwrap() < 1e-3);
//! ```
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod intervention;
pub mod layer;
pub mod method;
pub mod metrics;
pub mod orthogonalize;
pub mod project;
pub mod redo;
pub mod regularize;
pub mod schedule;
pub mod select;
pub mod tensor_file;

pub use error::{Error, Result};
pub use intervention::{
    params_of, Action, Intervention, NamedTensors, ParamReport, ParamSnapshot, ShrinkPerturb,
    Sources,
};
pub use layer::{fire_scale, fire_weight, isometry_dfi, ParamRole};
pub use method::{DeviceChoice, Method, MethodConfig};
pub use orthogonalize::{dfi, orthogonalize, sfe, Orthogonalized, Orthogonalizer};
pub use regularize::{penalty, Regularizer};
pub use schedule::{parse_steps, Schedule, Scheduler};
pub use select::ParamSelector;
