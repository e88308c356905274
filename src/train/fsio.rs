//! Crash-safe file writes and the checksum shared by checkpoints and the metrics log.
//!
//! A file is written under a temporary sibling name, fsynced, renamed over its final name and
//! the directory fsynced: a reader sees the old file or the whole new one, never a torn one,
//! even when the writer is killed (SIGKILL, power loss) mid-write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Temporary files end with this; readers ignore them and `prune` removes stale ones.
pub const TEMP_SUFFIX: &str = ".tmp";

/// 64-bit FNV-1a. Not cryptographic: it guards against torn and bit-flipped files, not
/// against tampering, and needs no dependency.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        Self(Self::OFFSET)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        self.0 = h;
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts and hashes everything written through it, so a file's checksum costs no second read.
pub struct HashingWriter<W: Write> {
    inner: W,
    hash: Fnv64,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Fnv64::new(),
            bytes: 0,
        }
    }

    /// `(bytes written, FNV-1a of them)`.
    pub fn digest(&self) -> (u64, u64) {
        (self.bytes, self.hash.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Length and FNV-1a of a file, streamed so a large file need not fit in memory.
pub fn digest_file(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher.digest())
}

/// The temporary name `final_path` is written under: same directory (so the rename cannot cross
/// file systems) and the writer's pid (so two processes never share one).
pub fn temp_path(final_path: &Path) -> PathBuf {
    let mut name = final_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}{TEMP_SUFFIX}", std::process::id()));
    final_path.with_file_name(name)
}

/// Writes `final_path` through `write` atomically (temp sibling, fsync, rename, fsync dir). On
/// failure the temp file is removed and `final_path` is untouched.
pub fn write_atomic<T>(
    final_path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<T>,
) -> io::Result<T> {
    let temp = temp_path(final_path);
    let result = write_then_rename(&temp, final_path, write);
    if result.is_err() {
        // Best effort: the write already failed, and a leftover temp file is harmless to readers.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_then_rename<T>(
    temp: &Path,
    final_path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<T>,
) -> io::Result<T> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)?;
    let value = {
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        let value = write(&mut w)?;
        w.flush()?;
        value
    };
    // Data must be on disk before the rename publishes it, or a crash could leave the final name
    // pointing at a file with holes.
    file.sync_all()?;
    drop(file);
    fs::rename(temp, final_path)?;
    sync_dir(final_path)?;
    Ok(value)
}

/// Makes a rename or removal in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
