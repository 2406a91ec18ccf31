//! Crash-safe checkpoints: `checkpoint/state.json` names the files of the checkpoint.
//!
//! A checkpoint is a generation of files, `tensors.<g>.safetensors` and any others the caller
//! adds (the saved replay: `replay.<g>.bin`), written next to the previous generation without
//! touching it. The commit is one atomic rename of `state.json`, which records each file's
//! name, size and CRC-32C. So a process killed at any moment (`kill -9` in the middle of a
//! write included) leaves either the old checkpoint or the new one, never a mix; files of an
//! unfinished generation are removed by the next commit. The sums also catch a file from
//! another run of the same shape, or damaged bytes, on load instead of later as a NaN loss.
//!
//! ```text
//! checkpoint/
//!   state.json               {"format": 3, "files": {"tensors": {"file": "tensors.7.safetensors", ...}}, "state": ...}
//!   tensors.7.safetensors
//!   replay.7.bin
//! ```
//!
//! Checkpoints of format 2 (fixed names `tensors.safetensors`, `replay.bin`) still load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tch::Tensor;

use crate::{io, Error, Result};

/// The state file's name inside the checkpoint directory.
pub const STATE_FILE: &str = "state.json";
/// The logical name of the tensor file.
const TENSORS: &str = "tensors";

const FORMAT: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Envelope<S> {
    format: u32,
    /// Each file of the checkpoint by logical name (format 2: by file name).
    files: BTreeMap<String, FileSum>,
    state: S,
}

/// Where a checkpoint file is and what it must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileSum {
    /// The file's name in the checkpoint directory (absent in format 2, where the logical
    /// name was the file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    bytes: u64,
    crc32c: u32,
}

impl FileSum {
    fn of(path: &Path, file: Option<String>) -> Result<Self> {
        let data = std::fs::read(path).map_err(io(path))?;
        Ok(Self {
            file,
            bytes: data.len() as u64,
            crc32c: crate::tfevents::crc32c(&data),
        })
    }
}

/// A checkpoint being written: files go to this generation's names; nothing is visible to
/// [`load`] until [`commit`](Self::commit).
pub struct Writer {
    dir: PathBuf,
    generation: u64,
    /// Logical name -> file name, of the files the caller wrote.
    files: Vec<(String, String)>,
}

impl Writer {
    /// Starts the next generation in `dir` (created if needed).
    pub fn begin(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let newest = generations(dir)?.into_iter().map(|(_, g)| g).max();
        Ok(Self {
            dir: dir.to_owned(),
            generation: newest.map_or(1, |g| g + 1),
            files: Vec::new(),
        })
    }

    /// The path the caller writes the file `logical` (e.g. `replay`) of this generation to.
    pub fn path(&mut self, logical: &str, extension: &str) -> PathBuf {
        let file = format!("{logical}.{}.{extension}", self.generation);
        self.files.push((logical.to_owned(), file.clone()));
        self.dir.join(file)
    }

