//! Reading and writing safetensors checkpoints (PyTorch state dicts saved with
//! `safetensors.torch.save_file`), keeping names, dtypes and the `__metadata__` header.
//! Writes are atomic: a temporary file in the target directory, renamed into place.

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

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".fire-tmp-")
        .tempfile_in(&dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    // tempfile creates 0600; a written artefact should read like any other file (0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
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
