//! Atomic checkpoints: `checkpoint/tensors.safetensors` and `checkpoint/state.json`.
//!
//! The tensors are written first, then the state; each goes to a temporary name and is renamed.
//! The state records the size and CRC-32C of the tensor file (and of any other file of the
//! checkpoint, such as the saved replay), so a crash between the renames, a file from another
//! run of the same shape, or damaged bytes are detected on load instead of surfacing later as
//! a NaN loss.

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
    /// Size and CRC-32C of each file of the checkpoint, by name.
    files: std::collections::BTreeMap<String, FileSum>,
    state: S,
}

/// What a checkpoint file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileSum {
    bytes: u64,
    crc32c: u32,
}

impl FileSum {
    fn of(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(io(path))?;
        Ok(Self {
            bytes: data.len() as u64,
            crc32c: crate::tfevents::crc32c(&data),
        })
    }
}

const FORMAT: u32 = 2;

/// Writes `tensors` and `state` into `dir` (created if needed). `extra` names files already
/// written into `dir` that belong to this checkpoint (the replay): their sums are recorded.
pub fn save<S: Serialize>(
    dir: &Path,
    tensors: Vec<(String, Tensor)>,
    state: &S,
    extra: &[&str],
) -> Result<()> {
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
    let mut files = std::collections::BTreeMap::new();
    for name in std::iter::once(TENSOR_FILE).chain(extra.iter().copied()) {
        files.insert(name.to_owned(), FileSum::of(&dir.join(name))?);
    }
    let envelope = Envelope {
        format: FORMAT,
        files,
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
    verify(dir, &envelope.files, TENSOR_FILE)?;
    let tensor_path = dir.join(TENSOR_FILE);
    let file = fire::tensor_file::TensorFile::read(&tensor_path)?;
    Ok((file.tensors, envelope.state))
}

fn verify(
    dir: &Path,
    files: &std::collections::BTreeMap<String, FileSum>,
    name: &str,
) -> Result<()> {
    let bad = |reason: String| Error::Checkpoint {
        path: dir.to_owned(),
        reason,
    };
    let expected = files
        .get(name)
        .ok_or_else(|| bad(format!("{STATE_FILE} records no {name}")))?;
    if FileSum::of(&dir.join(name))? != *expected {
        return Err(bad(format!(
            "{name} does not match its size and checksum in {STATE_FILE} (damaged, or from another run or an interrupted write)"
        )));
    }
    Ok(())
}

/// Checks a file that [`save`] recorded as part of the checkpoint in `dir` (e.g. the replay)
/// before it is loaded.
pub fn verify_file(dir: &Path, name: &str) -> Result<()> {
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(io(&state_path))?;
    let envelope: Envelope<serde::de::IgnoredAny> =
        serde_json::from_slice(&text).map_err(|e| Error::Checkpoint {
            path: dir.to_owned(),
            reason: format!("unreadable state: {e}"),
        })?;
    verify(dir, &envelope.files, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_or_foreign_files_are_refused_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tensors = || vec![("w".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0]))];
        std::fs::write(d.join("replay.bin"), b"replay bytes").unwrap();
        save(d, tensors(), &7u32, &["replay.bin"]).unwrap();
        let (loaded, state): (Vec<(String, Tensor)>, u32) = load(d).unwrap();
        assert_eq!((loaded.len(), state), (1, 7));
        verify_file(d, "replay.bin").unwrap();
        // Same size, other bytes: a tensor file of another run of the same shape.
        let path = d.join(TENSOR_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = load::<u32>(d).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        std::fs::write(d.join("replay.bin"), b"replay bytez").unwrap();
        assert!(verify_file(d, "replay.bin").is_err());
    }
}
