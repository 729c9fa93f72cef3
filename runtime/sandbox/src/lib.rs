//! The wasmtime host that runs flavors.
//!
//! A flavor is compiled once (at registration) and its native code cached on disk
//! ([`cache`]); every call then instantiates it afresh in its own `Store`, bounded by a
//! wall-clock deadline (epoch interruption), a memory cap ([`host::Limiter`]), a cap on
//! the handles it may hold ([`host::MAX_HANDLES`]), and caps on what it may return, in
//! bytes and in list elements, checked before anything is copied ([`lift`]). The only
//! capabilities a call gets are its [`Grants`]: directories opened without following
//! symlinks ([`dirs`]) and preopened read-write, and the secrets resolved for it, masked
//! out of everything it hands back. No environment, arguments, network or inherited
//! standard streams. A trap, a timeout or a limit hit becomes [`Error::Sandbox`] naming the
//! flavor and the call; the instance is dropped with its store and strata carries on.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use crate as sandbox;
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, fsutil, home};

pub mod bindings;
pub mod cache;
pub mod dirs;
pub mod host;
pub mod net;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{
    Component, ComponentExportIndex, Instance, InstancePre, Linker, WasmStr, types::ComponentItem,
};
use wasmtime::{Config, Engine, Store, Trap};

use crate::error::{Error, Fault, Result};
pub use host::{GrantedDir, Grants, HostState, LogLine};

use bindings::{
    ALERTER, ARTIFACT_STORE, EXPERIMENT_TRACKER, LIFECYCLE, ORCHESTRATOR, WIT_VERSION, WIT_VERSIONS,
};

/// How often the epoch advances: the resolution of every deadline.
const TICK: Duration = Duration::from_millis(5);
/// Calls that run at once in one strata process; more wait for a slot. With
/// [`host::MAX_HANDLES`] per call, flavors hold at most 8,192 file descriptors in all,
/// well under the usual limit of a process, so no flavor can starve the daemon of the
/// descriptors it needs to accept connections and open its store.
pub const MAX_CONCURRENT_CALLS: usize = 32;

pub use strata_model::calls::{Limits, MAX_WASM_BYTES};

/// A flavor compiled and linked, ready to instantiate.
pub struct Loaded {
    pre: InstancePre<HostState>,
    /// Every function strata calls, by its name in the WIT, as found in this component
    /// (the lifecycle's, and the artifact store's or orchestrator's where exported).
    funcs: HashMap<&'static str, ComponentExportIndex>,
    artifact_store: bool,
    orchestrator: bool,
    alerter: bool,
    experiment_tracker: bool,
    /// The version of `strata:flavor` it was built against (one of [`WIT_VERSIONS`]).
    wit_version: &'static str,
}

impl Loaded {
    /// The version of `strata:flavor` the flavor was built against: `0.2.0`, `0.1.0`.
    pub fn wit_version(&self) -> &'static str {
        self.wit_version
    }

    pub fn exports_artifact_store(&self) -> bool {
        self.artifact_store
    }

    pub fn exports_orchestrator(&self) -> bool {
        self.orchestrator
    }

    pub fn exports_alerter(&self) -> bool {
        self.alerter
    }

    pub fn exports_experiment_tracker(&self) -> bool {
        self.experiment_tracker
    }
}

/// The functions of each interface strata calls, as named in the WIT.
const LIFECYCLE_FUNCS: [&str; 8] = [
    "describe",
    "validate",
    "provision",
    "deprovision",
    "resume",
    "suspend",
    "status",
    "prepare-pipeline-deployment",
];
const ARTIFACT_STORE_FUNCS: [&str; 9] = [
    "exists", "stat", "read", "write", "list", "makedirs", "remove", "rename", "copy",
];
const ORCHESTRATOR_FUNCS: [&str; 1] = ["launch"];
const ALERTER_FUNCS: [&str; 1] = ["post"];
const EXPERIMENT_TRACKER_FUNCS: [&str; 2] = ["step-environment", "finish-run"];

/// The outcome of loading a registered flavor.
pub struct LoadReport {
    pub loaded: Arc<Loaded>,
    /// Set when the flavor was compiled now: the sha256 of the new cache file, for the
    /// store to record.
    pub compiled: Option<String>,
    /// The cache file was there but had been changed on disk, and was replaced.
    pub tampered: bool,
}

