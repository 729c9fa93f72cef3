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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let strata = args
        .next()
        .unwrap_or_else(|| "target/release/strata".into());
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECONDS"));
    let home = std::env::temp_dir().join(format!("strata-loadgen-{}", std::process::id()));
    let work = home.join("work");
    std::fs::create_dir_all(&work).expect("temp dir");

    let strata_cmd = |a: &[&str]| {
        let out = Command::new(&strata)
            .args(a)
            .env("STRATA_HOME", &home)
            .output()
            .expect("strata runs");
        assert!(
            out.status.success(),
            "strata {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    strata_cmd(&["init"]);
    strata_cmd(&["daemon", "start"]);
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("daemon.json")).expect("daemon.json"),
    )
    .expect("JSON");
    let address = file["address"].as_str().expect("address").to_string();
    let token = file["token"].as_str().expect("token").to_string();
    let pid = file["pid"].as_u64().expect("pid");

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

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// `conns` connections, each sending the request `make(conn, i)` then reading the
/// answer, back to back, for `seconds`.
fn run(
    address: &str,
    conns: usize,
    seconds: f64,
    make: impl Fn(usize, usize) -> String + Send + Sync + 'static + Clone,
) -> Figures {
    let errors = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..conns)
        .map(|conn| {
            let address = address.to_string();
            let make = make.clone();
            let errors = errors.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&address).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let mut lat = Vec::new();
                let mut i = 0;
                while Instant::now() < until {
                    let req = make(conn, i);
                    i += 1;
                    let t = Instant::now();
                    writer.write_all(req.as_bytes()).expect("send");
                    let status = read_response(&mut reader);
                    lat.push(t.elapsed());
                    if !(200..300).contains(&status) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            })
        })
        .collect();
    let started = Instant::now();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64().max(seconds);
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Figures {
        rate: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Reads one HTTP/1.1 response (Content-Length or chunked); returns its status.
fn read_response(r: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {line:?}"));
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("hex size");
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length];
        r.read_exact(&mut body).expect("body");
    }
    status
}

fn rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
