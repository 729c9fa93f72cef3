//! Every operation strata offers, written once. The CLI calls it in-process; the daemon
//! calls it behind its REST routes. No rule lives anywhere else.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, fsutil, home};
#[allow(unused_imports)]
pub(crate) use {crate as service, strata_sandbox as sandbox, strata_store as store};

pub mod access;
pub use access::{Need, Principal};
pub mod builtin;

mod alerts;
mod artifacts;
pub use artifacts::{MAX_ARTIFACT_BYTES, READ_CHUNK, WRITE_CHUNK};
mod backup;
mod components;
pub mod connectors;
mod edits;
mod flavors;
mod flavortest;
mod integrations;
mod lifecycle;
mod pipeline;
mod runs;
pub use runs::{RunEvent, RunOptions, Watch, default_jobs};
mod secrets;
mod stacks;
mod transfer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::{
    ComponentRecord, ComponentType, DEFAULT_NAME, FlavorRecord, FlavorSource, StackRecord, now_ms,
};
use crate::sandbox::{Loaded, Sandbox};
use crate::store::{Batch, Store, TreeId, meta, type_key};
use sha2::Digest;

pub use flavortest::{FlavorTestReport, TestStep, flavor_test};
/// The views this service answers with, defined with the REST API's types.
pub use strata_api::views::*;
pub use strata_model::fsutil::write_private;

/// The open home: its store and (created on first need) its sandbox.
///
/// One process opens a home; inside it, [`Service::scoped`] gives each request (a daemon
/// serves many at once) its own working directory, warnings and logs over the same store,
/// sandbox and locks.
pub struct Service {
    home: Home,
    store: Store,
    sandbox: Arc<OnceLock<Sandbox>>,
    shared: Arc<Shared>,
    /// Where relative paths in configuration are taken from.
    cwd: PathBuf,
    /// Warnings for the user gathered while serving (a recompiled cache, …).
    warnings: std::sync::Mutex<Vec<String>>,
    /// What flavors logged, for `--verbose`.
    logs: std::sync::Mutex<Vec<String>>,
    /// What opening did to the home (created it? registered built-ins?).
    opened: InitReport,
    /// Who makes this request, on a team server (`None`: a local home's owner).
    who: Option<Principal>,
}

/// What makes a service a team server's.
pub struct Team {
    /// This node's name, in the audit log and in the runs it executes.
    pub node: String,
    /// The key secrets are sealed with, the same on every node (`--secret-key-file`);
    /// `None` for a command that manages users on the database directly, and touches no
    /// secret.
    pub secret_key: Option<[u8; 32]>,
    /// A command that manages users on the database directly: it does not set the
    /// server up (built-in flavors, default stack), which the first node does.
    pub admin_only: bool,
    /// Where components' directories are, the same path on every node: the first
    /// node's `DATA_DIR/stores`, recorded in the database (set by [`Service::open_team`]).
    pub stores: PathBuf,
}

/// What every request of one process shares besides the store and the sandbox.
#[derive(Default)]
struct Shared {
    catalog: std::sync::Mutex<()>,
    /// Creating the engine twice at once would be wasted work (and two tickers).
    sandbox_init: std::sync::Mutex<()>,
    /// Whether the sandbox uses the pooling allocator (the daemon does).
    pooled: bool,
    components: std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::Mutex<()>>>>,
    in_flight: std::sync::Mutex<std::collections::HashMap<String, InFlight>>,
    /// The pipeline runs under way in this process.
    runs: std::sync::Mutex<std::collections::HashMap<String, Arc<runs::LiveRun>>>,
    /// Set when the daemon begins to stop: no new lifecycle call starts after it.
    stopping: std::sync::atomic::AtomicBool,
    /// Set on a team server.
    team: Option<Team>,
    /// Tokens this node checked recently.
    tokens: access::TokenCache,
    /// Orders the audit entries this node writes within one millisecond.
    audit_seq: std::sync::atomic::AtomicU64,
}

