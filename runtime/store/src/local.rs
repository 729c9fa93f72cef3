//! The local backend: a sled database in the home directory, one process at a time.
//!
//! Flavor code (`.wasm`, from 100 KiB for Rust to 18 MiB for Python) is not kept in sled:
//! sled reads every large value it holds again each time a process opens it, so one
//! Python flavor would add tens of milliseconds to every command. The [`TreeId::Blobs`]
//! "tree" is instead a directory of content-addressed files, `db/wasm/<sha256>.wasm`,
//! checked against their name when read. A commit writes its new files (atomically,
//! fsynced) before its transaction and removes its dropped ones after it, so a crash in
//! between leaves at most an unreferenced file, never a reference to a missing one.

use std::path::{Path, PathBuf};

use sha2::Digest;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{Error, Result};
use crate::{Backend, Op, StoreLock, TREE_NAMES, TreeId, codec, corrupt, meta};

pub(crate) struct Local {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Where flavor code lives: `<db>/wasm`.
    wasm: PathBuf,
}

impl Local {
    /// Opens (creating if needed) the database in `dir`. Fails with
    /// [`Error::StoreLocked`] when another process holds it.
    pub(crate) fn open(dir: &Path) -> Result<Local> {
        let db = sled::Config::new()
            .path(dir)
            .segment_size(segment_size(dir))
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_error(dir, e))?;
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name).map_err(|e| Error::store(name, e)))
            .collect::<Result<Vec<_>>>()?;
        let local = Local {
            db,
            trees,
            wasm: dir.join("wasm"),
        };
        remove_leftovers(&local.wasm);
        if local.raw_version()? == Some(1) {
            local.move_blobs_out_of_sled()?;
        }
        Ok(local)
    }

    fn raw_version(&self) -> Result<Option<u32>> {
        match self.get(TreeId::Meta, meta::SCHEMA_VERSION.as_bytes())? {
            None => Ok(None),
            Some(v) => codec::decode(&v)
                .map(Some)
                .map_err(|e| corrupt(TreeId::Meta, meta::SCHEMA_VERSION, e)),
        }
    }

    /// Schema 1 → 2: every blob kept in sled becomes a file, then one transaction removes
    /// them from sled and records the new version. Interrupted, it is simply done again.
    fn move_blobs_out_of_sled(&self) -> Result<()> {
        let blobs = self.tree(TreeId::Blobs);
        let mut keys = Vec::new();
        for item in blobs.iter() {
            let (k, v) = item.map_err(|e| Error::store("blobs", e))?;
            self.write_blob(&String::from_utf8_lossy(&k), &v)?;
            keys.push(k);
        }
        let version = codec::encode(&crate::SCHEMA_VERSION);
        let result: std::result::Result<(), TransactionError<()>> =
            (self.tree(TreeId::Meta), blobs).transaction(|(meta_tx, blobs_tx)| {
                for k in &keys {
                    blobs_tx.remove(k.as_ref())?;
                }
                meta_tx.insert(meta::SCHEMA_VERSION.as_bytes(), version.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Abort(()) => Error::Internal("store migration aborted".into()),
            TransactionError::Storage(e) => Error::store("migration", e),
        })?;
        self.flush()
    }

    pub(crate) fn tree(&self, t: TreeId) -> &sled::Tree {
        &self.trees[t as usize]
    }

    fn blob_path(&self, sha: &str) -> PathBuf {
        self.wasm.join(format!("{sha}.wasm"))
    }

    /// A flavor's code, checked against the sha256 it is named by.
    fn read_blob(&self, sha: &str) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(sha);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        if hex::encode(sha2::Sha256::digest(&bytes)) != sha {
            return Err(corrupt(
                TreeId::Blobs,
                sha,
                format!("{} does not match its sha256", path.display()),
            ));
        }
        Ok(Some(bytes))
    }

    /// Writes a blob file whole (a temporary file fsynced, then renamed, then the
    /// directory fsynced), unless a file with exactly these bytes is there already.
    fn write_blob(&self, sha: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(sha);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && self.read_blob(sha).is_ok_and(|b| b.is_some())
        {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.wasm)?;
            crate::fsutil::write_atomic(&path, bytes, 0o644)
        };
        write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Every blob file's sha256, in order.
    fn blob_keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let entries = match std::fs::read_dir(&self.wasm) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(Error::io(format!("reading {}", self.wasm.display()), e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("reading {}", self.wasm.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(sha) = name.strip_suffix(".wasm")
                && !name.starts_with('.')
            {
                keys.push(sha.to_string());
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn transaction(&self, ops: &[Op]) -> Result<()> {
        let result: std::result::Result<(), TransactionError<()>> =
            self.trees.as_slice().transaction(|trees| {
                for (tree, key, value) in ops {
                    let tx = &trees[*tree as usize];
                    match value {
                        Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
                        None => tx.remove(key.as_slice())?,
                    };
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Abort(()) => Error::Internal("store transaction aborted".into()),
            TransactionError::Storage(e) => Error::store("transaction", e),
        })
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "sled"
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if tree == TreeId::Blobs {
            return self.read_blob(&String::from_utf8_lossy(key));
        }
        let raw = self
            .tree(tree)
            .get(key)
            .map_err(|e| Error::store(tree.name(), e))?;
        Ok(raw.map(|v| v.to_vec()))
    }

    fn contains(&self, tree: TreeId, key: &[u8]) -> Result<bool> {
        if tree == TreeId::Blobs {
            return Ok(self.blob_path(&String::from_utf8_lossy(key)).is_file());
        }
        self.tree(tree)
            .contains_key(key)
            .map_err(|e| Error::store(tree.name(), e))
    }

    fn scan(&self, tree: TreeId, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if tree == TreeId::Blobs {
            let mut out = Vec::new();
            for sha in self.blob_keys()? {
                if !sha.as_bytes().starts_with(prefix) {
                    continue;
                }
                let bytes = self.read_blob(&sha)?.ok_or_else(|| {
                    corrupt(tree, &sha, "it went missing while being read".into())
                })?;
                out.push((sha.into_bytes(), bytes));
            }
            return Ok(out);
        }
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|item| {
                item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| Error::store(tree.name(), e))
            })
            .collect()
    }

    fn keys(&self, tree: TreeId) -> Result<Vec<Vec<u8>>> {
        if tree == TreeId::Blobs {
            return Ok(self
                .blob_keys()?
                .into_iter()
                .map(String::into_bytes)
                .collect());
        }
        self.tree(tree)
            .iter()
            .keys()
            .map(|k| {
                k.map(|k| k.to_vec())
                    .map_err(|e| Error::store(tree.name(), e))
            })
            .collect()
    }

    /// Blob files are written before the transaction and removed after it (the last
    /// write of a blob in the batch decides which); then everything is flushed to disk.
    fn commit(&self, mut ops: Vec<Op>) -> Result<()> {
        let mut blobs: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
        ops.retain_mut(|(tree, key, value)| {
            if *tree != TreeId::Blobs {
                return true;
            }
            blobs.insert(String::from_utf8_lossy(key).into_owned(), value.take());
            false
        });
        for (sha, bytes) in &blobs {
            if let Some(bytes) = bytes {
                self.write_blob(sha, bytes)?;
            }
        }
        if !ops.is_empty() {
            self.transaction(&ops)?;
            self.flush()?;
        }
        for (sha, bytes) in &blobs {
            if bytes.is_none() {
                // Unreferenced now: a file left by a crash here is only litter.
                let _ = std::fs::remove_file(self.blob_path(sha));
            }
        }
        Ok(())
    }

    /// One process holds a sled home (sled's own file lock), so the locks of the
    /// process itself are all there is to take.
    fn lock(&self, _name: &str, _wait: std::time::Duration) -> Result<Option<StoreLock>> {
        Ok(Some(StoreLock::none()))
    }

    fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| Error::store("flush", e))
    }
}

