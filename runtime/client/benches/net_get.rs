//! What the network gate adds to one HTTP GET, with criterion: a flavor (the `netprobe`
//! fixture, in Rust) making one GET through `wasi:http` and the gate to a server on
//! loopback, against the same GET made natively with hyper in the same run.
//!
//! - `native_get`: hyper's HTTP/1 client, a new connection per request (as the gate
//!   opens one per request), on a current-thread tokio runtime: the baseline.
//! - `native_get_mt`: the same GET run on a multi-threaded runtime's worker and awaited
//!   from the calling thread, as a synchronous program (and wasmtime-wasi, for a guest
//!   blocked in a host call) does it: a second baseline.
//! - `call_with_get` − `call_without_get`: the netprobe's `status` with a plan of one
//!   GET, minus the same call with an empty plan. The difference is the GET as a flavor
//!   pays for it: the guest's wasi:http calls, the gate's checks (origin, address
//!   filter), the connection, the bounded body, the log line.
//!
//! `cargo bench --bench net_get` (after `make flavors`); `make bench` prints the ratio.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use strata::sandbox::calls::{Context, Target};
use strata::sandbox::net::{Granted, NetGrants, Origin};
use strata::sandbox::{Grants, Limits, Sandbox};

/// A loopback server answering every request `200 hello`, then closing.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_nodelay(true);
            let mut buf = [0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

async fn native_get(port: u16) -> usize {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    let conn = tokio::spawn(conn);
    let request = http::Request::get("/ok")
        .header("host", format!("127.0.0.1:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("an answer");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    let _ = conn.await;
    body.len()
}

fn net_get(c: &mut Criterion) {
    let dir = std::env::var_os("STRATA_FLAVORS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm32-wasip2/release")
        });
    let path = dir.join("fixture_netprobe.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the flavors first with `make flavors`",
            path.display()
        )
    });
    let sha = strata::sandbox::cache::sha256_hex(&bytes);
    let cache = tempfile::tempdir().expect("a temp dir");
    let sandbox = Sandbox::with_allocator(cache.path(), true).expect("a pooled sandbox");
    let (loaded, _) = sandbox
        .inspect("netprobe", &sha, &bytes)
        .expect("the flavor compiles");
    let port = server();
    let url = format!("http://127.0.0.1:{port}/ok");
    let grants = Grants {
        net: NetGrants {
            origins: vec![Granted {
                origin: Origin::of_url(&url).expect("an origin"),
                from: "field target".into(),
                credential: None,
                connector: None,
            }],
        },
        ..Grants::default()
    };
    let limits = Limits::DEFAULT;
    let target = Target {
        sandbox: &sandbox,
        loaded: &loaded,
        flavor: "netprobe",
        grants: &grants,
        limits: &limits,
    };
    let ctx = |plan: &str| Context {
        component_id: "id".into(),
        component_name: "bench".into(),
        config: vec![("target".into(), url.clone()), ("plan".into(), plan.into())],
        state: None,
    };
    let (with_get, without_get) = (ctx(&format!("get {url}")), ctx(""));
    // The same answer both ways, or the comparison means nothing.
    let detail = target.status(&with_get).expect("status").value.detail;
    assert!(detail.ends_with("-> 200 (5 B)"), "{detail}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    assert_eq!(rt.block_on(native_get(port)), 5);

    // What a synchronous caller pays with the kind of runtime the host itself has
    // (wasmtime-wasi's, multi-threaded): every wait crosses to a worker thread and back.
    let mt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let mut g = c.benchmark_group("net_get");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("native_get", |b| b.iter(|| rt.block_on(native_get(port))));
    g.bench_function("native_get_mt", |b| {
        b.iter(|| mt.block_on(async { tokio::spawn(native_get(port)).await.expect("the GET") }))
    });
    g.bench_function("call_with_get", |b| {
        b.iter(|| target.status(&with_get).expect("status"))
    });
    g.bench_function("call_without_get", |b| {
        b.iter(|| target.status(&without_get).expect("status"))
    });
    g.finish();
}

criterion_group!(benches, net_get);
criterion_main!(benches);
