//! TensorBoard event files, written by hand: TFRecord framing (length, masked CRC-32C of the
//! length, payload, masked CRC-32C of the payload) around `Event` protocol buffers holding
//! scalar summaries.
//!
//! Why not a crate: `tensorboard-rs` writes on a background thread that panics on an I/O error
//! (a full disk aborted the process with "panic in a destructor", losing the final checkpoint),
//! and cannot mark a resume. Here every write returns `Result`, nothing runs in the
//! background, and [`EventWriter::resumed_at`] writes TensorBoard's `SessionLog.START` so that
//! events a killed process logged after the checkpoint are purged from the charts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{io, Result};

/// One event file in a run directory.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new event file in `dir` (a unique name per call) with its version record.
    pub fn create(dir: &Path) -> Result<Self> {
        let now = wall_time();
        let name = format!(
            "events.out.tfevents.{}.fire-rl.{}.{}",
            now as u64,
            std::process::id(),
            unique()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(io(&path))?;
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        let mut event = Vec::new();
        put_double(&mut event, 1, now);
        put_bytes(&mut event, 3, b"brain.Event:2");
        writer.record(&event)?;
        Ok(writer)
    }

    /// The file's path.
    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar under `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, value: f32, step: u64) -> Result<()> {
        let mut summary_value = Vec::new();
        put_bytes(&mut summary_value, 1, tag.as_bytes());
        put_float(&mut summary_value, 2, value);
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &summary_value);
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step);
        put_bytes(&mut event, 5, &summary);
        self.record(&event)
    }

    /// Marks a restart at `step` (`SessionLog { status: START }`): TensorBoard drops events
    /// of earlier files with a larger step.
    pub fn resumed_at(&mut self, step: u64) -> Result<()> {
        let mut session_log = Vec::new();
        put_varint_field(&mut session_log, 1, 1); // START
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step);
        put_bytes(&mut event, 6, &session_log);
        self.record(&event)
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io(&self.path))
    }

    fn record(&mut self, payload: &[u8]) -> Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 16);
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&masked_crc(&len).to_le_bytes());
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&masked_crc(payload).to_le_bytes());
        self.out.write_all(&frame).map_err(io(&self.path))
    }
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_varint(out, (field << 3) | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_float(out: &mut Vec<u8>, field: u64, v: f32) {
    put_varint(out, (field << 3) | 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli), as TFRecord uses (checkpoints use it too).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
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
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn records_frame_events_with_valid_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalar("losses/td_loss", 0.5, 7).unwrap();
        w.resumed_at(7).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut records = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len_crc, masked_crc(&bytes[at..at + 8]));
            let payload = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(payload));
            records.push(payload.to_vec());
            at += 16 + len;
        }
        assert_eq!(records.len(), 3);
        assert!(records[0].windows(13).any(|w| w == b"brain.Event:2"));
        assert!(records[1].windows(14).any(|w| w == b"losses/td_loss"));
        assert!(records[1].windows(4).any(|w| w == 0.5f32.to_le_bytes()));
    }

    #[test]
    fn a_write_error_is_an_error_not_a_panic() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let file = File::options().write(true).open("/dev/full").unwrap();
        let mut w = EventWriter {
            out: BufWriter::with_capacity(16, file),
            path: PathBuf::from("/dev/full"),
        };
        let result = w.scalar("charts/SPS", 1.0, 1).and_then(|_| w.flush());
        assert!(result.is_err());
    }
}