/// Held while a change to the catalog is checked and written: this process's lock, and
/// on a team server the database's, which every node takes.
pub struct CatalogGuard<'a> {
    _db: Option<crate::store::StoreLock>,
    _local: std::sync::MutexGuard<'a, ()>,
}

/// How long a change waits for the catalog lock of a team server (held only while a
/// change is checked and written, a few milliseconds) before it is answered 503.
const CATALOG_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Service {
    /// Opens the home, creating and initialising it on first use (`strata init` does
    /// nothing more than this), and re-registering the built-in flavors when this
    /// binary carries new ones.
    pub fn open(home: Home) -> Result<Service> {
        Service::open_with(home, false)
    }

    /// [`Service::open`] for a long-lived process: with `pooled`, the sandbox reserves its
    /// instances up front (see [`Sandbox::with_allocator`]).
    pub fn open_with(home: Home, pooled: bool) -> Result<Service> {
        home.create()?;
        let store = open_waiting(&home.db_dir())?;
        Service::over(home, store, pooled, None)
    }

    /// A team server node: the catalog in the database at `url` (migrated, see
    /// [`crate::store::mysql::migrate`]), this node's own files (compiled flavors, the
    /// working directories of runs, the data directories of components) under `node_dir`.
    pub fn open_team(node_dir: Home, url: &str, mut team: Team) -> Result<Service> {
        node_dir.create()?;
        let store = Store::connect(url, &node_dir.db_dir())?;
        let busy = || Error::Busy {
            what:
                "another strata server node held the catalog lock for 30 s while this one started"
                    .into(),
            hint: "start this node again; if it keeps happening, a node is stuck: restart it"
                .into(),
        };
        team.stores = {
            let _held = store.lock("catalog", CATALOG_WAIT)?.ok_or_else(busy)?;
            match store.get::<String>(TreeId::Meta, "team_stores")? {
                Some(dir) => PathBuf::from(dir),
                None if team.admin_only => node_dir.protected().data,
                None => {
                    let dir = node_dir.protected().data;
                    let mut batch = Batch::new();
                    batch.put(TreeId::Meta, "team_stores", &dir.display().to_string());
                    store.apply(batch)?;
                    dir
                }
            }
        };
        if let Some(key) = &team.secret_key {
            let key_check = hex::encode(sha2::Sha256::digest(
                [b"strata secret key check:".as_slice(), key].concat(),
            ));
            let _held = store.lock("catalog", CATALOG_WAIT)?.ok_or_else(busy)?;
            match store.get::<String>(TreeId::Meta, "secret_key_check")? {
                Some(k) if k != key_check => {
                    return Err(Error::invalid(
                        "this secret key is not the one the database's secrets are sealed with",
                        "give every node of one database the same key file (`--secret-key-file`, or STRATA_SECRET_KEY)",
                    ));
                }
                Some(_) => {}
                None => {
                    let mut batch = Batch::new();
                    batch.put(TreeId::Meta, "secret_key_check", &key_check);
                    store.apply(batch)?;
                }
            }
        }
        Service::over(node_dir, store, true, Some(team))
    }

    fn over(home: Home, store: Store, pooled: bool, team: Option<Team>) -> Result<Service> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?;
        let mut svc = Service {
            home,
            store,
            sandbox: Default::default(),
            shared: Arc::new(Shared {
                pooled,
                team,
                ..Default::default()
            }),
            cwd,
            warnings: Default::default(),
            logs: Default::default(),
            opened: InitReport {
                home: String::new(),
                created: false,
                builtins_registered: 0,
            },
            who: None,
        };
        if svc.shared.team.as_ref().is_some_and(|t| t.admin_only) {
            return Ok(svc);
        }
        let opened = {
            // Two nodes starting at once register the built-ins once.
            let _held = svc.catalog_lock()?;
            svc.ensure_initialized()?
        };
        svc.opened = opened;
        svc.recover_runs()?;
        Ok(svc)
    }

    /// [`Service::scoped`] for a request made by `who` on a team server.
    pub fn as_user(&self, cwd: PathBuf, who: Option<Principal>) -> Service {
        let mut svc = self.scoped(cwd);
        svc.who = who;
        svc
    }

    /// The same open home for one request: relative paths are taken from `cwd`, and
    /// warnings and flavor logs are gathered for this request alone.
    pub fn scoped(&self, cwd: PathBuf) -> Service {
        Service {
            home: self.home.clone(),
            store: self.store.clone(),
            sandbox: self.sandbox.clone(),
            shared: self.shared.clone(),
            cwd,
            warnings: Default::default(),
            logs: Default::default(),
            // The home was opened (and initialised) before this request: it did nothing.
            opened: InitReport {
                created: false,
                builtins_registered: 0,
                ..self.opened.clone()
            },
            who: self.who.clone(),
        }
    }

    /// Held by every change to the catalog (flavors, components, stacks, secrets) in a
    /// process that serves many requests at once, so that a check and the write it
    /// allows are one step. Lifecycle calls do not take it: they lock their component.
    pub fn catalog_lock(&self) -> Result<CatalogGuard<'_>> {
        let local = self
            .shared
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let db = match self.shared.team {
            None => None,
            Some(_) => Some(self.store.lock("catalog", CATALOG_WAIT)?.ok_or_else(|| {
                Error::Unavailable {
                    what: format!(
                        "another server node held the catalog lock for over {} s",
                        CATALOG_WAIT.as_secs()
                    ),
                    hint:
                        "send the request again; if it keeps happening, a node is stuck: restart it"
                            .into(),
                }
            })?),
        };
        Ok(CatalogGuard {
            _db: db,
            _local: local,
        })
    }

    /// On a team server, the database's lock of component `id` for a lifecycle call,
    /// waiting up to `wait` (a call on another node holds it); `None` when still held.
    /// Nothing to take on a local home, where the process's own lock is the lock.
    pub(crate) fn component_db_lock(
        &self,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Option<crate::store::StoreLock>> {
        match self.shared.team {
            None => Ok(Some(crate::store::StoreLock::none())),
            Some(_) => self.store.lock(&format!("component/{id}"), wait),
        }
    }

    /// From now on no new lifecycle call starts (the daemon is stopping); calls under
    /// way finish, and a run of several components ends after the one it is in.
    pub fn begin_stop(&self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.shared
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `f` holding `c`'s lifecycle lock, for a change that depends on its phase
    /// (delete, an update of its configuration); refuses at once when a lifecycle call
    /// holds it, since waiting would keep every other change waiting as long as it runs.
    pub(crate) fn while_idle<T>(
        &self,
        c: &ComponentRecord,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let busy = || {
            Error::Busy {
            what: format!(
                "{} `{}` has a lifecycle call under way",
                c.component_type.label(),
                c.name
            ),
            hint: "wait for it to finish (`strata daemon status` lists the calls under way), then run the command again".into(),
        }
        };
        let lock = self.component_lock(&c.id);
        let _held = match lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(busy()),
        };
        let _db = self
            .component_db_lock(&c.id, std::time::Duration::ZERO)?
            .ok_or_else(busy)?;
        let _fresh = self.store.fresh_reads()?;
        f()
    }

    /// The lifecycle lock of one component: calls into one component run one at a time,
    /// calls into different components in parallel.
    fn component_lock(&self, id: &str) -> Arc<std::sync::Mutex<()>> {
        let mut locks = self
            .shared
            .components
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(id.to_string()).or_default().clone()
    }

    /// The lifecycle calls running now: component id, what it is, and the call.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// `path` as the user meant it: relative paths are taken from the directory the
    /// command was given in.
    pub fn resolve(&self, path: &std::path::Path) -> PathBuf {
        self.cwd.join(path)
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Warnings gathered since the last call, for the front end to show.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("invariant: lock not poisoned"))
    }

    /// What flavors logged since the last call, one line each.
    pub fn take_logs(&self) -> Vec<String> {
        std::mem::take(&mut *self.logs.lock().expect("invariant: lock not poisoned"))
    }

    pub(crate) fn note_logs(&self, who: &str, lines: &[crate::sandbox::LogLine], dropped: u64) {
        let mut logs = self.logs.lock().expect("invariant: lock not poisoned");
        logs.extend(
            lines
                .iter()
                .map(|l| format!("{who}: {}: {}", l.level, l.message)),
        );
        if dropped > 0 {
            logs.push(format!(
                "{who}: {dropped} more lines dropped (at most {} lines or {} KiB per call)",
                crate::sandbox::host::MAX_LOG_LINES,
                crate::sandbox::host::MAX_LOG_BYTES / 1024
            ));
        }
    }

    fn warn(&self, message: String) {
        self.warnings
            .lock()
            .expect("invariant: lock not poisoned")
            .push(message);
    }

    pub(crate) fn sandbox(&self) -> Result<&Sandbox> {
        if let Some(s) = self.sandbox.get() {
            return Ok(s);
        }
        let _creating = self
            .shared
            .sandbox_init
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = self.sandbox.get() {
            return Ok(s);
        }
        let s = Sandbox::with_allocator(&self.home.cache_dir(), self.shared.pooled)?;
        Ok(self.sandbox.get_or_init(|| s))
    }

    /// Registers the built-in flavors (when missing or changed) and creates the default
    /// stack on a new home.
    fn ensure_initialized(&self) -> Result<InitReport> {
        let current: Option<String> = self.store.get(TreeId::Meta, meta::BUILTIN_DIGEST)?;
        let mut registered = 0;
        if current.as_deref() != Some(builtin::digest()) {
            for b in builtin::all() {
                let existing = self.store.flavor(b.component_type, b.name)?;
                if existing.as_ref().is_some_and(|f| f.sha256 == b.sha256) {
                    continue;
                }
                self.register_flavor_bytes(
                    Some(b.component_type),
                    b.wasm,
                    FlavorSource::BuiltIn,
                    b.sha256,
                    FlavorOptions::default(),
                    true,
                )?;
                registered += 1;
            }
            let mut batch = Batch::new();
            batch.put(
                TreeId::Meta,
                meta::BUILTIN_DIGEST,
                &builtin::digest().to_string(),
            );
            self.store.apply(batch)?;
        }
        let created = self.store.stack(DEFAULT_NAME)?.is_none();
        if created {
            self.create_default_stack()?;
        }
        Ok(InitReport {
            home: self.home.root().display().to_string(),
            created,
            builtins_registered: registered,
        })
    }

    /// `strata init`: what opening the home did (every command initialises a new home).
    pub fn init(&self) -> Result<InitReport> {
        Ok(self.opened.clone())
    }

    fn create_default_stack(&self) -> Result<()> {
        let now = now_ms();
        let mut batch = Batch::new();
        let mut components = BTreeMap::new();
        let store_dir = match &self.shared.team {
            Some(t) => t.stores.join(DEFAULT_NAME),
            None => self.home.default_store_dir(),
        };
        for (t, config) in [
            (ComponentType::Orchestrator, BTreeMap::new()),
            (
                ComponentType::ArtifactStore,
                BTreeMap::from([("path".to_string(), store_dir.display().to_string())]),
            ),
        ] {
            if self.store.component(t, DEFAULT_NAME)?.is_none() {
                let c = ComponentRecord {
                    id: new_id(),
                    limits: Default::default(),
                    name: DEFAULT_NAME.into(),
                    component_type: t,
                    flavor: "local".into(),
                    config,
                    created_at: now,
                    connector: None,
                };
                batch.put(TreeId::Components, &type_key(t, DEFAULT_NAME), &c);
                batch.put(
                    TreeId::States,
                    &c.id,
                    &crate::model::ComponentState::new(now),
                );
            }
            components.insert(t, vec![DEFAULT_NAME.to_string()]);
        }
        let stack = StackRecord {
            id: new_id(),
            name: DEFAULT_NAME.into(),
            components,
            created_at: now,
        };
        batch.put(TreeId::Stacks, DEFAULT_NAME, &stack);
        if self.store.active_stack()?.is_none() {
            batch.put(TreeId::Meta, meta::ACTIVE_STACK, &DEFAULT_NAME.to_string());
        }
        self.store.apply(batch)
    }

    /// The flavor a component uses, loaded into the sandbox (compiled cache, else compile).
    pub(crate) fn load_flavor(&self, flavor: &FlavorRecord) -> Result<Arc<Loaded>> {
        let sandbox = self.sandbox()?;
        let cache_key = format!("{}/{}", sandbox.engine_key(), flavor.sha256);
        let expected: Option<String> = self.store.get(TreeId::Compiled, &cache_key)?;
        let label = format!(
            "{} flavor `{}`",
            flavor.info.component_type.label(),
            flavor.info.name
        );
        let report = sandbox.load(&label, &flavor.sha256, expected.as_deref(), || {
            self.store
                .get_raw(TreeId::Blobs, &flavor.sha256)?
                .ok_or_else(|| Error::Corrupt {
                    key: format!("blobs/{}", flavor.sha256),
                    reason: format!("the code of {label} is missing from the store"),
                })
        })?;
        if report.tampered {
            self.warn(format!(
                "the compiled code of {label} had been changed on disk; strata discarded it and compiled the flavor again"
            ));
        }
        if let Some(hash) = report.compiled {
            let mut batch = Batch::new();
            batch.put(TreeId::Compiled, &cache_key, &hash);
            self.store.apply(batch)?;
        }
        Ok(report.loaded)
    }

    fn flavor_of(&self, c: &ComponentRecord) -> Result<FlavorRecord> {
        self.store
            .flavor(c.component_type, &c.flavor)?
            .ok_or_else(|| Error::Corrupt {
                key: format!("components/{}", type_key(c.component_type, &c.name)),
                reason: format!("its flavor `{}` is not registered", c.flavor),
            })
    }

    /// The component `t`/`name`, or an error saying how to find or register it.
    pub fn component_or_err(&self, t: ComponentType, name: &str) -> Result<ComponentRecord> {
        self.store.component(t, name)?.ok_or_else(|| {
            Error::not_found(
                format!("{} `{name}`", t.label()),
                format!("list the registered ones with `strata {t} list`, or register it with `strata {t} register {name} --flavor=FLAVOR`"),
            )
        })
    }

    /// What no grant may hold or enter; on a team server, also everything outside its
    /// data directory.
    pub(crate) fn protected(&self) -> crate::model::Protected {
        let mut p = self.home.protected();
        if let Some(t) = &self.shared.team {
            p.confined = true;
            p.data = crate::model::resolve_existing(&t.stores);
        }
        p
    }

    /// Where the caller's active stack is kept: the home's one, or each team server
    /// user's own (one user's `stack set` does not move another's).
    pub(crate) fn active_key(&self) -> String {
        match &self.who {
            Some(p) => format!("{}/{}", meta::ACTIVE_STACK, p.user),
            None => meta::ACTIVE_STACK.to_string(),
        }
    }

    /// The caller's active stack: a team user's own while it exists, else the server's
    /// (`default` until someone without a user changes it).
    pub(crate) fn active_stack_opt(&self) -> Result<Option<String>> {
        if self.who.is_some()
            && let Some(name) = self.store.get::<String>(TreeId::Meta, &self.active_key())?
            && self.store.contains(TreeId::Stacks, &name)?
        {
            return Ok(Some(name));
        }
        self.store.active_stack()
    }

    /// The name of the caller's active stack.
    pub fn active_stack_name(&self) -> Result<String> {
        self.stack_get()
    }

    /// The stack `name`, or an error saying how to list them.
    pub fn stack_or_err(&self, name: &str) -> Result<StackRecord> {
        self.store.stack(name)?.ok_or_else(|| {
            Error::not_found(
                format!("stack `{name}`"),
                "list the registered stacks with `strata stack list`",
            )
        })
    }
}

/// sled lets one process open a database. A one-shot command that finds the home busy
/// (another command mid-way) waits for it, up to 10 s, rather than failing at once.
fn open_waiting(dir: &std::path::Path) -> Result<Store> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match Store::open(dir) {
            Err(Error::StoreLocked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
