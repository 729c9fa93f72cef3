//! The compiled-code cache: `<home>/cache/<engine-key>/<wasm-sha256>.cwasm`.
//!
//! A `.cwasm` is native code that wasmtime maps and runs without checking it, so a file
//! changed on disk must never be loaded. The hash of every file strata writes is kept in
//! the store (the trust anchor, not a file beside the cache); a file whose hash differs
//! is recompiled and replaced.
//!
//! The hash is BLAKE3, recorded as `blake3:HEX`: it is checked on every load, and a
//! Python flavor's compiled code is 35 MB, which sha256 took 19 ms to hash here and BLAKE3
//! takes a fraction of. Records written before (a bare sha256) are still checked as
//! sha256.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub struct Cache {
    dir: PathBuf,
}

/// What reading the cache found.
pub enum Lookup {
    /// The file is there and its hash is the recorded one: its bytes.
    Verified(Vec<u8>),
    /// No usable entry (never compiled, or no hash recorded).
    Missing,
    /// The file is there but differs from what strata wrote.
    Tampered,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash recorded for a compiled file: `blake3:HEX`.
pub fn compiled_hash(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// Whether `bytes` are what `recorded` (from [`compiled_hash`], or a bare sha256 from
/// strata 0.1) describes.
fn matches(bytes: &[u8], recorded: &str) -> bool {
    match recorded.strip_prefix("blake3:") {
        Some(hex) => blake3::hash(bytes).to_hex().as_str() == hex,
        None => sha256_hex(bytes) == recorded,
    }
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    pub fn path(&self, wasm_sha: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha}.cwasm"))
    }

    /// Reads the entry for `wasm_sha` and checks it against `expected` (the hash the
    /// store recorded when strata wrote it). The bytes returned are the ones hashed, so
    /// the file cannot change between the check and the load.
    pub fn lookup(&self, wasm_sha: &str, expected: Option<&str>) -> Lookup {
        let Some(expected) = expected else {
            return Lookup::Missing;
        };
        match fs::read(self.path(wasm_sha)) {
            Ok(bytes) if matches(&bytes, expected) => Lookup::Verified(bytes),
            Ok(_) => Lookup::Tampered,
            Err(_) => Lookup::Missing,
        }
    }

    /// Writes a compiled artifact atomically ([`crate::fsutil::write_atomic`]) and returns its
    /// hash ([`compiled_hash`]) for the store to record.
    pub fn write(&self, wasm_sha: &str, compiled: &[u8]) -> Result<String> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let path = self.path(wasm_sha);
        crate::fsutil::write_atomic(&path, compiled, 0o644)
            .map_err(|e| Error::io(format!("writing compiled code to {}", path.display()), e))?;
        Ok(compiled_hash(compiled))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_loaded_only_if_it_matches_its_record_new_or_old() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let recorded = cache.write("abc", b"native code").unwrap();
        assert!(recorded.starts_with("blake3:"), "{recorded}");
        assert!(
            matches!(cache.lookup("abc", Some(&recorded)), Lookup::Verified(b) if b == b"native code")
        );
        // A record from before BLAKE3: the bare sha256 of the file.
        let old = sha256_hex(b"native code");
        assert!(matches!(
            cache.lookup("abc", Some(&old)),
            Lookup::Verified(_)
        ));
        // Changed on disk: never handed out, under either kind of record.
        std::fs::write(cache.path("abc"), b"other code").unwrap();
        assert!(matches!(
            cache.lookup("abc", Some(&recorded)),
            Lookup::Tampered
        ));
        assert!(matches!(cache.lookup("abc", Some(&old)), Lookup::Tampered));
        assert!(matches!(cache.lookup("abc", None), Lookup::Missing));
    }
}
