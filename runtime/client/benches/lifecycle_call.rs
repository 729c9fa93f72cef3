//! What one lifecycle call on a registered flavor costs, step by step, in process, with
//! criterion: the local artifact store's `status` (for a store whose directory is
//! missing) against two baselines measured in the same run, the same logic as a native
//! Rust function and a call into an empty component (a fixture whose `status` returns a
//! constant); then instantiation alone, with the on-demand allocator the CLI uses and the
//! pooling allocator the daemon uses; loading from the verified compiled cache, with what
//! it is made of (starting an engine, hashing the compiled file); and a cold compile.
//!
//! `cargo bench --bench lifecycle_call` (after `make flavors`; `STRATA_FLAVORS_DIR` names
//! another directory of built flavors). `make bench` runs it and prints the medians as a
//! table of ratios to the native baseline (`scripts/criterion_table.py`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use strata::sandbox::cache::{compiled_hash, sha256_hex};
use strata::sandbox::calls::{Context, Target};
use strata::sandbox::{Grants, Limits, Loaded, Sandbox};

/// The local artifact store's `status`, written natively: find `path` in the
/// configuration, stat it, say what to do.
fn native_status(config: &[(String, String)], name: &str) -> (bool, bool, String) {
    let Some((_, path)) = config.iter().find(|(k, _)| k == "path") else {
        return (false, false, "no `path` configured".to_string());
    };
    let root = Path::new(path);
    if !root.is_dir() {
        return (
            false,
            false,
            format!(
                "directory {} does not exist: run `strata artifact-store up {name}`",
                root.display()
            ),
        );
    }
    (true, true, String::new())
}

/// A built flavor: its file, bytes and sha256.
struct Flavor {
    path: String,
    bytes: Vec<u8>,
    sha: String,
}

impl Flavor {
    fn read(name: &str) -> Flavor {
        let dir = std::env::var_os("STRATA_FLAVORS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2/release")
            });
        let path = dir.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build the flavors first with `make flavors`",
                path.display()
            )
        });
        Flavor {
            sha: sha256_hex(&bytes),
            path: path.display().to_string(),
            bytes,
        }
    }

    /// Compiles into the sandbox's cache once and loads it, as a registered flavor is.
    fn loaded(&self, sandbox: &Sandbox) -> Arc<Loaded> {
        let (_, hash) = sandbox
            .inspect(&self.path, &self.sha, &self.bytes)
            .expect("the flavor compiles");
        sandbox
            .load(&self.path, &self.sha, Some(&hash), || {
                Ok(self.bytes.clone())
            })
            .expect("the flavor loads")
            .loaded
    }
}

