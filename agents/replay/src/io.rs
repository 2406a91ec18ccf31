//! The replay file format: a magic string, a format version, a kind, then length-prefixed
//! little-endian fields. Written to a temporary file and renamed, so a crash never leaves a
//! half-written replay under the real name.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"FIRERPLY";
/// Bumped whenever the layout changes.
pub(crate) const VERSION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Frames = 1,
    Vectors = 2,
}

pub(crate) struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
}

impl Writer {
    pub(crate) fn create(path: &Path, kind: Kind) -> Result<Self> {
        let tmp = path.with_extension("partial");
        let file = File::create(&tmp).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut w = Self {
            path: path.to_owned(),
            tmp,
            out: BufWriter::new(file),
        };
        w.raw(MAGIC)?;
        w.raw(&VERSION.to_le_bytes())?;
        w.u8(kind as u8)?;
        Ok(w)
    }

    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(|source| Error::Io {
            path: self.tmp.clone(),
            source,
        })
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<()> {
        self.raw(&[v])
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<()> {
        self.u64(b.len() as u64)?;
        self.raw(b)
    }

    pub(crate) fn f32s(&mut self, v: &[f32]) -> Result<()> {
        self.u64(v.len() as u64)?;
        for x in v {
            self.raw(&x.to_le_bytes())?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<()> {
        let Self { path, tmp, out } = self;
        let file = out.into_inner().map_err(|e| Error::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path, source })
    }
}

pub(crate) struct Reader {
    path: PathBuf,
    input: BufReader<File>,
}

impl Reader {
    pub(crate) fn open(path: &Path, kind: Kind) -> Result<Self> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut r = Self {
            path: path.to_owned(),
            input: BufReader::new(file),
        };
        let mut magic = [0u8; 8];
        r.raw(&mut magic)?;
        if &magic != MAGIC {
            return Err(r.corrupt("no replay header"));
        }
        let mut version = [0u8; 4];
        r.raw(&mut version)?;
        let found = u32::from_le_bytes(version);
        if found != VERSION {
            return Err(Error::Version {
                path: path.to_owned(),
                found,
                expected: VERSION,
            });
        }
        if r.u8()? != kind as u8 {
            return Err(r.corrupt("a replay of another kind (frames vs vectors)"));
        }
        Ok(r)
    }

    pub(crate) fn corrupt(&self, reason: &str) -> Error {
        Error::Format {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }

    fn raw(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.corrupt("truncated")
            } else {
                Error::Io {
                    path: self.path.clone(),
                    source: e,
                }
            }
        })
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.raw(&mut b)?;
        Ok(b[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.raw(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn len(&mut self, elem: u64) -> Result<usize> {
        let n = self.u64()?;
        // A corrupt length must not make us allocate the moon.
        let size = std::fs::metadata(&self.path)
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        if n.saturating_mul(elem) > size {
            return Err(self.corrupt("a length larger than the file"));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.len(1)?;
        let mut v = vec![0u8; n];
        self.raw(&mut v)?;
        Ok(v)
    }

    /// A byte field read into a vector reserved once for `capacity` bytes (or the field's
    /// length, if larger), so a buffer that goes on filling after a load never reallocates,
    /// and never holds its contents twice while it does. A reservation that cannot be had is
    /// an error, not an abort.
    pub(crate) fn bytes_reserved(&mut self, capacity: usize) -> Result<Vec<u8>> {
        let n = self.len(1)?;
        let mut v = self.reserve::<u8>(capacity.max(n))?;
        v.resize(n, 0);
        self.raw(&mut v)?;
        Ok(v)
    }

    /// An `f32` field read into a vector reserved once for `capacity` values (or the field's
    /// length, if larger), through a small buffer instead of a second copy of the field.
    pub(crate) fn f32s_reserved(&mut self, capacity: usize) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let mut v = self.reserve::<f32>(capacity.max(n))?;
        let mut buf = [0u8; 64 * 1024];
        while v.len() < n {
            let take = ((n - v.len()) * 4).min(buf.len());
            self.raw(&mut buf[..take])?;
            v.extend(
                buf[..take]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            );
        }
        Ok(v)
    }

    fn reserve<T>(&self, capacity: usize) -> Result<Vec<T>> {
        let mut v = Vec::new();
        v.try_reserve_exact(capacity).map_err(|_| Error::Config {
            field: "capacity",
            reason: format!(
                "loading {} needs {:.1} GB of memory, which cannot be reserved",
                self.path.display(),
                capacity as f64 * std::mem::size_of::<T>() as f64 / 1e9
            ),
        })?;
        Ok(v)
    }

    pub(crate) fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let mut raw = vec![0u8; n * 4];
        self.raw(&mut raw)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}
