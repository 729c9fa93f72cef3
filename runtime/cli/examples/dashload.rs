//! The dashboard's stacks page with 1,000 components: how long the daemon takes to
//! answer the one request its data comes from (`GET /api/v1/stacks`), as the daemon
//! measures it (`Server-Timing`), against `GET /health` (no work) in the same run; and
//! the page's own files.
//!
//!   cargo run --release --example dashload -- target/release/strata [COMPONENTS]
//!
//! It starts its own daemon on a throwaway home (127.0.0.1), registers COMPONENTS
//! artifact stores (default 1,000), each in a stack of its own with the default
//! orchestrator, and stops the daemon at the end.

use std::time::Instant;

// Only its daemon helpers: this bench times single requests, not load.
#[allow(dead_code)]
#[path = "common/load.rs"]
mod load;

const SAMPLES: usize = 40;

fn main() {
    let mut args = std::env::args().skip(1);
    let strata = args
        .next()
        .unwrap_or_else(|| "target/release/strata".into());
    let count: usize = args.next().map_or(1000, |s| s.parse().expect("COMPONENTS"));
    let home = std::env::temp_dir().join(format!("strata-dashload-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("temp dir");
    let strata_cmd = |a: &[&str]| load::strata_on(&strata, &home, a);
    let daemon = load::start_daemon(&strata, &home);
    let base = format!("http://{}", daemon.address);
    let token = daemon.token;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, body: serde_json::Value| {
        let r = agent
            .post(format!("{base}{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .expect("the daemon answers");
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
    };
    let started = Instant::now();
    let stores = home.join("stores");
    for i in 0..count {
        post(
            "/api/v1/components/artifact-store",
            serde_json::json!({"name": format!("store-{i:04}"), "flavor": "local",
                "config": {"path": stores.join(format!("s{i}")).display().to_string()}}),
        );
        post(
            "/api/v1/stacks",
            serde_json::json!({"name": format!("stack-{i:04}"),
                "components": {"orchestrator": "default", "artifact-store": format!("store-{i:04}")}}),
        );
    }
    let setup = started.elapsed();

    // Server time (Server-Timing) and the whole request as the client sees it.
    let measure = |path: &str, auth: bool| -> (Vec<f64>, Vec<f64>, usize) {
        let mut server = Vec::new();
        let mut whole = Vec::new();
        let mut size = 0;
        for _ in 0..SAMPLES {
            let mut req = agent.get(format!("{base}{path}"));
            if auth {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
            let t = Instant::now();
            let mut r = req.call().expect("the daemon answers");
            let body = r
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_vec()
                .expect("body");
            whole.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(r.status().is_success(), "GET {path}: {}", r.status());
            size = body.len();
            let dur = r
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("app;dur="))
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a Server-Timing header");
            server.push(dur);
        }
        server.sort_by(f64::total_cmp);
        whole.sort_by(f64::total_cmp);
        (server, whole, size)
    };
    let pct = |v: &[f64], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    let rows = [
        ("GET /health (no work; baseline)", measure("/health", false)),
        (
            "GET /api/v1/stacks (the stacks page's data)",
            measure("/api/v1/stacks", true),
        ),
        ("GET / (the page)", measure("/", false)),
        ("GET /assets/app.js", measure("/assets/app.js", false)),
    ];
    strata_cmd(&["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&home);

    println!(
        "\nthe dashboard's stacks page: {count} components in {count} stacks (set up in {:.1} s), {SAMPLES} requests a row\n",
        setup.as_secs_f64()
    );
    println!(
        "| request | server p50 ms | server p99 ms | whole p50 ms | bytes | server p50 vs /health |"
    );
    println!("|---|---|---|---|---|---|");
    let base_p50 = pct(&rows[0].1.0, 0.5).max(0.001);
    for (label, (server, whole, size)) in &rows {
        println!(
            "| {label} | {:.3} | {:.3} | {:.2} | {size} | {:.0}x |",
            pct(server, 0.5),
            pct(server, 0.99),
            pct(whole, 0.5),
            pct(server, 0.5) / base_p50
        );
    }
    let p99 = pct(&rows[1].1.0, 0.99);
    println!(
        "\ngoal: the stacks page's data in at most 200 ms of server time: p99 {p99:.1} ms ({})",
        if p99 <= 200.0 { "met" } else { "NOT met" }
    );
}
