//! strata's state on disk: a sled database in the home directory.
//!
//! Flavor code (`.wasm`, from 100 KiB for Rust to 18 MiB for Python) is not kept in sled:
//! sled reads every large value it holds again each time a process opens it, so one
//! Python flavor would add tens of milliseconds to every command. The [`TreeId::Blobs`]
//! "tree" is instead a directory of content-addressed files, `db/wasm/<sha256>.wasm`,
//! checked against their name when read. A [`Batch`] writes its new files (atomically,
//! fsynced) before its transaction and removes its dropped ones after it commits, so a
//! crash in between leaves at most an unreferenced file, never a reference to a missing one.
//!
//! Every record is stored in an envelope that carries a format version and a CRC-32 of
//! its body ([`codec`]), so a damaged record is reported with its key instead of being
//! misread. Changes that touch several keys go through one [`Batch`], applied in a single
//! sled transaction over all trees; a change is flushed to disk before the call returns,
//! so whatever strata reported as done survives a crash. Nothing with side effects runs
//! inside a transaction: sled may retry the closure.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use crate as store;
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, fsutil, home};

pub mod codec;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{Error, Result};
use crate::model::{ComponentRecord, ComponentState, ComponentType, FlavorRecord, StackRecord};

/// The layout version of the database. Bumped when a record's meaning changes; a newer
/// database is refused by an older strata. Version 2 moved flavor code out of sled into
/// `db/wasm/` (a version 1 store is moved over when it is first opened).
pub const SCHEMA_VERSION: u32 = 2;

/// The trees, in the order a [`Batch`] names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeId {
    /// `schema_version`, `active_stack`, `builtin_digest`.
    Meta = 0,
    /// `type/name` → [`FlavorRecord`].
    Flavors = 1,
    /// sha256 → raw `.wasm` bytes (not enveloped: the key is their checksum). Kept as
    /// files in `db/wasm/`, not in sled (see the module's documentation).
    Blobs = 2,
    /// `type/name` → [`ComponentRecord`].
    Components = 3,
    /// component id → [`ComponentState`].
    States = 4,
    /// name → [`StackRecord`].
    Stacks = 5,
    /// `engine-hash/sha256` → hash of the compiled artifact file (`blake3:HEX`; a bare
    /// sha256 from strata 0.1).
    Compiled = 6,
    /// name → encrypted secret.
    Secrets = 7,
    /// name → service connector, its credentials encrypted as secrets are.
    Connectors = 8,
    /// run id → a pipeline run's record (`RunReport`).
    Runs = 9,
    /// `stack/pipeline/step/key` → the outputs of a successful step, for the cache.
    RunCache = 10,
    /// `run id/step` → the tail of a step's output, raw.
    RunLogs = 11,
    /// run id → `()`, while its run is under way: one found when a home is opened
    /// belonged to a strata that was killed, and the run is marked interrupted.
    LiveRuns = 12,
}

impl TreeId {
    pub const ALL: [TreeId; 13] = [
        TreeId::Meta,
        TreeId::Flavors,
        TreeId::Blobs,
        TreeId::Components,
        TreeId::States,
        TreeId::Stacks,
        TreeId::Compiled,
        TreeId::Secrets,
        TreeId::Connectors,
        TreeId::Runs,
        TreeId::RunCache,
        TreeId::RunLogs,
        TreeId::LiveRuns,
    ];

    pub fn name(self) -> &'static str {
        TREE_NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<TreeId> {
        TREE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| TreeId::ALL[i])
    }
}

const TREE_NAMES: [&str; 13] = [
    "meta",
    "flavors",
    "blobs",
    "components",
    "states",
    "stacks",
    "compiled",
    "secrets",
    "connectors",
    "runs",
    "run_cache",
    "run_logs",
    "live_runs",
];

/// One stored record, raw: its tree, key and stored bytes.
pub type RawRecord = (TreeId, Vec<u8>, Vec<u8>);

/// Keys used in the meta tree.
pub mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const ACTIVE_STACK: &str = "active_stack";
    pub const BUILTIN_DIGEST: &str = "builtin_digest";
}

pub fn type_key(t: ComponentType, name: &str) -> String {
    format!("{}/{}", t.as_str(), name)
}

