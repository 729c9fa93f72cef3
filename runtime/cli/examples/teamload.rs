//! Load on the team server: requests per second and p50/p99 latency of a list
//! (`GET /api/v1/stacks`) and a register (`POST /api/v1/components/artifact-store`) at
//! 50 keep-alive connections, through one `strata server` node over MariaDB, through two
//! nodes on the same database (25 connections each), and through the sled daemon of a
//! local home, all in one run.
//!
//!   cargo run --release --example teamload -- target/release/strata [SECONDS]
//!
//! It starts a private MariaDB (Debian's `mariadb-server`, as the tests do), the nodes
//! and the daemon on 127.0.0.1, and stops them at the end.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/load.rs"]
mod load;
use load::{Figures, run};

const CONNS: usize = 50;

fn main() {
    let mut args = std::env::args().skip(1);
    let strata = args
        .next()
        .unwrap_or_else(|| "target/release/strata".into());
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECONDS"));
    let dir = std::env::temp_dir().join(format!("strata-teamload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let db_server = strata::store::mariadb::Private::start().expect("starting MariaDB");
    let db = db_server.database();
    let cli = |a: &[&str]| -> String {
        let out = Command::new(&strata)
            .args(a)
            .env("STRATA_CONFIG_DIR", dir.join("cfg"))
            .env_remove("STRATA_HOME")
            .output()
            .expect("strata runs");
        assert!(
            out.status.success(),
            "strata {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["server", "migrate", "--database", &db]);
    let token = cli(&[
        "server",
        "user",
        "create",
        "bench",
        "--role",
        "admin",
        "--database",
        &db,
    ])
    .trim()
    .to_string();
    std::fs::write(dir.join("server.key"), "11".repeat(32)).expect("key");
    let mut nodes: Vec<Child> = Vec::new();
    let mut addresses = Vec::new();
    for name in ["n1", "n2"] {
        let data = dir.join(name);
        let child = Command::new(&strata)
            .args(["server", "start", "--bind", "127.0.0.1:0", "--node", name])
            .arg("--database")
            .arg(&db)
            .arg("--secret-key-file")
            .arg(dir.join("server.key"))
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strata server starts");
        addresses.push(wait_for(&data.join("server.json"), child.id()));
        nodes.push(child);
    }
    let stores = dir.join("n1").join("stores").display().to_string();

    // The sled daemon of a local home, the baseline.
    let home = dir.join("home");
    let local = |a: &[&str]| load::strata_on(&strata, &home, a);
    let load::Daemon {
        address: daemon,
        token: daemon_token,
        ..
    } = load::start_daemon(&strata, &home);
    let home_stores = home.join("stores").display().to_string();

    let list = |address: &str, token: &str| {
        let t = token.to_string();
        run(address, CONNS, seconds, move |_, _| {
            format!(
                "GET /api/v1/stacks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\n\r\n"
            )
        })
    };
    let register = |address: &str, token: &str, stores: &str, tag: &'static str| {
        let (t, stores) = (token.to_string(), stores.to_string());
        run(address, CONNS, seconds, move |conn, i| {
            let body = format!(
                r#"{{"name":"{tag}-{conn}-{i}","flavor":"local","config":{{"path":"{stores}/{tag}-{conn}-{i}"}}}}"#
            );
            format!(
                "POST /api/v1/components/artifact-store HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
    };
    let both = addresses.join(",");
    let rows: Vec<(&str, Figures)> = vec![
        ("list, sled daemon (baseline)", list(&daemon, &daemon_token)),
        (
            "list, 1 server node over MariaDB",
            list(&addresses[0], &token),
        ),
        ("list, 2 server nodes over MariaDB", list(&both, &token)),
        (
            "register, sled daemon (baseline)",
            register(&daemon, &daemon_token, &home_stores, "d"),
        ),
        (
            "register, 1 server node over MariaDB",
            register(&addresses[0], &token, &stores, "a"),
        ),
        (
            "register, 2 server nodes over MariaDB",
            register(&both, &token, &stores, "b"),
        ),
    ];
    local(&["daemon", "stop"]);
    for mut n in nodes {
        // SAFETY: SIGTERM to a node this program started.
        unsafe {
            libc::kill(n.id() as i32, libc::SIGTERM);
        }
        let _ = n.wait();
    }
    drop(db_server);
    let _ = std::fs::remove_dir_all(&dir);

    let mut out = format!(
        "\nteam server over MariaDB against the sled daemon ({seconds} s per row, {CONNS} connections, {} cores shared by client, server(s) and database)\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    out += "| request | req/s | p50 ms | p99 ms | req/s vs sled daemon | errors |\n";
    out += "|---|---|---|---|---|---|\n";
    for (i, (label, r)) in rows.iter().enumerate() {
        let base = &rows[if i < 3 { 0 } else { 3 }].1;
        out += &format!(
            "| {label} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.rate / base.rate,
            r.errors
        );
    }
    print!("{out}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(Path::new("target/bench.txt"))
    {
        let _ = f.write_all(out.as_bytes());
    }
}

/// The address a node writes to `server.json` once it listens.
fn wait_for(file: &Path, pid: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(file).unwrap_or_default(),
        ) && v["pid"].as_u64() == Some(u64::from(pid))
        {
            return v["address"].as_str().expect("address").to_string();
        }
        assert!(Instant::now() < deadline, "the server node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}