/// Removes what writers left half-done in `dir` (`.*.tmp` files of a process that was
/// killed while writing). Only the store's opener calls it, and sled's lock makes that
/// process the only writer.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The size of sled's log segments for new stores. strata's records are small (the
/// large ones, flavor code, are files), and sled reads and rewrites its active segment
/// whole each time a process opens the store, so a small segment makes every command
/// cheaper: 64 KiB against sled's default of 512 KiB cut the bytes a `stack list` reads
/// and writes from 1.6 MB to 0.2 MB, and its time by about a quarter. Values over half a
/// segment are kept by sled in files of their own.
pub(crate) const SEGMENT_SIZE: usize = 64 * 1024;

/// The segment size of the store in `dir`: the one it was created with (sled refuses to
/// open a store with another), else [`SEGMENT_SIZE`].
pub(crate) fn segment_size(dir: &Path) -> usize {
    // The file ends in a binary checksum, so it is not read as UTF-8 whole.
    std::fs::read(dir.join("conf"))
        .ok()
        .and_then(|conf| {
            String::from_utf8_lossy(&conf)
                .lines()
                .find_map(|l| l.strip_prefix("segment_size: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(SEGMENT_SIZE)
}

fn open_error(dir: &Path, e: sled::Error) -> Error {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        Error::StoreLocked {
            path: dir.display().to_string(),
        }
    } else {
        Error::store("open", e)
    }
}
