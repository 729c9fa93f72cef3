//! The network gate, driven from inside the sandbox by the `netprobe` fixture against
//! real HTTP servers this test starts on 127.0.0.1: origins granted by configuration
//! only, the classes of attack on a host allowlist (another port, userinfo, a `Host`
//! header, a redirect, metadata and private addresses however spelled or resolved),
//! bounds (a body that trickles, a body that never ends, a flood of requests), and
//! service connectors whose credentials strata adds and the flavor never sees.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::servers::S3;
use crate::support::{Env, wasm};

/// One request a [`Sink`] received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 server that records what it receives. Paths: `/redirect`
/// answers 302 to `to`; `/trickle` one byte every 100 ms; `/huge` a 10 GB body as fast
/// as it can; `/deny` 401; `/private` 401 unless the request has an `Authorization`;
/// `/echo` answers the request's `Authorization` as its body; `/slow` answers after a
/// second; anything else `200 hello`.
pub struct Sink {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The most connections it held open at once.
    most_open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Sink {
    pub fn start(redirect_to: Option<u16>) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let most_open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = most_open.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let record = record.clone();
                let (open, most) = (open.clone(), most.clone());
                use std::sync::atomic::Ordering::SeqCst;
                most.fetch_max(open.fetch_add(1, SeqCst) + 1, SeqCst);
                std::thread::spawn(move || {
                    struct Closed(Arc<std::sync::atomic::AtomicUsize>);
                    impl Drop for Closed {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    let _closed = Closed(open);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    // Read the body too before answering: closing a socket with unread
                    // bytes in it sends a reset, which races the answer to the client.
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let length: usize = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut have = buf.len() - end;
                    while have < length.min(1 << 20) {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => have += n,
                        }
                    }
                    let mut lines = head.lines();
                    let path = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("")
                        .to_string();
                    let headers = lines
                        .take_while(|l| !l.is_empty())
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let seen = Seen {
                        path: path.clone(),
                        headers,
                    };
                    let auth = seen.header("authorization").unwrap_or("").to_string();
                    record.lock().unwrap().push(seen);
                    let _ = match path.as_str() {
                        "/redirect" => conn.write_all(
                            format!(
                                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{}/ok\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                                redirect_to.unwrap_or(1)
                            )
                            .as_bytes(),
                        ),
                        "/trickle" => {
                            let _ = conn.write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n",
                            );
                            for _ in 0..100_000 {
                                std::thread::sleep(Duration::from_millis(100));
                                if conn.write_all(b"x").is_err() {
                                    break;
                                }
                            }
                            Ok(())
                        }
                        "/huge" => {
                            let _ = conn.write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\nconnection: close\r\n\r\n",
                            );
                            let zeros = vec![0u8; 1 << 16];
                            for _ in 0..(10_737_418_240u64 >> 16) {
                                if conn.write_all(&zeros).is_err() {
                                    break;
                                }
                            }
                            Ok(())
                        }
                        "/echo" => conn.write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{auth}",
                                auth.len()
                            )
                            .as_bytes(),
                        ),
                        "/slow" => {
                            std::thread::sleep(Duration::from_secs(1));
                            conn.write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                            )
                        }
                        "/deny" => conn.write_all(
                            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        ),
                        "/private" if auth.is_empty() => conn.write_all(
                            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        ),
                        _ => conn.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                        ),
                    };
                });
            }
        });
        Sink {
            port,
            seen,
            most_open,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `netprobe` registered as component `p` granted `target`, with `plan`; answers the
/// detail of its `status` (one result per request) and the whole output.
fn probe(env: &Env, target: &str, plan: &str, extra: &[&str]) -> (String, String) {
    if env.run(&["alerter", "flavor", "describe", "netprobe"]).code != 0 {
        env.ok(&["alerter", "flavor", "register", &wasm("fixture_netprobe")]);
    }
    let _ = env.run(&["alerter", "delete", "p"]);
    let mut args = vec![
        "alerter".to_string(),
        "register".into(),
        "p".into(),
        "--flavor=netprobe".into(),
        format!("--target={target}"),
        format!("--plan={plan}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&args);
    let v = env.json(&["alerter", "describe", "p"]);
    let detail = v["status"]["Ok"]["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v["status"].to_string());
    (detail, v.to_string())
}

/// The result of the `i`th request of a plan.
fn result(detail: &str, i: usize) -> String {
    detail.split(" | ").nth(i).unwrap_or("").to_string()
}

#[test]
fn a_flavor_reaches_only_the_origins_its_configuration_grants() {
    let env = Env::new();
    let other = Sink::start(None);
    let sink = Sink::start(Some(other.port));
    let plan = [
        format!("get {}", sink.url("/ok")),
        // The same host on another port.
        format!("get {}", other.url("/ok")),
        // Userinfo in the authority.
        format!("get http://user:pw@127.0.0.1:{}/ok", sink.port),
        format!(
            "get http://127.0.0.1:{}@127.0.0.1:{}/ok",
            sink.port, other.port
        ),
        // A Host header naming another host.
        format!("host {} 127.0.0.1:{}", sink.url("/host"), other.port),
        // A redirect from the granted origin to another one: handed back, not followed.
        format!("get {}", sink.url("/redirect")),
        // Cloud metadata, however spelled.
        "get http://169.254.169.254/latest/meta-data/".to_string(),
        "get http://[::ffff:169.254.169.254]/".to_string(),
        "get http://[::ffff:a9fe:a9fe]/".to_string(),
        // Loopback by another spelling.
        format!("get http://127.1:{}/ok", sink.port),
        format!("get http://[::ffff:127.0.0.1]:{}/ok", other.port),
        "env".to_string(),
    ]
    .join(";");
    let (detail, _) = probe(&env, &sink.url("/"), &plan, &[]);
    assert!(result(&detail, 0).ends_with("-> 200 (5 B)"), "{detail}");
    for i in [1, 2, 3, 6, 7, 8, 9, 10] {
        let r = result(&detail, i);
        assert!(r.contains("-> error: strata refused"), "request {i}: {r}");
    }
    assert!(result(&detail, 4).contains("-> error:"), "{detail}");
    assert!(
        result(&detail, 5).contains("-> 302") && result(&detail, 5).contains(&other.url("/ok")),
        "{detail}"
    );
    assert_eq!(result(&detail, 11), "env -> ", "{detail}");
    // What reached the servers: the two requests to the granted origin, nothing else,
    // each with the Host of its URL.
    let paths: Vec<String> = sink.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/ok", "/redirect"], "{detail}");
    for s in sink.seen() {
        assert_eq!(
            s.header("host"),
            Some(format!("127.0.0.1:{}", sink.port).as_str())
        );
    }
    assert!(other.seen().is_empty(), "{:?}", other.seen());
    // Every request is in the call's log, refused ones too, with no query string; and
    // in the daemon's log when a daemon made the call.
    let verbose = env.run(&["alerter", "describe", "p", "--verbose"]).stderr;
    let ok_line = format!("http GET http://127.0.0.1:{}/ok → 200 (5 B", sink.port);
    assert!(verbose.contains(&ok_line), "{verbose}");
    assert!(
        verbose.contains(&format!(
            "http GET http://127.0.0.1:{}/ok refused",
            other.port
        )),
        "{verbose}"
    );
    assert!(
        !verbose.contains("user:pw"),
        "userinfo is never logged: {verbose}"
    );
    if env.daemon_pid().is_some() {
        let logs = std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
        let line = format!("http GET http://127.0.0.1:{}/ok → 200 (5 B", sink.port);
        assert!(logs.contains(&line) && logs.contains("refused"), "{logs}");
    }
}

#[test]
fn metadata_and_private_addresses_are_refused_even_when_a_name_or_the_url_leads_there() {
    let env = Env::new();
    let sink = Sink::start(None);
    // The user's URL names the metadata address itself: still never reachable.
    let (detail, _) = probe(
        &env,
        "http://169.254.169.254/",
        "get http://169.254.169.254/latest/meta-data/",
        &[],
    );
    assert!(
        detail.contains("strata refused") && detail.contains("may not reach"),
        "{detail}"
    );
    // A name (not `localhost`, not the address) that resolves to loopback or a private
    // address: this machine's own host name, as /etc/hosts has it.
    let host = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let resolves_private = !host.is_empty()
        && std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 80)).is_ok_and(|mut a| {
            a.any(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
                std::net::IpAddr::V6(v6) => v6.is_loopback(),
            })
        });
    if resolves_private && host != "localhost" {
        let url = format!("http://{host}:{}", sink.port);
        let (detail, _) = probe(&env, &url, &format!("get {url}/ok"), &[]);
        assert!(
            detail.contains("strata refused") && detail.contains("may not reach"),
            "{host}: {detail}"
        );
        assert!(sink.seen().is_empty());
    } else {
        eprintln!(
            "this machine's host name `{host}` does not resolve to a private address: that case is covered by the unit tests"
        );
    }
    // `localhost` names loopback: allowed.
    let url = format!("http://localhost:{}", sink.port);
    let (detail, _) = probe(&env, &url, &format!("get {url}/ok"), &[]);
    assert!(detail.ends_with("-> 200 (5 B)"), "{detail}");
}

#[test]
fn a_body_that_trickles_or_never_ends_and_a_flood_of_requests_are_cut_at_the_call_s_bounds() {
    let env = Env::new();
    let sink = Sink::start(None);
    // One byte every 100 ms: the call ends at its deadline, not when the body does.
    let started = Instant::now();
    let (_, whole) = probe(
        &env,
        &sink.url("/"),
        &format!("get {}", sink.url("/trickle")),
        &["--timeout-ms=1500"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(whole.contains("1500"), "{whole}");
    // A 10 GB body: strata stops reading at 64 MiB, or at the deadline, whichever
    // comes first.
    let started = Instant::now();
    let (detail, whole) = probe(
        &env,
        &sink.url("/"),
        &format!("huge {}", sink.url("/huge")),
        &["--timeout-ms=10000"],
    );
    assert!(
        detail.contains("-> error:") || whole.contains("10000"),
        "{whole}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // 200 requests: at most 64 leave.
    let before = sink.seen().len();
    let (detail, _) = probe(
        &env,
        &sink.url("/"),
        &format!("flood 200 {}", sink.url("/ok")),
        &["--timeout-ms=30000"],
    );
    let sent = sink.seen().len() - before;
    assert!((1..=64).contains(&sent), "{sent} requests left: {detail}");
    assert!(
        detail.contains("last error: strata refused") || detail.contains("last error:"),
        "{detail}"
    );
    // 20 requests handed over at once, to a server that answers after a second: at
    // most 8 are open at the same time; the others fail at once.
    let slow = Sink::start(None);
    let (detail, _) = probe(
        &env,
        &slow.url("/"),
        &format!("burst 20 {}", slow.url("/slow")),
        &["--timeout-ms=30000"],
    );
    let most = slow.most_open.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=8).contains(&most), "{most} open at once: {detail}");
    assert!(detail.contains("ConnectionLimitReached"), "{detail}");
    // strata carries on.
    env.ok(&["stack", "list"]);
}

#[test]
fn a_connector_s_credential_is_added_by_strata_and_never_reaches_the_flavor() {
    let env = Env::new();
    let sink = Sink::start(None);
    let canary = "canary-7f3a9c1e-token";
    env.ok(&[
        "service-connector",
        "register",
        "hooks",
        "--type",
        "bearer",
        &format!("--endpoint={}", sink.url("/")),
        &format!("--token={canary}"),
    ]);
    let plan = format!(
        "auth {};config;env;show {}",
        sink.url("/auth"),
        sink.url("/echo")
    );
    let (detail, whole) = probe(&env, &sink.url("/"), &plan, &["--connector=hooks"]);
    // The server got the connector's credential, in place of the one the flavor forged.
    let auth: Vec<Seen> = sink
        .seen()
        .into_iter()
        .filter(|s| s.path == "/auth")
        .collect();
    assert_eq!(auth.len(), 1, "{detail}");
    assert_eq!(
        auth[0].header("authorization"),
        Some(format!("Bearer {canary}").as_str())
    );
    // A server that echoes the credential back: what the flavor hands on is masked.
    assert_eq!(
        result(&detail, 3),
        format!("show {} -> Bearer ********", sink.url("/echo"))
    );
    // The flavor was told the endpoint and type, never the token.
    assert!(detail.contains("connector.type=bearer"), "{detail}");
    assert!(
        detail.contains(&format!("connector.endpoint={}", sink.url("/"))),
        "{detail}"
    );
    for shown in [
        detail.clone(),
        whole,
        env.ok(&["alerter", "describe", "p", "--verbose"]),
        env.ok(&["service-connector", "describe", "hooks"]),
        env.ok(&["service-connector", "list", "--output", "json"]),
    ] {
        assert!(!shown.contains(canary), "the credential shows: {shown}");
    }
    let d = env.ok(&["alerter", "describe", "p"]);
    assert!(
        d.contains("credentials of connector `hooks` added by strata"),
        "{d}"
    );
    // A stack shows it; an export keeps its name, never the credential.
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-al", "p",
    ]);
    let s = env.ok(&["stack", "describe", "s"]);
    assert!(s.contains("CONNECTOR") && s.contains("hooks"), "{s}");
    let file = env.path("s.yaml");
    env.ok(&["stack", "export", "s", &file]);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(
        exported.contains("hooks") && !exported.contains(canary),
        "{exported}"
    );
    // Importing needs a connector of that name and type in the other home.
    let other = Env::new();
    other.ok(&["alerter", "flavor", "register", &wasm("fixture_netprobe")]);
    let err = other.fail(&["stack", "import", &file, "s2"]);
    assert!(err.contains("service connector `hooks`"), "{err}");
    other.ok(&[
        "service-connector",
        "register",
        "hooks",
        "--type",
        "bearer",
        &format!("--endpoint={}", sink.url("/")),
        "--token=other",
    ]);
    other.ok(&["stack", "import", &file, "s2"]);
    // In use: not deleted; renamed, still bound.
    let err = env.fail(&["service-connector", "delete", "hooks"]);
    assert!(err.contains("used by"), "{err}");
    env.ok(&["service-connector", "rename", "hooks", "hooks2"]);
    assert!(env.ok(&["stack", "describe", "s"]).contains("hooks2"));
    // verify: one real request with the credential. A URL that answers anybody proves
    // nothing: verify says it cannot tell, and fails.
    let open = env.fail(&["service-connector", "verify", "hooks2"]);
    assert!(
        open.contains("with the credentials and without them") && open.contains("cannot tell"),
        "{open}"
    );
    env.ok(&[
        "service-connector",
        "register",
        "checked",
        "--type",
        "bearer",
        &format!("--endpoint={}", sink.url("/private")),
        "--token=t0k3n",
    ]);
    let ok = env.ok(&["service-connector", "verify", "checked"]);
    assert!(ok.contains("the credentials work"), "{ok}");
    env.ok(&[
        "service-connector",
        "register",
        "bad",
        "--type",
        "basic",
        &format!("--endpoint={}", sink.url("/deny")),
        "--username=u",
        "--password=wrong-pw",
    ]);
    let err = env.fail(&["service-connector", "verify", "bad"]);
    assert!(
        err.contains("refused the credentials: 401") && !err.contains("wrong-pw"),
        "{err}"
    );
}

