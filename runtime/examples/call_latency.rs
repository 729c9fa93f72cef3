//! Measures what one lifecycle call on a registered flavor costs, step by step, in
//! process: compile (cold), load from the compiled cache, instantiate + call, against an
//! empty call. Prints medians of many runs. Used by `scripts/bench.sh`.
//!
//! `cargo run --release --example call_latency -- target/wasm32-wasip2/release/local_artifact_store.wasm`

use std::time::{Duration, Instant};

use strata::sandbox::calls::{Context, Target};
use strata::sandbox::{Grants, Limits, Sandbox, cache::sha256_hex};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: call_latency FLAVOR.wasm")?;
    let bytes = std::fs::read(&path)?;
    let sha = sha256_hex(&bytes);
    let dir = tempfile::tempdir()?;
    let limits = Limits::DEFAULT;
    let grants = Grants::default();

    let mut compile = Vec::new();
    let mut cache_hash = String::new();
    for _ in 0..5 {
        let sandbox = Sandbox::new(dir.path())?;
        let t = Instant::now();
        let (_, h) = sandbox.inspect(&path, &sha, &bytes)?;
        compile.push(t.elapsed());
        cache_hash = h;
    }

    let mut load = Vec::new();
    for _ in 0..50 {
        let sandbox = Sandbox::new(dir.path())?;
        let t = Instant::now();
        sandbox.load(&path, &sha, Some(&cache_hash), || {
            Err(strata::Error::Internal("cache miss".into()))
        })?;
        load.push(t.elapsed());
    }

    let sandbox = Sandbox::new(dir.path())?;
    let loaded = sandbox
        .load(&path, &sha, Some(&cache_hash), || Ok(bytes.clone()))?
        .loaded;
    let target = Target {
        sandbox: &sandbox,
        loaded: &loaded,
        flavor: "bench",
        grants: &grants,
        limits: &limits,
    };
    let ctx = Context {
        component_id: "id".into(),
        component_name: "bench".into(),
        config: vec![("path".into(), "/nonexistent".into())],
        state: None,
    };
    let mut status = Vec::new();
    let mut empty = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        target.status(&ctx)?;
        status.push(t.elapsed());
        let t = Instant::now();
        sandbox.call(
            &loaded,
            "bench",
            "instantiate-only",
            &grants,
            &limits,
            |_, _| Ok(()),
        )?;
        empty.push(t.elapsed());
    }
    let (c, l, s, e) = (median(compile), median(load), median(status), median(empty));
    println!("flavor            {path} ({} KiB)", bytes.len() / 1024);
    println!("compile (cold)    {:>10.3} ms", c.as_secs_f64() * 1e3);
    println!("load from cache   {:>10.3} ms", l.as_secs_f64() * 1e3);
    println!("instantiate only  {:>10.3} ms", e.as_secs_f64() * 1e3);
    println!("instantiate+status{:>10.3} ms", s.as_secs_f64() * 1e3);
    println!(
        "cold / cached     {:>10.1}x",
        (c + s).as_secs_f64() / (l + s).as_secs_f64()
    );
    Ok(())
}