/// The value of a call plus what the flavor logged during it.
pub struct Called<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    pub dropped_logs: u64,
    pub elapsed: Duration,
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("strata-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("invariant: the OS can start one thread");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    cache: cache::Cache,
    engine_key: String,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    slots: Slots,
    _ticker: Ticker,
}

/// A counting semaphore of [`MAX_CONCURRENT_CALLS`] call slots.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: std::sync::Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn take(&self) -> Slot<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= MAX_CONCURRENT_CALLS {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

impl Sandbox {
    /// Creates the engine. `cache_root` is the home's `cache/` directory; entries go in a
    /// subdirectory per engine configuration, since compiled code is only valid for the
    /// wasmtime version and settings that produced it.
    pub fn new(cache_root: &std::path::Path) -> Result<Sandbox> {
        Sandbox::with_allocator(cache_root, false)
    }

    /// Like [`Sandbox::new`]; with `pooled`, instances come from wasmtime's pooling
    /// allocator: reserved once (costs ~3 ms at start), then instantiating reuses a slot
    /// instead of mapping and unmapping memory per call. For a long-lived process (the
    /// daemon), not for a one-shot command. The limits are sized for the largest flavors
    /// seen (Python and JavaScript components carry an interpreter: many core instances,
    /// tables of tens of thousands of elements, memories of hundreds of pages); each
    /// call's own memory cap still applies on top.
    pub fn with_allocator(cache_root: &std::path::Path, pooled: bool) -> Result<Sandbox> {
        /// How much of each memory and table the pooling allocator resets in place.
        const KEEP_RESIDENT: usize = 2 << 20;
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false)
            .max_wasm_stack(1024 * 1024)
            .parallel_compilation(true);
        if pooled {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(256)
                .total_core_instances(2048)
                .total_memories(512)
                .total_tables(2048)
                .max_core_instances_per_component(64)
                .max_memories_per_component(16)
                .max_tables_per_component(64)
                .table_elements(200_000)
                .max_memory_size(4 << 30)
                // A slot is reset for its next instance by zeroing only the pages the
                // last one touched (Linux's PAGEMAP_SCAN finds them, where the kernel
                // has it), up to these sizes, instead of `madvise`: no page faults when
                // the slot is reused, and no TLB shootdown of the other cores per call.
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT)
                .pagemap_scan(wasmtime::Enabled::Auto);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)
            .map_err(|e| Error::Internal(format!("starting wasmtime: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Internal(format!("linking WASI: {e:#}")))?;
        // `wasi:http`, every request through the gate ([`net::Gate`]).
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| Error::Internal(format!("linking wasi:http: {e:#}")))?;
        // Every version's `types` and `host`: they are the same at each version.
        for version in WIT_VERSIONS {
            // `types` has no functions, but components import it (for the types `host` uses).
            linker
                .instance(&format!("strata:flavor/types@{version}"))
                .map_err(|e| Error::Internal(format!("linking strata's types interface: {e:#}")))?;
            linker
                .instance(&format!("strata:flavor/host@{version}"))
                .and_then(|mut i| {
                    i.func_wrap(
                        "log",
                        |cx, (level, message): (bindings::types::Level, WasmStr)| {
                            host::log(cx, level, message)
                        },
                    )
                })
                .map_err(|e| Error::Internal(format!("linking strata's host interface: {e:#}")))?;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        let cache = cache::Cache::new(cache_root.join(&engine_key));
        Ok(Sandbox {
            _ticker: Ticker::start(engine.clone()),
            engine,
            linker,
            cache,
            engine_key,
            loaded: Mutex::new(HashMap::new()),
            slots: Slots::default(),
        })
    }

    /// Identifies the engine configuration; compiled-cache records are kept per key.
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Checks that `bytes` (read from `label`) is a strata flavor this runtime can run,
    /// compiles it and caches the compiled code. Returns the loaded flavor and the
    /// sha256 of the cache file. Does not call into the flavor.
    pub fn inspect(
        &self,
        label: &str,
        wasm_sha: &str,
        bytes: &[u8],
    ) -> Result<(Arc<Loaded>, String)> {
        let refuse = |reason: String, hint: &str| Error::NotAFlavor {
            path: label.to_string(),
            reason,
            hint: hint.to_string(),
        };
        if bytes.len() > MAX_WASM_BYTES {
            return Err(refuse(
                format!(
                    "it is {} MiB; strata accepts at most {} MiB",
                    bytes.len() >> 20,
                    MAX_WASM_BYTES >> 20
                ),
                "strip debug information (`strip = true` in the release profile) or split the flavor",
            ));
        }
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(refuse(
                "it is not a WebAssembly file (no `\\0asm` header)".into(),
                "give the `.wasm` your build produced, e.g. target/wasm32-wasip2/release/NAME.wasm",
            ));
        }
        if bytes[6..8] != [1, 0] {
            return Err(refuse(
                "it is a core WebAssembly module, not a component".into(),
                "build for `--target wasm32-wasip2`, or wrap the module with `wasm-tools component new`",
            ));
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            refuse(
                format!("it does not compile: {}", e.root_cause()),
                "rebuild it with a current toolchain",
            )
        })?;
        let loaded = self.link(label, &component)?;
        let compiled = component
            .serialize()
            .map_err(|e| Error::Internal(format!("serializing {label}: {e:#}")))?;
        let hash = self.cache.write(wasm_sha, &compiled)?;
        let loaded = Arc::new(loaded);
        self.remember(wasm_sha, loaded.clone());
        Ok((loaded, hash))
    }

    /// Loads a registered flavor: from memory, from the verified compiled cache, or by
    /// compiling `wasm()` again when the cache is missing or was changed on disk.
    pub fn load(
        &self,
        label: &str,
        wasm_sha: &str,
        expected_cache_hash: Option<&str>,
        wasm: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<LoadReport> {
        if let Some(l) = self
            .loaded
            .lock()
            .expect("invariant: lock not poisoned")
            .get(wasm_sha)
        {
            return Ok(LoadReport {
                loaded: l.clone(),
                compiled: None,
                tampered: false,
            });
        }
        let tampered = match self.cache.lookup(wasm_sha, expected_cache_hash) {
            cache::Lookup::Verified(bytes) => {
                // SAFETY: these bytes were written by `Cache::write` from
                // `Component::serialize` of this engine configuration (the cache directory is
                // keyed by it), and their hash matches the one the store recorded then,
                // so they are exactly what wasmtime produced.
                let component = unsafe { Component::deserialize(&self.engine, &bytes) };
                if let Ok(component) = component {
                    let loaded = Arc::new(self.link(label, &component)?);
                    self.remember(wasm_sha, loaded.clone());
                    return Ok(LoadReport {
                        loaded,
                        compiled: None,
                        tampered: false,
                    });
                }
                false
            }
            cache::Lookup::Tampered => true,
            cache::Lookup::Missing => false,
        };
        let bytes = wasm()?;
        let (loaded, hash) = self.inspect(label, wasm_sha, &bytes)?;
        Ok(LoadReport {
            loaded,
            compiled: Some(hash),
            tampered,
        })
    }

    fn remember(&self, wasm_sha: &str, loaded: Arc<Loaded>) {
        self.loaded
            .lock()
            .expect("invariant: lock not poisoned")
            .insert(wasm_sha.to_string(), loaded);
    }

    /// Refuses a component that targets another world: it must export strata's
    /// lifecycle at a version this runtime implements ([`WIT_VERSIONS`]), and import
    /// nothing but WASI and strata's host interface of that version. Answers the version.
    fn check_world(&self, label: &str, component: &Component) -> Result<&'static str> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let found = WIT_VERSIONS
            .into_iter()
            .find(|v| exports.iter().any(|e| *e == format!("{LIFECYCLE}@{v}")));
        let Some(version) = found else {
            let other = exports
                .iter()
                .find(|e| e.starts_with("strata:flavor/lifecycle@"));
            let reason = match other {
                Some(e) => format!(
                    "it was built against `{}`; this strata runs strata:flavor@{}",
                    e.trim_start_matches("strata:flavor/lifecycle"),
                    WIT_VERSIONS.join(" and @")
                ),
                None => format!(
                    "it does not export `{LIFECYCLE}@{WIT_VERSION}` (it exports: {})",
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                ),
            };
            return Err(Error::NotAFlavor {
                path: label.to_string(),
                reason,
                hint: format!(
                    "build it against the WIT in this strata's `wit/` folder (package strata:flavor@{WIT_VERSION}), world `flavor` or its type's world"
                ),
            });
        };
        for (name, item) in ty.imports(&self.engine) {
            let allowed = name.starts_with("wasi:")
                || name == format!("strata:flavor/host@{version}")
                || name == format!("strata:flavor/types@{version}");
            if !allowed || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                return Err(Error::NotAFlavor {
                    path: label.to_string(),
                    reason: format!("it imports `{name}`, which strata does not provide"),
                    hint: format!(
                        "a flavor may import only WASI and `strata:flavor/host@{version}`; remove the dependency that pulls it in"
                    ),
                });
            }
        }
        Ok(version)
    }

    fn link(&self, label: &str, component: &Component) -> Result<Loaded> {
        let wit_version = self.check_world(label, component)?;
        let lifecycle_export = format!("{LIFECYCLE}@{wit_version}");
        let artifact_store_export = format!("{ARTIFACT_STORE}@{wit_version}");
        let orchestrator_export = format!("{ORCHESTRATOR}@{wit_version}");
        let alerter_export = format!("{ALERTER}@{wit_version}");
        let tracker_export = format!("{EXPERIMENT_TRACKER}@{wit_version}");
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| Error::NotAFlavor {
                path: label.to_string(),
                reason: format!("its imports do not match what strata provides: {e:#}"),
                hint: "rebuild it against the WIT in this strata's `wit/` folder".into(),
            })?;
        // The bindings' indices type-check every export against the contract once, here;
        // calls then look functions up by index and lift their answers through bounded
        // types (`lift`).
        // (The bindings name the current version's exports; an older flavor's functions
        // are type-checked when each is first called.)
        let current = wit_version == WIT_VERSION;
        if current {
            bindings::lifecycle::GuestIndices::new(&pre)
                .map_err(|e| mismatch(label, &lifecycle_export, e))?;
        }
        let has = |name: &str| {
            component
                .component_type()
                .exports(&self.engine)
                .any(|(n, _)| n == name)
        };
        let artifact_store = has(&artifact_store_export);
        if artifact_store && current {
            bindings::artifact_store::GuestIndices::new(&pre)
                .map_err(|e| mismatch(label, &artifact_store_export, e))?;
        }
        let orchestrator = has(&orchestrator_export);
        if orchestrator && current {
            bindings::orchestrator::GuestIndices::new(&pre)
                .map_err(|e| mismatch(label, &orchestrator_export, e))?;
        }
        let alerter = has(&alerter_export);
        if alerter && current {
            bindings::alerter::GuestIndices::new(&pre)
                .map_err(|e| mismatch(label, &alerter_export, e))?;
        }
        let experiment_tracker = has(&tracker_export);
        if experiment_tracker && current {
            bindings::experiment_tracker::GuestIndices::new(&pre)
                .map_err(|e| mismatch(label, &tracker_export, e))?;
        }
        let mut funcs = HashMap::new();
        let mut index = |interface: &str, names: &[&'static str]| -> Result<()> {
            let parent = component
                .get_export_index(None, interface)
                .ok_or_else(|| mismatch(label, interface, wasmtime::format_err!("not found")))?;
            for name in names {
                let i = component
                    .get_export_index(Some(&parent), name)
                    .ok_or_else(|| {
                        mismatch(label, interface, wasmtime::format_err!("no `{name}`"))
                    })?;
                funcs.insert(*name, i);
            }
            Ok(())
        };
        index(&lifecycle_export, &LIFECYCLE_FUNCS)?;
        if artifact_store {
            index(&artifact_store_export, &ARTIFACT_STORE_FUNCS)?;
        }
        if orchestrator {
            index(&orchestrator_export, &ORCHESTRATOR_FUNCS)?;
        }
        if alerter {
            index(&alerter_export, &ALERTER_FUNCS)?;
        }
        if experiment_tracker {
            index(&tracker_export, &EXPERIMENT_TRACKER_FUNCS)?;
        }
        Ok(Loaded {
            pre,
            funcs,
            artifact_store,
            orchestrator,
            alerter,
            experiment_tracker,
            wit_version,
        })
    }

    /// Runs `f` against a fresh instance of `loaded`, bounded by `limits`, with `grants`.
    /// `flavor` and `call` name the call in errors.
    pub fn call<T>(
        &self,
        loaded: &Loaded,
        flavor: &str,
        call: &str,
        grants: &Grants,
        limits: &Limits,
        f: impl FnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<T>,
    ) -> Result<Called<T>> {
        let _slot = self.slots.take();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(limits.timeout_ms);
        let mut store = Store::new(
            &self.engine,
            HostState::new(grants, limits.memory_bytes, deadline, flavor)?,
        );
        store.limiter(|s| &mut s.limiter);
        let ticks = limits.timeout_ms.div_ceil(TICK.as_millis() as u64).max(1);
        // Instantiation runs the guest's start-up code: bound it by the same deadline.
        store.set_epoch_deadline(ticks);
        let instance = loaded.pre.instantiate(&mut store);
        let result = instance.and_then(|instance| {
            store.set_epoch_deadline(ticks);
            f(&mut store, &instance)
        });
        let elapsed = started.elapsed();
        match result {
            Ok(value) => {
                let state = store.into_data();
                let journal =
                    std::mem::take(&mut *state.journal.lock().unwrap_or_else(|e| e.into_inner()));
                Ok(Called {
                    value,
                    logs: journal.lines,
                    dropped_logs: journal.dropped,
                    elapsed,
                })
            }
            Err(e) => Err(Error::Sandbox {
                flavor: flavor.to_string(),
                call: call.to_string(),
                fault: classify(&e, store.data(), limits),
                source: Some(e.into()),
            }),
        }
    }
}