#[test]
fn an_extra_origin_is_granted_only_once_the_user_accepts_it() {
    let env = Env::new();
    let err = env.refused(&[
        "alerter",
        "flavor",
        "register",
        &wasm("fixture_originprobe"),
    ]);
    assert!(
        err.contains("http://127.0.0.1:1") && err.contains("--allow-origin=http://127.0.0.1:1"),
        "{err}"
    );
    let err = env.fail(&[
        "alerter",
        "flavor",
        "register",
        &wasm("fixture_originprobe"),
        "--allow-origin=http://127.0.0.1:2",
    ]);
    assert!(err.contains("does not ask for http://127.0.0.1:2"), "{err}");
    env.ok(&[
        "alerter",
        "flavor",
        "register",
        &wasm("fixture_originprobe"),
        "--allow-origin=http://127.0.0.1:1",
    ]);
    let d = env.ok(&["alerter", "flavor", "describe", "originprobe"]);
    assert!(
        d.contains("http://127.0.0.1:1 (accepted at registration)"),
        "{d}"
    );
    env.ok(&[
        "alerter",
        "register",
        "q",
        "--flavor=originprobe",
        "--target=http://127.0.0.1:3/",
    ]);
    let d = env.ok(&["alerter", "describe", "q"]);
    assert!(
        d.contains("http://127.0.0.1:1 (network, flavor (accepted at registration))"),
        "{d}"
    );
}

