//! strata's state on disk: a sled database in the home directory.
//!
//! Every record is stored in an envelope that carries a format version and a CRC-32 of
//! its body ([`codec`]), so a damaged record is reported with its key instead of being
//! misread. Changes that touch several keys go through one [`Batch`], applied in a single
//! sled transaction over all trees; a change is flushed to disk before the call returns,
//! so whatever strata reported as done survives a crash. Nothing with side effects runs
//! inside a transaction: sled may retry the closure.

pub mod codec;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{Error, Result};
use crate::model::{ComponentRecord, ComponentState, ComponentType, FlavorRecord, StackRecord};

/// The layout version of the database. Bumped when a record's meaning changes; a newer
/// database is refused by an older strata.
pub const SCHEMA_VERSION: u32 = 1;

/// The trees, in the order a [`Batch`] names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeId {
    /// `schema_version`, `active_stack`, `builtin_digest`.
    Meta = 0,
    /// `type/name` → [`FlavorRecord`].
    Flavors = 1,
    /// sha256 → raw `.wasm` bytes (not enveloped: the key is their checksum).
    Blobs = 2,
    /// `type/name` → [`ComponentRecord`].
    Components = 3,
    /// component id → [`ComponentState`].
    States = 4,
    /// name → [`StackRecord`].
    Stacks = 5,
    /// `engine-hash/sha256` → sha256 of the compiled artifact file.
    Compiled = 6,
    /// name → encrypted secret.
    Secrets = 7,
}

impl TreeId {
    pub const ALL: [TreeId; 8] = [
        TreeId::Meta,
        TreeId::Flavors,
        TreeId::Blobs,
        TreeId::Components,
        TreeId::States,
        TreeId::Stacks,
        TreeId::Compiled,
        TreeId::Secrets,
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

const TREE_NAMES: [&str; 8] = [
    "meta",
    "flavors",
    "blobs",
    "components",
    "states",
    "stacks",
    "compiled",
    "secrets",
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
    trees: [sled::Tree; 8],
}

impl Store {
    /// Opens (creating if needed) the database in `dir`. Fails with
    /// [`Error::StoreLocked`] when another process holds it.
    pub fn open(dir: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(dir)
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
        ];
        let store = Store { db, trees };
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
            Some(v) => Err(Error::Invalid {
                what: format!(
                    "the store is at schema version {v}; this strata reads version {SCHEMA_VERSION}"
                ),
                hint: "use the strata release that wrote it, or restore a backup".into(),
            }),
        }
    }

    fn tree(&self, t: TreeId) -> &sled::Tree {
        &self.trees[t as usize]
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
        let raw = self
            .tree(tree)
            .get(key)
            .map_err(|e| Error::store(TREE_NAMES[tree as usize], e))?;
        Ok(raw.map(|v| v.to_vec()))
    }

    pub fn contains(&self, tree: TreeId, key: &str) -> Result<bool> {
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

    /// Applies every write of `batch` atomically, then flushes to disk.
    pub fn apply(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let t = &self.trees;
        let result: std::result::Result<(), TransactionError<()>> =
            (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7]).transaction(|trees| {
                let all = [
                    &trees.0, &trees.1, &trees.2, &trees.3, &trees.4, &trees.5, &trees.6, &trees.7,
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
        for id in TreeId::ALL {
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