/// A set of writes applied atomically by [`Store::apply`].
#[derive(Default)]
pub struct Batch {
    ops: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` (enveloped) under `key`.
    pub fn put<T: Serialize>(&mut self, tree: TreeId, key: &str, value: &T) -> &mut Self {
        self.ops
            .push((tree, key.as_bytes().to_vec(), Some(codec::encode(value))));
        self
    }

    /// Stores raw bytes under `key` (blobs, whose key is their checksum).
    pub fn put_raw(&mut self, tree: TreeId, key: &str, value: Vec<u8>) -> &mut Self {
        self.ops.push((tree, key.as_bytes().to_vec(), Some(value)));
        self
    }

    pub fn remove(&mut self, tree: TreeId, key: &str) -> &mut Self {
        self.ops.push((tree, key.as_bytes().to_vec(), None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends `other`'s writes after this batch's.
    pub fn append(&mut self, other: Batch) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }
}

/// The open database. Clones share it.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: [sled::Tree; 13],
    /// Where flavor code lives: `<db>/wasm`.
    wasm: std::path::PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `dir`. Fails with
    /// [`Error::StoreLocked`] when another process holds it.
    pub fn open(dir: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(dir)
            .segment_size(segment_size(dir))
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_error(dir, e))?;
        let open = |i: usize| {
            db.open_tree(TREE_NAMES[i])
                .map_err(|e| Error::store(TREE_NAMES[i], e))
        };
        let trees = [
            open(0)?,
            open(1)?,
            open(2)?,
            open(3)?,
            open(4)?,
            open(5)?,
            open(6)?,
            open(7)?,
            open(8)?,
            open(9)?,
            open(10)?,
            open(11)?,
            open(12)?,
        ];
        let store = Store {
            db,
            trees,
            wasm: dir.join("wasm"),
        };
        remove_leftovers(&store.wasm);
        store.check_schema()?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<()> {
        match self.get::<u32>(TreeId::Meta, meta::SCHEMA_VERSION)? {
            None => {
                let mut b = Batch::new();
                b.put(TreeId::Meta, meta::SCHEMA_VERSION, &SCHEMA_VERSION);
                self.apply(b)
            }
            Some(v) if v == SCHEMA_VERSION => Ok(()),
            Some(1) => self.move_blobs_out_of_sled(),
            Some(v) => Err(Error::Invalid {
                what: format!(
                    "the store is at schema version {v}; this strata reads version {SCHEMA_VERSION}"
                ),
                hint: "use the strata release that wrote it, or restore a backup".into(),
            }),
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
        let version = codec::encode(&SCHEMA_VERSION);
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

    fn tree(&self, t: TreeId) -> &sled::Tree {
        &self.trees[t as usize]
    }

    fn blob_path(&self, sha: &str) -> std::path::PathBuf {
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

    /// Reads and decodes one record.
    pub fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &str) -> Result<Option<T>> {
        let raw = self
            .tree(tree)
            .get(key)
            .map_err(|e| Error::store(TREE_NAMES[tree as usize], e))?;
        raw.map(|v| codec::decode(&v).map_err(|e| corrupt(tree, key, e)))
            .transpose()
    }

    pub fn get_raw(&self, tree: TreeId, key: &str) -> Result<Option<Vec<u8>>> {
        if tree == TreeId::Blobs {
            return self.read_blob(key);
        }
        let raw = self
            .tree(tree)
            .get(key)
            .map_err(|e| Error::store(TREE_NAMES[tree as usize], e))?;
        Ok(raw.map(|v| v.to_vec()))
    }

    pub fn contains(&self, tree: TreeId, key: &str) -> Result<bool> {
        if tree == TreeId::Blobs {
            return Ok(self.blob_path(key).is_file());
        }
        self.tree(tree)
            .contains_key(key)
            .map_err(|e| Error::store(TREE_NAMES[tree as usize], e))
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        tree: TreeId,
        prefix: &str,
    ) -> Result<Vec<(String, T)>> {
        let mut out = Vec::new();
        for item in self.tree(tree).scan_prefix(prefix) {
            let (k, v) = item.map_err(|e| Error::store(TREE_NAMES[tree as usize], e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = codec::decode(&v).map_err(|e| corrupt(tree, &key, e))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Applies every write of `batch` atomically, then flushes to disk. Blob files are
    /// written before the transaction and removed after it (the last write of a blob in
    /// the batch decides which).
    pub fn apply(&self, mut batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut blobs: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
        batch.ops.retain_mut(|(tree, key, value)| {
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
        self.commit(&batch)?;
        for (sha, bytes) in &blobs {
            if bytes.is_none() {
                // Unreferenced now: a file left by a crash here is only litter.
                let _ = std::fs::remove_file(self.blob_path(sha));
            }
        }
        Ok(())
    }

    fn commit(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let t = &self.trees;
        let result: std::result::Result<(), TransactionError<()>> = (
            &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10], &t[11],
            &t[12],
        )
            .transaction(|trees| {
                let all = [
                    &trees.0, &trees.1, &trees.2, &trees.3, &trees.4, &trees.5, &trees.6, &trees.7,
                    &trees.8, &trees.9, &trees.10, &trees.11, &trees.12,
                ];
                for (tree, key, value) in &batch.ops {
                    let tx = all[*tree as usize];
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
        })?;
        self.flush()
    }

    /// Every record of every tree but `compiled` (which names files in this home's cache),
    /// raw, in tree and key order: what `strata backup` writes.
    pub fn dump(&self) -> Result<Vec<RawRecord>> {
        let mut out = Vec::new();
        for id in TreeId::ALL {
            if id == TreeId::Compiled {
                continue;
            }
            if id == TreeId::Blobs {
                for sha in self.blob_keys()? {
                    let bytes = self.read_blob(&sha)?.ok_or_else(|| {
                        corrupt(id, &sha, "it went missing while being read".into())
                    })?;
                    out.push((id, sha.into_bytes(), bytes));
                }
                continue;
            }
            for item in self.tree(id).iter() {
                let (k, v) = item.map_err(|e| Error::store(TREE_NAMES[id as usize], e))?;
                out.push((id, k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Replaces everything stored with `records`, in one transaction: what `strata
    /// restore` does once it has checked them.
    pub fn replace_all(&self, records: Vec<RawRecord>) -> Result<()> {
        let mut batch = Batch::new();
        for sha in self.blob_keys()? {
            batch.ops.push((TreeId::Blobs, sha.into_bytes(), None));
        }
        for id in TreeId::ALL {
            if id == TreeId::Blobs {
                continue;
            }
            for item in self.tree(id).iter().keys() {
                let k = item.map_err(|e| Error::store(TREE_NAMES[id as usize], e))?;
                batch.ops.push((id, k.to_vec(), None));
            }
        }
        for (id, k, v) in records {
            batch.ops.push((id, k, Some(v)));
        }
        self.apply(batch)
    }

