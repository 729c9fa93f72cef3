//! strata's state: records in trees, behind one interface with two backends.
//!
//! - [`Store::open`]: the local home, a sled database on disk ([`local`]), for one
//!   process (the CLI, or the daemon that serves it).
//! - [`Store::connect`]: a team server's MySQL or MariaDB database ([`mysql`]), shared by
//!   every server node.
//!
//! Both keep the same promises, which one contract suite (`tests/contract.rs`) checks
//! against each: every record is stored in an envelope that carries a format version and
//! a CRC-32 of its body ([`codec`]), so a damaged record is reported with its key instead
//! of being misread; changes that touch several keys go through one [`Batch`], applied
//! atomically; a change is durable before the call returns, so whatever strata reported
//! as done survives a crash; and nothing with side effects runs inside a transaction.
//! [`Store::lock`] takes a named lock that every process sharing the store respects.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use crate as store;
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, fsutil, home};

pub mod codec;
mod local;
pub mod mariadb;
pub mod mysql;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

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
    /// run id → the team server node running it (`None` on a local home), while its run
    /// is under way: one found when a home (or its node) is opened belonged to a strata
    /// that was killed, and the run is marked interrupted.
    LiveRuns = 12,
    /// Who may do what on a team server: `user/NAME` → user, `token/ID` → token (its
    /// secret hashed), `grant/stack|connector/NAME/USER` → the grant,
    /// `restricted/stack/NAME` → a stack once granted, `owner/secret/NAME` → its owner.
    Access = 13,
    /// The audit log of a team server: `MS-NODE-SEQ` (zero-padded, so in time order) →
    /// entry.
    Audit = 14,
}

