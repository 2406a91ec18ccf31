//! The one error type of the `fire` crate.

use std::path::PathBuf;

/// Everything that can go wrong in `fire`. Fields are named for what they hold: the operation,
/// the parameter's name, the shapes involved, the file's path.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- shapes and parameters ---------------------------------------------------------------
    /// An operation needs a matrix (2-D) or a batch of matrices (3-D) and got something else.
    #[error("{op}: expected a {expected} tensor, got shape {shape:?}")]
    Shape {
        op: &'static str,
        expected: &'static str,
        shape: Vec<i64>,
    },
    /// Two tensors that must agree in shape do not (e.g. a weight and its theta_0).
    #[error("parameter `{name}`: shape {actual:?} does not match {what} shape {expected:?}")]
    ShapeMismatch {
        name: String,
        what: &'static str,
        expected: Vec<i64>,
        actual: Vec<i64>,
    },
    /// A parameter the intervention needs is missing from a snapshot.
    #[error("parameter `{name}` is missing from {what}")]
    MissingParam { name: String, what: &'static str },
    /// A configuration value is out of its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidConfig { what: &'static str, reason: String },
    /// An input matrix contains NaN or infinity (`index` counts the matrices of the batch).
    #[error("{op}: matrix {index} of the input contains NaN or infinity")]
    NonFiniteInput { op: &'static str, index: usize },
    /// A parameter contains NaN or infinity (e.g. a diverged weight).
    #[error("parameter `{name}`: {what} is not finite")]
    NonFinite { name: String, what: &'static str },

    // --- parsing -----------------------------------------------------------------------------
    /// A step count such as `1M` or `250k` could not be parsed.
    #[error("invalid step count `{input}`: {reason}")]
    StepCount { input: String, reason: &'static str },
    /// A schedule or trigger expression could not be parsed.
    #[error("invalid schedule `{input}`: {reason}")]
    Schedule { input: String, reason: String },
    /// A glob pattern for parameter selection is malformed.
    #[error("invalid parameter pattern `{pattern}`: {source}")]
    Glob {
        pattern: String,
        source: globset::Error,
    },

    // --- files -------------------------------------------------------------------------------
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A write would replace something that is not a regular file (a device node such as
    /// `/dev/null`, a FIFO, a socket or a folder).
    #[error("{}: exists and is not a regular file; refusing to replace it", path.display())]
    NotRegularFile { path: PathBuf },
    /// A file is not a valid safetensors file (truncated, corrupt header, ...).
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Safetensors { path: PathBuf, reason: String },
    /// A tensor in a checkpoint uses a dtype this crate cannot convert.
    #[error("{}: tensor `{name}` has unsupported dtype {dtype}", path.display())]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    // --- libtorch ----------------------------------------------------------------------------
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
