//! The load client of `loadgen` and `teamload`: keep-alive HTTP/1.1 connections over
//! `TcpStream`, one thread each, sending back to back, so that the client's own cost
//! stays small next to the server's on a 2-core machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Figures {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// `conns` connections, each sending the request `make(conn, i)` then reading the
/// answer, back to back, for `seconds`. `address` may list several servers, separated
/// by commas: connection `c` goes to the `c % n`-th.
pub fn run(
    address: &str,
    conns: usize,
    seconds: f64,
    make: impl Fn(usize, usize) -> String + Send + Sync + 'static + Clone,
) -> Figures {
    let errors = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..conns)
        .map(|conn| {
            let all: Vec<&str> = address.split(',').collect();
            let address = all[conn % all.len()].to_string();
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

/// `strata ARGS` on the home `home`; panics with what it printed when it fails.
#[allow(dead_code)]
pub fn strata_on(strata: &str, home: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(strata)
        .args(args)
        .env("STRATA_HOME", home)
        .output()
        .expect("strata runs");
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A daemon of a new home, started in the background: where it listens, its token, its pid.
#[allow(dead_code)]
pub struct Daemon {
    pub address: String,
    pub token: String,
    pub pid: u64,
}

/// `strata init` and `strata daemon start` on `home`, and what its `daemon.json` says.
#[allow(dead_code)]
pub fn start_daemon(strata: &str, home: &std::path::Path) -> Daemon {
    strata_on(strata, home, &["init"]);
    strata_on(strata, home, &["daemon", "start"]);
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("daemon.json")).expect("daemon.json"),
    )
    .expect("JSON");
    Daemon {
        address: file["address"].as_str().expect("address").to_string(),
        token: file["token"].as_str().expect("token").to_string(),
        pid: file["pid"].as_u64().expect("pid"),
    }
}
