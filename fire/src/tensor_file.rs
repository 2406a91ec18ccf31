//! Reading and writing safetensors checkpoints (PyTorch state dicts saved with
//! `safetensors.torch.save_file`), keeping names, dtypes and the `__metadata__` header.
//! Writes are atomic: a temporary file in the target directory, renamed into place; see
//! [`write_atomic`] for what is refused and kept, and [`remove_stale_temp_files`] for the
//! leftovers of interrupted writes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The contents of a safetensors file.
#[derive(Debug, Default)]
pub struct TensorFile {
    /// Tensors in name order, on the CPU, in their stored dtype.
    pub tensors: Vec<(String, Tensor)>,
    /// The free-form `__metadata__` map, if the file had one.
    pub metadata: Option<HashMap<String, String>>,
}

impl TensorFile {
    /// Reads a safetensors file.
    pub fn read(path: &Path) -> Result<TensorFile> {
        // A device (`/dev/zero`) or a FIFO would be read until memory runs out.
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(Error::NotRegularFile {
                path: path.to_owned(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| Error::Safetensors {
            path: path.to_owned(),
            reason,
        };
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| invalid(describe(&e)))?;
        let metadata = header.metadata().clone();
        let file =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| invalid(describe(&e)))?;
        let mut tensors = Vec::with_capacity(file.len());
        for (name, view) in file.tensors() {
            let kind = kind_of(view.dtype()).ok_or_else(|| Error::UnsupportedDtype {
                path: path.to_owned(),
                name: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)?;
            tensors.push((name, tensor));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(TensorFile { tensors, metadata })
    }

    /// Writes the file atomically: nothing appears at `path` unless the whole file was written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut buffers = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            let t = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
            let dtype = dtype_of(t.kind()).ok_or_else(|| Error::UnsupportedDtype {
                path: path.to_owned(),
                name: name.clone(),
                dtype: format!("{:?}", t.kind()),
            })?;
            let numel = t.numel();
            let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
            t.f_copy_data_u8(&mut data, numel)?;
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            buffers.push((name.clone(), dtype, shape, data));
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, data)| {
                TensorView::new(*dtype, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Safetensors {
                        path: path.to_owned(),
                        reason: describe(&e),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::tensor::serialize(views, &self.metadata).map_err(|e| {
            Error::Safetensors {
                path: path.to_owned(),
                reason: describe(&e),
            }
        })?;
        write_atomic(path, &bytes)
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// The name prefix of the temporary files [`write_atomic`] creates next to its target.
///
/// A write that is killed before its rename leaves such a file behind;
/// [`remove_stale_temp_files`] deletes them.
pub const TEMP_PREFIX: &str = ".fire-tmp-";

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
///
/// * An existing `path` must be a regular file: a rename would replace a device node, FIFO or
///   socket (say `/dev/null`) by a regular file, so anything else is refused with
///   [`Error::NotRegularFile`] and left as it is.
/// * The new file gets the permissions of the file it replaces (a private 0600 checkpoint
///   stays private), or 0644 when there was none.
/// * The temporary file is `.fire-tmp-*` ([`TEMP_PREFIX`]) in `path`'s folder: a rename is
///   only atomic within one file system.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    // Follows symlinks: a link to /dev/null is refused too.
    let existing = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(Error::NotRegularFile {
                path: path.to_owned(),
            })
        }
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(&dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    // tempfile creates 0600; a new artefact should read like any other file (0644), and a
    // replaced one keeps its mode.
    let permissions = match existing {
        Some(p) => Some(p),
        #[cfg(unix)]
        None => {
            use std::os::unix::fs::PermissionsExt;
            Some(std::fs::Permissions::from_mode(0o644))
        }
        #[cfg(not(unix))]
        None => None,
    };
    if let Some(p) = permissions {
        tmp.as_file().set_permissions(p).map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Deletes the leftovers of interrupted [`write_atomic`] calls in `dir` (not in its
/// subfolders): the regular files named `.fire-tmp-*` ([`TEMP_PREFIX`]). Returns how many
/// were deleted; a folder that does not exist has none.
///
/// A write killed between creating its temporary file and the rename (SIGKILL, a crash, a
/// power cut) leaves that file behind; the target itself is never half-written, so the
/// leftovers only take space. The training runtime calls this when a run starts in its run
/// directory. Call it only when no other process is writing into `dir`: a write in progress
/// there would lose its temporary file and fail.
pub fn remove_stale_temp_files(dir: &Path) -> Result<usize> {
    let io = |path: &Path, source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        // file_type does not follow symlinks: a link or folder with that name is not ours.
        if stale
            && entry
                .file_type()
                .map_err(|e| io(&entry.path(), e))?
                .is_file()
        {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Gone meanwhile (its writer finished or cleaned up): nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&entry.path(), e)),
            }
        }
    }
    Ok(removed)
}

fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall | E::HeaderTooLarge => "the header is truncated or corrupt".into(),
        E::InvalidHeaderLength => "the file is shorter than its header says (truncated?)".into(),
        E::InvalidOffset(name) => format!("tensor `{name}` points outside the file (truncated?)"),
        E::MetadataIncompleteBuffer => "the file is truncated".into(),
        other => format!("{other:?}"),
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_new_one_reads_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.safetensors");
        std::fs::write(&private, "old").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&private, b"new").unwrap();
        assert_eq!(std::fs::read(&private).unwrap(), b"new");
        assert_eq!(mode(&private), 0o600);

        let fresh = dir.path().join("fresh.json");
        write_atomic(&fresh, b"{}").unwrap();
        assert_eq!(mode(&fresh), 0o644);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_and_folders_are_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        // A socket stands in for a device node (creating one needs root).
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&socket, &link).unwrap();
        for target in [&socket, &link, &dir.path().to_owned()] {
            let err = write_atomic(target, b"data").unwrap_err();
            assert!(matches!(err, Error::NotRegularFile { .. }), "{err}");
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let meta = std::fs::metadata(&socket).unwrap();
        assert!(meta.file_type().is_socket(), "the socket was replaced");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), 0);
    }

    #[test]
    fn stale_temp_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_atomic(&d.join("model.safetensors"), b"weights").unwrap();
        // What a killed write leaves: its temporary file, never renamed.
        let (_, stale) = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(d)
            .unwrap()
            .keep()
            .unwrap();
        std::fs::write(d.join(".fire-tmp-second"), b"half").unwrap();
        std::fs::create_dir(d.join(".fire-tmp-folder")).unwrap();
        std::fs::write(d.join("fire-tmp-not-hidden"), b"keep").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub").join(".fire-tmp-nested"), b"keep").unwrap();

        assert_eq!(remove_stale_temp_files(d).unwrap(), 2);
        assert!(!stale.exists());
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".fire-tmp-folder",
                "fire-tmp-not-hidden",
                "model.safetensors",
                "sub"
            ]
        );
        assert!(d.join("sub").join(".fire-tmp-nested").exists());
        assert_eq!(remove_stale_temp_files(d).unwrap(), 0);
        assert_eq!(remove_stale_temp_files(&d.join("missing")).unwrap(), 0);
    }
}