    /// Writes `tensors`, then commits: `state.json` (with every file's sum) replaces the old
    /// one in one rename, and the files of other generations are removed.
    pub fn commit<S: Serialize>(mut self, tensors: Vec<(String, Tensor)>, state: &S) -> Result<()> {
        let tensor_path = self.path(TENSORS, "safetensors");
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
        let mut files = BTreeMap::new();
        for (logical, file) in &self.files {
            let sum = FileSum::of(&self.dir.join(file), Some(file.clone()))?;
            files.insert(logical.clone(), sum);
        }
        let envelope = Envelope {
            format: FORMAT,
            files,
            state,
        };
        let json = serde_json::to_vec_pretty(&envelope).map_err(|e| Error::Checkpoint {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        fire::tensor_file::write_atomic(&self.dir.join(STATE_FILE), &json)?;
        // Committed: what other generations (the previous one, a killed write's) left is garbage.
        for (path, g) in generations(&self.dir)? {
            if g != self.generation {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        for legacy in ["tensors.safetensors", "replay.bin"] {
            let _ = std::fs::remove_file(self.dir.join(legacy));
        }
        Ok(())
    }
}

/// Files named `<stem>.<generation>.<extension>` in `dir`, with their generation.
fn generations(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut parts = name.split('.');
        if let (Some(_), Some(g), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let Ok(g) = g.parse::<u64>() {
                out.push((entry.path(), g));
            }
        }
    }
    Ok(out)
}

/// Writes a checkpoint of `tensors` and `state` into `dir`: [`Writer::begin`] then
/// [`Writer::commit`], for checkpoints without other files.
pub fn save<S: Serialize>(dir: &Path, tensors: Vec<(String, Tensor)>, state: &S) -> Result<()> {
    Writer::begin(dir)?.commit(tensors, state)
}

/// Reads a checkpoint's tensors and state.
pub fn load<S: DeserializeOwned>(dir: &Path) -> Result<(Vec<(String, Tensor)>, S)> {
    let envelope: Envelope<S> = read_envelope(dir)?;
    let tensor_path = verified(dir, &envelope.files, TENSORS)?;
    let file = fire::tensor_file::TensorFile::read(&tensor_path)?;
    Ok((file.tensors, envelope.state))
}

/// The path of the checkpoint's file `logical` (e.g. `replay`), checked against its size
/// and checksum; `None` if the checkpoint has no such file.
pub fn file(dir: &Path, logical: &str) -> Result<Option<PathBuf>> {
    let envelope: Envelope<serde::de::IgnoredAny> = read_envelope(dir)?;
    if lookup(&envelope.files, logical).is_none() {
        return Ok(None);
    }
    verified(dir, &envelope.files, logical).map(Some)
}

fn read_envelope<S: DeserializeOwned>(dir: &Path) -> Result<Envelope<S>> {
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(io(&state_path))?;
    let envelope: Envelope<S> = serde_json::from_slice(&text).map_err(|e| Error::Checkpoint {
        path: dir.to_owned(),
        reason: format!("unreadable state: {e}"),
    })?;
    if !(2..=FORMAT).contains(&envelope.format) {
        return Err(Error::Checkpoint {
            path: dir.to_owned(),
            reason: format!(
                "format {} (this build reads 2 to {FORMAT})",
                envelope.format
            ),
        });
    }
    Ok(envelope)
}

/// The entry of `logical`: by logical name (format 3) or by format 2's fixed file name.
fn lookup<'a>(
    files: &'a BTreeMap<String, FileSum>,
    logical: &str,
) -> Option<(String, &'a FileSum)> {
    if let Some(sum) = files.get(logical) {
        let file = sum.file.clone().unwrap_or_else(|| logical.to_owned());
        return Some((file, sum));
    }
    let legacy = match logical {
        TENSORS => "tensors.safetensors",
        "replay" => "replay.bin",
        _ => return None,
    };
    files.get(legacy).map(|sum| (legacy.to_owned(), sum))
}

fn verified(dir: &Path, files: &BTreeMap<String, FileSum>, logical: &str) -> Result<PathBuf> {
    let bad = |reason: String| Error::Checkpoint {
        path: dir.to_owned(),
        reason,
    };
    let (file, expected) =
        lookup(files, logical).ok_or_else(|| bad(format!("{STATE_FILE} records no {logical}")))?;
    if file.contains('/') || file.contains('\\') || file.starts_with('.') {
        return Err(bad(format!(
            "{STATE_FILE} names a file outside the checkpoint: {file}"
        )));
    }
    let path = dir.join(&file);
    let found = FileSum::of(&path, expected.file.clone())?;
    if (found.bytes, found.crc32c) != (expected.bytes, expected.crc32c) {
        return Err(bad(format!(
            "{file} does not match its size and checksum in {STATE_FILE} (damaged, or from another run)"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors(v: f32) -> Vec<(String, Tensor)> {
        vec![("w".to_string(), Tensor::from_slice(&[v, 2.0, 3.0]))]
    }

    fn first(t: &[(String, Tensor)]) -> f64 {
        t[0].1.double_value(&[0])
    }

    #[test]
    fn damaged_or_foreign_files_are_refused_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut w = Writer::begin(d).unwrap();
        std::fs::write(w.path("replay", "bin"), b"replay bytes").unwrap();
        w.commit(tensors(1.0), &7u32).unwrap();
        let (loaded, state): (Vec<(String, Tensor)>, u32) = load(d).unwrap();
        assert_eq!((loaded.len(), state), (1, 7));
        let replay = file(d, "replay").unwrap().expect("recorded");
        assert_eq!(replay, d.join("replay.1.bin"));
        assert_eq!(file(d, "probe").unwrap(), None);
        // Same size, other bytes: a tensor file of another run of the same shape.
        let path = d.join("tensors.1.safetensors");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = load::<u32>(d).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        std::fs::write(&replay, b"replay bytez").unwrap();
        assert!(file(d, "replay").is_err());
    }

    /// What a process killed in the middle of a save leaves: files of a generation that
    /// `state.json` does not name. The old checkpoint still loads, and the next commit
    /// removes them.
    #[test]
    fn a_save_killed_before_its_commit_leaves_the_previous_checkpoint_intact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        save(d, tensors(1.0), &1u32).unwrap();
        // Killed after writing its replay and tensors, before renaming state.json.
        let mut w = Writer::begin(d).unwrap();
        std::fs::write(w.path("replay", "bin"), b"half").unwrap();
        std::fs::write(w.path(TENSORS, "safetensors"), b"half a tensor file").unwrap();
        drop(w);
        let (t, state): (Vec<(String, Tensor)>, u32) = load(d).unwrap();
        assert_eq!((first(&t), state), (1.0, 1));
        save(d, tensors(5.0), &3u32).unwrap();
        let (t, state): (Vec<(String, Tensor)>, u32) = load(d).unwrap();
        assert_eq!((first(&t), state), (5.0, 3));
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["state.json", "tensors.3.safetensors"]);
    }

    /// A checkpoint written by the previous format (fixed file names) loads.
    #[test]
    fn format_2_checkpoints_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fire::tensor_file::TensorFile {
            tensors: tensors(4.0),
            metadata: None,
        }
        .write(&d.join("tensors.safetensors"))
        .unwrap();
        std::fs::write(d.join("replay.bin"), b"old replay").unwrap();
        let sum = |name: &str| FileSum::of(&d.join(name), None).unwrap();
        let envelope = Envelope {
            format: 2,
            files: [
                ("tensors.safetensors".to_owned(), sum("tensors.safetensors")),
                ("replay.bin".to_owned(), sum("replay.bin")),
            ]
            .into(),
            state: 9u32,
        };
        std::fs::write(d.join(STATE_FILE), serde_json::to_vec(&envelope).unwrap()).unwrap();
        let (t, state): (Vec<(String, Tensor)>, u32) = load(d).unwrap();
        assert_eq!((first(&t), state), (4.0, 9));
        assert_eq!(file(d, "replay").unwrap(), Some(d.join("replay.bin")));
    }
}