fn lifecycle_call(c: &mut Criterion) {
    let store = Flavor::read("local_artifact_store");
    let empty = Flavor::read("fixture_trap");
    let cache = tempfile::tempdir().expect("a temp dir");
    let limits = Limits::DEFAULT;
    let grants = Grants::default();
    let ctx = Context {
        component_id: "id".into(),
        component_name: "bench".into(),
        config: vec![("path".into(), "/nonexistent/strata-bench".into())],
        state: None,
    };

    let on_demand = Sandbox::new(cache.path()).expect("a sandbox");
    let pooled = Sandbox::with_allocator(cache.path(), true).expect("a pooled sandbox");
    let (store_loaded, empty_loaded) = (store.loaded(&on_demand), empty.loaded(&on_demand));
    let (store_pooled, empty_pooled) = (store.loaded(&pooled), empty.loaded(&pooled));
    let target = |sandbox, loaded| Target {
        sandbox,
        loaded,
        flavor: "bench",
        grants: &grants,
        limits: &limits,
    };
    let store_target = target(&on_demand, &store_loaded);
    let empty_target = target(&on_demand, &empty_loaded);
    let pooled_target = target(&pooled, &store_pooled);
    let empty_pooled_target = target(&pooled, &empty_pooled);
    // The same answer both ways, or the comparison means nothing.
    let wasm = store_target.status(&ctx).expect("status").value;
    assert_eq!(
        (wasm.provisioned, wasm.running, wasm.detail),
        native_status(&ctx.config, &ctx.component_name)
    );

    let mut g = c.benchmark_group("lifecycle_call");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("native_status", |b| {
        b.iter(|| native_status(black_box(&ctx.config), black_box(&ctx.component_name)))
    });
    let instantiate = |sandbox: &Sandbox, loaded: &Arc<Loaded>| {
        sandbox
            .call(
                loaded,
                "bench",
                "instantiate-only",
                &grants,
                &limits,
                |_, _| Ok(()),
            )
            .expect("instantiates")
    };
    g.bench_function("instantiate", |b| {
        b.iter(|| instantiate(&on_demand, &store_loaded))
    });
    g.bench_function("instantiate_pooled", |b| {
        b.iter(|| instantiate(&pooled, &store_pooled))
    });
    g.bench_function("empty_call", |b| {
        b.iter(|| empty_target.status(black_box(&ctx)).expect("empty status"))
    });
    g.bench_function("empty_call_pooled", |b| {
        b.iter(|| {
            empty_pooled_target
                .status(black_box(&ctx))
                .expect("empty status")
        })
    });
    g.bench_function("status", |b| {
        b.iter(|| store_target.status(black_box(&ctx)).expect("status"))
    });
    g.bench_function("status_pooled", |b| {
        b.iter(|| pooled_target.status(black_box(&ctx)).expect("status"))
    });
    let (_, cache_hash) = on_demand
        .inspect(&store.path, &store.sha, &store.bytes)
        .expect("compiles");
    g.bench_function("cached_load", |b| {
        b.iter(|| {
            // A new engine each time, as a new CLI process has: no in-memory copy.
            let fresh = Sandbox::new(cache.path()).expect("a sandbox");
            fresh
                .load(&store.path, &store.sha, Some(&cache_hash), || {
                    Err(strata::Error::Internal("the cache should have it".into()))
                })
                .expect("loads from the cache")
        })
    });
    // The same call as the daemon makes it: through the service, which first reads the
    // component, its flavor and state from the store and computes its grants (`bind`).
    // Measured as a component's description with its flavor's live status, minus the
    // same description without it.
    let home = tempfile::tempdir().expect("a temp home");
    let svc = strata::service::Service::open_with(strata::home::Home::at(home.path()), true)
        .expect("the home opens");
    let t = strata::model::ComponentType::ArtifactStore;
    svc.component_describe(t, "default", true)
        .expect("describes");
    g.bench_function("describe_with_status", |b| {
        b.iter(|| {
            svc.component_describe(t, "default", true)
                .expect("describes")
        })
    });
    g.bench_function("describe_without_status", |b| {
        b.iter(|| {
            svc.component_describe(t, "default", false)
                .expect("describes")
        })
    });
    // What the cached load is made of: a new engine (each CLI process starts one), and
    // the hash of the compiled file, checked against the store before it is loaded.
    g.bench_function("engine_start", |b| {
        b.iter(|| Sandbox::new(cache.path()).expect("a sandbox"))
    });
    let compiled_file = cache
        .path()
        .join(on_demand.engine_key())
        .join(format!("{}.cwasm", store.sha));
    let compiled = std::fs::read(&compiled_file).expect("the compiled file is in the cache");
    g.bench_function("verify_cache_hash", |b| {
        b.iter(|| compiled_hash(black_box(&compiled)))
    });
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("cold_compile", |b| {
        b.iter(|| {
            let fresh = tempfile::tempdir().expect("a temp dir");
            let sandbox = Sandbox::new(fresh.path()).expect("a sandbox");
            sandbox
                .inspect(&store.path, &store.sha, &store.bytes)
                .expect("compiles")
        })
    });
    g.finish();
}

criterion_group!(benches, lifecycle_call);
criterion_main!(benches);