impl TreeId {
    pub const ALL: [TreeId; 15] = [
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
        TreeId::Access,
        TreeId::Audit,
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

const TREE_NAMES: [&str; 15] = [
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
    "access",
    "audit",
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
    ops: Vec<Op>,
}

/// One write of a batch: a value to store under a key, or `None` to remove it.
pub type Op = (TreeId, Vec<u8>, Option<Vec<u8>>);

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

/// What a backend gives [`Store`]: raw bytes by tree and key, and atomic commits.
pub trait Backend: Send + Sync {
    /// `sled` or `mysql`, for messages.
    fn name(&self) -> &'static str;
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn contains(&self, tree: TreeId, key: &[u8]) -> Result<bool>;
    /// Every record whose key starts with `prefix`, in byte order of the keys.
    fn scan(&self, tree: TreeId, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    fn keys(&self, tree: TreeId) -> Result<Vec<Vec<u8>>>;
    /// Applies every op, in order, all or none; durable when it returns `Ok`.
    fn commit(&self, ops: Vec<Op>) -> Result<()>;
    /// Takes the lock `name`, waiting up to `wait`; `None` when another holder kept it.
    fn lock(&self, name: &str, wait: Duration) -> Result<Option<StoreLock>>;
    fn flush(&self) -> Result<()>;
    /// For the rest of this thread's request (until the returned guard is dropped), reads
    /// may be answered from what this process read at the store's current version. A
    /// store that only this process writes needs nothing.
    fn fresh(&self) -> Result<StoreLock> {
        Ok(StoreLock::none())
    }
}

/// A named lock taken with [`Store::lock`]; released when dropped (and by the database
/// when the process holding it dies).
pub struct StoreLock {
    _held: Option<Box<dyn Send>>,
}

impl StoreLock {
    /// A lock with nothing to release: the process's own locks are enough.
    pub fn none() -> StoreLock {
        StoreLock { _held: None }
    }

    pub(crate) fn holding(held: Box<dyn Send>) -> StoreLock {
        StoreLock { _held: Some(held) }
    }
}

/// The open store. Clones share it.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    #[cfg(test)]
    local: Option<Arc<local::Local>>,
}

impl Store {
    /// Opens (creating if needed) the local database in `dir`. Fails with
    /// [`Error::StoreLocked`] when another process holds it.
    pub fn open(dir: &Path) -> Result<Store> {
        let local = Arc::new(local::Local::open(dir)?);
        let store = Store {
            backend: local.clone(),
            #[cfg(test)]
            local: Some(local),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Connects to a team server's database (see [`mysql::Mysql::connect`]), whose tables
    /// must be at the version this strata knows ([`mysql::migrate`] brings them there).
    /// `node_dir` keeps what is this node's own: which compiled flavors it has verified.
    pub fn connect(url: &str, node_dir: &Path) -> Result<Store> {
        let db = mysql::Mysql::connect(url, node_dir)?;
        let store = Store {
            backend: Arc::new(db),
            #[cfg(test)]
            local: None,
        };
        store.check_schema()?;
        Ok(store)
    }

    /// `sled` or `mysql`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
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

    /// Reads and decodes one record.
    pub fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &str) -> Result<Option<T>> {
        let raw = self.backend.get(tree, key.as_bytes())?;
        raw.map(|v| codec::decode(&v).map_err(|e| corrupt(tree, key, e)))
            .transpose()
    }

    pub fn get_raw(&self, tree: TreeId, key: &str) -> Result<Option<Vec<u8>>> {
        self.backend.get(tree, key.as_bytes())
    }

    pub fn contains(&self, tree: TreeId, key: &str) -> Result<bool> {
        self.backend.contains(tree, key.as_bytes())
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        tree: TreeId,
        prefix: &str,
    ) -> Result<Vec<(String, T)>> {
        let mut out = Vec::new();
        for (k, v) in self.backend.scan(tree, prefix.as_bytes())? {
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = codec::decode(&v).map_err(|e| corrupt(tree, &key, e))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Applies every write of `batch` atomically; durable when it returns.
    pub fn apply(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.backend.commit(batch.ops)
    }

    /// Takes the lock `name`, shared by every process using this store (a team server's
    /// nodes), waiting up to `wait`; `None` when it is still held by another after that.
    pub fn lock(&self, name: &str, wait: Duration) -> Result<Option<StoreLock>> {
        self.backend.lock(name, wait)
    }

    /// One request's reads from now until the guard is dropped: a team server checks the
    /// database's change counter once, then answers repeated reads from memory (see
    /// [`Backend::fresh`]). Take it after the catalog lock, so that the check sees every
    /// change committed before this request's own.
    pub fn fresh_reads(&self) -> Result<StoreLock> {
        self.backend.fresh()
    }

    /// Every record of every tree but `compiled` (which names files in this home's cache),
    /// raw, in tree and key order: what `strata backup` writes.
    pub fn dump(&self) -> Result<Vec<RawRecord>> {
        let mut out = Vec::new();
        for id in TreeId::ALL {
            if id == TreeId::Compiled {
                continue;
            }
            for (k, v) in self.backend.scan(id, b"")? {
                out.push((id, k, v));
            }
        }
        Ok(out)
    }

    /// Replaces everything stored with `records`, in one transaction: what `strata
    /// restore` does once it has checked them.
    pub fn replace_all(&self, records: Vec<RawRecord>) -> Result<()> {
        let mut batch = Batch::new();
        for id in TreeId::ALL {
            for k in self.backend.keys(id)? {
                batch.ops.push((id, k, None));
            }
        }
        for (id, k, v) in records {
            batch.ops.push((id, k, Some(v)));
        }
        self.apply(batch)
    }

    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
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

fn corrupt(tree: TreeId, key: &str, reason: String) -> Error {
    Error::Corrupt {
        key: format!("{}/{}", TREE_NAMES[tree as usize], key),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn sled_tree(store: &Store, t: TreeId) -> &sled::Tree {
        store.local.as_ref().expect("a local store").tree(t)
    }

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
        assert!(
            sled_tree(&store, TreeId::Blobs).is_empty(),
            "nothing in sled"
        );
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
            sled_tree(&store, TreeId::Blobs)
                .insert(key.as_bytes(), code.as_slice())
                .unwrap();
            sled_tree(&store, TreeId::Meta)
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
        assert!(sled_tree(&store, TreeId::Blobs).is_empty());
        assert_eq!(store.get_raw(TreeId::Blobs, &key).unwrap(), Some(code));
    }

    #[test]
    fn new_stores_use_small_segments_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(local::segment_size(dir.path()), local::SEGMENT_SIZE);
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
        assert_eq!(local::segment_size(old.path()), 512 * 1024);
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
