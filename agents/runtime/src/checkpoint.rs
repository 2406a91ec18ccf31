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
    /// The size and CRC-32C of the file at `path`, read through a buffer of [`SUM_BUFFER`]
    /// bytes: a checkpoint's files (a 7 GB Atari replay) are never held in memory to be summed,
    /// neither after writing them nor when verifying them on load.
    fn of(path: &Path, file: Option<String>) -> Result<Self> {
        let input = std::fs::File::open(path).map_err(io(path))?;
        let (bytes, crc32c) = stream_sum(input, SUM_BUFFER).map_err(io(path))?;
        Ok(Self {
            file,
            bytes,
            crc32c,
        })
    }
}

/// The buffer checkpoint files are summed through.
const SUM_BUFFER: usize = 1 << 20;

/// The length and CRC-32C of everything `input` yields, read `buffer` bytes at a time.
fn stream_sum(mut input: impl std::io::Read, buffer: usize) -> std::io::Result<(u64, u32)> {
    let mut buf = vec![0u8; buffer.max(1)];
    let (mut len, mut crc) = (0u64, Crc32c::new());
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok((len, crc.finish())),
            Ok(n) => {
                crc.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// CRC-32C (Castagnoli, the sum TFRecord uses too) over data that arrives in pieces; eight
/// bytes a step (slicing-by-8).
struct Crc32c(u32);

/// `CRC_TABLES[0]` is the byte-wise table of the reflected polynomial; `CRC_TABLES[k][b]` is
/// the CRC of byte `b` followed by `k` zero bytes.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

impl Crc32c {
    fn new() -> Self {
        Self(!0)
    }

    fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut crc = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let lo = crc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
            crc = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in words.remainder() {
            crc = t[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    fn finish(&self) -> u32 {
        !self.0
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

    /// The sum computed while streaming is the whole-file CRC-32C (`tfevents::crc32c` over
    /// the file read at once, as checkpoints were summed before) for every size around the
    /// 8-byte steps and the read buffer, with buffers smaller and larger than the file, and
    /// through [`FileSum::of`] for files larger than its own buffer.
    #[test]
    fn streamed_checksums_equal_the_whole_file_checksum() {
        let data: Vec<u8> = (0..3 * SUM_BUFFER + 4093)
            .map(|i| {
                (i as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17) as u8
            })
            .collect();
        assert_eq!(stream_sum(&b"123456789"[..], 4).unwrap(), (9, 0xE306_9283));
        for len in [
            0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096, 4097, 100_003,
        ] {
            let whole = crate::tfevents::crc32c(&data[..len]);
            for buffer in [1, 3, 8, 64, 4096, 1 << 20] {
                assert_eq!(
                    stream_sum(&data[..len], buffer).unwrap(),
                    (len as u64, whole),
                    "{len} bytes through a {buffer}-byte buffer"
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            5,
            SUM_BUFFER - 1,
            SUM_BUFFER,
            SUM_BUFFER + 1,
            2 * SUM_BUFFER + 12_345,
            data.len(),
        ] {
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data[..len]).unwrap();
            let sum = FileSum::of(&path, None).unwrap();
            assert_eq!(
                (sum.bytes, sum.crc32c),
                (len as u64, crate::tfevents::crc32c(&data[..len])),
                "a file of {len} bytes"
            );
        }
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
