//! The compiled-code cache: `<home>/cache/<engine-key>/<wasm-sha256>.cwasm`.
//!
//! A `.cwasm` is native code that wasmtime maps and runs without checking it, so a file
//! changed on disk must never be loaded. The sha256 of every file strata writes is kept
//! in the store (the trust anchor, not a file beside the cache); a file whose hash
//! differs is recompiled and replaced.

use std::fs;
use std::io::Write;
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
            Ok(bytes) if sha256_hex(&bytes) == expected => Lookup::Verified(bytes),
            Ok(_) => Lookup::Tampered,
            Err(_) => Lookup::Missing,
        }
    }

    /// Writes a compiled artifact atomically (temp file, then rename) and returns its
    /// sha256 for the store to record.
    pub fn write(&self, wasm_sha: &str, compiled: &[u8]) -> Result<String> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let path = self.path(wasm_sha);
        let tmp = self
            .dir
            .join(format!(".{wasm_sha}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(compiled)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(format!("writing compiled code to {}", path.display()), e)
        })?;
        Ok(sha256_hex(compiled))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
