//! What one lifecycle call on a registered flavor costs, step by step, in process:
//! compile (cold), load from the verified compiled cache, instantiate, and instantiate +
//! `status`; against two baselines measured in the same run: the same `status` logic as
//! a native Rust function, and a call into an empty component (a flavor whose `status`
//! returns a constant). Prints medians of many runs; `make bench` appends them to
//! target/bench.txt.
//!
//! `cargo run --release --example call_latency -- [FLAVORS_DIR]`
//! (default: target/wasm32-wasip2/release, as built by `make flavors`)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata::sandbox::calls::{Context, Target};
use strata::sandbox::{Grants, Limits, Loaded, Sandbox, cache::sha256_hex};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `f` `n` times and returns the median time of one run.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// The local artifact store's `status` for a store whose directory is missing, written
/// natively: find `path` in the configuration, stat it, say what to do.
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

struct Flavor {
    path: String,
    bytes: Vec<u8>,
    sha: String,
}

impl Flavor {
    fn read(dir: &Path, name: &str) -> Result<Flavor, Box<dyn std::error::Error>> {
        let path = dir.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("{}: {e} (build it with `make flavors`)", path.display()))?;
        Ok(Flavor {
            sha: sha256_hex(&bytes),
            path: path.display().to_string(),
            bytes,
        })
    }

    /// Compiles into `cache` once and loads the result, as a registered flavor is.
    fn loaded(&self, sandbox: &Sandbox) -> Result<std::sync::Arc<Loaded>, strata::Error> {
        let (_, hash) = sandbox.inspect(&self.path, &self.sha, &self.bytes)?;
        Ok(sandbox
            .load(&self.path, &self.sha, Some(&hash), || {
                Ok(self.bytes.clone())
            })?
            .loaded)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip2/release"));
    let store = Flavor::read(&dir, "local_artifact_store")?;
    let empty = Flavor::read(&dir, "fixture_trap")?;
    let cache = tempfile::tempdir()?;
    let limits = Limits::DEFAULT;
    let grants = Grants::default();

    let compile = median(
        (0..5)
            .map(|_| {
                let fresh = tempfile::tempdir().expect("temp dir");
                let sandbox = Sandbox::new(fresh.path()).expect("sandbox");
                let t = Instant::now();
                sandbox
                    .inspect(&store.path, &store.sha, &store.bytes)
                    .expect("compiles");
                t.elapsed()
            })
            .collect(),
    );
    let sandbox = Sandbox::new(cache.path())?;
    let (_, cache_hash) = sandbox.inspect(&store.path, &store.sha, &store.bytes)?;
    let load = time(50, || {
        let sandbox = Sandbox::new(cache.path()).expect("sandbox");
        sandbox
            .load(&store.path, &store.sha, Some(&cache_hash), || {
                Err(strata::Error::Internal("cache miss".into()))
            })
            .expect("loads from the cache")
    });

    let loaded = store.loaded(&sandbox)?;
    let empty_loaded = empty.loaded(&sandbox)?;
    let ctx = Context {
        component_id: "id".into(),
        component_name: "bench".into(),
        config: vec![("path".into(), "/nonexistent/strata-bench".into())],
        state: None,
    };
    let store_target = Target {
        sandbox: &sandbox,
        loaded: &loaded,
        flavor: "bench",
        grants: &grants,
        limits: &limits,
    };
    let empty_target = Target {
        loaded: &empty_loaded,
        ..store_target
    };
    // Same answer both ways, or the comparison means nothing.
    let wasm = store_target.status(&ctx)?.value;
    let native = native_status(&ctx.config, &ctx.component_name);
    assert_eq!((wasm.provisioned, wasm.running, wasm.detail), native);

    const N: usize = 2000;
    let native_t = time(N * 10, || native_status(&ctx.config, &ctx.component_name));
    let instantiate = time(N, || {
        sandbox
            .call(
                &loaded,
                "bench",
                "instantiate-only",
                &grants,
                &limits,
                |_, _| Ok(()),
            )
            .expect("instantiates")
    });
    let empty_call = time(N, || empty_target.status(&ctx).expect("empty status"));
    let status = time(N, || store_target.status(&ctx).expect("status"));

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ratio = |d: Duration| d.as_secs_f64() / native_t.as_secs_f64();
    println!();
    println!(
        "one lifecycle call, in process (local artifact store `status`, {} KiB .wasm)",
        store.bytes.len() / 1024
    );
    println!("baseline: the same `status` logic as a native Rust function\n");
    println!("| step | median | x native |");
    println!("|---|---|---|");
    println!(
        "| native Rust `status` (baseline) | {:.2} us | 1 |",
        us(native_t)
    );
    println!(
        "| instantiate only | {:.1} us | {:.0} |",
        us(instantiate),
        ratio(instantiate)
    );
    println!(
        "| instantiate + call of an empty component | {:.1} us | {:.0} |",
        us(empty_call),
        ratio(empty_call)
    );
    println!(
        "| instantiate + `status` | {:.1} us | {:.0} |",
        us(status),
        ratio(status)
    );
    println!(
        "| load from the verified compiled cache | {:.3} ms | {:.0} |",
        ms(load),
        ratio(load)
    );
    println!(
        "| compile (cold) | {:.1} ms | {:.0} |",
        ms(compile),
        ratio(compile)
    );
    println!(
        "\ncold (compile + call) / cached (load + call): {:.0}x; `status` / empty call: {:.2}x",
        (compile + status).as_secs_f64() / (load + status).as_secs_f64(),
        status.as_secs_f64() / empty_call.as_secs_f64()
    );
    Ok(())
}