    pub fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| Error::store("flush", e))
    }

    // Typed helpers for the records strata reads most.

    pub fn flavor(&self, t: ComponentType, name: &str) -> Result<Option<FlavorRecord>> {
        self.get(TreeId::Flavors, &type_key(t, name))
    }

    pub fn flavors(&self, t: Option<ComponentType>) -> Result<Vec<FlavorRecord>> {
        let prefix = t.map(|t| format!("{}/", t.as_str())).unwrap_or_default();
        Ok(self
            .scan(TreeId::Flavors, &prefix)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn component(&self, t: ComponentType, name: &str) -> Result<Option<ComponentRecord>> {
        self.get(TreeId::Components, &type_key(t, name))
    }

    pub fn components(&self, t: Option<ComponentType>) -> Result<Vec<ComponentRecord>> {
        let prefix = t.map(|t| format!("{}/", t.as_str())).unwrap_or_default();
        Ok(self
            .scan(TreeId::Components, &prefix)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn state(&self, component_id: &str) -> Result<Option<ComponentState>> {
        self.get(TreeId::States, component_id)
    }

    pub fn stack(&self, name: &str) -> Result<Option<StackRecord>> {
        self.get(TreeId::Stacks, name)
    }

    pub fn stacks(&self) -> Result<Vec<StackRecord>> {
        Ok(self
            .scan(TreeId::Stacks, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn active_stack(&self) -> Result<Option<String>> {
        self.get(TreeId::Meta, meta::ACTIVE_STACK)
    }
}

pub use crate::fsutil::temp_name;

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
const SEGMENT_SIZE: usize = 64 * 1024;

/// The segment size of the store in `dir`: the one it was created with (sled refuses to
/// open a store with another), else [`SEGMENT_SIZE`].
fn segment_size(dir: &Path) -> usize {
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

fn corrupt(tree: TreeId, key: &str, reason: String) -> Error {
    Error::Corrupt {
        key: format!("{}/{}", TREE_NAMES[tree as usize], key),
        reason,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_all_or_nothing_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut b = Batch::new();
            b.put(TreeId::Meta, "a", &1u32)
                .put(TreeId::Stacks, "b", &"x".to_string());
            store.apply(b).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get::<u32>(TreeId::Meta, "a").unwrap(), Some(1));
        assert_eq!(
            store.get::<String>(TreeId::Stacks, "b").unwrap().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn a_second_opener_is_told_the_store_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(Error::StoreLocked { .. }) => {}
            Err(other) => panic!("expected StoreLocked, got {other}"),
            Ok(_) => panic!("expected StoreLocked, got a second open store"),
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn flavor_code_lives_in_checked_files_not_in_sled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let code = b"\0asm pretend flavor".to_vec();
        let key = sha(&code);
        let mut b = Batch::new();
        b.put_raw(TreeId::Blobs, &key, code.clone())
            .put(TreeId::Meta, "x", &1u32);
        store.apply(b).unwrap();
        let file = dir.path().join("wasm").join(format!("{key}.wasm"));
        assert_eq!(std::fs::read(&file).unwrap(), code);
        assert!(store.tree(TreeId::Blobs).is_empty(), "nothing in sled");
        assert!(store.contains(TreeId::Blobs, &key).unwrap());
        assert_eq!(
            store.get_raw(TreeId::Blobs, &key).unwrap(),
            Some(code.clone())
        );
        // A file changed on disk is reported, never handed out.
        std::fs::write(&file, b"\0asm something else").unwrap();
        let err = store.get_raw(TreeId::Blobs, &key).unwrap_err().to_string();
        assert!(
            err.contains(&format!("blobs/{key}")) && err.contains("sha256"),
            "{err}"
        );
        // Backups see blobs as records, and restoring puts them back as files.
        std::fs::write(&file, &code).unwrap();
        let records = store.dump().unwrap();
        assert!(
            records
                .iter()
                .any(|(t, k, v)| *t == TreeId::Blobs && k == key.as_bytes() && *v == code)
        );
        store.replace_all(records).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), code);
        // Removed with the transaction that drops the last reference.
        let mut b = Batch::new();
        b.remove(TreeId::Blobs, &key);
        store.apply(b).unwrap();
        assert!(!file.exists());
    }

    #[test]
    fn a_schema_1_store_has_its_blobs_moved_out_of_sled_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let code = b"\0asm old flavor".to_vec();
        let key = sha(&code);
        {
            // What strata 0.1 with schema 1 wrote: the code inside sled.
            let store = Store::open(dir.path()).unwrap();
            store
                .tree(TreeId::Blobs)
                .insert(key.as_bytes(), code.as_slice())
                .unwrap();
            store
                .tree(TreeId::Meta)
                .insert(meta::SCHEMA_VERSION, codec::encode(&1u32))
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .get::<u32>(TreeId::Meta, meta::SCHEMA_VERSION)
                .unwrap(),
            Some(2)
        );
        assert!(store.tree(TreeId::Blobs).is_empty());
        assert_eq!(store.get_raw(TreeId::Blobs, &key).unwrap(), Some(code));
    }

    #[test]
    fn new_stores_use_small_segments_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(segment_size(dir.path()), SEGMENT_SIZE);
        // A store made with sled's default opens with it.
        let old = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new()
                .path(old.path())
                .segment_size(512 * 1024)
                .open()
                .unwrap();
            db.insert("k", "v").unwrap();
            db.flush().unwrap();
        }
        assert_eq!(segment_size(old.path()), 512 * 1024);
        Store::open(old.path()).expect("opens with its own segment size");
    }

    #[test]
    fn a_damaged_record_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut b = Batch::new();
        b.put_raw(TreeId::Stacks, "broken", b"garbage".to_vec());
        store.apply(b).unwrap();
        let err = store.stack("broken").unwrap_err().to_string();
        assert!(err.contains("stacks/broken"), "{err}");
    }
}
