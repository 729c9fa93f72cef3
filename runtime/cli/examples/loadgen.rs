//! Load generator for `strata daemon`: requests per second and p50/p99 latency of a
//! list (`GET /api/v1/stacks`) and a register (`POST /api/v1/components/artifact-store`)
//! at 1, 10 and 50 concurrent keep-alive connections, against `GET /health` (the same
//! server, no work) measured in the same run; and the daemon's idle RSS.
//!
//!   cargo run --release --example loadgen -- target/release/strata [SECONDS]
//!
//! It starts its own daemon on a throwaway home, on 127.0.0.1, and stops it at the end.
//! The client is plain HTTP/1.1 over `TcpStream` (one thread per connection), so that
//! the client's own cost stays small next to the daemon's on a 2-core machine.

use std::io::Write;
use std::path::Path;

use std::time::Duration;

#[path = "common/load.rs"]
mod load;
use load::run;

fn main() {
    let mut args = std::env::args().skip(1);
    let strata = args
        .next()
        .unwrap_or_else(|| "target/release/strata".into());
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECONDS"));
    let home = std::env::temp_dir().join(format!("strata-loadgen-{}", std::process::id()));
    let work = home.join("work");
    std::fs::create_dir_all(&work).expect("temp dir");

    let strata_cmd = |a: &[&str]| load::strata_on(&strata, &home, a);
    let load::Daemon {
        address,
        token,
        pid,
    } = load::start_daemon(&strata, &home);

    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(pid);

    let mut rows = Vec::new();
    for conns in [1usize, 10, 50] {
        let health = run(&address, conns, seconds, |_, _| {
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string()
        });
        rows.push(("GET /health (no work)".to_string(), conns, health));
        let t = token.clone();
        let list = run(&address, conns, seconds, move |_, _| {
            let token = &t;
            format!(
                "GET /api/v1/stacks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
        });
        rows.push(("GET /api/v1/stacks (list)".to_string(), conns, list));
        let dir = work.display().to_string();
        let t = token.clone();
        let register = run(&address, conns, seconds, move |conn, i| {
            let token = &t;
            let body = format!(
                r#"{{"name":"c{conns}-{conn}-{i}","flavor":"local","config":{{"path":"{dir}/c{conns}-{conn}-{i}"}}}}"#
            );
            format!(
                "POST /api/v1/components/artifact-store HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        rows.push((
            "POST /api/v1/components/… (register)".to_string(),
            conns,
            register,
        ));
    }
    // One lifecycle call inside the daemon: `describe` with the flavor's live status
    // (one `status` call into the sandbox) against the same `describe` without it.
    let t = token.clone();
    let without = run(&address, 1, seconds, move |_, _| {
        format!(
            "GET /api/v1/components/artifact-store/default?status=false HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\n\r\n"
        )
    });
    let t = token.clone();
    let with = run(&address, 1, seconds, move |_, _| {
        format!(
            "GET /api/v1/components/artifact-store/default HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\n\r\n"
        )
    });
    let loaded_rss = rss_kib(pid);
    // Idle again: tokio lets its blocking threads go after 10 s without work.
    std::thread::sleep(Duration::from_secs(12));
    let rested_rss = rss_kib(pid);
    strata_cmd(&["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&home);

    let mut out = String::new();
    out += &format!(
        "\nstrata daemon under load ({seconds} s per row, {} cores; client and daemon share them)\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    out += "| request | conns | req/s | p50 ms | p99 ms | req/s vs /health | errors |\n";
    out += "|---|---|---|---|---|---|---|\n";
    let mut base = 0.0;
    for (label, conns, r) in &rows {
        if label.starts_with("GET /health") {
            base = r.rate;
        }
        out += &format!(
            "| {label} | {conns} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.rate / base,
            r.errors
        );
    }
    out += &format!(
        "\none `status` call in the daemon: describe with live status p50 {:.3} ms, without {:.3} ms: the call costs {:.1} us\n",
        with.p50_ms,
        without.p50_ms,
        (with.p50_ms - without.p50_ms) * 1000.0
    );
    out += &format!(
        "\ndaemon RSS: idle {:.1} MiB (after start), {:.1} MiB right after the load, {:.1} MiB idle 12 s later\n",
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        rested_rss as f64 / 1024.0
    );
    print!("{out}");
    let bench = Path::new("target/bench.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(bench)
    {
        let _ = f.write_all(out.as_bytes());
    }
}

fn rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