fn mismatch(label: &str, export: &str, e: wasmtime::Error) -> Error {
    Error::NotAFlavor {
        path: label.to_string(),
        reason: format!("its `{export}` export does not match the contract: {e:#}"),
        hint: "rebuild it against the WIT in this strata's `wit/` folder".into(),
    }
}

/// Turns a wasmtime error into what happened, in the user's terms.
fn classify(e: &wasmtime::Error, state: &HostState, limits: &Limits) -> Fault {
    if let Some(fault) = lift::exceeded(e) {
        return fault;
    }
    if state.limiter.memory_denied {
        return Fault::Memory {
            limit_bytes: limits.memory_bytes,
        };
    }
    if e.chain().any(|c| {
        c.downcast_ref::<wasmtime::component::ResourceTableError>()
            .is_some_and(|t| matches!(t, wasmtime::component::ResourceTableError::Full))
    }) {
        return Fault::Handles {
            limit: host::MAX_HANDLES,
        };
    }
    let stderr = state.stderr_text();
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => Fault::Timeout {
                limit_ms: limits.timeout_ms,
                network: state.waiting_on_network(),
            },
            Trap::StackOverflow => Fault::StackOverflow,
            // Rust and C keep their stack in linear memory, below the data: running off
            // its end is an access below address 0, not a wasm stack overflow.
            Trap::MemoryOutOfBounds if stderr.is_empty() => Fault::Trap {
                detail: format!(
                    "{trap} (a stray pointer, or a stack overflow: compiled languages keep their stack in linear memory)"
                ),
            },
            other => {
                let said = if stderr.is_empty() {
                    String::new()
                } else {
                    format!(" (it said: {})", last_lines(&stderr, 3))
                };
                Fault::Trap {
                    detail: format!("{other}{said}"),
                }
            }
        };
    }
    // A Rust guest that could not allocate says so on stderr, then aborts.
    if stderr.contains("memory allocation of") {
        return Fault::Memory {
            limit_bytes: limits.memory_bytes,
        };
    }
    Fault::Trap {
        detail: format!("{e:#}"),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// The typed calls strata makes, each through [`Sandbox::call`] and [`lift`].
pub mod calls;
/// Reading a flavor's answers within bounds: counted before copied.
pub mod lift;
