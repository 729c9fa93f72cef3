//! Writing a file whole or not at all, the one way strata does it.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What a write must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A power cut: the file and its directory are fsynced.
    PowerCut,
    /// The process ending at any moment, not a power cut: no fsync (the page cache
    /// keeps the rename). For records that are a convenience, written on a hot path.
    Process,
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or
/// the new one, never a part: a new temporary file beside it (named by
/// [`temp_name`], which `Store::open` clears up if left behind), fsynced,
/// renamed over `path`, then the directory fsynced so the rename itself survives a power
/// cut. The new file gets `mode` (less the umask).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_for(path, bytes, mode, Durability::PowerCut)
}

/// [`write_atomic`], surviving what `durability` says.
pub fn write_atomic_for(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let synced = durability == Durability::PowerCut;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(temp_name(&name));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if synced {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        match synced {
            true => std::fs::File::open(dir)?.sync_all(),
            false => Ok(()),
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A name for a file being written, unique to this writer (process and a random part):
/// two threads writing the same blob at once each write their own, and the rename of
/// whole files decides which one stays.
pub fn temp_name(what: &str) -> String {
    format!(
        ".{what}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    )
}

/// Writes a file only its owner can read, atomically ([`write_atomic`], mode 0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> crate::error::Result<()> {
    write_atomic(path, bytes, 0o600)
        .map_err(|e| crate::error::Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_is_replaced_whole_with_its_mode_and_no_leftovers() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write_atomic(&p, b"old", 0o644).unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        // A write that cannot land leaves nothing behind.
        assert!(write_atomic(&t.path().join("missing/f"), b"x", 0o644).is_err());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