#[test]
fn a_flavor_built_against_the_0_1_0_contract_still_runs() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_v010")]);
    let d = env.ok(&["alerter", "flavor", "describe", "v010"]);
    assert!(d.contains("strata:flavor@0.1.0"), "{d}");
    env.ok(&[
        "alerter",
        "register",
        "o",
        "--flavor=v010",
        "--channel=#ops",
    ]);
    env.ok(&["alerter", "up", "o"]);
    assert!(
        env.ok(&["alerter", "describe", "o"])
            .contains("v010 is running")
    );
    env.ok(&["alerter", "down", "o", "--force"]);
}

#[test]
fn an_aws_connector_signs_requests_that_a_server_checking_sigv4_accepts() {
    let env = Env::new();
    let s3 = S3::start();
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    env.ok(&[
        "service-connector",
        "register",
        "s3",
        "--type",
        "aws",
        &format!("--endpoint={endpoint}"),
        "--access-key-id=AK",
        "--secret-access-key=SK",
    ]);
    let ok = env.ok(&["service-connector", "verify", "s3"]);
    assert!(ok.contains("the credentials work"), "{ok}");
    env.ok(&[
        "service-connector",
        "register",
        "wrong",
        "--type",
        "aws",
        &format!("--endpoint={endpoint}"),
        "--access-key-id=AK",
        "--secret-access-key=not-the-secret",
    ]);
    let err = env.fail(&["service-connector", "verify", "wrong"]);
    assert!(err.contains("refused the credentials: 403"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    // A flavor's own requests, signed by strata on their way out: list the buckets, and
    // with a forged Authorization of its own, which strata replaces.
    let (detail, _) = probe(
        &env,
        &format!("{endpoint}/"),
        &format!("get {endpoint}/;auth {endpoint}/"),
        &["--connector=s3"],
    );
    assert!(result(&detail, 0).contains("-> 200"), "{detail}");
    assert!(result(&detail, 1).contains("-> 200"), "{detail}");
    // The same requests without the connector are unsigned, and refused by the server.
    let (detail, _) = probe(
        &env,
        &format!("{endpoint}/"),
        &format!("get {endpoint}/"),
        &[],
    );
    assert!(result(&detail, 0).contains("-> 403"), "{detail}");
}

#[test]
fn an_https_origin_is_reached_only_through_tls() {
    // A server that closes every connection at once: no TLS server answers there, so the
    // request must fail in the handshake, never go out in plain text.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::<u8>::new()));
    let record = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
            let mut first = [0u8; 5];
            if let Ok(n) = conn.read(&mut first) {
                record.lock().unwrap().extend_from_slice(&first[..n]);
            }
        }
    });
    let env = Env::new();
    let url = format!("https://127.0.0.1:{port}");
    let (detail, _) = probe(&env, &format!("{url}/"), &format!("get {url}/x"), &[]);
    assert!(result(&detail, 0).contains("-> error:"), "{detail}");
    let verbose = env.run(&["alerter", "describe", "p", "--verbose"]).stderr;
    assert!(
        verbose.contains(&format!("the TLS handshake with {url} failed")),
        "{verbose}"
    );
    // What arrived was a TLS record (a handshake, 0x16), not an HTTP request line.
    let got = got.lock().unwrap().clone();
    assert_eq!(got.first(), Some(&0x16), "{got:?}");
}
