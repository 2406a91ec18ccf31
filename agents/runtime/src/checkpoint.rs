//! Atomic checkpoints: `checkpoint/tensors.safetensors` and `checkpoint/state.json`.
//!
//! The tensors are written first, then the state; each goes to a temporary name and is renamed.
//! The state names the tensor file's size, so a crash between the two renames is detected and
//! the previous pair is never mixed with a new one unnoticed.

use std::path::Path;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tch::Tensor;

use crate::{io, Error, Result};

/// The state file's name inside the checkpoint directory.
pub const STATE_FILE: &str = "state.json";
const TENSOR_FILE: &str = "tensors.safetensors";

#[derive(Serialize, Deserialize)]
struct Envelope<S> {
    format: u32,
    tensor_bytes: u64,
    state: S,
}

const FORMAT: u32 = 1;

/// Writes `tensors` and `state` into `dir` (created if needed).
pub fn save<S: Serialize>(dir: &Path, tensors: Vec<(String, Tensor)>, state: &S) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tensor_path = dir.join(TENSOR_FILE);
    let cpu = tensors
        .into_iter()
        .map(|(n, t)| {
            Ok((
                n,
                t.f_to_device(tch::Device::Cpu).map_err(fire::Error::from)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    fire::tensor_file::TensorFile {
        tensors: cpu,
        metadata: None,
    }
    .write(&tensor_path)?;
    let tensor_bytes = std::fs::metadata(&tensor_path)
        .map_err(io(&tensor_path))?
        .len();
    let envelope = Envelope {
        format: FORMAT,
        tensor_bytes,
        state,
    };
    let json = serde_json::to_vec_pretty(&envelope).map_err(|e| Error::Checkpoint {
        path: dir.to_owned(),
        reason: e.to_string(),
    })?;
    fire::tensor_file::write_atomic(&dir.join(STATE_FILE), &json)?;
    Ok(())
}

/// Reads a checkpoint written by [`save`].
pub fn load<S: DeserializeOwned>(dir: &Path) -> Result<(Vec<(String, Tensor)>, S)> {
    let bad = |reason: String| Error::Checkpoint {
        path: dir.to_owned(),
        reason,
    };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(io(&state_path))?;
    let envelope: Envelope<S> =
        serde_json::from_slice(&text).map_err(|e| bad(format!("unreadable state: {e}")))?;
    if envelope.format != FORMAT {
        return Err(bad(format!(
            "format {} (this build reads {FORMAT})",
            envelope.format
        )));
    }
    let tensor_path = dir.join(TENSOR_FILE);
    let size = std::fs::metadata(&tensor_path)
        .map_err(io(&tensor_path))?
        .len();
    if size != envelope.tensor_bytes {
        return Err(bad(
            "the tensor file does not belong to this state (interrupted write?)".into(),
        ));
    }
    let file = fire::tensor_file::TensorFile::read(&tensor_path)?;
    Ok((file.tensors, envelope.state))
}
